"""The exported model directory: loads safely, translates, and refuses anything damaged or foreign."""

from __future__ import annotations

import io
import json
import pickle
import re
import shutil
from pathlib import Path

import pytest
import torch

import carousel.fileio
from carousel.model.card import CARD_JSON, ModelSaveError, update_card
from carousel.model.checkpoint import CONFIG, WEIGHTS, ModelLoadError, load_model_dir, save_model_dir
from carousel.model.search import SearchConfig
from carousel.model.loading import load_translator
from tests.conftest import disk_full


def _copy(model_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(model_dir, target)
    return target


def test_exported_directory_holds_every_file_and_a_card(tiny_model_dir):
    names = {p.name for p in tiny_model_dir.iterdir()}
    assert {"model.safetensors", "config.json", "source.model", "target.model", "normalization.json",
            "card.json", "card.md"} <= names
    card = json.loads((tiny_model_dir / CARD_JSON).read_text())
    assert card["training"]["steps"] == 60
    assert card["parameters"] > 0
    assert set(card["checksums"]) >= {"model.safetensors", "config.json"}
    assert "valid" in card["corpus"]["splits"]


def test_loaded_model_translates_and_is_deterministic(tiny_model_dir):
    translator = load_translator(tiny_model_dir)
    sentences = ["Y dijo Dios: Sea la luz.", "", "EN el principio crió Dios los cielos y la tierra."]
    first = translator.translate_texts(sentences, SearchConfig(beam_size=3))
    again = translator.translate_texts(sentences, SearchConfig(beam_size=3))
    assert first == again
    assert first[1] == [("", 0.0)]
    assert all(isinstance(text, str) for nbest in first for text, _ in nbest)


def test_half_precision_weights_load_as_float32(tiny_model_dir):
    loaded = load_model_dir(tiny_model_dir)
    assert all(p.dtype == torch.float32 for p in loaded.model.parameters())


def test_missing_directory_and_missing_file_are_named(tiny_model_dir, tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model_dir(tmp_path / "nowhere")
    broken = _copy(tiny_model_dir, tmp_path)
    (broken / "source.model").unlink()
    with pytest.raises(ModelLoadError, match="source.model is missing"):
        load_model_dir(broken)


def test_truncated_weights_are_refused(tiny_model_dir, tmp_path):
    broken = _copy(tiny_model_dir, tmp_path)
    data = (broken / WEIGHTS).read_bytes()
    (broken / WEIGHTS).write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match="checksum"):
        load_model_dir(broken)


def test_flipped_byte_is_refused(tiny_model_dir, tmp_path):
    broken = _copy(tiny_model_dir, tmp_path)
    data = bytearray((broken / WEIGHTS).read_bytes())
    data[len(data) - 100] ^= 0xFF
    (broken / WEIGHTS).write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="checksum"):
        load_model_dir(broken)


def _rewrite_checksums(directory: Path) -> None:
    """Simulate an attacker (or a careless edit) that also updates card.json's checksums."""
    from carousel.fileio import sha256_file
    from carousel.model.checkpoint import CHECKSUMMED

    card = json.loads((directory / CARD_JSON).read_text())
    card["checksums"] = {name: sha256_file(directory / name) for name in CHECKSUMMED}
    update_card(directory, checksums=card["checksums"])


def test_config_that_does_not_match_the_weights_is_refused(tiny_model_dir, tmp_path):
    broken = _copy(tiny_model_dir, tmp_path)
    config = json.loads((broken / CONFIG).read_text())
    config["model"]["decoder_hidden"] *= 2
    (broken / CONFIG).write_text(json.dumps(config))
    _rewrite_checksums(broken)
    with pytest.raises(ModelLoadError, match="does not match config.json"):
        load_model_dir(broken)


def test_truncated_weights_with_matching_checksums_are_still_refused(tiny_model_dir, tmp_path):
    broken = _copy(tiny_model_dir, tmp_path)
    data = (broken / WEIGHTS).read_bytes()
    (broken / WEIGHTS).write_bytes(data[: len(data) - 64])
    _rewrite_checksums(broken)
    with pytest.raises(ModelLoadError, match="unreadable weights"):
        load_model_dir(broken)


class _CreatesFile:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_pickle_crafted_to_run_code_is_refused_and_never_executed(tiny_model_dir, tmp_path):
    broken = _copy(tiny_model_dir, tmp_path)
    marker = tmp_path / "pwned"
    (broken / WEIGHTS).write_bytes(pickle.dumps({"weights": _CreatesFile(marker)}))
    _rewrite_checksums(broken)
    with pytest.raises(ModelLoadError):
        load_model_dir(broken)
    assert not marker.exists()


def _files(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in directory.iterdir()}


def _save_again(loaded) -> None:
    save_model_dir(
        loaded.directory, loaded.model, src_lang=loaded.src_lang, tgt_lang=loaded.tgt_lang,
        source_spm=loaded.source_spm, target_spm=loaded.target_spm, normalizer=loaded.normalizer, card=loaded.card,
    )


def test_a_full_disk_during_export_keeps_the_previous_directory_and_leaves_no_partial_one(
    tiny_model_dir, tmp_path, monkeypatch
):
    model_dir = _copy(tiny_model_dir, tmp_path)
    before = _files(model_dir)

    def copy_until_the_disk_is_full(source, target, **_):  # the SentencePiece copies follow the weights and config
        Path(target).write_bytes(Path(source).read_bytes()[:100])
        raise disk_full()

    monkeypatch.setattr(shutil, "copyfile", copy_until_the_disk_is_full)
    message = re.escape(f"cannot save model directory {model_dir}: ") + ".*No space left on device"
    with pytest.raises(ModelSaveError, match=message):
        _save_again(load_model_dir(model_dir))
    monkeypatch.undo()
    assert _files(model_dir) == before
    assert [path.name for path in tmp_path.iterdir()] == ["model"]  # no model.partial, no model.old

    _save_again(load_model_dir(model_dir))  # with room on the disk, the new directory replaces the old one
    load_model_dir(model_dir)
    assert [path.name for path in tmp_path.iterdir()] == ["model"]


def test_a_full_disk_during_a_card_update_keeps_the_card(tiny_model_dir, tmp_path, monkeypatch):
    model_dir = _copy(tiny_model_dir, tmp_path)
    before = _files(model_dir)

    class HalfThenFull(io.FileIO):  # the disk fills up halfway through the new card
        def write(self, data) -> int:
            super().write(bytes(data)[: len(data) // 2])
            raise disk_full()

    monkeypatch.setattr(carousel.fileio, "open", lambda path, mode, **_: HalfThenFull(path, "w"), raising=False)
    with pytest.raises(ModelSaveError, match="card.json: No space left on device; the file is unchanged"):
        update_card(model_dir, evaluation={"test": {"bleu": 12.3}})
    monkeypatch.undo()
    assert _files(model_dir) == before  # card.json intact (it holds the checksums), no temporary file left
    load_model_dir(model_dir)
