"""Which domain a sentence comes from, so the right model translates it.

A language pair may have several models, one per domain (models/general-es-en and models/bible-es-en):
each model's card.json names its `domain`. `models/domains.json` holds, per source language, a
naive Bayes classifier over lower-cased words and word pairs, fitted by `carousel prepare domains` on
the training text of each domain. Requests that name no domain are routed by it; a text leaves the
default domain only on clear evidence (`margin`), because sending ordinary text to the Bible model
costs far more than the reverse. Clients that know their domain say so (the `domain` request field).

Texts that come together (the lines of a file, the strings of one request) are routed in context: each
text's score is blended with the mean score of its neighbours (`CONTEXT` texts either side, weight
`CONTEXT_WEIGHT`), because a short verse such as "On some have compassion, making a distinction," reads
as ordinary English alone but not among other verses, while a clearly ordinary line inside a Bible file
still leaves it.

Torch-free; stored as JSON (never pickled).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from carousel.errors import UserError
from carousel.fileio import write_atomically

FORMAT = 1
FILENAME = "domains.json"
DEFAULT_DOMAIN = "general"
# Chosen with PRIOR on validation sets (benchmarks/domains.py --margins ... --priors ...): the setting that
# keeps misrouting of short everyday sentences (Tatoeba held back) and short strings under 1% in both
# languages, each text read alone, with the most Bible valid verses still routed to the Bible model.
MARGIN = 0.2
# Chosen on the same validation sets read as files, plus a file alternating 5 Bible valid verses with 5
# FLORES dev sentences (`python benchmarks/domains.py --contexts 0:0,1:0.5,2:0.5,...`): mean correct
# routing over the four, es 99.66% → 99.88%, en 98.45% → 99.36%; wider windows or more weight send more
# of the alternating file astray.
CONTEXT = 1
CONTEXT_WEIGHT = 0.5
# Evidence grows with a text's length: a score is the sum of its features' log-likelihood ratios over
# their count plus PRIOR, so one Bible-leaning word ("y", "días") cannot send "Zapatos y accesorios" or
# "Buenos días" to the Bible model, while a verse's dozens of features barely feel it. Chosen on
# validation sets (benchmarks/domains.py --priors): see the README's Domains section.
PRIOR = 32.0
WORD = re.compile(r"\w+", re.UNICODE)


def valid_context(context: int, weight: float) -> bool:
    """Whether a context window and weight make sense: no negative window, a weight in [0, 1]."""
    return context >= 0 and 0 <= weight <= 1


class DomainsError(UserError):
    """domains.json is missing a part or cannot be read."""


def words(text: str) -> list[str]:
    """Lower-cased words, with digits folded to 0 (numbers say little about the domain)."""
    return [re.sub(r"\d", "0", word) for word in WORD.findall(text.lower())]


def features(text: str) -> list[str]:
    """Words and word bigrams (with sentence edges): "y dijo" says more about a verse than either word."""
    unigrams = words(text)
    edged = ["<s>", *unigrams, "</s>"]
    return unigrams + [f"{a} {b}" for a, b in zip(edged, edged[1:])]


def _log_probs(parts: list[list[str]], vocabulary: list[str]) -> dict[str, float]:
    """log p(feature) of an equal mixture of the parts, each add-one smoothed: a large part (software
    strings) does not drown a small one (news) in the default domain."""
    mixture = dict.fromkeys(vocabulary, 0.0)
    for texts in parts:
        counts = Counter(f for text in texts for f in features(text))
        denominator = sum(counts[f] for f in vocabulary) + len(vocabulary)
        for f in vocabulary:
            mixture[f] += (counts[f] + 1) / denominator / len(parts)
    return {f: math.log(p) for f, p in mixture.items()}


@dataclass
class DomainClassifier:
    """Naive Bayes between the default domain and each other domain, decided per feature on average.

    For each other domain, a table of log p(feature | domain) - log p(feature | default). A text goes to
    the other domain whose score over the text's known features is highest, if it exceeds `margin`;
    else to the default. The score is a mean shrunk towards 0 (no evidence): sum / (count + `prior`).
    The mean (not the sum) keeps long sentences from looking certain; the prior keeps short ones from it.
    """

    log_ratios: dict[str, dict[str, float]]  # other domain -> feature -> log-likelihood ratio
    default: str = DEFAULT_DOMAIN
    margin: float = MARGIN
    context: int = CONTEXT  # neighbouring texts either side that `classify_in_context` reads
    context_weight: float = CONTEXT_WEIGHT  # their mean score's share of each text's score
    prior: float = 0.0  # pseudo-count of no-evidence features (0 in routers fitted before it existed)

    @classmethod
    def fit(cls, parts_by_domain: dict[str, list[list[str]]], default: str = DEFAULT_DOMAIN,
            vocabulary_size: int = 60000, margin: float = MARGIN, context: int = CONTEXT,
            context_weight: float = CONTEXT_WEIGHT, prior: float = PRIOR) -> "DomainClassifier":
        """`parts_by_domain`: per domain, its parts' texts (a part: one source of text)."""
        if default not in parts_by_domain or len(parts_by_domain) < 2:
            raise DomainsError(f"fitting a domain classifier needs text of {default!r} and one other domain")
        total = Counter(f for parts in parts_by_domain.values() for texts in parts for text in texts
                        for f in features(text))
        vocabulary = sorted(f for f, _ in total.most_common(vocabulary_size))
        base = _log_probs(parts_by_domain[default], vocabulary)
        ratios = {}
        for domain, parts in sorted(parts_by_domain.items()):
            if domain != default:
                other = _log_probs(parts, vocabulary)
                ratios[domain] = {f: round(other[f] - base[f], 3) for f in vocabulary}
        return cls(ratios, default, margin, context, context_weight, prior)

    @property
    def domains(self) -> list[str]:
        return sorted([self.default, *self.log_ratios])

    def scores(self, text: str) -> dict[str, float]:
        """Per other domain, the text's known features' log-likelihood ratios summed over their count plus
        the prior (0: no evidence)."""
        found = features(text)
        result = {}
        for domain, table in self.log_ratios.items():
            known = [table[f] for f in found if f in table]
            result[domain] = sum(known) / (len(known) + self.prior) if known else 0.0
        return result

    def classify(self, text: str) -> tuple[str, float]:
        """(domain, score): the best other domain when its score exceeds the margin, else the default
        with the best other domain's score."""
        return self._decide(self.scores(text))

    def classify_in_context(self, texts: list[str]) -> list[tuple[str, float]]:
        """`classify` for texts that come together, in their order: each text's scores blended with the
        mean of its neighbours' (up to `context` either side, itself included)."""
        own = [self.scores(text) for text in texts]
        decided = []
        for index, scores in enumerate(own):
            window = own[max(0, index - self.context):index + self.context + 1]
            decided.append(self._decide({
                domain: (1 - self.context_weight) * score
                + self.context_weight * sum(w[domain] for w in window) / len(window)
                for domain, score in scores.items()
            }))
        return decided

    def _decide(self, scores: dict[str, float]) -> tuple[str, float]:
        best = max(sorted(scores), key=scores.__getitem__)
        return (best if scores[best] > self.margin else self.default), round(scores[best], 4)

    def to_json(self) -> dict:
        return {"default": self.default, "margin": self.margin, "context": self.context,
                "context_weight": self.context_weight, "prior": self.prior, "log_ratios": self.log_ratios}

    @classmethod
    def from_json(cls, data: dict) -> "DomainClassifier":
        ratios = {str(d): {str(f): float(r) for f, r in table.items()} for d, table in data["log_ratios"].items()}
        context, weight = int(data.get("context", CONTEXT)), float(data.get("context_weight", CONTEXT_WEIGHT))
        if not valid_context(context, weight):
            raise ValueError(f"context {context} and context_weight {weight}: need context >= 0 and a weight in [0, 1]")
        prior = float(data.get("prior", 0.0))
        if not 0 <= prior <= 100:
            raise ValueError(f"prior {prior}: need a pseudo-count from 0 to 100")
        return cls(ratios, str(data["default"]), float(data["margin"]), context, weight, prior)


