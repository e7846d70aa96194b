"""A parallel corpus from a translation project's gettext catalogs (`.po`): its translation memory.

    carousel prepare po python-docs-es.tar.xz --tgt-lang es --licence "CC0 1.0" --out runs/corpora/python-docs

Order of the rules (each drop recorded with its reason and counted per catalog):
1. per entry, the rules every gettext import shares (`carousel.data.gettext`): the header, obsolete,
   fuzzy, translator credits, empty and untranslated (msgstr = msgid) entries give no pair; a plural
   entry gives two;
2. per catalog, its markup (`auto`: reST for Sphinx catalogs, XML for Mallard/DocBook ones, software
   strings otherwise, told by the files the entries come from): documentation paragraphs lose their
   markup and code blocks (`carousel.data.markup`) and are dropped when mostly code; software strings
   keep their tags and lose their accelerator marks, as in `prepare debian`;
3. per pair: tidied whitespace, then empty or identical sides, placeholders or tags that differ,
   numbers or lengths that disagree (a misaligned paragraph), English left in a Spanish translation;
4. a paragraph is cut into sentence pairs when both sides have the same number of sentences and each
   pair's length ratio is plausible; otherwise it is kept whole if short enough, else dropped as a
   misaligned paragraph. Sentences holding a reference whose text the catalog lacks are dropped;
5. exact duplicate pairs are dropped; valid and test (none by default: the corpus is meant for a
   training mix) are drawn whole paragraphs at a time.
"""

from __future__ import annotations

import fnmatch
import os
import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

import polib
from pydantic import ConfigDict, Field

from carousel.data.catalog_files import CatalogInput, MemberFile, input_stem, read_catalog_input
from carousel.data.cleaning import length_ratio
from carousel.data.corpus import CorpusManifest, DroppedRecord, LanguageColumns, write_corpus
from carousel.data.gettext import (
    catalog_pairs,
    looks_english,
    pair_rejection,
    sentences,
    strip_accelerators,
    tidy,
    word_count,
)
from carousel.data.markup import UNRESOLVED, plain_text
from carousel.errors import UserError

Markup = Literal["auto", "rest", "xml", "text", "strings"]
UNLIMITED = 10**9


class PoConfig(LanguageColumns):
    """Everything `carousel prepare po` needs to build a corpus."""

    model_config = ConfigDict(extra="forbid")

    name: str
    source_language: str = "en"  # the msgid side
    target_language: str  # the msgstr side
    markup: Markup = "auto"
    licence: str = "unspecified"
    licence_of: list[tuple[str, str]] = []  # (shell pattern on the catalog's path, licence); the first match wins
    include: list[str] = ["*.po"]
    exclude: list[str] = []
    max_ratio: float = Field(3.0, ge=1.0, description="largest character-length ratio between the sides of a pair")
    max_sentence_ratio: float = Field(2.0, ge=1.0, description="largest ratio of a sentence pair cut from a paragraph")
    max_words: int = Field(120, gt=0, description="most words on either side of a pair")
    max_unsplit_words: int = Field(60, gt=0, description="a paragraph that cannot be cut is kept whole only up to this")
    max_code_share: float = Field(0.5, ge=0.0, le=1.0, description="a paragraph with more code than this is dropped")
    drop_duplicates: bool = True
    valid_size: int = Field(0, ge=0)
    test_size: int = Field(0, ge=0)
    seed: int = 1
    skip_unreadable: bool = False  # record an unreadable catalog as dropped instead of stopping
    dropped_examples: int = Field(50, ge=0, description="dropped records listed in corpus.json per reason")

    def licence_for(self, catalog_path: str) -> str:
        return next((licence for pattern, licence in self.licence_of if fnmatch.fnmatchcase(catalog_path, pattern)),
                    self.licence)


@dataclass
class CatalogReport:
    """What one catalog gave: entries read, pairs kept, records dropped per reason."""

    path: str
    group: str
    licence: str
    markup: str = ""
    language: str = ""
    licence_file: str | None = None
    entries: int = 0
    pairs: int = 0
    dropped: Counter = field(default_factory=Counter)


