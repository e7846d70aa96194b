"""Who may call the translation routes, and how often: API keys and per-key token-bucket rate limits."""

from __future__ import annotations

import hmac
import math
import threading
import time
from dataclasses import dataclass


class ApiKeys:
    """The configured keys, and those in the database (service/database.py) when there is one.

    With neither, the server is open. Database keys are looked up on every request, so keys that
    `carousel keys add|revoke` changes apply without a restart; each may carry its own limits.
    """

    def __init__(self, keys: list[str], database=None):
        self._keys = [key.encode("utf-8") for key in keys]
        self.database = database
        self._limiters: dict[int, RateLimiter] = {}
        self._lock = threading.Lock()

    @property
    def required(self) -> bool:
        return bool(self._keys) or (self.database is not None and self.database.has_keys())

    def valid(self, key: str | None) -> bool:
        if key is None:
            return False
        candidate = key.encode("utf-8", "surrogatepass")
        # Compare against every key, without stopping early, so timing says nothing about the keys.
        matches = [hmac.compare_digest(candidate, known) for known in self._keys]
        if any(matches):
            return True
        return self.database is not None and self.database.active_key(key) is not None

    def check_limits(self, key: str, fields: dict) -> None:
        """A database key's own limits: 429 over its requests a minute, 413 over its characters a request."""
        from carousel.service.errors import ApiError

        if self.database is None:
            return
        found = self.database.active_key(key)
        if found is None:
            return
        if found.chars_per_request:
            texts = fields.get("q")
            chars = sum(len(t) for t in texts if isinstance(t, str)) if isinstance(texts, list) else len(texts or "")
            if chars > found.chars_per_request:
                raise ApiError(413, f"q holds {chars} characters; this API key allows {found.chars_per_request} a request")
        if found.requests_per_minute:
            with self._lock:
                limiter = self._limiters.setdefault(found.requests_per_minute, RateLimiter(found.requests_per_minute))
            wait = limiter.acquire(f"key:{key}")
            if wait:
                raise ApiError(429, f"this API key allows {found.requests_per_minute} requests a minute",
                               headers=retry_after_header(wait))


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per client: `per_minute` requests a minute, bursts of up to `per_minute`.

    `acquire` returns 0 when the request may go ahead, or else the seconds until it could.
    """

    MAX_CLIENTS = 100_000  # buckets kept; full (idle) buckets are dropped first when over

    def __init__(self, per_minute: int, clock=time.monotonic):
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.capacity > 0

    def acquire(self, client: str) -> float:
        if not self.enabled:
            return 0.0
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(client)
            if bucket is None:
                if len(self._buckets) >= self.MAX_CLIENTS:
                    self._forget_idle(now)
                bucket = self._buckets[client] = _Bucket(self.capacity, now)
            bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self.rate

    def _forget_idle(self, now: float) -> None:
        full_after = self.capacity / self.rate
        self._buckets = {k: b for k, b in self._buckets.items() if now - b.updated < full_after}
        if len(self._buckets) >= self.MAX_CLIENTS:  # all busy: start over rather than grow without bound
            self._buckets.clear()


def retry_after_header(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}
