"""Office Open XML documents (.docx, .pptx): each paragraph translated whole, its runs' formatting kept.

Both formats hold a paragraph (`w:p`, `a:p`) as runs (`w:r`, `a:r`), each with its character
properties (`rPr`) and text (`t`). A paragraph becomes one text to translate whose formatted stretches
are inline tags (formats/inline.py); the translation's stretches are written into copies of the runs
they came from, in the translation's order. What is not text keeps its place through a standalone tag
(`<img id="x3"/>`), or without one at either end of the paragraph:

- in a run: tabs, line breaks, images, symbols, footnote references (each in a run of the same
  properties); a complex field (`fldChar` begin … end, e.g. a page number or a cross-reference) as one
  piece, its result untranslated;
- in a paragraph: hyperlinks, content controls and tracked insertions are one formatted stretch each
  (their first run's formatting, their other content kept); simple fields, bookmarks, comments' ranges,
  tracked deletions, .pptx line breaks and fields are kept as they are; spell-check marks and Word's
  last-rendered page breaks (layout hints, stale after translation) are dropped.

Parts translated: .docx the body, headers, footers, footnotes and endnotes (text boxes in them too);
.pptx the slides and their speaker notes (layouts and masters hold only prompts). Parts are parsed with
lxml directly (formats/packages.py) rather than python-docx or python-pptx: the run surgery is on the
XML either way, one walk serves both formats, and parts those libraries do not reach (footnotes, text
boxes, notes) come for free.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Callable

from lxml import etree

from carousel.formats.inline import Code, Inline, TaggedText, Text
from carousel.formats.packages import Package, local_name, natural_order, serialize
from carousel.model.sentences import has_words

WORD_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
DRAWING_NS = "http://schemas.openxmlformats.org/drawingml/2006/main"
XML_SPACE = "{http://www.w3.org/XML/1998/namespace}space"


@dataclass(frozen=True)
class Dialect:
    """Where one format keeps its paragraphs and what their children mean."""

    namespace: str
    parts: re.Pattern  # the package parts translated
    leading_properties: frozenset[str]  # paragraph children kept first (pPr)
    trailing_properties: frozenset[str]  # kept last (a:endParaRPr)
    containers: frozenset[str]  # paragraph children holding runs: one formatted stretch each
    dropped: frozenset[str]  # children that mean nothing after translation
    unstyled: frozenset[str]  # run properties that are not formatting (children or attributes)

    def tag(self, name: str) -> str:
        return f"{{{self.namespace}}}{name}"


WORD = Dialect(
    WORD_NS, re.compile(r"word/(document|header\d*|footer\d*|footnotes|endnotes)\.xml"),
    frozenset({"pPr"}), frozenset(),
    frozenset({"hyperlink", "ins", "smartTag", "sdt", "customXml", "moveTo", "dir", "bdo"}),
    frozenset({"proofErr", "lastRenderedPageBreak", "softHyphen"}),
    frozenset({"lang", "noProof", "rPrChange", "specVanish", "webHidden"}),
)
SLIDES = Dialect(
    DRAWING_NS, re.compile(r"ppt/(slides/slide|notesSlides/notesSlide)\d+\.xml"),
    frozenset({"pPr"}), frozenset({"endParaRPr"}), frozenset(), frozenset(),
    frozenset({"lang", "altLang", "dirty", "err", "noProof", "smtClean", "smtId", "bmk"}),
)
DIALECTS = {"docx": WORD, "pptx": SLIDES}


@dataclass(frozen=True)
class _Atom:
    """One child of a run (a tab, an image), to be written in a run of its own with the same properties."""

    shell: object  # the run with its properties only
    child: object


def read_office(data: bytes, fmt: str) -> tuple[list[str], Callable[[list[str]], bytes]]:
    """(the texts of a .docx or .pptx, render(translations) -> the translated file)."""
    dialect = DIALECTS[fmt]
    package = Package(data, f".{fmt}")
    parts = {name: package.read_xml(name) for name in natural_order(package.names) if dialect.parts.fullmatch(name)}
    paragraphs = []
    for root in parts.values():
        for paragraph in root.iter(dialect.tag("p")):
            items = paragraph_items(paragraph, dialect)
            if has_words("".join(item.text for item in items if isinstance(item, Text))):
                paragraphs.append((paragraph, TaggedText(items)))

    def render(translations: list[str]) -> bytes:
        for (paragraph, tagged), translation in zip(paragraphs, translations):
            write_paragraph(paragraph, tagged.render(translation), dialect)
        return package.write({name: serialize(root) for name, root in parts.items()})

    return [tagged.text for _, tagged in paragraphs], render


def paragraph_items(paragraph, dialect: Dialect) -> list[Inline]:
    """The paragraph's content in order: text in its run's formatting, and everything else as Code."""
    items: list[Inline] = []
    field: list = []  # the pieces of a complex field being read, and how deeply fields nest there
    depth = 0
    for child in paragraph:
        name = local_name(child)
        if name in dialect.leading_properties or name in dialect.trailing_properties or name in dialect.dropped:
            continue
        if name != "r":
            text = "".join(t.text or "" for t in _own_texts(child, dialect))
            if depth:
                field.append(child)
            elif name in dialect.containers and text:
                items.append(Text(text, ("container", id(child)), child, may_be_default=False))
            else:
                items.append(Code([child]))
            continue
        shell = _shell(child)
        style = ("run", _style_key(shell, dialect))
        for part in child:
            part_name = local_name(part)
            if part_name == "rPr" or part_name in dialect.dropped:
                continue
            kind = part.get(dialect.tag("fldCharType")) if part_name == "fldChar" else None
            if kind == "begin":
                depth += 1
            if depth:
                field.append(_Atom(shell, part))
                if kind == "end":
                    depth -= 1
                    if not depth:
                        items.append(Code(field))
                        field = []
            elif part_name == "t":
                items.append(Text(part.text or "", style, shell))
            else:
                items.append(Code([_Atom(shell, part)]))
    if field:  # a field that goes on into the next paragraph (a table of contents)
        items.append(Code(field))
    return items


def write_paragraph(paragraph, items: list[Inline], dialect: Dialect) -> None:
    """The paragraph's content replaced by `items`, its own properties kept."""
    first = [c for c in paragraph if local_name(c) in dialect.leading_properties]
    last = [c for c in paragraph if local_name(c) in dialect.trailing_properties]
    for child in list(paragraph):
        paragraph.remove(child)
    paragraph.extend(first)
    for item in items:
        if isinstance(item, Code):
            paragraph.extend(_placed(piece) for piece in item.content)
        elif local_name(item.template) == "r":
            paragraph.append(_run_with_text(item.template, item.text, dialect))
        else:
            paragraph.append(_container_with_text(item.template, item.text, dialect))
    paragraph.extend(last)


