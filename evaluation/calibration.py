"""Fitting and measuring the per-sentence confidence (model/confidence.py) on held-out data.

`collect` translates source sentences with the signals on and scores each output with sentence chrF;
`fit` fits the representation (principal axes of the sentences' mean encoder states, and the memory of
their qualities the neighbours feature reads) and the logistic model over the signals and those features
(numpy, Newton steps with a little L2) against chrF / 100; `measure`
reports Spearman's rank correlation with chrF and the AUROC of telling bad (chrF < 30) from good
(chrF >= 50) translations. `carousel calibrate` and benchmarks/confidence.py use them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import sacrebleu
from scipy.stats import rankdata, spearmanr

from carousel.model.confidence import FEATURES, Calibration, Representation, baseline, interactions

BAD_CHRF, GOOD_CHRF = 30.0, 50.0
L2 = 1e-3
# Chosen by 5-fold cross-validation on the validation sets: 32 projections of each side as
# features, 64 for finding neighbours, the 100 nearest weighted by exp(cosine / 0.05).
COMPONENTS, MEMORY_AXES, NEIGHBOURS, TEMPERATURE = 32, 64, 100, 0.05


@dataclass
class Scored:
    """One translated held-out sentence."""

    set_name: str
    source: str
    reference: str
    output: str
    signals: dict[str, float]
    chrf: float
    confidence: float | None = None
    states: tuple | None = None  # mean encoder states (source, output): what the representation is fitted on

    @property
    def baseline(self) -> float:
        return baseline(self.signals["forward"])


def collect(translator, set_name: str, pairs: list[tuple[str, str]], search, batch_tokens: int = 12000) -> list[Scored]:
    """Translate each (source, reference) with the signals on; each output's sentence chrF."""
    search = replace(search, return_confidence=True, nbest=1)
    results = translator.translate([source for source, _ in pairs], search, batch_tokens)
    scored = []
    for (source, reference), nbest in zip(pairs, results):
        best = nbest[0]
        if best.signals is None:  # an empty source
            continue
        chrf = sacrebleu.sentence_chrf(best.text, [reference]).score
        scored.append(Scored(set_name, source, reference, best.text, best.signals, chrf, best.confidence, best.states))
    return scored


def fit(scored: list[Scored], features: tuple[str, ...] = FEATURES, components: int = COMPONENTS,
        memory_axes: int = MEMORY_AXES, neighbours: int = NEIGHBOURS, temperature: float | None = TEMPERATURE,
        interact: bool = True, iterations: int = 50) -> Calibration:
    """Logistic model of chrF / 100 over standardised features (each set weighted equally): the signals,
    and with `components` > 0 a representation's (each sentence's neighbours found among the others)
    and, with `interact`, each signal times its neighbours."""
    rows = [{name: s.signals[name] for name in features} for s in scored]
    representation = None
    if components > 0:
        representation = fit_representation(scored, components, memory_axes, neighbours, temperature)
        for index, (row, s) in enumerate(zip(rows, scored)):
            row.update(representation.features(*s.states, exclude=index))
            if interact:
                row.update(interactions(row))
    names = list(rows[0])
    calibration = fit_logistic(rows, names, scored, iterations)
    calibration.representation = representation
    return calibration


def fit_representation(scored: list[Scored], components: int, memory_axes: int, neighbours: int,
                       temperature: float | None = TEMPERATURE) -> Representation:
    """Principal axes of the mean encoder states of each side, and the memory of the sentences' qualities."""
    if any(s.states is None for s in scored):
        raise ValueError("fitting a representation needs each sentence's encoder states (translate with a reverse model)")
    sources = np.array([s.states[0] for s in scored], dtype=np.float64)
    outputs = np.array([s.states[1] for s in scored], dtype=np.float64)
    memory_axes = min(memory_axes, len(scored) - 1, sources.shape[1])
    components = min(components, memory_axes)
    source_mean, source_axes = principal_axes(sources, memory_axes)
    output_mean, output_axes = principal_axes(outputs, components)
    memory = (sources - source_mean) @ source_axes.T
    memory /= np.maximum(np.linalg.norm(memory, axis=1, keepdims=True), 1e-9)
    return Representation(source_mean, source_axes, output_mean, output_axes, memory,
                          np.array([s.chrf / 100.0 for s in scored]), neighbours, temperature)


def principal_axes(x: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The mean of the rows of `x` and its `count` main directions ([count, D], by singular value)."""
    mean = x.mean(axis=0)
    _, _, directions = np.linalg.svd(x - mean, full_matrices=False)
    return mean, directions[:count]


def fit_logistic(rows: list[dict[str, float]], features: list[str], scored: list[Scored], iterations: int) -> Calibration:
    """The logistic model of each sentence's chrF / 100 over its row of features."""
    x = np.array([[row[name] for name in features] for row in rows], dtype=np.float64)
    y = np.array([s.chrf / 100.0 for s in scored])
    counts = {name: sum(s.set_name == name for s in scored) for name in {s.set_name for s in scored}}
    weight = np.array([len(scored) / (len(counts) * counts[s.set_name]) for s in scored])
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    design = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    theta = np.zeros(design.shape[1])
    penalty = L2 * len(x) * np.eye(design.shape[1])
    penalty[-1, -1] = 0.0
    for _ in range(iterations):  # Newton's method on the weighted cross-entropy with fractional targets
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ theta, -30, 30)))
        gradient = design.T @ (weight * (p - y)) + penalty @ theta
        hessian = (design * (weight * p * (1 - p))[:, None]).T @ design + penalty
        step = np.linalg.solve(hessian + 1e-9 * np.eye(len(theta)), gradient)
        theta -= step
        if np.abs(step).max() < 1e-8:
            break
    return Calibration(list(features), mean.tolist(), scale.tolist(), theta[:-1].tolist(), float(theta[-1]), {})


