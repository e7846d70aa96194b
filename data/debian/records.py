"""The record every extractor yields: one candidate English–Spanish pair and where it came from."""

from __future__ import annotations

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
