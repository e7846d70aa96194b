"""Where the service's database lives: a SQLite file (one machine) or a PostgreSQL server (several).

    engine_for("carousel.db")                                  # SQLite, standard library
    engine_for("postgresql://carousel:PASSWORD@db:5432/carousel")   # PostgreSQL, psycopg 3

An engine opens one short connection per use (no pool: a restarted server or a replaced file is simply
found again by the next use), runs statements written with `?` placeholders on either backend, and
turns every backend error into `DatabaseError` (or `DuplicateRow` for a unique key already taken), so the
rest of the service knows one kind of failure. `dialect` fills the few words a migration spells
differently (`{id}`, `{real}`: see service/database.py).

SQLite: WAL journal, a busy timeout, `BEGIN IMMEDIATE` for writes, so the server and `carousel keys` can
write at once. PostgreSQL: autocommit outside transactions, a connect timeout and a statement timeout of
`timeout` seconds, so a server that is down or stuck costs a request that long at most; migrations hold
an advisory lock, so replicas starting together migrate one after another.
"""

from __future__ import annotations

import math
import sqlite3
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MIGRATION_LOCK = 7_261_504_113  # PostgreSQL advisory lock id held while migrating (any constant)


class DatabaseError(Exception):
    """The database cannot be used: unreachable, locked past the timeout, deleted, corrupted, refused."""


class DuplicateRow(DatabaseError, ValueError):
    """A row with this unique key exists already."""


def is_postgresql(location: str | Path) -> bool:
    return str(location).startswith(("postgresql://", "postgres://"))


def engine_for(location: str | Path, timeout: float = 30.0) -> SqliteEngine | PostgresEngine:
    """The engine for a SQLite path or a `postgresql://` URL."""
    return PostgresEngine(str(location), timeout) if is_postgresql(location) else SqliteEngine(Path(location), timeout)


def first_line(error: BaseException) -> str:
    """A backend's message in one line (libpq's run over several, with hints)."""
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


class SqliteEngine:
    dialect = {"id": "INTEGER PRIMARY KEY AUTOINCREMENT", "real": "REAL"}

    def __init__(self, path: Path, timeout: float):
        self.path, self.timeout = path, timeout

    @property
    def name(self) -> str:
        return str(self.path)

    def exists(self) -> bool:
        return self.path.is_file()

    def prepare(self) -> None:
        """Make the file (and its folder) if there is none; WAL lets readers and a writer work at once."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.connect(create=True) as connection:
            connection.execute("PRAGMA journal_mode=WAL")

    @contextmanager
    def connect(self, create: bool = False) -> Iterator[sqlite3.Connection]:
        uri = f"file:{urllib.parse.quote(str(self.path.absolute()))}?mode={'rwc' if create else 'rw'}"
        try:
            connection = sqlite3.connect(uri, uri=True, timeout=self.timeout, isolation_level=None)
            try:
                connection.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")
                connection.execute("PRAGMA synchronous=FULL")
                yield connection
            finally:
                connection.close()
        except sqlite3.IntegrityError as error:
            raise DuplicateRow(first_line(error)) from None
        except sqlite3.Error as error:
            raise DatabaseError(first_line(error)) from None

    @contextmanager
    def transaction(self, connection: sqlite3.Connection, migrating: bool = False) -> Iterator[None]:
        connection.execute("BEGIN IMMEDIATE")  # take the write lock now: no upgrade deadlock
        try:
            yield
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise


class PostgresEngine:
    dialect = {"id": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "real": "DOUBLE PRECISION"}

    def __init__(self, url: str, timeout: float):
        self.url, self.timeout = url, timeout

    @property
    def name(self) -> str:
        """The URL without its password, for messages and logs."""
        parts = urllib.parse.urlsplit(self.url)
        if parts.password is None:
            return self.url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))

    def exists(self) -> bool:
        return True  # the server's database is made by its administrator; tables by the migrations

    def prepare(self) -> None:
        pass

    @contextmanager
    def connect(self, create: bool = False) -> Iterator[_PostgresConnection]:
        import psycopg

        try:
            connection = psycopg.connect(
                self.url, autocommit=True, connect_timeout=max(2, math.ceil(self.timeout)),  # libpq's least: 2 s
                options=f"-c statement_timeout={int(self.timeout * 1000)} -c lock_timeout={int(self.timeout * 1000)}",
            )
            with connection:
                yield _PostgresConnection(connection)
        except psycopg.errors.UniqueViolation as error:
            raise DuplicateRow(first_line(error)) from None
        except psycopg.Error as error:
            raise DatabaseError(first_line(error)) from None

    @contextmanager
    def transaction(self, connection: _PostgresConnection, migrating: bool = False) -> Iterator[None]:
        with connection.raw.transaction():
            if migrating:  # replicas starting at once: one migrates, the others then find nothing to do
                connection.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
            yield


class _PostgresConnection:
    """A psycopg connection that takes the same `?` placeholders as sqlite3 (psycopg's are `%s`)."""

    def __init__(self, raw):
        self.raw = raw

    def execute(self, statement: str, arguments=()):
        return self.raw.execute(statement.replace("?", "%s"), arguments)

    def executemany(self, statement: str, rows):
        with self.raw.cursor() as cursor:
            cursor.executemany(statement.replace("?", "%s"), rows)
