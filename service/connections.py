"""Connections that hold the server without doing anything: timeouts for headers and bodies, departures, shutdown.

- Headers: `header_timeout_protocol(seconds)` is uvicorn's h11 protocol with a deadline for a request's
  line and headers, from the connection's start or from the first byte of the next request on a
  keep-alive connection; past it the connection is closed. (uvicorn's own keep-alive timeout only
  covers a connection that sends nothing at all after a response.)
- Bodies: `ConnectionGuard` gives a request's whole body `body_timeout` seconds from the first read
  (408 after that), and once the server is stopping (SIGTERM) a body still being uploaded gets one
  more second at most (503): a stalled upload cannot stretch the shutdown.
- Shutdown: a request still running when uvicorn's grace period ends (it cancels it) is answered 503.
- Departures: a client that leaves while its body is being read is answered 499 (nobody reads it),
  counted as such in the metrics and logged in one line, not as a 500 with tracebacks.

The cap on concurrent connections is uvicorn's `limit_concurrency` (service setting `max_connections`;
carousel/commands/serve.py).
"""

from __future__ import annotations

import asyncio
import logging

import h11
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.requests import ClientDisconnect
from uvicorn.protocols.http.h11_impl import H11Protocol

from carousel.service.errors import error_response

log = logging.getLogger(__name__)

STOPPING_BODY_SECONDS = 1.0  # how long a body still being uploaded may take once the server is stopping
CLIENT_CLOSED = 499  # nginx's status for "client closed the request": nothing was sent


class BodyTimeout(Exception):
    """The request body did not arrive in time (408), or the server stopped while it was arriving (503)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class Stopping:
    """Set when the server begins to stop (uvicorn's signal handler), from any thread or a signal handler."""

    def __init__(self):
        self.event = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def set(self) -> None:
        if self._loop is None:
            return
        try:
            self._loop.call_soon_threadsafe(self.event.set)
        except RuntimeError:  # the loop is closed
            pass

    @property
    def is_set(self) -> bool:
        return self.event.is_set()


class ConnectionGuard:
    """Pure ASGI middleware: a deadline for the request body, shortened when the server stops."""

    def __init__(self, app, body_timeout: float, stopping: Stopping):
        self.app = app
        self.body_timeout = body_timeout
        self.stopping = stopping

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline: list[float] = []  # set at the first read
        body_done = False

        async def guarded_receive():
            nonlocal body_done
            if body_done:
                return await receive()  # after the body: only a disconnection can come (watched by requests)
            loop = asyncio.get_running_loop()
            if not deadline:
                deadline.append(loop.time() + self.body_timeout)
            message = await self._before(receive(), deadline, loop)
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        started = False

        async def watched_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, guarded_receive, watched_send)
        except asyncio.CancelledError:
            if not self.stopping.is_set:
                raise
            # uvicorn cancels what still runs when the shutdown grace period is over: say so, once.
            log.info("%s %s: cancelled at shutdown (503)", scope.get("method"), scope.get("path"))
            if not started:
                response = error_response(503, "the server is shutting down; send the request again",
                                          {"Connection": "close", "Retry-After": "5"})
                await response(scope, guarded_receive, send)

    async def _before(self, receiving, deadline: list[float], loop: asyncio.AbstractEventLoop):
        task = asyncio.ensure_future(receiving)
        stop = None if self.stopping.is_set else asyncio.ensure_future(self.stopping.event.wait())
        try:
            while True:
                waiting = {task} if stop is None else {task, stop}
                remaining = deadline[0] - loop.time()
                if remaining > 0:
                    done, _ = await asyncio.wait(waiting, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
                else:
                    done = set()
                if task in done:
                    return task.result()
                if stop is not None and stop in done:
                    stop = None
                    deadline[0] = min(deadline[0], loop.time() + STOPPING_BODY_SECONDS)
                    continue
                if self.stopping.is_set:
                    raise BodyTimeout(503, "the server is shutting down; send the request again")
                raise BodyTimeout(408, f"the request body did not arrive within {self.body_timeout:g} seconds")
        finally:
            if stop is not None:
                stop.cancel()
            if not task.done():
                task.cancel()


def install(app: FastAPI) -> None:
    """Answers for slow bodies and for clients that left during the upload."""

    @app.exception_handler(BodyTimeout)
    async def body_timeout(request: Request, error: BodyTimeout):
        log.info("%s %s from %s: %s", request.method, request.url.path, _client(request), error.message)
        return error_response(error.status, error.message, {"Connection": "close"})

    @app.exception_handler(ClientDisconnect)
    async def client_left(request: Request, error: ClientDisconnect):
        log.info("%s %s: client %s left before sending the whole request (499)", request.method,
                 request.url.path, _client(request))
        return Response(status_code=CLIENT_CLOSED)


def _client(request: Request) -> str:
    return f"{request.client.host}:{request.client.port}" if request.client else "unknown"


def header_timeout_protocol(seconds: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol, closing a connection whose request line and headers take longer than `seconds`."""

    class HeaderTimeoutProtocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is h11.IDLE:  # the request's head is not complete yet
                self._arm()
            else:
                self._disarm()

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            if self._header_timer is None and not self.transport.is_closing():
                self._header_timer = self.loop.call_later(seconds, self._too_slow)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _too_slow(self) -> None:
            self._header_timer = None
            idle = self.cycle is None or self.cycle.response_complete
            if idle and self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                prefix = "%s:%d - " % tuple(self.client) if self.client else ""
                self.logger.info("%sno complete request head within %g s: connection closed", prefix, seconds)
                self.transport.close()

    return HeaderTimeoutProtocol