@dataclass(frozen=True)
class _Pair:
    id: str
    entry: str  # the id of the entry it came from: sentence pairs of one paragraph stay together
    source: str
    target: str
    catalog: str


def build_po_corpus(
    paths: list[Path], config: PoConfig, out_dir: Path
) -> tuple[CorpusManifest, dict[str, list[tuple[str, ...]]], list[CatalogReport]]:
    """Read, clean, split and write the catalogs of `paths`; return the manifest, the rows, the per-catalog report."""
    inputs = [read_catalog_input(path, config.include, config.exclude) for path in paths]
    for found, path in zip(inputs, paths):
        if not found.catalogs:
            raise UserError(f"{path}: no gettext catalogs matching {' '.join(config.include)}")
    dropped: list[DroppedRecord] = []
    reports: dict[str, CatalogReport] = {}
    pairs: list[_Pair] = []
    for found in inputs:
        for member in found.catalogs:
            if member.path in reports:
                raise UserError(f"{member.path}: in two inputs; give them different directory or archive names")
            report, kept = _read_catalog(found, member, config, dropped)
            reports[member.path] = report
            pairs += kept
    pairs = _without_duplicates(pairs, config, dropped, reports)
    for pair in pairs:
        reports[pair.catalog].pairs += 1
    if not pairs:
        reasons = Counter(record.reason for record in dropped)
        detail = ", ".join(f"{reason} {count:,}" for reason, count in sorted(reasons.items()))
        where = " ".join(map(str, paths))
        raise UserError(f"{where}: no sentence pairs left after cleaning ({detail or 'no entries'})")

    rows = {split: [(p.id, p.source, p.target) for p in items] for split, items in _split(pairs, config).items()}
    source, target = config.source_language, config.target_language
    manifest = write_corpus(
        out_dir,
        name=config.name,
        columns=["id", source, target],
        languages={source: source, target: target},
        splits=rows,
        source=_source_block(inputs, reports, config),
        dropped=dropped,
        listed_per_reason=config.dropped_examples,
    )
    return manifest, rows, list(reports.values())


# --- one catalog -------------------------------------------------------------------------------------


def _read_catalog(
    found: CatalogInput, member: MemberFile, config: PoConfig, dropped: list[DroppedRecord]
) -> tuple[CatalogReport, list[_Pair]]:
    licence_file = found.nearest_licence_file(member.path)
    report = CatalogReport(
        path=member.path,
        group=str(PurePosixPath(member.path).parent),
        licence=config.licence_for(member.path),
        licence_file=licence_file.path if licence_file else None,
    )
    local: list[DroppedRecord] = []
    catalog = _parse(member, config, local)
    kept: list[_Pair] = []
    if catalog is not None:
        report.language = catalog.metadata.get("Language", "")
        report.markup = config.markup if config.markup != "auto" else detect_markup(catalog)
        report.entries = sum(1 for entry in catalog if entry.msgid)
        for pair_id, source, target in catalog_pairs(catalog, member.path, local):
            for cleaned in clean_entry(pair_id, source, target, report.markup, config, local):
                kept.append(_Pair(cleaned[0], pair_id.removesuffix(":plural"), cleaned[1], cleaned[2], member.path))
    report.dropped.update(record.reason for record in local)
    dropped += local
    return report, kept


def _parse(member: MemberFile, config: PoConfig, dropped: list[DroppedRecord]) -> polib.POFile | None:
    """The catalog of a `.po` file's bytes; a corrupt one is an error, or a dropped record with `skip_unreadable`."""
    try:
        text = member.data.decode(_charset(member.data))
        if "\n" not in text.strip() or os.path.isfile(text):  # polib would open a "catalog" that names a file
            raise ValueError("not a gettext catalog")
        return polib.pofile(text)
    except (OSError, ValueError, LookupError) as error:  # polib reports syntax errors as OSError
        message = " ".join(str(error).split())[:200]
        if not config.skip_unreadable:
            raise UserError(f"{member.path}: not a readable gettext catalog ({message}); "
                            "--skip-unreadable records it as dropped and goes on") from None
        dropped.append(DroppedRecord(id=member.path, reason="unreadable catalog", detail=message))
        return None


