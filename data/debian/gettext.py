"""Pairs from the compiled gettext catalogs (`.mo`) of a package: msgid is English, msgstr Spanish.

Catalogs are found wherever a package keeps them (`usr/share/locale/es/LC_MESSAGES`, LibreOffice's
`program/resource/es/LC_MESSAGES`, Wesnoth's `translations/es/LC_MESSAGES`, ...), for the locales `es`
and `es_ES`. The entries become pairs by the rules every gettext import shares (`carousel.data.gettext`:
plural forms, translator credits, empty and untranslated entries); the accelerator marks and the
remaining checks are applied by `carousel.data.debian.cleaning`.
"""

from __future__ import annotations

from pathlib import Path

import polib

from carousel.data.corpus import DroppedRecord
from carousel.data.debian.records import Candidate
from carousel.data.gettext import catalog_pairs

LOCALES = ("es", "es_ES")


def find_catalogs(root: Path) -> list[Path]:
    """The package's Spanish `.mo` files, sorted by path."""
    return sorted(
        path
        for path in root.rglob("*.mo")
        if path.parent.name == "LC_MESSAGES" and path.parent.parent.name in LOCALES and path.is_file()
    )


def catalog_name(path: Path) -> str:
    """The catalog's part of an id: `gimp20.mo`, or `gimp20.mo@es_ES` for the es_ES locale."""
    locale = path.parent.parent.name
    return path.name if locale == "es" else f"{path.name}@{locale}"


def catalog_candidates(
    package: str, root: Path, dropped: list[DroppedRecord]
) -> list[Candidate]:
    """The pairs of every Spanish catalog in an unpacked package; drops are appended to `dropped`."""
    candidates: list[Candidate] = []
    for path in find_catalogs(root):
        prefix = f"gettext:{package}:{catalog_name(path)}"
        try:
            catalog = polib.mofile(str(path))
        except (OSError, ValueError) as error:
            dropped.append(DroppedRecord(id=prefix, reason="unreadable catalog", detail=str(error)[:200]))
            continue
        for pair_id, english, spanish in catalog_pairs(catalog, prefix, dropped):
            candidates.append(Candidate(pair_id, english, spanish, package, "gettext", package))
    return candidates
