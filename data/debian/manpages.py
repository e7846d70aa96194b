"""Pairs from man pages: `manpages-es` against the English pages of the same commands.

manpages-es is generated with po4a from the English roff sources, so a translated page keeps the
English page's sections and paragraph macros in the same order. A page is read here as roff, not
rendered: `.SH` starts a section, `.SS`, `.PP`/`.P`/`.LP`, `.TP`/`.TQ`, `.IP`, `.HP`, `.sp` and blank
lines start blocks, font macros (`.B`, `.BR`, ...) and escapes (`\\fB`, `\\-`, `\\(co`, ...) become plain
text, and no-fill text (`.nf`/`.EX`, examples and code), tables, macro definitions and conditionals
are skipped. Sections are paired in order (the Spanish page's own closing TRADUCCIÓN section aside),
and inside a section the n-th block pairs with the n-th block where both sections have the same
sequence of block kinds; otherwise the section (or the page, when the section counts differ) is
dropped with its reason. Each page is one held-out unit (`man:grep.1`).
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass, field
from pathlib import Path

from carousel.data.corpus import DroppedRecord
from carousel.data.debian.cleaning import without_english
from carousel.data.debian.records import Candidate

SPANISH_PACKAGE = "manpages-es"
_SPANISH_MAN = Path("usr/share/man/es")
_ENGLISH_MAN = Path("usr/share/man")
# The section po4a appends to every manpages-l10n page: who translated it, and where to report errors.
_TRANSLATION_SECTIONS = frozenset({"TRADUCCIÓN", "TRADUCCION"})

_PARAGRAPH = frozenset({"PP", "P", "LP", "HP"})
_BREAK = frozenset({"sp", "Sp", "RS", "RE"})  # a new block of the same kind
_FONT = frozenset({"B", "I", "SM", "SB"})  # arguments joined by spaces
_ALTERNATING = frozenset({"BR", "RB", "BI", "IB", "IR", "RI"})  # arguments joined without spaces
_NO_FILL = {"nf": "fi", "EX": "EE", "Vb": "Ve"}  # start → end
_SKIPPED_BLOCKS = {"TS": "TE", "EQ": "EN", "de": "..", "ig": "..", "am": ".."}

# Named characters and strings (groff_char(7)); a name not listed here is left out of the text.
_CHARACTERS = {
    "-": "-", "hy": "-", "en": "–", "em": "—", "aq": "'", "dq": '"', "lq": "“", "rq": "”", "oq": "‘",
    "cq": "’", "bu": "•", "co": "©", "rg": "®", "tm": "™", "de": "°", "mu": "×", "di": "÷", "+-": "±",
    "->": "→", "<-": "←", "<=": "≤", ">=": "≥", "!=": "≠", "ga": "`", "ha": "^", "ti": "~", "rs": "\\",
    "sl": "/", "ba": "|", "or": "|", "bv": "|", "Fo": "«", "Fc": "»", "fo": "‹", "fc": "›", "R": "®",
    "Tm": "™", "Aq": "'", "Lq": "“", "Rq": "”", "ua": "↑", "da": "↓", "ss": "ß", "pc": "·", "sc": "§",
    "ps": "¶", "ct": "¢", "Eu": "€", "eu": "€", "Po": "£", "Ye": "¥", "r!": "¡", "r?": "¿", "ff": "ff",
    "fi": "fi", "fl": "fl", "Fi": "ffi", "Fl": "ffl",
}
_ESCAPE = re.compile(
    r"""\\(?:
        f(?:\[[^\]]*\]|\(..|.)                         # font change
      | s(?:[-+]?\d|\([-+]?\d\d|[-+]\(\d\d|\[[^\]]*\]|'[^']*')   # size change
      | \((?P<two>..)                                  # \(xx character
      | \[(?P<bracket>[^\]]*)\]                        # \[name] character
      | \*(?:\((?P<string2>..)|\[(?P<stringn>[^\]]*)\]|(?P<string1>.))   # predefined strings
      | [hvwoXNbDlLRSxZ]'[^']*'                        # escapes with a quoted argument
      | n(?:\(..|\[[^\]]*\]|.)                         # number registers
      | [kzgmMFY](?:\(..|\[[^\]]*\]|.)                 # marks, colours, families
      | (?P<single>.)
    )""",
    re.VERBOSE,
)
# One-character escapes: these become text; `\&`, `\|`, `\%`, `\c` and the like nothing; others the character.
_SINGLE = {"-": "-", "e": "\\", "\\": "\\", " ": " ", "0": " ", "~": " ", "`": "`", "'": "´", ".": "."}
_COMMENT = re.compile(r'\\".*$|\\#.*$')
_REQUEST = re.compile(r"[.'][ \t]*([^\s\\]*)[ \t]*(.*)")


@dataclass
class Section:
    """A `.SH` section: its title and its blocks as (kind, text), in order."""

    title: str
    blocks: list[tuple[str, str]] = field(default_factory=list)


def roff_text(text: str) -> str:
    """Plain text of a roff text line: escapes resolved, font and size changes removed."""
    return _ESCAPE.sub(_replace_escape, text)


def _replace_escape(match: re.Match) -> str:
    if match.group("two") is not None:
        return _CHARACTERS.get(match.group("two"), "")
    if match.group("bracket") is not None:
        name = match.group("bracket")
        if re.fullmatch(r"u[0-9A-Fa-f]{4,6}", name):
            return chr(int(name[1:], 16))
        return _CHARACTERS.get(name, "")
    string = match.group("string2") or match.group("stringn") or match.group("string1")
    if string is not None:
        return _CHARACTERS.get(string, "")
    single = match.group("single")
    if single is not None:
        return _SINGLE.get(single, "" if single in "&|^%/,:){}c!?" else single)
    return ""


_ARGUMENT = re.compile(r'"((?:[^"]|"")*)"?|((?:\\.|\S)+)')


def _arguments(rest: str) -> list[str]:
    """A request's arguments: blank-separated, double quotes group (`""` inside quotes is a quote)."""
    return [
        match.group(1).replace('""', '"') if match.group(2) is None else match.group(2)
        for match in _ARGUMENT.finditer(rest)
    ]


