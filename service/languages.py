"""Language names, and language identification for `/detect` and `source: "auto"`.

Identification uses Lingua (lingua-language-detector: character n-gram models of 75 languages shipped
inside the package, nothing downloaded). It names the language a text is actually in, whether or not a
loaded model translates it, so French sent with `source: "auto"` to a Spanish/English server is named
and refused (service/translation.py) instead of being passed through as if it were English.

The confidence is Lingua's: its n-gram likelihoods normalised over the candidate languages (0-100).
Short texts carry little evidence and get low, spread-out confidences; a text without letters (a number,
punctuation) gets 0 for every language. `benchmarks/language_id.py` measures accuracy on short and long
sentences in many languages and the time a detection takes.

The detector's models take about 0.8 GB and some seconds to load; they are loaded once per process,
on first use or by `warm_up()` (called in the background when the service starts).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

# Names Lingua spells differently from the usual English names (and codes it does not cover).
NAMES = {"nb": "Norwegian Bokmål", "nn": "Norwegian Nynorsk", "sl": "Slovenian", "gl": "Galician", "oc": "Occitan"}
MAX_CHARS = 2_000  # enough evidence; keeps detection fast on long texts
MIN_REPORTED = 1.0  # /detect lists candidates down to this confidence (at least one)
MAX_REPORTED = 5


def _code(language: Language) -> str:
    return language.iso_code_639_1.name.lower()


ALL_CODES = sorted(_code(language) for language in Language.all())


def language_name(code: str) -> str:
    if code in NAMES:
        return NAMES[code]
    try:
        return Language.from_iso_code_639_1(getattr(IsoCode639_1, code.upper())).name.title()
    except AttributeError:
        return code


@dataclass(frozen=True)
class Detection:
    language: str
    confidence: float  # 0-100


class LanguageIdentifier:
    """Ranks the languages Lingua knows (or a subset: `languages`) for a text."""

    def __init__(self, languages: list[str] | None = None, low_accuracy: bool = False):
        codes = ALL_CODES if languages is None else list(dict.fromkeys(languages))
        unknown = [code for code in codes if code not in ALL_CODES]
        if unknown or len(codes) < 2:
            raise ValueError(f"a language identifier needs two or more of {', '.join(ALL_CODES)}; got {codes}")
        self.languages = codes
        builder = LanguageDetectorBuilder.from_iso_codes_639_1(*(getattr(IsoCode639_1, c.upper()) for c in codes))
        self._detector = (builder.with_low_accuracy_mode() if low_accuracy else builder).build()

    def detect(self, text: str) -> list[Detection]:
        """Every candidate with its confidence, most likely first."""
        values = self._detector.compute_language_confidence_values(text[:MAX_CHARS])
        return [Detection(_code(value.language), round(100.0 * value.value, 1)) for value in values]

    def report(self, text: str) -> list[Detection]:
        """What `/detect` answers: the likely candidates, most likely first (one at least)."""
        ranked = self.detect(text)
        return [d for i, d in enumerate(ranked[:MAX_REPORTED]) if i == 0 or d.confidence >= MIN_REPORTED]


_shared: LanguageIdentifier | None = None
_lock = threading.Lock()


def shared_identifier() -> LanguageIdentifier:
    """The process's identifier over every language Lingua knows (built once)."""
    global _shared
    with _lock:
        if _shared is None:
            _shared = LanguageIdentifier()
        return _shared


def warm_up() -> None:
    """Load the n-gram models of the common scripts now rather than during the first request."""
    identifier = shared_identifier()
    for text in ("The quick brown fox jumps over the lazy dog.", "Съешь же ещё этих мягких булок.", "你好，世界。"):
        identifier.detect(text)


# `source: "auto"` takes a language the server serves when it is at least this share as likely as the
# unserved language ranked first: short texts are ambiguous (a Spanish menu label often looks
# Portuguese), and refusing those would break requests that used to work. Chosen on the gettext
# catalogs (benchmarks/language_id.py --auto), never on an evaluation set.
SERVED_SHARE = 0.5
# ... and refuses an unserved language only when Lingua gives it at least this confidence (%). Single
# words carry little evidence ("Hello" reads as Sesotho at 17%, English at 4%); refusing them turned
# away one short Spanish or English string in seven. Chosen on the same catalogs and FLORES dev (best
# mean of served strings translated from the right language and others refused, short and long):
# short served 86.5% → 96.5%, short others refused 92.9% → 84.9%, long 99.5% and 99.0% → 98.6%.
REFUSE_AT = 20.0
# Below REFUSE_AT a served language is taken only on some evidence of its own: at least this share of
# the first language's confidence ("Hello": Spanish 6.7% against Sesotho's 17.3%, 0.39). "Le chat dort
# sur le canapé." (French 14.4%, Spanish 2.4%: 0.17) has none and is refused, not translated as
# nonsense. Chosen on the tune half of benchmarks/language_id.py (--half tune --sweep); the held-out
# half's figures are in the README.
EVIDENCE_SHARE = 0.25


def choose_source(
    ranked: list[Detection], served: list[str], target: str | None = None, evidence: float = EVIDENCE_SHARE
) -> tuple[Detection, bool]:
    """The detection `source: "auto"` acts on, and whether the server serves its language.

    `ranked` is `detect`'s answer; `served` the languages a string may be in (the sources that
    translate into the target, and the target itself). Without any evidence (no letters) the first
    served language is taken, with confidence 0. An unserved language is refused on evidence
    (`REFUSE_AT`); below it, the text is taken to be in the likeliest served language other than
    `target`, with that language's own (low) confidence, when a served language has some evidence
    (`evidence`: its share of the first language's confidence); with none, the unserved language is
    refused all the same (a guess would be translated as nonsense)."""
    if not ranked or ranked[0].confidence == 0:
        return Detection(served[0], 0.0), True
    top = ranked[0]
    if top.language in served:
        return top, True
    best = next((d for d in ranked if d.language in served), None)
    if best is not None and best.confidence > 0 and best.confidence >= SERVED_SHARE * top.confidence:
        return best, True
    has_evidence = best is not None and best.confidence > 0 and best.confidence >= evidence * top.confidence
    if top.confidence < REFUSE_AT and has_evidence:
        source = next((d for d in ranked if d.language in served and d.language != target), None)
        return source or best, True
    return top, False


def is_sure(detection: Detection) -> bool:
    """Whether a refused detection is on evidence of its own (else: no served language had any)."""
    return detection.confidence >= REFUSE_AT
