"""Inline markup carried across a translation by the attention, so "Click <b>Save</b> now" is one sentence.

The model never sees inline tags: `take_tags` takes them out of a sentence, keeping which characters of
the plain text each one wrapped, and `put_back_tags` puts them into the plain text's translation around
the words the attention aligns with those characters (as Bergamot and DeepL do):

    tagged = take_tags("Click <b>Save</b> now")      # tagged.plain == "Click Save now"
    put_back_tags(tagged, "Haga clic en Guardar ahora", source_pieces, target_pieces, alignment)
    # -> "Haga clic en <b>Guardar</b> ahora"

A paired tag wraps the smallest run of whole target words that covers the target pieces whose
strongest attention falls on the source pieces it wrapped (the largest cluster of them, so one stray
word far off does not stretch it); a standalone tag (`<br>`, `<img>`, a tag
without its partner, a pair that wraps no text) goes after the word aligned with the source word before
it. An element marked `translate="no"` or `class="notranslate"`, and code (`<code>`, `<kbd>`, `<samp>`),
is put back whole, in place of the words its text was translated into. The output is always well formed: every tag exactly once, in source order,
nested as in the source and never crossing; where the attention says nothing useful, positions follow
the source's proportionally.

Only the inline elements of HTML count as tags; anything else between angle brackets (`<file>`, `<n>`)
is text that span repair (model/spans.py) keeps. Pure functions: strings, pieces and attention in,
text out.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass
from difflib import SequenceMatcher

from carousel.model.spans import piece_ranges, piece_words

INLINE_ELEMENTS = frozenset(
    "a abbr b bdi bdo cite code data dfn em font i kbd mark q s samp small span strong sub sup time u var".split()
)
VOID_ELEMENTS = frozenset({"br", "img", "wbr"})  # standalone by nature; they separate words
# A start or end tag; attribute values in quotes may hold ">".
TAG = re.compile(r"""<(/?)([A-Za-z][A-Za-z0-9]*)((?:[^<>"']|"[^"]*"|'[^']*')*)>""")
CODE_ELEMENTS = frozenset({"code", "kbd", "samp"})  # their content is copied, never translated
KEEP_AS_IS = re.compile(
    r"""\stranslate\s*=\s*["']?no\b|\sclass\s*=\s*(?:"[^"]*|'[^']*|)\bnotranslate\b""", re.IGNORECASE
)
LEADING_PUNCTUATION = "¿¡\"'“‘«(["
TRAILING_PUNCTUATION = ".,;:!?…\"'”’»)]"


@dataclass(frozen=True)
class Element:
    """One piece of inline markup and the characters of the plain text it covers ([start, end)).

    kind "pair": `markup` and `closing` wrap the text; "point": `markup` stands between two characters
    (start == end); "verbatim": `markup` is a whole element to copy unchanged, whose text is plain[start:end].
    """

    kind: str
    markup: str
    closing: str
    start: int
    end: int
    parent: int | None  # the index of the pair it sits in


@dataclass(frozen=True)
class TaggedSentence:
    plain: str  # what the model translates
    elements: tuple[Element, ...] = ()  # in source order


def is_inline_tag(tag: "re.Match | str") -> bool:
    """Whether a tag (a match of TAG, or a string that is one tag) is inline markup."""
    match = TAG.fullmatch(tag) if isinstance(tag, str) else tag
    return match is not None and match.group(2).lower() in INLINE_ELEMENTS | VOID_ELEMENTS


def inline_tags(text: str) -> list[re.Match]:
    return [match for match in TAG.finditer(text) if is_inline_tag(match)]


# -- taking the tags out ------------------------------------------------------------------------------


def take_tags(sentence: str) -> TaggedSentence:
    """The sentence's plain text (whitespace collapsed) and its inline markup; a sentence without
    inline tags comes back as it is."""
    tags = inline_tags(sentence)
    if not tags:
        return TaggedSentence(sentence)
    partner = _partners(tags)
    raw, found = "", []  # the plain text before whitespace is collapsed; (kind, markup, closing, start, end, parent)
    open_pairs: list[int] = []  # indices into `found` of the pairs open at this point
    position, index = 0, 0
    while index < len(tags):
        tag = tags[index]
        raw += sentence[position:tag.start()]
        parent = open_pairs[-1] if open_pairs else None
        closing = tags[partner[index]] if index in partner and partner[index] > index else None
        if closing is not None and (tag.group(2).lower() in CODE_ELEMENTS or KEEP_AS_IS.search(tag.group(3))):
            text = _visible_text(sentence[tag.end():closing.start()])
            found.append(["verbatim", sentence[tag.start():closing.end()], "", len(raw), len(raw) + len(text), parent])
            raw += text
            position, index = closing.end(), partner[index] + 1
        elif closing is not None and not _visible_text(sentence[tag.end():closing.start()]).strip():
            markup = sentence[tag.start():closing.end()]  # a pair around no text (a linked image) moves whole
            found.append(["point", markup, "", len(raw), len(raw), parent])
            raw += " " if _separates_words(markup) else ""
            position, index = closing.end(), partner[index] + 1
        elif closing is not None:
            found.append(["pair", tag.group(0), closing.group(0), len(raw), None, parent])
            open_pairs.append(len(found) - 1)
            position, index = tag.end(), index + 1
        elif index in partner:  # the closing tag of an open pair
            found[open_pairs.pop()][4] = len(raw)
            position, index = tag.end(), index + 1
        else:  # standalone, or a tag without its partner
            found.append(["point", tag.group(0), "", len(raw), len(raw), parent])
            raw += " " if _separates_words(tag.group(0)) else ""
            position, index = tag.end(), index + 1
    raw += sentence[position:]
    plain, moved = _collapse_whitespace(raw)
    return TaggedSentence(plain, tuple(
        Element(kind, markup, closing, moved[start], moved[end], parent)
        for kind, markup, closing, start, end, parent in found
    ))


def _partners(tags: list[re.Match]) -> dict[int, int]:
    """Index of each paired tag's partner, both ways; void and self-closing tags have none."""
    return pair_up([
        (tag.group(2).lower(), None if tag.group(2).lower() in VOID_ELEMENTS or tag.group(3).rstrip().endswith("/")
         else "close" if tag.group(1) else "open")
        for tag in tags
    ])


def pair_up(tags: list[tuple[str, str | None]]) -> dict[int, int]:
    """For (name, "open" | "close" | None) tags in order, the index of each paired tag's partner, both
    ways. A closing tag pairs with the innermost open tag of its name, and the tags opened inside that one
    are left without partners (as a browser closes them); unmatched tags have none. Linear time, so a
    flood of unclosed tags costs no more than any other markup."""
    partner: dict[int, int] = {}
    stack: list[int] = []  # open tags, innermost last
    by_name: dict[str, list[int]] = {}  # each name's open tags, innermost last
    for index, (name, kind) in enumerate(tags):
        if kind == "open":
            stack.append(index)
            by_name.setdefault(name, []).append(index)
        elif kind == "close" and by_name.get(name):
            opening = by_name[name][-1]
            partner[opening], partner[index] = index, opening
            while stack[-1] != opening:  # each open tag leaves the stack once: linear overall
                by_name[tags[stack.pop()][0]].pop()
            stack.pop()
            by_name[name].pop()
    return partner


def _visible_text(markup: str) -> str:
    """The text of a stretch of a sentence as a reader sees it: inline tags removed, entities read (and
    no inline tag left that the entities spelled, so the plain text never holds one)."""
    return _without_inline_tags(html.unescape(_without_inline_tags(markup)))


def _without_inline_tags(text: str) -> str:
    return TAG.sub(lambda tag: "" if is_inline_tag(tag) else tag.group(0), text)


def _separates_words(markup: str) -> bool:
    return any(tag.group(2).lower() in VOID_ELEMENTS for tag in TAG.finditer(markup))


def _collapse_whitespace(raw: str) -> tuple[str, list[int]]:
    """`raw` with runs of whitespace as one space and none at either end, and where each of its
    positions (0 to len(raw)) went."""
    out: list[str] = []
    moved = []
    for char in raw:
        moved.append(len(out))
        if not char.isspace():
            out.append(char)
        elif out and out[-1] != " ":
            out.append(" ")
    moved.append(len(out))
    if out and out[-1] == " ":
        out.pop()
    return "".join(out), [min(at, len(out)) for at in moved]


# -- putting them back -----------------------------------------------------------------------------


def put_back_tags(tagged: TaggedSentence, translation: str, source_pieces: list[str] | None = None,
                  target_pieces: list[str] | None = None, alignment: list[list[float]] | None = None) -> str:
    """`translation` (of `tagged.plain`) with the sentence's inline markup around the aligned words.

    `source_pieces` and `target_pieces` are the SentencePiece pieces of the plain source and of the
    search's output (no EOS); `alignment` the attention weights, [target pieces (+ EOS)][source pieces
    (+ EOS)], as the search returns them. Without them, tags are placed in proportion to the source.
    """
    if not tagged.elements:
        return translation
    placement = _Placement(tagged, translation, _aligned_source_words(
        tagged.plain, translation, source_pieces or [], target_pieces or [], alignment or []))
    return placement.render()


def _words(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]


def _aligned_source_words(source: str, translation: str, source_pieces: list[str], target_pieces: list[str],
                          alignment: list[list[float]]) -> list[set[int]]:
    """For each word of `translation`, the words of `source` its pieces attend to most. Pieces without a
    letter or digit (punctuation follows whatever is near) count only where a word has nothing else."""
    source_words, target_words = _words(source), _words(translation)
    aligned: list[set[int]] = [set() for _ in target_words]
    weak: list[set[int]] = [set() for _ in target_words]
    if not alignment or not source_pieces or not target_pieces:
        return aligned
    source_word_of = _piece_words(source, source_words, source_pieces)
    target_word_of = _piece_words(translation, target_words, target_pieces)
    for row, piece, word in zip(alignment, target_pieces, target_word_of):
        weights = row[: len(source_pieces)]
        if word is None or not weights:
            continue
        strongest = source_word_of[max(range(len(weights)), key=weights.__getitem__)]
        if strongest is not None:
            (aligned if any(c.isalnum() for c in piece) else weak)[word].add(strongest)
    return [strong or punctuation for strong, punctuation in zip(aligned, weak)]


def _piece_words(text: str, words: list[tuple[int, int]], pieces: list[str]) -> list[int | None]:
    """The word of `text` each piece spells part of (None where none can be told).

    Counted by SentencePiece's word marks where they give as many words as `text` has (the usual case);
    otherwise (the source was normalised, span repair edited the output) by matching characters."""
    by_marks = piece_words(pieces)
    if by_marks and by_marks[-1] + 1 == len(words):
        return by_marks
    spelled, ranges = piece_ranges(pieces)
    in_text: dict[int, int] = {}  # position in `spelled` -> position in `text`
    for block in SequenceMatcher(None, spelled, text, autojunk=False).get_matching_blocks():
        in_text.update((block.a + k, block.b + k) for k in range(block.size))
    word_at = {at: w for w, (start, end) in enumerate(words) for at in range(start, end)}
    result: list[int | None] = []
    for span in ranges:
        found = [word_at[in_text[at]] for at in span if at in in_text and in_text[at] in word_at]
        result.append(found[0] if found else None)
    return result


class _Placement:
    """Where each element goes in the translation, in characters: each inside its parent and after its
    previous sibling, so the markup nests as in the source."""

    def __init__(self, tagged: TaggedSentence, translation: str, aligned: list[set[int]]):
        self.tagged, self.translation, self.aligned = tagged, translation, aligned
        self.source_words = _words(tagged.plain)
        self.words = _words(translation)
        self.children: dict[int | None, list[int]] = {}
        for index, element in enumerate(tagged.elements):
            self.children.setdefault(element.parent, []).append(index)
        self.spans: dict[int, tuple[int, int]] = {}  # element -> characters of the translation it covers

    def render(self) -> str:
        self._place(None, 0, len(self.translation))
        return self._markup(None, 0, len(self.translation))

    def _markup(self, parent: int | None, start: int, end: int) -> str:
        out, at = [], start
        for index in self.children.get(parent, []):
            element, (first, last) = self.tagged.elements[index], self.spans[index]
            out.append(self.translation[at:first])
            if element.kind == "pair":
                out += [element.markup, self._markup(index, first, last), element.closing]
            else:
                out.append(element.markup)  # a point, or a verbatim element in place of its words
            at = last
        out.append(self.translation[at:end])
        return "".join(out)

    def _place(self, parent: int | None, low: int, high: int) -> None:
        """Place `parent`'s children within its characters [low, high), in source order."""
        at = low
        for index in self.children.get(parent, []):
            element = self.tagged.elements[index]
            wanted = self._target_words(element) if element.kind != "point" else None
            if wanted is None:  # a point, or a verbatim element whose words the model dropped
                point = min(max(self._point(element), at), high)
                self.spans[index] = (point, point)
                self._place(index, point, point)  # a pair with no words left: its children with it
                at = point
                continue
            start, end = self._characters(element, *wanted)
            start, end = max(start, at), min(end, high)
            if start >= end:  # taken by an earlier sibling: the next free word, if any
                start, end = self._next_word(element, at, high)
            self.spans[index] = (start, end)
            self._place(index, start, end)
            at = end

    def _target_words(self, element: Element) -> tuple[int, int] | None:
        """The target words [first, last) an element's text went to: the smallest run covering the
        largest cluster of words aligned with its source words, else its words' share of the source.
        None for a verbatim element the alignment finds nowhere."""
        covered = self._covered(element)
        hits = [w for w, sources in enumerate(self.aligned) if sources & covered]
        if hits:
            cluster = _largest_cluster(hits)
            return cluster[0], cluster[-1] + 1
        if not covered or not self.words or (element.kind == "verbatim" and any(self.aligned)):
            return None
        scale = len(self.words) / max(len(self.source_words), 1)
        first = min(math.floor(min(covered) * scale), len(self.words) - 1)
        return first, max(math.ceil((max(covered) + 1) * scale), first + 1)

    def _covered(self, element: Element) -> set[int]:
        return {w for w, (start, end) in enumerate(self.source_words) if start < element.end and end > element.start}

    def _point(self, element: Element) -> int:
        """The character a point goes to: at the word boundary that best splits the target words aligned
        with source words before it from those aligned with words after it (the nearer to its share of
        the source on a tie); at the start or end where nothing comes before or after it."""
        before = sum(1 for _, end in self.source_words if end <= element.start)
        if before == 0:
            return 0
        if before == len(self.source_words):
            return len(self.translation)
        share = before * len(self.words) / len(self.source_words)

        def misplaced(boundary: int) -> tuple[int, float]:
            """Target words on the wrong side of `boundary`, then the distance from the source's share."""
            wrong = sum(1 for w, sources in enumerate(self.aligned) if sources and (
                (w < boundary and min(sources) >= before) or (w >= boundary and max(sources) < before)))
            return wrong, abs(boundary - share)

        boundary = min(range(len(self.words) + 1), key=misplaced)
        return self.words[boundary - 1][1] if boundary > 0 else 0

    def _characters(self, element: Element, first: int, last: int) -> tuple[int, int]:
        """Characters of target words [first, last) for an element: part of a word where the element
        wraps part of a source word that the translation copies ("<kbd>Ctrl</kbd>+<kbd>C</kbd>"), and
        without the punctuation around them that its source text lacks ("<b>Guardar</b>.")."""
        start, end = self.words[first][0], self.words[last - 1][1]
        for word_start, word_end in self.source_words:
            source_word = self.tagged.plain[word_start:word_end]
            if word_start < element.start < word_end and self._text(first) == source_word:
                start += element.start - word_start
            if word_start < element.end < word_end and self._text(last - 1) == source_word:
                end = self.words[last - 1][0] + element.end - word_start
        source = self.tagged.plain[element.start:element.end].strip()
        if source and source[0] not in LEADING_PUNCTUATION:
            while start < end - 1 and self.translation[start] in LEADING_PUNCTUATION:
                start += 1
        if source and source[-1] not in TRAILING_PUNCTUATION:
            while end > start + 1 and self.translation[end - 1] in TRAILING_PUNCTUATION:
                end -= 1
        return start, end

    def _text(self, word: int) -> str:
        start, end = self.words[word]
        return self.translation[start:end]

    def _next_word(self, element: Element, at: int, high: int) -> tuple[int, int]:
        """The first whole target word within [at, high), or nothing at `at` where there is none."""
        for index, (start, end) in enumerate(self.words):
            if start >= at and end <= high:
                return self._characters(element, index, index + 1)
        return at, at


def _largest_cluster(hits: list[int], gap: int = 2) -> list[int]:
    """The run of sorted word indices, none more than `gap` apart, that holds the most of them (the first
    of equals): a stray word far away that also attends there is not wrapped with the rest."""
    clusters = [[hits[0]]]
    for word in hits[1:]:
        if word - clusters[-1][-1] <= gap:
            clusters[-1].append(word)
        else:
            clusters.append([word])
    return max(clusters, key=len)
