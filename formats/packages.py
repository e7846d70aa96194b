"""Zip packages (.docx, .pptx, .odt, .epub): their XML parts read safely and the package written back.

Only the parts a format translates are parsed; every other part is copied byte for byte, in the
original order and compression. `mimetype` (ODF, EPUB) is written first and stored uncompressed, as
both standards require. Parts are parsed without DTDs, entities or network access, and a part that
declares entities is refused: office and e-book XML never needs them, and a billion-laughs part
must not reach a parser. The package's size and element counts are bounded before any of this
(formats/documents.py `_check_zip`).
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib

from lxml import etree

from carousel.formats.limits import DocumentError

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
MIMETYPE = "mimetype"


class Package:
    """An uploaded zip package; `what` names it in errors (".docx")."""

    def __init__(self, data: bytes, what: str):
        self.what = what
        try:
            self.archive = zipfile.ZipFile(io.BytesIO(data))
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError):
            raise DocumentError(f"not a {what} file (not a readable zip archive)") from None
        self.names = [info.filename for info in self.archive.infolist()]

    def read(self, name: str | zipfile.ZipInfo) -> bytes:
        try:
            return self.archive.read(name)
        except KeyError:
            raise DocumentError(f"the {self.what} file has no part {name!r}") from None
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError, RuntimeError, OSError,
                zlib.error) as error:  # RuntimeError: encrypted; zlib.error: damaged
            shown = getattr(name, "filename", name)
            raise DocumentError(f"the {self.what} file's part {shown!r} cannot be unpacked: {error}") from None

    def read_xml(self, name: str) -> etree._Element:
        data = self.read(name)
        if b"<!ENTITY" in data:
            raise DocumentError(f"the {self.what} file's part {name!r} declares XML entities, which it may not")
        try:
            return etree.fromstring(data, _PARSER)
        except etree.XMLSyntaxError as error:
            raise DocumentError(f"the {self.what} file's part {name!r} is not well-formed XML: {error}") from None

    def write(self, replaced: dict[str, bytes]) -> bytes:
        """The package with the parts in `replaced` changed; `mimetype` first and stored."""
        infos = self.archive.infolist()
        infos = [i for i in infos if i.filename == MIMETYPE] + [i for i in infos if i.filename != MIMETYPE]
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as package:
            for info in infos:
                copy = zipfile.ZipInfo(info.filename, info.date_time)
                copy.compress_type = zipfile.ZIP_STORED if info.filename == MIMETYPE else info.compress_type
                copy.external_attr, copy.create_system = info.external_attr, info.create_system
                data = replaced[info.filename] if info.filename in replaced else self.read(info)
                package.writestr(copy, data)
        return out.getvalue()


def serialize(root: etree._Element) -> bytes:
    """A parsed part as bytes again, with its XML declaration."""
    standalone = root.getroottree().docinfo.standalone
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=standalone)


def local_name(element) -> str:
    return etree.QName(element).localname if isinstance(element.tag, str) else ""


def natural_order(names: list[str]) -> list[str]:
    """slide2.xml before slide10.xml."""
    return sorted(names, key=lambda name: [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)])
