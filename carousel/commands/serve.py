"""`carousel serve`: the HTTP translation service.

    carousel serve                                  # models/ on 127.0.0.1:5000
    carousel serve --models-dir models --host 0.0.0.0 --port 8080 --api-key KEY --rate-limit 60
    carousel serve --load-only es,en --url-prefix /translator --char-limit 5000 --req-limit 30 --database keys.db

Every setting of service/settings.py has a flag, made from its name (`max_chars`: `--max-chars`), type and
description, and LibreTranslate's names work too (`--char-limit`, `--req-limit`, `--disable-web-ui`); a
flag overrides the `CAROUSEL_*` environment variable of the same setting. `--help` lists them by group.
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
from pathlib import Path
from typing import Literal, get_args, get_origin

from carousel.errors import UserError

EXIT_SLACK_SECONDS = 5.0  # after the grace period and the workers' 5 s: the process is gone by then

# Flags besides the generated ones (--default-beam for default_beam): this command's earlier short names,
# and LibreTranslate's (--char-limit, --req-limit, --disable-web-ui, ...), so that its users' command lines work.
ALIASES = {
    "default_beam": ["--beam"],
    "request_timeout_seconds": ["--timeout"],
    "header_timeout_seconds": ["--header-timeout"],
    "body_timeout_seconds": ["--body-timeout"],
    "keep_alive_seconds": ["--keep-alive"],
    "shutdown_grace_seconds": ["--shutdown-grace"],
    "key_failures_per_minute": ["--key-failures"],
    "rate_limit_per_minute": ["--rate-limit", "--req-limit"],
    "max_chars": ["--char-limit"],
    "max_batch_items": ["--batch-limit"],
    "api_keys": ["--api-key"],
    "cors_origins": ["--cors-origin"],
    "frontend_timeout_ms": ["--frontend-timeout"],
}
# LibreTranslate's switches that turn a setting off.
DISABLE = {"web_ui": "--disable-web-ui", "files_translation": "--disable-files-translation"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per setting of ServiceSettings, in the groups of settings.GROUPS (the rest under "other")."""
    from carousel.service.settings import GROUPS, ServiceSettings

    fields = ServiceSettings.model_fields
    grouped = [(title, names) for title, names in GROUPS.items()]
    others = tuple(name for name in fields if not any(name in names for _, names in grouped))
    for title, names in grouped + [("other settings", others)]:
        group = parser.add_argument_group(title) if names else None
        for name in names:
            if name in fields:
                _add_setting(group, name, fields[name])


def _add_setting(group, name: str, field) -> None:
    """The flag of one setting: its type, choices and help from the field, its variable and default."""
    flags = [f"--{name.replace('_', '-')}", *ALIASES.get(name, [])]
    description = field.description or name.replace("_", " ")
    said = field.default_factory is not None or "(default:" in description  # the description says it
    default = "" if said else f"; default: {_shown(field.default)}"
    help_text = f"{description} (CAROUSEL_{name.upper()}{default})"
    kind = _kind(field.annotation)
    if kind is bool:
        group.add_argument(*flags, dest=name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        if name in DISABLE:
            group.add_argument(DISABLE[name], dest=name, action="store_false", help=argparse.SUPPRESS)
    elif kind is list:
        group.add_argument(*flags, dest=name, action="append", metavar="A,B", help=help_text + "; may be repeated")
    elif isinstance(kind, tuple):
        group.add_argument(*flags, dest=name, choices=kind, help=help_text)
    else:
        group.add_argument(*flags, dest=name, type=kind, metavar=_metavar(kind), help=help_text)


def _kind(annotation):
    """bool, list, a tuple of choices (Literal), or the type a flag's value is parsed as."""
    if annotation in (bool, bool | None):
        return bool
    if get_origin(annotation) is list:
        return list
    if get_origin(annotation) is Literal:
        return tuple(get_args(annotation))
    options = [option for option in get_args(annotation) if option is not type(None)]  # X | None -> X
    return options[0] if options else annotation


def _metavar(kind) -> str:
    return {int: "N", float: "X", Path: "PATH"}.get(kind, "TEXT")


def _shown(value) -> str:
    if value in (None, "", []):
        return "none"
    return str(value).lower() if isinstance(value, bool) else str(value)


def build_settings(args: argparse.Namespace):
    """ServiceSettings from the environment, with the flags given on the command line on top."""
    from pydantic import ValidationError

    from carousel.service.settings import ServiceSettings

    overrides = {}
    for name, field in ServiceSettings.model_fields.items():
        value = getattr(args, name, None)
        if value is not None:  # a list flag's values, each perhaps comma-separated, as one list
            overrides[name] = ",".join(value) if _kind(field.annotation) is list else value
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
    from carousel.model.precision import share_cpu_threads
    from carousel.service.connections import header_timeout_protocol

    share_cpu_threads(settings.batch_workers)  # each batching worker on its share of the cores

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
