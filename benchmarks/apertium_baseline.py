"""The rule-based reference point: Apertium (Debian `apertium-eng-spa`) on the sets the README reports.

    apt-get install apertium-eng-spa && python benchmarks/apertium_baseline.py [--shared ../shared]

Scores (sacreBLEU defaults, single reference, `carousel.evaluation.scoring.score_system`) for es→en and en→es on
FLORES-101 devtest, held-out news (newstest2012, never trained on), held-out software and manuals (the
Debian corpus's test split, held out by package) and the Bible test split. Apertium runs one sentence a
line (`apertium -u`, unknown-word marks off).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

from carousel.data.corpus import read_split
from carousel.evaluation.scoring import score_system

ROOT = Path(__file__).resolve().parents[1]


def evaluation_sets(shared: Path) -> dict[str, dict[str, list[str]]]:
    """name -> {language: lines}, line-aligned."""
    def lines(path: Path) -> list[str]:
        return path.read_text(encoding="utf-8").splitlines()

    flores, news = shared / "evalsets" / "flores101", shared / "corpora" / "wmt-news"
    debian = read_split(ROOT / "data" / "corpora" / "debian", "test", ["es", "en"])
    bible = read_split(ROOT / "data" / "corpora" / "bible", "test", ["es", "en"])
    return {
        "FLORES-101 devtest": {"es": lines(flores / "devtest.es"), "en": lines(flores / "devtest.en")},
        "news (newstest2012)": {"es": lines(news / "newstest2012.es"), "en": lines(news / "newstest2012.en")},
        "software (Debian test)": {"es": [r[0] for r in debian], "en": [r[1] for r in debian]},
        "Bible test": {"es": [r[0] for r in bible], "en": [r[1] for r in bible]},
    }


def apertium(lines: list[str], pair: str) -> tuple[list[str], float]:
    text = "\n".join(line.replace("\n", " ") for line in lines) + "\n"
    started = time.perf_counter()
    done = subprocess.run(["apertium", "-u", pair], input=text, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - started
    output = done.stdout.rstrip("\n").split("\n")
    if len(output) != len(lines):
        raise SystemExit(f"apertium {pair} returned {len(output)} lines for {len(lines)}")
    return output, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared", help="the shared material (default: ../shared)")
    args = parser.parse_args()
    if shutil.which("apertium") is None:
        print("apertium is not installed: apt-get install apertium-eng-spa", file=sys.stderr)
        return 2
    print(f"{'set':24} {'direction':9} {'BLEU':>6} {'chrF':>6} {'sent/s':>8}")
    for name, texts in evaluation_sets(args.shared).items():
        for src, tgt, pair in (("es", "en", "spa-eng"), ("en", "es", "eng-spa")):
            hypotheses, seconds = apertium(texts[src], pair)
            scores = score_system(hypotheses, [texts[tgt]])
            print(f"{name:24} {src}→{tgt:6} {scores['bleu']:6.2f} {scores['chrf']:6.2f} {len(hypotheses) / seconds:8.0f}",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
