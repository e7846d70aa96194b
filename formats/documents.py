"""Documents translated whole: plain text, HTML, SubRip subtitles, gettext catalogs, .docx, .odt, .pptx, .epub.

Every format is read into `FileTexts`: the texts to translate (`texts`) and how to put translations back
into the file (`render(translations) -> bytes`), so the caller chooses how to translate them (the
command line with a translator in this process, the service through its batching queues). The format
comes from the file name's extension (`document_format`).

    document = read_document("po", data, source="es", target="en")
    output = document.render([translate(text) for text in document.texts])

What each format keeps:

- text: every line, blank lines and indentation; each line with words is one text;
- html: markup byte for byte; each block's text with its inline tags, and the attributes people read
  (formats/html.py), are translated; `translate="no"`/`notranslate` elements and <script>/<style> are not;
- srt: numbering and timings; each cue's text is one text, each of its lines translated as a line;
- po/pot: the header (Language and Plural-Forms filled in for the target), comments, msgctxt, references,
  existing translations (unless `overwrite`); a new translation is marked `fuzzy` for a reviewer; plural
  entries get every plural form of the target; placeholders, accelerators and line breaks inside a
  message stay (formats/catalogs.py), so `msgfmt --check` accepts the catalog;
- docx/odt/pptx: paragraphs keep their style, and each is translated whole with its bold, italic, links
  and other character formatting carried across as inline tags (formats/inline.py); tabs, breaks,
  images and fields keep their place (formats/office.py: .docx and .pptx; formats/opendocument.py: .odt);
- epub: each XHTML content document translated as an HTML file (formats/epub.py).

A document is bounded before it is translated (`DocumentLimits`, `DocumentTooLarge` above them): its
texts and their characters, a zip package's files and unpacked size, XML elements and paragraphs (counted in the
raw XML before a parser builds anything), HTML's parse time, and the rendered file's size against the
upload's. Only text with words is translated (model/sentences.py `has_words`).
"""

from __future__ import annotations

import html
import io
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from carousel.formats.catalogs import CatalogError, CatalogText, check_strings, plural_count, plural_forms
from carousel.formats.epub import read_epub
from carousel.formats.html import HtmlTooComplex, read_page
from carousel.formats.limits import DocumentError, DocumentLimits, DocumentTooLarge
from carousel.formats.office import read_office
from carousel.formats.opendocument import read_odt
from carousel.model.sentences import has_words, split_sentences

