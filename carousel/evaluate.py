"""`carousel evaluate`: BLEU, chrF and TER (sacreBLEU) of a model on a corpus split, or of hypothesis files.

    carousel evaluate --model models/bible-es-en --corpus data/corpora/bible --split test --src es --ref en
    carousel evaluate --model DIR --split test --ref en --ref en_kjv           # two references per sentence
    carousel evaluate --hyp hyp.txt [--hyp other.txt] --refs ref.txt [ref2.txt]
    carousel evaluate --model DIR --split test --hyp apertium.txt              # side by side

With several systems, each is compared with the first (the model, else the first --hyp) by sacreBLEU's
paired bootstrap resampling (`sacrebleu.significance.PairedTest`; seed 12345 unless SACREBLEU_SEED is
set), and the table shows the p-values. `score_system` and `evaluate_model_on_split` are the reusable
parts, for training and benchmark code that wants the same numbers.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from carousel.errors import UserError
from carousel.translate import (
    DEFAULT_QUANTIZATION,
    add_search_arguments,
    positive_int,
    read_lines,
    search_config,
    stop_after_broken_pipe,
)

METRICS = ("bleu", "chrf", "ter")
PROGRESS_CHUNK = 256  # sentences translated between progress-bar updates
# TER's cost grows with the square of a line's length: a 100,000-character line (some 17,000 words)
# takes minutes; at this limit a line takes about a second. Longer "sentences" are misaligned files.
MAX_WORDS_PER_LINE = 2000


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, help="model directory to translate the split with")
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


def score_system(hypotheses: list[str], references: list[list[str]]) -> dict:
    """BLEU, chrF and TER of one system with sacreBLEU's default settings (rounded to 2 decimals, as
    sacreBLEU prints them), and their signatures.

    `references` is sacreBLEU's layout: one list per reference set, `references[k][i]` being the
    k-th reference of sentence i.
    """
    from sacrebleu.metrics import BLEU, CHRF, TER

    _check_aligned([hypotheses], references)
    metrics = {"bleu": BLEU(), "chrf": CHRF(), "ter": TER()}
    scores = {name: metric.corpus_score(hypotheses, references) for name, metric in metrics.items()}
    return {
        **{name: round(score.score, 2) for name, score in scores.items()},
        "bleu_detail": str(scores["bleu"]),
        "signatures": {name: str(metric.get_signature()) for name, metric in metrics.items()},
    }


def compare_systems(systems: list[tuple[str, list[str]]], references: list[list[str]], resamples: int = 1000) -> dict:
    """Score several systems and test each against the first by paired bootstrap resampling.

    Returns {"systems": [{"name", "bleu", "chrf", "ter", "bleu_detail", "p_value", "bootstrap"}],
    "signatures": {metric: signature with the test's seed and resamples}}; the baseline's p-values are None.
    """
    from sacrebleu.metrics import BLEU, CHRF, TER
    from sacrebleu.significance import PairedTest

    _check_aligned([hypotheses for _, hypotheses in systems], references)
    metrics = {"bleu": BLEU(references=references), "chrf": CHRF(references=references), "ter": TER(references=references)}
    test = PairedTest(systems, dict(metrics), references=None, test_type="bs", n_samples=resamples)
    signatures, results = test()
    # sacreBLEU names its columns after the scores ("BLEU", "chrF2", "TER"), in the order of `metrics`.
    columns = [column for column in results if column != "System"]
    rows = []
    for index, (name, hypotheses) in enumerate(systems):
        row = {"name": name}
        for metric, column in zip(METRICS, columns):
            row[metric] = round(results[column][index].score, 2)
        row["bleu_detail"] = str(BLEU().corpus_score(hypotheses, references))
        # sacreBLEU hands back numpy floats: plain floats keep the report JSON-serialisable.
        row["p_value"] = None if index == 0 else {m: float(results[c][index].p_value) for m, c in zip(METRICS, columns)}
        row["bootstrap"] = {
            m: {"mean": round(float(results[c][index].mean), 2), "ci95": round(float(results[c][index].ci), 2)}
            for m, c in zip(METRICS, columns)
        }
        rows.append(row)
    return {"systems": rows, "signatures": {m: str(signatures[c]) for m, c in zip(METRICS, columns)}}


def _check_aligned(systems: list[list[str]], references: list[list[str]]) -> None:
    # sacreBLEU silently zips unequal lists (and scores only the common prefix): refuse instead.
    lengths = {len(stream) for stream in [*systems, *references]}
    if len(lengths) != 1 or not references:
        raise ValueError(
            f"hypotheses ({[len(s) for s in systems]} sentences) and references "
            f"({[len(r) for r in references]} sentences) must be non-empty and of one length"
        )


def read_references(corpus: Path, split: str, src: str, refs: list[str]) -> tuple[list[str], list[list[str]]]:
    """Source sentences and reference sets (sacreBLEU layout) of one corpus split."""
    columns = read_reference_columns(corpus, split, [src, *refs])
    return columns[0], columns[1:]


def read_reference_columns(corpus: Path, split: str, columns: list[str]) -> list[list[str]]:
    """Columns of one corpus split, each as a list of sentences."""
    from data.corpus import read_split

    rows = read_split(corpus, split, columns)
    if not rows:
        raise UserError(f"{Path(corpus) / (split + '.tsv')}: the split is empty")
    return [[row[k] for row in rows] for k in range(len(columns))]


def evaluate_model_on_split(
    model_dir: Path,
    corpus: Path,
    split: str,
    src: str,
    refs: list[str],
    search=None,
    batch_tokens: int = 12000,
    quantization: str = DEFAULT_QUANTIZATION,
    progress: bool = False,
) -> dict:
    """Translate a split's source column with a model and score it against the reference columns.

    Returns the scores (see `score_system`) with what was measured: corpus, split and its checksum,
    columns, sentence count, search settings, and the translations under "hypotheses".
    """
    from carousel.translate import load_translator
    from model.checkpoint import sha256_file
    from model.search import SearchConfig

    search = search or SearchConfig()
    sources, references = read_references(corpus, split, src, refs)
    translator = load_translator(model_dir, quantization, search)
    search = translator.with_model_defaults(search)
    hypotheses = translate_sentences(translator, sources, search, batch_tokens, progress)
    return {
        **score_system(hypotheses, references),
        "corpus": str(corpus),
        "split": split,
        "split_sha256": sha256_file(Path(corpus) / f"{split}.tsv"),  # of the file read, not the manifest's claim
        "source": src,
        "references": list(refs),
        "sentences": len(sources),
        "beam": search.beam_size,
        "length_penalty": search.length_penalty,
        "channel_weight": search.channel_weight,
        "max_length_ratio": search.max_length_ratio,
        "quantize": quantization,
        "hypotheses": hypotheses,
    }


def translate_sentences(translator, sentences: list[str], search, batch_tokens: int, progress: bool = False) -> list[str]:
    """Best translations, as `carousel translate` gives them, in slices so that a progress bar can follow."""
    from tqdm import tqdm

    hypotheses: list[str] = []
    with tqdm(total=len(sentences), unit=" sentences", file=sys.stderr, disable=not progress, mininterval=0.5) as bar:
        for start in range(0, len(sentences), PROGRESS_CHUNK):
            chunk = sentences[start : start + PROGRESS_CHUNK]
            hypotheses += [nbest[0][0] for nbest in translator.translate_texts(chunk, search, batch_tokens)]
            bar.update(len(chunk))
    return hypotheses


# --- the command ---------------------------------------------------------------------------------


def run_evaluate(args: argparse.Namespace) -> int:
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
    if args.model is not None:
        model_result = evaluate_model_on_split(
            args.model, corpus, args.split, src, refs, search, args.batch_tokens, args.quantize,
            progress=not args.quiet and (args.progress or sys.stderr.isatty()),
        )
        quantized = "" if args.quantize == DEFAULT_QUANTIZATION else f", {args.quantize}"
        systems.insert(0, (f"{Path(args.model).name} (beam {args.beam}{quantized})", model_result["hypotheses"]))
        if args.write_hyps:
            _write_lines(args.write_hyps, model_result["hypotheses"])
        if args.update_card:
            key = _update_card(args, model_result, corpus)
            print(f"recorded evaluation.{key} in {Path(args.model) / 'card.json'}", file=sys.stderr)

    report = {"sentences": len(references[0]), "references": reference_names}
    if corpus is not None:
        report.update(corpus=str(corpus), split=args.split, source=src)
    if args.model is not None:
        report["search"] = {
            "beam": args.beam, "length_penalty": model_result["length_penalty"],
            "channel_weight": model_result["channel_weight"],
            "max_length_ratio": args.max_length_ratio, "quantize": args.quantize,
        }
    report.update(_score_systems(systems, references, args.resamples, model_result))
    try:
        print(json.dumps(report, indent=2, ensure_ascii=False) if args.json else format_report(report, where), flush=True)
    except BrokenPipeError:
        return stop_after_broken_pipe()
    return 0


def _score_systems(systems: list[tuple[str, list[str]]], references: list[list[str]], resamples: int, model_result) -> dict:
    """One system: its scores; several: scores and the paired test against the first."""
    if len(systems) > 1:
        report = compare_systems(systems, references, resamples)
        report["significance"] = {"test": "paired bootstrap resampling", "resamples": resamples, "baseline": systems[0][0]}
        return report
    (name, hypotheses), = systems
    scores = model_result or score_system(hypotheses, references)
    row = {"name": name, **{key: scores[key] for key in (*METRICS, "bleu_detail")}, "p_value": None}
    return {"systems": [row], "signatures": scores["signatures"]}


def format_report(report: dict, where: str) -> str:
    """The human-readable table: one row per system, p-values against the first, then the signatures."""
    references = len(report["references"])
    lines = [f"{report['sentences']} sentences, {references} reference{'s' * (references > 1)} from {where}"]
    if "search" in report:
        search = report["search"]
        lines[0] += (
            f"; model decoding: beam {search['beam']}, length penalty {search['length_penalty']}, "
            f"channel weight {search['channel_weight']}, quantize {search['quantize']}"
        )
    compared = len(report["systems"]) > 1
    width = max(6, *(len(s["name"]) for s in report["systems"]))
    header = f"{'system':<{width}}  {'BLEU':>6}  {'chrF':>6}  {'TER':>6}"
    if compared:
        header += f"  {'p BLEU':>7}  {'p chrF':>7}  {'p TER':>7}"
    lines += ["", header, "-" * len(header)]
    for system in report["systems"]:
        row = f"{system['name']:<{width}}  {system['bleu']:6.2f}  {system['chrf']:6.2f}  {system['ter']:6.2f}"
        if compared:
            p = system["p_value"]
            row += "".join(f"  {'-' if p is None else format(p[m], '.4f'):>7}" for m in METRICS)
        lines.append(row)
    lines.append("")
    if compared:
        significance = report["significance"]
        lines.append(
            f"p: paired bootstrap resampling ({significance['resamples']} resamples) against {significance['baseline']}; "
            "below 0.05 the difference is unlikely to be chance"
        )
    lines += [f"{name}: {report['signatures'][metric]}" for metric, name in zip(METRICS, ("BLEU", "chrF", "TER"))]
    return "\n".join(lines)


def _check_combination(args: argparse.Namespace) -> None:
    if args.model is None and not args.hyp:
        raise UserError("nothing to score: give --model DIR and/or --hyp FILE")
    if args.refs is not None and (args.ref or args.src or args.corpus):
        raise UserError("--refs (reference files) cannot be combined with --corpus/--src/--ref (corpus columns)")
    if args.refs is not None and args.model is not None:
        raise UserError("--model is scored on a corpus split: use --corpus/--ref columns, not --refs files")
    if args.model is None:
        for flag, value in (("--write-hyps", args.write_hyps), ("--update-card", args.update_card)):
            if value:
                raise UserError(f"{flag} needs --model")
        if args.refs is None and not (args.corpus and args.ref):
            raise UserError("--hyp needs references: --refs FILE..., or --corpus DIR --ref COLUMN")


def corpus_settings(args: argparse.Namespace) -> tuple[Path, str, list[str]]:
    """Corpus, source column and reference columns, defaulting to what the model was trained on."""
    trained = _training_corpus(args.model) if args.model is not None else {}
    corpus = args.corpus or (Path(trained["path"]) if "path" in trained else None)
    src = args.src or trained.get("columns", {}).get("source")
    refs = args.ref or ([trained["columns"]["target"]] if "target" in trained.get("columns", {}) else None)
    needed = [("--corpus", corpus), ("--ref", refs)] + ([("--src", src)] if args.model is not None else [])
    for flag, value in needed:
        if not value:
            raise UserError(f"{flag} is needed (the model's card does not name its training corpus)")
    return Path(corpus), src, list(refs)


def _training_corpus(model_dir: Path) -> dict:
    """The card's `corpus` entry; {} when unreadable (loading the model reports what is wrong)."""
    try:
        corpus = json.loads((Path(model_dir) / "card.json").read_text(encoding="utf-8")).get("corpus", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return corpus if isinstance(corpus, dict) else {}


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
    from model.checkpoint import update_card

    key = args.split if args.quantize == DEFAULT_QUANTIZATION else f"{args.split}-{args.quantize}"
    entry = {name: value for name, value in result.items() if name != "hypotheses"}
    entry["command"] = shlex.join(_reproducing_command(args, corpus, result))
    card = json.loads((Path(args.model) / "card.json").read_text(encoding="utf-8"))
    evaluation = card.get("evaluation") if isinstance(card.get("evaluation"), dict) else {}
    update_card(Path(args.model), evaluation={**evaluation, key: entry})
    return key


def _reproducing_command(args: argparse.Namespace, corpus: Path, result: dict) -> list[str]:
    """The `carousel evaluate` command that reproduces the model's scores, defaults spelled out."""
    command = ["carousel", "evaluate", "--model", str(args.model), "--corpus", str(corpus), "--split", args.split]
    command += ["--src", result["source"]]
    for ref in result["references"]:
        command += ["--ref", ref]
    command += ["--beam", str(args.beam), "--batch-tokens", str(args.batch_tokens)]
    command += ["--length-penalty", str(result["length_penalty"]), "--channel-weight", str(result["channel_weight"])]
    command += ["--max-length-ratio", str(args.max_length_ratio)]
    return command + ["--quantize", args.quantize]
