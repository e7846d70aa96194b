"""SentencePiece models: reproducible, trained on the train split only, with the ids the model code expects."""

from __future__ import annotations

import json
import random
import re

import pytest
import sentencepiece as spm

from carousel.errors import UserError
from carousel.data.corpus import write_corpus
from carousel.data.subwords import SubwordConfig, ensure_subword_models

SMALL = SubwordConfig(vocab_size=120, seed=3)
TEST_ONLY_WORD = "zanahoriaxyzzy"


def _make_corpus(directory):
    """A toy es/en corpus; one long row and one word exist only outside the train split."""
    rng = random.Random(0)
    syllables = ["ka", "lo", "mi", "ne", "ru", "ta", "be", "so", "di", "fu", "ga", "pe", "jo", "vi", "ce"]
    spanish = ["".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))) for _ in range(80)]
    english = [word.upper() for word in spanish]
    train = []
    for number in range(300):
        picks = [rng.randrange(len(spanish)) for _ in range(rng.randint(2, 7))]
        train.append((f"t{number}", " ".join(spanish[i] for i in picks), " ".join(english[i] for i in picks)))
    train.append(("long", "ñandú " * 400, "rhea " * 400))  # longer than max_sentence_chars: left out
    test = [("x1", f"el {TEST_ONLY_WORD} {TEST_ONLY_WORD}", "the carrot")] * 3
    write_corpus(
        directory,
        name="toy",
        columns=["id", "es", "en"],
        languages={"es": "es", "en": "en"},
        splits={"train": train, "valid": test, "test": test},
        source={},
        dropped=[],
    )
    return directory


def test_training_is_reproducible(tmp_path):
    first = ensure_subword_models(_make_corpus(tmp_path / "a"), "es", "en", SMALL)
    second = ensure_subword_models(_make_corpus(tmp_path / "b"), "es", "en", SMALL)
    assert first.src_model == first.tgt_model and first.src_model.name == "joint.model"
    assert first.src_model.read_bytes() == second.src_model.read_bytes()
    assert first.src_model.with_suffix(".vocab").exists()


def test_models_are_trained_on_the_train_split_only_and_use_the_agreed_ids(tmp_path):
    models = ensure_subword_models(_make_corpus(tmp_path), "es", "en", SMALL)
    processor = spm.SentencePieceProcessor(model_file=str(models.src_model))
    pieces = {processor.id_to_piece(i) for i in range(processor.get_piece_size())}
    assert not any("zanahoria" in piece.lstrip("▁") or "xyzzy" in piece for piece in pieces)
    assert "ñ" not in "".join(pieces)  # the over-long training row was excluded
    assert (processor.pad_id(), processor.unk_id(), processor.bos_id(), processor.eos_id()) == (0, 1, 2, 3)
    settings = json.loads((models.src_model.parent / "settings.json").read_text())
    assert settings["train_rows"] == 301 and settings["train_rows_used"] == 300


def test_existing_models_are_reused_and_settings_change_the_directory(tmp_path):
    corpus = _make_corpus(tmp_path)
    first = ensure_subword_models(corpus, "es", "en", SMALL)
    stamp = first.src_model.stat().st_mtime_ns
    assert ensure_subword_models(corpus, "es", "en", SMALL).src_model.stat().st_mtime_ns == stamp
    bpe = ensure_subword_models(corpus, "es", "en", SMALL.model_copy(update={"model_type": "bpe"}))
    assert bpe.src_model.parent != first.src_model.parent


def test_separate_models_per_language(tmp_path):
    models = ensure_subword_models(
        _make_corpus(tmp_path), "es", "en", SMALL.model_copy(update={"joint": False, "vocab_size": 60})
    )
    assert (models.src_model.name, models.tgt_model.name) == ("es.model", "en.model")
    english = spm.SentencePieceProcessor(model_file=str(models.tgt_model))
    sentence = train_sentence(models.tgt_model.parent.parent.parent, "en")
    assert english.decode(english.encode(sentence)) == sentence


def test_source_normalisation_is_applied_before_training(tmp_path):
    models = ensure_subword_models(
        _make_corpus(tmp_path), "es", "en", SMALL.model_copy(update={"joint": False, "vocab_size": 60}), str.upper
    )
    processor = spm.SentencePieceProcessor(model_file=str(models.src_model))
    text = "".join(processor.id_to_piece(i) for i in range(4, processor.get_piece_size()))
    assert "K" in text and "k" not in text


def train_sentence(corpus, column):
    from carousel.data.corpus import read_split

    return read_split(corpus, "train", [column])[0][0]


def test_unknown_column_and_oversized_vocabulary_are_user_errors(tmp_path):
    corpus = _make_corpus(tmp_path)
    with pytest.raises(UserError, match="no text column 'fr'"):
        ensure_subword_models(corpus, "es", "fr", SMALL)
    with pytest.raises(UserError, match="SentencePiece training"):
        ensure_subword_models(corpus, "es", "en", SMALL.model_copy(update={"vocab_size": 50_000}))


def test_a_vocabulary_no_text_could_fill_is_refused_before_sentencepiece_runs(tmp_path, monkeypatch):
    corpus = _make_corpus(tmp_path)

    def never(**settings):
        raise AssertionError("SentencePiece should not have been started")

    monkeypatch.setattr(spm.SentencePieceTrainer, "train", never)
    with pytest.raises(UserError, match=r"vocabulary size 50000 is too large") as refused:
        ensure_subword_models(corpus, "es", "en", SMALL.model_copy(update={"vocab_size": 50_000}))
    suggested = int(re.search(r"--set subwords.vocab_size=(\d+)", str(refused.value)).group(1))
    assert f"--subword-vocab {suggested}" in str(refused.value)
    monkeypatch.undo()
    # The suggested size is one SentencePiece can fill.
    models = ensure_subword_models(corpus, "es", "en", SMALL.model_copy(update={"vocab_size": suggested}))
    assert spm.SentencePieceProcessor(model_file=str(models.src_model)).get_piece_size() == suggested


def test_a_vocabulary_sentencepiece_cannot_fill_is_refused_with_the_size_it_names(tmp_path):
    corpus = _make_corpus(tmp_path)
    # 400 is below the sure bound (the summed length of the distinct words) but above what unigram learns.
    with pytest.raises(UserError, match=r"vocabulary size 400 is too large .*\(SentencePiece can fill at most \d+ pieces\)") as refused:
        ensure_subword_models(corpus, "es", "en", SMALL.model_copy(update={"vocab_size": 400}))
    message = str(refused.value)
    assert "INTERNAL" not in message and "trainer_interface" not in message
    suggested = int(re.search(r"--set subwords.vocab_size=(\d+)", message).group(1))
    models = ensure_subword_models(corpus, "es", "en", SMALL.model_copy(update={"vocab_size": suggested}))
    assert spm.SentencePieceProcessor(model_file=str(models.src_model)).get_piece_size() == suggested
