"""The service's database: API keys, translation suggestions and glossaries, in SQLite or PostgreSQL.

    Database("carousel.db")                           # one machine: a SQLite file
    Database("postgresql://carousel@db/carousel")     # several replicas: one PostgreSQL database

Opened by the server and by `carousel keys` / `carousel suggestions` at the same time, each use one short
transaction (service/engines.py: how each backend is reached), so concurrent writers wait for each other
instead of failing, and a committed write survives a crash or restart. The server reads keys from the
database on every check, so keys added or revoked from the command line apply at once, on every replica.

Only `create()` makes a SQLite file (`carousel keys add`, the server at start); every other use opens it
as it is, so a database deleted while the server runs is an error (`DatabaseError`, which the server
answers with 503), never a new empty one. `timeout` is how long a use waits for a lock or a server.

The schema is versioned: `schema_version` holds the number of migrations applied, and opening a database
applies the missing ones in order, in one transaction. The same migrations run on both backends; the
few words they spell differently are written `{id}` (an auto-numbered key) and `{real}` (a float of 64
bits). Add a migration by appending to MIGRATIONS; never edit one that has shipped.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from carousel.service.engines import DatabaseError, DuplicateRow, engine_for

KEY_BYTES = 32  # generated keys: 256 random bits, 43 URL-safe characters


def _new_key() -> str:
    """A random key that never starts with "-": a command line would read that key as an option
    (`carousel keys revoke -Xy…` failed one test run in about 1 of 64)."""
    while True:
        key = secrets.token_urlsafe(KEY_BYTES)
        if not key.startswith("-"):
            return key
MIN_KEY_CHARS = 22  # a key given by hand: at least as long as 128 random bits in URL-safe base64

MIGRATIONS = [
    # 1: API keys with per-key limits, and suggestions
    """
    CREATE TABLE api_keys (
        key TEXT PRIMARY KEY,
        name TEXT NOT NULL DEFAULT '',
        requests_per_minute INTEGER NOT NULL DEFAULT 0,  -- 0: the server's default
        chars_per_request INTEGER NOT NULL DEFAULT 0,  -- 0: the server's default
        created {real} NOT NULL,
        revoked {real}
    );
    CREATE TABLE suggestions (
        id {id},
        q TEXT NOT NULL,
        s TEXT NOT NULL,
        source TEXT NOT NULL,
        target TEXT NOT NULL,
        model TEXT NOT NULL DEFAULT '',
        api_key TEXT,
        created {real} NOT NULL
    );
    """,
    # the translation memory (service/memory.py): one target per normalised source text and pair
    """
    CREATE TABLE translation_memory (
        id {id},
        source TEXT NOT NULL,  -- language codes
        target TEXT NOT NULL,
        key TEXT NOT NULL,  -- a digest of the normalised source text (service/memory.py: memory_key)
        source_text TEXT NOT NULL,
        target_text TEXT NOT NULL,
        origin TEXT NOT NULL,  -- 'suggestion', or the name of an import
        created {real} NOT NULL
    );
    CREATE UNIQUE INDEX translation_memory_lookup ON translation_memory (source, target, key);
    CREATE INDEX translation_memory_origin ON translation_memory (origin);
    """,
    # glossaries: source term -> target term for one language pair (service/glossary_store.py)
    """
    CREATE TABLE glossaries (
        id {id},
        name TEXT NOT NULL UNIQUE,
        source TEXT NOT NULL,
        target TEXT NOT NULL,
        terms INTEGER NOT NULL,
        created {real} NOT NULL,
        updated {real} NOT NULL
    );
    CREATE TABLE glossary_terms (
        glossary_id INTEGER NOT NULL,
        position INTEGER NOT NULL,
        source_term TEXT NOT NULL,
        target_term TEXT NOT NULL,
        PRIMARY KEY (glossary_id, position)
    );
    """,
]


@dataclass(frozen=True)
class ApiKey:
    key: str
    name: str
    requests_per_minute: int
    chars_per_request: int
    created: float
    revoked: float | None


@dataclass(frozen=True)
class Suggestion:
    id: int
    q: str
    s: str
    source: str
    target: str
    model: str
    created: float


def short_key_problem(key: str) -> str | None:
    """Why `key` is too easy to guess, or None."""
    if len(key) < MIN_KEY_CHARS:
        return (f"a key of {len(key)} characters can be guessed; use at least {MIN_KEY_CHARS} random "
                "characters (128 bits), or let `carousel keys add` make one")
    return None


class SchemaTooNew(DatabaseError, RuntimeError):
    """The database was migrated by a newer carousel than this one."""


class Database:
    def __init__(self, location: str | Path, clock=time.time, create: bool = True, timeout: float = 30.0):
        self.engine = engine_for(location, timeout)
        self.clock = clock
        self.timeout = timeout
        if create:
            self.create()

    @property
    def name(self) -> str:
        """The file, or the server's URL without its password."""
        return self.engine.name

    def exists(self) -> bool:
        """False for a SQLite file that is not there (a server's database always exists)."""
        return self.engine.exists()

    def create(self) -> None:
        """Make the database if there is none (a SQLite file), and bring its schema up to date."""
        self.engine.prepare()
        with self.engine.connect(create=True) as connection:
            migrate(connection, self.engine)

    # -- keys --------------------------------------------------------------------------------------

    def add_key(self, name: str = "", requests_per_minute: int = 0, chars_per_request: int = 0,
                key: str | None = None) -> ApiKey:
        """A new key; ValueError for a bad limit or a short key, DuplicateRow (a ValueError) for a taken one."""
        if requests_per_minute < 0 or chars_per_request < 0:
            raise ValueError("limits are 0 (the server's default) or more")
        if key is not None and short_key_problem(key):
            raise ValueError(short_key_problem(key))
        key = key or _new_key()
        with self.engine.connect() as connection, self.engine.transaction(connection):
            connection.execute(
                "INSERT INTO api_keys (key, name, requests_per_minute, chars_per_request, created) VALUES (?, ?, ?, ?, ?)",
                (key, name, requests_per_minute, chars_per_request, self.clock()),
            )
        return self.key(key)

    def revoke_key(self, key: str) -> bool:
        with self.engine.connect() as connection, self.engine.transaction(connection):
            cursor = connection.execute(
                "UPDATE api_keys SET revoked = ? WHERE key = ? AND revoked IS NULL", (self.clock(), key)
            )
            return cursor.rowcount == 1

    def key(self, key: str) -> ApiKey | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                "SELECT key, name, requests_per_minute, chars_per_request, created, revoked FROM api_keys WHERE key = ?",
                (key,),
            ).fetchone()
        return ApiKey(*row) if row else None

    def active_key(self, key: str) -> ApiKey | None:
        found = self.key(key)
        return found if found is not None and found.revoked is None else None

    def keys(self, include_revoked: bool = False) -> list[ApiKey]:
        query = "SELECT key, name, requests_per_minute, chars_per_request, created, revoked FROM api_keys"
        if not include_revoked:
            query += " WHERE revoked IS NULL"
        with self.engine.connect() as connection:
            return [ApiKey(*row) for row in connection.execute(query + " ORDER BY created, key").fetchall()]

    def check(self) -> None:
        """Raise DatabaseError unless the keys can be read (the server's readiness probe)."""
        with self.engine.connect() as connection:
            connection.execute("SELECT 1 FROM api_keys LIMIT 1").fetchone()

    # -- suggestions -------------------------------------------------------------------------------

    def add_suggestion(self, q: str, s: str, source: str, target: str, model: str = "",
                       api_key: str | None = None) -> int:
        with self.engine.connect() as connection, self.engine.transaction(connection):
            return connection.execute(
                "INSERT INTO suggestions (q, s, source, target, model, api_key, created) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "RETURNING id",
                (q, s, source, target, model, api_key, self.clock()),
            ).fetchone()[0]

    def suggestions(self, source: str | None = None, target: str | None = None) -> list[Suggestion]:
        query, arguments = "SELECT id, q, s, source, target, model, created FROM suggestions", []
        conditions = []
        if source:
            conditions.append("source = ?")
            arguments.append(source)
        if target:
            conditions.append("target = ?")
            arguments.append(target)
        if conditions:
            query += " WHERE " + " AND ".join(conditions)
        with self.engine.connect() as connection:
            return [Suggestion(*row) for row in connection.execute(query + " ORDER BY id", arguments).fetchall()]


