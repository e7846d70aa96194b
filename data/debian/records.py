"""The record every extractor yields: one candidate English–Spanish pair and where it came from."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    """A pair before cleaning.

    `unit` is what is held out as a whole for valid/test: a package, or a part of a large manual
    (`libreoffice-help:text/smath`). `document` marks paragraph text (split into sentences and checked
    for differing numbers) as opposed to a catalog string (checked for placeholders and markup).
    """

    id: str
    en: str
    es: str
    package: str
    kind: str
    unit: str
    document: bool = False


def short_hash(*parts: str) -> str:
    """A stable 12-hex-digit digest of the parts (NUL-joined), for readable but unique ids."""
    return hashlib.sha1("\0".join(parts).encode("utf-8")).hexdigest()[:12]
