"""How often a verse's translation depends on the other verses in its batch, per precision.

    python benchmarks/batch_dependence.py [--model models/bible-es-en] [--limit 150] [--modes int8,int8-row,none]

Translates the first N verses of the validation split in one call and then one at a time (beam 5)
and counts the verses whose translations differ. float32 (`none`) and `int8-row` (a scale per sentence)
should give none: with them, each sentence also keeps to its own part of the batch's lexical shortlist
(model/shortlist.py). `int8` (one activation scale per batch, torch's dynamic quantization) and `bf16`
(whose matrix products round differently with the batch's shape) may.
"""

from __future__ import annotations

import argparse

from carousel.data.corpus import read_split
from carousel.model.search import SearchConfig
from carousel.model.loading import load_translator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/bible-es-en")
    parser.add_argument("--corpus", default="data/corpora/bible")
    parser.add_argument("--split", default="valid")
    parser.add_argument("--src", default="es")
    parser.add_argument("--limit", type=int, default=150)
    parser.add_argument("--modes", default="int8,int8-row,none")
    args = parser.parse_args()

    sources = [row[0] for row in read_split(args.corpus, args.split, [args.src])][: args.limit]
    search = SearchConfig(beam_size=5)
    for mode in args.modes.split(","):
        translator = load_translator(args.model, mode)
        together = [nbest[0][0] for nbest in translator.translate_texts(sources, search)]
        alone = [translator.translate_texts([source], search)[0][0][0] for source in sources]
        changed = sum(a != b for a, b in zip(together, alone))
        print(f"{mode}: {changed} of {len(sources)} verses translate differently alone than in one batch")


if __name__ == "__main__":
    main()
