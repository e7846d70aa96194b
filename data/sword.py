"""Read the verses of an installed SWORD module through `mod2imp` (Debian package `libsword-utils`).

`mod2imp MODULE` prints every key as a `$$$Book C:V` line followed by that key's OSIS fragment.
Chapter 0 and verse 0 keys hold book and chapter headings, and `[ ... ]` keys hold module
and testament headings: none of them is a verse.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Iterator

from carousel.errors import UserError

_KEY_LINE = re.compile(r"^\$\$\$(.*)$", re.MULTILINE)
_VERSE_KEY = re.compile(r"^(?P<book>.+) (?P<chapter>\d+):(?P<verse>\d+)$")


@dataclass(frozen=True)
class RawVerse:
    """One verse as the module stores it: its reference parts and its OSIS fragment."""

    book: str
    chapter: int
    verse: int
    osis: str

    @property
    def ref(self) -> str:
        """The reference as `mod2imp` prints it, e.g. `I Peter 1:3`."""
        return f"{self.book} {self.chapter}:{self.verse}"


def export_module(module: str) -> str:
    """Return the whole `mod2imp` export of a module, or raise UserError if it cannot be read."""
    if shutil.which("mod2imp") is None:
        raise UserError(
            "mod2imp not found: install the Debian packages libsword-utils, "
            "sword-text-sparv, sword-text-web and sword-text-kjv"
        )
    result = subprocess.run(["mod2imp", module], capture_output=True, check=False)
    if result.returncode != 0 or not result.stdout.strip():
        message = result.stderr.decode("utf-8", "replace").strip() or "no output"
        raise UserError(f"mod2imp {module} failed ({message}): is its sword-text-* package installed?")
    try:
        return result.stdout.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UserError(f"mod2imp {module}: output is not UTF-8 ({error})") from None


def parse_export(text: str) -> Iterator[RawVerse]:
    """Yield the verses of a `mod2imp` export in module order, skipping headings."""
    keys = list(_KEY_LINE.finditer(text))
    for index, key in enumerate(keys):
        match = _VERSE_KEY.match(key.group(1))
        if match is None:  # `[ Module Heading ]` and the like
            continue
        chapter, verse = int(match["chapter"]), int(match["verse"])
        if chapter == 0 or verse == 0:  # book and chapter headings
            continue
        end = keys[index + 1].start() if index + 1 < len(keys) else len(text)
        yield RawVerse(match["book"], chapter, verse, text[key.end() : end].strip("\n"))
