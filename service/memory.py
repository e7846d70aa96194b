"""The translation memory: translations people accepted (`/suggest`) or imported, looked up before the model.

    memory = TranslationMemory(Database("carousel.db"))
    memory.add("es", "en", [("¿Dónde está?", "Where is it?")], origin="suggestion")
    memory.lookup("es", "en", ["dónde  está"])          # {"dónde  está": "Where is it?"}

An entry is found by a key that ignores case, spacing and final punctuation (`normalise`), and a pair
holds one entry per key: a later entry replaces an earlier one (last write wins), so importing a file
again replaces its entries instead of doubling them. The key is a 128-bit digest of the normalised text:
fixed width, so the unique index on (source, target, key) stays small with millions of entries and takes
texts of any length (PostgreSQL refuses index entries over about 2.7 kB). A request's texts are looked
up in one indexed query per language pair.

The server looks sentences up only when the memory is switched on (the `memory` setting, which needs
`database`; service/translation.py); `carousel memory` imports, lists and removes entries.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from carousel.data.readers import primary_language
from carousel.service.database import Database

SUGGESTION = "suggestion"  # the origin of entries accepted at /suggest
LOOKUP_CHUNK = 400  # keys per query: within SQLite's oldest limit of 999 bound parameters
WRITE_BATCH = 5_000  # rows per executemany while importing

_FINAL_PUNCTUATION = re.compile(r"[\s.!?…:;]+$")
_OPENING_PUNCTUATION = re.compile(r"^[\s¿¡]+")
_UPSERT = (
    "INSERT INTO translation_memory (source, target, key, source_text, target_text, origin, created) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (source, target, key) DO UPDATE SET source_text = excluded.source_text, "
    "target_text = excluded.target_text, origin = excluded.origin, created = excluded.created"
)


def normalise(text: str) -> str:
    """What a lookup compares: the text in NFC, case-folded, runs of whitespace as one space, without
    final punctuation (. ! ? … : ;) or Spanish opening marks (¿ ¡); a text of punctuation only stays whole."""
    folded = " ".join(unicodedata.normalize("NFC", text).split()).casefold()
    core = _OPENING_PUNCTUATION.sub("", _FINAL_PUNCTUATION.sub("", folded))
    return core or folded


def memory_key(text: str) -> str:
    return hashlib.blake2b(normalise(text).encode("utf-8"), digest_size=16).hexdigest()


@dataclass(frozen=True)
class MemoryEntry:
    source: str
    target: str
    source_text: str
    target_text: str
    origin: str
    created: float


@dataclass(frozen=True)
class MemoryCount:
    source: str
    target: str
    origin: str
    entries: int


class TranslationMemory:
    """The memory's entries in the service database (a SQLite file or PostgreSQL: service/engines.py)."""

    def __init__(self, database: Database):
        self.database = database

    def add(self, source: str, target: str, pairs: Iterable[tuple[str, str]], origin: str,
            replace: bool = False, progress: Callable[[int], None] | None = None) -> int:
        """Store (source text, target text) pairs under `origin`, in one transaction; `replace` first removes
        the pair's entries of that origin (an import read again). Returns the pairs written; ValueError for
        an empty text or origin, with nothing written. `progress` hears the count after each batch."""
        if not origin.strip():
            raise ValueError("a memory entry needs an origin (an import's name)")
        source, target = primary_language(source), primary_language(target)
        engine, written = self.database.engine, 0
        with engine.connect() as connection, engine.transaction(connection):
            if replace:
                connection.execute("DELETE FROM translation_memory WHERE source = ? AND target = ? AND origin = ?",
                                   (source, target, origin))
            batch = []
            for source_text, target_text in pairs:
                if not source_text.strip() or not target_text.strip():
                    raise ValueError(f"a memory entry needs both texts, got {source_text!r} → {target_text!r}")
                batch.append((source, target, memory_key(source_text), source_text, target_text, origin,
                              self.database.clock()))
                if len(batch) == WRITE_BATCH:
                    written += self._write(connection, batch, progress, written)
                    batch = []
            written += self._write(connection, batch, progress, written)
        return written

    @staticmethod
    def _write(connection, rows: list[tuple], progress: Callable[[int], None] | None, before: int) -> int:
        if rows:
            connection.executemany(_UPSERT, rows)
            if progress is not None:
                progress(before + len(rows))
        return len(rows)

    def lookup(self, source: str, target: str, texts: Iterable[str]) -> dict[str, str]:
        """The stored translation of each text that has one (text → target text), in one query per
        LOOKUP_CHUNK distinct texts."""
        by_key: dict[str, list[str]] = {}
        for text in texts:
            if text.strip():
                by_key.setdefault(memory_key(text), []).append(text)
        keys = list(by_key)
        found: dict[str, str] = {}
        with self.database.engine.connect() as connection:
            for start in range(0, len(keys), LOOKUP_CHUNK):
                chunk = keys[start : start + LOOKUP_CHUNK]
                rows = connection.execute(
                    "SELECT key, target_text FROM translation_memory WHERE source = ? AND target = ? "
                    f"AND key IN ({', '.join('?' * len(chunk))})",
                    (primary_language(source), primary_language(target), *chunk),
                ).fetchall()
                for key, target_text in rows:
                    found.update(dict.fromkeys(by_key[key], target_text))
        return found

    def remove(self, origin: str, source: str | None = None, target: str | None = None) -> int:
        """Remove the entries of `origin` (of one pair, or every pair); returns how many."""
        query, arguments = "DELETE FROM translation_memory WHERE origin = ?", [origin]
        for column, code in (("source", source), ("target", target)):
            if code:
                query += f" AND {column} = ?"
                arguments.append(primary_language(code))
        with self.database.engine.connect() as connection, self.database.engine.transaction(connection):
            return connection.execute(query, arguments).rowcount

    def counts(self) -> list[MemoryCount]:
        """Entries per pair and origin."""
        with self.database.engine.connect() as connection:
            rows = connection.execute(
                "SELECT source, target, origin, COUNT(*) FROM translation_memory "
                "GROUP BY source, target, origin ORDER BY source, target, origin"
            ).fetchall()
        return [MemoryCount(*row) for row in rows]

    def entries(self, source: str | None = None, target: str | None = None, origin: str | None = None,
                limit: int = 20) -> list[MemoryEntry]:
        """The most recent entries, newest first, of one pair and origin where given."""
        query = "SELECT source, target, source_text, target_text, origin, created FROM translation_memory"
        conditions, arguments = [], []
        for column, value in (("source", source), ("target", target), ("origin", origin)):
            if value:
                conditions.append(f"{column} = ?")
                arguments.append(primary_language(value) if column != "origin" else value)
        if conditions:
            query += " WHERE " + " AND ".join(conditions)
        with self.database.engine.connect() as connection:
            rows = connection.execute(query + " ORDER BY created DESC, id DESC LIMIT ?", (*arguments, limit)).fetchall()
        return [MemoryEntry(*row) for row in rows]
