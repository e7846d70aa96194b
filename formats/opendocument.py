"""OpenDocument text (.odt): each paragraph translated whole, its spans' formatting kept.

An ODF paragraph (`text:p`, `text:h`) holds text directly, in spans (`text:span`, a character style)
and links (`text:a`), nested at will. A paragraph becomes one text to translate whose spans and links
are inline tags (formats/inline.py); each stretch of the translation is written into copies of the
spans and links that held it, in the translation's order. `text:s` (runs of spaces) is read as spaces;
tabs, line breaks, notes, frames (images, text boxes), bookmarks and fields keep their place through a
standalone tag (`<img id="x3"/>`); soft page breaks (a layout hint) are dropped. Paragraphs inside notes and
text boxes are translated as paragraphs of their own.

Parts translated: `content.xml` (the body) and `styles.xml` (headers and footers of the page styles),
parsed with lxml (formats/packages.py); the rest of the package is copied.
"""

from __future__ import annotations

from typing import Callable

from carousel.formats.inline import Code, Inline, TaggedText, Text
from carousel.formats.limits import DocumentError
from carousel.formats.packages import Package, serialize
from carousel.model.sentences import has_words

TEXT_NS = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
PARTS = ("content.xml", "styles.xml")


def _tag(name: str) -> str:
    return f"{{{TEXT_NS}}}{name}"


PARAGRAPHS = (_tag("p"), _tag("h"))
STRETCHES = (_tag("span"), _tag("a"))  # elements whose text is a formatted stretch
DROPPED = (_tag("soft-page-break"),)


def read_odt(data: bytes) -> tuple[list[str], Callable[[list[str]], bytes]]:
    """(the texts of an .odt, render(translations) -> the translated file)."""
    package = Package(data, ".odt")
    parts = {name: package.read_xml(name) for name in PARTS if name in package.names}
    if "content.xml" not in parts:
        raise DocumentError("the .odt file has no content.xml (not an OpenDocument text)")
    paragraphs = []
    for root in parts.values():
        for paragraph in root.iter(*PARAGRAPHS):
            items = paragraph_items(paragraph)
            if has_words("".join(item.text for item in items if isinstance(item, Text))):
                paragraphs.append((paragraph, TaggedText(items)))

    def render(translations: list[str]) -> bytes:
        for (paragraph, tagged), translation in zip(paragraphs, translations):
            write_paragraph(paragraph, tagged.render(translation))
        return package.write({name: serialize(root) for name, root in parts.items()})

    return [tagged.text for _, tagged in paragraphs], render


def paragraph_items(paragraph) -> list[Inline]:
    items: list[Inline] = []

    def walk(element, chain: tuple) -> None:
        style = tuple(_style(e) for e in chain)
        linked = any(e.tag == _tag("a") for e in chain)

        def text(value: str) -> Text:
            return Text(value, style, chain, may_be_default=not linked)

        items.append(text(element.text or ""))
        for child in element:
            if child.tag in STRETCHES:
                walk(child, chain + (child,))
            elif child.tag == _tag("s"):
                items.append(text(" " * _count(child.get(_tag("c")))))
            elif child.tag not in DROPPED:
                items.append(Code(child))
            items.append(text(child.tail or ""))

    walk(paragraph, ())
    return items


def write_paragraph(paragraph, items: list[Inline]) -> None:
    for child in list(paragraph):
        paragraph.remove(child)
    paragraph.text = None
    for item in items:
        if isinstance(item, Code):
            item.content.tail = None
            paragraph.append(item.content)
        elif not item.template:
            _append_text(paragraph, item.text)
        else:
            outer = inner = _shallow(item.template[0])
            for element in item.template[1:]:
                inner.append(_shallow(element))
                inner = inner[-1]
            inner.text = item.text
            paragraph.append(outer)


def _style(element) -> tuple:
    """A span is its character style; a link is itself (two links are never merged)."""
    return ("span", element.get(_tag("style-name"))) if element.tag == _tag("span") else ("a", id(element))


def _count(value: str | None) -> int:
    return int(value) if value and value.isdigit() and int(value) < 1000 else 1


def _shallow(element):
    return element.makeelement(element.tag, dict(element.attrib))


def _append_text(paragraph, text: str) -> None:
    if len(paragraph):
        paragraph[-1].tail = (paragraph[-1].tail or "") + text
    else:
        paragraph.text = (paragraph.text or "") + text
