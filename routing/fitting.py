"""Fitting the domain router of models/domains.json (routing/domains.py) from a training mix's parts.

Each train part of a mix spec (data/mixes/*.yaml) belongs to one domain: the parts named in
`domain_of_part`, the rest to the default domain. One classifier per language of the mix is fitted on
that language's side, from every 20th sentence held back, and its accuracy on the held-back sentences
is reported per part, so the router's mistakes are known before it routes anything.
"""

from __future__ import annotations

from pathlib import Path

from carousel.data.mixing import MixSpec, read_part
from carousel.routing.domains import CONTEXT, CONTEXT_WEIGHT, DEFAULT_DOMAIN, MARGIN, PRIOR, DomainClassifier, DomainRouting
from carousel.errors import UserError

HELD_BACK_EVERY = 20


def fit_routing(spec: MixSpec, domain_of_part: dict[str, str], base: Path = Path("."),
                margin: float = MARGIN, context: int = CONTEXT,
                context_weight: float = CONTEXT_WEIGHT, prior: float = PRIOR) -> tuple[DomainRouting, dict]:
    """The routing for the mix's languages, and per language and part the held-back accuracy (each
    held-back sentence read alone)."""
    unknown = sorted(set(domain_of_part) - {part.name for part in spec.train})
    if unknown:
        raise UserError(f"no train part named {', '.join(unknown)} in mix {spec.name!r}")
    texts: dict[str, dict[str, list[str]]] = {lang: {} for lang in spec.languages}  # lang -> part -> texts
    sizes: dict[str, int] = {}
    for part in spec.train:
        pairs = read_part(part, spec.languages, base)
        sizes[part.name] = len(pairs)
        for column, lang in enumerate(spec.languages):
            texts[lang][part.name] = [pair[column] for pair in pairs]
    domain = {part.name: domain_of_part.get(part.name, DEFAULT_DOMAIN) for part in spec.train}
    classifiers, accuracy = {}, {}
    for lang, by_part in texts.items():
        parts_by_domain: dict[str, list[list[str]]] = {}
        for name, part_texts in by_part.items():
            parts_by_domain.setdefault(domain[name], []).append(
                [t for i, t in enumerate(part_texts) if i % HELD_BACK_EVERY])
        classifier = DomainClassifier.fit(parts_by_domain, DEFAULT_DOMAIN, margin=margin, context=context,
                                          context_weight=context_weight, prior=prior)
        classifiers[lang] = classifier
        accuracy[lang] = {
            name: round(sum(classifier.classify(t)[0] == domain[name] for t in ts) / len(ts), 4)
            for name, ts in ((name, part_texts[::HELD_BACK_EVERY]) for name, part_texts in by_part.items()) if ts
        }
    fitted_on = {"mix": spec.name, "pairs_per_part": sizes, "domain_of_part": domain,
                 "held_back_every": HELD_BACK_EVERY, "held_back_accuracy": accuracy}
    return DomainRouting(DEFAULT_DOMAIN, classifiers, fitted_on), accuracy
