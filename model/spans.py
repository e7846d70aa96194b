"""Spans a translation must carry over unchanged and exactly once: numbers, URLs, e-mail addresses,
placeholders (`%s`, `%1$s`, `%d`, `{0}`, `{name}`, `%1`, `{{var}}`, `${x}`, `:name`), `backquoted code`
and markup tags (`<b>`, `</a>`).

One definition for the whole product: the file formats (formats/documents.py) protect placeholders
with it, the confidence estimate (model/confidence.py) checks spans with it, and benchmarks/spans.py
measures how often translations keep them.
"""

from __future__ import annotations

import re
from collections import Counter

# Template variables ({{var}}, ${x}, :name), `backquoted code`, printf (%s, %1$s, %-5.2f, %(name)s, %%),
# brace ({0}, {name}, {0:>3}) and Qt/KDE (%1) placeholders. A :name must follow a space or an opening mark
# and start with a letter, so "Nota: algo", "10:30" and a Windows drive are not spans.
PLACEHOLDER = re.compile(
    r"\{\{[^{}\n]*\}\}"
    r"|\$\{[^{}\n]*\}"
    r"|`[^`\n]+`"
    r"|(?<![\w:/.\\]):[A-Za-z_]\w*(?![\w:])"
    r"|%(?:\(\w+\))?(?:\d+\$)?[-+ #0']*(?:\d+|\*)?(?:\.(?:\d+|\*))?(?:hh|h|ll|l|L|q|j|z|t|I64|I32)?[diouxXeEfFgGcrsaAp%]"
    r"|%\d+"
    r"|\{[\w.\[\]]*(?:![rsa])?(?::[^{}]*)?\}"
    r"|<[^<>\s][^<>]*>"  # markup tags
)
URL = re.compile(r"\b(?:https?://|ftp://|www\.)[^\s<>\"']*[^\s<>\"'.,;:!?)\]]")
EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
NUMBER = re.compile(r"\d+(?:[.,:/]\d+)*")
KINDS = (("url", URL), ("email", EMAIL), ("placeholder", PLACEHOLDER), ("number", NUMBER))
# What the model makes of an address or URL it cannot spell: `press@ejemplo` for `prensa@ejemplo.es`.
# Repair puts the source's span in its place rather than beside it.
MANGLED = {"email": re.compile(r"[\w.+-]*@[\w-]+(?:\.[\w-]+)*"), "url": re.compile(r"\S*(?:https?:/|www\.)[^\s<>\"']*")}


def protected_spans(text: str) -> list[str]:
    """Every span of `text` to keep, in order of appearance; a URL's or address's digits are part of it."""
    return [span for _, _, span, _ in _found_spans(text)]


def _found_spans(text: str) -> list[tuple[int, int, str, str]]:
    """(start, end, span, kind) of every span, in order; kinds tried in turn, earlier ones taking precedence."""
    found: list[tuple[int, int, str, str]] = []
    taken: list[range] = []
    for kind, pattern in KINDS:
        for match in pattern.finditer(text):
            if any(match.start() in r or match.end() - 1 in r for r in taken):
                continue
            taken.append(range(match.start(), match.end()))
            found.append((match.start(), match.end(), match.group(0), kind))
    return sorted(found)


def missing_spans(source: str, translation: str) -> list[str]:
    """Spans of the source the translation lacks, or holds more than once as often as the source does."""
    wanted, got = Counter(protected_spans(source)), Counter(protected_spans(translation))
    return sorted(span for span, count in wanted.items() if got[span] != count)


# -- repair: every source span in the translation exactly once -------------------------------------

SPACE = "\u2581"  # SentencePiece's word-boundary mark


def piece_words(pieces: list[str]) -> list[int]:
    """The whitespace-separated word each SentencePiece piece belongs to: a piece starting with ▁ starts a
    word, except right after a lone ▁ (which starts the word of the pieces after it: "▁", "(", "x")."""
    words, current, after_lone_space = [], -1, False
    for piece in pieces:
        if current < 0 or (piece.startswith(SPACE) and not after_lone_space):
            current += 1
        words.append(current)
        after_lone_space = piece == SPACE
    return words


def piece_ranges(pieces: list[str]) -> tuple[str, list[range]]:
    """The text the pieces spell (▁ as a space) and each piece's character range in it."""
    text, ranges = "", []
    for piece in pieces:
        start = len(text)
        text += piece.replace(SPACE, " ")
        ranges.append(range(start, len(text)))
    return text, ranges


