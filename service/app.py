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
from carousel.service.access import ApiKeys, RateLimiter, retry_after_header
from carousel.service.errors import ApiError, SafeJSONResponse, error_response, install_error_handlers
from carousel.service.languages import language_name, shared_identifier, warm_up
from carousel.service.database import Database
from carousel.service.files import install_file_routes
from carousel.service.metrics import MetricsMiddleware, ServiceMetrics
from carousel.service.pages import install_pages
from carousel.service.suggest import install_suggest_route
from carousel.service.registry import ModelRegistry
from carousel.service.requests import DetectRequest, TranslateRequest, body_limit, read_fields, validate
from carousel.service.responses import DetectedLanguage, Health, Language, ModelEntry, Ready, TranslateAnswer, answers
from carousel.service.settings import ServiceSettings

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
SHUTDOWN_WORKERS_SECONDS = 5.0  # after the grace period: the batches in hand finish, or the process exits anyway
# The web page loads only its own script and style and calls only this server; no site may frame it.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
}


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


def _disconnection(request: Request):
    """An awaitable that finishes when the client disconnects (the body has been read by then)."""

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    return disconnected


def create_app(settings: ServiceSettings, registry: ModelRegistry | None = None) -> FastAPI:
    registry = registry if registry is not None else ModelRegistry(settings)
    metrics = ServiceMetrics(registry.queue_depths)
    database = Database(settings.database) if settings.database is not None else None
    keys = ApiKeys(settings.api_keys, database)
    limiter = RateLimiter(settings.rate_limit_per_minute)
    key_failures = RateLimiter(settings.key_failures_per_minute)  # failed key attempts per client address
    stopping = connections.Stopping()
    max_body = body_limit(settings.max_chars)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        stopping.bind(asyncio.get_running_loop())
        registry.start(metrics.batch_observer)
        threading.Thread(target=warm_up, name="language-models", daemon=True).start()
        yield
        # Uvicorn has finished (or, after its grace period, cancelled) the requests in flight: the
        # queues drop what is left and their workers stop after the batch in hand (small: one slice each).
        app.state.workers_stopped = await asyncio.to_thread(registry.close, SHUTDOWN_WORKERS_SECONDS)

    app = FastAPI(
        title="carousel",
        version=_version(),
        description="Recurrent neural machine translation with a LibreTranslate-compatible API.",
        lifespan=lifespan,
        docs_url=None,  # served offline by service/pages.py
        redoc_url=None,
    )
    app.state.settings, app.state.registry, app.state.metrics = settings, registry, metrics
    app.state.stopping, app.state.workers_stopped = stopping, None
    install_error_handlers(app)
    connections.install(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"], allow_headers=["*"],
            expose_headers=["Retry-After"],  # browser code may read when to retry a 429 or 503
        )
    app.add_middleware(connections.ConnectionGuard, body_timeout=settings.body_timeout_seconds, stopping=stopping)
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # outermost: counts every answer

    def admit(fields: dict, request: Request) -> None:
        """403 without a valid key (when keys are configured), 429 over the rate limit."""
        key = fields.get("api_key")
        if keys.required:
            address = request.client.host if request.client else "unknown"
            if not isinstance(key, str) or not key:
                raise ApiError(403, "an API key is required: send it in the api_key field")
            if not keys.valid(key):
                wait = key_failures.acquire(f"address:{address}")  # guessing keys is rate limited
                if wait:
                    raise ApiError(429, "too many invalid API keys from this address; retry later",
                                   headers=retry_after_header(wait))
                raise ApiError(403, "invalid API key")
            client = f"key:{key}"
            keys.check_limits(key, fields)  # a database key's own limits
        else:
            client = f"address:{request.client.host if request.client else 'unknown'}"
        wait = limiter.acquire(client)
        if wait:
            raise ApiError(
                429,
                f"rate limit of {settings.rate_limit_per_minute} requests per minute exceeded",
                headers=retry_after_header(wait),
            )

    @app.post(
        "/translate",
        summary="Translate text",
        openapi_extra={"requestBody": _body_schema(TranslateRequest)},
        responses=answers(TranslateAnswer, 400, 403, 413, 422, 429, 503, 504),
    )
    async def translate(request: Request):
        fields = await read_fields(request, max_body)
        admit(fields, request)
        body = validate(TranslateRequest, fields)
        try:
            answer = await translation.translate(body, settings, registry, _disconnection(request))
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
        admit(fields, request)
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

    @app.get("/ready", summary="Readiness: 200 once models are loaded", responses=answers(Ready, 503))
    async def ready():
        if not registry.ready:
            headers = retry_after_header(translation.RETRY_AFTER_LOADING) if registry.loading else None
            return error_response(503, registry.not_ready_reason(), headers)
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

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html", media_type="text/html", headers=PAGE_HEADERS)

    install_pages(app, settings, registry, lambda: keys.required)
    install_file_routes(app, settings, registry, admit)
    install_suggest_route(app, settings, registry, database, admit, max_body)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
