"""Readers for a user's parallel corpus: TSV, two aligned text files, or TMX 1.4.

Each reader yields `(id, source, target)` pairs with the text as found; cleaning comes later.
Problems a user can fix (invalid UTF-8, unequal line counts, short TSV rows, malformed TMX)
raise `UserError` naming the file and line. Ids are `file:line` (or `file#tuid` for TMX).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from itertools import zip_longest
from pathlib import Path
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as SafeET

from carousel.errors import UserError
from carousel.fileio import read_lines
from carousel.data.cleaning import Pair
from carousel.data.corpus import DroppedRecord

_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
# TMX inline codes hold the original document's formatting, not text; <hi> wraps real text.
_TMX_CODE_ELEMENTS = frozenset({"bpt", "ept", "it", "ph", "ut", "sub"})


def read_text_pairs(source_path: Path, target_path: Path) -> Iterator[Pair]:
    """Pairs from two line-aligned files: line N of one translates line N of the other."""
    count = 0
    for source, target in zip_longest(read_lines(source_path), read_lines(target_path)):
        if source is None or target is None:
            longer, shorter = (source_path, target_path) if target is None else (target_path, source_path)
            raise UserError(
                f"{longer}:{count + 1}: line has no partner: {shorter} has {count} lines "
                f"but {longer} has more (the two files must have the same number of lines)"
            )
        count += 1
        yield f"{_id_name(source_path)}:{source[0]}", source[1], target[1]


def read_tsv_pairs(path: Path, source_column: str, target_column: str, header: bool) -> Iterator[Pair]:
    """Pairs from two columns of a tab-separated file (columns as 1-based numbers, or names with `header`)."""
    lines = read_lines(path)
    names: list[str] = []
    if header:
        first = next(lines, None)
        if first is None:
            raise UserError(f"{path}: empty file, expected a header line")
        names = first[1].split("\t")
    source_index = _column_index(path, source_column, names, header)
    target_index = _column_index(path, target_column, names, header)
    needed = max(source_index, target_index) + 1
    for number, line in lines:
        fields = line.split("\t")
        if len(fields) < needed:
            raise UserError(f"{path}:{number}: expected at least {needed} tab-separated columns, found {len(fields)}")
        yield f"{_id_name(path)}:{number}", fields[source_index], fields[target_index]


def read_tmx_pairs(path: Path, source_language: str, target_language: str) -> tuple[list[Pair], list[DroppedRecord]]:
    """Pairs from the translation units of a TMX file; units lacking either language are returned as dropped."""
    pairs: list[Pair] = []
    dropped: list[DroppedRecord] = []
    languages_seen: Counter[str] = Counter()
    units = 0
    for unit_id, segments in iter_tmx_units(path):
        units += 1
        languages_seen.update(segments.keys())
        source = pick_language(segments, source_language)
        target = pick_language(segments, target_language)
        if source is None or target is None:
            missing = source_language if source is None else target_language
            dropped.append(DroppedRecord(id=unit_id, reason="missing language", detail=f"no {missing} segment"))
        else:
            pairs.append((unit_id, source, target))
    if units and not pairs:
        raise UserError(missing_languages(path, source_language, target_language, languages_seen))
    return pairs, dropped


def iter_tmx_units(path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """(unit id, language tag → segment text) of each `<tu>` of a TMX file, streamed in flat memory.

    Parsed with defusedxml: entity declarations (the XML-bomb vector) and external references are refused.
    """
    unit_number = 0
    root = None
    try:
        for event, element in SafeET.iterparse(str(path), events=("start", "end")):
            if event == "start":
                if root is None:
                    root = element
                    if root.tag != "tmx":
                        raise UserError(f"{path}: not a TMX file (root element <{root.tag}>, expected <tmx>)")
                continue
            if element.tag != "tu":
                continue
            unit_number += 1
            yield f"{_id_name(path)}#{element.get('tuid') or unit_number}", _tmx_segments(element)
            element.clear()  # keep memory flat on large files
            for parent in (root, *root):  # drop the cleared unit itself (a child of <body>, or of <tmx>)
                if len(parent) and parent[-1] is element:
                    parent.remove(element)
    except ParseError as error:
        line, column = error.position
        raise UserError(f"{path}:{line}:{column + 1}: malformed TMX ({_parse_message(error)})") from None
    except defusedxml.DefusedXmlException as error:
        raise UserError(
            f"{path}: refusing TMX with {type(error).__name__} (entity declarations are not allowed)"
        ) from None
    except OSError as error:
        raise UserError(f"{path}: cannot read ({error.strerror})") from None


def missing_languages(path: Path, source_language: str, target_language: str, seen: Counter[str]) -> str:
    """The error for a TMX none of whose units has both languages, naming those it has."""
    found = ", ".join(language for language, _ in seen.most_common()) or "none"
    return f"{path}: no translation unit has both {source_language} and {target_language} (languages found: {found})"


def _tmx_segments(unit: Element) -> dict[str, str]:
    """Language tag → segment text of one `<tu>` (the first `<tuv>` per language wins)."""
    segments: dict[str, str] = {}
    for variant in unit.iter("tuv"):
        language = variant.get(_XML_LANG) or variant.get("lang")  # `lang` is TMX 1.1–1.3
        segment = variant.find("seg")
        if language and segment is not None:
            segments.setdefault(language, _segment_text(segment))
    return segments


def _segment_text(segment: Element) -> str:
    parts = [segment.text or ""]
    for child in segment:
        if child.tag not in _TMX_CODE_ELEMENTS:
            parts.append(_segment_text(child))
        parts.append(child.tail or "")
    return "".join(parts)


def pick_language(segments: dict[str, str], wanted: str) -> str | None:
    """The segment whose language tag is `wanted` or a regional variant of it (`en` matches `en-GB`)."""
    wanted = _normalize_language(wanted)
    for language, text in segments.items():
        tag = _normalize_language(language)
        if tag == wanted or tag.startswith(wanted + "-"):
            return text
    return None


def _normalize_language(tag: str) -> str:
    return tag.strip().lower().replace("_", "-")


def primary_language(tag: str) -> str:
    """A language tag's primary subtag in lower case: `en-US`, `en_us` and `EN` are all `en`."""
    return _normalize_language(tag).split("-")[0]


def _column_index(path: Path, column: str, names: list[str], header: bool) -> int:
    """A 1-based column number, or a column name from the header, as a 0-based index."""
    if re.fullmatch(r"\d+", column):
        if int(column) < 1:
            raise UserError(f"{path}: column numbers start at 1, got {column}")
        return int(column) - 1
    if not header:
        raise UserError(f"{path}: column {column!r} is a name; add --header, or give the column's number")
    if column not in names:
        raise UserError(f"{path}:1: no column named {column!r} in the header (have {', '.join(names)})")
    return names.index(column)


def _id_name(path: Path) -> str:
    """The file name as used in record ids (no whitespace, so ids stay one TSV field)."""
    return re.sub(r"\s", "_", path.name)


def _parse_message(error: ParseError) -> str:
    return str(error).split(":")[0]
