"""The on-disk corpus layout shared by every corpus: `{train,valid,test}.tsv` plus `corpus.json`.

Each split is UTF-8 text, one record a line, no header, columns joined by tabs with no quoting
(fields never hold a tab or a newline). `corpus.json` names the columns and their languages and
records each split's row count and SHA-256, where the data came from and every dropped record.
The manifest carries no timestamps, so rebuilding from the same sources gives identical bytes.
"""

from __future__ import annotations

import gzip
from collections import Counter
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError, field_validator, model_validator

from carousel.errors import UserError
from carousel.fileio import write_atomically

SPLITS = ("train", "valid", "test")
MANIFEST_NAME = "corpus.json"


class LanguageColumns(BaseModel):
    """The two language codes of an import's config, which name the corpus's columns (each subclass
    declares `source_language` and `target_language`, with its own defaults)."""

    @field_validator("source_language", "target_language", check_fields=False)
    @classmethod
    def _language_code(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", value):
            raise ValueError(f"{value!r} is not a language code such as es, en or pt-BR")
        if value == "id":  # Indonesian: the code would collide with the record-id column
            raise ValueError("'id' names the record-id column; use the ISO 639-3 code 'ind' for Indonesian")
        return value

    @model_validator(mode="after")
    def _distinct_languages(self):
        if self.source_language == self.target_language:
            raise ValueError("source and target languages must differ: they name the corpus columns")
        return self


class SplitInfo(BaseModel):
    """Size and checksum of one split file, and the whitespace-separated words per text column."""

    rows: int
    sha256: str
    words: dict[str, int]


class DroppedRecord(BaseModel):
    """A record left out of the corpus, with the rule that dropped it."""

    id: str
    reason: str
    detail: str = ""


class CorpusManifest(BaseModel):
    """The contents of `corpus.json`."""

    name: str
    columns: list[str]
    languages: dict[str, str]  # text column → language code; the first column is the record id
    splits: dict[str, SplitInfo]
    source: dict[str, Any]
    dropped_counts: dict[str, int]
    dropped: list[DroppedRecord]


def write_corpus(
    directory: Path,
    name: str,
    columns: list[str],
    languages: dict[str, str],
    splits: dict[str, list[tuple[str, ...]]],
    source: dict[str, Any],
    dropped: list[DroppedRecord],
    compress: bool = False,
    listed_per_reason: int | None = None,
) -> CorpusManifest:
    """Write the split files and the manifest into `directory` and return the manifest.

    Every dropped record is counted; with `listed_per_reason`, only the first that many of each reason
    (by id) are listed, so a build that drops tens of thousands keeps `corpus.json` readable.

    With `compress`, each split is written as `{split}.tsv.gz` (gzip without a timestamp or file
    name, so the bytes are reproducible) and any `{split}.tsv` is removed, so a reader never picks
    up a stale uncompressed copy; `sha256` is always that of the uncompressed text.
    """
    directory.mkdir(parents=True, exist_ok=True)
    infos = {}
    for split in SPLITS:
        data = _encode_rows(splits.get(split, []), len(columns), split)
        plain, packed = directory / f"{split}.tsv", directory / f"{split}.tsv.gz"
        if compress:
            write_atomically(packed, gzip.compress(data, compresslevel=9, mtime=0))
            plain.unlink(missing_ok=True)
        else:
            write_atomically(plain, data)
            packed.unlink(missing_ok=True)
        infos[split] = SplitInfo(
            rows=len(splits.get(split, [])),
            sha256=hashlib.sha256(data).hexdigest(),
            words={column: count_words(splits.get(split, []), columns.index(column)) for column in languages},
        )
    counts = Counter(record.reason for record in dropped)
    if listed_per_reason is not None:
        dropped = _first_of_each_reason(dropped, listed_per_reason)
    manifest = CorpusManifest(
        name=name,
        columns=columns,
        languages=languages,
        splits=infos,
        source=source,
        dropped_counts=dict(sorted(counts.items())),
        dropped=dropped,
    )
    text = json.dumps(manifest.model_dump(), ensure_ascii=False, indent=2) + "\n"
    write_atomically(directory / MANIFEST_NAME, text.encode("utf-8"))
    return manifest


def _first_of_each_reason(dropped: list[DroppedRecord], per_reason: int) -> list[DroppedRecord]:
    """The first `per_reason` dropped records of each reason, sorted by (reason, id)."""
    listed, taken = [], Counter()
    for record in sorted(dropped, key=lambda r: (r.reason, r.id, r.detail)):
        if taken[record.reason] < per_reason:
            taken[record.reason] += 1
            listed.append(record)
    return listed


def load_corpus_manifest(directory: Path) -> CorpusManifest:
    """Read `corpus.json` from a corpus directory."""
    path = Path(directory) / MANIFEST_NAME
    try:
        return CorpusManifest.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise UserError(f"{path}: not found (build the corpus with `carousel prepare`)") from None
    except ValidationError as error:
        raise UserError(f"{path}: not a corpus manifest ({error.errors()[0]['msg']})") from None


def split_path(directory: Path, split: str) -> Path:
    """The file a split is read from: `{split}.tsv`, or `{split}.tsv.gz` where the uncompressed file is absent."""
    path = Path(directory) / f"{split}.tsv"
    if not path.is_file() and path.with_name(f"{split}.tsv.gz").is_file():
        return path.with_name(f"{split}.tsv.gz")
    return path


def split_sha256(directory: Path, split: str) -> str:
    """SHA-256 of a split's text as read (uncompressed), comparable with the manifest's `sha256`."""
    with _open_text(split_path(directory, split)) as lines:
        return hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()


def read_split(directory: Path, split: str, columns: list[str]) -> list[tuple[str, ...]]:
    """Return the chosen columns of every row of one split, in file order.

    Reads `{split}.tsv`, or `{split}.tsv.gz` where the uncompressed file is absent.
    """
    directory = Path(directory)
    manifest = load_corpus_manifest(directory)
    if split not in manifest.splits:
        raise UserError(f"{directory / MANIFEST_NAME}: no split {split!r} (have {', '.join(manifest.splits)})")
    unknown = [column for column in columns if column not in manifest.columns]
    if unknown:
        raise UserError(
            f"{directory / MANIFEST_NAME}: no column {', '.join(map(repr, unknown))} "
            f"(have {', '.join(manifest.columns)})"
        )
    indices = [manifest.columns.index(column) for column in columns]
    path = split_path(directory, split)
    rows = []
    try:
        with _open_text(path) as lines:
            for number, line in enumerate(lines, start=1):
                fields = line.rstrip("\n").split("\t")
                if len(fields) != len(manifest.columns):
                    raise UserError(f"{path}:{number}: expected {len(manifest.columns)} columns, found {len(fields)}")
                rows.append(tuple(fields[index] for index in indices))
    except FileNotFoundError:
        raise UserError(f"{path}: not found (rebuild the corpus with `carousel prepare`)") from None
    except UnicodeDecodeError as error:
        raise UserError(f"{path}: invalid UTF-8 ({error.reason})") from None
    except (gzip.BadGzipFile, EOFError) as error:
        raise UserError(f"{path}: not a readable gzip file ({error})") from None
    return rows


def _open_text(path: Path):
    """A split file opened as UTF-8 text, decompressing a `.gz` file."""
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="\n")
    return path.open(encoding="utf-8", newline="\n")


def spread_sample(rows: list, count: int) -> list:
    """At most `count` of `rows`, evenly spread over them in order (all of them when `count` is 0 or
    more than there are): a sample of a corpus that follows its parts, which are stored one after another."""
    if not count or len(rows) <= count:
        return list(rows)
    step = len(rows) / count
    return [rows[int(i * step)] for i in range(count)]


def count_words(rows: list[tuple[str, ...]], column: int) -> int:
    """Whitespace-separated words in one column."""
    return sum(len(row[column].split()) for row in rows)


def _encode_rows(rows: list[tuple[str, ...]], width: int, split: str) -> bytes:
    lines = []
    for row in rows:
        if len(row) != width or any("\t" in field or "\n" in field or "\r" in field for field in row):
            raise ValueError(f"{split}: malformed row {row[:1]}")  # a bug in the builder, not user input
        lines.append("\t".join(row) + "\n")
    return "".join(lines).encode("utf-8")