def _placed(piece):
    if isinstance(piece, _Atom):
        run = copy.deepcopy(piece.shell)
        run.append(piece.child)
        return run
    return piece


def _run_with_text(shell, text: str, dialect: Dialect):
    run = copy.deepcopy(shell)
    element = run.makeelement(dialect.tag("t"), {})
    element.text = text
    if dialect is WORD:
        element.set(XML_SPACE, "preserve")
    run.append(element)
    return run


def _container_with_text(container, text: str, dialect: Dialect):
    """A copy of a hyperlink (or other container) whose first text holds `text` and the others nothing."""
    clone = copy.deepcopy(container)
    texts = _own_texts(clone, dialect)
    for index, element in enumerate(texts):
        element.text = text if index == 0 else ""
        if dialect is WORD:
            element.set(XML_SPACE, "preserve")
    return clone


def _own_texts(element, dialect: Dialect) -> list:
    """The `t` elements under `element`, not those of paragraphs nested in it (text boxes)."""
    found = []
    for child in element:
        name = local_name(child)
        if name == "t" and child.tag == dialect.tag("t"):
            found.append(child)
        elif name not in ("p", "txbxContent"):
            found += _own_texts(child, dialect)
    return found


def _shell(run):
    """A copy of the run with its properties and nothing else."""
    shell = run.makeelement(run.tag, dict(run.attrib))
    for child in run:
        if local_name(child) == "rPr":
            shell.append(copy.deepcopy(child))
    return shell


def _style_key(shell, dialect: Dialect) -> bytes:
    """The run's formatting, without the properties that are not formatting (language, spell-check)."""
    properties = next((c for c in shell if local_name(c) == "rPr"), None)
    if properties is None:
        return b""
    properties = copy.deepcopy(properties)
    for child in list(properties):
        if local_name(child) in dialect.unstyled:
            properties.remove(child)
    for attribute in list(properties.attrib):
        if attribute.rsplit("}", 1)[-1] in dialect.unstyled:
            del properties.attrib[attribute]
    return b"" if not len(properties) and not properties.attrib else etree.tostring(properties, method="c14n")
