"""The translation memory's store and files: the lookup key, last write wins, imports of TMX, .po and TSV
(service/memory.py, data/memory_files.py) and `carousel memory`, bad files included."""

from __future__ import annotations

import pytest

from carousel.cli import main
from carousel.data.memory_files import MemoryReading, read_memory_pairs
from carousel.errors import UserError
from carousel.service.database import Database
from carousel.service.memory import LOOKUP_CHUNK, WRITE_BATCH, TranslationMemory, memory_key, normalise


@pytest.fixture
def memory(tmp_path) -> TranslationMemory:
    return TranslationMemory(Database(tmp_path / "carousel.db"))


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([*map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def tmx(units: str, header: str = "") -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{header}<tmx version="1.4"><header srclang="es"/><body>{units}</body></tmx>'


def unit(**segments: str) -> str:
    variants = "".join(f'<tuv xml:lang="{lang.replace("_", "-")}"><seg>{text}</seg></tuv>' for lang, text in segments.items())
    return f"<tu>{variants}</tu>"


def read(path, source="es", target="en") -> tuple[list[tuple[str, str]], MemoryReading]:
    reading = MemoryReading()
    return list(read_memory_pairs(path, source, target, reading)), reading


# -- the key ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stored, typed", [
    ("Hello, world.", "hello,  world"),
    ("¿Dónde está la estación?", "dónde está la ESTACIÓN"),
    ("¡Guardar!", "guardar"),
    ("Saving…", "saving"),
    ("Options:", " options ; "),
    ("Line one\nline two.", "line one line two"),
    ("Cafe\u0301.", "café"),  # decomposed and composed accents
])
def test_case_spacing_and_final_punctuation_are_ignored(stored, typed):
    assert normalise(stored) == normalise(typed) and memory_key(stored) == memory_key(typed)


@pytest.mark.parametrize("one, other", [
    ("Hello, world", "Hello world"),  # punctuation inside a sentence is kept
    ("Open the file", "Open a file"),
    ("¿Qué?", "Que"),  # accents are kept
])
def test_different_texts_have_different_keys(one, other):
    assert memory_key(one) != memory_key(other)


def test_a_text_of_punctuation_only_keeps_its_punctuation():
    assert normalise("...") == "..." and memory_key("...") != memory_key("!")


# -- the store ----------------------------------------------------------------------------------------


def test_lookup_finds_variants_within_the_pair_only(memory):
    memory.add("es", "en", [("Hola, mundo.", "Hello, world."), ("Adiós", "Goodbye")], origin="t")
    found = memory.lookup("es", "en", ["¡HOLA,  mundo!", "adiós.", "Buenas noches", "   "])
    assert found == {"¡HOLA,  mundo!": "Hello, world.", "adiós.": "Goodbye"}
    assert memory.lookup("en", "es", ["Hola, mundo."]) == {}
    assert memory.lookup("es", "fr", ["Hola, mundo."]) == {}
    assert memory.lookup("es-ES", "en_GB", ["hola, mundo"]) == {"hola, mundo": "Hello, world."}  # primary subtags


def test_the_last_write_wins_whatever_its_origin(memory):
    memory.add("es", "en", [("Guardar", "Keep"), ("guardar.", "Save as")], origin="first")
    memory.add("es", "en", [("GUARDAR", "Save")], origin="suggestion")
    assert memory.lookup("es", "en", ["Guardar"]) == {"Guardar": "Save"}
    assert [(c.origin, c.entries) for c in memory.counts()] == [("suggestion", 1)]


def test_an_empty_text_writes_nothing(memory):
    with pytest.raises(ValueError, match="both texts"):
        memory.add("es", "en", [("uno", "one"), ("dos", "  ")], origin="t")
    assert memory.counts() == []


def test_more_texts_than_one_query_takes_are_looked_up_in_chunks(memory):
    count = LOOKUP_CHUNK * 2 + 7
    memory.add("es", "en", [(f"frase {n}", f"sentence {n}") for n in range(count)], origin="t")
    found = memory.lookup("es", "en", [f"Frase {n}." for n in range(count)] + ["otra"])
    assert len(found) == count and found["Frase 7."] == "sentence 7"


def test_writes_are_batched_with_progress(memory):
    seen = []
    pairs = ((f"frase {n}", f"sentence {n}") for n in range(WRITE_BATCH + 3))  # a stream, read once
    assert memory.add("es", "en", pairs, origin="t", progress=seen.append) == WRITE_BATCH + 3
    assert seen == [WRITE_BATCH, WRITE_BATCH + 3]


def test_removing_by_origin_and_pair(memory):
    memory.add("es", "en", [("uno", "one")], origin="a")
    memory.add("en", "es", [("one", "uno")], origin="a")
    memory.add("es", "en", [("dos", "two")], origin="b")
    assert memory.remove("a", "es", "en") == 1
    assert [(c.source, c.origin) for c in memory.counts()] == [("en", "a"), ("es", "b")]
    assert memory.remove("a") == 1 and memory.remove("nothing") == 0


