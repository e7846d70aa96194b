"""Per-sentence confidence: a number in [0, 1] that predicts how good a translation is (sentence chrF / 100).

The forward model's own score says how fluent the output is, not whether it says what the source says:
"Where is the train station?" → "¿Dónde está el prevaricador?" scores better than a correct verse. So
the confidence combines cheap signals computed at translation time (`FEATURES`):

    forward      length-normalised log-probability of the output (the search's score)
    token_mean   mean log-probability of the output's tokens, EOS included: Fomicheva et al.'s "TP".
                 The search's score divides by a length penalty, not the length, so it favours long
                 outputs; per token, the same evidence ranks held-out sentences better (README, Confidence)
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
validation data against sentence chrF / 100 (`carousel calibrate`, evaluation/calibration.py). The fit is
stored beside the weights as confidence.json, recorded (with its checksum) in the card.

The signals above say how unsure the model was; they hardly say what kind of sentence it was given. A
calibration may also hold a `Representation` (confidence.safetensors, its checksum in confidence.json):
the mean encoder state of the source (forward model) and of the output (reverse model), each projected
onto the main axes of the calibration data's states, and `neighbours`: the chrF / 100 that the
calibration sentences nearest to this source (cosine, in the projected space) were translated with, each
weighted by how near it lies (exp(similarity / temperature)).
"Sentences like this one went this well" is what lifts ranking within unfamiliar sets (README, Confidence).
With a representation, each signal also enters multiplied by `neighbours` (`interactions`): how much a
signal says depends on the kind of sentence (inside the Bible model's domain the forward score ranks
verses well; far outside it, hardly at all).

One rule stands outside the fit: output left in the source language ("Hola" → "Hola") is not a
translation, however sure the model was. `untranslated` is the share of the output's words copied from
the source that are far commoner in the source language than in the target's (wordfreq's Zipf
frequencies, so names like "Madrid" or "Linux" pass); the confidence is multiplied by 1 − that share.
Validation data holds too few such copies for a fitted weight to notice them.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import load as load_tensors
from safetensors.numpy import save as save_tensors

from carousel.fileio import sha256_file
from carousel.model.spans import protected_spans

FILE_NAME = "confidence.json"
REPRESENTATION_FILE = "confidence.safetensors"
FEATURES = ("forward", "reverse", "coverage", "fragmented", "numbers", "length", "repetition", "source_len",
            "agreement", "runner_up", "token_mean")
INTERACTIONS = tuple(f"{name}*neighbours" for name in FEATURES)  # `interactions`' names
FRAGMENT_PIECES = 4  # a source word cut into this many pieces or more counts as fragmented
# A copied word counts as untranslated when its Zipf frequency (log10 per billion words) in the source
# language beats the target's by this much: "hola" 5.3 against 3.1 in English, "siempre" 5.9 / 2.1, but
# "Madrid" 5.4 / 4.3, "Barcelona" 5.0 / 4.2, "Linux" 3.9 / 4.0.
UNTRANSLATED_MARGIN = 1.5
_DIGITS = re.compile(r"\d+")
_WORDS = re.compile(r"[^\W\d_]{2,}")  # runs of two or more letters


@functools.cache
def _chrf():
    from sacrebleu.metrics import CHRF  # here, not at the top: translation without a confidence never needs it

    return CHRF()


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
    token_mean: float | None = None,
) -> dict[str, float]:
    """The signals of one translated sentence (`source_pieces`: its subword pieces, EOS excluded;
    `others`: the beam's other hypotheses, (text, score), best first; none: agreement 1, runner_up 0;
    `token_mean`: the output's mean token log-probability, the forward score where it is not known)."""
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
        "token_mean": forward if token_mean is None else token_mean,
    }


def untranslated_share(source: str, output: str, src_lang: str, tgt_lang: str) -> float:
    """Share of the output's words left in the source language: copied from the source, and far commoner
    there than in the target language (0 where wordfreq knows either language not)."""
    languages = _wordfreq_languages()
    words = _WORDS.findall(_without_spans(output))  # a URL's or path's words are kept on purpose
    if not words or src_lang not in languages or tgt_lang not in languages:
        return 0.0
    copied = {word.lower() for word in _WORDS.findall(_without_spans(source))}
    untranslated = [word for word in words if word.lower() in copied and
                    _zipf(word, src_lang) - _zipf(word, tgt_lang) >= UNTRANSLATED_MARGIN]
    return len(untranslated) / len(words)


@functools.cache
def _wordfreq_languages() -> frozenset[str]:
    """The languages wordfreq has lists for (it globs its data folder on every call: once per process here)."""
    import wordfreq  # imported on first use: 58 MB of word lists that training and `--help` never need

    return frozenset(wordfreq.available_languages())


def _zipf(word: str, language: str) -> float:
    import wordfreq

    return wordfreq.zipf_frequency(word, language)