# extension -> format name
EXTENSIONS = {
    ".txt": "text", ".text": "text",
    ".html": "html", ".htm": "html",
    ".srt": "srt",
    ".po": "po", ".pot": "po",
    ".docx": "docx",
    ".odt": "odt",
    ".pptx": "pptx",
    ".epub": "epub",
}
MEDIA_TYPES = {
    "text": "text/plain; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "po": "text/x-gettext-translation; charset=utf-8",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "odt": "application/vnd.oasis.opendocument.text",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "epub": "application/epub+zip",
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
OUTPUT_ALLOWANCE = 1024 * 1024  # bytes a rendered file may have beyond max_output_ratio × the input
# How a paragraph starts in each office format's XML (with ">", " " or "/>" after it).
PARAGRAPH_TAGS = {"docx": (b"<w:p",), "odt": (b"<text:p", b"<text:h"), "pptx": (b"<a:p",), "epub": (b"<p",)}
# The parts of a package whose elements are counted: its XML, XHTML and package documents.
MARKUP_PARTS = (".xml", ".xhtml", ".html", ".htm", ".opf", ".ncx", ".rels")


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
class FileTexts:
    """A file read for translation: its texts, and how to write the file back with their translations."""

    texts: list[str]
    _render: Callable[[list[str]], bytes]
    max_output_bytes: int | None = None

    def render(self, translations: list[str]) -> bytes:
        if len(translations) != len(self.texts):
            raise ValueError(f"{len(translations)} translations for {len(self.texts)} texts")
        output = self._render(list(translations))
        if self.max_output_bytes is not None and len(output) > self.max_output_bytes:
            raise DocumentTooLarge(
                f"the translated file would be {len(output)} bytes, more than the {self.max_output_bytes} "
                "allowed for this upload"
            )
        return output


def read_document(fmt: str, data: bytes, source: str = "", target: str = "", overwrite: bool = False,
                  limits: DocumentLimits = DocumentLimits()) -> FileTexts:
    """`data` read as format `fmt` (see EXTENSIONS) within `limits`; `target` fills gettext headers."""
    if fmt == "po":
        document = _po(data, target, overwrite)
    elif fmt in ("text", "srt"):
        document = _text(data) if fmt == "text" else _srt(data)
    elif fmt == "html":
        document = _html(data, limits)
    elif fmt in PARAGRAPH_TAGS:  # zip packages
        _check_zip(data, fmt, limits)
        document = _epub(data, limits) if fmt == "epub" else _office(data, fmt)
    else:
        raise DocumentError(f"unknown document format {fmt!r}")
    _check_texts(document.texts, limits)
    document.max_output_bytes = limits.max_output_ratio * len(data) + OUTPUT_ALLOWANCE
    return document


def _check_texts(texts: list[str], limits: DocumentLimits) -> None:
    if len(texts) > limits.max_texts:
        raise DocumentTooLarge(f"the file holds {len(texts)} texts to translate; the limit is {limits.max_texts}")
    chars = sum(len(text) for text in texts)
    if chars > limits.max_chars:
        raise DocumentTooLarge(f"the file holds {chars} characters to translate; the limit is {limits.max_chars}")


def _decode(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DocumentError(f"the {what} file is not valid UTF-8 (byte {error.start})") from None


# -- plain text ------------------------------------------------------------------------------------


def _text(data: bytes) -> FileTexts:
    lines = _decode(data, "text").splitlines(keepends=True)
    parts = [_strip_line(line) for line in lines]
    slots = [i for i, (_, body, _) in enumerate(parts) if has_words(body)]

    def render(translations: list[str]) -> bytes:
        out = [lead + body + end for lead, body, end in parts]
        for index, translation in zip(slots, translations):
            lead, _, end = parts[index]
            out[index] = lead + " ".join(translation.splitlines()) + end
        return "".join(out).encode("utf-8")

    return FileTexts([parts[i][1] for i in slots], render)


def _strip_line(line: str) -> tuple[str, str, str]:
    """(leading whitespace, text, trailing whitespace and line end)."""
    body = line.rstrip()
    end = line[len(body):]
    stripped = body.lstrip()
    return body[: len(body) - len(stripped)], stripped, end


# -- HTML ------------------------------------------------------------------------------------------


def _html(data: bytes, limits: DocumentLimits) -> FileTexts:
    source = _decode(data, "HTML")
    tags = source.count("<")
    if tags > limits.max_elements:
        raise DocumentTooLarge(f"the HTML file holds {tags} tags; the limit is {limits.max_elements}")
    deadline = None if limits.parse_seconds is None else time.monotonic() + limits.parse_seconds
    try:
        page = read_page(source, deadline)
    except HtmlTooComplex:
        raise DocumentTooLarge(f"the HTML could not be parsed within {limits.parse_seconds:g} seconds") from None
    return FileTexts(page.texts, lambda translations: page.render(translations).encode("utf-8"))


# -- SubRip ----------------------------------------------------------------------------------------


def _srt(data: bytes) -> FileTexts:
    import srt

    try:
        cues = list(srt.parse(_decode(data, "SubRip"), ignore_errors=False))
    except srt.SRTParseError as error:
        raise DocumentError(f"not a valid SubRip file: {error}") from None
    slots = [i for i, cue in enumerate(cues) if has_words(cue.content)]

    def render(translations: list[str]) -> bytes:
        for index, translation in zip(slots, translations):
            cues[index].content = translation.strip() or cues[index].content
        return srt.compose(cues, reindex=False).encode("utf-8")

    return FileTexts([cues[i].content for i in slots], render)


# -- gettext catalogs ------------------------------------------------------------------------------


def _po(data: bytes, target: str, overwrite: bool) -> FileTexts:
    import polib

    text = _decode(data, "gettext catalog")
    try:
        check_strings(text)
        catalog = polib.pofile(text, wrapwidth=78)
        _fill_header(catalog, target)
        nplurals = plural_forms(catalog.metadata["Plural-Forms"])
    except CatalogError as error:
        raise DocumentError(f"not a valid gettext catalog: {error}") from None
    except (OSError, ValueError) as error:  # polib's own complaints
        raise DocumentError(f"not a valid gettext catalog: {error}") from None

    jobs: list[tuple[object, list[CatalogText]]] = []
    for entry in catalog:
        if entry.obsolete or entry.msgid == "":
            continue
        translated = bool(entry.msgstr) or any(entry.msgstr_plural.values())
        if translated and not overwrite:
            continue
        parts = [CatalogText(entry.msgid)]
        if entry.msgid_plural:
            parts.append(CatalogText(entry.msgid_plural))
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

    return FileTexts(texts, render)


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


def _check_zip(data: bytes, fmt: str, limits: DocumentLimits) -> None:
    """Unpacked size, XML elements and paragraphs within `limits`, counted in the raw parts as they
    inflate (a few bytes of compressed XML can hold millions of empty paragraphs)."""
    what = f".{fmt}"
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            files = len(archive.infolist())
            if files > limits.max_parts:
                raise DocumentTooLarge(f"the {what} file holds {files} files; the limit is {limits.max_parts}")
            unpacked = sum(info.file_size for info in archive.infolist())
            if unpacked > limits.max_unzipped_bytes:
                raise DocumentTooLarge(f"the {what} file unpacks to {unpacked} bytes; the limit is {limits.max_unzipped_bytes}")
            elements = paragraphs = 0
            for info in archive.infolist():
                if info.filename.lower().endswith(MARKUP_PARTS):
                    counted = _count_tags(archive, info, PARAGRAPH_TAGS[fmt])
                    elements, paragraphs = elements + counted[0], paragraphs + counted[1]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError, RuntimeError, zlib.error):
        # RuntimeError: an encrypted part; zlib.error: a damaged one
        raise DocumentError(f"not a {what} file (not a readable zip archive)") from None
    if elements > limits.max_elements:
        raise DocumentTooLarge(f"the {what} file holds {elements} XML elements; the limit is {limits.max_elements}")
    if paragraphs > limits.max_texts:
        raise DocumentTooLarge(f"the {what} file holds {paragraphs} paragraphs; the limit is {limits.max_texts}")


def _count_tags(archive: zipfile.ZipFile, info: zipfile.ZipInfo, paragraph_tags: tuple[bytes, ...]) -> tuple[int, int]:
    """(start tags, paragraph start tags) of one XML part, read in chunks. A chunk is counted up to a "<"
    near its end, which goes with the next chunk: no tag is cut in two, since a tag holds no "<" after
    its first byte, and the tags counted are shorter than the 16 bytes looked back."""
    elements = paragraphs = 0
    left = b""
    with archive.open(info) as part:
        while True:
            chunk = part.read(1 << 20)
            block = left + chunk
            cut = block.rfind(b"<", max(0, len(block) - 16)) if chunk else -1
            cut = len(block) if cut < 0 else cut
            ready, left = block[:cut], block[cut:]
            elements += ready.count(b"<") - ready.count(b"</") - ready.count(b"<?") - ready.count(b"<!")
            paragraphs += sum(ready.count(tag + end) for tag in paragraph_tags for end in (b">", b" ", b"/>"))
            if not chunk:
                return elements, paragraphs


def _office(data: bytes, fmt: str) -> FileTexts:
    return FileTexts(*(read_odt(data) if fmt == "odt" else read_office(data, fmt)))


def _epub(data: bytes, limits: DocumentLimits) -> FileTexts:
    return FileTexts(*read_epub(data, lambda page: _html(page, limits)))


def sentence_counts(texts: list[str]) -> dict[str, int]:
    """Each distinct text's sentences, as the translator cuts them (model/sentences.py)."""
    return {text: len(split_sentences(text).sentences) for text in dict.fromkeys(texts)}


def translate_document(document: FileTexts, translate: Callable[[list[str]], list[str]]) -> bytes:
    """The document rendered with `translate` applied to its texts (each distinct text once)."""
    distinct = list(dict.fromkeys(document.texts))
    mapping = dict(zip(distinct, translate(distinct) if distinct else []))
    return document.render([mapping[text] for text in document.texts])
