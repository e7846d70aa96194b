"""Per-sentence confidence on a held-out mixture: does it predict sentence chrF, against the forward score alone?

    python benchmarks/confidence.py [--per-set 1600] [--output runs/confidence] [--models DIR ...]

Sets (nothing is chosen on them): Bible test, FLORES-101 devtest, the second half of newstest2012
(held-out news; the first half calibrates) and the Debian test split (held-out software), both
directions, each sampled with a fixed seed. Reports, pooled and per set: Spearman(confidence, sentence
chrF) and AUROC for chrF < 30 vs chrF >= 50, each beside the baseline (the length-normalised forward
score, exp'd into [0, 1]) on the same sentences; writes a reliability diagram (PNG) of both; and times
decoding with the confidence on and off (each model's own beam, int8). Needs models calibrated by `carousel calibrate`.

How far can sentence chrF against one reference be predicted at all? The Bible corpus holds a second
English translation of every verse (KJV beside WEB), so for es→en the report adds what a second human
translation, used as the predictor, achieves on the Bible test verses: chrF against KJV as a predictor
of chrF against WEB, beside the confidence on the same verses; and what pooled correlation a predictor
would reach that ranked every set at a given within-set correlation (`pooled_for_within`).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

from carousel.evaluation import calibration
from carousel.model.search import SearchConfig
from carousel.model.loading import load_translator
from carousel.routing.translator import AUTO, load_default_translator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", nargs="+", default=["es-en", "en-es"],
                        help="the default service's translators of these pairs: each sentence goes to the model "
                             "of its domain (models/domains.json), as the service routes it")
    parser.add_argument("--models", nargs="+", type=Path, help="these model directories instead, every set through each")
    parser.add_argument("--per-set", type=int, default=1600,
                        help="sentences drawn from each set (default %(default)s: all but 1,651 of Debian test's 3,251)")
    parser.add_argument("--speed-sentences", type=int, default=100)
    parser.add_argument("--output", type=Path, default=Path("runs/confidence"))
    args = parser.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    search = SearchConfig()  # each model's own beam, as the service decodes
    scored, speed = [], {}
    for label, translator in translators(args, search):
        if not translator.has_confidence:
            raise SystemExit(f"{label} has no calibration: run `carousel calibrate --model DIR --reverse DIR`")
        direction = f"{translator.src_lang}-{translator.tgt_lang}"
        for name, spec in calibration.HELD_OUT_SETS.items():
            pairs = calibration.load_pairs(spec, translator.src_lang, translator.tgt_lang, args.per_set, seed=7)
            scored += calibration.collect(translator, f"{name}/{direction}", pairs, search)
        if direction == "es-en":
            report_second_reference(translator, search, args.output)
        sentences = [s for s, _ in calibration.load_pairs(calibration.HELD_OUT_SETS["flores-devtest"],
                                                          translator.src_lang, translator.tgt_lang, args.speed_sentences, seed=8)]
        for label, config in (("off", search), ("on", replace(search, return_confidence=True))):
            started = time.perf_counter()
            translator.translate(sentences, config)
            speed[f"{direction} confidence {label}"] = round(len(sentences) / (time.perf_counter() - started), 2)
    report = {"sentences": len(scored), "speed_sentences_per_second": speed, "sets": {}}
    groups = {"pooled": scored, "pooled, sets equal": balanced(scored)}
    for s in scored:
        groups.setdefault(s.set_name.split("/")[0], []).append(s)
        groups.setdefault(s.set_name, []).append(s)
    for name, members in groups.items():
        chrfs = [s.chrf for s in members]
        report["sets"][name] = {"confidence": calibration.measure([s.confidence for s in members], chrfs),
                                "baseline": calibration.measure([s.baseline for s in members], chrfs)}
    print(f"{'set':28} {'n':>4} {'Spearman conf':>13} {'baseline':>8} {'AUROC conf':>10} {'baseline':>8} {'bad/good':>9}")
    for name, row in report["sets"].items():
        c, b = row["confidence"], row["baseline"]
        print(f"{name:28} {c['sentences']:4d} {c['spearman']:13.3f} {b['spearman']:8.3f} {c['auroc']:10.3f} "
              f"{b['auroc']:8.3f} {c['bad']:4d}/{c['good']}")
    report["pooled_for_within"] = pooled_for_within(scored)
    print("pooled Spearman of a predictor that ranks every set × direction at ρ (chrF plus noise, so each set's "
          "mean is right):", report["pooled_for_within"])
    print("decoding speed (sentences/s, each model's own beam, int8):", speed)
    (args.output / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (args.output / "sentences.jsonl").write_text("".join(json.dumps(
        {"set": s.set_name, "source": s.source, "output": s.output, "reference": s.reference, "chrf": round(s.chrf, 2),
         "confidence": s.confidence, "baseline": round(s.baseline, 4), "signals": s.signals}, ensure_ascii=False) + "\n"
        for s in scored), encoding="utf-8")
    plot(scored, args.output / "reliability.png")
    print(f"wrote {args.output}/report.json, sentences.jsonl, reliability.png")


def balanced(scored: list, seed: int = 9) -> list:
    """As many sentences of every set × direction as the smallest has (a fixed-seed sample), so that the
    pooled figure weighs the sets equally, as the issue's baseline did, whatever their sizes."""
    import random

    by_set: dict[str, list] = {}
    for s in scored:
        by_set.setdefault(s.set_name, []).append(s)
    size = min(map(len, by_set.values()))
    return [s for name in sorted(by_set) for s in random.Random(seed).sample(by_set[name], size)]


