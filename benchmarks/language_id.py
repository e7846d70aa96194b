"""Language identification: accuracy on short and long texts in many languages, time per text, and what
`source: "auto"` does on an es↔en server (served languages translated from the right language, others refused).

    python benchmarks/language_id.py --half held-out            # the figures the README reports
    python benchmarks/language_id.py --half tune --sweep        # choosing service/languages.py's thresholds

Text: translated messages (msgstr) of gettext catalogs in `--locale-dir` (default /usr/share/locale:
<dir>/<locale>/LC_MESSAGES/*.mo), read with polib, for 20 languages no model serves and Spanish; their
English originals (msgid) for English; and the FLORES-101 dev sentences of Spanish and English (never
devtest). Catalogs of the packages in data/debian/packages.txt (the Debian corpus, and the earlier
tuning of this benchmark) are left out, as are ISO code lists (names of countries and languages, not
sentences). What is left is split in two halves by catalog (a hash of the catalog's name) and FLORES dev
by line (even, odd): `--half tune` to choose thresholds, `--half held-out` to report them.

"short" is 1-4 words, "long" 10 words or more; up to N of each per language, drawn with a fixed seed from
distinct strings without format directives. For English and Spanish, short strings come from the
catalogs and, separately, from FLORES dev (the first 1-4 words of a sentence: prose, not menu labels).
Top-1 accuracy is over all 75 Lingua languages (service/languages.py), as `/detect` answers.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import re
import statistics
import subprocess
import time
from pathlib import Path

import polib

from carousel.service.languages import EVIDENCE_SHARE, LanguageIdentifier, choose_source

ROOT = Path(__file__).resolve().parents[1]
FLORES = Path("/work/shared/evalsets/flores101")
CORPUS_PACKAGES = ROOT / "data" / "debian" / "packages.txt"
# catalog folder → expected code
LOCALES = {"fr": "fr", "de": "de", "it": "it", "pt_BR": "pt", "nl": "nl", "pl": "pl", "ru": "ru", "tr": "tr",
           "sv": "sv", "cs": "cs", "ca": "ca", "fi": "fi", "ja": "ja", "zh_CN": "zh", "uk": "uk", "hu": "hu",
           "ro": "ro", "da": "da", "el": "el", "id": "id"}
PLACEHOLDER = re.compile(r"%|\{|\}|<|>|_|&|\\|\$|\[")
SERVED = ("es", "en")
SWEEP = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5)


def words(text: str) -> int:
    return len(text.split()) if not re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", text) else len(text) // 2


def corpus_packages() -> set[str]:
    lines = CORPUS_PACKAGES.read_text(encoding="utf-8").splitlines()
    return {line.split("=")[0].strip() for line in lines if line.strip() and not line.startswith("#")}


def owners(paths: list[Path]) -> dict[Path, str]:
    """The Debian package each catalog file belongs to (`dpkg -S`); files of no package are left out."""
    if not paths:
        return {}
    listing = subprocess.run(["dpkg", "-S", *map(str, paths)], capture_output=True, text=True).stdout
    found = {}
    for line in listing.splitlines():
        package, _, path = line.partition(": ")
        for name in package.split(", "):
            found[Path(path.strip())] = name.split(":")[0]
    return found


def in_half(catalog: Path, half: str) -> bool:
    if half == "all":
        return True
    bucket = hashlib.sha1(catalog.stem.encode("utf-8")).digest()[0] % 2
    return bucket == (0 if half == "tune" else 1)


def catalogs(locale_dir: Path, locale: str, half: str, excluded: set[str]) -> list[Path]:
    paths = sorted((locale_dir / locale / "LC_MESSAGES").glob("*.mo"))
    packages = owners(paths)
    return [p for p in paths if not p.stem.startswith("iso_") and packages.get(p) not in excluded and in_half(p, half)]


def catalog_texts(paths: list[Path], original: bool = False) -> list[str]:
    """The catalogs' translations (or, with `original`, the English messages they translate)."""
    texts = set()
    for path in paths:
        try:
            entries = polib.mofile(str(path))
        except (OSError, ValueError):
            continue
        for entry in entries:
            text = " ".join((entry.msgid if original else entry.msgstr).split())
            if text and entry.msgstr and entry.msgstr != entry.msgid and not PLACEHOLDER.search(text):
                texts.add(text)
    return sorted(texts)


def short_and_long(texts: list[str], n: int, rng: random.Random) -> dict[str, list[str]]:
    short = [t for t in texts if 1 <= words(t) <= 4 and any(c.isalpha() for c in t)]
    long = [t for t in texts if words(t) >= 10]
    return {"short": rng.sample(short, min(n, len(short))), "long": rng.sample(long, min(n, len(long)))}


def flores_dev(code: str, half: str) -> list[str]:
    lines = (FLORES / f"dev.{code}").read_text(encoding="utf-8").splitlines()
    parity = {"tune": 0, "held-out": 1}.get(half)
    return [line for i, line in enumerate(lines) if parity is None or i % 2 == parity]


