"""Spans a translation must carry over unchanged and exactly once: numbers, URLs, e-mail addresses,
placeholders (`%s`, `%1$s`, `%d`, `{0}`, `{name}`, `%1`) and markup tags (`<b>`, `</a>`).

One definition for the whole product: the file formats (carousel/documents.py) protect placeholders
with it, the confidence estimate (model/confidence.py) checks spans with it, and benchmarks/spans.py
measures how often translations keep them.
"""

from __future__ import annotations

import re
from collections import Counter

# printf (%s, %1$s, %-5.2f, %(name)s, %%), brace ({0}, {name}, {0:>3}), and Qt/KDE (%1) placeholders
PLACEHOLDER = re.compile(
    r"%(?:\(\w+\))?(?:\d+\$)?[-+ #0']*(?:\d+|\*)?(?:\.(?:\d+|\*))?(?:hh|h|ll|l|L|q|j|z|t|I64|I32)?[diouxXeEfFgGcrsaAp%]"
    r"|%\d+"
    r"|\{[\w.\[\]]*(?:![rsa])?(?::[^{}]*)?\}"
    r"|<[^<>\s][^<>]*>"  # markup tags
)
URL = re.compile(r"\b(?:https?://|ftp://|www\.)[^\s<>\"']*[^\s<>\"'.,;:!?)\]]")
EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
NUMBER = re.compile(r"\d+(?:[.,:/]\d+)*")


def protected_spans(text: str) -> list[str]:
    """Every span of `text` to keep, in order of appearance; a URL's or address's digits are part of it."""
    found: list[tuple[int, str]] = []
    taken: list[range] = []
    for pattern in (URL, EMAIL, PLACEHOLDER, NUMBER):
        for match in pattern.finditer(text):
            if any(match.start() in r or match.end() - 1 in r for r in taken):
                continue
            taken.append(range(match.start(), match.end()))
            found.append((match.start(), match.group(0)))
    return [span for _, span in sorted(found)]


def missing_spans(source: str, translation: str) -> list[str]:
    """Spans of the source the translation lacks, or holds more than once as often as the source does."""
    wanted, got = Counter(protected_spans(source)), Counter(protected_spans(translation))
    return sorted(span for span, count in wanted.items() if got[span] != count)


def spans_survive(source: str, translation: str) -> bool:
    return not missing_spans(source, translation)
