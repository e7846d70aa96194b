"""Who may call the translation routes, and how often: the access policy, from the settings.

- Keys are required when the settings say so (`keys_required`; by default when fixed keys or a key
  database are configured), never because of what the database holds: an emptied, deleted or
  recreated database refuses every key rather than opening the server.
- A key is one of `api_keys` (compared in constant time) or an active key of the database, read off the
  event loop with a short timeout; a database that cannot be read is a 503 with Retry-After.
- An address that sent `key_failures_per_minute` invalid keys is locked out (429) for every request,
  with whatever key, until its bucket refills: guessing cannot hide behind a valid key.
- Rate limits are moving windows per client (the key, or the address without keys), counted in
  service/counters.py (in this process, or in Redis for every replica together; counters that cannot be
  reached are a 503, never no limit); a database key may carry its own requests a minute and
  characters a request. A file counts as the requests its text would take through /translate
  (`charge_file`).
- `api_key=` in a logged URL is redacted (`redact_keys_in_access_log`).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import re
from dataclasses import dataclass

from fastapi import Request

from carousel.service.counters import Counters, CountersUnavailable
from carousel.service.database import ApiKey, Database, DatabaseError, short_key_problem
from carousel.service.errors import ApiError
from carousel.service.health import Dependency, describe
from carousel.service.settings import ServiceSettings

log = logging.getLogger(__name__)
RETRY_AFTER_DATABASE = 5  # seconds a client waits while the key database is unavailable
RETRY_AFTER_COUNTERS = 5  # seconds a client waits while the shared rate-limit counters are unavailable


@dataclass(frozen=True)
class Admission:
    """A request let in: who it counts against, and its database key (with that key's limits)."""

    client: str  # "key:KEY", or "address:HOST" when keys are not required
    key: ApiKey | None = None


class AccessPolicy:
    def __init__(self, settings: ServiceSettings, database: Database | None, counters: Counters):
        self.settings = settings
        self.required = settings.requires_keys
        self.database = database
        self.health = Dependency("the key database", self._probe_database, recheck_seconds=1.0) if database else None
        self._migrated = False
        self.counters = counters
        self._fixed = [key.encode("utf-8") for key in settings.api_keys]
        self.limiter = counters.limit(settings.rate_limit_per_minute, "requests")
        self.key_failures = counters.limit(settings.key_failures_per_minute, "key-failures")
        for number, key in enumerate(settings.api_keys, start=1):
            if short_key_problem(key):
                log.warning("api_keys: key %d: %s", number, short_key_problem(key))

    def open_database(self) -> None:
        """Make and migrate the database if need be; one that cannot be opened is its health's problem
        (logged in one line), and the server goes on without it."""
        if self.database is None:
            return
        try:
            self.database.create()
        except (DatabaseError, OSError) as error:  # unreachable, broken, or of a newer schema
            self.health.failed(describe(error))
        else:
            self._migrated = True
            self.health.ok()

    def _probe_database(self) -> None:
        """Raise unless the keys can be read; a database that could not be opened at start (a PostgreSQL
        server still starting, say) is migrated first, once it answers."""
        if not self._migrated:
            self.database.create()
            self._migrated = True
        self.database.check()

    async def admit(self, fields: dict, request: Request) -> Admission:
        """The request's admission, or 403 (no valid key), 429 (rate, lockout), 413 (its key's characters),
        503 (the key database or the rate-limit counters are unavailable)."""
        try:
            return await self._admit(fields, request)
        except CountersUnavailable as error:
            raise ApiError(503, str(error), headers=retry_after_header(RETRY_AFTER_COUNTERS)) from None

    async def _admit(self, fields: dict, request: Request) -> Admission:
        address = f"address:{request.client.host if request.client else 'unknown'}"
        if not self.required:
            admission = Admission(address)
        else:
            admission = await self._admit_key(fields.get("api_key"), address)
            texts = fields.get("q")
            texts = texts if isinstance(texts, list) else [texts]
            self.check_chars(admission, sum(len(t) for t in texts if isinstance(t, str)), "q holds")
        self.charge(admission, 1)
        return admission

    async def _admit_key(self, key, address: str) -> Admission:
        locked = self.key_failures.blocked(address)
        if locked:  # before the key is even looked at
            raise ApiError(429, "too many invalid API keys from this address; retry later",
                           headers=retry_after_header(locked))
        if not isinstance(key, str) or not key:
            raise ApiError(403, "an API key is required: send it in the api_key field")
        candidate = key.encode("utf-8", "surrogatepass")
        # Compare against every key, without stopping early, so timing says nothing about the keys.
        if any([hmac.compare_digest(candidate, known) for known in self._fixed]):
            return Admission(f"key:{key}")
        found = await self._database_key(key)
        if found is None:
            wait = self.key_failures.acquire(address)
            if wait:
                raise ApiError(429, "too many invalid API keys from this address; retry later",
                               headers=retry_after_header(wait))
            raise ApiError(403, "invalid API key")
        return Admission(f"key:{key}", found)

    async def _database_key(self, key: str) -> ApiKey | None:
        if self.database is None:
            return None
        problem = self.health.known_problem
        if problem is None:
            try:
                found = await asyncio.to_thread(self.database.active_key, key)
            except DatabaseError as error:  # unreachable, locked past the timeout, deleted, corrupted
                self.health.failed(describe(error))
                problem = describe(error)
            else:
                self.health.ok()
                return found
        raise ApiError(503, f"the key database is unavailable ({problem}); retry later",
                       headers=retry_after_header(RETRY_AFTER_DATABASE))

    def check_chars(self, admission: Admission, chars: int, what: str) -> None:
        """413 when `chars` characters are over the admission's key's own limit a request."""
        limit = admission.key.chars_per_request if admission.key else 0
        if limit and chars > limit:
            raise ApiError(413, f"{what} {chars} characters; this API key allows {limit} a request")

    def charge(self, admission: Admission, requests: int) -> None:
        """Count `requests` requests against the server's rate limit and the key's own: 429 over either,
        503 when the counters cannot be reached."""
        limits = [(self.limiter, f"the rate limit of {self.settings.rate_limit_per_minute} requests a minute")]
        per_key = admission.key.requests_per_minute if admission.key else 0
        if per_key:
            limits.append((self.counters.limit(per_key, "key-requests"),
                           f"this API key's limit of {per_key} requests a minute"))
        for limiter, name in limits:
            if limiter.enabled and requests > limiter.capacity:
                raise ApiError(413, f"this counts as {requests} requests, more than {name} allows at once")
            try:
                wait = limiter.acquire(admission.client, requests)
            except CountersUnavailable as error:
                raise ApiError(503, str(error), headers=retry_after_header(RETRY_AFTER_COUNTERS)) from None
            if wait:
                raise ApiError(429, f"{name} is exceeded", headers=retry_after_header(wait))

    def charge_file(self, admission: Admission, chars: int, sentences: int) -> None:
        """A file's text against the key's characters a request, and as many requests as /translate would
        take for it (the upload itself was one)."""
        self.check_chars(admission, chars, "the file holds")
        settings = self.settings
        requests = max(1, math.ceil(chars / settings.max_chars), math.ceil(sentences / settings.max_sentences))
        if requests > 1:
            self.charge(admission, requests - 1)


def retry_after_header(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


class RedactKeys(logging.Filter):
    """Log lines without API keys: `api_key=...` in a logged URL becomes `api_key=REDACTED`."""

    KEY_IN_URL = re.compile(r"(?i)(api(?:_|%5f)key=)[^&#\s\"]*")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(self._redact(arg) for arg in record.args)
        record.msg = self._redact(record.msg)
        return True

    def _redact(self, value):
        return self.KEY_IN_URL.sub(r"\1REDACTED", value) if isinstance(value, str) else value


def redact_keys_in_access_log() -> None:
    """Uvicorn's access log (and its error log, which can quote a request line) without API keys."""
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(existing, RedactKeys) for existing in logger.filters):
            logger.addFilter(RedactKeys())
