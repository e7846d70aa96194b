"""Documents translated whole: plain text, HTML, SubRip subtitles, gettext catalogs, .docx and .odt.

Every format is read into a `Document`: the texts to translate (`texts`) and how to put translations
back (`render(translations) -> bytes`), so the caller chooses how to translate them (the command line
with a translator in this process, the service through its batching queues). The format comes from the
file name's extension (`document_format`).

    document = read_document("po", data, source="es", target="en")
    output = document.render([translate(text) for text in document.texts])

What each format keeps:

- text: every line, blank lines and indentation; each non-blank line is one text;
- html: markup byte for byte; the text between tags (not in <script>/<style>) is translated;
- srt: numbering and timings; each cue's text is one text (its line breaks kept where the model keeps them);
- po/pot: the header (Language and Plural-Forms filled in for the target), comments, msgctxt, references,
  existing translations (unless `overwrite`); a new translation is marked `fuzzy` for a reviewer; plural
  entries get every plural form of the target; placeholders (%s, %1$s, %(name)s, {0}, {name}) and
  accelerator marks (_File, &File) are kept valid: the text around placeholders is translated piece by
  piece and the placeholders put back in their order, and the accelerator goes before the first letter
  of the translation, so `msgfmt --check` accepts the catalog;
- docx/odt: paragraphs (body, tables, headers and footers) keep their style; a paragraph's translation
  goes into its first run of text (that run's character formatting applies to all of it).
"""

from __future__ import annotations

import html
import io
import re
import zipfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Callable

from carousel.errors import UserError
from carousel.model.spans import PLACEHOLDER

# extension -> format name
EXTENSIONS = {
    ".txt": "text", ".text": "text",
    ".html": "html", ".htm": "html",
    ".srt": "srt",
    ".po": "po", ".pot": "po",
    ".docx": "docx",
    ".odt": "odt",
}
MEDIA_TYPES = {
    "text": "text/plain; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "po": "text/x-gettext-translation; charset=utf-8",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "odt": "application/vnd.oasis.opendocument.text",
}
# Plural-Forms for target languages whose catalogs may lack one.
PLURAL_FORMS = {
    "en": "nplurals=2; plural=(n != 1);",
    "es": "nplurals=2; plural=(n != 1);",
    "de": "nplurals=2; plural=(n != 1);",
    "it": "nplurals=2; plural=(n != 1);",
    "pt": "nplurals=2; plural=(n != 1);",
    "fr": "nplurals=2; plural=(n > 1);",
}
MAX_UNZIPPED_BYTES = 200 * 1024 * 1024  # a .docx/.odt that inflates beyond this is refused (zip bomb)


class DocumentError(UserError):
    """The file cannot be read as its format says (a 400 in the service)."""


def document_format(name: str) -> str:
    """The format of a file called `name`, from its extension, or a DocumentError naming the choices."""
    suffix = Path(name).suffix.lower()
    if suffix not in EXTENSIONS:
        raise DocumentError(
            f"{name}: unsupported file type {suffix or '(no extension)'!r}; supported: {', '.join(supported_extensions())}"
        )
    return EXTENSIONS[suffix]


def supported_extensions() -> list[str]:
    return list(EXTENSIONS)


@dataclass
class Document:
    texts: list[str]
    _render: Callable[[list[str]], bytes]

    def render(self, translations: list[str]) -> bytes:
        if len(translations) != len(self.texts):
            raise ValueError(f"{len(translations)} translations for {len(self.texts)} texts")
        return self._render(list(translations))


def read_document(fmt: str, data: bytes, source: str = "", target: str = "", overwrite: bool = False) -> Document:
    """`data` read as format `fmt` (see EXTENSIONS); `target` fills gettext headers."""
    readers = {"text": _text, "html": _html, "srt": _srt, "docx": _docx, "odt": _odt}
    if fmt == "po":
        return _po(data, target, overwrite)
    if fmt not in readers:
        raise DocumentError(f"unknown document format {fmt!r}")
    return readers[fmt](data)


