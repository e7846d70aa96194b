"""Plain text from the markup of documentation catalogs: reStructuredText (Sphinx) and XML (Mallard, DocBook, HTML).

A documentation catalog holds paragraphs with their inline markup; a reader of the built manual sees
the text it renders to, and that is what a sentence pair should hold:

- reST: ``literal`` → literal, :role:`target` → target (:class:`~a.B` → B, :ref:`title <label>` →
  title, :pep:`8` → PEP 8), `text <url>`_ → text, *emphasis* and **strong** → their text, footnote
  marks `[1]_` removed, backslash escapes resolved, a closing `::` → `:`;
- XML: elements give their text (`<gui>Save</gui>` → Save), key and menu sequences their rendering
  (Ctrl+S, Edit ▸ Copy), an empty link its URL;
- code blocks (a literal block after `::`, an indented or `>>>` block, a multi-line `<code>`/`<screen>`)
  are removed whole.

What the renderer fills in from elsewhere (a :ref:`label` or `<link xref="page"/>` without its own
text, a |substitution|, itstool's `<_:link-1/>` placeholders) is unknown here: it becomes
`UNRESOLVED`, and the sentence that holds it is dropped by the caller. Characters that came from code
(literals, code roles and elements, code blocks) are counted, so that entries which are mostly code
can be dropped.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

import lxml.etree

UNRESOLVED = "\ufffc"  # OBJECT REPLACEMENT CHARACTER: text the renderer would fill in
MARKUPS = ("rest", "xml", "text")  # text: paragraphs without inline markup, code blocks removed all the same


@dataclass(frozen=True)
class PlainText:
    """A paragraph without its markup; `code_chars` counts its characters that came from code plus
    the `removed_chars` of the code blocks taken out of it."""

    text: str
    code_chars: int = 0
    removed_chars: int = 0

    @property
    def code_share(self) -> float:
        """The share of the paragraph's characters, removed code blocks included, that are code (0 when empty)."""
        total = len(self.text) + self.removed_chars
        return self.code_chars / total if total else 0.0


def plain_text(text: str, markup: str) -> PlainText:
    """`text` as a reader of the rendered document sees it; `markup` is one of `MARKUPS`."""
    if markup == "rest":
        return _with_prompt_as_code(_rest(text))
    if markup == "xml":
        return _with_prompt_as_code(_xml(text))
    text, removed = _without_code_blocks(text, rest=False)
    return _with_prompt_as_code(PlainText(" ".join(text.split()), removed, removed))


# --- code blocks (both markups) ------------------------------------------------------------------

_BLANK_LINE = re.compile(r"\n[ \t]*\n")
_PROMPT = re.compile(r"^\s*(?:>>>|\.\.\.\s|\$\s|#\s|%\s)")  # a Python, shell or root prompt, a shell comment
_PROSE_LINE_END = re.compile(r"[.!?:]\W*$")  # a line of prose ends with a sentence or a colon


def _without_code_blocks(text: str, rest: bool) -> tuple[str, int]:
    """The paragraphs of `text` that are not code blocks, joined by blank lines, and the characters removed.

    A code block is an indented paragraph (in reST, where literal blocks are indented; elsewhere one of
    several lines), a paragraph of prompts (`>>>`, `$`), a listing of several lines none of which ends a
    sentence (commands, file names), or a reST directive or comment (`.. `).
    """
    kept: list[str] = []
    removed = 0
    for block in _BLANK_LINE.split(text):
        lines = [line for line in block.split("\n") if line.strip()]
        if not lines:
            continue
        if _is_code_block(lines, rest):
            removed += len(block.strip())
        else:
            kept.append(block.strip())
    return "\n\n".join(kept), removed


def _is_code_block(lines: list[str], rest: bool) -> bool:
    if all(line[:1] in (" ", "\t") for line in lines) and (rest or len(lines) > 1):
        return True
    if all(_PROMPT.match(line) for line in lines):
        return True
    if len(lines) > 1 and not any(_PROSE_LINE_END.search(line) for line in lines):
        return True
    return rest and lines[0].startswith(".. ")


def _with_prompt_as_code(plain: PlainText) -> PlainText:
    """A paragraph that begins with a prompt (`$ cd dir`) is a command line: all of it is code."""
    if _PROMPT.match(plain.text):
        return PlainText(plain.text, len(plain.text) + plain.removed_chars, plain.removed_chars)
    return plain


# --- reStructuredText ----------------------------------------------------------------------------

