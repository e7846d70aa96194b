"""Pairs from LibreOffice's help: the same page in `libreoffice-help-es` and `libreoffice-help-en-us`.

Every paragraph and heading of a help page carries an id (`par_id3152986`, `hd_id3145389`) that
the translation keeps, so elements are paired by (page, id) rather than by position. Help text is
documentation: it is split into sentences by the cleaning step.
"""

from __future__ import annotations

import re
from pathlib import Path

import lxml.html

from carousel.data.corpus import DroppedRecord
from carousel.data.debian.records import Candidate

ENGLISH_PACKAGE = "libreoffice-help-en-us"
SPANISH_PACKAGE = "libreoffice-help-es"
_HELP = Path("usr/share/libreoffice/help")
_ELEMENT_ID = re.compile(r"^(?:par|hd)_id\w+$")


def page_texts(path: Path) -> dict[str, str]:
    """Element id → text of a help page; an id used twice with different texts is left out."""
    tree = lxml.html.parse(str(path))
    texts: dict[str, str] = {}
    ambiguous: set[str] = set()
    for element in tree.iter():
        element_id = element.get("id") if isinstance(element.tag, str) else None
        if not element_id or not _ELEMENT_ID.match(element_id):
            continue
        text = element.text_content()
        if element_id in texts and texts[element_id] != text:
            ambiguous.add(element_id)
        texts.setdefault(element_id, text)
    return {key: value for key, value in texts.items() if key not in ambiguous}


def unit_of(page: str) -> str:
    """The held-out unit of a page: its help module (`libreoffice-help:text/smath`)."""
    return "libreoffice-help:" + "/".join(page.split("/")[:2])


def help_candidates(english_root: Path, spanish_root: Path, dropped: list[DroppedRecord]) -> list[Candidate]:
    """Pairs of every help page present in both languages, by element id."""
    english_dir = english_root / _HELP / "en-US"
    spanish_dir = spanish_root / _HELP / "es"
    candidates: list[Candidate] = []
    for english_page in sorted(english_dir.rglob("*.html")):
        page = english_page.relative_to(english_dir).as_posix()
        spanish_page = spanish_dir / page
        if not spanish_page.is_file():
            dropped.append(DroppedRecord(id=f"lo-help:{page}", reason="no Spanish page"))
            continue
        english, spanish = page_texts(english_page), page_texts(spanish_page)
        for element_id in sorted(english.keys() & spanish.keys()):
            candidates.append(
                Candidate(
                    id=f"lo-help:{page}:{element_id}",
                    en=english[element_id],
                    es=spanish[element_id],
                    package=SPANISH_PACKAGE,
                    kind="lo-help",
                    unit=unit_of(page),
                    document=True,
                )
            )
    return candidates