def _decode(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DocumentError(f"the {what} file is not valid UTF-8 (byte {error.start})") from None


def has_letters(text: str) -> bool:
    return any(character.isalpha() for character in text)


# -- plain text ------------------------------------------------------------------------------------


def _text(data: bytes) -> Document:
    lines = _decode(data, "text").splitlines(keepends=True)
    parts = [_strip_line(line) for line in lines]
    slots = [i for i, (_, body, _) in enumerate(parts) if has_letters(body)]

    def render(translations: list[str]) -> bytes:
        out = [lead + body + end for lead, body, end in parts]
        for index, translation in zip(slots, translations):
            lead, _, end = parts[index]
            out[index] = lead + " ".join(translation.splitlines()) + end
        return "".join(out).encode("utf-8")

    return Document([parts[i][1] for i in slots], render)


def _strip_line(line: str) -> tuple[str, str, str]:
    """(leading whitespace, text, trailing whitespace and line end)."""
    body = line.rstrip()
    end = line[len(body):]
    stripped = body.lstrip()
    return body[: len(body) - len(stripped)], stripped, end


# -- HTML ------------------------------------------------------------------------------------------


class _TextNodes(HTMLParser):
    """Cuts a page into markup (copied as it was) and text nodes (unescaped)."""

    RAW = {"script", "style"}

    def __init__(self, source: str):
        super().__init__(convert_charrefs=False)
        self.source = source
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", source)]
        self.events: list[tuple[int, bool]] = []  # (start offset, is text)
        self.raw_depth = 0

    def _offset(self) -> int:
        line, column = self.getpos()
        return self.line_starts[line - 1] + column

    def _mark(self, is_text: bool) -> None:
        self.events.append((self._offset(), is_text))

    def handle_starttag(self, tag, attrs):
        self._mark(False)
        if tag in self.RAW:
            self.raw_depth += 1

    def handle_endtag(self, tag):
        self._mark(False)
        if tag in self.RAW and self.raw_depth:
            self.raw_depth -= 1

    def handle_data(self, data):
        self._mark(self.raw_depth == 0)

    def handle_entityref(self, name):
        self._mark(self.raw_depth == 0)

    def handle_charref(self, name):
        self._mark(self.raw_depth == 0)

    def handle_startendtag(self, tag, attrs):
        self._mark(False)

    def handle_comment(self, data):
        self._mark(False)

    def handle_decl(self, decl):
        self._mark(False)

    def handle_pi(self, data):
        self._mark(False)

    def unknown_decl(self, data):
        self._mark(False)


def _html(data: bytes) -> Document:
    source = _decode(data, "HTML")
    parser = _TextNodes(source)
    parser.feed(source)
    parser.close()
    # Consecutive text events (text, entities) make one text node; everything else is markup.
    pieces: list[tuple[str, bool]] = []
    events = parser.events + [(len(source), False)]
    for (start, is_text), (end, _) in zip(events, events[1:]):
        chunk = source[start:end]
        if pieces and pieces[-1][1] and is_text:
            pieces[-1] = (pieces[-1][0] + chunk, True)
        else:
            pieces.append((chunk, is_text))
    if events and events[0][0] > 0:
        pieces.insert(0, (source[: events[0][0]], False))
    parts: list[str | tuple[str, str, str]] = []
    texts = []
    for chunk, is_text in pieces:
        text = html.unescape(chunk) if is_text else ""
        if is_text and has_letters(text):
            stripped = text.strip()
            lead = text[: len(text) - len(text.lstrip())]
            trail = text[len(text.rstrip()):]
            parts.append((lead, stripped, trail))
            texts.append(" ".join(stripped.split()))
        else:
            parts.append(chunk)

    def render(translations: list[str]) -> bytes:
        answers = iter(translations)
        out = []
        for part in parts:
            if isinstance(part, tuple):
                out.append(part[0] + html.escape(next(answers), quote=False) + part[2])
            else:
                out.append(part)
        return "".join(out).encode("utf-8")

    return Document(texts, render)


# -- SubRip ----------------------------------------------------------------------------------------


def _srt(data: bytes) -> Document:
    import srt

    try:
        cues = list(srt.parse(_decode(data, "SubRip"), ignore_errors=False))
    except srt.SRTParseError as error:
        raise DocumentError(f"not a valid SubRip file: {error}") from None
    slots = [i for i, cue in enumerate(cues) if has_letters(cue.content)]

    def render(translations: list[str]) -> bytes:
        for index, translation in zip(slots, translations):
            cues[index].content = translation.strip() or cues[index].content
        return srt.compose(cues, reindex=False).encode("utf-8")

    return Document([cues[i].content for i in slots], render)


# -- gettext catalogs ------------------------------------------------------------------------------

ACCELERATOR = re.compile(r"(?:(?<=\s)|^)([_&])(?=\w)(?!\w+;)")


def _protected_pieces(text: str) -> list[tuple[str, bool]]:
    """`text` cut into (piece, translate?) around placeholders; pieces without letters are kept."""
    pieces: list[tuple[str, bool]] = []
    start = 0
    for match in PLACEHOLDER.finditer(text):
        pieces.append((text[start: match.start()], True))
        pieces.append((match.group(0), False))
        start = match.end()
    pieces.append((text[start:], True))
    return [(piece, wanted and has_letters(piece)) for piece, wanted in pieces if piece]


class _CatalogText:
    """One msgid (or msgid_plural) made ready for translation: accelerator taken out, placeholders kept."""

    def __init__(self, text: str):
        self.accelerator = None
        marks = ACCELERATOR.findall(text)
        if len(marks) == 1:
            self.accelerator = marks[0]
            text = ACCELERATOR.sub("", text, count=1)
        self.pieces = _protected_pieces(text)

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


def plural_count(plural_forms: str) -> int | None:
    match = re.search(r"nplurals\s*=\s*(\d+)", plural_forms or "")
    return int(match.group(1)) if match else None


def _po(data: bytes, target: str, overwrite: bool) -> Document:
    import polib

    try:
        catalog = polib.pofile(_decode(data, "gettext catalog"), wrapwidth=78)
    except (OSError, ValueError) as error:
        raise DocumentError(f"not a valid gettext catalog: {error}") from None
    _fill_header(catalog, target)
    nplurals = plural_count(catalog.metadata.get("Plural-Forms", "")) or 2

    jobs: list[tuple[object, list[_CatalogText]]] = []
    for entry in catalog:
        if entry.obsolete or entry.msgid == "":
            continue
        translated = bool(entry.msgstr) or any(entry.msgstr_plural.values())
        if translated and not overwrite:
            continue
        parts = [_CatalogText(entry.msgid)]
        if entry.msgid_plural:
            parts.append(_CatalogText(entry.msgid_plural))
        jobs.append((entry, parts))
    texts = [text for _, parts in jobs for part in parts for text in part.texts]

    def render(translations: list[str]) -> bytes:
        answers = iter(translations)
        for entry, parts in jobs:
            joined = [part.join([next(answers) for _ in part.texts]) for part in parts]
            if entry.msgid_plural:
                entry.msgstr_plural = {0: joined[0], **{n: joined[1] for n in range(1, nplurals)}}
            else:
                entry.msgstr = joined[0]
            if "fuzzy" not in entry.flags:
                entry.flags.insert(0, "fuzzy")
            entry.previous_msgid = entry.previous_msgid_plural = entry.previous_msgctxt = None
        return str(catalog).encode("utf-8")

    return Document(texts, render)


def _fill_header(catalog, target: str) -> None:
    """A template's placeholders (charset=CHARSET, empty Language, nplurals=INTEGER) made real."""
    meta = catalog.metadata
    content_type = meta.get("Content-Type", "")
    if "CHARSET" in content_type or not content_type:
        meta["Content-Type"] = "text/plain; charset=UTF-8"
    meta.setdefault("Content-Transfer-Encoding", "8bit")
    meta.setdefault("MIME-Version", "1.0")
    if target and not meta.get("Language"):
        meta["Language"] = target
    if plural_count(meta.get("Plural-Forms", "")) is None:
        meta["Plural-Forms"] = PLURAL_FORMS.get(target, "nplurals=2; plural=(n != 1);")
    template = False
    for name, value in (("PO-Revision-Date", "1970-01-01 00:00+0000"),
                        ("Last-Translator", "carousel (machine translation)"), ("Language-Team", "none")):
        if any(word in meta.get(name, "") for word in ("YEAR", "FULL NAME", "LANGUAGE")):
            meta[name], template = value, True
    if template:  # a template's header is fuzzy until someone fills it in, as done here
        catalog.metadata_is_fuzzy = False


# -- office documents ------------------------------------------------------------------------------


def _check_zip(data: bytes, what: str) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if sum(info.file_size for info in archive.infolist()) > MAX_UNZIPPED_BYTES:
                raise DocumentError(f"the {what} file unpacks to more than {MAX_UNZIPPED_BYTES} bytes")
    except zipfile.BadZipFile:
        raise DocumentError(f"not a {what} file (not a zip archive)") from None


def _docx(data: bytes) -> Document:
    import docx

    _check_zip(data, ".docx")
    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as error:  # python-docx raises several kinds for a damaged package
        raise DocumentError(f"not a readable .docx file: {error}") from None
    paragraphs = [p for p in _docx_paragraphs(document) if has_letters(p.text)]

    def render(translations: list[str]) -> bytes:
        for paragraph, translation in zip(paragraphs, translations):
            runs = [run for run in paragraph.runs if run.text]
            if not runs:
                continue
            runs[0].text = translation
            for run in runs[1:]:
                run.text = ""
        out = io.BytesIO()
        document.save(out)
        return out.getvalue()

    return Document([p.text for p in paragraphs], render)


def _docx_paragraphs(document):
    def walk(container):
        for paragraph in container.paragraphs:
            yield paragraph
        for table in getattr(container, "tables", []):
            for row in table.rows:
                for cell in row.cells:
                    yield from walk(cell)

    seen = {}  # id -> element, kept alive so that an id is never reused by another element
    containers = [document]
    for section in document.sections:
        containers += [section.header, section.footer]
    for container in containers:
        for paragraph in walk(container):
            if id(paragraph._p) not in seen:  # merged table cells repeat the same paragraph
                seen[id(paragraph._p)] = paragraph._p
                yield paragraph


def _odt(data: bytes) -> Document:
    from odf import teletype, text as odf_text
    from odf.opendocument import load

    _check_zip(data, ".odt")
    try:
        document = load(io.BytesIO(data))
    except Exception as error:  # odfpy raises several kinds for a damaged package
        raise DocumentError(f"not a readable .odt file: {error}") from None
    paragraphs = []
    for kind in (odf_text.H, odf_text.P):
        for element in document.getElementsByType(kind):
            if has_letters(teletype.extractText(element)) and not _has_paragraph_ancestor(element):
                paragraphs.append(element)

    def render(translations: list[str]) -> bytes:
        for element, translation in zip(paragraphs, translations):
            nodes = _odt_text_nodes(element)
            if not nodes:
                continue
            nodes[0].data = translation
            for node in nodes[1:]:
                node.data = ""
        out = io.BytesIO()
        document.write(out)
        return out.getvalue()

    return Document([teletype.extractText(p) for p in paragraphs], render)


def _has_paragraph_ancestor(element) -> bool:
    parent = element.parentNode
    while parent is not None:
        if getattr(parent, "qname", (None, None))[1] in ("p", "h"):
            return True
        parent = parent.parentNode
    return False


def _odt_text_nodes(element) -> list:
    nodes = []
    for child in element.childNodes:
        if child.nodeType == child.TEXT_NODE:
            if child.data.strip():
                nodes.append(child)
        elif getattr(child, "qname", (None, None))[1] not in ("note", "annotation"):
            nodes.extend(_odt_text_nodes(child))
    return nodes


def translate_document(document: Document, translate: Callable[[list[str]], list[str]]) -> bytes:
    """The document rendered with `translate` applied to its texts (each distinct text once)."""
    distinct = list(dict.fromkeys(document.texts))
    mapping = dict(zip(distinct, translate(distinct) if distinct else []))
    return document.render([mapping[text] for text in document.texts])
