"""Flags several subcommands share (decoding, precision, device) and their translation into configs.

Torch-free at import: `carousel --help` builds every parser without loading PyTorch.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from carousel.errors import UserError
from carousel.model.precision import DEFAULT_QUANTIZATION, DEVICES, QUANTIZE_MODES


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=DEVICES, default="auto",
                        help="where to run: a CUDA GPU when one is visible (auto), or the named device (default: auto)")


def add_search_arguments(parser: argparse.ArgumentParser) -> None:
    """Decoding flags of translate, evaluate and back-translation."""
    parser.add_argument(
        "--beam", type=positive_int, default=None,
        help="beam size; 1 is greedy (default: the model's own, chosen on validation data by `carousel tune`, else 5)",
    )
    parser.add_argument(
        "--batch-tokens", type=positive_int, default=12000,
        help="source tokens × beam per batch (default: %(default)s)",
    )
    parser.add_argument(
        "--length-penalty", type=float, default=None,
        help="GNMT length normalisation alpha; 0 ranks by raw log-probability "
        "(default: the model's own, chosen on validation data by `carousel tune`, else 1.0)",
    )
    parser.add_argument(
        "--channel-weight", type=float, default=None,
        help="weight of the reverse-direction model's score when reranking the beam; 0 turns reranking off "
        "(default: the model's own, chosen by `carousel tune --channel-model`, else off)",
    )
    parser.add_argument(
        "--no-repeat-ngram", type=int, default=None, metavar="N",
        help="forbid an output to repeat any N subwords its source does not repeat; 0 turns it off "
        "(default: the model's own, chosen by `carousel tune`, else off)",
    )
    parser.add_argument(
        "--patience", type=float, default=None, metavar="P",
        help="end a sentence's beam search once P × beam hypotheses have finished; 1 is the usual rule "
        "(default: the model's own, chosen by `carousel tune --patiences`, else 1)",
    )
    parser.add_argument(
        "--max-length-ratio", type=float, default=1.5,
        help="output length cap: ratio × source tokens + 10 (default: %(default)s)",
    )
    parser.add_argument(
        "--quantize", choices=QUANTIZE_MODES, default=DEFAULT_QUANTIZATION,
        help="inference precision: int8 dynamic quantization (CPU), int8 with a scale per sentence (int8-row: "
        "slower, but a sentence's translation does not depend on its batch), float32 as trained (none), or bfloat16 "
        "(default: %(default)s; int8 becomes bf16 on a GPU)",
    )
    parser.add_argument(
        "--no-span-repair", dest="repair_spans", action="store_false",
        help="leave the output's numbers, URLs, e-mail addresses, placeholders and tags as the model wrote "
        "them (default: each one of the source exactly once, put back where the model lost it)",
    )
    parser.add_argument(
        "--close-open", action=argparse.BooleanOptionalAction, default=None,
        help="also translate a sentence that lacks closing punctuation (\"Hola\", \"Save file\") closed with a full "
        "stop, and keep the reading the model finds likelier (default: the model's own, its card's "
        "decoding.close_open, else off)",
    )
    parser.add_argument(
        "--no-shortlist", dest="shortlist", action="store_false",
        help="score the whole target vocabulary at every step, even where the model has a lexical "
        "shortlist (`carousel shortlist`; default: use it)",
    )
    add_device_argument(parser)


def search_config(args: argparse.Namespace, nbest: int = 1, confidence: bool = False):
    """The `SearchConfig` the decoding flags describe (`confidence`: with each translation's confidence);
    out-of-range values are a `UserError` naming the flag."""
    from carousel.model.search import SearchConfig, search_settings_problem

    problem = search_settings_problem(
        beam_size=args.beam, nbest=nbest, length_penalty=args.length_penalty,
        channel_weight=args.channel_weight, max_length_ratio=args.max_length_ratio,
        no_repeat_ngram=args.no_repeat_ngram, patience=getattr(args, "patience", None),
    )
    if problem is not None:
        field, message = problem
        flag = {"beam_size": "--beam", "nbest": "--nbest"}.get(field, "--" + field.replace("_", "-"))
        raise UserError(f"{flag} {message}")
    return SearchConfig(
        beam_size=args.beam, nbest=nbest, length_penalty=args.length_penalty, max_length_ratio=args.max_length_ratio,
        channel_weight=args.channel_weight, no_repeat_ngram=args.no_repeat_ngram, return_confidence=confidence,
        repair_spans=getattr(args, "repair_spans", True), shortlist=getattr(args, "shortlist", True),
        patience=getattr(args, "patience", None), close_open=getattr(args, "close_open", None),
    )


def corpus_settings(args: argparse.Namespace) -> tuple[Path, str, list[str]]:
    """Corpus, source column and reference columns (--corpus, --src, --ref), defaulting to the corpus
    the model's card says it was trained on (`evaluate` and `tune`)."""
    from carousel.model.card import read_card, training_corpus

    trained = training_corpus(read_card(args.model)) if args.model is not None else {}
    corpus = args.corpus or (Path(trained["path"]) if "path" in trained else None)
    columns = trained.get("columns") if isinstance(trained.get("columns"), dict) else {}
    src = args.src or columns.get("source")
    refs = args.ref or ([columns["target"]] if "target" in columns else None)
    needed = [("--corpus", corpus), ("--ref", refs)] + ([("--src", src)] if args.model is not None else [])
    for flag, value in needed:
        if not value:
            raise UserError(f"{flag} is needed (the model's card does not name its training corpus)")
    return Path(corpus), src, list(refs)
