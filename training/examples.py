"""Training data: corpus splits read, source normalised, SentencePiece-encoded, length-filtered."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import sentencepiece as spm

from carousel.errors import UserError
from carousel.data.corpus import load_corpus_manifest, read_split
from carousel.model.normalize import Normalizer, build_normalizer
from carousel.data.subwords import SubwordModels, ensure_subword_models
from carousel.model.config import EOS_ID
from carousel.training.batching import Example
from carousel.training.config import DataConfig, TrainConfig

log = logging.getLogger(__name__)


@dataclass
class TrainingData:
    train: list[Example]
    valid: list[Example]
    valid_sources: list[str]  # raw source text (the translator normalises it again, as in serving)
    valid_references: list[str]
    source_spm: Path
    target_spm: Path
    normalizer: Normalizer
    src_vocab_size: int
    tgt_vocab_size: int


def load_training_data(config: TrainConfig) -> TrainingData:
    data = config.data
    _check_normalizer_language(data)
    normalizer = build_normalizer(data.normalize_source)
    models = _subword_models(config, normalizer)
    source_sp = spm.SentencePieceProcessor(model_file=str(models.src_model))
    target_sp = spm.SentencePieceProcessor(model_file=str(models.tgt_model))

    train_pairs = _corpus_train_rows(data, [data.src, data.tgt]) + _extra_training_pairs(data)
    valid_pairs = read_split(data.corpus, "valid", [data.src, data.tgt])
    if data.max_valid_examples:
        valid_pairs = valid_pairs[: data.max_valid_examples]
    if not train_pairs or not valid_pairs:
        raise UserError(f"{data.corpus}: the train and valid splits must not be empty")

    def encode(pairs):
        sources = source_sp.encode([normalizer(s) for s, _ in pairs])
        targets = target_sp.encode([t for _, t in pairs])
        return [Example(s + [EOS_ID], t) for s, t in zip(sources, targets)]

    train = [ex for ex in encode(train_pairs) if _fits(ex, data.max_train_tokens)]
    log.info("training pairs: %d kept of %d (max %d subwords)", len(train), len(train_pairs), data.max_train_tokens)
    return TrainingData(
        train=train,
        valid=encode(valid_pairs),
        valid_sources=[s for s, _ in valid_pairs],
        valid_references=[t for _, t in valid_pairs],
        source_spm=models.src_model,
        target_spm=models.tgt_model,
        normalizer=normalizer,
        src_vocab_size=source_sp.get_piece_size(),
        tgt_vocab_size=target_sp.get_piece_size(),
    )


def _subword_models(config: TrainConfig, normalizer: Normalizer) -> SubwordModels:
    """The corpus's own subword models, or those of the model a run starts from (`init_from`): its
    weights number the pieces of its own vocabulary, so continuing it on a new corpus keeps that vocabulary."""
    if config.training.init_from:
        directory = Path(config.training.init_from)
        models = SubwordModels(directory / "source.model", directory / "target.model")
        missing = [str(path) for path in (models.src_model, models.tgt_model) if not path.is_file()]
        if missing:
            raise UserError(f"init_from {directory}: no subword model {', '.join(missing)}; is it an exported model directory?")
        return models
    data = config.data
    return ensure_subword_models(data.corpus, data.src, data.tgt, config.subwords, normalize_source=normalizer)


def source_language(data: DataConfig) -> str:
    """The source's language code: `data.src_lang`, else the corpus manifest's code for the source column."""
    if data.src_lang:
        return data.src_lang
    return load_corpus_manifest(data.corpus).languages.get(data.src, data.src)


def _check_normalizer_language(data: DataConfig) -> None:
    """Refuse the Spanish normaliser on a source that is not Spanish: it would rewrite that language's
    words (`á` → `a`, `fué` → `fue`, capitalised `EN` → `En`) in training and in every served request."""
    if data.normalize_source != "spanish_modern":
        return
    language = source_language(data)
    if re.split(r"[-_]", language.lower())[0] not in {"es", "spa"}:
        raise UserError(
            f"data.normalize_source=spanish_modern rewrites Spanish spelling, but the source column "
            f"{data.src!r} of {data.corpus} is in {language!r}: add --set data.normalize_source=none "
            f"(or --set data.src_lang=es if that column is Spanish)"
        )


def _extra_training_pairs(data: DataConfig) -> list[tuple[str, str]]:
    """Pairs that only training sees: other source columns of the corpus (e.g. a second English
    translation of each verse), other target columns behind a source tag (a second translation style,
    as target-language tags select the output of multilingual NMT, Johnson et al. 2017), and the
    train splits of other corpora (e.g. back-translations)."""
    pairs: list[tuple[str, str]] = []
    for column in data.extra_sources:
        rows = _corpus_train_rows(data, [column, data.tgt])
        log.info("extra source column %s: %d pairs", column, len(rows))
        pairs += rows
    for column, tag in data.extra_targets.items():
        rows = _corpus_train_rows(data, [data.src, column])
        rows = [(source, target) for source, target in rows if source.strip() and target.strip()]
        log.info("extra target column %s behind the source tag %r: %d pairs", column, tag, len(rows))
        pairs += [(f"{tag} {source}", target) for source, target in rows]
    for corpus in data.extra_train:
        rows = read_split(corpus, "train", [data.src, data.tgt])
        log.info("extra training corpus %s: %d pairs", corpus, len(rows))
        pairs += rows
    return pairs


def _corpus_train_rows(data: DataConfig, columns: list[str]) -> list[tuple[str, ...]]:
    """The chosen columns of the corpus's train split, cut to `max_train_examples` like its own pairs."""
    rows = read_split(data.corpus, "train", columns)
    return rows[: data.max_train_examples] if data.max_train_examples else rows


def _fits(example: Example, max_tokens: int) -> bool:
    return 1 < len(example.src) <= max_tokens and 0 < len(example.tgt) < max_tokens