def report_second_reference(translator, search: SearchConfig, output: Path) -> dict:
    """Every Bible test verse translated es→en, its chrF against WEB (the reference) predicted by the
    confidence and, for comparison, by its chrF against a second human translation (KJV)."""
    import sacrebleu

    from carousel.data.corpus import read_split

    rows = [row for row in read_split(Path("data/corpora/bible"), "test", ["es", "en", "en_kjv"]) if all(map(str.strip, row))]
    scored = calibration.collect(translator, "bible-test", [(es, web) for es, web, _ in rows], search)
    second = {es: kjv for es, _, kjv in rows}
    by_second = [sacrebleu.sentence_chrf(s.output, [second[s.source]]).score for s in scored]
    chrfs = [s.chrf for s in scored]
    figures = {"verses": len(scored),
               "confidence": calibration.measure([s.confidence for s in scored], chrfs),
               "baseline": calibration.measure([s.baseline for s in scored], chrfs),
               "second_reference": calibration.measure(by_second, chrfs)}
    print(f"Bible test es→en, all {len(scored)} verses, predicting chrF against WEB (Spearman / AUROC):")
    for name, row in figures.items():
        if name != "verses":
            print(f"  {name:18} {row['spearman']:.3f} / {row['auroc']:.3f}")
    (output / "second_reference.json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return figures


def pooled_for_within(scored, targets=(0.5, 0.6, 0.7, 0.731), draws: int = 20) -> dict[str, float]:
    """What pooled correlation a predictor would reach on this mixture if it ranked the sentences of every
    set × direction at Spearman ρ and knew each set's mean quality: chrF plus Gaussian noise, its size
    found by bisection per set. Says how good within-set ranking must be for a pooled target."""
    import numpy as np
    from scipy.stats import spearmanr

    chrfs = np.array([s.chrf for s in scored])
    names = np.array([s.set_name for s in scored])
    rng = np.random.default_rng(0)
    found = {}
    for target in targets:
        pooled = []
        for _ in range(draws):
            predicted = chrfs.copy()
            for name in sorted(set(names)):
                members = names == name
                noise, low, high = rng.normal(size=members.sum()), 0.0, 200.0
                for _ in range(30):
                    middle = (low + high) / 2
                    if spearmanr(chrfs[members] + middle * noise, chrfs[members]).statistic > target:
                        low = middle
                    else:
                        high = middle
                predicted[members] += low * noise
            pooled.append(spearmanr(predicted, chrfs).statistic)
        found[f"within {target}"] = round(float(np.mean(pooled)), 3)
    return found


def translators(args, search: SearchConfig):
    """(label, translator) of each model directory asked for, else of each pair's default service."""
    if args.models:
        for directory in args.models:
            yield str(directory), load_translator(directory, "int8", device="cpu", confidence=True)
        return
    asking = replace(search, return_confidence=True)  # loads each model's calibration and reverse model
    for pair in args.pairs:
        source, target = pair.split("-")
        yield pair, load_default_translator(source, target, AUTO, "int8", search=asking, device="cpu")


def plot(scored, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chrfs = [s.chrf for s in scored]
    figure, axis = plt.subplots(figsize=(5.5, 5))
    axis.plot([0, 1], [0, 1], ":", color="grey", label="perfect calibration")
    for label, values, marker in (("confidence", [s.confidence for s in scored], "o"),
                                  ("baseline: exp(length-normalised score)", [s.baseline for s in scored], "s")):
        rows = calibration.reliability(values, chrfs)
        axis.plot([r[0] for r in rows], [r[1] for r in rows], marker=marker, label=label)
        for x, y, n in rows:
            axis.annotate(str(n), (x, y), fontsize=7, textcoords="offset points", xytext=(3, -9))
    axis.set_xlabel("predicted (mean per bin)")
    axis.set_ylabel("sentence chrF / 100 (mean per bin)")
    axis.set_title(f"Reliability on the held-out mixture ({len(scored)} sentences)")
    axis.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
