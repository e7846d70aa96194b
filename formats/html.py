"""HTML read as the texts a reader sees, with the markup kept byte for byte: the one HTML splitter.

`read_page` cuts a page into markup and texts to translate: each block's text with its inline markup
(`<b>`, `<a href=..>`, `<br>`, ... model/tags.py INLINE_ELEMENTS) is one text, so "Click <b>Save</b>
now" is translated as one sentence and its tags carried across by the attention (model/tags.py); the
attributes people read (`alt`, `title`, `placeholder`, `aria-label`, a button's `value`) are texts too.
Elements marked `translate="no"` or `class="notranslate"`, and code (`<code>`, `<kbd>`, `<samp>`), are
copied unchanged, content included (to the end of the page where a marked element's end tag is missing); so is whatever `<script>` and `<style>` hold. Two uses
build on it: `/translate` with `format=html` (`split_html`: each text cut into sentences by
model/sentences.py) and HTML files (formats/documents.py: each text translated whole), so both give the
same output.

In a text, inline tags appear in a short form (`<a>` for `<a href="..." class="...">`, `<br>` for
`<br/>`), entities are read, and whitespace is collapsed (as a browser shows it); `render` puts the
original tags back where the translation has their short forms and escapes the text around them. A "<" in the text that would read as an inline tag is passed on as `&lt;`.

Python's HTMLParser takes time quadratic in the length of some malformed markup (20,000 characters of
`<a ` took seconds): with a `deadline` (time.monotonic()), parsing stops with `HtmlTooComplex` once it
is past, checked at every tag. The service parses requests in a thread (service/translation.py) and
files in a child process (service/document_process.py), both with a deadline.
"""

from __future__ import annotations

import html
import re
import time
from collections import deque
from dataclasses import dataclass, field
from html.parser import HTMLParser

from carousel.model.sentences import SplitText, has_words, split_sentences
from carousel.model.tags import CODE_ELEMENTS, INLINE_ELEMENTS, VOID_ELEMENTS, inline_tags, pair_up

TRANSLATED_ATTRIBUTES = frozenset({"alt", "title", "placeholder", "aria-label"})
BUTTON_TYPES = frozenset({"button", "submit", "reset"})  # an <input> of these types shows its `value`
ATTRIBUTE = re.compile(r"""([^\s"'>/=]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s"'=<>`]+))?""")


class HtmlTooComplex(Exception):
    """The markup took longer to parse than its deadline allowed."""


@dataclass
class _Event:
    kind: str  # "start", "end", "startend", "data" (text to read) or "markup" (comments, script contents, ...)
    start: int  # characters of the page it spans: [start, end)
    end: int = 0
    tag: str = ""
    attrs: list[tuple[str, str | None]] = field(default_factory=list)
    text: str = ""  # unescaped, for "data"

    @property
    def is_inline(self) -> bool:
        return self.kind in ("start", "end", "startend") and self.tag in INLINE_ELEMENTS | VOID_ELEMENTS

    @property
    def keeps_as_is(self) -> bool:
        """An element marked for no translation, or code."""
        attrs = {name: (value or "") for name, value in self.attrs}
        return (self.tag in CODE_ELEMENTS or attrs.get("translate", "").strip().lower() == "no"
                or "notranslate" in attrs.get("class", "").split())


