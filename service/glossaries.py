"""Glossaries over HTTP: `GET|POST /glossaries`, `DELETE /glossaries/{id}`, and the `glossary` field of
`/translate` and `/translate_file`.

    curl -s localhost:5000/glossaries -H 'Content-Type: application/json' \
         -d '{"name": "debian", "source": "es", "target": "en", "terms": [["paquete", "package"]]}'
    curl -s localhost:5000/translate -d q="Instale el paquete." -d source=es -d target=en -d glossary=debian

Stored glossaries need the service's database (`database` setting); managing them takes an API key
wherever translating does (service/access.py), as `carousel glossaries` does from the command line.
A request's `glossary` is a stored glossary's id or name, or the terms themselves: a list of
`[source, target]` pairs or `{"source": ..., "target": ...}` objects (in a form field: that list as
JSON). A stored glossary must be of the request's language pair (with `source: "auto"`, it applies to
the strings detected in its source language); an inline one is of the request's pair. Bad terms (an
empty term, a term of over 200 characters, more than 100,000 terms) are a 400 naming the entry; an
unknown glossary in a request is a 400 too (a 404 only for `DELETE` of one).
"""

from __future__ import annotations

import asyncio
import json
import re

from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field

from carousel.model.translator import MAX_GLOSSARY_TERMS, Glossary, GlossaryError, read_glossary_tsv
from carousel.service.access import AccessPolicy, retry_after_header
from carousel.service.database import Database, DatabaseError
from carousel.service.errors import ApiError
from carousel.service.glossary_store import GlossaryStore
from carousel.service.health import describe
from carousel.service.requests import read_fields, validate
from carousel.service.responses import ErrorAnswer, answers

# A glossary upload may be far larger than a text to translate: 100,000 terms of a few words each.
MAX_GLOSSARY_BODY = 16 * 1024 * 1024
NAME = re.compile(r"[\w.-]{1,64}")
LANGUAGE = re.compile(r"[a-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})?")
RETRY_AFTER_DATABASE = 5


class GlossaryRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(description="letters, digits, '.', '-' and '_', up to 64; not all digits (ids are)")
    source: str
    target: str
    terms: list | None = Field(None, description="[source, target] pairs or {source, target} objects")
    tsv: str | None = Field(None, description="or the terms as tab-separated lines: source<TAB>target")
    api_key: str | None = None


class GlossaryEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: int
    name: str
    source: str
    target: str
    terms: int


class Removed(BaseModel):
    model_config = ConfigDict(extra="forbid")

    success: bool


def install_glossary_routes(app: FastAPI, database: Database | None, access: AccessPolicy) -> GlossaryStore | None:
    store = GlossaryStore(database) if database is not None else None
    app.state.glossaries = store

    def require_store() -> GlossaryStore:
        if store is None:
            raise ApiError(403, "stored glossaries need the server's database (CAROUSEL_DATABASE); "
                                "send the terms with the request instead")
        return store

    @app.get("/glossaries", summary="The stored glossaries (optionally of one language pair)",
             responses=answers(list[GlossaryEntry], 403, 429, 503))
    async def list_glossaries(request: Request, source: str | None = None, target: str | None = None):
        await access.admit(await read_fields(request, MAX_GLOSSARY_BODY), request)
        found = await _using_database(access, require_store().list, _language(source), _language(target))
        return [glossary.describe() for glossary in found]

    @app.post("/glossaries", summary="Store a glossary (replacing one of the same name)",
              responses=answers(GlossaryEntry, 400, 403, 413, 429, 503))
    async def put_glossary(request: Request):
        fields = await read_fields(request, MAX_GLOSSARY_BODY)
        await access.admit({key: value for key, value in fields.items() if key != "q"}, request)
        body = validate(GlossaryRequest, fields)
        name = body.name.strip()
        if not NAME.fullmatch(name) or name.isdigit():
            raise ApiError(400, f"invalid glossary name {name!r}: use letters, digits, '.', '-' and '_' (up to 64), "
                                "not digits alone")
        glossary = _glossary_of(body)
        stored = await _using_database(access, require_store().put, name, glossary)
        return stored.describe()

    not_found = {404: {"model": ErrorAnswer, "description": "no glossary of that id or name"}}

    @app.delete("/glossaries/{id_or_name}", summary="Remove a stored glossary",
                responses={**answers(Removed, 403, 429, 503), **not_found})
    async def remove_glossary(request: Request, id_or_name: str):
        await access.admit(await read_fields(request, MAX_GLOSSARY_BODY), request)
        if not await _using_database(access, require_store().remove, id_or_name):
            raise ApiError(404, f"no glossary {id_or_name!r}")
        return {"success": True}

    return store