# -- files --------------------------------------------------------------------------------------------


def test_tmx_units_with_regional_tags_lang_attributes_and_inline_codes(tmp_path):
    units = (unit(es_ES="Hola", en_US="Hello")
             + '<tu><tuv lang="ES"><seg>Abrir <bpt i="1">&lt;b&gt;</bpt>ya<ept i="1">&lt;/b&gt;</ept></seg></tuv>'
               '<tuv lang="en"><seg>Open <bpt i="1">&lt;b&gt;</bpt>now<ept i="1">&lt;/b&gt;</ept></seg></tuv></tu>'
             + unit(es="Solo español") + unit(es="Vacío", en=""))
    path = tmp_path / "m.tmx"
    path.write_text(tmx(units), encoding="utf-8")
    pairs, reading = read(path)
    assert pairs == [("Hola", "Hello"), ("Abrir ya", "Open now")]
    assert reading.skipped == {"missing language": 1, "empty": 1}


def test_a_tmx_without_the_pair_names_the_languages_it_has(tmp_path):
    path = tmp_path / "m.tmx"
    path.write_text(tmx(unit(fr="Bonjour", de="Hallo") + unit(fr="Oui", en="Yes")), encoding="utf-8")
    with pytest.raises(UserError, match=r"no translation unit has both es and en \(languages found: fr, de, en\)"):
        read(path)


@pytest.mark.parametrize("content, words", [
    ("hola\tHello\n", "malformed TMX"),  # not XML at all
    (tmx(unit(es="Hola", en="Hello") + "<tu><tuv xml:lang='es'><seg>roto</tuv></tu>"), "malformed TMX"),
    ('<?xml version="1.0"?><html><body/></html>', "not a TMX file"),
    (tmx(unit(es="&b;", en="x"), '<!DOCTYPE tmx [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>\n'),
     "entity declarations are not allowed"),  # the billion laughs, small
])
def test_a_malformed_tmx_is_an_error_naming_the_file(tmp_path, content, words):
    path = tmp_path / "bad.tmx"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(UserError, match=words) as error:
        read(path)
    assert str(error.value).startswith(str(path))


PO = '''msgid ""
msgstr ""
"Language: es\\n"
"Content-Type: text/plain; charset=UTF-8\\n"

msgid "Open"
msgstr "Abrir"

#, fuzzy
msgid "Close"
msgstr "Cerca"

msgid "Quit"
msgstr ""

msgid "one file"
msgid_plural "%d files"
msgstr[0] "un archivo"
msgstr[1] "%d archivos"

msgctxt "menu"
msgid ""
"Usage: tool [OPTION]\\n"
"Print help."
msgstr ""
"Uso: tool [OPCIÓN]\\n"
"Muestra la ayuda."

#~ msgid "Old"
#~ msgstr "Viejo"
'''


def test_po_entries_leave_out_fuzzy_untranslated_plural_and_obsolete_ones(tmp_path):
    path = tmp_path / "tool.po"
    path.write_text(PO, encoding="utf-8")
    pairs, reading = read(path, "en", "es")
    assert pairs == [("Open", "Abrir"), ("Usage: tool [OPTION]\nPrint help.", "Uso: tool [OPCIÓN]\nMuestra la ayuda.")]
    assert reading.skipped == {"fuzzy": 1, "untranslated": 1, "plural": 1, "obsolete": 1}


def test_a_po_of_another_target_language_or_broken_syntax_is_an_error(tmp_path):
    path = tmp_path / "tool.po"
    path.write_text(PO, encoding="utf-8")
    with pytest.raises(UserError, match="Language is es, not the target fr"):
        read(path, "en", "fr")
    path.write_text('msgid "a"\nmsgstr "b"\nmsgid "c"\nnonsense here\n', encoding="utf-8")
    with pytest.raises(UserError, match="not a gettext catalog"):
        read(path, "en", "es")


def test_tsv_with_a_header_blank_lines_and_an_empty_side(tmp_path):
    path = tmp_path / "m.tsv"
    path.write_text("es\ten\nHola\tHello\n\n\tnada\nAdiós\tBye\n", encoding="utf-8")
    pairs, reading = read(path)
    assert pairs == [("Hola", "Hello"), ("Adiós", "Bye")] and reading.skipped == {"empty": 1}


@pytest.mark.parametrize("content, message", [
    ("Hola\tHello\nsolo una columna\n", r"m.tsv:2: expected 2 tab-separated columns \(source, target\), found 1"),
    ("Hola\tHello\tHallo\n", r"m.tsv:1: expected 2 .* found 3"),
    ("en\tes\nHello\tHola\n", r"m.tsv:1: the header names en then es, but the import is es→en"),
])
def test_a_tsv_of_the_wrong_shape_names_the_line(tmp_path, content, message):
    path = tmp_path / "m.tsv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(UserError, match=message):
        read(path)