class _EventRecorder(HTMLParser):
    """Records each event and where it starts, so markup can be copied from the input byte for byte."""

    RAW_TEXT = frozenset({"script", "style"})

    def __init__(self, deadline: float | None = None):
        super().__init__(convert_charrefs=True)
        self.deadline = deadline
        self.events: list[tuple[tuple[int, int], _Event]] = []  # (line, column) of each event
        self._raw: str | None = None

    def parse_starttag(self, i):  # called at every "<" that may open a tag: the costly part
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise HtmlTooComplex()
        return super().parse_starttag(i)

    def _record(self, kind: str, tag: str = "", attrs=(), text: str = "") -> None:
        self.events.append((self.getpos(), _Event(kind, 0, 0, tag, list(attrs), text)))

    def handle_data(self, data):
        self._record("markup" if self._raw else "data", text=data)

    def handle_starttag(self, tag, attrs):
        self._record("start", tag, attrs)
        if tag in self.RAW_TEXT:
            self._raw = tag

    def handle_endtag(self, tag):
        self._record("end", tag)
        if tag == self._raw:
            self._raw = None

    def handle_startendtag(self, tag, attrs):
        self._record("startend", tag, attrs)

    def handle_comment(self, data):
        self._record("markup")

    handle_decl = handle_pi = unknown_decl = handle_comment
    handle_entityref = handle_charref = handle_comment  # not called with convert_charrefs; kept verbatim


def _events(markup: str, deadline: float | None) -> list[_Event]:
    """The page's events, each with the characters it spans; together they cover the whole page."""
    parser = _EventRecorder(deadline)
    parser.feed(markup)
    parser.close()
    line_starts = [0] + [i + 1 for i, char in enumerate(markup) if char == "\n"]
    offsets = [line_starts[line - 1] + column for (line, column), _ in parser.events] + [len(markup)]
    events = [_Event("markup", 0, offsets[0])] if offsets[0] else []
    for (_, event), start, end in zip(parser.events, offsets, offsets[1:]):
        if start < end:
            event.start, event.end = start, end
            events.append(event)
    return events


# -- the page as markup and texts ------------------------------------------------------------------


@dataclass
class _Tag:
    """A tag whose readable attributes are translated: its raw characters and, per attribute, the
    characters of its value (quotes included) and the index of its text."""

    raw: str
    values: list[tuple[int, int, int]]

    def render(self, translations: list[str]) -> str:
        out = self.raw
        for start, end, index in reversed(self.values):
            out = out[:start] + '"' + html.escape(translations[index], quote=True) + '"' + out[end:]
        return out


@dataclass
class _Block:
    """A block's text with its inline markup: `units` are each inline tag's short form in the text and
    what it stands for (a _Tag, or an untranslated element's raw markup)."""

    index: int  # of its text
    units: list[tuple[str, "_Tag | str"]]
    leading: str  # whitespace around the text, as it was
    trailing: str

    def render(self, translations: list[str]) -> str:
        """The translation with each short tag replaced by what it stands for (matched in any order,
        case aside) and the text around them escaped; a unit the translation lost goes at the end."""
        translation, out, at = translations[self.index], [self.leading], 0
        waiting: dict[str, deque] = {}  # short form -> its units not yet found, in source order
        for unit in self.units:
            waiting.setdefault(unit[0].lower(), deque()).append(unit)
        for found in self._short_forms().finditer(translation) if self.units else ():
            units = waiting[found.group(0).lower()]
            if not units:  # one more than the source has: text
                continue
            out += [_escaped(translation[at:found.start()]), _unit_markup(units.popleft(), translations)]
            at = found.end()
        out.append(_escaped(translation[at:]))
        left = {id(unit) for units in waiting.values() for unit in units}
        out += [_unit_markup(unit, translations) for unit in self.units if id(unit) in left]
        out.append(self.trailing)
        return "".join(out)

    def _short_forms(self) -> re.Pattern:
        forms = sorted({short for short, _ in self.units}, key=len, reverse=True)
        return re.compile("|".join(map(re.escape, forms)), re.IGNORECASE)


def _unit_markup(unit: tuple[str, "_Tag | str"], translations: list[str]) -> str:
    markup = unit[1]
    return markup.render(translations) if isinstance(markup, _Tag) else markup


def _escaped(text: str) -> str:
    return html.escape(re.sub("&lt;", "<", text, flags=re.IGNORECASE), quote=False)


