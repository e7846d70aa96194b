"""How well the domain router (models/domains.json, routing/domains.py) sends text to the right model.

    python benchmarks/domains.py [--routing models/domains.json] [--margins 0.3,0.5,0.7]
                                 [--contexts 0:0,2:0.5,5:0.5] [--priors 0,2,4,8]

Validation sets only (nothing here is a test split): Bible valid should go to the Bible model; Debian
valid (held-out packages), FLORES-101 dev, newstest2012 (held-out news), short everyday sentences
(every 20th Tatoeba pair, which the router's fit holds back) and short strings (Debian valid's of at
most three words: menu items, buttons, category names) to the general one; and a
mixed file of 5 Bible valid verses, 5 FLORES dev sentences, 5 verses... where context must not
blur the boundaries. Each set is routed as a file, in its order: every line among its neighbours
(`context` lines either side at `context_weight`; 0:0 routes each line alone). Prints, per source
language, margin and context, the share of each set routed as it should be, and their mean over the
sets other than newstest2012 (what the defaults were chosen on).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from carousel.data.corpus import read_split
from carousel.routing.domains import DomainRouting
from carousel.routing.fitting import HELD_BACK_EVERY

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def validation_sets() -> dict[str, tuple[str, dict[str, list[str]]]]:
    """name -> (the domain it belongs to, {language: lines})."""
    def corpus(name: str) -> dict[str, list[str]]:
        rows = read_split(ROOT / "data" / "corpora" / name, "valid", ["es", "en"])
        return {"es": [es for es, _ in rows], "en": [en for _, en in rows]}

    def files(stem: str) -> dict[str, list[str]]:
        return {lang: (SHARED / f"{stem}.{lang}").read_text(encoding="utf-8").splitlines() for lang in ("es", "en")}

    tatoeba = files("corpora/tatoeba-full/train")
    debian = corpus("debian")
    short = [i for i, en in enumerate(debian["en"]) if len(en.split()) <= 3]
    return {
        "Bible valid": ("bible", corpus("bible")),
        "Tatoeba held back": ("general", {lang: lines[::HELD_BACK_EVERY] for lang, lines in tatoeba.items()}),
        "short strings": ("general", {lang: [lines[i] for i in short] for lang, lines in debian.items()}),
        "Debian valid": ("general", corpus("debian")),
        "FLORES dev": ("general", files("evalsets/flores101/dev")),
        "newstest2012": ("general", files("corpora/wmt-news/newstest2012")),
    }


def alternating(first: list[str], second: list[str], block: int = 5) -> tuple[list[str], list[bool]]:
    """Blocks of `block` lines taken in turn from each list (as long as the first lasts), and for each
    line whether it came from `first`."""
    lines, from_first = [], []
    for start in range(0, len(first), block):
        for source, is_first in ((first, True), (second, False)):
            chunk = source[start:start + block]
            lines += chunk
            from_first += [is_first] * len(chunk)
    return lines, from_first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routing", type=Path, default=ROOT / "models" / "domains.json")
    parser.add_argument("--margins", default=None, help="comma-separated margins to try (default: the fitted one)")
    parser.add_argument("--contexts", default=None,
                        help="comma-separated LINES:WEIGHT context settings to try (default: the fitted one and 0:0)")
    parser.add_argument("--priors", default=None, help="comma-separated priors to try (default: the fitted one)")
    args = parser.parse_args()
    routing = DomainRouting.load(args.routing)
    sets = validation_sets()
    names = [*sets, "mixed file"]
    print(f"{'lang':4} {'margin':>6} {'prior':>5} {'context':>7} " + " ".join(f"{name[:13]:>13}" for name in names) + f" {'mean*':>7}")
    for lang, classifier in sorted(routing.classifiers.items(), reverse=True):
        files = {name: (texts[lang], [domain] * len(texts[lang])) for name, (domain, texts) in sets.items()}
        mixed, is_bible = alternating(sets["Bible valid"][1][lang], sets["FLORES dev"][1][lang])
        files["mixed file"] = (mixed, ["bible" if b else "general" for b in is_bible])
        margins = [float(m) for m in args.margins.split(",")] if args.margins else [classifier.margin]
        contexts = ([tuple(c.split(":")) for c in args.contexts.split(",")] if args.contexts
                    else [(0, 0), (classifier.context, classifier.context_weight)])
        priors = [float(p) for p in args.priors.split(",")] if args.priors else [classifier.prior]
        for margin, prior in ((m, p) for m in margins for p in priors):
            for lines, weight in contexts:
                classifier.margin, classifier.context, classifier.context_weight = margin, int(lines), float(weight)
                classifier.prior = prior
                shares = []
                for texts, expected in files.values():
                    found = classifier.classify_in_context(texts)
                    shares.append(sum(domain == want for (domain, _), want in zip(found, expected)) / len(texts))
                chosen_on = [share for name, share in zip(names, shares) if name != "newstest2012"]
                print(f"{lang:4} {margin:6.2f} {prior:5g} {lines:>3}:{float(weight):<3g} " + " ".join(f"{share:13.2%}" for share in shares)
                      + f" {sum(chosen_on) / len(chosen_on):7.2%}", flush=True)


if __name__ == "__main__":
    main()
