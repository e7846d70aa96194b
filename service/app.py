"""The FastAPI application: routes of the HTTP contract (docs/API.md), access checks, metrics, web page.

`create_app(settings)` builds everything from one `ServiceSettings`; models load in the background when
the app starts (see service/registry.py) and their queues drain when it stops.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST

from carousel.service import connections, translation
from carousel.service.access import AccessPolicy, redact_keys_in_access_log, retry_after_header
from carousel.service.counters import Counters
from carousel.service.document_process import DocumentProcesses
from carousel.service.errors import SafeJSONResponse, error_response, install_error_handlers
from carousel.service.languages import language_name, shared_identifier, warm_up
from carousel.service.database import Database
from carousel.service.files import install_file_routes
from carousel.service.memory import TranslationMemory
from carousel.service.glossaries import install_glossary_routes, request_glossary
from carousel.service.metrics import MetricsMiddleware, ServiceMetrics
from carousel.service.pages import PAGE_HEADERS, install_pages
from carousel.service.prefix import UrlPrefix
from carousel.service.suggest import install_suggest_route
from carousel.service.registry import ModelRegistry
from carousel.service.requests import DetectRequest, TranslateRequest, body_limit, read_fields, validate
from carousel.service.responses import DetectedLanguage, Health, Language, ModelEntry, Ready, TranslateAnswer, answers
from carousel.service.settings import ServiceSettings

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
SHUTDOWN_WORKERS_SECONDS = 5.0  # after the grace period: the batches in hand finish, or the process exits anyway
RETRY_AFTER_DEPENDENCY = 5  # seconds a prober waits while the database, file store or limits storage does not work


def _body_schema(request_model) -> dict:
    """The request body of a route that reads its fields itself: the same fields in JSON and in forms."""
    schema = request_model.model_json_schema()
    form = _without_null(schema)
    return {
        "required": True,
        "content": {
            "application/json": {"schema": schema},
            "application/x-www-form-urlencoded": {"schema": form},
            "multipart/form-data": {"schema": form},
        },
    }


def _without_null(schema: dict) -> dict:
    """A form cannot send null (an optional field is left out instead): drop null from the fields' types."""
    properties = {}
    for name, field in schema["properties"].items():
        options = [option for option in field.get("anyOf", []) if option.get("type") != "null"]
        if len(options) == 1:
            field = {key: value for key, value in field.items() if key != "anyOf"} | options[0]
        properties[name] = field
    return {**schema, "properties": properties}


def _version() -> str:
    try:
        return version("carousel")
    except PackageNotFoundError:
        return "0"


