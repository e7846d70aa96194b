"""The model card: `card.json` (what the model is, how it was trained and scored, and the SHA-256 of
every file, verified at load by model/checkpoint.py) and `card.md`, its readable rendering.

Both are written through a temporary file and a rename, so a failed write (disk full) keeps the old
card: card.json holds the checksums, and a truncated one would make the model unloadable.
"""

from __future__ import annotations

import json
from pathlib import Path

from carousel.errors import UserError
from carousel.fileio import write_atomically
from carousel.model.search import (
    DEFAULT_BEAM_SIZE,
    DEFAULT_LENGTH_PENALTY,
    MAX_BEAM_SIZE,
    MAX_CHANNEL_WEIGHT,
    MAX_LENGTH_PENALTY,
    MAX_NGRAM_BAN,
    MAX_PATIENCE,
    is_valid_beam_size,
    is_valid_channel_weight,
    is_valid_length_penalty,
    is_valid_ngram_ban,
    is_valid_patience,
)

CARD_JSON, CARD_MD = "card.json", "card.md"


class ModelLoadError(UserError):
    """The model directory cannot be used; the message says which file and why."""


class ModelSaveError(UserError):
    """The model directory could not be written (disk full, permissions); the previous one is unchanged."""


def write_card(directory: Path, card: dict) -> None:
    """card.json and card.md of `card` in `directory`."""
    _replace_file(Path(directory) / CARD_JSON, json.dumps(card, indent=2, ensure_ascii=False))
    _replace_file(Path(directory) / CARD_MD, render_card_markdown(card))


def read_card(directory: Path) -> dict:
    """A model directory's card.json; {} when it is missing or unreadable (loading the model says why)."""
    try:
        card = json.loads((Path(directory) / CARD_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return card if isinstance(card, dict) else {}


def training_corpus(card: dict) -> dict:
    """The card's `corpus` entry (path, name, columns of the training corpus), or {}."""
    corpus = card.get("corpus", {})
    return corpus if isinstance(corpus, dict) else {}


def record_evaluation(directory: Path, key: str, entry: dict) -> None:
    """Keep scores under card["evaluation"][key] beside those of other splits and precisions."""
    evaluation = read_card(directory).get("evaluation")
    update_card(Path(directory), evaluation={**(evaluation if isinstance(evaluation, dict) else {}), key: entry})


def update_card(directory: Path, **fields) -> dict:
    """Add fields (e.g. evaluation results) to an existing card, re-rendering card.md."""
    card = json.loads((directory / CARD_JSON).read_text(encoding="utf-8"))
    card.update(fields)
    write_card(directory, card)
    return card


def _replace_file(path: Path, text: str) -> None:
    """Write through a temporary sibling renamed over `path`: a failed write (disk full) keeps the old
    file, so card.json (which holds the checksums) is never left truncated."""
    try:
        write_atomically(path, text)
    except OSError as error:
        raise ModelSaveError(f"cannot write {path}: {error.strerror or error}; the file is unchanged") from error


def render_card_markdown(card: dict) -> str:
    """A human-readable model card from card.json's fields."""
    lines = [f"# {card.get('name', 'carousel model')}", ""]
    if card.get("description"):
        lines += [card["description"], ""]
    for key, value in card.items():
        if key in {"name", "description", "checksums"}:
            continue
        if isinstance(value, (dict, list)):
            lines += [f"## {key}", "", "```json", json.dumps(value, indent=2, ensure_ascii=False), "```", ""]
        else:
            lines.append(f"- **{key}**: {value}")
    lines += ["", "## checksums (SHA-256, verified at load)", ""]
    lines += [f"- `{name}`: `{digest}`" for name, digest in card.get("checksums", {}).items()]
    return "\n".join(lines) + "\n"


def tuned_length_penalty(card: dict) -> float:
    """The length penalty `carousel tune` chose on validation data (card.json `decoding`), else the default."""
    decoding = card.get("decoding") or {}
    if not isinstance(decoding, dict):
        raise ModelLoadError(f"card.json decoding must be an object, got {decoding!r}; fix or remove it")
    return float(_tuned_setting(card, "length_penalty", DEFAULT_LENGTH_PENALTY, _is_length_penalty,
                                f"a number from 0 to {MAX_LENGTH_PENALTY:g}"))


def _is_length_penalty(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and is_valid_length_penalty(value)


def tuned_beam_size(card: dict) -> int:
    """The beam `carousel tune` chose, or tuned the other settings at (card.json `decoding.beam`), else 5."""
    return _tuned_setting(card, "beam", DEFAULT_BEAM_SIZE, is_valid_beam_size, f"a whole number from 1 to {MAX_BEAM_SIZE}")


def tuned_patience(card: dict) -> float:
    """The beam search patience `carousel tune` chose (card.json `decoding.patience`), else 1 (the usual rule)."""
    return float(_tuned_setting(card, "patience", 1.0, is_valid_patience, f"a number from 1 to {MAX_PATIENCE:g}"))


def tuned_close_open(card: dict) -> bool:
    """Whether the model reads an unpunctuated sentence closed where that is likelier (model/closing.py)."""
    return _tuned_setting(card, "close_open", False, lambda value: isinstance(value, bool), "true or false")


def tuned_ngram_ban(card: dict) -> int:
    """The n-gram repeat ban `carousel tune` chose (card.json `decoding.no_repeat_ngram`), else 0 (off)."""
    return _tuned_setting(card, "no_repeat_ngram", 0, is_valid_ngram_ban, f"0 or from 2 to {MAX_NGRAM_BAN}")


def _tuned_setting(card: dict, key: str, default, is_valid, expected: str):
    """card.json `decoding.<key>` as `carousel tune` recorded it, else `default`; a value `is_valid` refuses
    is a load error that says what was `expected`."""
    decoding = card.get("decoding") or {}
    value = decoding.get(key, default) if isinstance(decoding, dict) else default
    if not is_valid(value):
        raise ModelLoadError(f"card.json decoding.{key} must be {expected}, got {value!r}; fix or remove it")
    return value


def channel_settings(card: dict) -> tuple[str, float] | None:
    """The channel model (a path relative to the model directory) and weight `carousel tune` chose, if any."""
    decoding = card.get("decoding") or {}
    channel = decoding.get("channel") if isinstance(decoding, dict) else None
    if channel is None:
        return None
    model, weight = (channel.get("model"), channel.get("weight")) if isinstance(channel, dict) else (None, None)
    if not isinstance(model, str) or isinstance(weight, bool) or not isinstance(weight, (int, float)) \
            or not is_valid_channel_weight(weight):
        raise ModelLoadError(f"card.json decoding.channel must hold a model path and a weight from 0 to "
                             f"{MAX_CHANNEL_WEIGHT:g}, got {channel!r}; fix or remove it")
    return model, float(weight)
