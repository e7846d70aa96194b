"""`POST /suggest` as LibreTranslate has it: a better translation (`s`) of a text (`q`), kept for training.

Fields `q`, `s`, `source`, `target` (and `api_key`) from JSON, a form or the query string; answered
`{"success": true}` once the suggestion is committed to the database, with the model that serves the
pair and the time. 403 when suggestions are off (`suggestions` setting, which needs `database`).
With the translation memory on (`memory` setting), the suggestion is stored there too (origin
"suggestion"), so the next request for the same text gets it (service/memory.py).
`carousel suggestions export --out FILE.tsv` writes them as a parallel corpus for `carousel prepare tsv`.
"""

from __future__ import annotations

import asyncio

from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field

from carousel.service.access import AccessPolicy, retry_after_header
from carousel.service.database import DatabaseError
from carousel.service.errors import ApiError
from carousel.service.health import describe
from carousel.service.memory import SUGGESTION, TranslationMemory
from carousel.service.registry import ModelRegistry
from carousel.service.requests import read_fields, validate
from carousel.service.responses import answers
from carousel.service.settings import ServiceSettings


class SuggestRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    q: str = Field(min_length=1)
    s: str = Field(min_length=1)
    source: str = Field(min_length=1)
    target: str = Field(min_length=1)
    api_key: str | None = None


class SuggestAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    success: bool


def install_suggest_route(app: FastAPI, settings: ServiceSettings, registry: ModelRegistry, database,
                          access: AccessPolicy, max_body: int, memory: TranslationMemory | None = None) -> None:
    @app.post("/suggest", summary="Suggest a better translation (kept for training)",
              responses=answers(SuggestAnswer, 400, 403, 413, 429, 503))
    async def suggest(request: Request):
        if database is None or not settings.suggestions:
            raise ApiError(403, "suggestions are disabled on this server")
        fields = await read_fields(request, max_body)
        await access.admit(fields, request)
        body = validate(SuggestRequest, fields)
        if len(body.q) + len(body.s) > settings.max_chars:
            raise ApiError(413, f"q and s hold more than {settings.max_chars} characters")
        source, target = body.source.strip().lower(), body.target.strip().lower()
        served = registry.find(source, target) if registry.ready else None
        try:
            await asyncio.to_thread(
                database.add_suggestion, body.q, body.s, source, target, served.name if served else "", body.api_key
            )
            if memory is not None and source != "auto" and body.q.strip() and body.s.strip():
                await asyncio.to_thread(memory.add, source, target, [(body.q, body.s)], SUGGESTION)
        except DatabaseError as error:  # unreachable, locked past the timeout, deleted, corrupted
            access.health.failed(describe(error))
            raise ApiError(503, f"the database is unavailable ({describe(error)}); retry later",
                           headers=retry_after_header(5)) from None
        access.health.ok()
        return {"success": True}
