"""OSIS verse markup → plain verse text (and the verse's Strong's numbers).

`mod2imp` gives each verse as a fragment of OSIS XML. We keep every word of the verse itself
(Strong's `<w>` wrappers, `<transChange>` additions, `<divineName>`, quotes, poetry lines and
canonical psalm superscriptions) and drop what is not the verse: footnotes and cross-references,
headings, speaker labels, milestones and paragraph marks.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

# Elements whose whole content is dropped (the tail text that follows them is kept).
DROPPED_ELEMENTS = frozenset({"note", "title", "speaker", "reference", "catchWord", "rdg", "milestone"})
# Block-level elements and milestones: their boundary separates words even without a space.
BLOCK_ELEMENTS = frozenset({"div", "chapter", "p", "l", "lg", "lb", "list", "item"})
# Word-level wrappers: RV1909 sometimes puts two of them side by side with no space between.
WORD_ELEMENTS = frozenset({"w", "transChange", "divineName"})

_WORD_EDGE = "\x1f"  # marks a word-element boundary until spacing is decided
# Where two word elements touch, letters on both sides mean two words, unless the right one
# is an enclitic pronoun written separately in the markup (`sáca`+`lo` → `sácalo`).
_GLUED_WORDS = re.compile(
    rf"(?<=[^\W\d_]){_WORD_EDGE}+(?=[^\W\d_])"
    rf"(?!(?:(?:me|te|se|nos|os)?(?:lo|la|los|las|le|les)|me|te|se|nos|os)(?:\W|$))"
)
_PARAGRAPH_MARK = "¶"
# A few KJV verses carry raw USFM character markers (`\nd `, `\+nd*`) where OSIS conversion failed.
_USFM_MARKER = re.compile(r"\\\+?[a-z]+[0-9]*\*?")
_TAG = re.compile(r"<(/?)([A-Za-z][\w.-]*)\b[^<>]*?(/?)>")
_SPACE = re.compile(r"\s+")
# No space before closing punctuation, none after opening marks.
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:!?)\]}…])")
_SPACE_AFTER_OPENER = re.compile(r"([(\[{¿¡])\s+")


@dataclass(frozen=True)
class OsisVerse:
    """The plain text of a verse and the Strong's numbers tagged on its words."""

    text: str
    strongs: frozenset[str]


def parse_osis_verse(fragment: str) -> OsisVerse:
    """Return the text (spacing normalised) and Strong's numbers of one verse's OSIS fragment."""
    parts: list[str] = []
    lemmas: list[str] = []
    _collect(_parse_fragment(fragment), parts, lemmas, keep=True)
    text = _GLUED_WORDS.sub(" ", "".join(parts)).replace(_WORD_EDGE, "")
    strongs = frozenset(item[7:] for lemma in lemmas for item in lemma.split() if item.startswith("strong:"))
    return OsisVerse(normalize_spacing(text), strongs)


def osis_to_text(fragment: str) -> str:
    """Return only the plain text of one verse's OSIS fragment."""
    return parse_osis_verse(fragment).text


def normalize_spacing(text: str) -> str:
    """Collapse whitespace runs, drop paragraph marks and the space before `, . ; : ! ?` (and after `( ¿ ¡`)."""
    text = _USFM_MARKER.sub(" ", text.replace(_PARAGRAPH_MARK, " "))
    text = _SPACE.sub(" ", text).strip()
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    return _SPACE_AFTER_OPENER.sub(r"\1", text)


def _collect(element: ET.Element, parts: list[str], lemmas: list[str], keep: bool) -> None:
    """Append the kept text of `element` and its tail to `parts`, `<w lemma>` values to `lemmas`."""
    name = element.tag
    keep_inside = keep and not _is_dropped(element)
    edge = " " if name in BLOCK_ELEMENTS else _WORD_EDGE if name in WORD_ELEMENTS else ""
    parts.append(edge)
    if keep_inside:
        if name == "w" and "lemma" in element.attrib:
            lemmas.append(element.attrib["lemma"])  # e.g. "strong:H0430 strong:H1254"
        if element.text:
            parts.append(element.text)
    for child in element:
        _collect(child, parts, lemmas, keep_inside)
    parts.append(edge)
    if keep and element.tail:
        parts.append(element.tail)


def _is_dropped(element: ET.Element) -> bool:
    # Canonical titles are psalm superscriptions: scripture text, which RV1909 prints inside verse 1.
    if element.tag == "title":
        return element.get("canonical") != "true"
    return element.tag in DROPPED_ELEMENTS


def _parse_fragment(fragment: str) -> ET.Element:
    """Parse a fragment under a synthetic root; repair tag nesting first if it is not well-formed."""
    try:
        return ET.fromstring(f"<verse>{fragment}</verse>")
    except ET.ParseError:
        return ET.fromstring(f"<verse>{balance_tags(fragment)}</verse>")


def balance_tags(fragment: str) -> str:
    """Make the tag structure of a fragment well-formed without losing text.

    Verse fragments are slices of a whole book, so containers such as `<list>`/`<item>` can open
    in one verse and close in a later one, and a few KJV footnotes lose a `</divineName>`.
    End tags without a matching open element are removed; an end tag that closes an outer
    element first closes the inner ones left open; elements still open at the end are closed.
    """
    out: list[str] = []
    open_names: list[str] = []
    position = 0
    for match in _TAG.finditer(fragment):
        out.append(fragment[position : match.start()])
        position = match.end()
        closing, name, self_closing = match.group(1), match.group(2), match.group(3)
        if self_closing:
            out.append(match.group(0))
        elif not closing:
            open_names.append(name)
            out.append(match.group(0))
        elif name in open_names:
            while open_names:
                inner = open_names.pop()
                out.append(f"</{inner}>")
                if inner == name:
                    break
        # else: a stray end tag whose start lies in an earlier verse; drop it.
    out.append(fragment[position:])
    out.extend(f"</{name}>" for name in reversed(open_names))
    return "".join(out)
