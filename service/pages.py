"""Routes for browsers: the API docs served from a Python package (no CDN), and `/frontend/settings`.

`/docs` is Swagger UI whose scripts and styles come from the `swagger-ui-py` package's static files
(Swagger UI 5, which reads OpenAPI 3.1), served at `/docs/assets/`, so the docs work on a machine
without internet access. ReDoc is not served: no maintained Python package ships it. Like the web page,
`/docs` may not be framed and loads scripts only from this server: its one inline script (which starts
Swagger UI) is allowed by its SHA-256 in the Content-Security-Policy, no other.

`/frontend/settings` answers what LibreTranslate's web page and clients ask before they translate:
the character limit, whether keys, suggestions and files are on, the supported file extensions, and
the languages the page starts with; and, an extension, which language pairs answer a per-sentence
confidence (calibrated models) and the threshold below which the server calls it low.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from typing import Callable

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict

from carousel.formats.documents import supported_extensions
from carousel.service.languages import language_name
from carousel.service.registry import ModelRegistry
from carousel.service.responses import answers
from carousel.service.settings import ServiceSettings

# The web page loads only its own script and style and calls only this server; no site may frame it.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
}


def swagger_ui_assets() -> Path:
    import swagger_ui  # swagger-ui-py: its static/ holds the Swagger UI distribution

    return Path(swagger_ui.__file__).parent / "static"


class _Language(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str
    name: str


class _Languages(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: _Language
    target: _Language


class _Pair(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str
    target: str


class _Confidence(BaseModel):
    model_config = ConfigDict(extra="forbid")
    threshold: float
    pairs: list[_Pair]


class FrontendSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    charLimit: int
    frontendTimeout: int
    apiKeys: bool
    keyRequired: bool
    suggestions: bool
    filesTranslation: bool
    supportedFilesFormat: list[str]
    language: _Languages
    confidence: _Confidence | None  # extension: None where no served model is calibrated


def install_pages(
    app: FastAPI, settings: ServiceSettings, registry: ModelRegistry, key_required: Callable[[], bool]
) -> None:
    app.mount("/docs/assets", StaticFiles(directory=swagger_ui_assets()), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request):
        root = request.scope.get("root_path", "")  # the url_prefix, if any
        page = get_swagger_ui_html(
            openapi_url=root + app.openapi_url,
            title=f"{app.title} — API",
            swagger_js_url=f"{root}/docs/assets/swagger-ui-bundle.js",
            swagger_css_url=f"{root}/docs/assets/swagger-ui.css",
            swagger_favicon_url=f"{root}/static/favicon.svg",
        )
        page.headers.update(docs_headers(page.body.decode("utf-8")))
        return page

    @app.get("/frontend/settings", summary="Settings for web pages and clients (LibreTranslate's shape)",
             responses=answers(FrontendSettings))
    async def frontend_settings():
        languages = registry.languages()
        source = settings.frontend_language_source
        if source != "auto" and languages and source not in languages:
            source = next(iter(languages))
        targets = sorted({t for code, ts in languages.items() if source in ("auto", code) for t in ts})
        target = settings.frontend_language_target
        if targets and target not in targets:
            target = targets[0]
        return {
            "charLimit": settings.max_chars,
            "frontendTimeout": settings.frontend_timeout_ms,
            "apiKeys": settings.database is not None,
            "keyRequired": key_required(),
            "suggestions": settings.suggestions and settings.database is not None,
            "filesTranslation": settings.files_translation,
            "supportedFilesFormat": supported_extensions() if settings.files_translation else [],
            "language": {
                "source": {"code": source, "name": "Auto Detect" if source == "auto" else language_name(source)},
                "target": {"code": target, "name": language_name(target)},
            },
            "confidence": _confidence(settings, registry),
        }


def docs_headers(page: str) -> dict[str, str]:
    """The web page's protective headers for Swagger UI: its inline scripts allowed by their hashes,
    inline styles allowed (Swagger UI sets style attributes)."""
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii") + "'"
        for script in re.findall(r"<script>(.*?)</script>", page, re.S)
    ]
    policy = (f"default-src 'self'; script-src 'self' {' '.join(hashes)}; style-src 'self' 'unsafe-inline'; "
              "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
    return {**PAGE_HEADERS, "Content-Security-Policy": policy}


def _confidence(settings: ServiceSettings, registry: ModelRegistry) -> dict | None:
    """The pairs whose translations come with a confidence (`return_confidence`), and what counts as low."""
    calibrated = dict.fromkeys((m.src_lang, m.tgt_lang) for m in registry.models if m.has_confidence)  # once a pair
    pairs = [{"source": source, "target": target} for source, target in calibrated]
    return {"threshold": settings.confidence_threshold, "pairs": pairs} if pairs else None
