"""Whether what requests need besides the models works: the key database, the file store.

A `Dependency` knows the outcome of its last use or probe. Requests report their outcome (`ok`,
`failed`) and read `known_problem`; `/ready` reads `problem`. Neither waits: when the last outcome is
older than `recheck_seconds` (and, for requests, was a failure) a probe starts in a background thread,
and the answer is what was known. A change of state
is logged in one line (no traceback, and not once per request).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Dependency:
    def __init__(self, name: str, probe: Callable[[], None], recheck_seconds: float = 5.0, clock=time.monotonic):
        self.name = name
        self.probe = probe  # raises when the dependency does not work
        self.recheck_seconds = recheck_seconds
        self.clock = clock
        self._problem: str | None = None
        self._checked = float("-inf")
        self._probing = False
        self._lock = threading.Lock()

    @property
    def problem(self) -> str | None:
        """The problem the last use or probe found (None: it worked); a stale answer starts a probe
        (readiness: a dependency that broke while nothing used it is found out too)."""
        self._probe_if_stale()
        return self._problem

    @property
    def known_problem(self) -> str | None:
        """The problem the last use or probe found; a probe starts only to learn whether it is over
        (requests: while it works, their own uses tell)."""
        if self._problem is not None:
            self._probe_if_stale()
        return self._problem

    def _probe_if_stale(self) -> None:
        with self._lock:
            start = not self._probing and self.clock() - self._checked > self.recheck_seconds
            self._probing = self._probing or start
        if start:
            threading.Thread(target=self._run_probe, name=f"probe-{self.name}", daemon=True).start()

    def ok(self) -> None:
        with self._lock:
            self._checked = self.clock()
            was, self._problem = self._problem, None
        if was is not None:
            log.warning("%s works again", self.name)

    def failed(self, problem: str) -> None:
        with self._lock:
            self._checked = self.clock()
            was, self._problem = self._problem, problem
        if was != problem:
            log.error("%s: %s", self.name, problem)

    def _run_probe(self) -> None:
        try:
            self.probe()
        except Exception as error:  # whatever the dependency raises is its problem, reported in one line
            self.failed(describe(error))
        else:
            self.ok()
        finally:
            with self._lock:
                self._probing = False


def describe(error: BaseException) -> str:
    """An error in a few words for a client or a log line, without paths of the server's file system."""
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return text.split(": '/")[0]