def cross_validated(scored: list[Scored], folds: int = 5, seed: int = 0, **settings) -> list[float]:
    """Each sentence's confidence from a calibration fitted without it (`folds`-fold, `fit`'s settings):
    the honest figure to report, where confidences of the fitted sentences would flatter the fit."""
    fold = np.random.default_rng(seed).integers(0, folds, len(scored))
    confidences = [0.0] * len(scored)
    for held in range(folds):
        fitted = fit([s for s, f in zip(scored, fold) if f != held], **settings)
        for index in np.flatnonzero(fold == held):
            confidences[index] = fitted(scored[index].signals, scored[index].states)
    return confidences


def measure_by_set(scored: list[Scored], confidences: list[float]) -> dict[str, float]:
    """Spearman with chrF within each set: the ranking a user needs inside one kind of text, which a
    pooled figure flatters where sets differ in mean quality."""
    by_set: dict[str, list[int]] = {}
    for index, s in enumerate(scored):
        by_set.setdefault(s.set_name, []).append(index)
    return {name: round(float(measure([confidences[i] for i in members], [scored[i].chrf for i in members])["spearman"]), 4)
            for name, members in by_set.items()}


def auroc(scores: list[float], positive: list[bool]) -> float:
    """Area under the ROC curve (Mann-Whitney), ties counted half."""
    ranks = rankdata(scores)
    pos = np.array(positive)
    n_pos, n_neg = pos.sum(), (~pos).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def measure(confidences: list[float], chrfs: list[float]) -> dict:
    """Spearman with chrF, and AUROC for good (chrF >= 50) against bad (< 30), with the counts."""
    rho = spearmanr(confidences, chrfs).statistic if len(chrfs) > 2 else float("nan")
    kept = [(c, f >= GOOD_CHRF) for c, f in zip(confidences, chrfs) if f < BAD_CHRF or f >= GOOD_CHRF]
    return {
        "sentences": len(chrfs),
        "spearman": round(float(rho), 4),
        "auroc": round(auroc([c for c, _ in kept], [g for _, g in kept]), 4),
        "bad": sum(not g for _, g in kept),
        "good": sum(g for _, g in kept),
    }


def reliability(confidences: list[float], chrfs: list[float], bins: int = 10) -> list[tuple[float, float, int]]:
    """(mean confidence, mean chrF / 100, count) per equal-width confidence bin."""
    rows = []
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        members = [(c, f) for c, f in zip(confidences, chrfs) if low <= c < high or (b == bins - 1 and c == 1.0)]
        if members:
            rows.append((float(np.mean([c for c, _ in members])), float(np.mean([f for _, f in members])) / 100, len(members)))
    return rows


# -- the held-out sets ------------------------------------------------------------------------------

SHARED = __import__("pathlib").Path(__file__).resolve().parents[1].parent / "shared"  # beside the repository

# name → ("corpus", directory, split) or ("files", path prefix: PREFIX.{lang}, (first line, end) or None)
NEWS_2012 = str(SHARED / "corpora/wmt-news/newstest2012")
NEWS_2012_SPLIT = 1500  # its first 1,500 lines calibrate, the other 1,503 are held out (no other news is)
VALIDATION_SETS = {  # what `carousel calibrate` fits on: validation splits only
    "bible-valid": ("corpus", "data/corpora/bible", "valid"),
    "debian-valid": ("corpus", "data/corpora/debian", "valid"),
    "flores-dev": ("files", str(SHARED / "evalsets/flores101/dev"), None),
    "news-2011": ("files", str(SHARED / "corpora/wmt-news/newstest2011"), None),  # for models not trained on it
    "news-2012-valid": ("files", NEWS_2012, (0, NEWS_2012_SPLIT)),
}
HELD_OUT_SETS = {  # what benchmarks/confidence.py reports on; nothing is chosen on them
    "bible-test": ("corpus", "data/corpora/bible", "test"),
    "debian-test": ("corpus", "data/corpora/debian", "test"),
    "flores-devtest": ("files", str(SHARED / "evalsets/flores101/devtest"), None),
    "news-2012": ("files", NEWS_2012, (NEWS_2012_SPLIT, None)),
}


def load_pairs(spec: tuple[str, str, str | None], src: str, tgt: str, count: int, seed: int = 1) -> list[tuple[str, str]]:
    """Up to `count` (source, reference) pairs of a set, drawn with a fixed seed, empty ones left out."""
    import random
    from pathlib import Path

    from carousel.data.corpus import read_split

    kind, where, split = spec
    if kind == "corpus":
        pairs = [tuple(row) for row in read_split(Path(where), split, [src, tgt])]
    else:
        sources = Path(f"{where}.{src}").read_text(encoding="utf-8").splitlines()
        targets = Path(f"{where}.{tgt}").read_text(encoding="utf-8").splitlines()
        pairs = list(zip(sources, targets))
        if split is not None:
            pairs = pairs[split[0]:split[1]]
    pairs = [(s, t) for s, t in pairs if s.strip() and t.strip()]
    return random.Random(seed).sample(pairs, min(count, len(pairs)))
