"""`carousel tune`: choose a model's length penalty on validation data and keep it in the model directory.

The GNMT length penalty trades short against long translations, and the best value differs between
models and language pairs. This command sweeps it at a fixed beam on a corpus split (valid by default;
the test split is refused, so no choice ever sees test scores), prints BLEU and chrF per value and,
with --update-card, writes the winner under `decoding` in card.json. `carousel translate`, `carousel
evaluate` use it whenever --length-penalty is not given, and the service always does. Scores measured
before tuning (the card's `evaluation`) used another value: re-run `carousel evaluate --update-card`.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from carousel.errors import UserError
from carousel.evaluate import corpus_settings, read_references, score_system, translate_sentences
from carousel.translate import QUANTIZE_MODES, load_translator, positive_int
from model.quantization import DEFAULT_QUANTIZATION

DEFAULT_SWEEP = [0.6, 0.8, 1.0, 1.2, 1.4, 1.6, 2.0]


def add_tune_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, required=True, help="model directory to tune")
    parser.add_argument("--corpus", type=Path, help="corpus directory (default: the one the model was trained on)")
    parser.add_argument("--split", default="valid", help="corpus split to tune on; never test (default: %(default)s)")
    parser.add_argument("--src", help="source column (default: the model's training source column)")
    parser.add_argument("--ref", action="append", metavar="COLUMN", help="reference column, repeatable")
    parser.add_argument("--beam", type=positive_int, default=5, help="beam size (default: %(default)s)")
    parser.add_argument(
        "--length-penalties", type=float, nargs="+", default=DEFAULT_SWEEP, metavar="ALPHA",
        help=f"values to try (default: {' '.join(map(str, DEFAULT_SWEEP))})",
    )
    parser.add_argument("--batch-tokens", type=positive_int, default=12000, help="source tokens × beam per batch")
    parser.add_argument(
        "--quantize", choices=QUANTIZE_MODES, default=DEFAULT_QUANTIZATION,
        help="inference precision to tune with, as the model will be served (default: %(default)s)",
    )
    parser.add_argument("--update-card", action="store_true", help="write the best value into the model's card.json")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run_tune(args: argparse.Namespace) -> int:
    from model.checkpoint import sha256_file, update_card
    from model.search import MAX_LENGTH_PENALTY, SearchConfig, is_valid_length_penalty

    if args.split == "test":
        raise UserError("decoding settings are chosen on validation data; the test split only measures the result")
    if not all(map(is_valid_length_penalty, args.length_penalties)):
        raise UserError(f"--length-penalties must lie between 0 and {MAX_LENGTH_PENALTY:g}, got {args.length_penalties}")
    corpus, src, refs = corpus_settings(args)
    sources, references = read_references(corpus, args.split, src, refs)
    translator = load_translator(args.model, args.quantize)

    sweep, show_progress = {}, not args.quiet and sys.stderr.isatty()
    for alpha in dict.fromkeys(args.length_penalties):  # each value once, in the order given
        search = SearchConfig(beam_size=args.beam, length_penalty=alpha)
        hypotheses = translate_sentences(translator, sources, search, args.batch_tokens, progress=show_progress)
        sweep[alpha] = score_system(hypotheses, references)
        print(f"length penalty {alpha:<4}  BLEU {sweep[alpha]['bleu']:6.2f}  chrF {sweep[alpha]['chrf']:6.2f}", flush=True)
    best = choose(sweep)
    print(f"best on {args.split}: length penalty {best} (BLEU {sweep[best]['bleu']:.2f})")

    if args.update_card:
        update_card(args.model, decoding={
            "length_penalty": best,
            "chosen_by": "BLEU",
            "beam": args.beam,
            "quantize": args.quantize,
            "corpus": str(corpus),
            "split": args.split,
            "split_sha256": sha256_file(corpus / f"{args.split}.tsv"),
            "sweep": {str(alpha): {"bleu": s["bleu"], "chrf": s["chrf"]} for alpha, s in sweep.items()},
            "command": shlex.join(args.command_line),
        })
        print(f"recorded decoding.length_penalty = {best} in {args.model / 'card.json'}; scores recorded under "
              "`evaluation` used the earlier value: re-run `carousel evaluate --update-card`", file=sys.stderr)
    return 0


def choose(sweep: dict[float, dict]) -> float:
    """The value with the highest BLEU; chrF breaks ties, then the value nearest the default 1.0."""
    return max(sweep, key=lambda alpha: (sweep[alpha]["bleu"], sweep[alpha]["chrf"], -abs(alpha - 1.0)))