@dataclass
class DomainRouting:
    """What domains.json holds: the default domain and a classifier per source language."""

    default: str
    classifiers: dict[str, DomainClassifier]  # source language -> classifier
    fitted_on: dict  # what each classifier was fitted on (for the card and the README)

    def default_among(self, domains) -> str:
        """The domain a pair's text goes to when nothing says otherwise: the default where the pair has
        a model for it, else the first of the pair's domains by name."""
        return self.default if self.default in domains else sorted(domains)[0]

    def domains_among(self, domains, language: str, texts: list[str]) -> list[str]:
        """Which of a pair's `domains` translates each of `texts` (that come together, in order): the
        classifier's domain in context where the pair has a model for it, else `default_among` them.
        The CLI's router and the service both route this way."""
        return [domain if domain in domains else self.default_among(domains)
                for domain in self.classify_in_context(language, texts)]

    def classify(self, language: str, text: str) -> str:
        """The domain of one text in `language`; the default where no classifier reads that language."""
        return self.classify_in_context(language, [text])[0]

    def classify_in_context(self, language: str, texts: list[str]) -> list[str]:
        """The domain of each of `texts` read among its neighbours (`DomainClassifier.classify_in_context`)."""
        classifier = self.classifiers.get(language)
        if classifier is None:
            return [self.default] * len(texts)
        return [domain for domain, _ in classifier.classify_in_context(texts)]

    def save(self, path: Path) -> None:
        data = {"format": FORMAT, "default": self.default, "fitted_on": self.fitted_on,
                "languages": {lang: c.to_json() for lang, c in sorted(self.classifiers.items())}}
        write_atomically(path, json.dumps(data, ensure_ascii=False, sort_keys=True).encode("utf-8"))

    @classmethod
    def load(cls, path: Path) -> "DomainRouting":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            if data.get("format") != FORMAT:
                raise DomainsError(f"{path}: format {data.get('format')!r}, expected {FORMAT}")
            classifiers = {lang: DomainClassifier.from_json(c) for lang, c in data["languages"].items()}
            return cls(str(data["default"]), classifiers, dict(data.get("fitted_on", {})))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise DomainsError(f"cannot read the domain classifier {path}: {error}") from None


def load_routing(models_dir: Path) -> DomainRouting:
    """The routing of a models directory: its domains.json, or everything to the default domain."""
    path = Path(models_dir) / FILENAME
    if not path.is_file():
        return DomainRouting(DEFAULT_DOMAIN, {}, {})
    return DomainRouting.load(path)


def model_domain(directory: Path) -> str:
    """The domain a model directory's card.json names (`general` where it names none)."""
    try:
        card = json.loads((Path(directory) / "card.json").read_text(encoding="utf-8"))
        return str(card.get("domain") or DEFAULT_DOMAIN)
    except (OSError, ValueError, AttributeError):
        return DEFAULT_DOMAIN
