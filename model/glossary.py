"""Glossaries: source term → target term for one language pair, found in a text and enforced in its
translation.

    glossary = Glossary([("sistema de archivos", "file system"), ("paquete", "package")], "es", "en")
    glossary.matches("El Sistema de archivos del paquete")   # two TermMatch, longest match first
    glossary.enforce(source, translation_text, source_pieces, target_pieces, alignment)

Matching is case-insensitive and at word boundaries (`paquete` is not found in `paquetes`), longest
term first; terms are indexed by their first word, so a sentence costs one dictionary look-up per word
whatever the glossary's size (100,000 terms load in about a second and match as fast as 10).

Enforcement is repair by attention after the search (chosen by measurement, benchmarks/glossary.py): a
term found in the source whose target term the translation lacks (case-insensitively, at word
boundaries) replaces the translation's words aligned to the source term's pieces: of the words whose
strongest attention falls on them, the run as long as the target term that attends most to them; else
the one word that attends most to them. The output therefore
carries the glossary's form, except where the aligned words are that form with another ending (the
same stem and up to three letters more or other: `primarias` for `primario`, `instalará` for
`instalar`): the model wrote the term in the form its sentence needs (a plural, a feminine, a
conjugated verb), and it is kept. A synonym (`contraseña` for `frase`) is replaced. The search itself
is untouched, so sentences with and without glossaries (of different requests) share one batch.

Duplicate source terms (the same words in another case or spacing): the last one wins.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

from carousel.model.spans import piece_words, protected_spans

MAX_TERMS = 100_000  # per glossary: loads in about a second, matches in microseconds a sentence
MAX_TERM_CHARS = 200  # a term is a word or a phrase, not a paragraph
MAX_TERM_WORDS = 16

WORD = re.compile(r"\w+")


class GlossaryError(ValueError):
    """A glossary that cannot be used as given; the message names the entry."""


@dataclass(frozen=True)
class TermMatch:
    """A glossary term found in a text: its characters [start, end) and the target term it asks for."""

    start: int
    end: int
    source: str  # the text's own spelling
    target: str


@dataclass(frozen=True)
class _Entry:
    words: int  # words of the term
    key: str  # casefolded, spaces collapsed
    before: int  # characters before the first word ("." of ".deb")
    after: int  # characters after the last word ("++" of "C++")
    target: str


def term_key(text: str) -> str:
    """What two spellings of a term share when they are the same term: case and spacing ignored."""
    return " ".join(text.casefold().split())


class Glossary:
    """Terms of one language pair (`source_lang` → `target_lang`); `name` is only for messages."""

    def __init__(self, pairs: Iterable[tuple[str, str]], source_lang: str, target_lang: str, name: str = ""):
        self.source_lang, self.target_lang, self.name = source_lang, target_lang, name
        self.terms: dict[str, tuple[str, str]] = {}  # key -> (source term, target term); the last duplicate wins
        for number, pair in enumerate(pairs, start=1):
            source, target = check_term_pair(pair, number)
            self.terms[term_key(source)] = (source, target)
            if len(self.terms) > MAX_TERMS:
                raise GlossaryError(f"a glossary holds at most {MAX_TERMS} terms")
        self._by_first_word: dict[str, list[_Entry]] = {}
        for key, (source, target) in self.terms.items():
            words = WORD.findall(key)
            first, last = WORD.search(key), list(WORD.finditer(key))[-1]
            entry = _Entry(len(words), key, first.start(), len(key) - last.end(), target)
            self._by_first_word.setdefault(words[0], []).append(entry)
        for entries in self._by_first_word.values():
            entries.sort(key=lambda entry: (-entry.words, -len(entry.key)))  # longest match first

    def __len__(self) -> int:
        return len(self.terms)

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return list(self.terms.values())

    def matches(self, text: str) -> list[TermMatch]:
        """The terms found in `text`, in order, none overlapping: at each word the longest term that starts there."""
        words = list(WORD.finditer(text))
        folded = [word.group(0).casefold() for word in words]
        found, i = [], 0
        while i < len(words):
            match = self._match_at(text, words, folded, i)
            if match is None:
                i += 1
                continue
            entry, start, end = match
            found.append(TermMatch(start, end, text[start:end], entry.target))
            i += entry.words
        return found

    def _match_at(self, text: str, words: list[re.Match], folded: list[str], i: int):
        for entry in self._by_first_word.get(folded[i], ()):
            if i + entry.words > len(words):
                continue
            start, end = words[i].start() - entry.before, words[i + entry.words - 1].end() + entry.after
            if start < 0 or end > len(text):
                continue
            inside = text[start:end]
            if term_key(inside) == entry.key and _at_boundaries(text, start, end):
                return entry, start, end
        return None

    def lacks_terms(self, source: str, translation: str) -> bool:
        """Whether a term found in `source` has its target term missing from `translation`."""
        return any(not contains_term(translation, match.target) for match in self.matches(source))

    def enforce(self, source: str, translation: str, source_pieces: list[str] | None = None,
                target_pieces: list[str] | None = None, alignment: list[list[float]] | None = None) -> str:
        """`translation` with the target term of every term found in `source` (see the module's docstring).

        The pieces are the search's (without EOS), the alignment its attention weights [target + EOS][source + EOS];
        a term that cannot be placed without them (no alignment, pieces that do not spell the texts) is left as the model
        wrote it."""
        missing = [match for match in self.matches(source) if not contains_term(translation, match.target)]
        if not missing or not alignment or not source_pieces or not target_pieces:
            return translation
        source_words = piece_words(source_pieces)
        target_words = piece_words(target_pieces)
        words = list(re.finditer(r"\S+", translation))
        if max(source_words, default=-1) + 1 != len(source.split()) or max(target_words, default=-1) + 1 != len(words):
            return translation  # the normaliser or the decoder changed the words: nothing can be placed safely
        protected = {i for i, word in enumerate(words) if protected_spans(word.group(0))}
        edits, taken = [], set(protected)
        for match in missing:
            first = len(source[: match.start].split())
            if match.start > 0 and not source[match.start - 1].isspace():
                first -= 1  # the term starts inside a whitespace-separated word ("(paquete")
            count = len(source[match.start: match.end].split())
            columns = [j for j, w in enumerate(source_words) if first <= w < first + count]
            chosen = _aligned_words(columns, target_words, alignment, len(match.target.split()))
            chosen = [i for i in chosen if i not in taken]
            if not chosen or is_inflection(" ".join(words[i].group(0) for i in chosen), match.target):
                continue  # nothing to replace, or the model wrote the term in the form its sentence needs
            taken.update(range(chosen[0], chosen[-1] + 1))
            edits.append(_replacement(translation, words[chosen[0]], words[chosen[-1]], match.target))
        for start, end, text in sorted(edits, reverse=True):
            translation = translation[:start] + text + translation[end:]
        return translation


def check_term_pair(pair, number: int) -> tuple[str, str]:
    """(source, target) stripped, or GlossaryError naming entry `number` and what is wrong with it."""
    if not isinstance(pair, (tuple, list)) or len(pair) != 2 or not all(isinstance(t, str) for t in pair):
        raise GlossaryError(f"term {number}: give a source term and a target term")
    source, target = (" ".join(term.split()) for term in pair)
    for side, term in (("source", source), ("target", target)):
        if not term:
            raise GlossaryError(f"term {number}: the {side} term is empty")
        if len(term) > MAX_TERM_CHARS:
            raise GlossaryError(f"term {number}: the {side} term has {len(term)} characters; the limit is {MAX_TERM_CHARS}")
    if not WORD.search(source):
        raise GlossaryError(f"term {number}: the source term {source!r} has no letter or digit to match")
    if len(WORD.findall(source)) > MAX_TERM_WORDS:
        raise GlossaryError(f"term {number}: the source term has more than {MAX_TERM_WORDS} words")
    return source, target


def read_glossary_tsv(text: str, where: str = "the glossary") -> list[tuple[str, str]]:
    """Pairs of a tab-separated glossary: `source<TAB>target` a line; blank lines and lines starting with
    `#` are skipped. A malformed line is a GlossaryError with its line number."""
    pairs = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 2:
            raise GlossaryError(f"{where}, line {number}: expected 'source<TAB>target', found {len(fields)} "
                                f"field{'s' if len(fields) != 1 else ''}")
        try:
            pairs.append(check_term_pair(fields, number))
        except GlossaryError as error:
            raise GlossaryError(f"{where}, line {number}: {str(error).partition(': ')[2]}") from None
    return pairs


def contains_term(text: str, term: str) -> bool:
    """Whether `term` is in `text`, case-insensitively, at word boundaries, whatever the spacing."""
    return _term_pattern(term).search(text) is not None


@functools.lru_cache(maxsize=4096)
def _term_pattern(term: str) -> re.Pattern:
    body = r"\s+".join(re.escape(word) for word in term.split())
    return re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE)


def _at_boundaries(text: str, start: int, end: int) -> bool:
    """A term starting or ending with a non-word character ("C++") must not run into a word either."""
    before = start == 0 or not (text[start - 1].isalnum() or text[start - 1] == "_")
    after = end == len(text) or not (text[end].isalnum() or text[end] == "_")
    return before and after


def _aligned_words(columns: list[int], target_words: list[int], alignment: list[list[float]], wanted: int) -> list[int]:
    """The translation's words (by index, in order) aligned to the source pieces `columns`: among the words
    with a piece whose strongest attention (EOS aside) is on them, the run of at most `wanted` words (the
    target term's) that attends most to them ("The package" for "El paquete" keeps "The"); without such
    words, the one word that attends most to them."""
    rows = alignment[: len(target_words)]
    if not columns or not rows:
        return []
    mass: dict[int, float] = {}  # per word: its pieces' attention on the term
    for i, row in enumerate(rows):
        mass[target_words[i]] = mass.get(target_words[i], 0.0) + sum(row[j] for j in columns if j < len(row))
    hard = sorted({target_words[i] for i, row in enumerate(rows) if _strongest_column(row) in columns})
    if not hard:
        return [max(mass, key=mass.__getitem__)]
    size = min(max(wanted, 1), hard[-1] - hard[0] + 1)
    starts = range(hard[0], hard[-1] - size + 2)
    best = max(starts, key=lambda start: sum(mass.get(w, 0.0) for w in range(start, start + size)))
    return list(range(best, best + size))


def _strongest_column(row: list[float]) -> int:
    """The source piece a target piece attends to most, the source's EOS (the last column) left out."""
    columns = range(max(len(row) - 1, 1))
    return max(columns, key=row.__getitem__)


def is_inflection(written: str, term: str) -> bool:
    """Whether `written` (the words aligned to a term) is `term` with other endings, word by word: the
    same stem, a different ending of up to three letters (primarias for primario, instalará for
    instalar, files for file)."""
    written_words, term_words = WORD.findall(written.casefold()), WORD.findall(term.casefold())
    if len(written_words) != len(term_words):
        return False
    return all(_same_stem(word, wanted) for word, wanted in zip(written_words, term_words))


def _same_stem(word: str, term: str) -> bool:
    shared = len(os.path.commonprefix([word, term]))
    return shared >= max(3, len(term) - 3) and len(word) - shared <= 3


def _replacement(translation: str, first: re.Match, last: re.Match, target: str) -> tuple[int, int, str]:
    """(start, end, text): the words from `first` to `last` replaced by `target`, their outer punctuation
    kept, a code-like word only up to its first mark ("LOPE" of "LOPE(Datos_Y);"), and a capital kept
    where the replaced word had one (the start of a sentence)."""
    start, end = first.start(), last.end()
    start += len(re.match(r"[^\w]*", translation[start:end]).group(0))
    end -= len(re.search(r"[^\w]*$", translation[start:end]).group(0))
    if end <= start:
        start, end = first.start(), last.end()
    words = re.match(r"[^\W_]+(?:(?:\s+|['’-])[^\W_]+)*", translation[start:end])
    if words:
        end = start + words.end()
    replaced = translation[start:end]
    if replaced[:1].isupper() and target[:1].islower():
        target = target[0].upper() + target[1:]
    return start, end, target
