"""Per-sentence confidence: a number in [0, 1] that predicts how good a translation is (sentence chrF / 100).

The forward model's own score says how fluent the output is, not whether it says what the source says:
"Where is the train station?" → "¿Dónde está el prevaricador?" scores better than a correct verse. So
the confidence combines cheap signals computed at translation time (`FEATURES`):

    forward      length-normalised log-probability of the output (the search's score)
    reverse      average log p(source token | output) under the reverse-direction model (forced
                 decoding, model/reranking.py): does the output explain the source? (round trip)
    coverage     share of source tokens that received at least half a unit of attention in total
    fragmented   share of source words the subword model cuts into 4+ pieces or maps to <unk>
    numbers      share of the source's digit groups found in the output (1 without any)
    length       |log(output characters / source characters)|
    repetition   share of the output's word bigrams that repeat an earlier one
    source_len   log(1 + source tokens)
    agreement    mean chrF / 100 of the beam's other finished hypotheses against the best: where the
                 search found several different translations, it was unsure (the lexical similarity
                 of Fomicheva et al. 2020, "Unsupervised Quality Estimation for NMT", on the beam)
    runner_up    how far the best hypothesis's score leads the second's

and maps them through a logistic model, `sigmoid(w · standardised features + b)`, fitted on held-out
validation data against sentence chrF / 100 (`carousel calibrate`, carousel/calibration.py). The fit is
stored beside the weights as confidence.json, recorded (with its checksum) in the card.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from sacrebleu.metrics import CHRF

FILE_NAME = "confidence.json"
FEATURES = ("forward", "reverse", "coverage", "fragmented", "numbers", "length", "repetition", "source_len",
            "agreement", "runner_up")
FRAGMENT_PIECES = 4  # a source word cut into this many pieces or more counts as fragmented
_DIGITS = re.compile(r"\d+")
_CHRF = CHRF()


class CalibrationError(ValueError):
    """confidence.json is missing fields, malformed, or does not match the card."""


def sentence_features(
    source: str,
    output: str,
    forward: float,
    reverse: float,
    alignment: list[list[float]] | None,
    source_pieces: list[str],
    unknown_pieces: int,
    others: list[tuple[str, float]] = (),
) -> dict[str, float]:
    """The signals of one translated sentence (`source_pieces`: its subword pieces, EOS excluded;
    `others`: the beam's other hypotheses, (text, score), best first; none: agreement 1, runner_up 0)."""
    if alignment:
        columns = len(alignment[0]) - 1  # the last column is the source EOS
        totals = [sum(row[j] for row in alignment) for j in range(columns)]
        coverage = sum(total >= 0.5 for total in totals) / columns if columns > 0 else 1.0
    else:
        coverage = 1.0
    pieces_per_word: list[int] = []
    for piece in source_pieces:  # a piece starting with ▁ opens a word
        if piece.startswith("▁") or not pieces_per_word:
            pieces_per_word.append(0)
        pieces_per_word[-1] += 1
    fragmented = sum(count >= FRAGMENT_PIECES for count in pieces_per_word)
    fragmented_share = min(1.0, (fragmented + unknown_pieces) / max(1, len(pieces_per_word)))
    numbers = _DIGITS.findall(source)
    found = set(_DIGITS.findall(output))
    numbers_kept = sum(number in found for number in numbers) / len(numbers) if numbers else 1.0
    length = abs(math.log((len(output.strip()) + 1) / (len(source.strip()) + 1)))
    tokens = output.lower().split()
    bigrams = list(zip(tokens, tokens[1:]))
    repetition = (len(bigrams) - len(set(bigrams))) / len(bigrams) if bigrams else 0.0
    return {
        "forward": forward, "reverse": reverse, "coverage": coverage, "fragmented": fragmented_share,
        "numbers": numbers_kept, "length": length, "repetition": repetition,
        "source_len": math.log1p(len(source_pieces)),
        "agreement": beam_agreement(output, [text for text, _ in others]),
        "runner_up": forward - others[0][1] if others else 0.0,
    }


def beam_agreement(best: str, others: list[str]) -> float:
    """Mean chrF / 100 of the other hypotheses with the best as reference (1 without others)."""
    if not others:
        return 1.0
    return sum(_CHRF.sentence_score(text, [best]).score for text in others) / (100.0 * len(others))


def text_confidence(sentences: list[float | None]) -> float | None:
    """A text's confidence from its translated sentences' (those that needed no translation left out):
    their mean; 1 where none needed translating; None where any has none (an uncalibrated model)."""
    if any(value is None for value in sentences):
        return None
    return round(sum(sentences) / len(sentences), 4) if sentences else 1.0


def baseline(forward: float) -> float:
    """The forward score alone as a number in [0, 1]: the geometric mean of the output's token probabilities."""
    return math.exp(min(0.0, forward))


@dataclass
class Calibration:
    """A fitted logistic model over standardised features."""

    features: list[str]
    mean: list[float]
    scale: list[float]
    weights: list[float]
    bias: float
    info: dict  # what it was fitted on, how well it did (recorded in the card too)

    def __call__(self, features: dict[str, float]) -> float:
        z = self.bias + sum(
            w * (features[name] - m) / s for name, m, s, w in zip(self.features, self.mean, self.scale, self.weights)
        )
        z = max(-30.0, min(30.0, z))
        return 1.0 / (1.0 + math.exp(-z))

    def to_json(self) -> str:
        return json.dumps(
            {"format": "carousel-confidence", "version": 1, "features": self.features, "mean": self.mean,
             "scale": self.scale, "weights": self.weights, "bias": self.bias, "info": self.info},
            indent=2, ensure_ascii=False,
        ) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str = FILE_NAME) -> "Calibration":
        try:
            value = json.loads(text)
            features = list(value["features"])
            calibration = cls(features, [float(x) for x in value["mean"]], [float(x) for x in value["scale"]],
                              [float(x) for x in value["weights"]], float(value["bias"]), dict(value.get("info", {})))
        except (ValueError, KeyError, TypeError) as error:
            raise CalibrationError(f"{where} is not a confidence calibration ({error}); refit it with `carousel calibrate`") from None
        unknown = [name for name in features if name not in FEATURES]
        lengths = {len(features), len(calibration.mean), len(calibration.scale), len(calibration.weights)}
        if unknown or len(lengths) != 1 or any(s <= 0 for s in calibration.scale):
            raise CalibrationError(f"{where}: inconsistent features {features} (unknown: {unknown}); refit it with `carousel calibrate`")
        return calibration


def file_checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_calibration(directory: Path, card: dict) -> tuple[Calibration, str] | None:
    """The model directory's calibration and the reverse model it needs (a path relative to the directory).

    None where the card records none. The file must be the one the card records (sha256)."""
    entry = card.get("confidence")
    if entry is None:
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("reverse_model"), str) or not isinstance(entry.get("sha256"), str):
        raise CalibrationError(f"{directory / 'card.json'}: confidence must record file, sha256 and reverse_model; "
                               f"refit with `carousel calibrate --model {directory}`")
    path = directory / entry.get("file", FILE_NAME)
    if not path.is_file():
        raise CalibrationError(f"{path} is missing but card.json records it; refit with `carousel calibrate --model {directory}`")
    if file_checksum(path) != entry["sha256"]:
        raise CalibrationError(f"{path} has changed since it was fitted (checksum differs from card.json); "
                               f"refit with `carousel calibrate --model {directory}`")
    return Calibration.from_json(path.read_text(encoding="utf-8"), str(path)), entry["reverse_model"]
