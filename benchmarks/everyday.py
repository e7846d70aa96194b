"""The first things a new user types: greetings, courtesy phrases and everyday questions.

    python benchmarks/everyday.py [--set benchmarks/data/everyday.tsv] [--models-dir models]
                                  [--spec data/mixes/general-v2-es-en.yaml ...] [--beam K]

Each sentence is translated on its own, as the service translates one typed sentence and as `carousel
translate --source X --target Y` translates a one-line input (the shipped models of the pair behind the
domain router, each at its own beam, int8) and counted right when the
output equals one of its accepted translations, ignoring case, punctuation and spacing. A sentence that
a training mix holds (either side, the same comparison) is reported and left out of the count, so the
figure is on sentences the models have not seen.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

from carousel.data.mixing import load_spec, read_part

ROOT = Path(__file__).resolve().parents[1]
SPECS = [ROOT / "data" / "mixes" / name for name in ("general-es-en.yaml", "general-v2-es-en.yaml", "general-v3-es-en.yaml",
                                                           "general-v4-es-en.yaml")]


def normalised(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def read_set(path: Path) -> list[tuple[str, str, list[str]]]:
    """(direction, source, accepted translations) per line; # starts a comment."""
    items = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            direction, source, *accepted = line.split("\t")
            items.append((direction, source, accepted))
    return items


def training_sentences(specs: list[Path]) -> set[str]:
    """Every sentence (either side, normalised) of the train parts of the mixes that exist here."""
    seen: set[str] = set()
    for spec_path in specs:
        spec = load_spec(spec_path)
        for part in spec.train:
            try:
                pairs = read_part(part, spec.languages, ROOT)
            except Exception as error:  # a part built elsewhere (runs/corpora/...) may be absent
                print(f"note: {spec_path.name}: part {part.name} not read ({error})")
                continue
            seen.update(normalised(text) for pair in pairs for text in pair)
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", type=Path, default=ROOT / "benchmarks" / "data" / "everyday.tsv")
    parser.add_argument("--models-dir", type=Path, default=None, help="default: the shipped models")
    parser.add_argument("--spec", type=Path, nargs="*", default=SPECS, help="training mixes whose sentences are left out")
    parser.add_argument("--beam", type=int, default=None, help="beam size (default: each model's own)")
    parser.add_argument("--no-shortlist", dest="shortlist", action="store_false", help="search the whole target vocabulary")
    args = parser.parse_args()
    if args.models_dir is not None:
        os.environ["CAROUSEL_MODELS_DIR"] = str(args.models_dir)
    from carousel.model.search import SearchConfig
    from carousel.routing.translator import load_default_translator

    items = read_set(args.set)
    seen = training_sentences([spec for spec in args.spec if spec.exists()])
    search = SearchConfig(beam_size=args.beam, shortlist=args.shortlist)
    right = counted = 0
    by_direction = {d: (0, 0) for d, _, _ in items}
    for direction in sorted({d for d, _, _ in items}):
        source_lang, target_lang = direction.split("-")
        translator = load_default_translator(source_lang, target_lang, search=search)
        chosen = [(source, accepted) for d, source, accepted in items if d == direction]
        # One sentence a call, as a user types them: with the default int8, a sentence batched with the
        # others could come out differently ("Hola." → "Hole." in a batch, "Hello." alone).
        outputs = [translator.translate_texts([source], search)[0][0][0] for source, _ in chosen]
        for (source, accepted), output in zip(chosen, outputs):
            if normalised(source) in seen:
                print(f"{direction}  (in training data, not counted)  {source} -> {output}")
                continue
            ok = normalised(output) in {normalised(a) for a in accepted}
            right, counted = right + ok, counted + 1
            by_direction[direction] = (by_direction[direction][0] + ok, by_direction[direction][1] + 1)
            print(f"{direction}  {'right' if ok else 'WRONG'}  {source} -> {output}")
    each = ", ".join(f"{d} {r} of {n}" for d, (r, n) in sorted(by_direction.items()))
    print(f"\n{right} of {counted} right ({each}; {args.set.name}, beam {args.beam or 'of each model'}, "
          "the shipped models behind the router)")


if __name__ == "__main__":
    main()
