"""`carousel tune`: choose a model's length penalty on validation data and keep it in the model directory.

The GNMT length penalty trades short against long translations, and the best value differs between
models and language pairs. This command sweeps it at a fixed beam on a corpus split (valid by default;
the test split is refused, so no choice ever sees test scores), prints BLEU and chrF per value and,
with --update-card, writes the winner under `decoding` in card.json. `carousel translate`, `carousel
evaluate` use it whenever --length-penalty is not given, and the service always does. Scores measured
before tuning (the card's `evaluation`) used another value: re-run `carousel evaluate --update-card`.

For an ensemble, --member-weights 1,1 2,1 3,1 first tries those weightings of the members (each
normalised to sum to 1) at the default length penalty and keeps the best under `decoding.member_weights`.

With --channel-model DIR (a model of the reverse direction), it then sweeps the weight of that model's
score in reranking the beam (model/reranking.py) at the chosen length penalty, and records both the
directory (relative to the tuned one, so the two move together) and the weight under
`decoding.channel`. A weight of 0 (reranking did not help) is recorded too, and then nothing is loaded.
--channel-off records the sweep and its best weight (`best_on_valid`) but leaves the weight at 0, for a
model whose reranking costs more time than its gain is worth: `--channel-weight` then turns it on. A
channel weight is tuned for one reverse model, and loading refuses it once that model's files change:
--channel-only re-tunes just the weight, at the beam, length penalty and n-gram ban the card records,
and keeps the rest of the card's `decoding`.

With --beams 3 4 5 it tunes the length penalty (and the n-gram ban) at each beam and records the smallest
beam whose BLEU is within --beam-tolerance of the best as `decoding.beam`: the model's default beam in
`carousel translate`, `evaluate` and the service wherever a beam is not asked for.

Settings are chosen by BLEU, chrF breaking exact ties. With --chrf-within 0.1, every setting whose BLEU
is within 0.1 of the best counts as tied and the best chrF among them wins: such BLEU differences are
noise on 1,000 validation sentences, while chrF also counts the content words BLEU's n-grams miss.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from carousel.errors import UserError
from carousel.commands.options import add_device_argument, corpus_settings, positive_int
from carousel.model.precision import DEFAULT_QUANTIZATION, QUANTIZE_MODES

DEFAULT_SWEEP = [0.6, 0.8, 1.0, 1.2, 1.4, 1.6, 2.0]
DEFAULT_CHANNEL_SWEEP = [0.0, 0.25, 0.5, 0.75, 1.0, 1.5]
DEFAULT_BEAM_TOLERANCE = 0.1  # BLEU; far inside the noise of a 1,000-sentence validation set


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, required=True, help="model directory to tune")
    parser.add_argument("--corpus", type=Path, help="corpus directory (default: the one the model was trained on)")
    parser.add_argument("--split", default="valid", help="corpus split to tune on; never test (default: %(default)s)")
    parser.add_argument("--src", help="source column (default: the model's training source column)")
    parser.add_argument("--ref", action="append", metavar="COLUMN", help="reference column, repeatable")
    beam = parser.add_mutually_exclusive_group()
    beam.add_argument("--beam", type=positive_int, default=5, help="beam size (default: %(default)s)")
    beam.add_argument(
        "--beams", type=positive_int, nargs="+", metavar="K",
        help="tune at each of these beam sizes and keep the smallest whose BLEU is within --beam-tolerance of the "
        "best: the model's default beam, e.g. 3 4 5",
    )
    parser.add_argument(
        "--beam-tolerance", type=float, default=DEFAULT_BEAM_TOLERANCE, metavar="BLEU",
        help="with --beams: BLEU a smaller beam may lose against the best (default: %(default)s)",
    )
    parser.add_argument(
        "--chrf-within", type=float, default=0.0, metavar="BLEU",
        help="choose the length penalty and n-gram ban by chrF among the settings whose BLEU is within this much "
        "of the best (default: %(default)s, by BLEU alone; chrF breaks exact ties)",
    )
    parser.add_argument(
        "--length-penalties", type=float, nargs="+", default=DEFAULT_SWEEP, metavar="ALPHA",
        help=f"values to try (default: {' '.join(map(str, DEFAULT_SWEEP))})",
    )
    parser.add_argument("--batch-tokens", type=positive_int, default=12000, help="source tokens × beam per batch")
    parser.add_argument(
        "--quantize", choices=QUANTIZE_MODES, default=DEFAULT_QUANTIZATION,
        help="inference precision to tune with, as the model will be served (default: %(default)s)",
    )
    parser.add_argument(
        "--member-weights", type=_weight_vector, nargs="+", metavar="W1,W2",
        help="for an ensemble: member weight vectors to try first, e.g. 1,1 2,1 3,1 (normalised to sum to 1)",
    )
    parser.add_argument("--channel-model", type=Path, metavar="DIR",
                        help="a model of the reverse direction: also tune its weight in reranking the beam")
    parser.add_argument(
        "--channel-weights", type=float, nargs="+", default=DEFAULT_CHANNEL_SWEEP, metavar="WEIGHT",
        help=f"channel weights to try (default: {' '.join(map(str, DEFAULT_CHANNEL_SWEEP))})",
    )
    parser.add_argument(
        "--patiences", type=float, nargs="+", metavar="P",
        help="also sweep the beam search's patience (it stops once P × beam hypotheses have finished; 1 is the "
        "usual rule), tuning the length penalty at each, e.g. 1 1.5 2 (default: keep the card's)",
    )
    parser.add_argument("--channel-off", action="store_true",
                        help="record the channel sweep and its best weight, but leave reranking off (weight 0)")
    parser.add_argument("--channel-only", action="store_true",
                        help="with --channel-model: sweep only the channel weight, at the decoding the card records, "
                        "and keep the rest of it (after the reverse model changed)")
    parser.add_argument(
        "--no-repeat-ngrams", type=int, nargs="+", default=None, metavar="N",
        help="also sweep the ban on repeating N subwords the source does not repeat (0 = off), e.g. 0 3 4 5 "
        "(default: keep the card's choice)",
    )
    parser.add_argument("--update-card", action="store_true", help="write the best value into the model's card.json")
    add_device_argument(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from carousel.evaluation.scoring import read_references, score_system, translate_sentences
    from carousel.data.corpus import split_sha256
    from carousel.model.card import update_card
    from carousel.model.loading import load_translator
    from carousel.evaluation.tuning import load_channel_model, tune_channel, tune_decoding
    from carousel.model.search import (
        MAX_BEAM_SIZE, MAX_CHANNEL_WEIGHT, MAX_LENGTH_PENALTY, MAX_NGRAM_BAN, MAX_PATIENCE, is_valid_beam_size,
        is_valid_channel_weight, is_valid_length_penalty, is_valid_ngram_ban, is_valid_patience,
    )

    if args.split == "test":
        raise UserError("decoding settings are chosen on validation data; the test split only measures the result")
    if not all(map(is_valid_length_penalty, args.length_penalties)):
        raise UserError(f"--length-penalties must lie between 0 and {MAX_LENGTH_PENALTY:g}, got {args.length_penalties}")
    if not all(map(is_valid_channel_weight, args.channel_weights)):
        raise UserError(f"--channel-weights must lie between 0 and {MAX_CHANNEL_WEIGHT:g}, got {args.channel_weights}")
    beams = args.beams or [args.beam]
    if not all(map(is_valid_beam_size, beams)):
        raise UserError(f"--beam and --beams must lie between 1 and {MAX_BEAM_SIZE}, got {beams}")
    if not 0 <= args.beam_tolerance <= 100:
        raise UserError(f"--beam-tolerance must be between 0 and 100 BLEU, got {args.beam_tolerance}")
    if not 0 <= args.chrf_within <= 100:
        raise UserError(f"--chrf-within must be between 0 and 100 BLEU, got {args.chrf_within}")
    if args.no_repeat_ngrams and not all(map(is_valid_ngram_ban, args.no_repeat_ngrams)):
        raise UserError(f"--no-repeat-ngrams must be 0 or from 2 to {MAX_NGRAM_BAN}, got {args.no_repeat_ngrams}")
    if args.patiences and not all(map(is_valid_patience, args.patiences)):
        raise UserError(f"--patiences must lie between 1 and {MAX_PATIENCE:g}, got {args.patiences}")
    if args.channel_only and args.channel_model is None:
        raise UserError("--channel-only re-tunes the channel weight: name the reverse model with --channel-model DIR")
    if args.channel_only and (args.beams or args.member_weights or args.no_repeat_ngrams or args.patiences):
        raise UserError("--channel-only keeps the card's beam, length penalty, n-gram ban, patience and member "
                        "weights: drop --beams, --member-weights, --no-repeat-ngrams and --patiences, or drop --channel-only")
    corpus, src, refs = corpus_settings(args)
    sources, references = read_references(corpus, args.split, src, refs)
    # The forward model alone: a channel model the card names may have moved, and this run either
    # re-tunes it (--channel-model) or keeps its record untouched.
    translator = load_translator(args.model, args.quantize, channel="none", device=args.device)
    if args.channel_model is not None:
        translator.use_channel(load_channel_model(args.channel_model, translator, args.quantize))

    def score(search) -> dict:
        hypotheses = translate_sentences(translator, sources, search, args.batch_tokens,
                                         progress=not args.quiet and sys.stderr.isatty())
        return score_system(hypotheses, references)

    record = dict(quantize=args.quantize, corpus=str(corpus), split=args.split,
                  split_sha256=split_sha256(corpus, args.split), command=shlex.join(args.command_line))

    def report(line: str) -> None:
        print(line, flush=True)

    if args.channel_only:
        decoding = dict(translator.card.get("decoding", {}))
        at = {"beam": translator.beam_size, "length_penalty": translator.length_penalty,
              "no_repeat_ngram": translator.no_repeat_ngram, "patience": translator.patience}
        decoding["channel"] = {**tune_channel(translator, score, args.channel_weights, at, args.model,
                                              args.channel_model, args.split, report, args.channel_off), **record}
    else:
        decoding = tune_decoding(translator, score, beams, args.length_penalties, args.channel_weights,
                                 args.member_weights, args.model, args.channel_model,
                                 split=args.split, report=report, ngram_bans=args.no_repeat_ngrams,
                                 beam_tolerance=args.beam_tolerance, chrf_within=args.chrf_within,
                                 keep_off=args.channel_off, patiences=args.patiences)
        decoding.update(record)

    if args.update_card:
        update_card(args.model, decoding=decoding)
        print(f"recorded the decoding settings in {args.model / 'card.json'}; scores recorded under "
              "`evaluation` used the earlier ones: re-run `carousel evaluate --update-card`", file=sys.stderr)
    return 0


def _weight_vector(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers such as 2,1, got {text!r}") from None

