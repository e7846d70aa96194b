"""Reading request bodies (JSON, URL-encoded forms, multipart forms) into validated request objects.

LibreTranslate clients send forms, others JSON; both end up as the same `TranslateRequest`. The body is
read with a size cap before anything is parsed, so an oversized upload is refused (413) early.
Anything malformed (bad JSON, invalid UTF-8, an unpaired surrogate escape, a null in `q`, a file where
text belongs, an unknown content type) is a 400 that names the problem.
"""

from __future__ import annotations

import json
import sys
import urllib.parse
from typing import Any, Literal

from fastapi import Request
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator
from starlette.datastructures import UploadFile

from carousel.service.errors import ApiError, validation_summary

JSON_TYPES = ("application/json",)
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
BODY_OVERHEAD = 64 * 1024  # field names, other fields, multipart boundaries
MAX_FORM_FIELDS = 1_000
BYTES_PER_CHAR = 12  # worst case: one astral character as "\ud83d\ude00" or "%F0%9F%98%80"


class TranslateRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    q: str | list[str]
    source: str
    target: str
    format: Literal["text", "html"] = "text"
    alternatives: int = 0
    api_key: str | None = None
    beam_size: int | None = None
    return_scores: bool = False
    return_alignment: bool = False
    return_confidence: bool = False  # extension: per-string confidence in [0, 1] (model/confidence.py)
    domain: str | None = None  # extension: "auto" or a domain's name (general, bible): which model translates
    # extension: a stored glossary's id or name, or [source, target] terms; checked, with messages that
    # name the bad term, by service/glossaries.py
    glossary: Any = None

    @field_validator("q", mode="before")
    @classmethod
    def _text_or_list_of_text(cls, value):
        if isinstance(value, list):
            for index, item in enumerate(value):
                if not isinstance(item, str):
                    raise ValueError(f"item {index} of q is {_json_type(item)}, not a string")
        elif not isinstance(value, str):
            raise ValueError(f"q must be a string or a list of strings, not {_json_type(value)}")
        return value


def _json_type(value) -> str:
    names = {type(None): "null", bool: "a boolean", int: "a number", float: "a number", dict: "an object", list: "a list"}
    return names.get(type(value), type(value).__name__)


class DetectRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    q: str
    api_key: str | None = None


def body_limit(max_chars: int) -> int:
    return max_chars * BYTES_PER_CHAR + BODY_OVERHEAD


async def read_fields(request: Request, max_bytes: int) -> dict[str, Any]:
    """The request's fields as a dict, as LibreTranslate reads them (Flask's `request.values`, then JSON).

    Fields come from the query string and the body (JSON, URL-encoded or multipart form); a field in
    the body wins over the same field in the query string. The API key may also come as
    `Authorization: Bearer KEY` (used when neither the body nor the query string has `api_key`).
    """
    fields = {**query_fields(request), **await _body_fields(request, max_bytes)}
    if not fields.get("api_key"):
        key = bearer_key(request)
        if key:
            fields["api_key"] = key
    return fields


def query_fields(request: Request) -> dict[str, Any]:
    """The query string's fields, strictly decoded like a URL-encoded form (q repeated: a list)."""
    raw = request.scope.get("query_string", b"")
    if not raw:
        return {}
    return _form_fields(_parse_urlencoded(raw))