class _PageReader:
    """Reads roff source line by line into sections of blocks (see the module docstring)."""

    def __init__(self) -> None:
        self.sections: list[Section] = []
        self.lines: list[str] = []  # the text of the block being read
        self.kind = "P"
        self.awaiting: str | None = None  # "SH"/"SS" after a heading macro without text, "tag" after `.TP`
        self.skip_until: str | None = None  # the request that ends a skipped region
        self.glue = False  # the previous line ended in `\c`: the next text continues the same word

    def flush(self, kind: str | None = None) -> None:
        """End the block being read; the next one is of `kind` (default: the same kind)."""
        text = " ".join(part for part in self.lines if part).strip()
        if text and self.sections:
            self.sections[-1].blocks.append((self.kind, text))
        self.lines = []
        self.kind = kind or self.kind

    def text(self, text: str) -> None:
        """A line of text: a heading, a `.TP` tag, or more of the current block."""
        if self.awaiting in ("SH", "SS"):
            self.heading(self.awaiting, text)
        elif self.awaiting == "tag":
            self.awaiting = None
            self.flush("TAG")
            self.lines.append(text)
            self.flush("TP")
        elif self.glue and self.lines:
            self.lines[-1] += text
        else:
            self.lines.append(text)
        self.glue = False

    def heading(self, macro: str, title: str) -> None:
        self.awaiting = None
        self.flush("P")
        if macro == "SH":
            self.sections.append(Section(title.strip()))
        elif self.sections:
            self.sections[-1].blocks.append(("SS", title.strip()))

    def request(self, name: str, arguments: list[str]) -> bool:
        """Handle one request or macro; False for a page this reader does not follow."""
        if name in ("so", "Dd", "Sh"):
            return False
        if name in _SKIPPED_BLOCKS or name in _NO_FILL:
            self.flush()
            self.skip_until = _SKIPPED_BLOCKS.get(name) or _NO_FILL[name]
        elif name in ("SH", "SS"):
            title = " ".join(roff_text(argument) for argument in arguments)
            if title:
                self.heading(name, title)
            else:
                self.flush()
                self.awaiting = name
        elif name in _PARAGRAPH:
            self.flush("P")
        elif name in _BREAK:
            self.flush()
        elif name in ("TP", "TQ"):
            self.flush()
            self.awaiting = "tag"
        elif name == "IP":
            tag = roff_text(arguments[0]) if arguments else ""
            if re.search(r"\w", tag):  # a word or number, not a bullet
                self.flush("TAG")
                self.lines.append(tag)
            self.flush("IP")
        elif name in _FONT or name in _ALTERNATING:
            texts = [roff_text(argument) for argument in arguments]
            if texts:
                self.text(" ".join(texts) if name in _FONT else "".join(texts))
        elif name in ("UE", "ME"):  # the punctuation after a link
            self.lines[-1:] = ["".join(self.lines[-1:]) + "".join(arguments)]
        elif name == "URL" and len(arguments) > 1:  # the older `.URL address text punctuation`
            self.text("".join(roff_text(argument) for argument in arguments[1:]))
        # Any other request or macro (.br, .PD, .in, .IX, .UR, .MT, .ad, .TH, ...) changes layout, not text.
        return True

    def line(self, raw: str) -> bool:
        if self.skip_until is not None:
            if raw.strip() in (f".{self.skip_until}", self.skip_until) or (self.skip_until == "}" and "\\}" in raw):
                self.skip_until = None
            return True
        line = _COMMENT.sub("", raw)
        glue = line.endswith("\\c")
        line = line.removesuffix("\\c")
        if line.startswith((".", "'")):
            name, rest = _REQUEST.match(line).groups()
            if name in ("if", "ie", "el"):  # conditionals: skipped, with the braces they open
                if "\\{" in line and "\\}" not in line:
                    self.skip_until = "}"
                return True
            if name and not self.request(name, _arguments(rest)):
                return False
        elif line.strip():
            self.text(roff_text(line))
        else:
            self.flush()  # a blank line breaks the block as `.sp` does
        self.glue = glue
        return True