@dataclass
class HtmlPage:
    """A page as its texts to translate and the markup around them."""

    texts: list[str]
    parts: list["str | _Tag | _Block"]

    def render(self, translations: list[str]) -> str:
        """The page with each text replaced by its translation (in the order of `texts`)."""
        if len(translations) != len(self.texts):
            raise ValueError(f"{len(translations)} translations for {len(self.texts)} texts")
        return "".join(part if isinstance(part, str) else part.render(translations) for part in self.parts)


def read_page(markup: str, deadline: float | None = None) -> HtmlPage:
    """`markup` as its texts and markup: rendered with its texts as they are, the page comes back byte
    for byte but for whitespace collapsed inside the texts."""
    return _PageReader(markup, _events(markup, deadline)).read()


def _element_ends(events: list[_Event]) -> dict[int, int]:
    """For each start tag's index, the index of the end tag that closes it: the first end tag of its
    name not taken by a start tag of that name inside it."""
    ends: dict[int, int] = {}
    open_tags: dict[str, list[int]] = {}
    for index, event in enumerate(events):
        if event.kind == "start":
            open_tags.setdefault(event.tag, []).append(index)
        elif event.kind == "end" and open_tags.get(event.tag):
            ends[open_tags[event.tag].pop()] = index
    return ends


class _PageReader:
    """Walks the events once, gathering each block's inline run and flushing it at the next block tag."""

    def __init__(self, markup: str, events: list[_Event]):
        self.markup, self.events = markup, events
        self.page = HtmlPage([], [])
        self.run: list[_Event | tuple[int, int]] = []  # inline events, and untranslated inline elements (event range)
        self.ends = _element_ends(events)

    def read(self) -> HtmlPage:
        index = 0
        while index < len(self.events):
            event = self.events[index]
            if event.kind == "start" and event.keeps_as_is and event.tag not in VOID_ELEMENTS:
                last = self.ends.get(index, len(self.events))
                closed = last < len(self.events)
                if event.is_inline and closed:  # part of its block's text, as one unit
                    self.run.append((index, last))
                    index = last + 1
                    continue
                if closed or event.tag not in CODE_ELEMENTS:  # an unclosed <code> is read as any tag
                    self._flush()
                    self._add_markup(self.markup[event.start:self.events[min(last, len(self.events) - 1)].end])
                    index = last + 1
                    continue
            if event.kind == "data" or event.is_inline:
                self.run.append(event)
            else:
                self._flush()
                self._add_markup(self._tag(event) if event.kind in ("start", "startend") else self._raw(event))
            index += 1
        self._flush()
        return self.page

    def _raw(self, event: _Event) -> str:
        return self.markup[event.start:event.end]

    def _add_markup(self, part: "str | _Tag") -> None:
        if isinstance(part, str) and self.page.parts and isinstance(self.page.parts[-1], str):
            self.page.parts[-1] += part
        else:
            self.page.parts.append(part)

    def _add_text(self, text: str) -> int:
        self.page.texts.append(text)
        return len(self.page.texts) - 1

    def _tag(self, event: _Event) -> "str | _Tag":
        """A start tag with its readable attributes as texts (a _Tag), or its raw characters (also
        where it is marked for no translation)."""
        raw = self._raw(event)
        if event.keeps_as_is:
            return raw
        attrs = {name: (value or "") for name, value in event.attrs}
        wanted = set(TRANSLATED_ATTRIBUTES)
        if event.tag == "input" and attrs.get("type", "").strip().lower() in BUTTON_TYPES:
            wanted.add("value")
        values = []
        name_end = len(event.tag) + 1  # after "<name"
        for match in ATTRIBUTE.finditer(raw, name_end, len(raw) - 1):
            name, value = match.group(1).lower(), match.group(2)
            if name not in wanted or value is None:
                continue
            text = " ".join(html.unescape(value[1:-1] if value[0] in "\"'" else value).split())
            if has_words(text):
                values.append((match.start(2), match.end(2), self._add_text(text)))
        return _Tag(raw, values) if values else raw

    def _flush(self) -> None:
        """The inline run gathered so far: one text where it has words, else markup."""
        run, self.run = self.run, []
        if not any(isinstance(item, _Event) and item.kind == "data" and has_words(item.text) for item in run):
            for item in run:
                self._add_markup(self._markup_of(item))
            return
        paired = _paired(run)
        first = next(i for i, item in enumerate(run) if not _is_trimmed(item, i, paired))
        last = max(i for i, item in enumerate(run) if not _is_trimmed(item, i, paired))
        for item in run[:first]:
            self._add_markup(self._markup_of(item))
        self._add_block(run[first:last + 1])
        for item in run[last + 1:]:
            self._add_markup(self._markup_of(item))

    def _markup_of(self, item: "_Event | tuple[int, int]") -> "str | _Tag":
        if isinstance(item, tuple):
            return self.markup[self.events[item[0]].start:self.events[item[1]].end]
        return self._tag(item) if item.kind in ("start", "startend") else self._raw(item)

    def _add_block(self, run: list) -> None:
        pieces, units = [], []
        for item in run:
            if isinstance(item, tuple):
                start, end = self.events[item[0]], self.events[item[1]]
                words = " ".join(e.text for e in self.events[item[0]:item[1]] if e.kind == "data").split()
                marked = "" if start.tag in CODE_ELEMENTS else ' translate="no"'
                short = f'<{start.tag}{marked}>{_text_in_tags(" ".join(words))}</{start.tag}>'
                units.append((short, self.markup[start.start:end.end]))
                pieces.append(short)
            elif item.kind == "data":
                pieces.append(_text_in_tags(item.text))
            else:
                short = {"start": "<{}>", "end": "</{}>", "startend": "<{}/>"}[item.kind].format(item.tag)
                units.append((short, self._tag(item) if item.kind != "end" else self._raw(item)))
                pieces.append(short)
        whole = "".join(pieces)
        text = " ".join(whole.split())
        leading, trailing = whole[: len(whole) - len(whole.lstrip())], whole[len(whole.rstrip()):]
        self.page.parts.append(_Block(self._add_text(text), units, leading, trailing))


