"""The default translator of a language pair: one model per domain behind the domain router.

`carousel translate` and `carousel evaluate` without `--model` use `load_default_translator`: with
`--domain auto` (the default) each text goes to the model of the domain routing/domains.py finds
for it among its neighbours (the lines of a file), with `--domain NAME` every text to that domain's
model. The service routes the same way per string of `q`, among the request's strings (service/registry.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from carousel.routing.domains import DomainRouting, load_routing
from carousel.errors import UserError
from carousel.routing.shipped import model_for, models_dir, models_for

AUTO = "auto"


@dataclass
class RoutedTranslator:
    """Translators of one language pair by domain, used like one (`translate`, `translate_texts`)."""

    translators: dict  # domain -> Translator (model/translator.py)
    routing: DomainRouting

    def __post_init__(self):
        first = self.translators[self.default]
        self.src_lang, self.tgt_lang = first.src_lang, first.tgt_lang
        self.card = {"routing": {d: t.card.get("name") for d, t in sorted(self.translators.items())}}

    @property
    def default(self) -> str:
        return self.routing.default_among(self.translators)

    @property
    def has_confidence(self) -> bool:
        return all(t.has_confidence for t in self.translators.values())

    def domains_of(self, texts: list[str]) -> list[str]:
        return self.routing.domains_among(self.translators, self.src_lang, texts)

    def with_model_defaults(self, search):
        return search  # each domain's model applies its own defaults

    def translate(self, sentences: list[str], search, batch_tokens: int = 12000, glossaries=None) -> list:
        if glossaries is None:
            return self._by_domain(sentences, lambda t, group: t.translate(group, search, batch_tokens))
        # each sentence with its glossary: both go through the domain split together
        pairs = list(zip(sentences, glossaries))
        return self._by_domain(sentences, lambda t, group: t.translate(
            [s for s, _ in group], search, batch_tokens, [g for _, g in group]), items=pairs)

    def translate_texts(self, texts: list[str], search, batch_tokens: int = 12000, glossary=None) -> list:
        return self._by_domain(texts, lambda t, group: t.translate_texts(group, search, batch_tokens, glossary))

    def translate_texts_with_confidence(self, texts: list[str], search, batch_tokens: int = 12000,
                                        glossary=None) -> list:
        return self._by_domain(texts, lambda t, group: t.translate_texts_with_confidence(
            group, search, batch_tokens, glossary))

    def _by_domain(self, texts: list[str], translate, items: list | None = None) -> list:
        """Each domain's texts (or `items`, one a text) through its translator in one batch, the results back
        in input order."""
        items = texts if items is None else items
        domains = self.domains_of(texts)
        results: list = [None] * len(texts)
        for domain, translator in self.translators.items():
            indices = [i for i, d in enumerate(domains) if d == domain]
            if indices:
                for index, result in zip(indices, translate(translator, [items[i] for i in indices])):
                    results[index] = result
        return results


def load_default_translator(source: str | None, target: str | None, domain: str = AUTO,
                            quantization: str | None = None, search=None, device: str = "auto"):
    """The shipped model of `domain` for the pair, or with "auto" the router over all its domains
    (a plain translator where the pair has one domain)."""
    from carousel.model.precision import DEFAULT_QUANTIZATION
    from carousel.model.loading import load_translator

    quantization = quantization or DEFAULT_QUANTIZATION
    root = models_dir()
    found = models_for(source, target, root) if domain == AUTO else {domain: model_for(source, target, domain)}
    translators = {d: load_translator(path, quantization, search, device=device) for d, path in found.items()}
    if len(translators) == 1:
        return next(iter(translators.values()))
    return RoutedTranslator(translators, load_routing(root))


def load_model_or_default(model: Path | None, source: str | None, target: str | None, domain: str,
                          quantization: str, search, device: str = "auto"):
    """The commands' translator: the model directory named, else the shipped models of the pair."""
    from carousel.model.loading import load_translator

    if model is not None:
        if domain != AUTO:
            raise UserError("--domain chooses among the shipped models: give it with --source/--target, not --model")
        return load_translator(model, quantization, search, device=device)
    return load_default_translator(source, target, domain, quantization, search, device)

