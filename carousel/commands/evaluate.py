"""`carousel evaluate`: BLEU, chrF and TER (sacreBLEU) of a model on a corpus split, or of hypothesis files.

    carousel evaluate --model models/bible-es-en --corpus data/corpora/bible --split test --src es --ref en
    carousel evaluate --model DIR --split test --ref en --ref en_kjv           # two references per sentence
    carousel evaluate --hyp hyp.txt [--hyp other.txt] --refs ref.txt [ref2.txt]
    carousel evaluate --model DIR --split test --hyp apertium.txt              # side by side
    carousel evaluate --pair es-en --corpus data/corpora/bible --src es --ref en  # the shipped models, routed by domain

With several systems, each is compared with the first (the model, else the first --hyp) by sacreBLEU's
paired bootstrap resampling (`sacrebleu.significance.PairedTest`; seed 12345 unless SACREBLEU_SEED is
set), and the table shows the p-values. The scoring itself is `carousel.evaluation.scoring`.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from carousel.errors import UserError
from carousel.commands.options import add_search_arguments, corpus_settings, positive_int, search_config
from carousel.formats.batch import stop_after_broken_pipe
from carousel.fileio import read_lines
from carousel.model.precision import DEFAULT_QUANTIZATION

# TER's cost grows with the square of a line's length: a 100,000-character line (some 17,000 words)
# takes minutes; at this limit a line takes about a second. Longer "sentences" are misaligned files.
MAX_WORDS_PER_LINE = 2000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, help="model directory to translate the split with")
    parser.add_argument(
        "--pair", metavar="SRC-TGT",
        help="translate with the shipped default models of a language pair instead, e.g. es-en (see --domain); "
             "the default where neither --model nor --hyp is given: the pair of the --src and --ref columns' languages",
    )
    parser.add_argument(
        "--domain", default="auto",
        help="with --pair: the domain's model (e.g. general, bible), or 'auto' to route each sentence "
             "to the model of its domain (default: %(default)s)",
    )
    parser.add_argument("--corpus", type=Path, help="corpus directory (default with --model: the one it was trained on)")
    parser.add_argument("--split", default="test", help="corpus split (default: %(default)s)")
    parser.add_argument("--src", help="source column (default with --model: its training source column)")
    parser.add_argument(
        "--ref", action="append", metavar="COLUMN",
        help="reference column, repeatable for several references (default with --model: its training target)",
    )
    parser.add_argument(
        "--hyp", action="append", type=Path, default=[], metavar="FILE", help="hypothesis file to score (repeatable)"
    )
    parser.add_argument("--refs", nargs="+", type=Path, metavar="FILE", help="reference files for --hyp, one per reference")
    add_search_arguments(parser)
    parser.add_argument(
        "--resamples", type=positive_int, default=1000,
        help="paired bootstrap resamples when comparing systems (default: %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON instead of the table")
    parser.add_argument("--write-hyps", type=Path, metavar="FILE", help="write the model's translations to FILE")
    parser.add_argument(
        "--update-card", action="store_true",
        help="record the model's scores, settings and signatures in its card (card.json, card.md)",
    )
    parser.add_argument("--progress", action="store_true", help="show the progress bar even when stderr is not a terminal")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


# --- reusable scoring ----------------------------------------------------------------------------


# --- the command ---------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    from carousel.evaluation.scoring import evaluate_model_on_split, format_report, read_reference_columns, score_systems

    _default_to_shipped_pair(args)
    _check_combination(args)
    search = search_config(args)
    corpus, src, refs = corpus_settings(args) if args.refs is None else (None, None, None)
    if corpus is not None:
        references, reference_names = read_reference_columns(corpus, args.split, refs), refs
        where, unit = f"the {args.split} split of {corpus}", "sentences"
    else:
        references = [_read_text_file(path) for path in args.refs]
        reference_names = [str(path) for path in args.refs]
        _check_same_length(references, reference_names)
        where, unit = ", ".join(reference_names), "lines"
    systems = [(str(path), _read_text_file(path)) for path in args.hyp]
    for name, lines in systems:  # checked before a long translation run, not after
        if len(lines) != len(references[0]):
            raise UserError(f"{name} has {len(lines)} lines but {where} has {len(references[0])} {unit}")

    model_result = None
    if args.model is not None or args.pair is not None:
        model_result = evaluate_model_on_split(
            args.model, corpus, args.split, src, refs, search, args.batch_tokens, args.quantize,
            progress=not args.quiet and (args.progress or sys.stderr.isatty()), load=_shipped_loader(args),
        )
        quantized = "" if args.quantize == DEFAULT_QUANTIZATION else f", {args.quantize}"
        name = Path(args.model).name if args.model is not None else f"shipped {args.pair} ({args.domain})"
        systems.insert(0, (f"{name} (beam {model_result['beam'] or 'of each model'}{quantized})", model_result["hypotheses"]))
        if args.write_hyps:
            _write_lines(args.write_hyps, model_result["hypotheses"])
        if args.update_card:
            key = _update_card(args, model_result, corpus)
            print(f"recorded evaluation.{key} in {Path(args.model) / 'card.json'}", file=sys.stderr)

    report = {"sentences": len(references[0]), "references": reference_names}
    if corpus is not None:
        report.update(corpus=str(corpus), split=args.split, source=src)
    if model_result is not None:
        report["search"] = {
            "beam": model_result["beam"], "length_penalty": model_result["length_penalty"],
            "channel_weight": model_result["channel_weight"],
            "max_length_ratio": args.max_length_ratio, "no_repeat_ngram": model_result["no_repeat_ngram"],
            "quantize": args.quantize,
        }
        report["stutters"] = model_result["stutters"]
    report.update(score_systems(systems, references, args.resamples, model_result))
    try:
        print(json.dumps(report, indent=2, ensure_ascii=False) if args.json else format_report(report, where), flush=True)
    except BrokenPipeError:
        return stop_after_broken_pipe()
    return 0


def _shipped_loader(args: argparse.Namespace):
    """With --pair: loads the shipped default models of the pair (routing/translator.py); else None."""
    if args.pair is None:
        return None
    from carousel.routing.translator import load_default_translator

    source, target = _pair(args.pair)
    return lambda quantization, search: load_default_translator(source, target, args.domain, quantization, search)


def _default_to_shipped_pair(args: argparse.Namespace) -> None:
    """No model, pair or hypotheses named, but a corpus split to translate: the shipped default models of
    the columns' languages (as `translate` and the service use them), so `--pair` may be left out."""
    if args.model is None and args.pair is None and not args.hyp and args.corpus and args.src and args.ref:
        from carousel.data.corpus import load_corpus_manifest

        languages = load_corpus_manifest(args.corpus).languages
        args.pair = f"{languages.get(args.src, args.src)}-{languages.get(args.ref[0], args.ref[0])}"


