"""Manuals aligned by block order: the GIMP manual (HTML) and GNOME help (Mallard `.page`).

A translated page is generated from the same source as the English page, so where the two have the
same sequence of block elements (paragraphs, headings, list and table items) the n-th block of one
translates the n-th block of the other. Pages whose block sequences differ are dropped whole, with
the reason, rather than guessed at.
"""

from __future__ import annotations

from pathlib import Path

import lxml.etree
import lxml.html

from carousel.data.corpus import DroppedRecord
from carousel.data.debian.records import Candidate

_HTML_BLOCKS = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "dt", "th", "td", "caption", "title"})
_HTML_SKIP = frozenset({"pre", "script", "style"})
_MALLARD_BLOCKS = frozenset({"title", "subtitle", "desc", "p", "td", "th"})
_MALLARD_SKIP = frozenset({"code", "screen", "info", "media", "synopsis"})


def _local(tag) -> str:
    return lxml.etree.QName(tag).localname if isinstance(tag, str) else ""


def _blocks(root, block_names: frozenset[str], skip_names: frozenset[str]) -> list[tuple[str, str]]:
    """(tag, text) of the outermost block elements of a tree, in document order."""
    found: list[tuple[str, str]] = []

    def walk(element) -> None:
        name = _local(element.tag)
        if name in skip_names:
            return
        if name in block_names:
            found.append((name, "".join(element.itertext())))
            return
        for child in element:
            walk(child)

    walk(root)
    return found


def html_blocks(path: Path) -> list[tuple[str, str]]:
    """Block elements of an HTML page's body."""
    tree = lxml.html.parse(str(path))
    body = tree.find("body")
    return html_element_blocks(body if body is not None else tree.getroot())


def html_element_blocks(element) -> list[tuple[str, str]]:
    """Block elements of a parsed HTML element (`html_blocks` without the reading)."""
    return _blocks(element, _HTML_BLOCKS, _HTML_SKIP)


def mallard_blocks(path: Path) -> list[tuple[str, str]]:
    """Block elements of a Mallard page."""
    parser = lxml.etree.XMLParser(resolve_entities=False, no_network=True, recover=True)
    root = lxml.etree.parse(str(path), parser).getroot()
    return _blocks(root, _MALLARD_BLOCKS, _MALLARD_SKIP)


def align_pages(
    pairs: list[tuple[str, Path, Path]],
    read,
    package: str,
    kind: str,
    unit: str,
    dropped: list[DroppedRecord],
) -> list[Candidate]:
    """Candidates of every (id prefix, English page, Spanish page) whose block sequences match."""
    candidates: list[Candidate] = []
    for prefix, english_page, spanish_page in pairs:
        try:
            english, spanish = read(english_page), read(spanish_page)
        except (OSError, lxml.etree.LxmlError) as error:
            dropped.append(DroppedRecord(id=prefix, reason="unreadable page", detail=str(error)[:200]))
            continue
        if [tag for tag, _ in english] != [tag for tag, _ in spanish]:
            detail = f"{len(english)} vs {len(spanish)} blocks"
            dropped.append(DroppedRecord(id=prefix, reason="page structure differs", detail=detail))
            continue
        for number, ((_, en), (_, es)) in enumerate(zip(english, spanish, strict=True), start=1):
            candidates.append(Candidate(f"{prefix}:{number}", en, es, package, kind, unit, document=True))
    return candidates


def gimp_candidates(english_root: Path, spanish_root: Path, dropped: list[DroppedRecord]) -> list[Candidate]:
    """The GIMP manual: `gimp-help-en` against `gimp-help-es`, page by page."""
    english_dir = english_root / "usr/share/gimp/2.0/help/en"
    spanish_dir = spanish_root / "usr/share/gimp/2.0/help/es"
    pairs = []
    for english_page in sorted(english_dir.rglob("*.html")):
        page = english_page.relative_to(english_dir).as_posix()
        if (spanish_dir / page).is_file():
            pairs.append((f"gimp-help:{page}", english_page, spanish_dir / page))
    return align_pages(pairs, html_blocks, "gimp-help-es", "gimp-help", "gimp-help-es", dropped)


def gnome_help_candidates(roots: dict[str, Path], dropped: list[DroppedRecord]) -> list[Candidate]:
    """GNOME help of every selected package shipping `/usr/share/help/es` and `/usr/share/help/C`."""
    candidates: list[Candidate] = []
    for package in sorted(roots):
        help_dir = roots[package] / "usr/share/help"
        if not (help_dir / "es").is_dir() or not (help_dir / "C").is_dir():
            continue
        pairs = []
        for spanish_page in sorted((help_dir / "es").rglob("*.page")):
            page = spanish_page.relative_to(help_dir / "es").as_posix()
            if (help_dir / "C" / page).is_file():
                pairs.append((f"gnome-help:{package}:{page}", help_dir / "C" / page, spanish_page))
        candidates += align_pages(pairs, mallard_blocks, package, "gnome-help", package, dropped)
    return candidates