def create_app(settings: ServiceSettings, registry: ModelRegistry | None = None) -> FastAPI:
    registry = registry if registry is not None else ModelRegistry(settings)
    metrics = ServiceMetrics(registry.queue_depths)
    database = Database(settings.database, create=False, timeout=settings.database_timeout_seconds) \
        if settings.database is not None else None
    counters = Counters(settings.limits_storage, timeout=settings.limits_timeout_seconds)
    access = AccessPolicy(settings, database, counters)
    access.open_database()  # a database that cannot be opened: 503 where it is needed, and on /ready
    memory = TranslationMemory(database) if settings.memory and database is not None else None
    documents = DocumentProcesses(settings.file_workers)
    stopping = connections.Stopping()
    max_body = body_limit(settings.max_chars)
    redact_keys_in_access_log()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        stopping.bind(asyncio.get_running_loop())
        registry.start(metrics.batch_observer)
        threading.Thread(target=warm_up, name="language-models", daemon=True).start()
        if settings.files_translation:
            documents.warm_up()
        yield
        documents.stop()  # a document being read or written is abandoned, whatever it is doing
        # Uvicorn has finished (or, after its grace period, cancelled) the requests in flight: the
        # queues drop what is left and their workers stop after the batch in hand (small: one slice each).
        app.state.workers_stopped = await asyncio.to_thread(registry.close, SHUTDOWN_WORKERS_SECONDS)
        app.state.file_store.close()  # the files nobody downloaded go with a directory the server made itself

    app = FastAPI(
        title="carousel",
        version=_version(),
        description="Recurrent neural machine translation with a LibreTranslate-compatible API.",
        lifespan=lifespan,
        docs_url=None,  # served offline by service/pages.py
        redoc_url=None,
    )
    app.state.settings, app.state.registry, app.state.metrics = settings, registry, metrics
    app.state.access, app.state.documents = access, documents
    app.state.stopping, app.state.workers_stopped = stopping, None
    install_error_handlers(app)
    connections.install(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"], allow_headers=["*"],
            expose_headers=["Retry-After"],  # browser code may read when to retry a 429 or 503
        )
    app.add_middleware(connections.ConnectionGuard, body_timeout=settings.body_timeout_seconds, stopping=stopping)
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # counts every answer under the prefix
    if settings.url_prefix:
        app.add_middleware(UrlPrefix, prefix=settings.url_prefix)  # outermost

    @app.post(
        "/translate",
        summary="Translate text",
        openapi_extra={"requestBody": _body_schema(TranslateRequest)},
        responses=answers(TranslateAnswer, 400, 403, 413, 422, 429, 503, 504),
    )
    async def translate(request: Request):
        fields = await read_fields(request, max_body)
        await access.admit(fields, request)
        body = validate(TranslateRequest, fields)
        glossary = await request_glossary(body.glossary, body.source.strip().lower(), body.target.strip().lower(),
                                          app.state.glossaries, access)
        try:
            answer = await translation.translate(body, settings, registry, translation.disconnection(request),
                                                 settings.request_timeout_seconds, memory, glossary)
        except translation.ClientGone:
            return Response(status_code=499)  # nobody reads it; logged and counted as such
        return SafeJSONResponse(answer)

    @app.get(
        "/languages", summary="Languages and the targets each translates to", responses=answers(list[Language])
    )
    async def languages():
        return [
            {"code": code, "name": language_name(code), "targets": targets}
            for code, targets in registry.languages().items()
        ]

    @app.post(
        "/detect",
        summary="Detect the language of a text",
        openapi_extra={"requestBody": _body_schema(DetectRequest)},
        responses=answers(list[DetectedLanguage], 400, 403, 413, 429, 503),
    )
    async def detect(request: Request):
        fields = await read_fields(request, max_body)
        await access.admit(fields, request)
        body = validate(DetectRequest, fields)
        translation.check_limits([body.q], settings)
        translation.require_ready(registry)
        ranked = await asyncio.to_thread(shared_identifier().report, body.q)  # any language, served or not
        if ranked[0].confidence == 0:  # no letters, no evidence: the server's languages, none favoured
            return [{"language": code, "confidence": 0.0} for code in registry.languages()]
        return [{"language": d.language, "confidence": d.confidence} for d in ranked]

    @app.get("/health", summary="Liveness", responses=answers(Health))
    async def health():
        return {"status": "ok"}

    @app.get("/ready", summary="Readiness: 200 once models are loaded, while the database, file store and "
             "shared limits work",
             responses=answers(Ready, 503))
    async def ready():
        if not registry.ready:
            headers = retry_after_header(translation.RETRY_AFTER_LOADING) if registry.loading else None
            return error_response(503, registry.not_ready_reason(), headers)
        dependencies = [access.health, app.state.file_store.health, counters.health if counters.shared else None]
        known = [(d.name, d.problem) for d in dependencies if d is not None]
        problems = [f"{name}: {problem}" for name, problem in known if problem is not None]
        if problems:  # known from the last use or a background probe: a probe never waits here
            return error_response(503, "; ".join(problems), retry_after_header(RETRY_AFTER_DEPENDENCY))
        answer = {"status": "ready", "models": [m.name for m in registry.models]}
        if registry.failures:
            answer["failed"] = registry.failures
        return answer

    @app.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=PlainTextResponse,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    async def prometheus_metrics():
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/models", summary="Model cards of the loaded models", responses=answers(list[ModelEntry]))
    async def models():
        return [
            {"name": m.name, "source": m.src_lang, "target": m.tgt_lang, "domain": m.domain, "card": m.card}
            for m in registry.models
        ]

    if settings.web_ui:
        @app.get("/", include_in_schema=False)
        async def page():
            return FileResponse(STATIC / "index.html", media_type="text/html", headers=PAGE_HEADERS)

    install_pages(app, settings, registry, lambda: access.required)
    install_file_routes(app, settings, registry, access, documents, memory)
    install_suggest_route(app, settings, registry, database, access, max_body, memory)
    install_glossary_routes(app, database, access)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