async def request_glossary(value, source: str, target: str, store: GlossaryStore | None,
                           access: AccessPolicy) -> Glossary | None:
    """The glossary a translation request names or holds (None: none), checked against its language pair
    (`source` may be "auto"), or a 400/403/404 naming the problem."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, str) and value.lstrip().startswith("["):  # a form field holding the JSON list
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise ApiError(400, f"invalid field 'glossary': not a JSON list of terms ({error.msg})") from None
    if isinstance(value, list):
        if source == "auto":
            raise ApiError(400, "an inline glossary needs the source language: send source explicitly, or store "
                                "the glossary (POST /glossaries) with its language pair")
        return _checked(_terms_of(value, "glossary"), source, target)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ApiError(400, "invalid field 'glossary': give a stored glossary's id or name, or a list of "
                            "[source, target] terms")
    if store is None:
        raise ApiError(403, "stored glossaries need the server's database (CAROUSEL_DATABASE); "
                            "send the terms with the request instead")
    stored = await _using_database(access, store.find, value)
    if stored is None:
        raise ApiError(400, f"no glossary {value!r} (GET /glossaries lists them)")
    if stored.target != target or source not in ("auto", stored.source):
        raise ApiError(400, f"the glossary {stored.name!r} is for {stored.source}→{stored.target}; this request "
                            f"translates {source}→{target}")
    return await _using_database(access, store.load, stored)


def _glossary_of(body: GlossaryRequest) -> Glossary:
    source, target = _language(body.source), _language(body.target)
    if source is None or target is None:
        raise ApiError(400, "invalid field 'source' or 'target': give language codes such as 'es' and 'en'")
    if (body.terms is None) == (body.tsv is None):
        raise ApiError(400, "give the glossary's terms in 'terms' (a list of pairs) or in 'tsv' (tab-separated lines)")
    if body.tsv is not None:
        try:
            pairs = read_glossary_tsv(body.tsv, "tsv")
        except GlossaryError as error:
            raise ApiError(400, str(error)) from None
    else:
        pairs = _terms_of(body.terms, "terms")
    if not pairs:
        raise ApiError(400, "the glossary has no terms")
    return _checked(pairs, source, target, body.name)


def _terms_of(items: list, field: str) -> list:
    """[source, target] pairs of a list of pairs or {source, target} objects (checked by Glossary)."""
    if len(items) > MAX_GLOSSARY_TERMS:
        raise ApiError(413, f"{field} holds {len(items)} terms; a glossary holds at most {MAX_GLOSSARY_TERMS}")
    return [[item.get("source"), item.get("target")] if isinstance(item, dict) else item for item in items]


def _checked(pairs: list, source: str, target: str, name: str = "") -> Glossary:
    try:
        return Glossary(pairs, source, target, name)
    except GlossaryError as error:
        raise ApiError(400, f"invalid glossary: {error}") from None


def _language(code: str | None) -> str | None:
    if code is None:
        return None
    code = code.strip().lower()
    return code if LANGUAGE.fullmatch(code) else None


async def _using_database(access: AccessPolicy, function, *arguments):
    """`function(*arguments)` off the event loop; a database that fails is a 503 with Retry-After."""
    try:
        result = await asyncio.to_thread(function, *arguments)
    except DatabaseError as error:  # unreachable, locked past the timeout, deleted, corrupted
        if access.health is not None:
            access.health.failed(describe(error))
        raise ApiError(503, f"the database is unavailable ({describe(error)}); retry later",
                       headers=retry_after_header(RETRY_AFTER_DATABASE)) from None
    if access.health is not None:
        access.health.ok()
    return result
