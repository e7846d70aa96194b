"""The table printed after building or importing a corpus: rows, words and lengths per split, and what was dropped."""

from __future__ import annotations

from collections.abc import Sequence

from carousel.data.corpus import SPLITS, CorpusManifest

SHOWN_DROPPED = 30  # list this many dropped records; the counts per reason cover the rest


def percentile(sorted_values: Sequence[int], percent: int) -> int:
    """Nearest-rank percentile of an ascending sequence (0 when empty)."""
    if not sorted_values:
        return 0
    rank = max(1, -(-percent * len(sorted_values) // 100))  # ceil in integers: no float rounding surprises
    return sorted_values[rank - 1]


def format_summary(
    manifest: CorpusManifest, splits: dict[str, list[tuple[str, ...]]], shown_dropped: int | None = SHOWN_DROPPED
) -> str:
    """Return a plain-text table of the corpus: one line per split and language column, then the dropped records.

    `shown_dropped` limits how many dropped records are listed one by one (None: all of them).
    """
    header = f"{'split':<6} {'column':<8} {'lang':<5} {'rows':>8} {'words':>10} {'p50':>5} {'p90':>5} {'p99':>5}"
    lines = [f"corpus {manifest.name}", header, "-" * len(header)]
    for split in SPLITS:
        rows = splits.get(split, [])
        for column, language in manifest.languages.items():
            index = manifest.columns.index(column)
            lengths = sorted(len(row[index].split()) for row in rows)
            lines.append(
                f"{split:<6} {column:<8} {language:<5} {len(rows):>8,} {sum(lengths):>10,} "
                f"{percentile(lengths, 50):>5} {percentile(lengths, 90):>5} {percentile(lengths, 99):>5}"
            )
    lines.append("(p50/p90/p99: words per row)")
    total = sum(manifest.dropped_counts.values())
    lines.append(f"dropped: {total:,} records" + (":" if total else ""))
    for reason, count in manifest.dropped_counts.items():
        lines.append(f"  {reason}: {count:,}")
    shown = manifest.dropped if shown_dropped is None else manifest.dropped[:shown_dropped]
    for record in shown:
        lines.append(f"  - {record.id}: {record.reason}" + (f" ({record.detail})" if record.detail else ""))
    if len(manifest.dropped) > len(shown):
        lines.append(f"  … and {len(manifest.dropped) - len(shown):,} more: see corpus.json, or use --list-dropped")
    return "\n".join(lines)
