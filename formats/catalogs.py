"""Gettext catalogs (.po, .pot), read as strictly as `msgfmt` and translated so that `msgfmt --check` accepts them.

polib reads catalogs leniently: an unterminated string (`msgid "Hola mundo`) is taken, one character
short, without a word, and any `Plural-Forms` header is believed. `check_strings` and `plural_forms`
add the checks of GNU gettext's `msgfmt` that matter here: every quoted string ends on its line, and the
plural header names at most `MAX_PLURAL_FORMS` forms with an expression gettext itself would accept
(Python's `gettext.c2py`, the standard library's parser of C plural expressions) that never picks a
form past the last. A header asking for 99,999,999 forms would otherwise make every plural entry that
many strings long.

Placeholders (%s, %1$s, %(name)s, {0}, {name}) and accelerator marks (_File, &File) are kept valid:
`CatalogText` translates the text around placeholders piece by piece and puts the placeholders back in
their order, and the accelerator goes before the first letter of the translation. Inline tags (`<b>`)
do not cut a message: the translator carries them (model/tags.py).
their order, and the accelerator goes before the first letter of the translation. A message of several
lines (a `--help` text) is translated line by line, its line breaks and indentation kept.
"""

from __future__ import annotations

import gettext
import re

from carousel.model.sentences import has_words
from carousel.model.spans import PLACEHOLDER
from carousel.model.tags import is_inline_tag

MAX_PLURAL_FORMS = 6  # Arabic has six, the most of any language gettext knows
ACCELERATOR = re.compile(r"(?:(?<=\s)|^)([_&])(?=\w)(?!\w+;)")
# A line that must hold one quoted string: a keyword's or a continuation, also as obsolete (#~) or
# previous (#|) entries.
_STRING_LINE = re.compile(r'\s*(?:#[~|]\s*)?(?:(?:msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?)\s+)?(?=")(?P<rest>.*)')
_STRING = re.compile(r'(?:"(?:[^"\\]|\\.)*"\s*)+')
_PLURAL_FORMS = re.compile(r"^\s*nplurals\s*=\s*(?P<count>\d+)\s*;\s*plural\s*=\s*(?P<expression>[^;]+?)\s*;?\s*$")


class CatalogError(ValueError):
    """The catalog breaks a rule `msgfmt` enforces; the message names the line or header."""


def check_strings(text: str) -> None:
    """A CatalogError naming the first line whose quoted string does not end on it."""
    for number, line in enumerate(text.splitlines(), start=1):
        match = _STRING_LINE.fullmatch(line)
        if match and not _STRING.fullmatch(match["rest"]):
            shown = line.strip() if len(line.strip()) <= 60 else line.strip()[:57] + "..."
            raise CatalogError(f"line {number}: unterminated string: {shown}")


def plural_count(plural_forms: str) -> int | None:
    match = re.search(r"nplurals\s*=\s*(\d+)", plural_forms or "")
    return int(match.group(1)) if match else None


def plural_forms(header: str) -> int:
    """The number of plural forms of a valid `Plural-Forms` header, or a CatalogError naming the header."""
    shown = f'"Plural-Forms: {header}"' if len(header) <= 80 else f'"Plural-Forms: {header[:77]}..."'
    match = _PLURAL_FORMS.match(header)
    if not match:
        raise CatalogError(f"the header {shown} is not of the form 'nplurals=N; plural=EXPRESSION;'")
    count = int(match["count"])
    if not 1 <= count <= MAX_PLURAL_FORMS:
        raise CatalogError(f"the header {shown} asks for {count} plural forms; languages have 1 to {MAX_PLURAL_FORMS}")
    try:
        choose = gettext.c2py(match["expression"])
    except (ValueError, RecursionError) as error:
        raise CatalogError(f"the header {shown} has a plural expression gettext rejects: {error}") from None
    largest = max(choose(n) for n in range(1000))  # msgfmt --check evaluates the expression the same way
    if largest >= count:
        raise CatalogError(f"the header {shown} picks plural form {largest}, but nplurals is {count}")
    return count


def protected_pieces(text: str) -> list[tuple[str, bool]]:
    """`text` cut into (piece, translate?) around placeholders; pieces without words are kept."""
    pieces: list[tuple[str, bool]] = []
    start = 0
    for match in PLACEHOLDER.finditer(text):
        if is_inline_tag(match.group(0)):  # carried across by the translator (model/tags.py), not a cut
            continue
        pieces.append((text[start: match.start()], True))
        pieces.append((match.group(0), False))
        start = match.end()
    pieces.append((text[start:], True))
    return [(piece, wanted and has_words(piece)) for piece, wanted in pieces if piece]


class CatalogText:
    """One msgid (or msgid_plural) made ready for translation: accelerator taken out, placeholders kept."""

    def __init__(self, text: str):
        self.accelerator = None
        marks = ACCELERATOR.findall(text)
        if len(marks) == 1:
            self.accelerator = marks[0]
            text = ACCELERATOR.sub("", text, count=1)
        # Each line of a message (a --help text) is translated on its own and the breaks kept.
        self.pieces = [piece for line in re.split(r"(\n)", text)
                       for piece in ([(line, False)] if line == "\n" else protected_pieces(line))]

    @property
    def texts(self) -> list[str]:
        return [piece.strip() for piece, wanted in self.pieces if wanted]

    def join(self, translations: list[str]) -> str:
        answers = iter(translations)
        out = []
        for piece, wanted in self.pieces:
            if wanted:
                translation = " ".join(next(answers).split()) or piece.strip()
                lead = piece[: len(piece) - len(piece.lstrip())]
                trail = piece[len(piece.rstrip()):]
                out.append(lead + translation + trail)
            else:
                out.append(piece)
        text = "".join(out)
        if self.accelerator:
            text = _with_accelerator(text, self.accelerator)
        return text


def _with_accelerator(text: str, mark: str) -> str:
    """The mark before the first letter that is not inside a placeholder."""
    protected = [range(m.start(), m.end()) for m in PLACEHOLDER.finditer(text)]
    for index, character in enumerate(text):
        if character.isalnum() and not any(index in span for span in protected):
            return text[:index] + mark + text[index:]
    return text
