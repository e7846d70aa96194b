"""File translation as LibreTranslate offers it: `POST /translate_file`, then `GET /download_file/{name}`.

    curl -F file=@messages.pot -F source=es -F target=en localhost:5000/translate_file
    {"translatedFileUrl": "http://localhost:5000/download_file/3f…9c.po"}

The upload (multipart field `file`, plus `source`, `target`, `api_key` from the form, the query string or
`Authorization: Bearer`) is read with a size cap (413 above `max_file_bytes`), parsed by
carousel.documents (format from the file name's extension: 400 for others), its texts translated through
the same batching queues as `/translate` (in requests no larger than the text limits), and the result
kept in the file store (service/store.py) until downloaded or expired; a full store answers 429.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any, Callable

from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict
from fastapi.responses import FileResponse
from starlette.datastructures import UploadFile

from carousel.documents import MEDIA_TYPES, DocumentError, document_format, read_document, supported_extensions
from carousel.service import translation
from carousel.service.access import retry_after_header
from carousel.service.errors import ApiError, SafeJSONResponse
from carousel.service.registry import ModelRegistry
from carousel.service.requests import (
    BODY_OVERHEAD, TranslateRequest, bearer_key, query_fields, read_capped_body, validate,
)
from carousel.service.responses import ErrorAnswer, answers
from carousel.service.settings import ServiceSettings
from carousel.service.store import FileStore, StoreFull

Admit = Callable[[dict, Request], None]


class TranslateFileAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    translatedFileUrl: str


def file_store(settings: ServiceSettings) -> FileStore:
    directory = settings.files_dir or Path(tempfile.mkdtemp(prefix="carousel-files-"))
    return FileStore(directory, settings.max_stored_files, settings.max_stored_bytes, settings.file_ttl_seconds)


def install_file_routes(app: FastAPI, settings: ServiceSettings, registry: ModelRegistry, admit: Admit) -> FileStore:
    store = file_store(settings)
    app.state.file_store = store

    @app.post(
        "/translate_file",
        summary="Translate a file (text, HTML, SubRip, gettext, .docx, .odt)",
        openapi_extra={"requestBody": _upload_schema()},
        responses=answers(TranslateFileAnswer, 400, 403, 413, 429, 503, 504),
    )
    async def translate_file(request: Request):
        if not settings.files_translation:
            raise ApiError(403, "file translation is disabled on this server")
        fields, upload = await _read_upload(request, settings.max_file_bytes)
        admit(fields, request)
        if upload is None:
            raise ApiError(400, "missing field 'file' (a multipart/form-data file part)")
        missing = [name for name in ("source", "target") if not fields.get(name)]
        if missing:
            raise ApiError(400, f"missing field{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}")
        name = upload.filename or ""
        data = await upload.read()
        try:
            fmt = document_format(name)
            document = await asyncio.to_thread(
                read_document, fmt, data, fields["source"], fields["target"]
            )
        except DocumentError as error:
            raise ApiError(400, str(error)) from None
        translations = await _translate_texts(document.texts, fields, settings, registry, request)
        output = await asyncio.to_thread(document.render, translations)
        extension = "po" if fmt == "po" else Path(name).suffix.lstrip(".").lower()
        try:
            stored = store.put(output, extension, stem=Path(name).stem)
        except StoreFull as error:
            headers = retry_after_header(error.retry_after) if error.retry_after else None
            raise ApiError(429 if error.retry_after else 413, f"{error}; try again later", headers=headers) from None
        return SafeJSONResponse({"translatedFileUrl": f"{str(request.base_url).rstrip('/')}/download_file/{stored}"})

    @app.get(
        "/download_file/{name}",
        summary="Download a translated file",
        responses={
            200: {"content": {"application/octet-stream": {}}, "description": "the translated file"},
            404: {"model": ErrorAnswer, "description": "unknown or expired file name"},
        },
    )
    async def download_file(name: str):
        path = store.path(name)
        if path is None:
            raise ApiError(404, "no such file (file names come from /translate_file; files expire)")
        fmt = document_format(path.name)
        return FileResponse(path, media_type=MEDIA_TYPES[fmt], filename=store.download_name(path.name))

    return store


def _upload_schema() -> dict:
    return {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "source", "target"],
                    "properties": {
                        "file": {"type": "string", "format": "binary",
                                 "description": f"one of {', '.join(supported_extensions())}"},
                        "source": {"type": "string"},
                        "target": {"type": "string"},
                        "api_key": {"type": "string"},
                    },
                }
            }
        },
    }


async def _read_upload(request: Request, max_file_bytes: int) -> tuple[dict[str, Any], UploadFile | None]:
    """(text fields, the `file` part) of a multipart upload, read with a size cap (413 above it)."""
    body = await read_capped_body(request, max_file_bytes + BODY_OVERHEAD, what="upload (file and form fields)")
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "multipart/form-data":
        raise ApiError(400, f"send the file as multipart/form-data (got {media_type or 'no content type'})")

    async def replay():
        return {"type": "http.request", "body": bytes(body), "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=1, max_fields=100)
    except Exception as error:  # malformed multipart: boundaries, headers, too many parts
        detail = getattr(error, "detail", None) or str(error) or type(error).__name__
        raise ApiError(400, f"malformed form body: {detail}") from None
    fields = query_fields(request)
    upload = None
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            if key != "file":
                raise ApiError(400, f"unexpected file part {key!r}: send the file as 'file'")
            upload = value
        elif value != "":
            fields[key] = value
    if not fields.get("api_key") and bearer_key(request):
        fields["api_key"] = bearer_key(request)
    if upload is not None and upload.size is not None and upload.size > max_file_bytes:
        raise ApiError(413, f"the file of {upload.size} bytes is over the limit of {max_file_bytes} bytes")
    return fields, upload


async def _translate_texts(
    texts: list[str], fields: dict, settings: ServiceSettings, registry: ModelRegistry, request: Request
) -> list[str]:
    """Each text's translation, through /translate's pipeline, in requests within its limits."""
    distinct = list(dict.fromkeys(texts))
    translated: dict[str, str] = {}
    for chunk in _chunks(distinct, settings.max_chars, settings.max_batch_items):
        body = validate(TranslateRequest, {"q": chunk, "source": fields["source"], "target": fields["target"]})

        async def never() -> None:  # the upload has been read: a disconnect cannot be seen here
            await asyncio.Event().wait()

        answer = await translation.translate(body, settings, registry, never)
        translated.update(zip(chunk, answer["translatedText"]))
    return [translated[text] for text in texts]


def _chunks(texts: list[str], max_chars: int, max_items: int) -> list[list[str]]:
    chunks: list[list[str]] = []
    current: list[str] = []
    size = 0
    for text in texts:
        if len(text) > max_chars:
            raise ApiError(413, f"a paragraph of the file has {len(text)} characters; the limit is {max_chars}")
        if current and (size + len(text) > max_chars or len(current) == max_items):
            chunks.append(current)
            current, size = [], 0
        current.append(text)
        size += len(text)
    if current:
        chunks.append(current)
    return chunks
