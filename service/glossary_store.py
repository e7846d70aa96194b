"""Glossaries kept in the service's database (service/database.py, tables `glossaries` and
`glossary_terms`), read back as `Glossary` objects (model/glossary.py).

A glossary has a unique name, a language pair and its terms in order; storing one under a name that
exists replaces it whole. The server keeps the glossaries it has used in memory and reloads one only
when its `updated` time changes, so a request pays one small query, not the reading of 100,000 terms;
a glossary changed or removed from the command line applies at the next request, on every replica.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from carousel.model.translator import Glossary
from carousel.service.database import Database

ROWS_PER_INSERT = 500  # terms a statement: few round trips to PostgreSQL, well under SQLite's variable limit


@dataclass(frozen=True)
class StoredGlossary:
    id: int
    name: str
    source: str
    target: str
    terms: int
    created: float
    updated: float

    def describe(self) -> dict:
        return {"id": self.id, "name": self.name, "source": self.source, "target": self.target, "terms": self.terms}


COLUMNS = "id, name, source, target, terms, created, updated"


class GlossaryStore:
    def __init__(self, database: Database):
        self.database = database
        self._loaded: dict[int, tuple[float, Glossary]] = {}  # id -> (updated, glossary)
        self._lock = threading.Lock()

    def put(self, name: str, glossary: Glossary) -> StoredGlossary:
        """Store `glossary` under `name`, replacing a glossary of that name (and language pair) whole."""
        engine, now = self.database.engine, self.database.clock()
        pairs = glossary.pairs
        with engine.connect() as connection, engine.transaction(connection):
            row = connection.execute("SELECT id, created FROM glossaries WHERE name = ?", (name,)).fetchone()
            if row is None:
                glossary_id = connection.execute(
                    "INSERT INTO glossaries (name, source, target, terms, created, updated) VALUES (?, ?, ?, ?, ?, ?) "
                    "RETURNING id", (name, glossary.source_lang, glossary.target_lang, len(pairs), now, now),
                ).fetchone()[0]
            else:
                glossary_id = row[0]
                connection.execute("UPDATE glossaries SET source = ?, target = ?, terms = ?, updated = ? WHERE id = ?",
                                   (glossary.source_lang, glossary.target_lang, len(pairs), now, glossary_id))
                connection.execute("DELETE FROM glossary_terms WHERE glossary_id = ?", (glossary_id,))
            for start in range(0, len(pairs), ROWS_PER_INSERT):
                rows = pairs[start:start + ROWS_PER_INSERT]
                values = ", ".join(["(?, ?, ?, ?)"] * len(rows))
                arguments = [value for position, (source, target) in enumerate(rows, start=start)
                             for value in (glossary_id, position, source, target)]
                connection.execute(
                    f"INSERT INTO glossary_terms (glossary_id, position, source_term, target_term) VALUES {values}",
                    arguments)
        return self.find(name)

    def find(self, id_or_name: str | int) -> StoredGlossary | None:
        """The glossary of that id (a number) or name."""
        with self.database.engine.connect() as connection:
            row = connection.execute(f"SELECT {COLUMNS} FROM glossaries WHERE name = ?", (str(id_or_name),)).fetchone()
            if row is None and str(id_or_name).isdigit():
                row = connection.execute(f"SELECT {COLUMNS} FROM glossaries WHERE id = ?", (int(id_or_name),)).fetchone()
        return StoredGlossary(*row) if row else None

    def list(self, source: str | None = None, target: str | None = None) -> list[StoredGlossary]:
        query, conditions, arguments = f"SELECT {COLUMNS} FROM glossaries", [], []
        for column, value in (("source", source), ("target", target)):
            if value:
                conditions.append(f"{column} = ?")
                arguments.append(value)
        if conditions:
            query += " WHERE " + " AND ".join(conditions)
        with self.database.engine.connect() as connection:
            return [StoredGlossary(*row) for row in connection.execute(query + " ORDER BY name", arguments).fetchall()]

    def remove(self, id_or_name: str | int) -> bool:
        found = self.find(id_or_name)
        if found is None:
            return False
        engine = self.database.engine
        with engine.connect() as connection, engine.transaction(connection):
            connection.execute("DELETE FROM glossary_terms WHERE glossary_id = ?", (found.id,))
            connection.execute("DELETE FROM glossaries WHERE id = ?", (found.id,))
        with self._lock:
            self._loaded.pop(found.id, None)
        return True

    def terms(self, stored: StoredGlossary) -> list[tuple[str, str]]:
        with self.database.engine.connect() as connection:
            rows = connection.execute("SELECT source_term, target_term FROM glossary_terms WHERE glossary_id = ? "
                                      "ORDER BY position", (stored.id,)).fetchall()
        return [(source, target) for source, target in rows]

    def load(self, stored: StoredGlossary) -> Glossary:
        """The glossary's terms as a Glossary, from memory unless it changed since it was last read."""
        with self._lock:
            cached = self._loaded.get(stored.id)
        if cached is not None and cached[0] == stored.updated:
            return cached[1]
        glossary = Glossary(self.terms(stored), stored.source, stored.target, stored.name)
        with self._lock:
            self._loaded[stored.id] = (stored.updated, glossary)
        return glossary
