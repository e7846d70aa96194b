"""What one uploaded document may hold, and the errors of documents that cannot be read.

Defined apart from formats/documents.py so the modules of each format (office.py, opendocument.py,
epub.py, packages.py) can raise them without importing the dispatcher that imports them.
"""

from __future__ import annotations

from dataclasses import dataclass

from carousel.errors import UserError


@dataclass(frozen=True)
class DocumentLimits:
    """What one document may hold; above it, reading or rendering raises DocumentTooLarge."""

    max_texts: int = 10_000  # texts to translate (lines, cues, messages); an office file's paragraphs
    max_chars: int = 500_000  # characters of those texts
    max_elements: int = 500_000  # XML elements of an office file (start tags), tags of an HTML page
    max_unzipped_bytes: int = 64 * 1024 * 1024  # an office file's parts, unpacked
    max_parts: int = 10_000  # files in an office or e-book package
    max_output_ratio: int = 20  # a rendered file: at most this × the input, plus OUTPUT_ALLOWANCE
    parse_seconds: float | None = None  # HTML: give up parsing after this long (None: no deadline)


class DocumentError(UserError):
    """The file cannot be read as its format says (a 400 in the service)."""


class DocumentTooLarge(DocumentError):
    """The file is over a DocumentLimits bound (a 413 in the service)."""
