"""Building the Debian corpus: fetch the pinned packages, extract, clean, hold out, write.

Order of the rules (each drop recorded with its reason):
1. per source: translator credits, untranslated entries, pages missing in one language, pages or
   sections whose structure differs, Spanish document text left in English;
2. per pair (`cleaning.clean_candidate`): accelerators removed, whitespace normalised, empty or
   identical sides, placeholder/tag mismatch, differing numbers and length ratio (misaligned document
   blocks), too long; document blocks split into sentence pairs;
3. one English string, one translation: the most frequent Spanish side is kept (ties: the smallest
   string), and of identical pairs the one in test, then valid, then the smallest id;
4. train and valid lose pairs whose Spanish side appears in a later-ranked held-out split;
5. one- and two-word fragments are capped per split, keeping those with the smallest id hash.
"""

from __future__ import annotations

import hashlib
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from carousel.data.corpus import SPLITS, CorpusManifest, DroppedRecord, write_corpus
from carousel.data.debian import sources
from carousel.data.debian.cleaning import clean_candidate
from carousel.data.debian.config import DebianConfig
from carousel.data.debian.licences import package_licence
from carousel.data.debian.packages import DEFAULT_CACHE, DEFAULT_MANIFEST, fetch, read_manifest, select_packages
from carousel.data.gettext import word_count

COLUMNS = ["id", "en", "es"]
LANGUAGES = {"en": "en", "es": "es"}
_SPLIT_RANK = {"test": 0, "valid": 1, "train": 2}


@dataclass(frozen=True)
class Pair:
    """A cleaned pair with its origin and split."""

    id: str
    en: str
    es: str
    package: str
    kind: str
    split: str

    @property
    def row(self) -> tuple[str, str, str]:
        return (self.id, self.en, self.es)


def id_hash(pair_id: str) -> str:
    """The hash that orders fragments for the cap: independent of every other pair."""
    return hashlib.sha1(pair_id.encode("utf-8")).hexdigest()


def build_debian_corpus(
    config: DebianConfig,
    output_dir: Path,
    manifest_path: Path = DEFAULT_MANIFEST,
    only: list[str] | None = None,
    cache: Path = DEFAULT_CACHE,
    progress: bool = True,
    compress: bool = True,
) -> CorpusManifest:
    """Build the corpus from the pinned packages (all, or those in `only`) into `output_dir`."""
    packages = select_packages(read_manifest(manifest_path), only)
    roots: dict[str, Path] = {}
    for number, package in enumerate(packages, start=1):
        roots[package.name] = fetch(package, cache)
        _say(progress, f"[{number}/{len(packages)}] {package.spec}: unpacked")

    dropped: list[DroppedRecord] = []
    candidates = []
    for source in sources.SOURCES:
        found = source.extract(roots, dropped)
        candidates += found
        if found or any(name in roots for name in source.packages(roots)):
            _say(progress, f"{source.kind}: {len(found):,} candidate pairs")

    valid_units, test_units = set(config.valid_units), set(config.test_units)
    pairs: list[Pair] = []
    kinds: dict[str, set[str]] = defaultdict(set)
    for candidate in sorted(candidates, key=lambda item: item.id):
        kinds[candidate.package].add(candidate.kind)
        split = "test" if candidate.unit in test_units else "valid" if candidate.unit in valid_units else "train"
        kept, lost = clean_candidate(candidate, config)
        dropped += lost
        pairs += [Pair(pair_id, en, es, candidate.package, candidate.kind, split) for pair_id, en, es in kept]
    _say(progress, f"cleaned: {len(pairs):,} pairs from {len(candidates):,} candidates")

    pairs = one_translation_each(pairs, dropped)
    pairs = remove_held_out_overlap(pairs, dropped)
    pairs, cutoffs = cap_fragments(pairs, config, dropped)

    by_split = {split: sorted((pair for pair in pairs if pair.split == split), key=lambda p: p.id) for split in SPLITS}
    licences = {name: package_licence(root, name, _main_kind(kinds.get(name))) for name, root in roots.items()}
    counts = Counter(record.reason for record in dropped)
    source = _source_block(packages, kinds, licences, by_split, config, cutoffs, only)
    manifest = write_corpus(
        output_dir,
        name="debian",
        columns=COLUMNS,
        languages=LANGUAGES,
        splits={split: [pair.row for pair in rows] for split, rows in by_split.items()},
        source=source,
        dropped=dropped,
        listed_per_reason=config.dropped_examples,
        compress=compress,
    )
    if progress:
        print(summary_table(by_split, licences, counts), file=sys.stderr)
    return manifest


# --- global rules ------------------------------------------------------------------------------


def one_translation_each(pairs: list[Pair], dropped: list[DroppedRecord]) -> list[Pair]:
    """Keep one pair per English string: its most frequent translation, in the best-ranked split."""
    frequency = Counter((pair.en, pair.es) for pair in pairs)
    by_english: dict[str, list[Pair]] = defaultdict(list)
    for pair in pairs:
        by_english[pair.en].append(pair)
    kept = []
    for group in by_english.values():
        best = min(group, key=lambda p: (-frequency[p.en, p.es], p.es, _SPLIT_RANK[p.split], p.id))
        kept.append(best)
        for pair in group:
            if pair is best:
                continue
            reason = "duplicate" if pair.es == best.es else "alternative translation"
            dropped.append(DroppedRecord(id=pair.id, reason=reason, detail=f"kept {best.id}"))
    return kept