_ROLE_NAME = r"[A-Za-z][\w.+-]*(?::[A-Za-z][\w.+-]*)*"
# Emphasized text: no unescaped `*` inside, no space just inside the marks (`*\*args*` emphasizes "*args").
_EMPHASIZED = r"(?:[^\s*\\]|\\.)(?:(?:[^*\\]|\\.)*(?:[^\s*\\]|\\.))?"
_INLINE = re.compile(
    r"``(?P<literal>.+?)``(?!`)"
    rf"|:(?P<role>{_ROLE_NAME}):`(?P<role_text>(?:[^`\\]|\\.)+)`"
    r"|`(?P<link>(?:[^`\\]|\\.)+)`__?(?!\w)"
    rf"|`(?P<interpreted>(?:[^`\\]|\\.)+)`(?::{_ROLE_NAME}:)?"
    r"|\s?\[(?:#[\w-]*|\*|\d+|[A-Za-z][\w.-]*)\]_(?!\w)"  # footnote and citation marks
    r"|\|(?P<substitution>[^|\s](?:[^|]*[^|\s])?)\|(?:__?)?(?![\w|])"
    rf"|(?<![\w*\\])\*\*(?P<strong>{_EMPHASIZED})\*\*(?![\w*])"
    rf"|(?<![\w*\\])\*(?P<emphasis>{_EMPHASIZED})\*(?![\w*])"
    r"|(?<![\w`\\])(?P<reference>[A-Za-z][\w-]*[A-Za-z0-9])__?(?=[\s.,;:!?)\]]|$)",
    re.DOTALL,
)
_EXPLICIT_TITLE = re.compile(r"^(?P<title>.*?\S)\s*<(?P<target>[^<>]+)>$", re.DOTALL)
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_CLOSING_DOUBLE_COLON = re.compile(r"(\s?)::$")

# Roles whose text is prose rather than code; every other role (func, class, c:macro, option, file, ...) is code.
_PROSE_ROLES = frozenset(
    "ref doc numref any term dfn pep rfc issue gh abbr menuselection guilabel sup sub emphasis strong "
    "title-reference title t index manpage download".split()
)
# Roles that point at a section or document: without an explicit title the rendered text is that of the target.
_TITLE_ROLES = frozenset({"ref", "doc", "numref", "any"})
# Roles whose text may contain `<...>` as literal characters, not an explicit target.
_LITERAL_ROLES = frozenset({"samp", "kbd", "code", "literal", "math", "file", "regexp"})
_NUMBERED_ROLES = {"pep": "PEP {}", "rfc": "RFC {}", "issue": "bpo-{}", "gh": "gh-{}"}


def _rest(text: str) -> PlainText:
    text, removed = _without_code_blocks(text, rest=True)
    paragraphs = [_rest_paragraph(paragraph) for paragraph in text.split("\n\n")] if text else []
    body = " ".join(paragraph.text for paragraph in paragraphs if paragraph.text)
    code = sum(paragraph.code_chars for paragraph in paragraphs) + removed
    return PlainText(body, code, removed)


def _rest_paragraph(text: str) -> PlainText:
    text = " ".join(text.split())
    text = _CLOSING_DOUBLE_COLON.sub(lambda match: "" if match.group(1) else ":", text)
    parts: list[str] = []
    code = 0
    position = 0
    for match in _INLINE.finditer(text):
        parts.append(_plain_gap(text[position : match.start()]))
        rendered, is_code = _render_inline(match)
        parts.append(rendered)
        code += len(rendered) if is_code else 0
        position = match.end()
    parts.append(_plain_gap(text[position:]))
    return PlainText(" ".join("".join(parts).split()), code)


def _plain_gap(text: str) -> str:
    """Text between inline markup: escapes resolved, a stray backtick (broken markup) removed."""
    return _unescape(re.sub(r"(?<!\\)`", "", text))


_INLINE_KINDS = ("literal", "role", "link", "interpreted", "substitution", "strong", "emphasis", "reference")


def _render_inline(match: re.Match) -> tuple[str, bool]:
    """The rendered text of one inline markup construct, and whether it is code."""
    kind = next((name for name in _INLINE_KINDS if match.group(name) is not None), None)
    value = match.group(kind) if kind else ""
    if kind == "literal":
        return value, True
    if kind == "role":
        return _render_role(value.lower(), match.group("role_text"))
    if kind == "link":
        title = _EXPLICIT_TITLE.match(value)
        return _unescape(title.group("title") if title else value), False
    if kind == "substitution":
        return UNRESOLVED, False
    if kind in ("interpreted", "strong", "emphasis", "reference"):
        return _unescape(value), False
    return "", False  # a footnote or citation mark


