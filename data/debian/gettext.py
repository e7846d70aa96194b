"""Pairs from the compiled gettext catalogs (`.mo`) of a package: msgid is English, msgstr Spanish.

Catalogs are found wherever a package keeps them (`usr/share/locale/es/LC_MESSAGES`, LibreOffice's
`program/resource/es/LC_MESSAGES`, Wesnoth's `translations/es/LC_MESSAGES`, ...), for the locales `es`
and `es_ES`. Plural entries give two pairs: the singular msgid with msgstr[0] and msgid_plural with
msgstr[1] (Spanish has two forms, like English). msgctxt only disambiguates the id. Translator credits
and untranslated entries (msgstr equal to msgid) are dropped here with a reason; the accelerator marks
and the remaining checks are applied by `carousel.data.debian.cleaning`.
"""

from __future__ import annotations

from pathlib import Path

import polib

from carousel.data.corpus import DroppedRecord
from carousel.data.debian.records import Candidate, short_hash

LOCALES = ("es", "es_ES")

# msgids (or msgctxts, for KDE) that hold the translators' names rather than a translation.
CREDIT_MARKERS = frozenset(
    {
        "translator-credits",
        "translator_credits",
        "translatorcredits",
        "translator credits",
        "your names",
        "your emails",
        "name of translators",
        "email of translators",
        "roles_of_translators",
        "credit_for_translators",
        "translated by",
    }
)


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


def is_credit(entry: polib.MOEntry) -> bool:
    """Whether the entry names translators (GNOME `translator-credits`, KDE `Your names`, ...)."""
    return entry.msgid.strip().lower() in CREDIT_MARKERS or (entry.msgctxt or "").strip().lower() in CREDIT_MARKERS


def entry_pairs(entry: polib.MOEntry, prefix: str) -> list[tuple[str, str, str]]:
    """(id, English, Spanish) of one entry: one pair, or two for a plural entry."""
    key = short_hash(entry.msgctxt or "", entry.msgid)
    if entry.msgid_plural:
        forms = entry.msgstr_plural or {}
        pairs = [(f"{prefix}:{key}", entry.msgid, forms.get(0, ""))]
        pairs.append((f"{prefix}:{key}:plural", entry.msgid_plural, forms.get(1, forms.get(0, ""))))
        return pairs
    return [(f"{prefix}:{key}", entry.msgid, entry.msgstr)]


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
        for entry in catalog:
            if not entry.msgid:  # the header
                continue
            for pair_id, english, spanish in entry_pairs(entry, prefix):
                if is_credit(entry):
                    dropped.append(DroppedRecord(id=pair_id, reason="translator credits"))
                elif not spanish.strip():
                    dropped.append(DroppedRecord(id=pair_id, reason="empty", detail="es"))
                elif spanish == english:
                    dropped.append(DroppedRecord(id=pair_id, reason="untranslated"))
                else:
                    candidates.append(Candidate(pair_id, english, spanish, package, "gettext", package))
    return candidates