def schema_version(connection) -> int:
    connection.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = connection.execute("SELECT version FROM schema_version").fetchone()
    return row[0] if row else 0


def migrate(connection, engine) -> int:
    """Apply the migrations the database lacks, in one transaction; returns the version it is at."""
    with engine.transaction(connection, migrating=True):
        version = schema_version(connection)
        if version > len(MIGRATIONS):
            raise SchemaTooNew(
                f"the database is at schema version {version}, newer than this carousel ({len(MIGRATIONS)})"
            )
        for number in range(version, len(MIGRATIONS)):
            for statement in _statements(MIGRATIONS[number], engine.dialect):
                connection.execute(statement)
        if version == 0:
            connection.execute("INSERT INTO schema_version (version) VALUES (?)", (len(MIGRATIONS),))
        else:
            connection.execute("UPDATE schema_version SET version = ?", (len(MIGRATIONS),))
    return len(MIGRATIONS)


def _statements(script: str, dialect: dict[str, str]) -> list[str]:
    for word, spelling in dialect.items():
        script = script.replace("{" + word + "}", spelling)
    lines = [line.split("--")[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


__all__ = ["ApiKey", "Database", "DatabaseError", "DuplicateRow", "SchemaTooNew", "Suggestion", "MIGRATIONS"]
