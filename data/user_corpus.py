"""Import a user's parallel corpus (TSV, two text files or TMX) into the corpus layout of `data.corpus`.

Pairs are read, cleaned (`data.cleaning`) and split into train/valid/test: either given
valid/test files, or a seeded random draw from the cleaned corpus. Pairs of the test and
valid sets are removed from the training data, so no evaluation sentence is trained on.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Literal, Union

from pydantic import BaseModel, Field

from carousel.errors import UserError
from carousel.data.cleaning import CleaningConfig, Pair, clean_pairs
from carousel.data.corpus import CorpusManifest, DroppedRecord, LanguageColumns, write_corpus
from carousel.data.readers import read_text_pairs, read_tmx_pairs, read_tsv_pairs


class TsvSource(BaseModel):
    """Two columns of a tab-separated file."""

    kind: Literal["tsv"] = "tsv"
    paths: tuple[Path]
    source_column: str
    target_column: str
    header: bool = False


class TextSource(BaseModel):
    """Two line-aligned plain-text files, source first."""

    kind: Literal["text"] = "text"
    paths: tuple[Path, Path]


class TmxSource(BaseModel):
    """A TMX 1.4 translation memory."""

    kind: Literal["tmx"] = "tmx"
    paths: tuple[Path]


Source = Union[TsvSource, TextSource, TmxSource]


# Held-out sets drawn when no size is given: a share of the cleaned pairs, within these bounds, so a
# 2,000-pair corpus keeps 1,800 for training instead of being refused, and a large one holds out 1,000 each.
HELD_OUT_SHARE = 0.05
HELD_OUT_MIN, HELD_OUT_MAX = 1, 1000


def held_out_size(pairs: int) -> int:
    """Default size of each of the valid and test sets for a corpus of `pairs` cleaned pairs."""
    return min(HELD_OUT_MAX, max(HELD_OUT_MIN, round(pairs * HELD_OUT_SHARE)))


class SplitConfig(BaseModel):
    """How valid and test sets are drawn when no files are given for them (None: `held_out_size`)."""

    valid_size: int | None = Field(None, ge=1)
    test_size: int | None = Field(None, ge=1)
    seed: int = 1


class ImportConfig(LanguageColumns):
    """Everything `carousel prepare tsv|text|tmx` needs to build a corpus."""

    name: str
    source_language: str
    target_language: str
    source: Source = Field(discriminator="kind")
    valid_paths: tuple[Path, ...] | None = None  # same format as `source`
    test_paths: tuple[Path, ...] | None = None
    cleaning: CleaningConfig = CleaningConfig()
    split: SplitConfig = SplitConfig()


def import_corpus(config: ImportConfig, out_dir: Path) -> tuple[CorpusManifest, dict[str, list[tuple[str, ...]]]]:
    """Read, clean, split and write a user corpus; return its manifest and the rows of each split."""
    dropped: list[DroppedRecord] = []
    seen: dict[tuple[str, str], str] = {}
    given: dict[str, list[Pair]] = {}
    # Evaluation sets first, so their sentences are removed from training data, not the other way round.
    for split, paths in (("test", config.test_paths), ("valid", config.valid_paths)):
        if paths:
            source = config.source.model_copy(update={"paths": tuple(paths)})
            given[split] = _read_and_clean(source, config, seen, dropped)
    pairs = _read_and_clean(config.source, config, seen, dropped)

    splits = _split(pairs, given, config.split, _source_label(config.source))
    drawn = {f"{split}_size": len(splits[split]) for split in ("valid", "test") if split not in given}
    source, target = config.source_language, config.target_language
    manifest = write_corpus(
        out_dir,
        name=config.name,
        columns=["id", source, target],
        languages={source: source, target: target},
        splits=splits,
        source={
            "description": f"user corpus imported with `carousel prepare {config.source.kind}`",
            "format": config.source.kind,
            "files": [path.name for path in config.source.paths],
            "valid_files": [path.name for path in config.valid_paths or ()],
            "test_files": [path.name for path in config.test_paths or ()],
            "cleaning": config.cleaning.model_dump(),
            "split": {**config.split.model_dump(), **drawn} if len(given) < 2 else "given files",
        },
        dropped=dropped,
    )
    return manifest, splits


def read_pairs(source: Source, source_language: str, target_language: str) -> tuple[list[Pair], list[DroppedRecord]]:
    """All pairs of one input, plus records it could not use at all (TMX units lacking a language)."""
    if isinstance(source, TsvSource):
        return list(read_tsv_pairs(source.paths[0], source.source_column, source.target_column, source.header)), []
    if isinstance(source, TextSource):
        return list(read_text_pairs(*source.paths)), []
    return read_tmx_pairs(source.paths[0], source_language, target_language)


def _read_and_clean(source: Source, config: ImportConfig, seen: dict, dropped: list[DroppedRecord]) -> list[Pair]:
    """Read one input and clean it; an input left with no pairs is an error."""
    pairs, unusable = read_pairs(source, config.source_language, config.target_language)
    kept, removed = clean_pairs(pairs, config.cleaning, seen)
    dropped.extend(unusable + removed)
    if not kept:
        reasons = Counter(record.reason for record in unusable + removed)
        detail = "".join(f"; {reason}: {count}" for reason, count in sorted(reasons.items()))
        raise UserError(f"{_source_label(source)}: no sentence pairs left after cleaning ({len(pairs)} read{detail})")
    return kept


def _split(pairs: list[Pair], given: dict[str, list[Pair]], config: SplitConfig, label: str) -> dict[str, list[Pair]]:
    """Train/valid/test: given sets as they are, the others drawn at random (seeded) from `pairs`."""
    requested = {"valid": config.valid_size, "test": config.test_size}
    wanted = {
        split: size if size is not None else held_out_size(len(pairs))
        for split, size in requested.items()
        if split not in given
    }
    if len(pairs) <= sum(wanted.values()):
        sizes = " and ".join(f"--{split}-size {size}" for split, size in wanted.items())
        fitting = held_out_size(len(pairs))
        if len(pairs) > fitting * len(wanted):
            fix = "use " + " and ".join(f"--{split}-size {fitting}" for split in wanted) + " (the default for this corpus)"
        else:
            fix = f"a random split needs at least {len(wanted) + 1} pairs"
        raise UserError(
            f"{label}: only {len(pairs)} sentence pairs after cleaning, too few for {sizes} "
            f"and a training set: {fix}, or give --valid-file/--test-file"
        )
    order = list(range(len(pairs)))
    random.Random(config.seed).shuffle(order)
    splits = dict(given)
    start = 0
    for split, size in wanted.items():
        chosen = sorted(order[start : start + size])  # keep the input order inside each split
        splits[split] = [pairs[index] for index in chosen]
        start += size
    training = sorted(order[start:])
    splits["train"] = [pairs[index] for index in training]
    return splits


def _source_label(source: Source) -> str:
    return " + ".join(str(path) for path in source.paths)
