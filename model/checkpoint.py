"""The exported model directory: weights that load without executing code, plus everything to use them.

    model.safetensors     weights (safetensors: a plain tensor container, nothing is unpickled)
    member-2.safetensors  ... only in an ensemble: the weights of its further members (model/ensemble.py)
    config.json           format version, ModelConfig, languages, the weight files
    source.model, target.model   SentencePiece models (the same file twice when joint)
    normalization.json    source-side normalisation rules (model/normalize.py)
    card.json, card.md    the model card (model/card.py); card.json holds SHA-256 checksums verified at load

Every way a directory can be wrong (missing file, truncated or flipped bytes, a config that does not
match the weights) ends in `ModelLoadError` with a message that names the file.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from pydantic import ValidationError
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from carousel.errors import UserError
from carousel.fileio import sha256_file
from carousel.model.card import CARD_JSON, ModelLoadError, ModelSaveError, write_card
from carousel.model.normalize import Normalizer
from carousel.model.config import ModelConfig
from carousel.model.ensemble import Ensemble, valid_member_weights
from carousel.model.seq2seq import Seq2Seq

FORMAT_NAME = "carousel-model"
FORMAT_VERSION = 1
WEIGHTS, CONFIG = "model.safetensors", "config.json"
SOURCE_SPM, TARGET_SPM, NORMALIZATION = "source.model", "target.model", "normalization.json"
CHECKSUMMED = [WEIGHTS, CONFIG, SOURCE_SPM, TARGET_SPM, NORMALIZATION]


@dataclass
class LoadedModel:
    model: Seq2Seq | Ensemble
    config: ModelConfig
    directory: Path
    src_lang: str
    tgt_lang: str
    source_spm: Path
    target_spm: Path
    normalizer: Normalizer
    card: dict
    weight_files: list[str]  # model.safetensors, then one file per further ensemble member


def save_model_dir(
    directory: Path,
    model: Seq2Seq,
    *,
    src_lang: str,
    tgt_lang: str,
    source_spm: Path,
    target_spm: Path,
    normalizer: Normalizer,
    card: dict,
    half_precision: bool = True,
) -> None:
    """Write a complete model directory atomically (a temporary sibling renamed into place)."""
    directory = Path(directory)
    with _staging_directory(directory) as staging:
        tensors = _weights_to_save(model, half_precision)
        save_file(tensors, str(staging / WEIGHTS), metadata={"format": FORMAT_NAME})
        os.chmod(staging / WEIGHTS, 0o644)  # safetensors writes 0600; a service user must be able to read it
        config = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "src_lang": src_lang,
            "tgt_lang": tgt_lang,
            "model": model.config.model_dump(mode="json"),
        }
        (staging / CONFIG).write_text(json.dumps(config, indent=2), encoding="utf-8")
        shutil.copyfile(source_spm, staging / SOURCE_SPM)
        shutil.copyfile(target_spm, staging / TARGET_SPM)
        normalizer.save(staging / NORMALIZATION)
        card = dict(card, checksums={name: sha256_file(staging / name) for name in CHECKSUMMED})
        card.setdefault("parameters", model.parameter_count())
        write_card(staging, card)
    _move_into_place(staging, directory)


def save_ensemble_dir(directory: Path, members: list[LoadedModel], card: dict) -> None:
    """Write one model directory holding several models' weights, which translate as an ensemble.

    The members must share languages, architecture, SentencePiece models and source normalisation
    (the caller checks, naming what differs). Their weight files are copied unchanged; a member that
    is itself an ensemble contributes all of its files."""
    directory = Path(directory)
    sources = [member.directory / name for member in members for name in member.weight_files]
    names = [WEIGHTS] + [f"member-{n}.safetensors" for n in range(2, len(sources) + 1)]
    curves = [member.directory / name for member in members for name in _curve_names(len(member.weight_files))]
    with _staging_directory(directory) as staging:
        for source, name in zip(sources, names):
            shutil.copyfile(source, staging / name)
            os.chmod(staging / name, 0o644)
        for source, name in zip(curves, _curve_names(len(names))):  # each member's training curves, where kept
            if source.is_file():
                shutil.copyfile(source, staging / name)
        config = _read_json(members[0].directory / CONFIG)
        config["weights"] = names
        (staging / CONFIG).write_text(json.dumps(config, indent=2), encoding="utf-8")
        for name in (SOURCE_SPM, TARGET_SPM, NORMALIZATION):
            shutil.copyfile(members[0].directory / name, staging / name)
        card = dict(card, checksums={name: sha256_file(staging / name) for name in CHECKSUMMED + names[1:]})
        write_card(staging, card)
    _move_into_place(staging, directory)


def _curve_names(members: int) -> list[str]:
    """The training-curve plots of a directory with this many weight files, in member order."""
    return ["curves.png"] + [f"curves-member-{n}.png" for n in range(2, members + 1)]


def _move_into_place(staging: Path, directory: Path) -> None:
    if directory.exists():
        old = directory.with_name(directory.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(directory, old)
        os.replace(staging, directory)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, directory)


@contextmanager
def _staging_directory(directory: Path) -> Iterator[Path]:
    """An empty sibling `<name>.partial` to write the new directory into. If writing fails it is
    removed, so no half-written directory is left, and a full disk becomes a `ModelSaveError`."""
    staging = directory.with_name(directory.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir(parents=True)
        yield staging
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(error, (OSError, SafetensorError)):  # safetensors reports I/O errors as its own type
            raise ModelSaveError(f"cannot save model directory {directory}: {error}; nothing was changed") from error
        raise


def load_model_dir(directory: Path) -> LoadedModel:
    directory = Path(directory)
    if not directory.is_dir():
        raise ModelLoadError(f"model directory {directory} does not exist")
    for name in CHECKSUMMED + [CARD_JSON]:
        if not (directory / name).is_file():
            raise ModelLoadError(f"{directory / name} is missing: not a complete model directory")
    card = _read_json(directory / CARD_JSON)
    _verify_checksums(directory, card, CHECKSUMMED)
    raw = _read_json(directory / CONFIG)
    if raw.get("format") != FORMAT_NAME or raw.get("format_version") != FORMAT_VERSION:
        raise ModelLoadError(f"{directory / CONFIG}: not a {FORMAT_NAME} v{FORMAT_VERSION} config")
    try:
        config = ModelConfig.model_validate(raw["model"])
    except (ValidationError, KeyError) as error:
        raise ModelLoadError(f"{directory / CONFIG}: invalid model config: {error}") from None
    weight_files = _weight_files(directory, raw)
    _verify_checksums(directory, card, weight_files[1:])  # config.json, verified above, lists them
    members = []
    for name in weight_files:
        member = Seq2Seq(config)
        _load_weights(member, directory / name)
        members.append(member.eval())
    model = members[0] if len(members) == 1 else Ensemble(members, _member_weights(directory, card, members)).eval()
    try:
        normalizer = Normalizer.load(directory / NORMALIZATION)
    except (KeyError, TypeError, ValueError) as error:
        raise ModelLoadError(f"{directory / NORMALIZATION}: invalid: {error}") from None
    return LoadedModel(
        model=model,
        config=config,
        directory=directory,
        src_lang=str(raw.get("src_lang", "src")),
        tgt_lang=str(raw.get("tgt_lang", "tgt")),
        source_spm=directory / SOURCE_SPM,
        target_spm=directory / TARGET_SPM,
        normalizer=normalizer,
        card=card,
        weight_files=weight_files,
    )


def _weights_to_save(model: Seq2Seq, half_precision: bool) -> dict[str, torch.Tensor]:
    tensors = {}
    for name, tensor in model.state_dict().items():
        if model.config.tie_output and name == "decoder.output_projection.weight":
            continue  # the same tensor as decoder.embedding.weight
        tensor = tensor.detach().cpu()
        if half_precision and tensor.is_floating_point():
            tensor = tensor.half()
        tensors[name] = tensor.contiguous()
    return tensors


def _load_weights(model: Seq2Seq, path: Path) -> None:
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise ModelLoadError(f"{path}: unreadable weights ({error})") from None
    expected = model.state_dict()
    if model.config.tie_output:
        expected.pop("decoder.output_projection.weight")
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise ModelLoadError(
            f"{path} does not match config.json: missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    for name, tensor in tensors.items():
        if tensor.shape != expected[name].shape:
            raise ModelLoadError(
                f"{path} does not match config.json: {name} has shape {tuple(tensor.shape)}, "
                f"the config needs {tuple(expected[name].shape)}"
            )
        if not torch.isfinite(tensor.float()).all():
            raise ModelLoadError(f"{path}: {name} holds NaN or infinite values")
    model.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=False)


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelLoadError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(value, dict):
        raise ModelLoadError(f"{path}: expected a JSON object")
    return value


def _member_weights(directory: Path, card: dict, members: list) -> list[float] | None:
    """An ensemble's member weights as `carousel tune --member-weights` chose them (card.json decoding)."""
    decoding = card.get("decoding")
    weights = decoding.get("member_weights") if isinstance(decoding, dict) else None
    if weights is not None and not (isinstance(weights, list) and valid_member_weights(weights, len(members))):
        raise ModelLoadError(f"{directory / CARD_JSON}: decoding.member_weights must be {len(members)} positive "
                             f"numbers, got {weights!r}; fix or remove it")
    return weights


