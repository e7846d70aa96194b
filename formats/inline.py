"""A paragraph's character formatting carried across its translation as inline tags.

An office paragraph is a sequence of runs: text with character formatting (bold, italic, a link) and
content that is not text (a tab, a line break, an image, a field). It is translated as one text, so
the model's input is the whole sentence, with each formatted stretch marked as a numbered `<span>` and
each piece of non-text content as a numbered `<img>` (XLIFF's paired and standalone codes, spelled as
the HTML inline elements the translator carries across by attention, model/tags.py):

    Pulsa <span id="g1">Guardar</span> ahora.<img id="x2"/>Luego cierra.
    ->  Click <span id="g1">Save</span> now.<img id="x2"/>Then close.

Adjacent runs of the same formatting are merged; the text of the paragraph's most common formatting
(its "default") is left untagged, so most paragraphs carry no tags at all. Non-text content before the
first text or after the last is kept in place without a tag. `TaggedText.render` reads the translation
back into runs, in the translation's order (a pair's id says which formatting it stands for).

A translation whose tags are not well formed (a pair missing, opened twice or inside another, an id
the source lacks) falls back to the text without its paired tags in the default formatting; standalone
content stays where its tag is, or goes to the end where the tag was lost. Text and content are never
dropped. (A paragraph whose own text spells such a tag, `</span>`, may fall back so.)

Formats supply `Text` and `Code` items and write the rendered items back (formats/office.py,
formats/opendocument.py); this module knows nothing of XML.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Hashable

# The tags as a translation may give them back: case, spacing and quotes are not trusted.
_TAG = re.compile(
    r"""<\s*(?:(?P<close>/)\s*span\s*"""
    r"""|span\s+id\s*=\s*["']?g(?P<pair>\d+)["']?\s*"""
    r"""|img\s+id\s*=\s*["']?x(?P<code>\d+)["']?\s*/?\s*)>""",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Text:
    """Text in one formatting; `template` is what its translation is written into (a copy of it)."""

    text: str
    style: Hashable  # equal styles are the same formatting
    template: object
    # False for a link: text around it never takes its place as the paragraph's default formatting
    may_be_default: bool = True


@dataclass(frozen=True)
class Code:
    """Content that is not text, copied unchanged (a tab, a break, an image, a field, a bookmark)."""

    content: object


Inline = Text | Code


class TaggedText:
    """A paragraph's items as one text to translate (`text`), and its translation read back (`render`)."""

    def __init__(self, items: list[Inline]):
        items = _merged(items)
        first = next((i for i, item in enumerate(items) if isinstance(item, Text)), len(items))
        last = max((i for i, item in enumerate(items) if isinstance(item, Text)), default=-1)
        self.leading, self.trailing = items[:first], items[last + 1:]
        middle = items[first:last + 1]
        self.default = _default_text(middle)
        self.pairs: dict[int, Text] = {}  # tag number -> the formatting it stands for
        self.codes: dict[int, Code] = {}
        self.text = "".join(self._tagged(item) for item in middle).strip()

    def _tagged(self, item: Inline) -> str:
        number = len(self.pairs) + len(self.codes) + 1
        if isinstance(item, Code):
            self.codes[number] = item
            return f'<img id="x{number}"/>'
        if item.style == self.default.style or not item.text.strip():
            return item.text  # the default formatting, or spaces whose formatting nobody sees
        self.pairs[number] = item
        body = item.text.strip()  # spaces at a formatting change go outside the tags
        lead, trail = item.text[: len(item.text) - len(item.text.lstrip())], item.text[len(item.text.rstrip()):]
        return f'{lead}<span id="g{number}">{body}</span>{trail}'

    @property
    def tagged(self) -> bool:
        return bool(self.pairs or self.codes)

    def render(self, translation: str) -> list[Inline]:
        """The translation as items: its tagged stretches in their formatting, in the translation's order."""
        if self.default is None:
            return self.leading + self.trailing
        middle = self._read_tags(translation) if self.tagged else [self._plain(translation)]
        return self.leading + [item for item in middle if not isinstance(item, Text) or item.text] + self.trailing

    def well_formed(self, translation: str) -> bool:
        """Whether every tag of the source is in `translation` once, each pair opened before it is closed
        and no pair inside another."""
        return self._segments(translation) is not None

    def _plain(self, text: str) -> Text:
        return Text(text, self.default.style, self.default.template, self.default.may_be_default)

    def _read_tags(self, translation: str) -> list[Inline]:
        segments = self._segments(translation)
        if segments is None:
            return self._fallback(translation)
        items: list[Inline] = []
        for number, text in segments:
            if number is None:
                items.append(self._plain(text))
            elif number in self.codes:
                items.append(self.codes[number])
            else:
                pair = self.pairs[number]
                items.append(Text(text, pair.style, pair.template, pair.may_be_default))
        return items

    def _segments(self, translation: str) -> list[tuple[int | None, str]] | None:
        """(tag number or None for default text, text) in order, or None when the tags are not well formed."""
        segments: list[tuple[int | None, str]] = []
        seen: Counter = Counter()
        open_pair, start = None, 0
        for match in _TAG.finditer(translation):
            segments.append((open_pair, translation[start:match.start()]))
            start = match.end()
            if match["code"] is not None:
                number = int(match["code"])
                if number not in self.codes:
                    return None
                seen[number] += 1
                segments.append((number, ""))
            elif match["pair"] is not None:
                number = int(match["pair"])
                if number not in self.pairs or open_pair is not None:
                    return None
                seen[number] += 1
                open_pair = number
            elif open_pair is None:  # a closing tag with nothing open
                return None
            else:
                open_pair = None
        segments.append((open_pair, translation[start:]))
        if open_pair is not None or seen != Counter(list(self.pairs) + list(self.codes)):
            return None
        return segments

    def _fallback(self, translation: str) -> list[Inline]:
        """The text without paired tags in the default formatting; standalone content where its (first)
        tag is, the rest at the end."""
        items: list[Inline] = []
        placed: set[int] = set()
        start = 0
        for match in _TAG.finditer(translation):
            items.append(self._plain(translation[start:match.start()]))
            start = match.end()
            number = int(match["code"]) if match["code"] is not None else None
            if number in self.codes and number not in placed:
                placed.add(number)
                items.append(self.codes[number])
        items.append(self._plain(translation[start:]))
        items += [code for number, code in self.codes.items() if number not in placed]
        return _tidy_spaces(items)


def _merged(items: list[Inline]) -> list[Inline]:
    """Adjacent text of one style as one item; empty text dropped."""
    out: list[Inline] = []
    for item in items:
        if isinstance(item, Text):
            if not item.text:
                continue
            if out and isinstance(out[-1], Text) and out[-1].style == item.style:
                out[-1] = Text(out[-1].text + item.text, item.style, out[-1].template, out[-1].may_be_default)
                continue
        out.append(item)
    return out


def _default_text(items: list[Inline]) -> Text | None:
    """The first text of the style that holds the most characters (None without text); links only where
    the paragraph holds nothing else."""
    texts = [item for item in items if isinstance(item, Text)]
    if any(item.may_be_default for item in texts):
        texts = [item for item in texts if item.may_be_default]
    sizes: Counter = Counter()
    first: dict = {}
    for item in texts:
        sizes[item.style] += len(item.text)
        first.setdefault(item.style, item)
    if not sizes:
        return None
    return first[max(sizes, key=lambda style: (sizes[style], -list(first).index(style)))]


def _tidy_spaces(items: list[Inline]) -> list[Inline]:
    """Plain text pieces joined where no content separates them, with the double spaces a removed tag left."""
    out: list[Inline] = []
    for item in items:
        if isinstance(item, Text) and out and isinstance(out[-1], Text):
            out[-1] = Text(out[-1].text + item.text, item.style, item.template, item.may_be_default)
        else:
            out.append(item)
    return [Text(re.sub(r"  +", " ", item.text), item.style, item.template) if isinstance(item, Text) else item
            for item in out]
