"""Source-side text normalisation that travels with a model.

Reina-Valera 1909 uses pre-1952 Spanish spelling (a standalone `á` for the preposition, `fué`, `vió`,
`dió`, accented demonstratives) and sets the first word of many verses in capitals (`EN el principio`).
Users type modern spelling. Training and inference both map the source through the same rules, and the
rules are saved as `normalization.json` inside the model directory, so a model never depends on code
that changed after it was trained.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

# Old spelling -> modern spelling, lower case; case variants are derived.
SPANISH_MODERN_WORDS = {
    # Accented one-letter words: preposition á, conjunctions ó, é, ú.
    "á": "a",
    "ó": "o",
    "é": "e",
    "ú": "u",
    # Monosyllabic verb forms and nouns that lost their accent in 1952.
    "fué": "fue",
    "fuí": "fui",
    "dió": "dio",
    "vió": "vio",
    "dí": "di",
    "ví": "vi",
    "tí": "ti",
    "há": "ha",
    "hé": "he",
    "yá": "ya",
    "pié": "pie",
    "piés": "pies",
    "rió": "rio",
    "guió": "guio",
    "crió": "crio",
    "lió": "lio",
    "fió": "fio",
    "huí": "hui",
    "huyó": "huyo",
    # Demonstrative pronouns and `sólo`, written without accent since 2010.
    "éste": "este",
    "ésta": "esta",
    "éstos": "estos",
    "éstas": "estas",
    "ése": "ese",
    "ésa": "esa",
    "ésos": "esos",
    "ésas": "esas",
    "aquél": "aquel",
    "aquélla": "aquella",
    "aquéllos": "aquellos",
    "aquéllas": "aquellas",
    "sólo": "solo",
}

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Normalizer:
    """Word-for-word replacements plus an optional fix for an all-capitals first word."""

    name: str = "none"
    word_map: dict[str, str] = field(default_factory=dict)
    lowercase_capitalised_first_word: bool = False

    def __call__(self, text: str) -> str:
        if self.lowercase_capitalised_first_word:
            text = _soften_capitalised_first_word(text)
        if not self.word_map:
            return text
        return _WORD.sub(lambda m: self.word_map.get(m.group(0), m.group(0)), text)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "word_map": self.word_map,
            "lowercase_capitalised_first_word": self.lowercase_capitalised_first_word,
        }

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), ensure_ascii=False, indent=1, sort_keys=True), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> "Normalizer":
        spec = json.loads(path.read_text(encoding="utf-8"))
        return cls(spec["name"], dict(spec["word_map"]), bool(spec["lowercase_capitalised_first_word"]))


def _with_case_variants(words: dict[str, str]) -> dict[str, str]:
    variants = {}
    for old, new in words.items():
        variants[old] = new
        variants[old.capitalize()] = new.capitalize()
        variants[old.upper()] = new.upper()
    return variants


def _soften_capitalised_first_word(text: str) -> str:
    """`EN el principio` -> `En el principio`; leaves acronyms inside the text and all-capitals text alone."""
    match = _WORD.match(text.lstrip())
    if not match:
        return text
    word = match.group(0)
    rest = text.lstrip()[match.end() :]
    if len(word) > 1 and word.isupper() and not rest.isupper():
        offset = len(text) - len(text.lstrip())
        return text[:offset] + word.capitalize() + rest
    return text


def build_normalizer(name: str) -> Normalizer:
    if name == "none":
        return Normalizer()
    if name == "spanish_modern":
        return Normalizer(name, _with_case_variants(SPANISH_MODERN_WORDS), lowercase_capitalised_first_word=True)
    raise ValueError(f"unknown normalizer {name!r}")