def _weight_files(directory: Path, raw_config: dict) -> list[str]:
    """config.json `weights`: the member files of an ensemble, model.safetensors first; absent: one model."""
    names = raw_config.get("weights", [WEIGHTS])
    if not isinstance(names, list) or not names or names[0] != WEIGHTS or len(set(names)) != len(names):
        raise ModelLoadError(f"{directory / CONFIG}: weights must list distinct files, {WEIGHTS} first")
    for name in names:
        # Plain names inside the directory only: a config must not point at files elsewhere.
        if not isinstance(name, str) or Path(name).name != name or not name.endswith(".safetensors"):
            raise ModelLoadError(f"{directory / CONFIG}: weights entry {name!r} is not a .safetensors file name")
        if not (directory / name).is_file():
            raise ModelLoadError(f"{directory / name} is missing: not a complete model directory")
    return names


def _verify_checksums(directory: Path, card: dict, names: list[str]) -> None:
    checksums = card.get("checksums")
    if not isinstance(checksums, dict):
        raise ModelLoadError(f"{directory / CARD_JSON} has no checksums")
    for name in names:
        if checksums.get(name) != sha256_file(directory / name):
            raise ModelLoadError(f"{directory / name} does not match its checksum in card.json (corrupt or modified)")


def check_compatible(members) -> None:
    """Refuse members that could not share one search: the first difference is named."""
    first = members[0]
    for member in members[1:]:
        if (member.src_lang, member.tgt_lang) != (first.src_lang, first.tgt_lang):
            raise UserError(f"{member.directory} translates {member.src_lang}→{member.tgt_lang}, "
                            f"{first.directory} {first.src_lang}→{first.tgt_lang}")
        if member.config.architecture() != first.config.architecture():
            raise UserError(f"{member.directory} has a different architecture or vocabulary size than {first.directory}")
        for name in (SOURCE_SPM, TARGET_SPM, NORMALIZATION):
            if sha256_file(member.directory / name) != sha256_file(first.directory / name):
                raise UserError(f"{member.directory / name} differs from {first.directory / name}: "
                                "ensemble members must share subwords and source normalisation")


def ensemble_card(members, name: str, command: str) -> dict:
    first = members[0].card
    shared = {key: first[key] for key in ("languages", "corpus", "subwords", "source_normalization", "architecture")
              if key in first}
    described = []
    for member in members:
        entry = {"directory": str(member.directory), "name": member.card.get("name"),
                 "weights_sha256": [sha256_file(member.directory / file) for file in member.weight_files]}
        for key in ("corpus", "training", "validation", "evaluation", "decoding", "history", "ensemble"):
            if key in member.card:
                entry[key] = member.card[key]
        described.append(entry)
    return {
        "name": name,
        "description": f"Ensemble of {sum(len(m.weight_files) for m in members)} LSTM encoder-decoders with "
                       "attention (carousel): every decoding step averages the members' probabilities.",
        **shared,
        "parameters": sum(member.model.parameter_count() for member in members),
        "ensemble": {"command": command, "members": described},
    }
