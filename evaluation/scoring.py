"""Scoring translations with sacreBLEU: BLEU, chrF and TER of a system, paired bootstrap between
systems, and a model translated and scored on a corpus split.

Several systems are compared with the first by sacreBLEU's paired bootstrap resampling
(`sacrebleu.significance.PairedTest`; seed 12345 unless SACREBLEU_SEED is set). Training, tuning,
benchmarks and `carousel evaluate` all use these functions, so they report the same numbers.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from carousel.errors import UserError
from carousel.data.corpus import split_sha256
from carousel.model.precision import DEFAULT_QUANTIZATION



METRICS = ("bleu", "chrf", "ter")


PROGRESS_CHUNK = 256  # sentences translated between progress-bar updates


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
    from carousel.data.corpus import read_split

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
    load=None,
) -> dict:
    """Translate a split's source column with a model and score it against the reference columns.

    `load(quantization, search)` gives the translator where it is not the model directory's own
    (the shipped default models behind their domain router: routing/translator.py).

    Returns the scores (see `score_system`) with what was measured: corpus, split and its checksum,
    columns, sentence count, search settings, and the translations under "hypotheses".
    """
    from carousel.model.search import SearchConfig
    from carousel.model.loading import load_translator

    search = search or SearchConfig()
    sources, references = read_references(corpus, split, src, refs)
    translator = load(quantization, search) if load else load_translator(model_dir, quantization, search)
    search = translator.with_model_defaults(search)
    hypotheses = translate_sentences(translator, sources, search, batch_tokens, progress)
    return {
        **score_system(hypotheses, references),
        "corpus": str(corpus),
        "split": split,
        "split_sha256": split_sha256(Path(corpus), split),  # of the text read, not the manifest's claim
        "source": src,
        "references": list(refs),
        "sentences": len(sources),
        "beam": search.beam_size,
        "length_penalty": search.length_penalty,
        "channel_weight": search.channel_weight,
        "max_length_ratio": search.max_length_ratio,
        "no_repeat_ngram": search.no_repeat_ngram,  # None where routed: each model its own
        "quantize": quantization,
        "stutters": round(stutter_share(sources, hypotheses), 4),
        "hypotheses": hypotheses,
    }


def repeats_a_word_ngram(text: str, n: int = 3) -> bool:
    """Does `text` hold some sequence of n words (lower-cased, punctuation aside) twice?"""
    words = re.findall(r"\w+", text.lower())
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return len(grams) != len(set(grams))


def stutter_share(sources: list[str], hypotheses: list[str], n: int = 3) -> float:
    """The share of outputs that repeat a word n-gram while their source repeats none: the stutter of
    a search that lost its place ("of the Stanford University of the Stanford University ...")."""
    stutters = sum(repeats_a_word_ngram(h, n) and not repeats_a_word_ngram(s, n) for s, h in zip(sources, hypotheses))
    return stutters / max(len(hypotheses), 1)


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


def score_systems(systems: list[tuple[str, list[str]]], references: list[list[str]], resamples: int, model_result) -> dict:
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
        search = {name: "each model's own" if value is None else value for name, value in report["search"].items()}
        lines[0] += (
            f"; model decoding: beam {search['beam']}, length penalty {search['length_penalty']}, "
            f"channel weight {search['channel_weight']}, no repeat ngram {search.get('no_repeat_ngram', 0)}, "
            f"quantize {search['quantize']}"
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
    if "stutters" in report:
        lines.append(f"stutters: {report['stutters']:.1%} of the model's outputs repeat a 3-word sequence their source "
                     "does not repeat")
    if compared:
        significance = report["significance"]
        lines.append(
            f"p: paired bootstrap resampling ({significance['resamples']} resamples) against {significance['baseline']}; "
            "below 0.05 the difference is unlikely to be chance"
        )
    lines += [f"{name}: {report['signatures'][metric]}" for metric, name in zip(METRICS, ("BLEU", "chrF", "TER"))]
    return "\n".join(lines)