def remove_held_out_overlap(pairs: list[Pair], dropped: list[DroppedRecord]) -> list[Pair]:
    """Drop train (and valid) pairs whose Spanish side appears in a held-out split ranked before them.

    English sides are already unique across splits (`one_translation_each`).
    """
    first_split: dict[str, str] = {}
    for pair in sorted(pairs, key=lambda p: _SPLIT_RANK[p.split]):
        first_split.setdefault(pair.es, pair.split)
    kept = []
    for pair in pairs:
        owner = first_split[pair.es]
        if owner != pair.split:
            dropped.append(DroppedRecord(id=pair.id, reason="held-out overlap", detail=f"Spanish side in {owner}"))
        else:
            kept.append(pair)
    return kept


def is_fragment(english: str, config: DebianConfig) -> bool:
    return word_count(english) <= config.fragment_words


def cap_fragments(
    pairs: list[Pair], config: DebianConfig, dropped: list[DroppedRecord]
) -> tuple[list[Pair], dict[str, str | None]]:
    """Keep at most `max_fragment_share` fragments in each split, those with the smallest id hash.

    Returns the kept pairs and, per split, the largest hash kept (None: no fragment was dropped), so
    a rebuild from fewer packages can tell which of its fragments the full build keeps.
    """
    kept: list[Pair] = []
    cutoffs: dict[str, str | None] = {}
    for split in SPLITS:
        rows = [pair for pair in pairs if pair.split == split]
        fragments = sorted((p for p in rows if is_fragment(p.en, config)), key=lambda p: id_hash(p.id))
        others = [p for p in rows if not is_fragment(p.en, config)]
        share = config.max_fragment_share
        allowed = len(fragments) if share >= 1.0 else int(share / (1.0 - share) * len(others))
        kept += others + fragments[:allowed]
        cutoffs[split] = id_hash(fragments[allowed - 1].id) if 0 < allowed < len(fragments) else None
        for pair in fragments[allowed:]:
            dropped.append(DroppedRecord(id=pair.id, reason="fragment cap", detail=f"{split}: {allowed:,} kept"))
    return kept, cutoffs


# --- manifest ------------------------------------------------------------------------------------


def _main_kind(kinds: set[str] | None) -> str:
    documents = sorted((kinds or set()) - {"gettext"})
    return documents[0] if documents else "gettext"


def _source_block(packages, kinds, licences, by_split, config, cutoffs, only) -> dict:
    per_package: dict[str, Counter] = defaultdict(Counter)
    for split, rows in by_split.items():
        for pair in rows:
            per_package[pair.package][split] += 1
    return {
        "description": (
            "Spanish-English pairs from the translations inside pinned Debian 12 packages: gettext catalogs "
            "(msgid/msgstr), manuals aligned by element id or block order, and man pages aligned by roff "
            "paragraph order; see data/debian/."
        ),
        "package_list": "data/debian/packages.txt" + (f" (only: {', '.join(sorted(only))})" if only else ""),
        "packages": {
            package.name: {
                "version": package.version,
                "kinds": sorted(kinds.get(package.name, set())),
                "licence": licences[package.name],
                "pairs": {split: per_package[package.name][split] for split in SPLITS},
            }
            for package in packages
        },
        "held_out": {"valid": sorted(config.valid_units), "test": sorted(config.test_units)},
        "fragment_hash_cutoff": cutoffs,
        "config": config.model_dump(),
        "dropped_listing": (
            f"`dropped` lists the first {config.dropped_examples} records per reason (sorted by id); "
            "`dropped_counts` counts them all"
        ),
    }


def summary_table(by_split: dict[str, list[Pair]], licences: dict[str, str], dropped_counts: Counter) -> str:
    """Pairs per source kind and licence, per split, then the drops per reason."""
    table: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for split, rows in by_split.items():
        for pair in rows:
            table[pair.kind, licences.get(pair.package, "?")][split] += 1
    lines = [f"{'kind':<11} {'licence':<46} {'train':>8} {'valid':>6} {'test':>6}"]
    for (kind, licence), counts in sorted(table.items()):
        lines.append(f"{kind:<11} {licence[:46]:<46} {counts['train']:>8,} {counts['valid']:>6,} {counts['test']:>6,}")
    totals = Counter({split: len(rows) for split, rows in by_split.items()})
    lines.append(f"{'all':<11} {'':<46} {totals['train']:>8,} {totals['valid']:>6,} {totals['test']:>6,}")
    lines.append("dropped: " + ", ".join(f"{reason} {count:,}" for reason, count in sorted(dropped_counts.items())))
    return "\n".join(lines)


def _say(progress: bool, message: str) -> None:
    if progress:
        print(message, file=sys.stderr, flush=True)