def test_unknown_extensions_and_missing_files_are_errors(tmp_path):
    with pytest.raises(UserError, match=r"unknown memory format '.xlsx'; give a .tmx, .po, .tsv file"):
        read(tmp_path / "m.xlsx")
    with pytest.raises(UserError, match="no such file"):
        read(tmp_path / "m.tmx")


# -- carousel memory ----------------------------------------------------------------------------------


def test_import_list_stats_and_remove_from_the_command_line(tmp_path, capsys):
    database = tmp_path / "carousel.db"
    path = tmp_path / "ui.tmx"
    path.write_text(tmx(unit(es="Guardar", en="Save") + unit(es="Abrir", en="Open") + unit(es="x")), encoding="utf-8")
    code, out, err = cli(capsys, "memory", "import", path, "--source", "es-ES", "--target", "en", "--database", database)
    assert code == 0, err
    assert "2 entries imported" in out and "'ui.tmx' (es→en)" in out and "1 missing language" in out
    path.write_text(tmx(unit(es="Guardar", en="Save") + unit(es="Cerrar", en="Close")), encoding="utf-8")
    assert cli(capsys, "memory", "import", path, "--source", "es", "--target", "en", "--database", database)[0] == 0
    memory = TranslationMemory(Database(database, create=False))
    # imported again under the same name: replaced, not doubled, and what left the file left the memory
    assert memory.lookup("es", "en", ["guardar", "abrir", "cerrar"]) == {"guardar": "Save", "cerrar": "Close"}
    code, out, _ = cli(capsys, "memory", "stats", "--database", database)
    assert out.splitlines() == ["source\ttarget\torigin\tentries", "es\ten\tui.tmx\t2", "total\t\t\t2"]
    code, out, _ = cli(capsys, "memory", "list", "--limit", "1", "--database", database)
    assert len(out.splitlines()) == 2 and out.splitlines()[1].startswith("es\ten\tui.tmx\t")
    assert cli(capsys, "memory", "remove", "--name", "ui.tmx", "--database", database)[1] == "2 entries removed\n"
    code, _, err = cli(capsys, "memory", "remove", "--name", "ui.tmx", "--database", database)
    assert code == 2 and "no memory entries named 'ui.tmx'" in err


def test_a_file_malformed_halfway_imports_nothing(tmp_path, capsys):
    database = tmp_path / "carousel.db"
    path = tmp_path / "m.tsv"
    path.write_text("".join(f"frase {n}\tsentence {n}\n" for n in range(WRITE_BATCH + 10)) + "rota\n", encoding="utf-8")
    code, _, err = cli(capsys, "memory", "import", path, "--source", "es", "--target", "en", "--database", database)
    assert code == 2 and f"m.tsv:{WRITE_BATCH + 11}: expected 2 tab-separated columns" in err
    assert TranslationMemory(Database(database, create=False)).counts() == []


@pytest.mark.parametrize("arguments, message", [
    (["--source", "es", "--target", "es-MX"], "--source and --target are both es"),
    (["--source", "spanish!", "--target", "en"], "'spanish!' is not a language code"),
    (["--source", "es", "--target", "en", "--name", "suggestion"], "--name 'suggestion' is taken"),
])
def test_bad_import_options_are_errors(tmp_path, capsys, arguments, message):
    path = tmp_path / "m.tsv"
    path.write_text("Hola\tHello\n", encoding="utf-8")
    code, _, err = cli(capsys, "memory", "import", path, *arguments, "--database", tmp_path / "carousel.db")
    assert code == 2 and message in err


def test_a_file_without_entries_is_an_error(tmp_path, capsys):
    path = tmp_path / "m.po"
    path.write_text('msgid "Quit"\nmsgstr ""\n', encoding="utf-8")
    code, _, err = cli(capsys, "memory", "import", path, "--source", "en", "--target", "es",
                       "--database", tmp_path / "carousel.db")
    assert code == 2 and "no entries to import; left out: 1 untranslated" in err


def test_listing_needs_an_existing_database(tmp_path, capsys):
    code, _, err = cli(capsys, "memory", "stats", "--database", tmp_path / "none.db")
    assert code == 2 and "no database at" in err


@pytest.mark.slow
def test_the_memory_works_the_same_on_postgresql():
    from tests import servers

    with servers.postgresql() as server:
        memory = TranslationMemory(Database(server.url))
        pairs = [(f"frase {n}", f"sentence {n}") for n in range(WRITE_BATCH + 2)] + [("Frase 3.", "the third")]
        assert memory.add("es", "en", pairs, origin="t") == WRITE_BATCH + 3
        found = memory.lookup("es", "en", ["FRASE 3", "frase  4!", "otra"])
        assert found == {"FRASE 3": "the third", "frase  4!": "sentence 4"}  # the last write won
        assert memory.add("es", "en", [("frase 4", "Four")], origin="t", replace=True) == 1
        assert [(c.origin, c.entries) for c in memory.counts()] == [("t", 1)]
        assert memory.remove("t") == 1
