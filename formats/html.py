"""HTML cut into markup, kept byte for byte, and text nodes, to translate: the one HTML splitter.

`markup_runs` cuts a page into runs of markup (tags, comments, declarations, and whatever `<script>` and
`<style>` hold) and runs of text (unescaped). Two uses build on it: `/translate` with `format=html`
(`split_html`: each text node cut into sentences by model/sentences.py, translations escaped back in)
and HTML files (formats/documents.py: each text node translated whole).

Python's HTMLParser takes time quadratic in the length of some malformed markup (20,000 characters of
`<a ` took seconds): with a `deadline` (time.monotonic()), parsing stops with `HtmlTooComplex` once it
is past, checked at every tag. The service parses requests in a thread (service/translation.py) and
files in a child process (service/document_process.py), both with a deadline.
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass
from html.parser import HTMLParser

from carousel.model.sentences import SplitText, split_sentences

Run = tuple[str, "str | None"]  # (the input's characters, their unescaped text; None for markup)


class HtmlTooComplex(Exception):
    """The markup took longer to parse than its deadline allowed."""


class _MarkupSplitter(HTMLParser):
    """Records where each event starts, so markup can be copied from the input byte for byte."""

    RAW_TEXT = frozenset({"script", "style"})

    def __init__(self, deadline: float | None = None):
        super().__init__(convert_charrefs=True)
        self.deadline = deadline
        self.events: list[tuple[tuple[int, int], str | None]] = []  # (line, column), unescaped text or None
        self._raw: str | None = None

    def parse_starttag(self, i):  # called at every "<" that may open a tag: the costly part
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise HtmlTooComplex()
        return super().parse_starttag(i)

    def handle_data(self, data):
        self.events.append((self.getpos(), None if self._raw else data))

    def handle_starttag(self, tag, attrs):
        self.events.append((self.getpos(), None))
        if tag in self.RAW_TEXT:
            self._raw = tag

    def handle_endtag(self, tag):
        self.events.append((self.getpos(), None))
        if tag == self._raw:
            self._raw = None

    def handle_startendtag(self, tag, attrs):
        self.events.append((self.getpos(), None))

    def handle_comment(self, data):
        self.events.append((self.getpos(), None))

    handle_decl = handle_pi = unknown_decl = handle_comment
    handle_entityref = handle_charref = handle_comment  # not called with convert_charrefs; kept verbatim


def markup_runs(markup: str, deadline: float | None = None) -> list[Run]:
    """`markup` as alternating runs of markup and text; the runs' raw characters join back to `markup`."""
    parser = _MarkupSplitter(deadline)
    parser.feed(markup)
    parser.close()
    line_starts = [0] + [i + 1 for i, char in enumerate(markup) if char == "\n"]
    offsets = [line_starts[line - 1] + column for (line, column), _ in parser.events] + [len(markup)]
    # Adjacent events of one kind are merged (text around a stray "<", a tag after a tag).
    runs: list[list] = [[markup[: offsets[0]], None]] if offsets[0] else []
    for (_, text), start, end in zip(parser.events, offsets, offsets[1:]):
        raw = markup[start:end]
        if runs and (runs[-1][1] is None) == (text is None):
            runs[-1][0] += raw
            if text is not None:
                runs[-1][1] += text
        else:
            runs.append([raw, text])
    return [(raw, text) for raw, text in runs]


@dataclass
class HtmlText:
    """An HTML fragment: markup kept as it was, text nodes split into sentences."""

    parts: list[str | SplitText]

    @property
    def sentences(self) -> list[str]:
        return [s for part in self.parts if isinstance(part, SplitText) for s in part.sentences]

    def join(self, translations: list[str]) -> str:
        out, start = [], 0
        for part in self.parts:
            if isinstance(part, SplitText):
                count = len(part.sentences)
                out.append(html.escape(part.join(translations[start : start + count]), quote=False))
                start += count
            else:
                out.append(part)
        return "".join(out)


def split_html(markup: str, deadline: float | None = None) -> HtmlText:
    parts: list[str | SplitText] = []
    for raw, text in markup_runs(markup, deadline):
        if text is not None and text.strip():
            parts.append(split_sentences(text))
        elif parts and isinstance(parts[-1], str):
            parts[-1] += raw
        else:
            parts.append(raw)
    return HtmlText(parts)


def split_for_translation(text: str, text_format: str, deadline: float | None = None) -> SplitText | HtmlText:
    """The sentences of `text` (`format` "text" or "html") and how to put their translations back."""
    return split_html(text, deadline) if text_format == "html" else split_sentences(text)