def _render_role(role: str, text: str) -> tuple[str, bool]:
    name = role.rsplit(":", 1)[-1]  # `py:class` → class, `c:func` → func
    title = None if name in _LITERAL_ROLES else _EXPLICIT_TITLE.match(text)
    if title:
        return _unescape(title.group("title")), name not in _PROSE_ROLES
    if name in _TITLE_ROLES:
        return UNRESOLVED, False
    text = _unescape(text)
    if name in _NUMBERED_ROLES:
        return _NUMBERED_ROLES[name].format(text.split("#")[0].strip()), False
    if name == "abbr":
        return text.split(" (")[0], False
    if name in ("menuselection", "guilabel"):
        return text.replace("-->", "‣").replace("&", ""), False
    if name in ("samp", "file"):
        text = text.replace("{", "").replace("}", "")
    if text.startswith("!"):
        text = text[1:]
    elif text.startswith("~"):
        text = text[1:].rsplit(".", 1)[-1]
    return text, name not in _PROSE_ROLES


def _unescape(text: str) -> str:
    return _ESCAPE.sub(r"\1", text.replace("\\ ", ""))


# --- XML: Mallard, DocBook, HTML ------------------------------------------------------------------

_PLACEHOLDER_ELEMENT = re.compile(r"<_:(?P<name>[A-Za-z]+)-\d+\s*/>")
_TAG = re.compile(r"<[^<>]*>")
_MULTILINE_CODE = re.compile(
    r"<(?P<name>code|screen|programlisting|synopsis|pre)\b[^>]*>(?P<body>[^<]*\n[^<]*)</(?P=name)>", re.DOTALL
)
# Elements whose text is code: commands, file names, program input and output, identifiers.
_CODE_ELEMENTS = frozenset(
    "code cmd sys input output file screen command literal filename function parameter constant type varname "
    "envar userinput computeroutput tt kbd samp programlisting synopsis classname methodname structname "
    "structfield symbol option".split()
)
_SKIPPED_ELEMENTS = frozenset({"info", "credit", "revision", "imagedata", "comment"})
_JOINERS = {"keyseq": "+", "keycombo": "+", "guiseq": " ▸ ", "menuchoice": " ▸ "}
# A fragment is parsed on its own: no DTD, no entity expansion, no network.
_XML_PARSER = lxml.etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def _xml(text: str) -> PlainText:
    text, multiline = _without_multiline_code(text)
    text, removed = _without_code_blocks(text, rest=False)
    removed += multiline
    text = _PLACEHOLDER_ELEMENT.sub(lambda m: "" if m.group("name") == "media" else UNRESOLVED, text)
    try:
        root = lxml.etree.fromstring(f"<_root>{text}</_root>", _XML_PARSER)
    except lxml.etree.XMLSyntaxError:
        # Unbalanced tags or undeclared entities: drop every tag, keep the text.
        plain = " ".join(html.unescape(_TAG.sub(" ", text)).split())
        return PlainText(plain, removed, removed)
    parts: list[tuple[str, bool]] = []
    _render_element(root, parts, in_code=False)
    body = "".join(part for part, _ in parts)
    plain = " ".join(body.split())
    code = sum(len(" ".join(part.split())) for part, is_code in parts if is_code) + removed
    return PlainText(plain, min(code, len(plain) + removed), removed)


def _without_multiline_code(text: str) -> tuple[str, int]:
    removed = 0

    def drop(match: re.Match) -> str:
        nonlocal removed
        removed += len(match.group("body").strip())
        return " "

    return _MULTILINE_CODE.sub(drop, text), removed


def _render_element(element, parts: list[tuple[str, bool]], in_code: bool) -> None:
    """Append the (text, is code) pieces of an element and its children, its tail excluded."""
    name = lxml.etree.QName(element).localname if isinstance(element.tag, str) else ""
    code = in_code or name in _CODE_ELEMENTS
    if isinstance(element.tag, str) and name not in _SKIPPED_ELEMENTS:
        if name in ("link", "ulink", "xref") and not "".join(element.itertext()).strip():
            target = element.get("href") or element.get("url")
            parts.append((target, True) if target else (UNRESOLVED, False))
        elif name in _JOINERS:
            _render_joined(element, parts, _JOINERS[name] if element.get("type") != "sequence" else " ", code)
        elif name == "br":
            parts.append((" ", False))
        else:
            if element.text:
                parts.append((element.text, code))
            for child in element:
                _render_element(child, parts, code)
                if child.tail:
                    parts.append((child.tail, code))


def _render_joined(element, parts: list[tuple[str, bool]], joiner: str, code: bool) -> None:
    """A key or menu sequence: its keys or menu items joined the way Mallard and DocBook render them."""
    items: list[str] = [element.text.strip()] if element.text and element.text.strip() else []
    for child in element:
        pieces: list[tuple[str, bool]] = []
        _render_element(child, pieces, code)
        items.append(" ".join("".join(piece for piece, _ in pieces).split()))
        if child.tail and child.tail.strip():
            items.append(child.tail.strip())
    parts.append((joiner.join(item for item in items if item), code))