def _charset(data: bytes) -> str:
    """The encoding the header names (`charset=...`), UTF-8 when it names none."""
    match = re.search(rb"charset=([A-Za-z0-9_.:-]+)", data[:4096])
    name = match.group(1).decode("ascii") if match else "utf-8"
    return "utf-8" if name.upper() == "CHARSET" else name  # the template's placeholder


_REST_FILES = (".rst", ".txt", ".rest", ".inc")  # Sphinx sources and the files they include
_XML_FILES = (".page", ".xml", ".docbook", ".dbk", ".html", ".xhtml", ".htm", ".sgml")
_REST_MARKS = re.compile(r":[A-Za-z][\w:.+-]*:`|``[^`]+``|`[^`]+`_")
_XML_MARKS = re.compile(r"<([A-Za-z][\w:-]*)(?:\s[^<>]*)?>[^<]*</\1>")


def detect_markup(catalog: polib.POFile) -> str:
    """`rest`, `xml` or `strings`: by the files most entries come from (`#: ../Doc/library/os.rst:12`),
    else by the markup found in at least 5% of the msgids."""
    votes: Counter = Counter()
    for entry in catalog:
        for occurrence, _ in entry.occurrences:
            suffix = PurePosixPath(occurrence).suffix.lower()
            votes["rest" if suffix in _REST_FILES else "xml" if suffix in _XML_FILES else "strings"] += 1
    if votes:
        return votes.most_common(1)[0][0]
    msgids = [entry.msgid for entry in catalog if entry.msgid]
    for markup, marks in (("rest", _REST_MARKS), ("xml", _XML_MARKS)):
        if msgids and sum(1 for msgid in msgids if marks.search(msgid)) >= 0.05 * len(msgids):
            return markup
    return "strings"


# --- one entry ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Limits:
    max_ratio: float
    max_words: int


def clean_entry(
    pair_id: str, source: str, target: str, markup: str, config: PoConfig, dropped: list[DroppedRecord]
) -> list[tuple[str, str, str]]:
    """The (id, source, target) pairs one msgid/msgstr pair gives; what it loses is appended to `dropped`."""
    if markup == "strings":
        source, target = strip_accelerators(source, target)
        return _checked(pair_id, tidy(source), tidy(target), False, config, dropped)

    plain_source, plain_target = plain_text(source, markup), plain_text(target, markup)
    if plain_source.code_share > config.max_code_share:
        detail = f"{plain_source.code_share:.0%} code"
        dropped.append(DroppedRecord(id=pair_id, reason="mostly code", detail=detail))
        return []
    source, target = tidy(plain_source.text), tidy(plain_target.text)
    reason, detail = pair_rejection(source, target, True, _Limits(config.max_ratio, UNLIMITED))
    if reason:
        dropped.append(DroppedRecord(id=pair_id, reason=reason, detail=detail))
        return []

    source_sentences, target_sentences = sentences(source), sentences(target)
    if len(source_sentences) == len(target_sentences) and all(
        length_ratio(a, b) <= config.max_sentence_ratio for a, b in zip(source_sentences, target_sentences)
    ):
        if len(source_sentences) == 1:
            return _checked(pair_id, source, target, True, config, dropped)
        kept = []
        for number, (a, b) in enumerate(zip(source_sentences, target_sentences), start=1):
            kept += _checked(f"{pair_id}:s{number}", a, b, True, config, dropped)
        return kept
    words = max(word_count(source), word_count(target))
    if words <= config.max_unsplit_words:
        return _checked(pair_id, source, target, True, config, dropped)
    if len(source_sentences) != len(target_sentences):
        detail = f"{len(source_sentences)} vs {len(target_sentences)} sentences, {words} words"
    else:
        detail = f"a sentence length ratio above {config.max_sentence_ratio}, {words} words"
    dropped.append(DroppedRecord(id=pair_id, reason="misaligned paragraph", detail=detail))
    return []