def _pair(text: str) -> tuple[str, str]:
    source, _, target = text.partition("-")
    if not source or not target:
        raise UserError(f"--pair {text!r}: write SOURCE-TARGET, e.g. --pair es-en")
    return source, target


def _check_combination(args: argparse.Namespace) -> None:
    if args.model is not None and args.pair is not None:
        raise UserError("give --model DIR or --pair SRC-TGT (the shipped models), not both")
    if args.pair is not None:
        _pair(args.pair)
        if not (args.corpus and args.src and args.ref):
            raise UserError("--pair needs the corpus columns: --corpus DIR --src COLUMN --ref COLUMN")
        if args.update_card:
            raise UserError("--update-card needs --model (a pair's models each have their own card)")
    elif args.domain != "auto":
        raise UserError("--domain goes with --pair")
    if args.model is None and args.pair is None and not args.hyp:
        raise UserError("nothing to score: give --model DIR, --pair SRC-TGT and/or --hyp FILE")
    if args.refs is not None and (args.ref or args.src or args.corpus):
        raise UserError("--refs (reference files) cannot be combined with --corpus/--src/--ref (corpus columns)")
    if args.refs is not None and args.model is not None:
        raise UserError("--model is scored on a corpus split: use --corpus/--ref columns, not --refs files")
    if args.model is None and args.pair is None:
        for flag, value in (("--write-hyps", args.write_hyps), ("--update-card", args.update_card)):
            if value:
                raise UserError(f"{flag} needs --model")
        if args.refs is None and not (args.corpus and args.ref):
            raise UserError("--hyp needs references: --refs FILE..., or --corpus DIR --ref COLUMN")


def _read_text_file(path: Path) -> list[str]:
    lines = []
    for number, line in read_lines(path):
        words = len(line.split())
        if words > MAX_WORDS_PER_LINE:
            raise UserError(
                f"{path}:{number}: {words:,} words on one line; evaluate scores sentences, one per line, "
                f"of at most {MAX_WORDS_PER_LINE:,} words"
            )
        lines.append(line)
    if not lines:
        raise UserError(f"{path}: empty file")
    return lines


def _check_same_length(streams: list[list[str]], names: list[str]) -> None:
    for name, stream in zip(names[1:], streams[1:]):
        if len(stream) != len(streams[0]):
            raise UserError(f"{name} has {len(stream)} lines but {names[0]} has {len(streams[0])}")


def _write_lines(path: Path, lines: list[str]) -> None:
    try:
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    except OSError as error:
        raise UserError(f"{path}: cannot write ({error.strerror})") from None


def _update_card(args: argparse.Namespace, result: dict, corpus: Path) -> str:
    """Record the model's scores under card["evaluation"][split] (split-PRECISION when not the default int8)."""
    from carousel.model.card import record_evaluation

    key = args.split if args.quantize == DEFAULT_QUANTIZATION else f"{args.split}-{args.quantize}"
    entry = {name: value for name, value in result.items() if name != "hypotheses"}
    entry["command"] = shlex.join(_reproducing_command(args, corpus, result))
    record_evaluation(Path(args.model), key, entry)
    return key


def _reproducing_command(args: argparse.Namespace, corpus: Path, result: dict) -> list[str]:
    """The `carousel evaluate` command that reproduces the model's scores, defaults spelled out."""
    command = ["carousel", "evaluate", "--model", str(args.model), "--corpus", str(corpus), "--split", args.split]
    command += ["--src", result["source"]]
    for ref in result["references"]:
        command += ["--ref", ref]
    command += ["--beam", str(result["beam"]), "--batch-tokens", str(args.batch_tokens)]
    command += ["--length-penalty", str(result["length_penalty"]), "--channel-weight", str(result["channel_weight"])]
    command += ["--max-length-ratio", str(args.max_length_ratio), "--no-repeat-ngram", str(result["no_repeat_ngram"])]
    return command + ["--quantize", args.quantize]
