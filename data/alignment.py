"""Find verses that sit under the wrong reference in one translation (versification shifts).

A module can number verses differently from the versification it declares: RV1909 keeps the
Spanish numbering in Jonah 2, Job 39–40, Numbers 13 and elsewhere, so under the KJV reference
`Jonah 2:2` it holds the text of KJV `Jonah 2:1`. Such a verse shares more features (Strong's
numbers, or words for two English versions) with a neighbouring verse of the other translation
than with the verse under its own reference.
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from dataclasses import dataclass


@dataclass(frozen=True)
class Shift:
    """A verse that matches a neighbour of the other translation better than its own counterpart."""

    ref: str
    own_overlap: float
    neighbour_ref: str
    neighbour_overlap: float


def jaccard(a: Set[str], b: Set[str]) -> float:
    """|a ∩ b| / |a ∪ b|, 0 for two empty sets."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def find_shifted_verses(
    refs: Sequence[str],
    books: Sequence[str],
    features: dict[str, Set[str]],
    reference_features: dict[str, Set[str]],
    window: int = 5,
    margin: float = 0.2,
) -> list[Shift]:
    """Return the verses that overlap a neighbour by `margin` more than their own counterpart.

    Neighbours are the reference translation's verses within `window` verses in the same book.

    `refs` and `books` run in canonical order; verses without features on either side are not judged.
    """
    shifted = []
    for index, ref in enumerate(refs):
        mine, theirs = features[ref], reference_features[ref]
        if not mine or not theirs:
            continue
        own = jaccard(mine, theirs)
        best_overlap, best_ref = 0.0, ref
        for other in range(max(0, index - window), min(len(refs), index + window + 1)):
            if other == index or books[other] != books[index]:
                continue
            overlap = jaccard(mine, reference_features[refs[other]])
            if overlap > best_overlap:
                best_overlap, best_ref = overlap, refs[other]
        if best_overlap >= own + margin:
            shifted.append(Shift(ref, own, best_ref, best_overlap))
    return shifted
