"""EPUB e-books (.epub): every XHTML content document translated as an HTML file is.

An EPUB is a zip whose `META-INF/container.xml` names the package document (`.opf`), whose manifest
lists the content documents (`application/xhtml+xml`, the navigation document among them). Each is
read and rendered by the HTML file format (formats/documents.py, passed in as `read_html`), so markup
stays byte for byte and the same rules decide what is translated; the texts of all documents are one
list, in manifest order. The package document (title, author) and the EPUB 2 `toc.ncx` are copied
unchanged; so are images, styles and fonts. `mimetype` is written first and stored, as EPUB requires.
"""

from __future__ import annotations

import posixpath
from typing import Callable
from urllib.parse import unquote

from carousel.formats.limits import DocumentError
from carousel.formats.packages import Package, local_name

CONTENT_TYPES = ("application/xhtml+xml", "text/html")


def read_epub(data: bytes, read_html: Callable) -> tuple[list[str], Callable[[list[str]], bytes]]:
    """(the texts of an .epub, render(translations) -> the translated file); `read_html(bytes)` reads one
    content document as the HTML format does (a FileTexts)."""
    package = Package(data, ".epub")
    names = content_documents(package)
    documents = [(name, read_html(package.read(name))) for name in names]
    texts = [text for _, document in documents for text in document.texts]

    def render(translations: list[str]) -> bytes:
        replaced, start = {}, 0
        for name, document in documents:
            end = start + len(document.texts)
            replaced[name] = document.render(translations[start:end])
            start = end
        return package.write(replaced)

    return texts, render


def content_documents(package: Package) -> list[str]:
    """The package's XHTML content documents, in manifest order, or a DocumentError saying what is missing."""
    if "META-INF/container.xml" not in package.names:
        raise DocumentError("not an .epub file: it has no META-INF/container.xml")
    container = package.read_xml("META-INF/container.xml")
    rootfile = next((e.get("full-path") for e in container.iter() if local_name(e) == "rootfile"), None)
    if not rootfile:
        raise DocumentError("the .epub file's META-INF/container.xml names no package document (rootfile)")
    opf = package.read_xml(rootfile)
    base = posixpath.dirname(rootfile)
    names = []
    for item in opf.iter():
        if local_name(item) == "item" and item.get("media-type") in CONTENT_TYPES and item.get("href"):
            name = posixpath.normpath(posixpath.join(base, unquote(item.get("href").split("#")[0])))
            if name not in package.names:
                raise DocumentError(f"the .epub file's manifest lists {name!r}, which the file does not hold")
            if name not in names:
                names.append(name)
    if not names:
        raise DocumentError("the .epub file has no content documents (XHTML) in its manifest")
    return names