def _checked(
    pair_id: str, source: str, target: str, document: bool, config: PoConfig, dropped: list[DroppedRecord]
) -> list[tuple[str, str, str]]:
    """[(id, source, target)] when the pair passes every rule, else [] with the drop recorded."""
    reason, detail = pair_rejection(source, target, document, config)
    if not reason and (UNRESOLVED in source or UNRESOLVED in target):
        reason = "unresolved reference"
        detail = "a reference, link or substitution whose text the catalog lacks"
    if not reason and _english_to_spanish(config) and looks_english(target):
        reason = "untranslated (English)"
    if reason:
        dropped.append(DroppedRecord(id=pair_id, reason=reason, detail=detail))
        return []
    return [(pair_id, source, target)]


def _english_to_spanish(config: PoConfig) -> bool:
    """Whether English left in a translation can be told (`looks_english` knows Spanish function words)."""
    return config.source_language == "en" and config.target_language.split("-")[0].split("_")[0] == "es"


# --- the whole corpus --------------------------------------------------------------------------------


def _without_duplicates(
    pairs: list[_Pair], config: PoConfig, dropped: list[DroppedRecord], reports: dict[str, CatalogReport]
) -> list[_Pair]:
    if not config.drop_duplicates:
        return pairs
    seen: dict[tuple[str, str], str] = {}
    kept = []
    for pair in pairs:
        first = seen.setdefault((pair.source, pair.target), pair.id)
        if first == pair.id:
            kept.append(pair)
        else:
            dropped.append(DroppedRecord(id=pair.id, reason="duplicate", detail=f"same as {first}"))
            reports[pair.catalog].dropped["duplicate"] += 1
    return kept


def _split(pairs: list[_Pair], config: PoConfig) -> dict[str, list[_Pair]]:
    """Train, and valid and test drawn at random (seeded), whole entries at a time, in input order."""
    by_entry: dict[str, list[int]] = defaultdict(list)
    for index, pair in enumerate(pairs):
        by_entry[pair.entry].append(index)
    entries = list(by_entry)
    random.Random(config.seed).shuffle(entries)
    chosen: dict[str, set[int]] = {"valid": set(), "test": set()}
    wanted = {"valid": config.valid_size, "test": config.test_size}
    position = 0
    for split in ("valid", "test"):
        while len(chosen[split]) < wanted[split] and position < len(entries):
            chosen[split].update(by_entry[entries[position]])
            position += 1
    if (config.valid_size or config.test_size) and position >= len(entries):
        raise UserError(f"only {len(pairs):,} sentence pairs after cleaning: too few for --valid-size "
                        f"{config.valid_size} and --test-size {config.test_size} and a training set")
    held_out = chosen["valid"] | chosen["test"]
    return {
        "train": [pair for index, pair in enumerate(pairs) if index not in held_out],
        "valid": [pairs[index] for index in sorted(chosen["valid"])],
        "test": [pairs[index] for index in sorted(chosen["test"])],
    }


# --- the report ----------------------------------------------------------------------------------------

# The summary table's columns: a name and the drop reasons it counts; "other" counts the rest.
COLUMNS = {
    "fuzzy": ("fuzzy",),
    "obsolete": ("obsolete",),
    "empty": ("empty",),
    "identical": ("untranslated", "identical sides"),
    "code": ("mostly code",),
    "misalign": ("misaligned paragraph", "misaligned block (numbers)", "misaligned block (length ratio)",
                 "length ratio", "placeholder or tag mismatch"),
    "duplicate": ("duplicate",),
}
LEGEND = (
    "(entries: msgids read; pairs: sentence or paragraph pairs kept; then records dropped: empty msgstr, msgstr "
    "equal to the msgid before or after markup removal, mostly code, misaligned paragraphs, numbers or "
    "placeholders, duplicates; other: unresolved references, too long, translator credits, English left in the "
    "translation)"
)


def summary_rows(reports: list[CatalogReport]) -> list[dict]:
    """One row per directory of catalogs: licence(s), files, entries, pairs, drops per reason."""
    groups: dict[str, list[CatalogReport]] = defaultdict(list)
    for report in reports:
        groups[report.group].append(report)
    rows = []
    for group, members in sorted(groups.items()):
        dropped: Counter = Counter()
        for report in members:
            dropped.update(report.dropped)
        rows.append({
            "group": group,
            "licence": "; ".join(sorted({report.licence for report in members})),
            "files": len(members),
            "entries": sum(report.entries for report in members),
            "pairs": sum(report.pairs for report in members),
            "dropped": dict(sorted(dropped.items())),
        })
    return rows


