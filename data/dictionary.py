"""Bilingual dictionaries in the dictd format (FreeDict's Debian packages `dict-freedict-eng-spa` and
`dict-freedict-spa-eng`) as word and phrase pairs: what single words and two-word inputs need, and
what sentence corpora teach least.

A dictd dictionary is an index (`NAME.index`: headword, offset and length in dictd's base64, one entry a
line) and the entries themselves (`NAME.dict.dz`, gzip-compatible). An entry is the headword with its
pronunciation (`adiós /aðjˈos/`) and then its translations, separated by commas or semicolons. Each
headword gives a pair with each of its first `max_translations` translations; the database's own
entries (`00database...`), pairs with a side of joined words (`GranBretaña` for "Great Britain", an
artefact of the source's conversion), and repeated pairs are left out and counted.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

from carousel.errors import UserError

DICTD_DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
MAX_DICTIONARY_BYTES = 256 << 20  # FreeDict's largest are a few MB
SENSE_NUMBER = re.compile(r"^\s*\d+\.\s*")
JOINED_WORDS = re.compile(r"[a-záéíóúñü][A-ZÁÉÍÓÚÑ]")


def dictd_number(text: str) -> int:
    """dictd's base64 numbers: most significant digit first."""
    value = 0
    for char in text:
        digit = DICTD_DIGITS.find(char)
        if digit < 0:
            raise ValueError(f"{text!r} is not a dictd number")
        value = value * 64 + digit
    return value


def read_dictd(index: Path) -> list[tuple[str, str]]:
    """(headword, entry text) of every entry of a dictd dictionary, in index order."""
    index = Path(index)
    data_path = index.with_suffix(".dict.dz")
    if not data_path.exists():
        data_path = index.with_suffix(".dict")
    try:
        lines = index.read_text(encoding="utf-8").splitlines()
        with (gzip.open(data_path) if data_path.suffix == ".dz" else open(data_path, "rb")) as stream:
            data = stream.read(MAX_DICTIONARY_BYTES + 1)
    except (OSError, UnicodeDecodeError, EOFError, gzip.BadGzipFile) as error:
        raise UserError(f"{index}: not a readable dictd dictionary (NAME.index with NAME.dict.dz): {error}") from None
    if len(data) > MAX_DICTIONARY_BYTES:
        raise UserError(f"{data_path}: larger than {MAX_DICTIONARY_BYTES >> 20} MiB; not a dictionary")
    entries = []
    for number, line in enumerate(lines, 1):
        fields = line.split("\t")
        try:
            headword, offset, length = fields[0], dictd_number(fields[1]), dictd_number(fields[2])
        except (IndexError, ValueError):
            raise UserError(f"{index}:{number}: not a dictd index line (headword, offset, length)") from None
        if offset + length > len(data):
            raise UserError(f"{index}:{number}: the entry lies past the end of {data_path.name}")
        entries.append((headword, data[offset : offset + length].decode("utf-8", errors="replace")))
    return entries


def entry_translations(entry: str) -> list[str]:
    """The translations of an entry: the lines after the headword line, split at commas and semicolons,
    without sense numbers ("2. carga") and with typographic hyphens made plain ("apple‐tart")."""
    lines = entry.strip().replace("\u2010", "-").splitlines()[1:]
    found = (SENSE_NUMBER.sub("", t).strip() for line in lines for t in re.split(r"[,;]", line))
    return [t for t in found if t]


def dictionary_pairs(entries: list[tuple[str, str]], max_translations: int = 3) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """(headword, translation) pairs and the count of what was left out, by reason."""
    pairs, seen = [], set()
    dropped = {"database entry": 0, "joined words": 0, "duplicate": 0, "no translation": 0}
    for headword, entry in entries:
        if headword.startswith("00database") or headword.startswith("00-database"):
            dropped["database entry"] += 1
            continue
        translations = entry_translations(entry)[:max_translations]
        if not translations:
            dropped["no translation"] += 1
        for translation in translations:
            pair = (headword.strip(), translation)
            if JOINED_WORDS.search(translation) or JOINED_WORDS.search(pair[0]):
                dropped["joined words"] += 1
            elif pair in seen:
                dropped["duplicate"] += 1
            else:
                seen.add(pair)
                pairs.append(pair)
    return pairs, dropped


def build_dictionary_corpus(index: Path, out: Path, headword_language: str, translation_language: str,
                            licence: str, max_translations: int = 3):
    """Write the dictionary's pairs as a corpus (train split only, columns id and the two languages)."""
    from carousel.data.corpus import write_corpus
    from carousel.fileio import sha256_file

    if headword_language == translation_language:
        raise UserError(f"the headwords and translations are both {headword_language!r}")
    entries = read_dictd(index)
    pairs, dropped = dictionary_pairs(entries, max_translations)
    if not pairs:
        raise UserError(f"{index}: no headword with a translation")
    rows = [(f"{Path(index).stem}:{i + 1}", headword, translation) for i, (headword, translation) in enumerate(pairs)]
    source = {"description": "a dictd bilingual dictionary imported by `carousel prepare dictionary`",
              "index": Path(index).name, "index_sha256": sha256_file(Path(index)), "entries": len(entries),
              "max_translations": max_translations, "licence": licence, "dropped_by_reason": dropped}
    languages = {headword_language: headword_language, translation_language: translation_language}
    return write_corpus(Path(out), Path(index).stem, ["id", headword_language, translation_language], languages,
                        {"train": rows}, source, [])