def _without_spans(text: str) -> str:
    for span in protected_spans(text):
        text = text.replace(span, " ")
    return text


def beam_agreement(best: str, others: list[str]) -> float:
    """Mean chrF / 100 of the other hypotheses with the best as reference (1 without others)."""
    if not others:
        return 1.0
    chrf = _chrf()
    return sum(chrf.sentence_score(text, [best]).score for text in others) / (100.0 * len(others))


def text_confidence(sentences: list[float | None]) -> float | None:
    """A text's confidence from its translated sentences' (those that needed no translation left out):
    their mean; 1 where none needed translating; None where any has none (an uncalibrated model)."""
    if any(value is None for value in sentences):
        return None
    return round(sum(sentences) / len(sentences), 4) if sentences else 1.0


def interactions(features: dict[str, float]) -> dict[str, float]:
    """Each signal times `neighbours` (named "SIGNAL*neighbours"), so a signal's weight can follow the kind
    of sentence (chosen by 5-fold cross-validation on the validation sets: README, Confidence)."""
    return {label: features[name] * features["neighbours"] for name, label in zip(FEATURES, INTERACTIONS) if name in features}


def baseline(forward: float) -> float:
    """The forward score alone as a number in [0, 1]: the geometric mean of the output's token probabilities."""
    return math.exp(min(0.0, forward))


@dataclass
class Representation:
    """What kind of sentence it was: projections of mean encoder states, and the quality of neighbours.

    `source_axes` [K, D] and `output_axes` [k, D] are principal axes of the calibration sentences' mean
    encoder states (source under the forward model, output under the reverse model), with their means;
    the first k of each are features. `memory` [N, K] holds the calibration sources'
    projections (unit length) and `memory_quality` [N] their chrF / 100. `neighbours` is the mean
    quality of the nearest `neighbours` memory rows, each weighted by exp(cosine / `temperature`), or by
    1 where `temperature` is None (calibrations fitted before weighting was chosen)."""

    source_mean: np.ndarray
    source_axes: np.ndarray
    output_mean: np.ndarray
    output_axes: np.ndarray
    memory: np.ndarray
    memory_quality: np.ndarray
    neighbours: int
    temperature: float | None = None

    @property
    def components(self) -> int:
        """How many projections of each side are features (the source's further axes serve `memory` only)."""
        return len(self.output_axes)

    @property
    def feature_names(self) -> list[str]:
        return ([f"source_pc{i + 1}" for i in range(self.components)]
                + [f"output_pc{i + 1}" for i in range(self.components)] + ["neighbours"])

    def features(self, source_state: np.ndarray, output_state: np.ndarray, exclude: int | None = None) -> dict[str, float]:
        """The representation features of one sentence (`exclude`: a memory row to leave out, its own)."""
        source = (source_state - self.source_mean) @ self.source_axes.T
        output = (output_state - self.output_mean) @ self.output_axes.T
        similarity = self.memory @ (source / max(float(np.linalg.norm(source)), 1e-9))
        if exclude is not None:
            similarity[exclude] = -np.inf
        count = min(self.neighbours, len(similarity) - (exclude is not None))
        nearest = np.argpartition(-similarity, count - 1)[:count]
        weights = np.ones(count)
        if self.temperature is not None:
            weights = np.exp((similarity[nearest] - similarity[nearest].max()) / self.temperature)
        quality = float(weights @ self.memory_quality[nearest] / weights.sum())
        values = list(source[: self.components]) + list(output) + [quality]
        return dict(zip(self.feature_names, (float(v) for v in values)))

    ARRAYS = ("source_mean", "source_axes", "output_mean", "output_axes", "memory", "memory_quality")

    def to_bytes(self) -> bytes:
        arrays = {name: np.ascontiguousarray(getattr(self, name), dtype=np.float32) for name in self.ARRAYS}
        return save_tensors(arrays, metadata={"neighbours": str(self.neighbours)})

    @classmethod
    def from_bytes(cls, data: bytes, neighbours: int, temperature: float | None, where: str) -> "Representation":
        try:
            arrays = load_tensors(data)
            value = cls(**{name: arrays[name].astype(np.float64) for name in cls.ARRAYS}, neighbours=neighbours,
                        temperature=temperature)
        except Exception as error:  # safetensors raises its own errors for a damaged file
            raise CalibrationError(f"{where} is not a confidence representation ({error}); refit it with `carousel calibrate`") from None
        dims = value.source_axes.shape[1]
        if not (value.source_mean.shape == value.output_mean.shape == (dims,) and value.output_axes.shape[1] == dims
                and value.memory.shape == (len(value.memory_quality), len(value.source_axes))
                and len(value.output_axes) <= len(value.source_axes) and neighbours >= 1 and len(value.memory) >= 1):
            raise CalibrationError(f"{where}: inconsistent shapes; refit it with `carousel calibrate`")
        return value


