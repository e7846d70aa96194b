"""File translation as LibreTranslate offers it: `POST /translate_file`, then `GET /download_file/{name}`.

    curl -F file=@messages.pot -F source=es -F target=en localhost:5000/translate_file
    {"translatedFileUrl": "http://localhost:5000/download_file/3f…9c.po"}

The upload (multipart field `file`, plus `source`, `target`, `api_key` from the form, the query string or
`Authorization: Bearer`) is read with a size cap (413 above `max_file_bytes`), parsed by
carousel.formats.documents in a child process (service/document_process.py; format from the file name's
extension: 400 for others), its texts translated through the same batching queues as `/translate` (in
requests no larger than the text limits), and the result kept in the file store (service/store.py) until
downloaded or expired.

One budget per file: its texts, characters and sentences (413 above `max_file_*`), the requests it
counts as for the rate limits and its key's characters a request (service/access.py), and
`file_timeout_seconds` for all of it (504). A client that leaves stops the work: the document's process
is killed and the queues drop the sentences not yet translated. A full store is 507.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict
from fastapi.responses import FileResponse, Response
from starlette.datastructures import UploadFile

from carousel.formats.documents import (
    MEDIA_TYPES, DocumentError, DocumentLimits, DocumentTooLarge, document_format, supported_extensions,
)
from carousel.service import translation
from carousel.service.access import AccessPolicy, Admission, retry_after_header
from carousel.service.document_process import DocumentJob, DocumentProcesses, ShuttingDown, read_texts, render_texts
from carousel.service.errors import ApiError, SafeJSONResponse
from carousel.service.memory import TranslationMemory
from carousel.service.glossaries import request_glossary
from carousel.service.registry import ModelRegistry
from carousel.service.requests import (
    BODY_OVERHEAD, TranslateRequest, bearer_key, query_fields, read_capped_body, validate,
)
from carousel.service.responses import ErrorAnswer, answers
from carousel.service.settings import ServiceSettings
from carousel.service.store import FileStore, StoreFull, StoreUnavailable

RETRY_AFTER_STORE = 30  # seconds a client waits when the store's disk cannot take the file
# A download is the client's own text, not this server's page: never rendered or run in the server's origin.
DOWNLOAD_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; sandbox",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
}


class TranslateFileAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    translatedFileUrl: str


def file_store(settings: ServiceSettings) -> FileStore:
    """The configured directory (`CAROUSEL_FILES_DIR`, maybe shared by replicas), else one of the server's own."""
    bounds = dict(max_files=settings.max_stored_files, max_bytes=settings.max_stored_bytes,
                  ttl=settings.file_ttl_seconds, client_files=settings.max_stored_files_per_client,
                  client_bytes=settings.max_stored_bytes_per_client, min_free_bytes=settings.max_file_bytes)
    if settings.files_dir is not None:
        return FileStore(settings.files_dir, **bounds)
    return FileStore.temporary(**bounds)


def document_limits(settings: ServiceSettings) -> DocumentLimits:
    return DocumentLimits(max_texts=settings.max_file_texts, max_chars=settings.max_file_chars,
                          parse_seconds=settings.file_parse_seconds)


def install_file_routes(app: FastAPI, settings: ServiceSettings, registry: ModelRegistry, access: AccessPolicy,
                        documents: DocumentProcesses, memory: TranslationMemory | None = None) -> FileStore:
    store = file_store(settings)
    app.state.file_store = store

    @app.post(
        "/translate_file",
        summary="Translate a file (text, HTML, SubRip, gettext, .docx, .odt, .pptx, .epub)",
        openapi_extra={"requestBody": _upload_schema()},
        responses=answers(TranslateFileAnswer, 400, 403, 413, 429, 503, 504, 507),
    )
    async def translate_file(request: Request):
        if not settings.files_translation:
            raise ApiError(403, "file translation is disabled on this server")
        fields, upload = await _read_upload(request, settings.max_file_bytes)
        admission = await access.admit(fields, request)
        if upload is None:
            raise ApiError(400, "missing field 'file' (a multipart/form-data file part)")
        missing = [name for name in ("source", "target") if not fields.get(name)]
        if missing:
            raise ApiError(400, f"missing field{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}")
        name = upload.filename or ""
        try:
            job = DocumentJob(document_format(name), await upload.read(), fields["source"], fields["target"],
                              document_limits(settings))
        except DocumentError as error:
            raise ApiError(400, str(error)) from None
        glossary = await request_glossary(fields.get("glossary"), fields["source"].strip().lower(),
                                          fields["target"].strip().lower(), request.app.state.glossaries, access)
        work = _translate_file(job, fields, admission, settings, registry, access, documents, memory, glossary)
        try:
            output = await translation.unless_gone(work, translation.disconnection(request))
        except translation.ClientGone:
            return Response(status_code=499)  # nobody reads it; the document's process and queued work are gone
        extension = "po" if job.fmt == "po" else Path(name).suffix.lstrip(".").lower()
        stored = await asyncio.to_thread(_store, store, output, extension, Path(name).stem, admission.client)
        return SafeJSONResponse({"translatedFileUrl": f"{str(request.base_url).rstrip('/')}/download_file/{stored}"})

    @app.get(
        "/download_file/{name}",
        summary="Download a translated file",
        responses={
            200: {"content": {"application/octet-stream": {}}, "description": "the translated file"},
            404: {"model": ErrorAnswer, "description": "unknown or expired file name"},
            503: {"model": ErrorAnswer, "description": "the file store cannot be read (Retry-After header)"},
        },
    )
    async def download_file(name: str):
        try:
            path = store.path(name)
        except StoreUnavailable as error:
            raise ApiError(503, str(error), headers=retry_after_header(RETRY_AFTER_STORE)) from None
        if path is None:
            raise ApiError(404, "no such file (file names come from /translate_file; files expire)")
        fmt = document_format(path.name)
        return FileResponse(path, media_type=MEDIA_TYPES[fmt], filename=store.download_name(path.name),
                            headers=DOWNLOAD_HEADERS)

    return store


