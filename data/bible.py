"""The default corpus: verse-aligned Spanish (RV1909), English (WEB) and English (KJV) Bibles.

Built from the Debian SWORD modules by `carousel prepare bible`: verses are read with `mod2imp`,
the reserved books are discarded at once, the OSIS markup is reduced to plain text, verses are
aligned by reference, unusable verses are dropped with a reason, and the rest is split by book.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, Field
from tqdm import tqdm

from carousel.data.alignment import find_shifted_verses
from carousel.data.cleaning import length_ratio
from carousel.data.corpus import CorpusManifest, DroppedRecord, write_corpus
from carousel.data.osis import OsisVerse, parse_osis_verse
from carousel.data.sword import RawVerse, export_module, parse_export


@dataclass(frozen=True)
class BibleModule:
    """One SWORD module and the corpus column it fills."""

    column: str
    language: str
    module: str
    package: str
    description: str


MODULES = (
    BibleModule("es", "es", "spaRV1909eb", "sword-text-sparv", "Reina-Valera 1909 (Spanish)"),
    BibleModule("en", "en", "engWEB2015eb", "sword-text-web", "World English Bible (English)"),
    BibleModule("en_kjv", "en", "engKJV2006eb", "sword-text-kjv", "King James Version, 1769 text (English)"),
)
COLUMNS = ["ref", *(module.column for module in MODULES)]

TEST_BOOKS = frozenset({"Ruth", "Joel", "Jonah", "Philippians", "Colossians", "Titus", "James", "I Peter"})
VALID_BOOKS = frozenset({"Esther", "Haggai", "Galatians", "Jude"})
# Held back for a final evaluation: never written, counted or read by anything downstream.
RESERVED_BOOKS = frozenset({"Lamentations", "Micah", "Ephesians", "II Timothy"})

# WEB books that RV1909 lacks (the deuterocanon) are English-only text for back-translation
# (data/backtranslation.py), except Greek Esther, which repeats and extends the valid book Esther.
HELD_OUT_ENGLISH_ONLY_BOOKS = frozenset({"Esther (Greek)"})

# KJV prints a Pauline epistle's subscription as a title after the last verse; RV1909 prints it
# as plain text at the end of that verse, after its closing "Amén.".
_KJV_COLOPHON = re.compile(r'<chapter eID="[^"]*"/>\s*(?:<div [^>]*/>\s*)*<title>')
_SPANISH_CLOSING = "Amén."
_WORD = re.compile(r"\w+")


class BibleConfig(BaseModel):
    """Rules for dropping verses that are not usable translation pairs."""

    max_length_ratio: float = Field(
        2.5,
        ge=1.0,
        description="largest character-length ratio between any two columns (see data.cleaning.length_ratio)",
    )
    shift_window: int = Field(5, ge=1, description="verses either side searched for a better-matching counterpart")
    shift_margin: float = Field(
        0.2, gt=0.0, description="overlap gain over the own counterpart that marks a shifted verse"
    )


def split_of(book: str) -> str:
    """The split a (non-reserved) book belongs to."""
    if book in TEST_BOOKS:
        return "test"
    if book in VALID_BOOKS:
        return "valid"
    return "train"


def read_module(module: BibleModule) -> dict[str, RawVerse]:
    """The non-reserved verses of a module, by reference, in canonical order."""
    verses = parse_export(export_module(module.module))
    return {verse.ref: verse for verse in verses if verse.book not in RESERVED_BOOKS}


def english_only_verses(progress: bool = True) -> list[tuple[str, str]]:
    """(ref, text) of the WEB verses in books that RV1909 does not have, as plain text."""
    spanish_books = {verse.book for verse in read_module(MODULES[0]).values()}
    english = read_module(MODULES[1])
    rows = []
    for ref, verse in english.items():
        if verse.book in spanish_books or verse.book in HELD_OUT_ENGLISH_ONLY_BOOKS:
            continue
        text = parse_osis_verse(verse.osis).text
        if text:
            rows.append((ref, text))
    _say(progress, f"read {MODULES[1].module}: {len(rows):,} verses in books that {MODULES[0].module} lacks")
    return rows


def build_bible_corpus(out_dir: Path, config: BibleConfig, progress: bool = True) -> tuple[CorpusManifest, dict]:
    """Build the corpus into `out_dir`; return its manifest and the rows of each split."""
    raw: dict[str, dict[str, RawVerse]] = {}
    for module in MODULES:
        raw[module.column] = read_module(module)
        _say(progress, f"read {module.module}: {len(raw[module.column]):,} verses")
    first = raw[MODULES[0].column]
    refs = [ref for ref in first if all(ref in verses for verses in raw.values())]
    books = [first[ref].book for ref in refs]

    verses: dict[str, dict[str, OsisVerse]] = {module.column: {} for module in MODULES}
    for ref in tqdm(refs, desc="cleaning verses", unit="verse", file=sys.stderr, mininterval=2, disable=not progress):
        for module in MODULES:
            verses[module.column][ref] = parse_osis_verse(raw[module.column][ref].osis)
    texts = {column: {ref: verse.text for ref, verse in by_ref.items()} for column, by_ref in verses.items()}

    dropped: dict[str, DroppedRecord] = {}
    _strip_colophons(refs, raw["en_kjv"], texts["es"], dropped)
    _drop_empty(refs, texts, dropped)
    _drop_shifted(refs, books, config, verses, texts, dropped)
    _drop_length_outliers(refs, texts, config.max_length_ratio, dropped)

    splits: dict[str, list[tuple[str, ...]]] = {"train": [], "valid": [], "test": []}
    for ref, book in zip(refs, books, strict=True):
        if ref not in dropped:
            splits[split_of(book)].append((ref, *(texts[module.column][ref] for module in MODULES)))
    manifest = write_corpus(
        out_dir,
        name="bible",
        columns=COLUMNS,
        languages={module.column: module.language for module in MODULES},
        splits=splits,
        source=_source_description(config),
        dropped=[dropped[ref] for ref in refs if ref in dropped],
    )
    return manifest, splits


def _strip_colophons(refs, kjv: dict[str, RawVerse], spanish: dict[str, str], dropped: dict) -> None:
    """Cut RV1909's epistle subscriptions, which the English columns do not carry in the verse."""
    for ref in refs:
        if not _KJV_COLOPHON.search(kjv[ref].osis) or not spanish[ref]:
            continue
        end = spanish[ref].rfind(_SPANISH_CLOSING)
        if end < 0:
            dropped[ref] = DroppedRecord(id=ref, reason="colophon", detail="es subscription not separable")
        else:
            spanish[ref] = spanish[ref][: end + len(_SPANISH_CLOSING)]