def load_data(locale_dir: Path, half: str, n: int) -> dict[str, dict[str, list[str]]]:
    """language → kind → texts; kinds: short, long, and for es/en also short-prose (FLORES prefixes)."""
    rng = random.Random(1)
    excluded = corpus_packages()
    data = {code: short_and_long(catalog_texts(catalogs(locale_dir, locale, half, excluded)), n, rng)
            for locale, code in LOCALES.items()}
    spanish = catalogs(locale_dir, "es", half, excluded)
    for code, texts in (("es", catalog_texts(spanish)), ("en", catalog_texts(spanish, original=True))):
        prose = flores_dev(code, half)
        prefixes = [" ".join(line.split()[: rng.randint(1, 4)]) for line in rng.sample(prose, n)]
        data[code] = {"short": short_and_long(texts, n, rng)["short"], "short-prose": prefixes,
                      "long": rng.sample([line for line in prose if words(line) >= 10], n)}
    return data


def accuracy_table(identifier: LanguageIdentifier, data: dict) -> None:
    print(f"{'lang':5} {'short n':>7} {'short acc':>9} {'long n':>6} {'long acc':>8}  most common mistake (short)")
    totals, times = {"short": [0, 0], "long": [0, 0]}, {"short": [], "long": []}
    for code, sets in sorted(data.items()):
        row, mistakes = [], {}
        for kind in ("short", "long"):
            right = 0
            for text in sets[kind]:
                started = time.perf_counter()
                top = identifier.detect(text)[0].language
                times[kind].append(time.perf_counter() - started)
                right += top == code
                if top != code and kind == "short":
                    mistakes[top] = mistakes.get(top, 0) + 1
            totals[kind][0] += right
            totals[kind][1] += len(sets[kind])
            row += [len(sets[kind]), right / max(1, len(sets[kind]))]
        worst = max(mistakes, key=mistakes.get) if mistakes else "-"
        print(f"{code:5} {row[0]:7d} {row[1]:9.1%} {row[2]:6d} {row[3]:8.1%}  {worst}")
    for kind in ("short", "long"):
        right, n = totals[kind]
        ms = sorted(1000 * t for t in times[kind])
        print(f"{kind}: accuracy {right / n:.1%} over {n} texts; detection time median {statistics.median(ms):.2f} ms, "
              f"p95 {ms[int(0.95 * len(ms))]:.2f} ms")


def auto_outcomes(ranked: dict, data: dict, kind: str, evidence: float) -> tuple[float, int, float, int]:
    """Share of es/en texts of `kind` translated from the right language, and of other texts refused,
    on a server translating es→en and en→es (target en for es and others, es for en)."""
    served_right = served_n = other_refused = other_n = 0
    for code, sets in data.items():
        texts = sets.get(kind, [])
        sources = ["en", "es"] if code == "en" else ["es", "en"]  # the sources, then the target
        for text in texts:
            chosen, ok = choose_source(ranked[text], sources, sources[-1], evidence=evidence)
            if code in SERVED:
                served_right += ok and chosen.language == code
                served_n += 1
            else:
                other_refused += not ok
                other_n += 1
    return served_right / max(1, served_n), served_n, other_refused / max(1, other_n), other_n


def auto_report(ranked: dict, data: dict, evidence: float) -> None:
    print(f'source "auto" with es↔en served (evidence share {evidence:g}):')
    for kind in ("short", "short-prose", "long"):
        served, served_n, refused, other_n = auto_outcomes(ranked, data, kind, evidence)
        others = f"; other languages refused {refused:.1%} of {other_n}" if other_n else ""
        print(f"  {kind}: es/en translated from the right language {served:.1%} of {served_n}{others}")


def sweep(ranked: dict, data: dict) -> None:
    print("evidence share: short es/en right, short-prose es/en right, short others refused, long es/en right, "
          "long others refused")
    for evidence in SWEEP:
        short = auto_outcomes(ranked, data, "short", evidence)
        prose = auto_outcomes(ranked, data, "short-prose", evidence)
        long = auto_outcomes(ranked, data, "long", evidence)
        print(f"  {evidence:4.2f}: {short[0]:6.1%} {prose[0]:6.1%} {short[2]:6.1%} {long[0]:6.1%} {long[2]:6.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-language", type=int, default=100)
    parser.add_argument("--locale-dir", type=Path, default=Path("/usr/share/locale"))
    parser.add_argument("--half", choices=["tune", "held-out", "all"], default="held-out")
    parser.add_argument("--sweep", action="store_true", help="the auto outcomes for a range of evidence shares")
    parser.add_argument("--low-accuracy", action="store_true", help="Lingua's trigram-only mode")
    args = parser.parse_args()
    data = load_data(args.locale_dir, args.half, args.per_language)
    started = time.perf_counter()
    identifier = LanguageIdentifier(None, args.low_accuracy)
    for code in data:  # load every model before timing
        identifier.detect(data[code]["long"][0] if data[code]["long"] else code)
    print(f"{args.half} half; {len(identifier.languages)} candidate languages, "
          f"{'low' if args.low_accuracy else 'high'} accuracy mode; models loaded in {time.perf_counter() - started:.1f} s")
    accuracy_table(identifier, data)
    ranked = {text: identifier.detect(text) for sets in data.values() for texts in sets.values() for text in texts}
    if args.sweep:
        sweep(ranked, data)
    auto_report(ranked, data, EVIDENCE_SHARE)


if __name__ == "__main__":
    main()
