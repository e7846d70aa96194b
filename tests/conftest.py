"""Shared fixtures: a tiny corpus sliced from the committed Bible corpus and a tiny model trained on it.

The model trains for a few seconds (training/configs/tiny.yaml, fewer steps); it translates badly but
exercises every real code path: subwords, normalisation, training, export, loading, search.
"""

from __future__ import annotations

import errno
import json
import importlib.util
import math
import os
import shutil
import sys
from pathlib import Path

import pytest
import torch

from carousel.data.corpus import SPLITS, load_corpus_manifest, read_split, write_corpus
from carousel.training.config import TrainConfig, load_config

ROOT = Path(__file__).resolve().parents[1]
BIBLE = ROOT / "data" / "corpora" / "bible"
TINY_CONFIG = ROOT / "training" / "configs" / "tiny.yaml"

# Test models are tiny: one thread is as fast as two and leaves a core to whatever else runs.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    """The committed Bible corpus, cut to 1,500 train / 40 valid / 40 test verses."""
    out = tmp_path_factory.mktemp("corpus") / "bible-slice"
    full = load_corpus_manifest(BIBLE)
    sizes = {"train": 1500, "valid": 40, "test": 40}
    splits = {split: read_split(BIBLE, split, full.columns)[: sizes[split]] for split in SPLITS}
    write_corpus(out, "bible-slice", full.columns, full.languages, splits, {"sliced_from": str(BIBLE)}, [])
    return out


def tiny_train_config(run_dir: Path, corpus: Path, *overrides: str) -> TrainConfig:
    defaults = [
        f"run_dir={run_dir}",
        f"data.corpus={corpus}",
        "training.max_steps=60",
        "training.validate_every=30",
        "training.checkpoint_every=20",
        "training.log_every=10",
        f"export.dir={run_dir / 'model'}",
    ]
    return load_config(TINY_CONFIG, [*defaults, *overrides])


def disk_full() -> OSError:
    """The error a write gets when the disk is full (for tests that make a write fail partway)."""
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_corpus) -> Path:
    """A model directory exported by a real (tiny, short) training run."""
    from carousel.training.export import export_run
    from carousel.training.trainer import run_training

    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    trainer, progress = run_training(tiny_train_config(run_dir, tiny_corpus))
    return export_run(trainer, progress, command=["pytest"])


@pytest.fixture(scope="session")
def tiny_test_pairs(tiny_corpus) -> list[tuple[str, str]]:
    return read_split(tiny_corpus, "test", ["es", "en"])


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory, tiny_model_dir) -> Path:
    """A models directory, as `carousel serve` reads it, holding the tiny model as `tiny-es-en` (read-only)."""
    directory = tmp_path_factory.mktemp("models")
    shutil.copytree(tiny_model_dir, directory / "tiny-es-en")
    return directory


@pytest.fixture(scope="session")
def two_way_models_dir(tmp_path_factory, tiny_model_dir) -> Path:
    """A models directory serving es→en (`tiny-es-en`) and en→es (`tiny-en-es`: the same weights, said to
    translate en→es), as an es↔en server is; no calibration. Read-only."""
    directory = tmp_path_factory.mktemp("two-way")
    shutil.copytree(tiny_model_dir, directory / "tiny-es-en")
    save_perturbed_copy(tiny_model_dir, directory / "tiny-en-es", 0.0, src_lang="en", tgt_lang="es")
    return directory


@pytest.fixture(scope="session")
def calibrated_models_dir(tmp_path_factory, tiny_model_dir) -> Path:
    """A models directory with the tiny model calibrated for confidence, as `carousel calibrate` leaves it
    (`tiny-es-en`: confidence.json, recorded in the card), and the reverse model the calibration names
    (`tiny-en-es`: the same weights, said to translate en→es; uncalibrated itself). The calibration reads
    one signal, `source_len`, which depends on the source alone: a sentence of a few subword pieces gets
    about 1, one of more than 16 about 0, so tests know which sentences are doubtful. Read-only."""
    from carousel.model.card import update_card
    from carousel.fileio import sha256_file
    from carousel.model.confidence import FILE_NAME, Calibration

    directory = tmp_path_factory.mktemp("calibrated")
    forward, reverse = directory / "tiny-es-en", directory / "tiny-en-es"
    shutil.copytree(tiny_model_dir, forward)
    save_perturbed_copy(tiny_model_dir, reverse, 0.0, src_lang="en", tgt_lang="es")
    calibration = Calibration(["source_len"], [math.log1p(16)], [0.25], [-3.0], 0.0, {})
    (forward / FILE_NAME).write_text(calibration.to_json(), encoding="utf-8")
    reverse_card = json.loads((reverse / "card.json").read_text(encoding="utf-8"))
    update_card(forward, confidence={
        "file": FILE_NAME, "sha256": sha256_file(forward / FILE_NAME), "reverse_model": "../tiny-en-es",
        "reverse_checksums": reverse_card["checksums"], "features": calibration.features,
    })
    return directory


def load_script(path: Path):
    """Import a script of scripts/ as a module, for tests of its functions."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def rewrite_config(directory: Path, **fields) -> None:
    """Change fields of a model directory's config.json and update its checksum, as if exported that way."""
    from carousel.fileio import sha256_file

    config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    (directory / "config.json").write_text(json.dumps({**config, **fields}), encoding="utf-8")
    card = json.loads((directory / "card.json").read_text(encoding="utf-8"))
    card["checksums"]["config.json"] = sha256_file(directory / "config.json")
    (directory / "card.json").write_text(json.dumps(card), encoding="utf-8")


def save_perturbed_copy(source: Path, target: Path, noise: float, **changes) -> None:
    """Export `source`'s model with Gaussian noise of std `noise` added to every weight: a model with the
    same subwords that predicts differently. `changes` (name, src_lang, tgt_lang) relabel it."""
    from carousel.model.checkpoint import load_model_dir, save_model_dir

    loaded = load_model_dir(source)
    torch.manual_seed(0)
    with torch.no_grad():
        for parameter in loaded.model.parameters():
            parameter.add_(noise * torch.randn_like(parameter))
    card = dict(loaded.card, name=changes.get("name", loaded.card.get("name")))
    save_model_dir(target, loaded.model, src_lang=changes.get("src_lang", loaded.src_lang),
                   tgt_lang=changes.get("tgt_lang", loaded.tgt_lang), source_spm=loaded.source_spm,
                   target_spm=loaded.target_spm, normalizer=loaded.normalizer, card=card)
