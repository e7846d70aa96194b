"""Filters that drop unusable sentence pairs, each drop recorded with its reason.

Rules, in order: empty side, too long, source/target length ratio, exact duplicate pair.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pydantic import BaseModel, Field

from carousel.data.corpus import DroppedRecord

# Added to both lengths before taking their ratio, so short pairs ("Sí." / "Yes, I do.")
# are not dropped for a handful of characters.
RATIO_SLACK_CHARS = 10

_WHITESPACE = re.compile(r"\s+")

Pair = tuple[str, str, str]  # (id, source, target)


class CleaningConfig(BaseModel):
    """Limits for imported sentence pairs; `None` switches a rule off."""

    max_tokens: int | None = Field(250, gt=0, description="most whitespace-separated tokens on either side")
    max_chars: int | None = Field(None, gt=0, description="most characters on either side")
    max_ratio: float | None = Field(3.0, ge=1.0, description="largest character-length ratio between the sides")
    drop_duplicates: bool = True


def normalize_whitespace(text: str) -> str:
    """Collapse every whitespace run (tabs, newlines, Unicode spaces) to one space and strip the ends."""
    return _WHITESPACE.sub(" ", text).strip()


def length_ratio(*texts: str) -> float:
    """Longest over shortest character length of the texts, each with `RATIO_SLACK_CHARS` added."""
    lengths = [len(text) + RATIO_SLACK_CHARS for text in texts]
    return max(lengths) / min(lengths)


def clean_pairs(
    pairs: Iterable[Pair], config: CleaningConfig, seen: dict[tuple[str, str], str] | None = None
) -> tuple[list[Pair], list[DroppedRecord]]:
    """Normalise whitespace and filter pairs; return the kept pairs and a record of each drop.

    `seen` maps (source, target) pairs already taken (for example by the test split) to their id,
    so their duplicates are dropped here too; it is updated with the pairs kept.
    """
    seen = {} if seen is None else seen
    kept: list[Pair] = []
    dropped: list[DroppedRecord] = []
    for pair_id, source, target in pairs:
        source, target = normalize_whitespace(source), normalize_whitespace(target)
        reason, detail = _rejection(source, target, config)
        if reason is None and config.drop_duplicates:
            if (source, target) in seen:
                reason, detail = "duplicate", f"same as {seen[source, target]}"
            else:
                seen[source, target] = pair_id
        if reason is None:
            kept.append((pair_id, source, target))
        else:
            dropped.append(DroppedRecord(id=pair_id, reason=reason, detail=detail))
    return kept, dropped


def _rejection(source: str, target: str, config: CleaningConfig) -> tuple[str | None, str]:
    """The first rule a pair breaks, as (reason, detail), or (None, "")."""
    if not source or not target:
        return "empty", "source" if not source else "target"
    if config.max_tokens is not None:
        tokens = max(len(source.split()), len(target.split()))
        if tokens > config.max_tokens:
            return "too long", f"{tokens} tokens > {config.max_tokens}"
    if config.max_chars is not None:
        chars = max(len(source), len(target))
        if chars > config.max_chars:
            return "too long", f"{chars} characters > {config.max_chars}"
    if config.max_ratio is not None:
        ratio = length_ratio(source, target)
        if ratio > config.max_ratio:
            return "length ratio", f"{ratio:.2f} > {config.max_ratio}"
    return None, ""
