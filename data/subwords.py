"""SentencePiece subword models, trained on a corpus's train split only and stored beside it.

Models live in `CORPUS_DIR/subwords/<hash>/`, where the hash covers the settings, the two
columns, the train split's checksum and the SentencePiece version, so a changed corpus or
setting trains a new model instead of reusing a stale one. `settings.json` there says how
the model was made. Training is reproducible: one thread, every sentence, a fixed seed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import sentencepiece as spm
from pydantic import BaseModel, Field

from carousel.errors import UserError
from carousel.model.config import BOS_ID, EOS_ID, PAD_ID, UNK_ID  # the model's special ids: one definition
from carousel.data.corpus import load_corpus_manifest, read_split

SETTINGS_NAME = "settings.json"


class SubwordConfig(BaseModel):
    """How the subword vocabulary is learnt."""

    vocab_size: int = Field(8000, ge=8)
    model_type: Literal["unigram", "bpe"] = "unigram"
    joint: bool = Field(True, description="one model for both languages, else one per language")
    character_coverage: float = Field(1.0, gt=0.0, le=1.0)
    normalization_rule_name: str = Field("nmt_nfkc", description="SentencePiece's text normalisation")
    seed: int = 1
    max_sentence_chars: int = Field(1000, gt=0, description="training rows with a longer side are left out")


@dataclass(frozen=True)
class SubwordModels:
    """Paths of the trained models (the same file twice when joint)."""

    src_model: Path
    tgt_model: Path


def ensure_subword_models(
    corpus_dir: Path,
    src_col: str,
    tgt_col: str,
    config: SubwordConfig,
    normalize_source: Callable[[str], str] | None = None,
) -> SubwordModels:
    """Return the subword models for a column pair, training them first if they do not exist yet.

    `normalize_source` is applied to source sentences before training; it is identified in the
    settings hash by its module and name, so changing its behaviour needs a new name.
    """
    corpus_dir = Path(corpus_dir)
    manifest = load_corpus_manifest(corpus_dir)
    for column in (src_col, tgt_col):
        if column not in manifest.languages:
            raise UserError(f"{corpus_dir}: no text column {column!r} (have {', '.join(manifest.languages)})")
    if src_col == tgt_col:
        raise UserError(f"{corpus_dir}: source and target column are both {src_col!r}")
    settings = {
        "subwords": config.model_dump(),
        "columns": {"source": src_col, "target": tgt_col},
        "normalize_source": _callable_name(normalize_source),
        "train_sha256": manifest.splits["train"].sha256,
        "sentencepiece": spm.__version__,
    }
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode("utf-8")).hexdigest()[:12]
    directory = corpus_dir / "subwords" / digest
    models = _model_paths(directory, src_col, tgt_col, config.joint)
    if not (directory / SETTINGS_NAME).exists():
        _train_into(directory, corpus_dir, src_col, tgt_col, config, normalize_source, settings)
    return models


def _train_into(directory, corpus_dir, src_col, tgt_col, config, normalize_source, settings) -> None:
    """Train in a temporary directory and rename it into place, so a half-trained model is never found."""
    rows = read_split(corpus_dir, "train", [src_col, tgt_col])
    used = [row for row in rows if max(len(row[0]), len(row[1])) <= config.max_sentence_chars]
    sources = [normalize_source(row[0]) if normalize_source else row[0] for row in used]
    targets = [row[1] for row in used]
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    try:
        if config.joint:
            _train(staging / "joint", sources + targets, config)
        else:
            _train(staging / src_col, sources, config)
            _train(staging / tgt_col, targets, config)
        record = {**settings, "train_rows": len(rows), "train_rows_used": len(used)}
        (staging / SETTINGS_NAME).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        try:
            os.rename(staging, directory)
        except OSError:
            if not (directory / SETTINGS_NAME).exists():  # not just another process finishing first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _train(prefix: Path, sentences: list[str], config: SubwordConfig) -> None:
    """Train one SentencePiece model, writing `prefix.model` and `prefix.vocab`."""
    _check_vocab_size(prefix.name, sentences, config)
    model = io.BytesIO()  # not `model_prefix`: the model would record that (temporary) path
    spm.set_random_generator_seed(config.seed)
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences),
            model_writer=model,
            vocab_size=config.vocab_size,
            model_type=config.model_type,
            character_coverage=config.character_coverage,
            normalization_rule_name=config.normalization_rule_name,
            pad_id=PAD_ID,
            unk_id=UNK_ID,
            bos_id=BOS_ID,
            eos_id=EOS_ID,
            # Reproducibility: all sentences in file order, one thread.
            input_sentence_size=0,
            shuffle_input_sentence=False,
            num_threads=1,
            minloglevel=2,
        )
    except RuntimeError as error:
        # Keep SentencePiece's message, not its source location: "INTERNAL: src/x.cc(744) [check] message".
        message = re.sub(r"^\w+: \S+\(\d+\) \[.*?\] ", "", str(error).splitlines()[-1])
        largest = re.search(r"Vocabulary size too high .*<= (\d+)", message)
        if largest:  # below the sure bound of _check_vocab_size, but more than this text fills
            most = int(largest.group(1))
            raise UserError(_too_large(prefix.name, config.vocab_size, len(sentences), f"SentencePiece can fill at most {most:,} pieces", most)) from None
        raise UserError(f"SentencePiece training for {prefix.name} failed: {message}") from None
    prefix.parent.joinpath(f"{prefix.name}.model").write_bytes(model.getvalue())
    processor = spm.SentencePieceProcessor(model_proto=model.getvalue())
    vocabulary = "".join(
        f"{processor.id_to_piece(i)}\t{processor.get_score(i):g}\n" for i in range(processor.get_piece_size())
    )
    prefix.parent.joinpath(f"{prefix.name}.vocab").write_text(vocabulary, encoding="utf-8")


def vocab_size_bounds(sentences: list[str]) -> tuple[int, int]:
    """(a size SentencePiece can fill, the most pieces it could make) for a text, without training.

    Every piece beyond the characters and the 4 special ones is a merge inside one word ("▁word"), so
    there can be no more than the summed length of the distinct words (BPE reaches about a third of that,
    the unigram trainer less: 1,327 distinct words in 100 Bible verses give 4,280 BPE and 941 unigram
    pieces). About 0.45 pieces a distinct word was within reach of both on every text measured (Bible
    slices of 100–2,000 verses, a synthetic one); SentencePiece itself names the exact bound when it fails.
    """
    words = {word for sentence in sentences for word in sentence.split()}
    characters = {character for sentence in sentences for character in sentence if not character.isspace()}
    fills = max(len(characters) + 4, int(len(words) * 0.45))
    return fills, len(characters) + 4 + sum(len(word) for word in words)


def _check_vocab_size(name: str, sentences: list[str], config: SubwordConfig) -> None:
    """Refuse, before SentencePiece runs, a vocabulary the training text cannot possibly fill."""
    fills, most = vocab_size_bounds(sentences)
    if config.vocab_size > most:
        raise UserError(_too_large(name, config.vocab_size, len(sentences), f"their words make at most {most:,} pieces", fills))


def _too_large(name: str, vocab_size: int, sentences: int, bound: str, suggested: int) -> str:
    suggested = _round_down(suggested)
    return (
        f"vocabulary size {vocab_size} is too large for SentencePiece training of {name} on {sentences:,} "
        f"sentences ({bound}): use --set subwords.vocab_size={suggested} with `carousel train`, "
        f"or --subword-vocab {suggested} with `carousel prepare`"
    )


def _round_down(value: int) -> int:
    """`value` rounded down to two significant digits (4,437 → 4,400), for a size to suggest."""
    step = 10 ** max(0, len(str(value)) - 2)
    return max(8, value // step * step)


def _model_paths(directory: Path, src_col: str, tgt_col: str, joint: bool) -> SubwordModels:
    if joint:
        return SubwordModels(directory / "joint.model", directory / "joint.model")
    return SubwordModels(directory / f"{src_col}.model", directory / f"{tgt_col}.model")


def _callable_name(function: Callable | None) -> str | None:
    """A stable name for the source normaliser, part of the settings hash.

    Functions are named `module.qualname`; callable objects by their class and a digest of their
    repr, so a differently configured normaliser gets new models.
    """
    if function is None:
        return None
    if hasattr(function, "__qualname__"):
        return f"{getattr(function, '__module__', None) or type(function).__module__}.{function.__qualname__}"
    kind = type(function)
    digest = hashlib.sha256(repr(function).encode("utf-8")).hexdigest()[:12]
    return f"{kind.__module__}.{kind.__qualname__}:{digest}"