def parse_page(source: str) -> list[Section] | None:
    """The sections of a man page's roff source; None for a page that only includes another (`.so`)
    or is written in mdoc (`.Dd`/`.Sh`), which this reader does not follow."""
    reader = _PageReader()
    for line in source.splitlines():
        if not reader.line(line):
            return None
    reader.flush()
    return reader.sections


def read_page(path: Path) -> list[Section] | None:
    """The sections of a (possibly gzip-compressed) man page file."""
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return parse_page(text)


def align_page(
    page: str, english: list[Section], spanish: list[Section], dropped: list[DroppedRecord]
) -> list[Candidate]:
    """Candidates of one page: blocks paired by order in every section whose block kinds match."""
    if spanish and spanish[-1].title.upper() in _TRANSLATION_SECTIONS:
        spanish = spanish[:-1]
    prefix = f"man:{page}"
    if len(english) != len(spanish):
        detail = f"{len(english)} vs {len(spanish)} sections"
        dropped.append(DroppedRecord(id=prefix, reason="page structure differs", detail=detail))
        return []
    candidates: list[Candidate] = []
    for number, (english_section, spanish_section) in enumerate(zip(english, spanish), start=1):
        english_blocks = [("SH", english_section.title)] + english_section.blocks
        spanish_blocks = [("SH", spanish_section.title)] + spanish_section.blocks
        if [kind for kind, _ in english_blocks] != [kind for kind, _ in spanish_blocks]:
            detail = f"{english_section.title}: {len(english_blocks)} vs {len(spanish_blocks)} blocks"
            dropped.append(DroppedRecord(id=f"{prefix}:{number}", reason="section structure differs", detail=detail))
            continue
        for block, ((_, en), (_, es)) in enumerate(zip(english_blocks, spanish_blocks)):
            candidates.append(
                Candidate(f"{prefix}:{number}.{block}", en, es, SPANISH_PACKAGE, "man", prefix, document=True)
            )
    return candidates


def english_page(roots: dict[str, Path], relative: Path) -> Path | None:
    """The English page at `usr/share/man/RELATIVE` in the first package (by name) holding it as a file."""
    for name in sorted(roots):
        if name == SPANISH_PACKAGE:
            continue
        path = roots[name] / _ENGLISH_MAN / relative
        if path.is_file() and not path.is_symlink():
            return path
    return None


def man_candidates(roots: dict[str, Path], dropped: list[DroppedRecord]) -> list[Candidate]:
    """Pairs of every Spanish page whose English page is in one of the selected packages."""
    if SPANISH_PACKAGE not in roots:
        return []
    spanish_dir = roots[SPANISH_PACKAGE] / _SPANISH_MAN
    candidates: list[Candidate] = []
    for spanish_path in sorted(spanish_dir.glob("man*/*")):
        if spanish_path.is_symlink() or not spanish_path.is_file():
            continue  # another name for a page read under its own name
        relative = spanish_path.relative_to(spanish_dir)
        page = relative.name.removesuffix(".gz")
        english_path = english_page(roots, relative)
        if english_path is None:
            dropped.append(DroppedRecord(id=f"man:{page}", reason="no English page"))
            continue
        try:
            english, spanish = read_page(english_path), read_page(spanish_path)
        except (OSError, EOFError, gzip.BadGzipFile) as error:
            dropped.append(DroppedRecord(id=f"man:{page}", reason="unreadable page", detail=str(error)[:200]))
            continue
        if english is None or spanish is None:
            dropped.append(DroppedRecord(id=f"man:{page}", reason="page not read", detail="`.so` include or mdoc"))
            continue
        candidates += align_page(page, english, spanish, dropped)
    return without_english(candidates, dropped)