async def _translate_file(job: DocumentJob, fields: dict, admission: Admission, settings: ServiceSettings,
                          registry: ModelRegistry, access: AccessPolicy, documents: DocumentProcesses,
                          memory: TranslationMemory | None = None, glossary=None) -> bytes:
    """The translated file, within the file's budget of texts, sentences, requests and time."""
    seconds = settings.file_timeout_seconds
    try:
        async with asyncio.timeout(seconds):
            texts, sentences = await _in_process(documents, settings, read_texts, job)
            total = sum(sentences.values())
            if total > settings.max_file_sentences:
                raise ApiError(413, f"the file holds {total} sentences; the limit is {settings.max_file_sentences}")
            access.charge_file(admission, sum(len(text) for text in texts), total)
            translations = await _translate_texts(texts, sentences, fields, settings, registry, memory, glossary)
            return await _in_process(documents, settings, render_texts, job, translations)
    except TimeoutError:
        raise ApiError(504, f"the file took longer than {seconds:g} seconds to translate") from None


async def _in_process(documents: DocumentProcesses, settings: ServiceSettings, function, *arguments):
    try:
        return await documents.run(function, arguments, settings.file_parse_seconds, settings.file_memory_bytes)
    except DocumentTooLarge as error:
        raise ApiError(413, str(error)) from None
    except DocumentError as error:
        raise ApiError(400, str(error)) from None
    except ShuttingDown:
        raise ApiError(503, "the server is shutting down; send the file again",
                       headers={"Connection": "close", "Retry-After": "5"}) from None


def _store(store: FileStore, output: bytes, extension: str, stem: str, client: str) -> str:
    try:
        return store.put(output, extension, stem=stem, client=client)
    except StoreFull as error:
        headers = retry_after_header(error.retry_after) if error.retry_after else None
        raise ApiError(507 if error.retry_after else 413, f"{error}; try again later", headers=headers) from None
    except StoreUnavailable as error:
        status = 507 if error.no_space else 503
        raise ApiError(status, str(error), headers=retry_after_header(RETRY_AFTER_STORE)) from None


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
                        "glossary": {"type": "string", "description": "a stored glossary's id or name, or a JSON "
                                     "list of [source, target] terms (service/glossaries.py)"},
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


async def _translate_texts(texts: list[str], sentences: dict[str, int], fields: dict, settings: ServiceSettings,
                           registry: ModelRegistry, memory: TranslationMemory | None = None, glossary=None) -> list[str]:
    """Each text's translation, through /translate's pipeline, in requests within its limits (the file's
    time budget, around this, bounds them all together)."""
    translated: dict[str, str] = {}
    for chunk in _chunks(sentences, settings):
        body = validate(TranslateRequest, {"q": chunk, "source": fields["source"], "target": fields["target"]})
        answer = await translation.translate(body, settings, registry, translation.never, timeout=None,
                                             memory=memory, glossary=glossary)
        translated.update(zip(chunk, answer["translatedText"]))
    return [translated[text] for text in texts]


def _chunks(sentences: dict[str, int], settings: ServiceSettings) -> list[list[str]]:
    """The distinct texts (with their sentence counts) in requests of at most max_chars characters,
    max_batch_items strings and max_sentences sentences."""
    chunks: list[list[str]] = []
    current: list[str] = []
    size = count = 0
    for text, text_sentences in sentences.items():
        if len(text) > settings.max_chars or text_sentences > settings.max_sentences:
            raise ApiError(413, f"a paragraph of the file has {len(text)} characters and {text_sentences} sentences; "
                                f"the limits are {settings.max_chars} and {settings.max_sentences}")
        full = size + len(text) > settings.max_chars or count + text_sentences > settings.max_sentences
        if current and (full or len(current) == settings.max_batch_items):
            chunks.append(current)
            current, size, count = [], 0, 0
        current.append(text)
        size, count = size + len(text), count + text_sentences
    if current:
        chunks.append(current)
    return chunks
