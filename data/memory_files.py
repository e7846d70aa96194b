"""Translation memories as files: TMX, gettext .po and two-column TSV, read as streams of (source, target).

    reading = MemoryReading()
    for source, target in read_memory_pairs(Path("memory.tmx"), "es", "en", reading):
        ...
    reading.skipped            # Counter({"fuzzy": 3, "missing language": 1, ...})

What each format gives, and what it leaves out (counted in `reading.skipped`, by reason):
- TMX (1.1–1.4): each `<tu>` with a segment in both languages (`xml:lang`, or `lang`; `en-US` counts as
  `en`). Parsed with defusedxml, streamed (data/readers.py). A file none of whose units has both
  languages is an error naming the languages it has.
- .po: msgid → msgstr; fuzzy, obsolete, untranslated and plural entries are left out (a plural's forms
  are not one translation of one text). A catalog whose `Language` header names another language than
  the target is an error.
- TSV: `source<TAB>target` a line, UTF-8; a first line holding the two language codes is a header
  (as `carousel suggestions export` writes); blank lines are passed over. A line without exactly two
  columns is an error naming it.
Entries with an empty side are left out as "empty".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from carousel.data.readers import iter_tmx_units, missing_languages, pick_language, primary_language
from carousel.errors import UserError
from carousel.fileio import read_lines

FORMATS = (".tmx", ".po", ".tsv")


@dataclass
class MemoryReading:
    """What a reader left out, and why (reason → entries)."""

    skipped: Counter[str] = field(default_factory=Counter)


def read_memory_pairs(path: Path, source: str, target: str, reading: MemoryReading) -> Iterator[tuple[str, str]]:
    """(source text, target text) of each entry of a memory file, chosen by its extension; UserError for
    a file that cannot be read as one."""
    readers = {".tmx": _tmx_pairs, ".po": _po_pairs, ".tsv": _tsv_pairs}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise UserError(f"{path}: unknown memory format {path.suffix or '(no extension)'!r}; "
                        f"give a {', '.join(FORMATS)} file")
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    for source_text, target_text in reader(path, source, target, reading):
        if source_text.strip() and target_text.strip():
            yield source_text, target_text
        else:
            reading.skipped["empty"] += 1


def _tmx_pairs(path: Path, source: str, target: str, reading: MemoryReading) -> Iterator[tuple[str, str]]:
    languages: Counter[str] = Counter()
    units = found = 0
    for _, segments in iter_tmx_units(path):
        units += 1
        languages.update(segments.keys())
        source_text, target_text = pick_language(segments, source), pick_language(segments, target)
        if source_text is None or target_text is None:
            reading.skipped["missing language"] += 1
            continue
        found += 1
        yield source_text, target_text
    if units and not found:
        raise UserError(missing_languages(path, source, target, languages))


def _po_pairs(path: Path, source: str, target: str, reading: MemoryReading) -> Iterator[tuple[str, str]]:
    import polib

    try:
        catalog = polib.pofile(str(path), wrapwidth=0)
    except (OSError, UnicodeDecodeError, ValueError) as error:  # polib: "Syntax error in po file (line N)"
        raise UserError(f"{path}: not a gettext catalog ({str(error).splitlines()[0]})") from None
    language = catalog.metadata.get("Language", "").strip()
    if language and primary_language(language) != primary_language(target):
        raise UserError(f"{path}: the catalog's Language is {language}, not the target {target}")
    for entry in catalog:
        reason = _po_skip_reason(entry)
        if reason:
            reading.skipped[reason] += 1
        else:
            yield entry.msgid, entry.msgstr


def _po_skip_reason(entry) -> str | None:
    if entry.obsolete:
        return "obsolete"
    if entry.msgid_plural:
        return "plural"
    if "fuzzy" in entry.flags:
        return "fuzzy"
    if not entry.msgstr:
        return "untranslated"
    return None


def _tsv_pairs(path: Path, source: str, target: str, reading: MemoryReading) -> Iterator[tuple[str, str]]:
    for number, line in read_lines(path):
        if not line.strip():
            continue  # a blank line (a file's last line, say) is no entry
        columns = line.split("\t")
        if len(columns) != 2:
            raise UserError(f"{path}:{number}: expected 2 tab-separated columns (source, target), found {len(columns)}")
        if number == 1 and _is_header(path, columns, source, target):
            continue
        yield columns[0], columns[1]


def _is_header(path: Path, columns: list[str], source: str, target: str) -> bool:
    """A first line naming the two languages; the reverse order is an error (the columns would be swapped)."""
    codes = [primary_language(column) for column in columns]
    if codes == [primary_language(target), primary_language(source)] and codes[0] != codes[1]:
        raise UserError(f"{path}:1: the header names {columns[0]} then {columns[1]}, but the import is {source}→{target}: "
                        "swap --source and --target, or the columns")
    return codes == [primary_language(source), primary_language(target)]
