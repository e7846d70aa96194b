"""Every error leaves the service as JSON `{"error": "..."}` with the status of the API contract.

Handlers cover our own `ApiError`, Starlette's HTTP errors (404, 405), FastAPI's validation errors,
and, as a last resort, anything unexpected: logged with its traceback and answered with a JSON 500.
"""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An answer other than 200: status, a message naming the problem, optional headers and detail."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None, detail=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.detail = detail


class SafeJSONResponse(JSONResponse):
    """JSON that can always be encoded: an unpaired surrogate from the input becomes a \\u escape."""

    def render(self, content) -> bytes:
        return json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode(
            "utf-8", "backslashreplace"
        )


def error_response(status: int, message: str, headers: dict[str, str] | None = None, detail=None) -> JSONResponse:
    body = {"error": message}
    if detail is not None:
        body["detail"] = detail
    return SafeJSONResponse(body, status_code=status, headers=headers)


def validation_summary(errors: list[dict]) -> str:
    """One line: the missing fields, or else the first invalid one ("invalid field 'q': ...")."""
    if not errors:
        return "invalid request"
    missing = [_location(e) for e in errors if e.get("type") == "missing"]
    if len(missing) == len(errors):
        return f"missing field{'s' if len(missing) > 1 else ''} {', '.join(repr(m) for m in missing)}"
    first = next(e for e in errors if e.get("type") != "missing")
    return f"invalid field '{_location(first)}': {first.get('msg', 'invalid value')}"


def _location(error: dict) -> str:
    return ".".join(str(part) for part in error.get("loc", ()) if part not in ("body", "query"))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError):
        return error_response(error.status, error.message, error.headers, error.detail)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException):
        return error_response(error.status_code, str(error.detail), getattr(error, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError):
        errors = [{k: v for k, v in e.items() if k in ("type", "loc", "msg")} for e in error.errors()]
        return error_response(400, validation_summary(errors), detail=errors)

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, error: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal server error (logged on the server)")
