"""`carousel serve`: the HTTP translation service.

    carousel serve                                  # models/ on 127.0.0.1:5000
    carousel serve --models-dir models --host 0.0.0.0 --port 8080 --api-key KEY --rate-limit 60

Every flag overrides the `CAROUSEL_*` environment variable of the same setting (service/settings.py).
SIGTERM or Ctrl-C stops taking connections and gives the requests in flight `--shutdown-grace`
seconds (default 20) to finish; bodies still being uploaded get one second. Requests still running
after that are cancelled, documents being read or written are abandoned (their processes killed), the
batching workers finish the batch in hand (one small slice per request) within 5 s, and the process
exits with status 0 -- at once, if a worker is still inside a translation. Whatever else may still run
(a thread the event loop waits for at exit), the process exits 0 at most `EXIT_SLACK_SECONDS` after that.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading

from carousel.errors import UserError
from carousel.model.precision import DEFAULT_QUANTIZATION, QUANTIZE_MODES

EXIT_SLACK_SECONDS = 5.0  # after the grace period and the workers' 5 s: the process is gone by then

# flag dest -> ServiceSettings field
_OVERRIDES = {
    "models_dir": "models_dir", "host": "host", "port": "port", "quantize": "quantize", "beam": "default_beam",
    "max_beam": "max_beam", "max_alternatives": "max_alternatives", "max_chars": "max_chars",
    "max_batch_items": "max_batch_items", "max_batch_tokens": "max_batch_tokens", "max_wait_ms": "max_wait_ms",
    "queue_size": "queue_size", "batch_workers": "batch_workers", "timeout": "request_timeout_seconds",
    "api_keys": "api_keys", "rate_limit": "rate_limit_per_minute", "cors_origins": "cors_origins",
    "log_level": "log_level", "max_sentences": "max_sentences", "max_source_tokens": "max_source_tokens",
    "slice_sentences": "slice_sentences", "header_timeout": "header_timeout_seconds",
    "body_timeout": "body_timeout_seconds", "keep_alive": "keep_alive_seconds", "max_connections": "max_connections",
    "shutdown_grace": "shutdown_grace_seconds", "key_failures": "key_failures_per_minute",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models-dir", help="directory of model directories (default: models)")
    parser.add_argument("--host", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: 5000, as LibreTranslate)")
    parser.add_argument("--beam", type=int, help="default beam size (default: 5)")
    parser.add_argument("--quantize", choices=QUANTIZE_MODES, help=f"inference precision (default: {DEFAULT_QUANTIZATION})")
    parser.add_argument("--max-beam", type=int, help="largest beam a request may ask for (default: 10)")
    parser.add_argument("--max-alternatives", type=int, help="most alternatives a request may ask for (default: 3)")
    parser.add_argument("--max-chars", type=int, help="characters per request (default: 20000)")
    parser.add_argument("--max-batch-items", type=int, help="strings in a list q (default: 128)")
    parser.add_argument("--max-sentences", type=int, help="sentences per request, then 413 (default: 1000)")
    parser.add_argument("--max-source-tokens", type=int, help="source tokens per request, then 413 (default: 10000)")
    parser.add_argument(
        "--slice-sentences", type=int,
        help="a request's sentences enter batches this many at a time, round-robin between requests (default: 32)",
    )
    parser.add_argument("--header-timeout", type=float, help="seconds for a request's headers (default: 10)")
    parser.add_argument("--body-timeout", type=float, help="seconds for a request's body, then 408 (default: 30)")
    parser.add_argument("--keep-alive", type=float, help="seconds an idle keep-alive connection stays open (default: 5)")
    parser.add_argument("--max-connections", type=int, help="concurrent connections, more get 503 (default: 1000)")
    parser.add_argument(
        "--shutdown-grace", type=float, help="seconds requests in flight get after SIGTERM (default: 20)"
    )
    parser.add_argument(
        "--key-failures", type=int, help="invalid API keys per minute per address, then 429 (default: 10; 0: off)"
    )
    parser.add_argument("--max-batch-tokens", type=int, help="estimated source tokens × beam per merged batch")
    parser.add_argument("--max-wait-ms", type=float, help="how long a request waits for others to batch with")
    parser.add_argument(
        "--batch-workers", type=int,
        help="batches translated side by side per model; torch threads are split among them (default: 2)",
    )
    parser.add_argument("--queue-size", type=int, help="pending sentences per model before 503 (default: 2048)")
    parser.add_argument("--timeout", type=float, help="request timeout in seconds, then 504 (default: 30)")
    parser.add_argument(
        "--api-key", dest="api_keys", action="append", metavar="KEY",
        help="require this API key (repeat for several; prefer CAROUSEL_API_KEYS, flags show in `ps`)",
    )
    parser.add_argument("--rate-limit", type=int, help="requests per minute per key or address (default: 0, off)")
    parser.add_argument("--cors-origin", dest="cors_origins", action="append", metavar="ORIGIN", help="allow a CORS origin")
    parser.add_argument("--log-level", choices=["critical", "error", "warning", "info", "debug"])


def build_settings(args: argparse.Namespace):
    """ServiceSettings from the environment, with the flags given on the command line on top."""
    from pydantic import ValidationError

    from carousel.service.settings import ServiceSettings

    overrides = {field: getattr(args, dest) for dest, field in _OVERRIDES.items() if getattr(args, dest, None) is not None}
    try:
        return ServiceSettings(**overrides)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in error.errors(include_url=False)
        )
        raise UserError(f"invalid service settings: {problems}") from None


def run(args: argparse.Namespace) -> int:
    settings = build_settings(args)
    import uvicorn

    from carousel.service.app import SHUTDOWN_WORKERS_SECONDS, create_app

    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _split_torch_threads(settings.batch_workers)
    from carousel.service.connections import header_timeout_protocol

    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        http=header_timeout_protocol(settings.header_timeout_seconds),
        timeout_keep_alive=max(1, round(settings.keep_alive_seconds)),
        limit_concurrency=settings.max_connections,
        timeout_graceful_shutdown=max(1, round(settings.shutdown_grace_seconds)),
    )

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            app.state.stopping.set()  # bodies still arriving get a second, not the whole grace period
            _exit_at_the_latest(settings.shutdown_grace_seconds + SHUTDOWN_WORKERS_SECONDS + EXIT_SLACK_SECONDS)
            super().handle_exit(sig, frame)

    server = Server(config)
    _stop_gracefully_on_signals(server)
    server.run()
    if not server.started:
        raise UserError("the server did not start (see the log above)")
    if app.state.workers_stopped is False:
        # A worker is still inside a translation: Python's exit would destroy torch's threads under it
        # and abort ("terminate called without an active exception", status 134). Its request has been
        # answered or cancelled already, so nothing is lost by leaving now.
        logging.getLogger(__name__).warning("a batching worker is still translating; exiting without waiting")
        logging.shutdown()
        os._exit(0)
    return 0


_deadline_set = threading.Event()


def _exit_at_the_latest(seconds: float) -> None:
    """Exit with status 0 after `seconds`, whatever still runs (once; the timer thread is a daemon)."""
    if _deadline_set.is_set():
        return
    _deadline_set.set()

    def exit_now() -> None:
        logging.getLogger(__name__).warning("still running %g s after the stop began; exiting now", seconds)
        logging.shutdown()
        os._exit(0)

    timer = threading.Timer(seconds, exit_now)
    timer.daemon = True
    timer.start()


def _split_torch_threads(workers: int) -> None:
    """Each batching worker gets its share of torch's threads (torch's thread count is per process)."""
    if workers > 1:
        import torch

        torch.set_num_threads(max(1, torch.get_num_threads() // workers))


def _stop_gracefully_on_signals(server) -> None:
    """Make SIGTERM and SIGINT a graceful stop that ends in exit status 0.

    While it serves, uvicorn handles both signals itself; after its graceful shutdown it raises the
    signal again for the handler that was there before it. With Python's default handlers that kills
    the process by SIGTERM (status -15, or 143 in a shell: a failure to systemd or an orchestrator)
    or raises KeyboardInterrupt. With this handler in place the repeated signal only asks again for
    the stop that has already happened; a signal before uvicorn's handlers are in place stops it too.
    """

    def stop(signum, frame) -> None:
        server.should_exit = True

    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, stop)