def format_po_summary(rows: list[dict]) -> str:
    """The summary table: one line per directory of catalogs and a total, then every drop reason."""
    prefix = _common_prefix([row["group"] for row in rows])
    names = [row["group"][len(prefix):] or "." for row in rows]
    width = max([len("catalogs"), *map(len, names)])
    header = (f"{'catalogs':<{width}} {'licence':<24} {'files':>5} {'entries':>8} {'pairs':>8} "
              + " ".join(f"{column:>9}" for column in (*COLUMNS, "other")))
    lines = [header, "-" * len(header)]
    total = {"files": 0, "entries": 0, "pairs": 0, "dropped": Counter()}
    for name, row in zip(names, rows):
        lines.append(_table_line(name, row["licence"], row, width))
        for key in ("files", "entries", "pairs"):
            total[key] += row[key]
        total["dropped"].update(row["dropped"])
    lines.append(_table_line("all", "", total, width))
    lines.append(LEGEND)
    reasons = ", ".join(f"{reason} {count:,}" for reason, count in sorted(total["dropped"].items()))
    lines.append(f"dropped: {reasons or 'nothing'}")
    return "\n".join(lines)


def _table_line(name: str, licence: str, row: dict, width: int) -> str:
    dropped = Counter(row["dropped"])
    counted = [sum(dropped[reason] for reason in reasons) for reasons in COLUMNS.values()]
    other = sum(dropped.values()) - sum(counted)
    licence = licence if len(licence) <= 24 else licence[:23] + "…"
    return (f"{name:<{width}} {licence:<24} {row['files']:>5,} {row['entries']:>8,} {row['pairs']:>8,} "
            + " ".join(f"{count:>9,}" for count in (*counted, other)))


def _common_prefix(groups: list[str]) -> str:
    """The leading directories every group shares, with the trailing slash (`python-docs-es/`)."""
    if len(groups) < 2:
        return ""
    parts = [PurePosixPath(group).parts for group in groups]
    shared = []
    for level in zip(*parts):
        if len(set(level)) != 1:
            break
        shared.append(level[0])
    return "/".join(shared) + "/" if shared else ""


def _source_block(inputs: list[CatalogInput], reports: dict[str, CatalogReport], config: PoConfig) -> dict:
    licence_files = {item.path: {"sha256": item.sha256, "first_line": _first_line(item.data)}
                     for found in inputs for item in found.licence_files}
    return {
        "description": (
            "Pairs from gettext catalogs (msgid → msgstr) imported with `carousel prepare po`: fuzzy, obsolete, "
            "empty and untranslated entries skipped, documentation markup and code removed, paragraphs cut into "
            "sentence pairs where both sides agree; see data/po_corpus.py."
        ),
        "inputs": [{"name": found.name, "kind": found.kind, "sha256": found.sha256, "catalogs": len(found.catalogs)}
                   for found in inputs],
        "summary": summary_rows(list(reports.values())),
        "catalogs": {
            path: {"licence": report.licence, "licence_file": report.licence_file, "language": report.language,
                   "markup": report.markup, "entries": report.entries, "pairs": report.pairs,
                   "dropped": dict(sorted(report.dropped.items()))}
            for path, report in sorted(reports.items())
        },
        "licence_files": licence_files,
        "config": config.model_dump(exclude={"name"}),
        "dropped_listing": (f"`dropped` lists the first {config.dropped_examples} records per reason (sorted by id); "
                            "`dropped_counts` counts them all"),
    }


def _first_line(data: bytes) -> str:
    text = data[:2000].decode("utf-8", errors="replace")
    return next((line.strip() for line in text.splitlines() if line.strip()), "")[:200]


def default_name(paths: list[Path]) -> str:
    """The corpus name when none is given: the first input's name without its suffix."""
    return input_stem(Path(paths[0]))
