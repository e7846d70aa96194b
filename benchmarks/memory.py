"""The translation memory at a million entries: import time, and lookup cost per sentence as requests pay it.

    python benchmarks/memory.py                          # 1,000,000 entries, SQLite in a temporary directory
    python benchmarks/memory.py --entries 100000 --requests 200 --json memory.json

Writes --entries synthetic Spanish→English pairs (sentences of 5 to 16 words from a vocabulary of
2,000, numbered so that each is distinct) as a TSV, imports it with `carousel memory import` into a new
SQLite database, then looks up requests of --sentences sentences each (1, 20, 100), as /translate does:
one `TranslationMemory.lookup` per request, a connection opened for it. Half the sentences of a request
are stored ones written differently (case, spacing, final punctuation, ¿¡), half are not stored.
Reports the import's seconds and entries/s, the database's size, and per request size the median and
95th-percentile request time and the mean cost per sentence (the target: under 1 ms with 1M entries).
Everything lives in a temporary directory, removed at the end (--keep to look at it).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from carousel.cli import main as carousel
from carousel.service.database import Database
from carousel.service.memory import TranslationMemory


def vocabulary(rng: random.Random, size: int) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyzáéíóúñ"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(2, 10))) for _ in range(size)]


def sentence(rng: random.Random, words: list[str], number: int) -> str:
    body = " ".join(rng.choice(words) for _ in range(rng.randint(4, 15)))
    return f"{body.capitalize()} {number}."


def write_tsv(path: Path, entries: int, seed: int) -> list[str]:
    """The TSV of `entries` pairs; returns the source sentences (to look some up)."""
    rng = random.Random(seed)
    words = vocabulary(rng, 2_000)
    sources = []
    with path.open("w", encoding="utf-8") as out:
        out.write("es\ten\n")
        for number in range(entries):
            source = sentence(rng, words, number)
            sources.append(source)
            out.write(f"{source}\t{source.upper()}\n")  # the "translation" is only stored and returned
    return sources


def variant(rng: random.Random, text: str) -> str:
    """The stored text as a user may type it: another case, doubled spaces, other final punctuation."""
    text = rng.choice([text.lower(), text.upper(), text])
    text = text.replace(" ", "  ", 1).rstrip(".") + rng.choice(["", "!", "?", " ...", " :"])
    return rng.choice(["", "¿", "¡"]) + text


def time_lookups(memory: TranslationMemory, sources: list[str], per_request: int, requests: int,
                 seed: int) -> dict:
    rng = random.Random(seed)
    words = vocabulary(random.Random(seed + 1), 2_000)
    seconds, hits, asked = [], 0, 0
    for request in range(requests):
        stored = [variant(rng, rng.choice(sources)) for _ in range((per_request + 1) // 2)]
        unknown = [sentence(rng, words, -request - 1) for _ in range(per_request // 2)]
        texts = stored + unknown
        rng.shuffle(texts)
        started = time.perf_counter()
        found = memory.lookup("es", "en", texts)
        seconds.append(time.perf_counter() - started)
        hits += sum(text in found for text in texts)
        asked += len(texts)
    ordered = sorted(seconds)
    return {
        "sentences_per_request": per_request, "requests": requests,
        "hit_rate": round(hits / asked, 4), "expected_hit_rate": round(((per_request + 1) // 2) / per_request, 4),
        "median_request_ms": round(statistics.median(seconds) * 1000, 3),
        "p95_request_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 3),
        "mean_ms_per_sentence": round(sum(seconds) / asked * 1000, 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=500, help="requests timed per request size")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 20, 100], help="sentences per request")
    parser.add_argument("--seed", type=int, default=30)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)

    directory = Path(tempfile.mkdtemp(prefix="carousel-memory-benchmark-"))
    try:
        tsv, database = directory / "memory.tsv", directory / "carousel.db"
        sources = write_tsv(tsv, args.entries, args.seed)
        started = time.perf_counter()
        if carousel(["memory", "import", str(tsv), "--source", "es", "--target", "en",
                     "--database", str(database)]) != 0:
            return 1
        import_seconds = time.perf_counter() - started
        results = {
            "entries": args.entries, "import_seconds": round(import_seconds, 1),
            "import_entries_per_second": round(args.entries / import_seconds),
            "database_mib": round(sum(p.stat().st_size for p in directory.glob("carousel.db*")) / 2**20, 1),
            "lookups": [],
        }
        memory = TranslationMemory(Database(database, create=False))
        for size in args.sizes:
            results["lookups"].append(time_lookups(memory, sources, size, args.requests, args.seed + size))
            print(json.dumps(results["lookups"][-1]), file=sys.stderr)
        print(json.dumps(results, indent=2))
        if args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    finally:
        if args.keep:
            print(f"kept {directory}", file=sys.stderr)
        else:
            shutil.rmtree(directory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
