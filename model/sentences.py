"""Cutting text into sentences the model can translate, and putting the translations back.

The model was trained on single verses, so a long text is cut into sentences, each is translated on
its own, and the translations are put back with the original whitespace between them: line breaks and
blank lines (paragraphs) come back where they were. Every line break ends a sentence.

A sentence ends at `.`, `!`, `?` or `…` (optionally followed by closing quotes or brackets) when
whitespace and then an upper-case letter, `¿`, `¡` or an opening quote follow, unless the word before
the full stop is a common Spanish or English abbreviation (`Sr.`, `p. ej.`, `Mr.`, `e.g.`) or a single
initial (`J. R. Jiménez`). A "sentence" longer than `MAX_SENTENCE_CHARS` is cut at a comma, semicolon or
colon, or else at a space, so nothing falls off the end of the model's input.

Used by the offline translator (`carousel translate`), the evaluation and the service alike, so a text
gets the same translation whichever way it comes in, and by the corpus builders (`data/gettext.py`, without
the length cut) to pair the sentences of a paragraph with those of its translation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

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


def has_words(text: str) -> bool:
    """Whether a text has anything to translate: a letter. The one rule for it (the translator, the
    service, document formats): text without a letter ("—", "3.", "12:30", "2024") reads the same in
    every language, so the model can only damage it (a lone number may come back as a hallucinated
    word), and it comes back as it is."""
    return any(char.isalpha() for char in text)


# -- putting n-best translations back together ------------------------------------------------------


class Document(Protocol):
    """A text cut into sentences that can be put back together (SplitText, or the service's HtmlText)."""

    @property
    def sentences(self) -> list[str]: ...

    def join(self, translations: list[str]) -> str: ...


def join_nbest(document: Document, nbests: list[list[tuple[str, float]]], count: int) -> list[tuple[str, float]]:
    """Up to `count` distinct (text, score) translations of a document, best first.

    `nbests` holds each sentence's (translation, score) list, best first. The i-th alternative takes
    every sentence's i-th best (its best if it has fewer); its score is the mean over the sentences.
    A document of whitespace only comes back as it is.
    """
    joined: list[tuple[str, float]] = []
    for rank in range(count):
        if rank > 0 and not any(len(nbest) > rank for nbest in nbests):
            break
        picked = [nbest[rank] if len(nbest) > rank else nbest[0] for nbest in nbests]
        text = document.join([translation for translation, _ in picked])
        score = sum(s for _, s in picked) / len(picked) if picked else 0.0
        if all(text != seen for seen, _ in joined):
            joined.append((text, score))
    return joined
