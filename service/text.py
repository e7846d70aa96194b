"""From request text to sentences the model can translate, and back.

The model was trained on single verses, so a long text is cut into sentences, each is translated on
its own, and the translations are put back with the original whitespace between them: line breaks and
blank lines (paragraphs) come back where they were. Every line break ends a sentence.

A sentence ends at `.`, `!`, `?` or `…` (optionally followed by closing quotes or brackets) when
whitespace and then an upper-case letter, `¿`, `¡` or an opening quote follow, unless the word before
the full stop is a common Spanish or English abbreviation (`Sr.`, `p. ej.`, `Mr.`, `e.g.`) or a single
initial (`J. R. Jiménez`). A "sentence" longer than `MAX_SENTENCE_CHARS` is cut at a comma, semicolon or
colon, or else at a space, so nothing falls off the end of the model's input.

With `format=html`, tags, comments and declarations are kept byte for byte; only the text between them
is translated (entities unescaped before and escaped after); `<script>` and `<style>` are left alone.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from html.parser import HTMLParser

MAX_SENTENCE_CHARS = 400

ABBREVIATIONS = frozenset(
    # Spanish
    "sr sra srta sres sras dr dra dres d dña ud uds vd vds lic ing arq prof profa sto sta gral cnel "
    "etc ej pág págs núm cap caps vol vols art arts av avda pza apdo tel dpto depto cía aprox admón "
    "adm ldo lda mons fr sor pbro vda vdo "
    # English
    "mr mrs ms messrs dr prof sr jr st mt vs etc e.g i.e cf al approx dept est inc ltd corp rev hon "
    "gov sen rep capt lt sgt cmdr".split()
)
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’»)\]]*(\s+)")
_OPENING = "¿¡\"'“‘«([—"
_LEADING_PUNCTUATION = "¿¡\"'“‘«(["
_SOFT_BREAK = re.compile(r"[,;:]\s+")


@dataclass
class SplitText:
    """A text as sentences to translate and the exact whitespace around them.

    `separators` has one more item than `sentences`: what comes before the first sentence, between
    each pair, and after the last.
    """

    sentences: list[str]
    separators: list[str]

    def join(self, translations: list[str]) -> str:
        parts = [self.separators[0]]
        for translation, separator in zip(translations, self.separators[1:]):
            parts += [translation, separator]
        return "".join(parts)


def split_sentences(text: str, max_chars: int = MAX_SENTENCE_CHARS) -> SplitText:
    sentences: list[str] = []
    separators: list[str] = [""]
    for piece in re.split(r"(\s*\n\s*)", text):  # odd items: runs of whitespace holding a line break
        if not piece:
            continue
        if not piece.strip():
            separators[-1] += piece
            continue
        stripped = piece.strip()
        leading = piece[: len(piece) - len(piece.lstrip())]
        trailing = piece[len(piece.rstrip()) :]
        separators[-1] += leading
        for sentence, separator in _split_line(stripped, max_chars):
            sentences.append(sentence)
            separators.append(separator)
        separators[-1] += trailing
    return SplitText(sentences, separators)


def _split_line(line: str, max_chars: int) -> list[tuple[str, str]]:
    """(sentence, following whitespace) pairs of one line without surrounding whitespace."""
    pieces, start = [], 0
    for match in _SENTENCE_END.finditer(line):
        end, next_start = match.start(1), match.end(1)
        if next_start >= len(line) or not _starts_sentence(line[next_start]):
            continue
        if _is_abbreviation(line[start:end]):
            continue
        pieces.append((line[start:end], match.group(1)))
        start = next_start
    pieces.append((line[start:], ""))
    return [chunk for sentence, separator in pieces for chunk in _cut_long(sentence, separator, max_chars)]


def _starts_sentence(char: str) -> bool:
    return char.isupper() or char in _OPENING


def _is_abbreviation(sentence: str) -> bool:
    """Whether the full stop ending `sentence` belongs to an abbreviation or an initial."""
    if not sentence.endswith(".") or sentence.endswith(".."):
        return False
    words = sentence[:-1].split()
    if not words:
        return False
    word = words[-1].lstrip(_LEADING_PUNCTUATION).lower()
    return (len(word) == 1 and word.isalpha()) or word in ABBREVIATIONS


def _cut_long(sentence: str, separator: str, max_chars: int) -> list[tuple[str, str]]:
    chunks = []
    while len(sentence) > max_chars:
        window = sentence[: max_chars + 1]
        soft = [m for m in _SOFT_BREAK.finditer(window) if m.start() > max_chars // 4]
        if soft:
            cut, resume = soft[-1].start() + 1, soft[-1].end()
        else:
            space = window.rfind(" ")
            cut, resume = (space, space + 1) if space > 0 else (max_chars, max_chars)
        chunks.append((sentence[:cut].rstrip(), sentence[len(sentence[:cut].rstrip()) : resume]))
        sentence = sentence[resume:]
    chunks.append((sentence, separator))
    return chunks


# -- HTML ------------------------------------------------------------------------------------------


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


class _MarkupSplitter(HTMLParser):
    """Records where each event starts, so markup can be copied from the input byte for byte."""

    RAW_TEXT = frozenset({"script", "style"})

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.events: list[tuple[tuple[int, int], str | None]] = []  # (line, column), unescaped text or None
        self._raw: str | None = None

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


def split_html(markup: str) -> HtmlText:
    parser = _MarkupSplitter()
    parser.feed(markup)
    parser.close()
    line_starts = [0] + [i + 1 for i, char in enumerate(markup) if char == "\n"]
    offsets = [line_starts[line - 1] + column for (line, column), _ in parser.events] + [len(markup)]
    # Runs of (raw, unescaped text or None); adjacent text events (e.g. around a stray "<") are merged.
    runs: list[list] = [[markup[: offsets[0]], None]] if offsets[0] else []
    for (_, text), start, end in zip(parser.events, offsets, offsets[1:]):
        raw = markup[start:end]
        if runs and (runs[-1][1] is None) == (text is None):
            runs[-1][0] += raw
            if text is not None:
                runs[-1][1] += text
        else:
            runs.append([raw, text])
    parts: list[str | SplitText] = []
    for raw, text in runs:
        if text is not None and text.strip():
            parts.append(split_sentences(text))
        elif parts and isinstance(parts[-1], str):
            parts[-1] += raw
        else:
            parts.append(raw)
    return HtmlText(parts)


def split_for_translation(text: str, text_format: str) -> SplitText | HtmlText:
    """The sentences of `text` (`format` "text" or "html") and how to put their translations back."""
    return split_html(text) if text_format == "html" else split_sentences(text)
