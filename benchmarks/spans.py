"""How often translations keep the source's numbers, URLs, e-mail addresses, placeholders and tags
exactly once, as the model writes them and after span repair (model/spans.py).

    python benchmarks/spans.py --model models/general-es-en [--limit 400]

Held-out sets (never trained on): the Debian corpus's test split (software strings and manuals of
held-out packages), FLORES-101 devtest and WMT newstest2012. Only sentences whose source holds at
least one span count. Each is translated once (beam 5, int8, with attention); "before" is the
model's output, "after" the same output repaired as `carousel translate` and the service return it.
BLEU and chrF on those sentences show what the repair costs or gains in quality.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import sacrebleu

from carousel.data.corpus import read_split
from carousel.model.search import SearchConfig
from carousel.model.spans import missing_spans, protected_spans, repair_spans
from carousel.model.loading import load_translator

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def held_out_sets(src: str, tgt: str) -> dict[str, list[tuple[str, str]]]:
    def files(stem: str) -> list[tuple[str, str]]:
        sources = (SHARED / f"{stem}.{src}").read_text(encoding="utf-8").splitlines()
        targets = (SHARED / f"{stem}.{tgt}").read_text(encoding="utf-8").splitlines()
        return list(zip(sources, targets))

    return {
        "debian test": [(a, b) for a, b in read_split(Path("data/corpora/debian"), "test", [src, tgt])],
        "FLORES devtest": files("evalsets/flores101/devtest"),
        "newstest2012": files("corpora/wmt-news/newstest2012"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=0, help="at most N sentences with spans per set")
    parser.add_argument("--beam", type=int, default=5)
    args = parser.parse_args()
    translator = load_translator(args.model, "int8")
    search = SearchConfig(beam_size=args.beam, return_alignment=True, repair_spans=False)
    print(f"{args.model}: {translator.src_lang}→{translator.tgt_lang}, beam {args.beam}, int8")
    print(f"{'set':16} {'with spans':>10} {'kept before':>12} {'kept after':>11} {'BLEU b/a':>13} {'chrF b/a':>13}")
    for name, pairs in held_out_sets(translator.src_lang, translator.tgt_lang).items():
        pairs = [(s, r) for s, r in pairs if protected_spans(s)]
        if args.limit:
            pairs = pairs[: args.limit]
        sources, references = [s for s, _ in pairs], [r for _, r in pairs]
        best = [nbest[0] for nbest in translator.translate(sources, search)]
        before = [t.text for t in best]
        after = [repair_spans(s, t.text, t.source_tokens[:-1], t.target_tokens[:-1], t.alignment)
                 for s, t in zip(sources, best)]
        kept_before = sum(not missing_spans(s, t) for s, t in zip(sources, before)) / len(sources)
        kept_after = sum(not missing_spans(s, t) for s, t in zip(sources, after)) / len(sources)
        bleu = [sacrebleu.corpus_bleu(h, [references]).score for h in (before, after)]
        chrf = [sacrebleu.corpus_chrf(h, [references]).score for h in (before, after)]
        print(f"{name:16} {len(sources):10d} {kept_before:12.1%} {kept_after:11.1%} "
              f"{bleu[0]:6.2f}/{bleu[1]:<6.2f} {chrf[0]:6.2f}/{chrf[1]:<6.2f}", flush=True)


if __name__ == "__main__":
    main()
