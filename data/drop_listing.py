"""The dropped records of a large build in its manifest: every one counted, the first few per reason listed.

A build that drops tens of thousands of records (catalog entries, document blocks) would otherwise write
them all into `corpus.json`; `dropped_counts` still counts each one.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from carousel.data.corpus import MANIFEST_NAME, CorpusManifest, DroppedRecord, write_corpus
from carousel.fileio import write_atomically


def examples(dropped: list[DroppedRecord], per_reason: int) -> list[DroppedRecord]:
    """The first `per_reason` dropped records of each reason, sorted by (reason, id)."""
    listed, taken = [], Counter()
    for record in sorted(dropped, key=lambda r: (r.reason, r.id, r.detail)):
        if taken[record.reason] < per_reason:
            taken[record.reason] += 1
            listed.append(record)
    return listed


def write_corpus_listing(
    directory: Path,
    name: str,
    columns: list[str],
    languages: dict[str, str],
    splits: dict[str, list[tuple[str, ...]]],
    source: dict[str, Any],
    dropped: list[DroppedRecord],
    per_reason: int,
    compress: bool = False,
) -> CorpusManifest:
    """`write_corpus`, listing `examples(dropped, per_reason)` but counting every dropped record."""
    manifest = write_corpus(
        directory, name, columns, languages, splits, source, examples(dropped, per_reason), compress=compress
    )
    counts = Counter(record.reason for record in dropped)
    manifest = manifest.model_copy(update={"dropped_counts": dict(sorted(counts.items()))})
    text = json.dumps(manifest.model_dump(), ensure_ascii=False, indent=2) + "\n"
    write_atomically(Path(directory) / MANIFEST_NAME, text.encode("utf-8"))
    return manifest
