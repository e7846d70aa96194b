"""Sequence-level knowledge distillation (Kim & Rush 2016): a teacher's translations as training targets.

A teacher (one model, or an ensemble directory: model/ensemble.py) translates the source side of a
corpus's train split with beam search, and a student trains on (source, the teacher's best translation)
instead of, or beside, the human references. The teacher's outputs are more regular than references
(one translation per source, near the mode of the teacher's distribution), which a single small model
learns more easily, and the student's greedy or small-beam search then comes close to the teacher's wide
one (Kim & Rush: +1.4 BLEU at beam 5 and +4 greedy for small LSTMs). So an ensemble's quality can be had
at one model's cost, and a small beam can suffice.

The result is an ordinary corpus directory (data/corpus.py) whose train split holds the teacher's
translations, one per distinct source. Its valid and test splits are the original corpus's, with their
human references, so the student can train on it as its corpus and still be validated and chosen as any
model is; or its train split can be added to another corpus with `data.extra_train`.
"""

from __future__ import annotations

from pathlib import Path

from carousel.errors import UserError
from carousel.data.backtranslation import machine_translations
from carousel.data.corpus import (CorpusManifest, DroppedRecord, load_corpus_manifest, read_split, spread_sample,
                                  write_corpus)

CHUNK_SENTENCES = 2048  # per call: long enough for well-filled batches sorted by length, short enough for progress


def distinct_sources(corpus: Path, column: str, max_pairs: int = 0,
                     manifest: CorpusManifest | None = None) -> list[tuple[str, str]]:
    """(id, source) of each distinct non-empty source of the corpus's train split, first occurrence kept;
    with `max_pairs`, at most that many, spread over the split (`manifest`: the corpus's, if already read)."""
    try:
        columns = (manifest or load_corpus_manifest(corpus)).columns
        if column not in columns:
            raise UserError(f"{corpus} has no column {column!r} (its columns: {', '.join(columns)})")
        if "id" in columns:
            rows = read_split(corpus, "train", ["id", column])
        else:
            rows = [(f"train:{number}", text) for number, (text,) in enumerate(read_split(corpus, "train", [column]), 1)]
    except (OSError, ValueError) as error:
        raise UserError(f"cannot read the train split of {corpus}: {error}") from None
    seen: set[str] = set()
    distinct = []
    for record_id, source in rows:
        if source.strip() and source not in seen:
            seen.add(source)
            distinct.append((record_id, source))
    return spread_sample(distinct, max_pairs)


def held_out_splits(corpus: Path, columns: list[str],
                    manifest: CorpusManifest | None = None) -> dict[str, list[tuple[str, ...]]]:
    """The valid and test rows of `corpus` in `columns` (id, source, target), references untouched; none
    where the corpus lacks a column (a monolingual corpus has nothing to validate against)."""
    manifest = manifest or load_corpus_manifest(corpus)
    if not set(columns) <= set(manifest.columns):
        return {}
    return {split: read_split(corpus, split, columns) for split in ("valid", "test")}


def distill(rows: list[tuple[str, str]], teacher, search, out_dir: Path, source: dict, batch_tokens: int = 12000,
            progress: bool = True, held_out: dict[str, list[tuple[str, ...]]] | None = None,
            ) -> tuple[CorpusManifest, dict[str, list[tuple[str, ...]]]]:
    """Translate each (id, source) row with `teacher` and write the corpus `out_dir` (named after it, with
    `source` as its provenance): columns id, the source (the teacher's source language) and the teacher's
    translation (its target language). Rows whose translation comes back empty are dropped with a reason.
    `held_out` (valid and test rows in the same columns, see `held_out_splits`) is written beside, as is."""
    if teacher.src_lang == teacher.tgt_lang:
        raise UserError("distillation needs a teacher between two different languages")
    translations = machine_translations([text for _, text in rows], teacher, search, batch_tokens, progress,
                                        "distilling", chunk=CHUNK_SENTENCES)
    kept, dropped = [], []
    for (record_id, original), translation in zip(rows, translations, strict=True):
        if translation.strip():
            kept.append((record_id, original, translation))
        else:
            dropped.append(DroppedRecord(id=record_id, reason="empty", detail="the teacher's translation is empty"))
    columns = [teacher.src_lang, teacher.tgt_lang]
    manifest = write_corpus(
        out_dir,
        name=out_dir.name,
        columns=["id", *columns],
        languages={column: column for column in columns},
        splits={**(held_out or {}), "train": kept},
        source=source,
        dropped=dropped,
    )
    return manifest, {**(held_out or {}), "train": kept}
