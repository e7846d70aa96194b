"""Fitting and measuring the per-sentence confidence (model/confidence.py) on held-out data.

`collect` translates source sentences with the signals on and scores each output with sentence chrF;
`fit` fits the logistic model (numpy, Newton steps with a little L2) against chrF / 100; `measure`
reports Spearman's rank correlation with chrF and the AUROC of telling bad (chrF < 30) from good
(chrF >= 50) translations. `carousel calibrate` and benchmarks/confidence.py use them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import sacrebleu
from scipy.stats import rankdata, spearmanr

from carousel.model.confidence import FEATURES, Calibration, baseline

BAD_CHRF, GOOD_CHRF = 30.0, 50.0
L2 = 1e-3


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
        scored.append(Scored(set_name, source, reference, best.text, best.signals, chrf, best.confidence))
    return scored


def fit(scored: list[Scored], features: tuple[str, ...] = FEATURES, iterations: int = 50) -> Calibration:
    """Logistic model of chrF / 100 over standardised features (each set weighted equally)."""
    x = np.array([[s.signals[name] for name in features] for s in scored], dtype=np.float64)
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

# name → ("corpus", directory, split) or ("files", path prefix: PREFIX.{lang})
VALIDATION_SETS = {  # what `carousel calibrate` fits on: validation splits only
    "bible-valid": ("corpus", "data/corpora/bible", "valid"),
    "debian-valid": ("corpus", "data/corpora/debian", "valid"),
    "flores-dev": ("files", str(SHARED / "evalsets/flores101/dev"), None),
    "news-2011": ("files", str(SHARED / "corpora/wmt-news/newstest2011"), None),
}
HELD_OUT_SETS = {  # what benchmarks/confidence.py reports on; nothing is chosen on them
    "bible-test": ("corpus", "data/corpora/bible", "test"),
    "debian-test": ("corpus", "data/corpora/debian", "test"),
    "flores-devtest": ("files", str(SHARED / "evalsets/flores101/devtest"), None),
    "news-2012": ("files", str(SHARED / "corpora/wmt-news/newstest2012"), None),
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
    pairs = [(s, t) for s, t in pairs if s.strip() and t.strip()]
    return random.Random(seed).sample(pairs, min(count, len(pairs)))
