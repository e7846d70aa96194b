"""Language identification: accuracy on short and long sentences in many languages, and time per text.

    python benchmarks/language_id.py [--per-language 100] [--low-accuracy]

Text: translated messages (msgstr) of the Debian packages' gettext catalogs unpacked by `carousel
prepare debian` (runs/debian-cache/unpacked/*/usr/share/locale/<lang>/LC_MESSAGES/*.mo), read with
polib, and for es/en the FLORES-101 dev sentences. "short" is 1-4 words, "long" 10 words or more; up to
N of each per language, drawn with a fixed seed from distinct strings without format directives only.
Accuracy is top-1 over all 75 Lingua languages (service/languages.py), as `/detect` answers.
"""

from __future__ import annotations

import argparse
import glob
import random
import re
import statistics
import time
from pathlib import Path

import polib

from carousel.service.languages import LanguageIdentifier, choose_source

CACHE = Path("runs/debian-cache/unpacked")
FLORES = Path("/work/shared/evalsets/flores101")
# catalog folder → expected code
LOCALES = {"fr": "fr", "de": "de", "it": "it", "pt_BR": "pt", "nl": "nl", "pl": "pl", "ru": "ru", "tr": "tr",
           "sv": "sv", "cs": "cs", "ca": "ca", "fi": "fi", "ja": "ja", "zh_CN": "zh", "uk": "uk", "hu": "hu",
           "ro": "ro", "da": "da", "el": "el", "id": "id"}
PLACEHOLDER = re.compile(r"%|\{|\}|<|>|_|&|\\|\$|\[")


def words(text: str) -> int:
    return len(text.split()) if not re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", text) else len(text) // 2


def catalog_texts(locale: str) -> list[str]:
    texts = set()
    for path in sorted(glob.glob(str(CACHE / "*" / "usr/share/locale" / locale / "LC_MESSAGES" / "*.mo"))):
        try:
            for entry in polib.mofile(path):
                text = " ".join(entry.msgstr.split())
                if text and entry.msgstr != entry.msgid and not PLACEHOLDER.search(text):
                    texts.add(text)
        except (OSError, ValueError):
            continue
    return sorted(texts)


def samples(texts: list[str], n: int, rng: random.Random) -> dict[str, list[str]]:
    short = [t for t in texts if 1 <= words(t) <= 4 and any(c.isalpha() for c in t)]
    long = [t for t in texts if words(t) >= 10]
    return {"short": rng.sample(short, min(n, len(short))), "long": rng.sample(long, min(n, len(long)))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-language", type=int, default=100)
    parser.add_argument("--low-accuracy", action="store_true", help="Lingua's trigram-only mode")
    parser.add_argument("--languages", help="comma-separated candidate codes (default: all Lingua knows)")
    args = parser.parse_args()
    rng = random.Random(1)
    data = {code: samples(catalog_texts(locale), args.per_language, rng) for locale, code in LOCALES.items()}
    for code in ("es", "en"):
        lines = (FLORES / f"dev.{code}").read_text(encoding="utf-8").splitlines()
        extra = samples(catalog_texts(code) if code == "es" else [], args.per_language, rng)["short"]
        data[code] = {"short": extra or [" ".join(l.split()[:3]) for l in rng.sample(lines, args.per_language)],
                      "long": rng.sample([l for l in lines if words(l) >= 10], args.per_language)}
    started = time.perf_counter()
    identifier = LanguageIdentifier(args.languages.split(",") if args.languages else None, args.low_accuracy)
    identifier.detect("warm up"), identifier.detect("Привет"), identifier.detect("你好")
    for code in data:  # load every model before timing
        identifier.detect(data[code]["long"][0] if data[code]["long"] else code)
    load = time.perf_counter() - started
    print(f"candidates: {len(identifier.languages)} languages, {'low' if args.low_accuracy else 'high'} accuracy mode; "
          f"models loaded in {load:.1f} s")
    print(f"{'lang':5} {'short n':>7} {'short acc':>9} {'long n':>6} {'long acc':>8}  most common mistake (short)")
    totals, times = {"short": [0, 0], "long": [0, 0]}, {"short": [], "long": []}
    for code, sets in sorted(data.items()):
        row, mistakes = [], {}
        for kind in ("short", "long"):
            right = 0
            for text in sets[kind]:
                t = time.perf_counter()
                top = identifier.detect(text)[0].language
                times[kind].append(time.perf_counter() - t)
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
    # source "auto" on a server translating es→en and en→es: es/en texts must be translated from the
    # right language, every other language refused (never passed through as if it were served).
    print('source "auto" with es↔en served (target en for es texts and others, es for en texts):')
    for kind in ("short", "long"):
        right = {"served": [0, 0], "other": [0, 0]}
        for code, sets in data.items():
            served = ["en", "es"] if code == "en" else ["es", "en"]  # the sources, then the target
            for text in sets[kind]:
                chosen, ok = choose_source(identifier.detect(text), served, served[-1])
                group = "served" if code in ("es", "en") else "other"
                right[group][0] += (ok and chosen.language == code) if group == "served" else (not ok)
                right[group][1] += 1
        print(f"  {kind}: es/en texts translated from the right language {right['served'][0] / right['served'][1]:.1%}; "
              f"other languages refused {right['other'][0] / right['other'][1]:.1%}")


if __name__ == "__main__":
    main()