def bearer_key(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return None


async def read_capped_body(request: Request, max_bytes: int, what: str = "request body") -> bytes:
    """The whole body, or 413 as soon as it (declared or received) is over `max_bytes`."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise ApiError(413, f"{what} of {declared} bytes is over the limit of {max_bytes} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise ApiError(413, f"{what} is over the limit of {max_bytes} bytes")
    return bytes(body)


async def _body_fields(request: Request, max_bytes: int) -> dict[str, Any]:
    body = await read_capped_body(request, max_bytes)
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";")[0].strip().lower()
    if not body and not media_type:
        return {}
    if media_type in JSON_TYPES or media_type.endswith("+json"):
        return _parse_json(bytes(body))
    if media_type in FORM_TYPES:
        return await _parse_form(request, bytes(body))
    raise ApiError(
        400,
        f"unsupported content type {media_type or '(none)'!r}: send application/json, "
        "application/x-www-form-urlencoded or multipart/form-data",
    )


def _parse_json(body: bytes) -> dict[str, Any]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ApiError(400, f"request body is not valid UTF-8 (byte {error.start})") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ApiError(400, f"malformed JSON body: {error.msg} at line {error.lineno} column {error.colno}") from None
    except RecursionError:
        raise ApiError(400, "malformed JSON body: nested too deeply") from None
    except ValueError:  # Python refuses to convert integers of more digits than its limit (DoS guard)
        raise ApiError(
            400, f"malformed JSON body: a number has more than {sys.get_int_max_str_digits()} digits"
        ) from None
    if not isinstance(value, dict):
        raise ApiError(400, "JSON body must be an object, e.g. {\"q\": \"Hola\", \"source\": \"es\", \"target\": \"en\"}")
    _check_unicode(value)
    return value


def _check_unicode(value: Any) -> None:
    """Refuse strings that cannot be encoded (JSON allows escapes of unpaired surrogates)."""
    strings = [value] if isinstance(value, str) else []
    if isinstance(value, dict):
        strings = list(value.keys())
        for item in value.values():
            _check_unicode(item)
    elif isinstance(value, list):
        for item in value:
            _check_unicode(item)
    for string in strings:
        try:
            string.encode("utf-8")
        except UnicodeEncodeError:
            raise ApiError(400, "request contains invalid Unicode (an unpaired surrogate escape)") from None


async def _parse_form(request: Request, body: bytes) -> dict[str, Any]:
    if request.headers.get("content-type", "").lower().startswith("application/x-www-form-urlencoded"):
        pairs = _parse_urlencoded(body)
    else:
        pairs = await _parse_multipart(request, body)
    return _form_fields(pairs)


def _form_fields(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name in dict.fromkeys(name for name, _ in pairs):
        values = [value for key, value in pairs if key == name]
        if any(isinstance(value, UploadFile) for value in values):
            raise ApiError(400, f"field '{name}' must be text, not a file")
        if name == "q":
            fields[name] = values[0] if len(values) == 1 else list(values)
        elif values[0] != "":  # empty form fields count as absent (clients send api_key="")
            fields[name] = values[0]
    _check_unicode(fields)
    return fields


def _parse_urlencoded(body: bytes) -> list[tuple[str, str]]:
    """Strict, unlike most parsers: invalid UTF-8, raw or percent-encoded, is an error, not U+FFFD."""
    try:
        return urllib.parse.parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, errors="strict", max_num_fields=MAX_FORM_FIELDS
        )
    except UnicodeDecodeError:
        raise ApiError(400, "form body or query string is not valid UTF-8") from None
    except ValueError as error:  # too many fields
        raise ApiError(400, f"malformed form body: {error}") from None


async def _parse_multipart(request: Request, body: bytes) -> list[tuple[str, Any]]:
    async def replay():
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_fields=MAX_FORM_FIELDS)
    except Exception as error:  # malformed multipart: boundaries, headers, limits
        detail = getattr(error, "detail", None) or str(error) or type(error).__name__
        raise ApiError(400, f"malformed form body: {detail}") from None
    items = list(form.multi_items())
    # Starlette decodes a text part that is not UTF-8 as Latin-1 without a word. Without file parts
    # (refused anyway) the whole body is text fields and ASCII framing, so it must be valid UTF-8.
    if not any(isinstance(value, UploadFile) for _, value in items):
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ApiError(400, f"form body is not valid UTF-8 (byte {error.start})") from None
    return items


def validate(model: type[BaseModel], fields: dict[str, Any]):
    """The request object, or a 400 naming the first bad field (all of them in `detail`)."""
    try:
        return model.model_validate(fields)
    except ValidationError as error:
        errors = error.errors(include_url=False, include_context=False, include_input=False)
        raise ApiError(400, validation_summary(errors), detail=errors) from None
