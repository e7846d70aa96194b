"""Cleaning rules for Debian pairs: accelerator marks, placeholders and markup, sentence splitting.

Catalog strings keep their markup (`<b>`), since the model should learn to carry tags across, but
both sides must then hold the same tags and placeholders (`%s`, `%1$s`, `%d`, `{0}`, `{name}`, `%1`,
Fluent `{ $name }`), otherwise the pair is misaligned or broken and is dropped. Document blocks are
split into sentence pairs when both sides have the same number of sentences; blocks whose lengths or
numbers disagree are dropped as misaligned. Spanish document text left in English is told by its
function words (`looks_english`), for the extractors of man pages and manuals to drop.
"""

from __future__ import annotations

import re
from collections import Counter

from carousel.data.cleaning import length_ratio, normalize_whitespace
from carousel.data.corpus import DroppedRecord
from carousel.data.debian.config import DebianConfig
from carousel.data.debian.records import Candidate

# printf conversions (Mozilla's `%S` too; with positional `%1$s`, flags, width, precision, length), Python `%(name)s`,
# Qt/KDE `%1`, .NET/ICU `{0}`, Python/brace `{name}`, Fluent `{ $name }` and `{ -term }`.
_PLACEHOLDER = re.compile(
    r"%(?:\d+\$)?[-+#0']*(?:\d+|\*)?(?:\.(?:\d+|\*))?(?:hh|h|ll|l|L|q|j|z|t|I64)?[diouxXeEfFgGaAcspS]"
    r"|%\([A-Za-z_]\w*\)[diouxXeEfFgGsr]"
    r"|%\d+"
    r"|\{\d+\}"
    r"|\{[A-Za-z_][\w.]*\}"
    r"|\{ *[$-][\w-]+ *\}"
)
# Markup whose tags must match; `<file>` or `<PATTERN>` in usage texts are words to translate, not markup.
_MARKUP_NAMES = (
    "a|b|big|blockquote|br|center|code|div|em|emphasis|filename|font|h[1-6]|hr|i|img|kbd|li|link|literal|"
    "markup|nobr|ol|p|pre|qt|s|small|span|strong|sub|sup|table|td|th|tr|tt|u|ul|var"
)
_TAG = re.compile(rf"<(/?)({_MARKUP_NAMES})(?=[\s/>])[^<>]*>", re.IGNORECASE)
_NUMBER = re.compile(r"\d+")
# Terminal bells and other C0/C1 control characters (bash prints "\a" before some messages).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_ENTITY = re.compile(r"&(?:[A-Za-z]+|#\d+|#x[0-9A-Fa-f]+);")

# One accelerator mark before a letter: GTK `_File`, Qt/KDE `&File`, LibreOffice `~File`.
_ACCELERATORS = ("_", "&", "~")

