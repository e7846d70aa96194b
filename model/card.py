"""The model card: `card.json` (what the model is, how it was trained and scored, and the SHA-256 of
every file, verified at load by model/checkpoint.py) and `card.md`, its readable rendering.

Both are written through a temporary file and a rename, so a failed write (disk full) keeps the old
card: card.json holds the checksums, and a truncated one would make the model unloadable.
"""

from __future__ import annotations

import json
from pathlib import Path

from carousel.errors import UserError
from carousel.io import write_atomically

CARD_JSON, CARD_MD = "card.json", "card.md"


class ModelSaveError(UserError):
    """The model directory could not be written (disk full, permissions); the previous one is unchanged."""


def write_card(directory: Path, card: dict) -> None:
    """card.json and card.md of `card` in `directory`."""
    _replace_file(Path(directory) / CARD_JSON, json.dumps(card, indent=2, ensure_ascii=False))
    _replace_file(Path(directory) / CARD_MD, render_card_markdown(card))


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