@dataclass
class Calibration:
    """A fitted logistic model over standardised features (signals, then any representation's)."""

    features: list[str]
    mean: list[float]
    scale: list[float]
    weights: list[float]
    bias: float
    info: dict  # what it was fitted on, how well it did (recorded in the card too)
    representation: Representation | None = None

    def __call__(self, features: dict[str, float], states: tuple[np.ndarray, np.ndarray] | None = None) -> float:
        """The confidence of a sentence with these signals (and, for a representation, its mean encoder
        states: source under the forward model, output under the reverse model), less any share of it
        left untranslated."""
        if self.representation is not None:
            if states is None:
                raise ValueError("this calibration needs the sentence's encoder states")
            features = {**features, **self.representation.features(*states)}
            features.update(interactions(features))
        return self.score(features) * (1.0 - features.get("untranslated", 0.0))

    def score(self, features: dict[str, float]) -> float:
        """The logistic model over every feature it was fitted on (signals and representation's)."""
        z = self.bias + sum(
            w * (features[name] - m) / s for name, m, s, w in zip(self.features, self.mean, self.scale, self.weights)
        )
        z = max(-30.0, min(30.0, z))
        return 1.0 / (1.0 + math.exp(-z))

    def to_json(self, representation_sha256: str | None = None) -> str:
        value = {"format": "carousel-confidence", "version": 1, "features": self.features, "mean": self.mean,
                 "scale": self.scale, "weights": self.weights, "bias": self.bias, "info": self.info}
        if self.representation is not None:
            value["representation"] = {"file": REPRESENTATION_FILE, "sha256": representation_sha256,
                                       "neighbours": self.representation.neighbours,
                                       "temperature": self.representation.temperature}
        return json.dumps(value, indent=2, ensure_ascii=False) + "\n"

    def save(self, directory: Path) -> Path:
        """Write confidence.json (and the representation beside it, its checksum inside); the json's path."""
        checksum = None
        if self.representation is not None:
            data = self.representation.to_bytes()
            (directory / REPRESENTATION_FILE).write_bytes(data)
            checksum = hashlib.sha256(data).hexdigest()
        else:
            (directory / REPRESENTATION_FILE).unlink(missing_ok=True)
        path = directory / FILE_NAME
        path.write_text(self.to_json(checksum), encoding="utf-8")
        return path

    @classmethod
    def from_json(cls, text: str, where: str = FILE_NAME) -> "Calibration":
        try:
            value = json.loads(text)
            features = list(value["features"])
            calibration = cls(features, [float(x) for x in value["mean"]], [float(x) for x in value["scale"]],
                              [float(x) for x in value["weights"]], float(value["bias"]), dict(value.get("info", {})))
        except (ValueError, KeyError, TypeError) as error:
            raise CalibrationError(f"{where} is not a confidence calibration ({error}); refit it with `carousel calibrate`") from None
        representation = value.get("representation")
        known = set(FEATURES)
        if representation is not None:
            calibration.representation = _read_representation(representation, Path(where).parent, where)
            known |= set(calibration.representation.feature_names) | set(INTERACTIONS)
        unknown = [name for name in features if name not in known]
        lengths = {len(features), len(calibration.mean), len(calibration.scale), len(calibration.weights)}
        if unknown or len(lengths) != 1 or any(s <= 0 for s in calibration.scale):
            raise CalibrationError(f"{where}: inconsistent features {features} (unknown: {unknown}); refit it with `carousel calibrate`")
        return calibration


def _read_representation(entry, directory: Path, where: str) -> Representation:
    """The representation confidence.json names: the file beside it, with the checksum it records."""
    temperature = entry.get("temperature") if isinstance(entry, dict) else None
    if (not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str) or not isinstance(entry.get("neighbours"), int)
            or not (temperature is None or (isinstance(temperature, (int, float)) and temperature > 0))):
        raise CalibrationError(f"{where}: representation must record file, sha256, neighbours and a positive temperature "
                               "(or none); refit it with `carousel calibrate`")
    path = directory / REPRESENTATION_FILE
    if not path.is_file():
        raise CalibrationError(f"{path} is missing but {where} records it; refit it with `carousel calibrate`")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise CalibrationError(f"{path} has changed since it was fitted (checksum differs from {where}); refit it with `carousel calibrate`")
    return Representation.from_bytes(data, entry["neighbours"], temperature, str(path))


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
    if sha256_file(path) != entry["sha256"]:
        raise CalibrationError(f"{path} has changed since it was fitted (checksum differs from card.json); "
                               f"refit with `carousel calibrate --model {directory}`")
    return Calibration.from_json(path.read_text(encoding="utf-8"), str(path)), entry["reverse_model"]

