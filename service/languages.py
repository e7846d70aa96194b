"""Language names, and a small language identifier for `/detect` and `source: "auto"`.

The identifier only chooses among the languages the server can translate. It is a naive Bayes model
over words: in a language with a profile, a word is one of its function words (the ~100 most frequent
ones, which make up about 40% of running text) or else some content word, equally likely in every
language. Function words are what separates Spanish from English; a text with none of them (a name,
a number) carries no evidence, and the confidence says so: a uniform spread over the candidates, or 0
for a text without words at all. A language the server serves but has no profile for is modelled as
"content words only", so it wins exactly when the text looks like none of the profiled languages.
Letters also count a little: a word with `ñ` or `ó` is unlikely to be English.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

NAMES = {
    "ar": "Arabic", "ca": "Catalan", "cs": "Czech", "da": "Danish", "de": "German", "el": "Greek",
    "en": "English", "eo": "Esperanto", "es": "Spanish", "eu": "Basque", "fi": "Finnish", "fr": "French",
    "gl": "Galician", "he": "Hebrew", "hi": "Hindi", "hu": "Hungarian", "id": "Indonesian", "it": "Italian",
    "ja": "Japanese", "ko": "Korean", "la": "Latin", "nl": "Dutch", "pl": "Polish", "pt": "Portuguese",
    "ro": "Romanian", "ru": "Russian", "sv": "Swedish", "tr": "Turkish", "uk": "Ukrainian", "zh": "Chinese",
}

# Function words (and, for Spanish, the inverted marks that open questions and exclamations).
FUNCTION_WORDS = {
    "es": """de la que el en y a los se del las un por con no una su para es al lo como más pero sus le ya o
        este sí porque esta entre cuando muy sin sobre también me hasta hay donde quien desde todo nos durante
        todos uno les ni contra otros ese eso ante ellos e esto mí antes algunos qué unos yo otro otras otra
        él tanto esa estos mucho quienes nada muchos cual poco ella estar estas algunas algo nosotros mi mis
        tú te ti tu tus ellas vosotros os mío mía suyo suya nuestro nuestra vuestro esos esas estoy está
        estamos están fue ha han he has era eran ser son soy somos hacia según así dijo pues aquí cómo dónde
        cuál cuándo ¿ ¡""",
    "en": """the of and to a in that is was he for it with as his on be at by i this had not are but from or
        have an they which one you were her all she there would their we him been has when who will more no
        if out so said what up its about into than them can only other new some could time these two may
        then do first any my now such like our over man me even most made after also did many before must
        through back years where much your way well down should because each just those people how too
        little state good very make world still own see men work long get here between both life being
        under never day same another know while last us shall unto thee thou thy ye hath""",
    "fr": """de la le et les des en un du une que est pour qui dans par plus pas au sur ne se ce il sont
        avec son aux ou elle mais nous vous comme ont je leur sa ses tout été cette fait bien aussi y
        leurs peut dont deux même sans entre lui ces faire très où ils elles était avait moi toi ton
        notre votre quand alors donc ni après avant sous chez encore être avoir suis sommes êtes""",
    "de": """der die und in den von zu das mit sich des auf für ist im dem nicht ein eine als auch es an
        werden aus er hat dass sie nach wird bei einer um am sind noch wie einem über einen so zum war
        haben nur oder aber vor zur bis mehr durch man sein wurde sei ich du wir ihr mein dein unser
        euer kein keine wenn weil doch schon hier dort nicht denn gegen ohne sehr""",
    "pt": """de a o que e do da em um para é com não uma os no se na por mais as dos como mas foi ao ele
        das tem à seu sua ou ser quando muito há nos já está eu também só pelo pela até isso ela entre
        era depois sem mesmo aos ter seus quem nas me esse eles estão você tinha foram essa num nem
        suas meu às minha têm numa pelos elas havia seja qual será nós tenho lhe deles essas esses""",
    "it": """di e il la che a per un in è non una sono del le si con da i gli al lo della mi ma ha come
        ci anche più nel io se alla questo ti ne o dei cosa delle sua suo tu sei ho quando molto tutto
        lui lei noi voi loro essere stato era questa quello quella nella degli dal alle perché già
        ancora così fare sempre dove chi""",
}

# Letters beyond a-z that each profiled language writes; a word with any other letter is unlikely in it.
EXTRA_LETTERS = {
    "es": "áéíóúüñ", "en": "", "fr": "àâæçéèêëîïôœùûüÿ", "de": "äöüß", "pt": "áâãàçéêíóôõúü", "it": "àèéìíîòóùú",
}

_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?|[¿¡]")
FUNCTION_WORD_SHARE = 0.4  # share of running text made of function words
CONTENT_WORD_PROBABILITY = 1 / 20_000  # any one content word, the same in every language
FOREIGN_LETTER_PROBABILITY = 0.02  # a word written with letters the language does not use
MAX_WORDS = 2_000  # enough evidence; keeps /detect fast on long texts


def language_name(code: str) -> str:
    return NAMES.get(code, code)


@dataclass(frozen=True)
class Detection:
    language: str
    confidence: float  # 0-100


class LanguageIdentifier:
    """Ranks candidate languages for a text."""

    def __init__(self, languages: list[str]):
        if not languages:
            raise ValueError("a language identifier needs at least one language")
        self.languages = list(dict.fromkeys(languages))
        self._profiles = {
            code: frozenset(FUNCTION_WORDS[code].split()) for code in self.languages if code in FUNCTION_WORDS
        }
        self._alphabets = {
            code: frozenset("abcdefghijklmnopqrstuvwxyz" + EXTRA_LETTERS[code]) for code in self._profiles
        }

    def detect(self, text: str) -> list[Detection]:
        """Every candidate with its confidence, most likely first (ties keep the candidates' order)."""
        words = [w.lower() for w in _WORD.findall(text)[:MAX_WORDS]]
        if not words:
            return [Detection(code, 0.0) for code in self.languages]
        log_likelihood = {code: self._log_likelihood(code, words) for code in self.languages}
        best = max(log_likelihood.values())
        weights = {code: math.exp(value - best) for code, value in log_likelihood.items()}
        total = sum(weights.values())
        ranked = sorted(self.languages, key=lambda code: -weights[code])
        return [Detection(code, round(100.0 * weights[code] / total, 1)) for code in ranked]

    def _log_likelihood(self, code: str, words: list[str]) -> float:
        profile = self._profiles.get(code)
        content = math.log(CONTENT_WORD_PROBABILITY)
        if profile is None:
            return content * len(words)
        alphabet = self._alphabets[code]
        hit = math.log(FUNCTION_WORD_SHARE / len(profile) + (1 - FUNCTION_WORD_SHARE) * CONTENT_WORD_PROBABILITY)
        miss = math.log(1 - FUNCTION_WORD_SHARE) + content
        foreign = math.log(FOREIGN_LETTER_PROBABILITY)
        total = 0.0
        for word in words:
            total += hit if word in profile else miss
            if word.isalpha() and not alphabet.issuperset(word.replace("’", "").replace("'", "")):
                total += foreign
        return total