def _aligned_end(span: str, source_pieces: list[str], target_pieces: list[str], translation: str,
                 alignment: list[list[float]] | None) -> int:
    """Where in `translation` a missing span goes: after the word whose token attends most to the
    span's source tokens (by the attention weights), else at the end before final punctuation."""
    fallback = len(translation.rstrip().rstrip(".!?;:…"))
    if not alignment or not target_pieces:
        return fallback
    source_text, source_ranges = piece_ranges(source_pieces)
    at = source_text.find(span)
    if at < 0:
        return fallback
    columns = [j for j, r in enumerate(source_ranges) if r and r.start < at + len(span) and r.stop > at]
    rows = alignment[: len(target_pieces)]
    if not columns or not rows:
        return fallback
    best = max(range(len(rows)), key=lambda i: sum(rows[i][j] for j in columns if j < len(rows[i])))
    target_text, target_ranges = piece_ranges(target_pieces)
    # the decoded translation drops the leading space the first piece's ▁ stands for
    offset = len(target_text) - len(target_text.lstrip(" "))
    end = target_ranges[best].stop - offset
    while end < len(translation) and not translation[end].isspace():
        end += 1  # to the end of that word
    return min(max(end, 0), len(translation))


def repair_spans(source: str, translation: str, source_pieces: list[str] | None = None,
                 target_pieces: list[str] | None = None, alignment: list[list[float]] | None = None) -> str:
    """`translation` with each span of `source` (numbers, URLs, addresses, placeholders, tags) exactly
    as often as in the source.

    1. A span the translation holds that the source lacks (`1.250` for `1,250`, `%s` for `%d`), or a
       surplus copy, is replaced in order of appearance by a missing span of the same kind where
       there is one; a surplus copy with none is removed.
    2. A missing address or URL replaces a mangled one (`press@ejemplo` for `prensa@ejemplo.es`).
    3. A span still missing is inserted after the word the attention aligns it with (pieces and
       alignment as the search returns them), else at the end.
    """
    source_spans = _found_spans(source)
    wanted = Counter(span for _, _, span, _ in source_spans)
    found = _found_spans(translation)
    if wanted == Counter(span for _, _, span, _ in found if span in wanted):
        return translation  # every span exactly as often as in the source
    seen: Counter = Counter()
    wrong = []  # surplus copies and spans the source lacks, in order of appearance
    for start, end, span, kind in found:
        seen[span] += 1
        if span not in wanted or seen[span] > wanted[span]:
            wrong.append((start, end, span, kind))
    missing = [(span, kind) for _, _, span, kind in source_spans]  # in source order, with repeats
    for span, count in seen.items():
        for _ in range(min(count, wanted[span])):
            missing.remove(next(m for m in missing if m[0] == span))
    edits = []
    for start, end, span, kind in wrong:
        replacement = next((m for m in missing if m[1] == kind), None)
        if replacement is not None:
            missing.remove(replacement)
            edits.append((start, end, replacement[0]))
        elif span in wanted:
            edits.append((start, end, ""))  # a surplus copy with nothing to stand for
    taken = [range(start, end) for start, end, _, _ in found]
    for span, kind in missing:
        mangled = _mangled(kind, translation, taken)
        if mangled is not None:
            taken.append(mangled)
            edits.append((mangled.start, mangled.stop, span))
            continue
        at = _aligned_end(span, source_pieces or [], target_pieces or [], translation, alignment)
        edits.append((at, at, " " + span))
    text = _replace(translation, edits)
    return re.sub(r" +([.,;:!?…])$", r"\1", re.sub(r"  +", " ", text)).strip()


def _mangled(kind: str, translation: str, taken: list[range]) -> range | None:
    """The first mangled address or URL in `translation` outside the spans already found or used."""
    pattern = MANGLED.get(kind)
    for match in pattern.finditer(translation) if pattern else ():
        if not any(match.start() < r.stop and r.start < match.end() for r in taken):
            return range(match.start(), match.end())
    return None


def _replace(text: str, edits: list[tuple[int, int, str]]) -> str:
    """`text` with each (start, end) range replaced (an empty replacement takes one space with it);
    the edits are applied from the end, so each one's offsets hold."""
    for start, end, replacement in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        if not replacement and start > 0 and text[start - 1] == " ":
            start -= 1
        text = text[:start] + replacement + text[end:]
    return text
