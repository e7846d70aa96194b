"""Pairs from the Debian manuals: debian-reference, debian-handbook, the installation guide, maint-guide.

Each manual is DocBook rendered to HTML in both languages from one source (translated with po4a or
Publican), so a page's n-th block translates the n-th block of the same page in the other language
where the two pages have the same sequence of blocks (`blocks.align_pages`); pages whose sequences
differ are dropped whole. Publican (the handbook) writes paragraphs as `<div class="para">`, read
here as `<p>`; navigation bars and tables of contents are left out, since they repeat the headings.
Every page is one held-out unit (`maint-guide:checkit`). Spanish blocks left in English are dropped:
identical ones by the cleaning step, the others where they read as English (`cleaning.looks_english`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import lxml.html

from carousel.data.corpus import DroppedRecord
from carousel.data.debian.blocks import align_pages, html_element_blocks
from carousel.data.debian.cleaning import without_english
from carousel.data.debian.records import Candidate

_LEFT_OUT = (
    "//div[@class='navheader' or @class='navfooter' or @class='toc' or starts-with(@class, 'list-of-')]"
    " | //ul[@class='docnav']"
)


@dataclass(frozen=True)
class Manual:
    """Where one manual's HTML pages are in its English and Spanish packages."""

    name: str
    english_package: str
    spanish_package: str
    english_dir: str
    spanish_dir: str
    english_suffix: str = ".html"
    spanish_suffix: str = ".html"

    @property
    def packages(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.english_package, self.spanish_package)))


MANUALS = (
    Manual(
        "debian-reference", "debian-reference-en", "debian-reference-es",
        "usr/share/debian-reference", "usr/share/debian-reference", ".en.html", ".es.html",
    ),
    Manual(
        "debian-handbook", "debian-handbook", "debian-handbook",
        "usr/share/doc/debian-handbook/html/en-US", "usr/share/doc/debian-handbook/html/es-ES",
    ),
    Manual(
        "installation-guide", "installation-guide-amd64", "installation-guide-amd64",
        "usr/share/doc/installation-guide-amd64/en", "usr/share/doc/installation-guide-amd64/es",
    ),
    Manual(
        "maint-guide", "maint-guide", "maint-guide-es",
        "usr/share/doc/maint-guide/html", "usr/share/doc/maint-guide-es/html", ".en.html", ".es.html",
    ),
)
PACKAGES = tuple(dict.fromkeys(package for manual in MANUALS for package in manual.packages))


def manual_blocks(path: Path) -> list[tuple[str, str]]:
    """(tag, text) of the blocks of a DocBook HTML page, navigation and tables of contents left out."""
    tree = lxml.html.parse(str(path))
    for element in tree.xpath(_LEFT_OUT):
        element.drop_tree()
    for element in tree.xpath("//div[@class='para']"):
        element.tag = "p"
    body = tree.find("body")
    return html_element_blocks(body if body is not None else tree.getroot())


def manual_candidates(
    manual: Manual, english_root: Path, spanish_root: Path, dropped: list[DroppedRecord]
) -> list[Candidate]:
    """Pairs of every page of one manual present in both languages, each page its own unit; Spanish
    blocks that read as English are dropped."""
    english_dir, spanish_dir = english_root / manual.english_dir, spanish_root / manual.spanish_dir
    candidates: list[Candidate] = []
    for english_page in sorted(english_dir.glob(f"*{manual.english_suffix}")):
        page = english_page.name.removesuffix(manual.english_suffix)
        prefix = f"{manual.name}:{page}"
        spanish_page = spanish_dir / f"{page}{manual.spanish_suffix}"
        if not spanish_page.is_file():
            dropped.append(DroppedRecord(id=prefix, reason="no Spanish page"))
            continue
        pair = [(prefix, english_page, spanish_page)]
        candidates += align_pages(pair, manual_blocks, manual.spanish_package, "debian-doc", prefix, dropped)
    return without_english(candidates, dropped)


def manuals_candidates(roots: dict[str, Path], dropped: list[DroppedRecord]) -> list[Candidate]:
    """Pairs of every manual whose packages were all selected."""
    candidates: list[Candidate] = []
    for manual in MANUALS:
        if all(package in roots for package in manual.packages):
            english_root, spanish_root = roots[manual.english_package], roots[manual.spanish_package]
            candidates += manual_candidates(manual, english_root, spanish_root, dropped)
    return candidates
