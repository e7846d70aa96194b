"""What translating a sentence costs, and sentences cut so that none costs too much.

A beam search's work grows with the source's subword tokens (the decoder runs about 1.5 steps per
source token, and attends over all of them) times the beam, and a confidence decodes once more with
the reverse model: `decoding_cost` is tokens × beam (× 2 with confidence), the unit of the batching
queue's `max_batch_tokens`. The cost of a request is the sum over its sentences (`sentence_cost`: twice
for a sentence the model also reads closed with a full stop, model/closing.py), and the server bounds
it (`max_decoding_cost`).

Sentences are cut at 400 characters (model/sentences.py), but 400 characters without spaces are 400
subword tokens where a sentence has 30: a "word" of 10,000 letters cost 7 CPU-seconds. `cut_long_sentences`
cuts every sentence of more than `cap` tokens into pieces of at most `cap`, at whitespace where it can,
so that no sentence costs more than one of the longest real ones (Marian-style servers crop instead; a
piece is still translated).
"""

from __future__ import annotations

import re
from dataclasses import replace
from collections.abc import Callable

from carousel.formats.html import HtmlText
from carousel.model.translator import SearchConfig, SplitText, is_open

Tokens = Callable[[str], int]  # subword tokens of a sentence, EOS included
_WHITESPACE = re.compile(r"\s+")


def decoding_cost(tokens: int, search: SearchConfig) -> int:
    return tokens * search.beam * (2 if search.return_confidence else 1)


def sentence_cost(sentence: str, tokens: int, search: SearchConfig) -> int:
    """`decoding_cost` of one sentence: twice where it is searched twice, as typed and closed."""
    return decoding_cost(tokens, search) * (2 if read_twice(sentence, search) else 1)


def read_twice(sentence: str, search: SearchConfig) -> bool:
    return bool(search.close_open) and is_open(sentence)


def cut_long_sentences(document: SplitText | HtmlText, tokens: Tokens, cap: int) -> SplitText | HtmlText:
    """`document` with each sentence of more than `cap` tokens cut into pieces of at most `cap` tokens;
    joining the pieces' translations puts back the whitespace between them."""
    if isinstance(document, HtmlText):
        return replace(document, parts=[cut_long_sentences(part, tokens, cap) for part in document.parts])
    sentences: list[str] = []
    separators = [document.separators[0]]
    for sentence, after in zip(document.sentences, document.separators[1:]):
        for piece, between in _pieces(sentence, tokens, cap):
            sentences.append(piece)
            separators.append(between)
        separators[-1] += after
    return SplitText(sentences, separators)


def _pieces(sentence: str, tokens: Tokens, cap: int) -> list[tuple[str, str]]:
    """(piece, the whitespace after it), in order; the last piece has none."""
    pieces = []
    rest = sentence
    while tokens(rest) > cap:
        end = _longest_prefix(rest, tokens, cap)
        spaces = [m for m in _WHITESPACE.finditer(rest, 0, end + 1) if m.start() > end // 2]
        cut, resume = (spaces[-1].start(), spaces[-1].end()) if spaces else (end, end)
        pieces.append((rest[:cut], rest[cut:resume]))
        rest = rest[resume:]
    return pieces + [(rest, "")]


def _longest_prefix(text: str, tokens: Tokens, cap: int) -> int:
    """The length of the longest prefix of `text` (at least 1 character) of at most `cap` tokens."""
    low, high = 1, min(len(text), cap * 32)  # no subword piece is 32 characters long
    while low < high:
        middle = (low + high + 1) // 2
        if tokens(text[:middle]) <= cap:
            low = middle
        else:
            high = middle - 1
    return low
