"""Gettext catalogs as translation pairs: the rules `prepare debian` (compiled `.mo` files inside packages)
and `prepare po` (a translation project's `.po` files) share.

An entry gives one pair, msgid → msgstr, or two for a plural entry: the singular msgid with msgstr[0] and
msgid_plural with msgstr[1]. msgctxt only tells apart entries with the same msgid. The header, obsolete
(`#~`) and fuzzy entries, translator credits, empty translations and untranslated ones (msgstr equal to
msgid) give no pair; each such drop is recorded with its reason.

What the two sides of a pair must share: the placeholders (`%s`, `%1$s`, `%(name)s`, `{0}`, `{name}`,
`%1`, Fluent `{ $name }`), the markup tags of a catalog string, and, in document text, the numbers;
a pair that differs is broken or misaligned. Accelerator marks (`_File`, `&File`, `~File`) are removed
from catalog strings. Documentation markup (reST, Mallard) is the business of `carousel.data.markup`.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from typing import Protocol

import polib

from carousel.data.cleaning import length_ratio, normalize_whitespace
from carousel.data.corpus import DroppedRecord
from carousel.model.sentences import split_sentences

# --- entries -------------------------------------------------------------------------------------

# msgids (or msgctxts, for KDE) that hold the translators' names rather than a translation.
CREDIT_MARKERS = frozenset(
    {
        "translator-credits",
        "translator_credits",
        "translatorcredits",
        "translator credits",
        "your names",
        "your emails",
        "name of translators",
        "email of translators",
        "roles_of_translators",
        "credit_for_translators",
        "translated by",
    }
)

Row = tuple[str, str, str]  # (id, msgid side, msgstr side)
CatalogEntry = polib.POEntry | polib.MOEntry


def is_credit(entry: CatalogEntry) -> bool:
    """Whether the entry names translators (GNOME `translator-credits`, KDE `Your names`, ...)."""
    return entry.msgid.strip().lower() in CREDIT_MARKERS or (entry.msgctxt or "").strip().lower() in CREDIT_MARKERS


def entry_key(entry: CatalogEntry) -> str:
    """The entry's part of a pair id: a stable 12-hex-digit digest of its context and msgid."""
    return hashlib.sha1(f"{entry.msgctxt or ''}\0{entry.msgid}".encode("utf-8")).hexdigest()[:12]


def entry_pairs(entry: CatalogEntry, prefix: str) -> list[Row]:
    """(id, msgid, msgstr) of one entry: one pair, or two for a plural entry."""
    key = f"{prefix}:{entry_key(entry)}"
    if entry.msgid_plural:
        forms = entry.msgstr_plural or {}
        plural = forms.get(1, forms.get(0, ""))
        return [(key, entry.msgid, forms.get(0, "")), (f"{key}:plural", entry.msgid_plural, plural)]
    return [(key, entry.msgid, entry.msgstr)]


def entry_rejection(entry: CatalogEntry) -> str:
    """Why a whole entry gives no pair ("obsolete", "fuzzy"), or "" (compiled catalogs have neither)."""
    if entry.obsolete:
        return "obsolete"
    if "fuzzy" in (getattr(entry, "flags", None) or ()):
        return "fuzzy"
    return ""


def catalog_pairs(catalog: polib.POFile | polib.MOFile, prefix: str, dropped: list[DroppedRecord]) -> list[Row]:
    """The translated pairs of a catalog, ids starting with `prefix`; every other entry is recorded in `dropped`."""
    rows: list[Row] = []
    for entry in catalog:
        if not entry.msgid:  # the header
            continue
        reason = entry_rejection(entry)
        if reason:
            dropped.append(DroppedRecord(id=f"{prefix}:{entry_key(entry)}", reason=reason))
            continue
        for pair_id, source, target in entry_pairs(entry, prefix):
            if is_credit(entry):
                dropped.append(DroppedRecord(id=pair_id, reason="translator credits"))
            elif not target.strip():
                dropped.append(DroppedRecord(id=pair_id, reason="empty", detail="msgstr"))
            elif target == source:
                dropped.append(DroppedRecord(id=pair_id, reason="untranslated"))
            else:
                rows.append((pair_id, source, target))
    return rows


# --- accelerators ----------------------------------------------------------------------------------

# One accelerator mark before a letter: GTK `_File`, Qt/KDE `&File`, LibreOffice `~File`.
_ACCELERATORS = ("_", "&", "~")
_ENTITY = re.compile(r"&(?:[A-Za-z]+|#\d+|#x[0-9A-Fa-f]+);")


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


# --- what both sides must share: placeholders, tags, numbers ---------------------------------------

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


def tidy(text: str) -> str:
    """Control characters removed and whitespace runs (newlines too) collapsed to one space."""
    return normalize_whitespace(_CONTROL.sub("", text))


# --- English left in a translation -----------------------------------------------------------------

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


# --- one pair ----------------------------------------------------------------------------------------


class PairLimits(Protocol):
    """The limits a corpus build sets for its pairs (DebianConfig, PoConfig)."""

    max_ratio: float
    max_words: int


def word_count(text: str) -> int:
    return len(text.split())


def pair_rejection(english: str, spanish: str, document: bool, limits: PairLimits) -> tuple[str, str]:
    """The first rule a tidied pair breaks, as (reason, detail), or ("", "").

    `document`: paragraph text, whose numbers must agree (catalog strings may spell them out).
    """
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
    if ratio > limits.max_ratio:
        return ("misaligned block (length ratio)" if document else "length ratio"), f"{ratio:.2f} > {limits.max_ratio}"
    words = max(word_count(english), word_count(spanish))
    if words > limits.max_words:
        return "too long", f"{words} words > {limits.max_words}"
    return "", ""


def sentences(paragraph: str) -> list[str]:
    """The sentences of a paragraph, cut by the translator's own splitter (`carousel.model.sentences`)
    but never at a length limit: a cut inside a sentence would not match a cut in its translation."""
    return split_sentences(paragraph, max_chars=len(paragraph) + 1).sentences
