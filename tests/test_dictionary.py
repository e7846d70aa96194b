"""`carousel prepare dictionary`: a dictd dictionary (FreeDict's format) read into word and phrase pairs."""

from __future__ import annotations

import gzip
import subprocess
import sys

from carousel.data.corpus import read_split
from carousel.data.dictionary import DICTD_DIGITS, dictd_number, dictionary_pairs, read_dictd


def dictd_encode(value: int) -> str:
    digits = ""
    while True:
        digits = DICTD_DIGITS[value % 64] + digits
        value //= 64
        if not value:
            return digits


def write_dictd(directory, entries: list[tuple[str, str]]):
    """NAME.index and NAME.dict.dz of (headword, entry text), as dictfmt writes them."""
    data, index = b"", []
    for headword, text in entries:
        body = text.encode("utf-8")
        index.append(f"{headword}\t{dictd_encode(len(data))}\t{dictd_encode(len(body))}")
        data += body
    (directory / "test-spa-eng.index").write_text("\n".join(index) + "\n", encoding="utf-8")
    (directory / "test-spa-eng.dict.dz").write_bytes(gzip.compress(data))
    return directory / "test-spa-eng.index"


ENTRIES = [
    ("00databaseshort", "00-database-short\nA test dictionary\n"),
    ("adiós", "adiós /aðjˈos/\nadieu, farewell, bye, goodbye\n"),
    ("balancear", "balancear /balanθeˈar/\n1. rock; 2. balance\n"),
    ("Gran Bretaña", "Gran Bretaña /gɾam bɾetˈaɲa/\nGreatBritain\n"),
    ("tarta de manzana", "tarta de manzana\napple\u2010tart\n"),
]


def test_dictd_numbers_read_most_significant_digit_first():
    assert dictd_number("A") == 0 and dictd_number("BA") == 64 and dictd_number("x2E") == 49 * 4096 + 54 * 64 + 4
    for value in (0, 63, 64, 4095, 123456789):
        assert dictd_number(dictd_encode(value)) == value


def test_entries_become_pairs_without_sense_numbers_database_entries_or_joined_words(tmp_path):
    entries = read_dictd(write_dictd(tmp_path, ENTRIES))
    assert [headword for headword, _ in entries] == [h for h, _ in ENTRIES]
    pairs, dropped = dictionary_pairs(entries, max_translations=3)
    assert pairs == [("adiós", "adieu"), ("adiós", "farewell"), ("adiós", "bye"),
                     ("balancear", "rock"), ("balancear", "balance"), ("tarta de manzana", "apple-tart")]
    assert dropped["database entry"] == 1 and dropped["joined words"] == 1


def test_the_command_writes_a_corpus_and_refuses_what_is_not_a_dictionary(tmp_path):
    index = write_dictd(tmp_path, ENTRIES)
    out = tmp_path / "corpus"
    command = [sys.executable, "-m", "carousel", "prepare", "dictionary", str(index), "--headword-lang", "es",
               "--translation-lang", "en", "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert ("adiós", "bye") in read_split(out, "train", ["es", "en"])
    (tmp_path / "broken.index").write_text("hola\tnot base64!\tA\n", encoding="utf-8")
    (tmp_path / "broken.dict").write_bytes(b"")
    command[5] = str(tmp_path / "broken.index")
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "broken.index:1" in result.stderr and "Traceback" not in result.stderr

