"""How well the domain router (models/domains.json, carousel/domains.py) sends text to the right model.

    python benchmarks/domains.py [--routing models/domains.json] [--margins 0.3,0.5,0.7]

Validation sets only (nothing here is a test split): Bible valid should go to the Bible model; Debian
valid (held-out packages), FLORES-101 dev and newstest2012 (held-out news) to the general one. Prints,
per source language and margin, the share of each set routed as it should be.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from carousel.data.corpus import read_split
from carousel.domains import DomainRouting

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def validation_sets() -> dict[str, tuple[str, dict[str, list[str]]]]:
    """name -> (the domain it belongs to, {language: lines})."""
    def corpus(name: str) -> dict[str, list[str]]:
        rows = read_split(ROOT / "data" / "corpora" / name, "valid", ["es", "en"])
        return {"es": [es for es, _ in rows], "en": [en for _, en in rows]}

    def files(stem: str) -> dict[str, list[str]]:
        return {lang: (SHARED / f"{stem}.{lang}").read_text(encoding="utf-8").splitlines() for lang in ("es", "en")}

    return {
        "Bible valid": ("bible", corpus("bible")),
        "Debian valid": ("general", corpus("debian")),
        "FLORES dev": ("general", files("evalsets/flores101/dev")),
        "newstest2012": ("general", files("corpora/wmt-news/newstest2012")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routing", type=Path, default=ROOT / "models" / "domains.json")
    parser.add_argument("--margins", default=None, help="comma-separated margins to try (default: the fitted one)")
    args = parser.parse_args()
    routing = DomainRouting.load(args.routing)
    sets = validation_sets()
    print(f"{'lang':4} {'margin':>6} " + " ".join(f"{name:>13}" for name in sets))
    for lang, classifier in sorted(routing.classifiers.items(), reverse=True):
        margins = [float(m) for m in args.margins.split(",")] if args.margins else [classifier.margin]
        for margin in margins:
            classifier.margin = margin
            shares = []
            for domain, texts in sets.values():
                lines = texts[lang]
                shares.append(sum(classifier.classify(line)[0] == domain for line in lines) / len(lines))
            print(f"{lang:4} {margin:6.2f} " + " ".join(f"{share:13.1%}" for share in shares), flush=True)


if __name__ == "__main__":
    main()