_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”’»)\]]*\s+(?=[¿¡\"'“«(]?[A-ZÁÉÍÓÚÑÜ0-9])")
_ABBREVIATION = re.compile(
    r"(?:\b(?:e\.g|i\.e|etc|vs|approx|Mr|Mrs|Dr|St|p\. ej|p\.ej|pág|núm|Sr|Sra|Ud|Uds|aprox|ej|fig|Fig|No|n\.º)"
    r"|\b[A-Za-z])\.$"
)


# --- accelerators --------------------------------------------------------------------------


def strip_accelerators(english: str, spanish: str) -> tuple[str, str]:
    """Remove accelerator marks from both sides.

    A side is taken to carry a mark when it holds exactly one `_`, `&` or `~` followed by a letter or
    digit and the word around it does not appear unchanged on the other side: an identifier such as
    `file_name` or a name such as `AT&T` is copied verbatim into the translation, a mnemonic is not.
    """
    for mark in _ACCELERATORS:
        english, spanish = _strip_mark(english, spanish, mark), _strip_mark(spanish, english, mark)
    return english, spanish


def _strip_mark(text: str, other: str, mark: str) -> str:
    if text.count(mark) != 1:
        return text
    index = text.index(mark)
    if index + 1 >= len(text) or not text[index + 1].isalnum():
        return text
    if mark == "&" and (_ENTITY.match(text, index) or _TAG.search(text)):
        return text  # an entity, or an ampersand inside markup
    start = max(text.rfind(" ", 0, index) + 1, 0)
    end = text.find(" ", index)
    word = text[start : len(text) if end < 0 else end].strip(".,;:!?¡¿()[]\"'…")
    if re.search(rf"(?<!\w){re.escape(word)}(?!\w)", other):
        return text
    return text[:index] + text[index + 1 :]


# --- placeholders, markup and numbers ------------------------------------------------------


def placeholders(text: str) -> list[str]:
    """The placeholders of a string, sorted (translations may reorder positional ones)."""
    return sorted(re.sub(r"\s+", "", match) for match in _PLACEHOLDER.findall(text))


def tags(text: str) -> list[str]:
    """The markup tags of a string as `name` / `/name`, lower-cased and sorted."""
    return sorted(f"{slash}{name.lower()}" for slash, name in _TAG.findall(text))


def numbers(text: str) -> list[str]:
    """The digit runs of a text, sorted (`1.5` and `1,5` give the same runs)."""
    return sorted(_NUMBER.findall(text))


def token_mismatch(english: str, spanish: str) -> str:
    """Why the placeholders or tags of the two sides differ, or "" when they agree."""
    en_placeholders, es_placeholders = placeholders(english), placeholders(spanish)
    if en_placeholders != es_placeholders:
        return f"placeholders {' '.join(en_placeholders) or '-'} vs {' '.join(es_placeholders) or '-'}"
    en_tags, es_tags = tags(english), tags(spanish)
    if en_tags != es_tags:
        return f"tags {' '.join(en_tags) or '-'} vs {' '.join(es_tags) or '-'}"
    return ""


def number_mismatch(english: str, spanish: str) -> str:
    """Why the numbers of two document texts differ, or "" when they agree."""
    difference = (Counter(numbers(english)) - Counter(numbers(spanish))) + (
        Counter(numbers(spanish)) - Counter(numbers(english))
    )
    return f"numbers differ: {' '.join(sorted(difference))}" if difference else ""


# --- sentences -------------------------------------------------------------------------------


def split_sentences(text: str) -> list[str]:
    """Cut a paragraph at `.`, `!`, `?` or `…` followed by space and a capital, except after abbreviations."""
    sentences, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        piece = text[start : match.start()]
        if _ABBREVIATION.search(piece.rstrip("\"'”’»)]")):
            continue
        sentences.append(text[start : match.start()].strip())
        start = match.end()
    sentences.append(text[start:].strip())
    return [sentence for sentence in sentences if sentence]


def word_count(text: str) -> int:
    return len(text.split())


# --- English left in a translation --------------------------------------------------------

# Function words frequent in one language and rare in the other: technical text shares its nouns
# (commands, options, names) between the languages, but not these.
_ENGLISH_WORDS = frozenset(
    "the of and to is in that it for with as are be this by on or not from an if which when was can will "
    "its has have their only than then these those been may must should would there".split()
)
_SPANISH_WORDS = frozenset(
    "el la los las de del que y en es un una por con para se no al lo su sus como más pero si cuando este "
    "esta esto son ser ha puede debe desde".split()
)
_WORD = re.compile(r"[^\W\d_]+")


def looks_english(text: str) -> bool:
    """Whether a text meant to be Spanish is (mostly) English: at least four English function words
    and more than twice as many as Spanish ones. Commands and option lists have too few to count."""
    words = [word.lower() for word in _WORD.findall(text)]
    english = sum(word in _ENGLISH_WORDS for word in words)
    spanish = sum(word in _SPANISH_WORDS for word in words)
    return english >= 4 and english > 2 * spanish


def without_english(candidates: list[Candidate], dropped: list[DroppedRecord]) -> list[Candidate]:
    """The candidates whose Spanish side is not English left untranslated; the others are dropped."""
    kept = []
    for candidate in candidates:
        if looks_english(candidate.es):
            dropped.append(DroppedRecord(id=candidate.id, reason="untranslated (English)"))
        else:
            kept.append(candidate)
    return kept


# --- one candidate -----------------------------------------------------------------------------


def clean_candidate(candidate: Candidate, config: DebianConfig) -> tuple[list[tuple[str, str, str]], list[DroppedRecord]]:
    """The (id, en, es) pairs a candidate gives after cleaning, and the records of what was dropped.

    A catalog string gives at most one pair; a document block gives its sentence pairs, or itself.
    """
    english, spanish = candidate.en, candidate.es
    if not candidate.document:
        english, spanish = strip_accelerators(english, spanish)
    english = normalize_whitespace(_CONTROL.sub("", english))
    spanish = normalize_whitespace(_CONTROL.sub("", spanish))
    reason, detail = _basic_rejection(english, spanish, candidate.document, config)
    if reason:
        return [], [DroppedRecord(id=candidate.id, reason=reason, detail=detail)]
    if not candidate.document:
        return [(candidate.id, english, spanish)], []

    en_sentences, es_sentences = split_sentences(english), split_sentences(spanish)
    if len(en_sentences) > 1 and len(en_sentences) == len(es_sentences):
        kept, dropped = [], []
        for number, (en_sentence, es_sentence) in enumerate(zip(en_sentences, es_sentences), start=1):
            sentence_id = f"{candidate.id}:s{number}"
            reason, detail = _basic_rejection(en_sentence, es_sentence, True, config)
            if reason:
                dropped.append(DroppedRecord(id=sentence_id, reason=reason, detail=detail))
            else:
                kept.append((sentence_id, en_sentence, es_sentence))
        return kept, dropped
    words = max(word_count(english), word_count(spanish))
    if words > config.max_unsplit_words:
        detail = f"{len(en_sentences)} vs {len(es_sentences)} sentences, {words} words"
        return [], [DroppedRecord(id=candidate.id, reason="sentence counts differ", detail=detail)]
    return [(candidate.id, english, spanish)], []


def _basic_rejection(english: str, spanish: str, document: bool, config: DebianConfig) -> tuple[str, str]:
    """The first rule a pair breaks, as (reason, detail), or ("", "")."""
    if not english or not spanish:
        return "empty", "en" if not english else "es"
    if english == spanish:
        return "identical sides", ""
    mismatch = token_mismatch(english, spanish)
    if mismatch:
        return "placeholder or tag mismatch", mismatch[:200]
    if document:
        mismatch = number_mismatch(english, spanish)
        if mismatch:
            return "misaligned block (numbers)", mismatch[:200]
    ratio = length_ratio(english, spanish)
    if ratio > config.max_ratio:
        return ("misaligned block (length ratio)" if document else "length ratio"), f"{ratio:.2f} > {config.max_ratio}"
    words = max(word_count(english), word_count(spanish))
    if words > config.max_words:
        return "too long", f"{words} words > {config.max_words}"
    return "", ""
