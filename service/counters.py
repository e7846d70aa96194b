"""Counters for rate limits and failed-key lockouts, kept where every replica counts into them.

    CAROUSEL_LIMITS_STORAGE=memory://              # the default: this process counts alone
    CAROUSEL_LIMITS_STORAGE=redis://redis:6379/0   # replicas count together in Redis

Counting is the `limits` library's moving window: a limit of N a minute lets N requests through in any
60 seconds, whether they reach one replica or several. A client's identity (its API key, its address)
is hashed before it is used as a counter's name, so no key is ever written to Redis.

A storage that fails (Redis down, or slower than `timeout`) raises `CountersUnavailable`, which the service
answers with 503: limits are never dropped silently. `health` knows the last outcome; while it knows of
a problem, requests fail at once and a background probe finds out when Redis answers again. Counting
is a synchronous round trip to Redis (a fraction of a millisecond on a local network), so only the
request that finds Redis gone waits, at most `timeout`.
"""

from __future__ import annotations

import hashlib
import time

from limits import RateLimitItemPerMinute
from limits.errors import StorageError
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from carousel.service.health import Dependency, describe

SCHEMES = ("memory://", "redis://", "rediss://", "redis+unix://")


class CountersUnavailable(Exception):
    """The shared counters cannot be reached: the request can be neither counted nor let through."""


class Counters:
    def __init__(self, uri: str = "memory://", timeout: float = 1.0):
        if not uri.startswith(SCHEMES):
            raise ValueError(f"limits storage {uri!r}: give memory:// or redis://HOST:PORT")
        self.shared = not uri.startswith("memory://")
        options = {"socket_timeout": timeout, "socket_connect_timeout": timeout} if self.shared else {}
        self.storage = storage_from_string(uri, wrap_exceptions=True, **options)
        self.window = MovingWindowRateLimiter(self.storage)
        self.health = Dependency("the limits storage", self._probe, recheck_seconds=1.0)

    def limit(self, per_minute: int, name: str) -> RateLimit:
        """A limit of `per_minute` a minute per client (0: no limit), counted under `name`."""
        return RateLimit(self, per_minute, name)

    def _probe(self) -> None:
        if not self.storage.check():
            raise ConnectionError("it does not answer")

    def run(self, action):
        """`action()`, or CountersUnavailable when the storage is known to be down or fails now."""
        problem = self.health.known_problem
        if problem is None:
            try:
                result = action()
            except StorageError as error:
                problem = describe(error.storage_error)
                self.health.failed(problem)
            else:
                self.health.ok()
                return result
        raise CountersUnavailable(f"the rate limits cannot be counted ({problem}); retry later")


class RateLimit:
    """`acquire` returns 0 when the request may go ahead (and counts it), else the seconds until it
    could; `blocked` says the same without counting anything."""

    def __init__(self, counters: Counters, per_minute: int, name: str):
        self.counters = counters
        self.capacity = per_minute
        self.item = RateLimitItemPerMinute(per_minute, namespace=f"carousel-{name}") if per_minute else None

    @property
    def enabled(self) -> bool:
        return self.item is not None

    def acquire(self, client: str, cost: int = 1) -> float:
        if not self.enabled:
            return 0.0
        identity = _hashed(client)
        if self.counters.run(lambda: self.counters.window.hit(self.item, identity, cost=cost)):
            return 0.0
        return self._wait(identity)

    def blocked(self, client: str) -> float:
        if not self.enabled:
            return 0.0
        identity = _hashed(client)
        if self.counters.run(lambda: self.counters.window.test(self.item, identity)):
            return 0.0
        return self._wait(identity)

    def _wait(self, identity: str) -> float:
        stats = self.counters.run(lambda: self.counters.window.get_window_stats(self.item, identity))
        return max(1.0, stats.reset_time - time.time())


def _hashed(client: str) -> str:
    return hashlib.sha256(client.encode("utf-8", "surrogatepass")).hexdigest()[:32]