def _text_in_tags(text: str) -> str:
    """Text as it goes into a text with short tags: a "<" that would read as an inline tag escaped."""
    for tag in reversed(inline_tags(text)):
        text = text[:tag.start()] + "&lt;" + text[tag.start() + 1:]
    return text


def _paired(run: list) -> set[int]:
    """Positions in the run of start and end tags that pair with each other (model/tags.py `pair_up`)."""
    kinds = {"start": "open", "end": "close"}
    return set(pair_up([
        (item.tag, None if item.tag in VOID_ELEMENTS else kinds.get(item.kind)) if isinstance(item, _Event)
        else ("", None) for item in run
    ]))


def _is_trimmed(item, position: int, paired: set[int]) -> bool:
    """Whether an item at a block's edge stays in the markup: blank text, standalone and unpaired tags."""
    if isinstance(item, tuple):
        return False
    if item.kind == "data":
        return not item.text.strip()
    return position not in paired


# -- /translate with format=html -------------------------------------------------------------------


@dataclass
class HtmlText:
    """An HTML fragment for `/translate`: its page, and each of the page's texts cut into sentences."""

    page: HtmlPage
    parts: list[SplitText]

    @property
    def sentences(self) -> list[str]:
        return [s for part in self.parts for s in part.sentences]

    def join(self, translations: list[str]) -> str:
        texts, start = [], 0
        for part in self.parts:
            count = len(part.sentences)
            texts.append(part.join(translations[start : start + count]))
            start += count
        return self.page.render(texts)


def split_html(markup: str, deadline: float | None = None) -> HtmlText:
    page = read_page(markup, deadline)
    return HtmlText(page, [split_sentences(text) for text in page.texts])


def split_for_translation(text: str, text_format: str, deadline: float | None = None) -> SplitText | HtmlText:
    """The sentences of `text` (`format` "text" or "html") and how to put their translations back."""
    return split_html(text, deadline) if text_format == "html" else split_sentences(text)