def _drop_empty(refs, texts: dict[str, dict[str, str]], dropped: dict) -> None:
    for ref in refs:
        empty = [column for column, by_ref in texts.items() if not by_ref[ref]]
        if empty and ref not in dropped:
            dropped[ref] = DroppedRecord(id=ref, reason="empty", detail=f"no text in {', '.join(empty)}")


def _drop_shifted(refs, books, config: BibleConfig, verses, texts, dropped: dict) -> None:
    """Drop verses whose text belongs to another reference.

    RV1909 is compared with KJV by Strong's numbers, WEB with KJV by words.
    """
    strongs = {column: {ref: verse.strongs for ref, verse in by_ref.items()} for column, by_ref in verses.items()}
    words = {
        column: {ref: set(_WORD.findall(text.lower())) for ref, text in by_ref.items()}
        for column, by_ref in texts.items()
    }
    for column, features, kind in (("es", strongs["es"], "Strong's"), ("en", words["en"], "word")):
        reference = strongs["en_kjv"] if kind == "Strong's" else words["en_kjv"]
        for shift in find_shifted_verses(refs, books, features, reference, config.shift_window, config.shift_margin):
            if shift.ref not in dropped:
                dropped[shift.ref] = DroppedRecord(
                    id=shift.ref,
                    reason="misaligned",
                    detail=(
                        f"{column} matches en_kjv {shift.neighbour_ref} better: {kind} overlap "
                        f"{shift.neighbour_overlap:.2f} vs {shift.own_overlap:.2f}"
                    ),
                )


def _drop_length_outliers(refs, texts: dict[str, dict[str, str]], max_ratio: float, dropped: dict) -> None:
    columns = list(texts)
    for ref in refs:
        if ref in dropped:
            continue
        lengths = {column: len(texts[column][ref]) for column in columns}
        longest = max(columns, key=lengths.__getitem__)
        shortest = min(columns, key=lengths.__getitem__)
        ratio = length_ratio(texts[longest][ref], texts[shortest][ref])
        if ratio > max_ratio:
            dropped[ref] = DroppedRecord(
                id=ref,
                reason="length ratio",
                detail=f"{longest}/{shortest} {ratio:.2f} > {max_ratio} "
                f"({lengths[longest]} vs {lengths[shortest]} characters)",
            )


def _source_description(config: BibleConfig) -> dict:
    return {
        "description": "Verse-aligned Bibles from the Debian SWORD modules, read with mod2imp (libsword-utils).",
        "modules": [
            {
                "column": module.column,
                "module": module.module,
                "debian_package": module.package,
                "description": module.description,
                "version": _module_version(module.module),
            }
            for module in MODULES
        ],
        "alignment": "by KJV-versification reference present in all modules",
        "splits": {
            "test": sorted(TEST_BOOKS),
            "valid": sorted(VALID_BOOKS),
            "train": "every other book, less some held back for a final evaluation",
        },
        "filters": config.model_dump(),
    }


def _module_version(module: str) -> str | None:
    """The `Version=` line of the module's SWORD configuration, if it is where Debian installs it."""
    confs = [Path("/usr/share/sword/mods.d") / f"{name}.conf" for name in (module, module.lower())]
    conf = next((path for path in confs if path.exists()), None)
    if conf is None:
        return None
    for line in conf.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("Version="):
            return line.removeprefix("Version=").strip()
    return None


def _say(enabled: bool, message: str) -> None:
    if enabled:
        print(message, file=sys.stderr, flush=True)
