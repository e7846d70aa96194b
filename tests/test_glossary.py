"""Glossaries (model/glossary.py): matching, enforcement on hand-made alignments, TSV reading, limits,
and `Translator.translate` with glossaries on the tiny model."""

from __future__ import annotations

import time

import pytest

from carousel.model.glossary import (
    MAX_TERMS, Glossary, GlossaryError, contains_term, read_glossary_tsv,
)
from carousel.model.search import SearchConfig


def glossary(*pairs, source="es", target="en") -> Glossary:
    return Glossary(pairs, source, target)


# -- matching ----------------------------------------------------------------------------------------


def test_terms_are_found_case_insensitively_at_word_boundaries_longest_first():
    terms = glossary(("archivo", "file"), ("sistema de archivos", "file system"), ("sistema", "system"))
    found = terms.matches("El Sistema  de Archivos y el sistema; archivos, subarchivo, archivo.")
    assert [(m.source, m.target) for m in found] == [
        ("Sistema  de Archivos", "file system"), ("sistema", "system"), ("archivo", "file"),
    ]
    text = "El Sistema  de Archivos"
    assert text[found[0].start:found[0].end] == "Sistema  de Archivos"


def test_terms_with_punctuation_at_their_ends_match_whole():
    terms = glossary(("C++", "C plus plus"), (".deb", "Debian package"))
    assert [m.source for m in terms.matches("Usa C++ y un .deb, no C++x ni a.deb")] == ["C++", ".deb"]


def test_a_term_longer_than_the_text_is_simply_not_found():
    terms = glossary(("gestor de paquetes de la distribución", "distribution package manager"))
    assert terms.matches("gestor") == []
    assert terms.enforce("gestor", "manager") == "manager"


def test_duplicate_source_terms_the_last_one_wins():
    terms = glossary(("Paquete", "package"), ("paquete", "bundle"))
    assert len(terms) == 1
    assert [m.target for m in terms.matches("un paquete")] == ["bundle"]


@pytest.mark.parametrize("pair, problem", [
    (("", "file"), "the source term is empty"),
    (("archivo", "  "), "the target term is empty"),
    (("...", "dots"), "no letter or digit"),
    (("a" * 201, "b"), "201 characters"),
    (("archivo",), "give a source term and a target term"),
])
def test_bad_terms_are_refused_with_their_number(pair, problem):
    with pytest.raises(GlossaryError, match=f"term 2: .*{problem}"):
        Glossary([("bien", "well"), pair], "es", "en")


def test_100k_terms_load_and_match_fast_and_more_are_refused():
    pairs = [(f"término{i} número{i % 7}", f"term{i}") for i in range(MAX_TERMS)]
    started = time.perf_counter()
    terms = Glossary(pairs, "es", "en")
    loaded = time.perf_counter() - started
    sentence = "Este texto habla del término99999 número4 y de nada más " * 4
    started = time.perf_counter()
    for _ in range(100):
        found = terms.matches(sentence)
    matching = (time.perf_counter() - started) / 100
    assert [m.target for m in found] == ["term99999"] * 4
    assert loaded < 10 and matching < 0.005, (loaded, matching)
    with pytest.raises(GlossaryError, match=f"at most {MAX_TERMS} terms"):
        Glossary(pairs + [("uno más", "one more")], "es", "en")


def test_contains_term_ignores_case_and_spacing_and_respects_boundaries():
    assert contains_term("The File  System is full", "file system")
    assert not contains_term("The filesystem is full", "file system")
    assert not contains_term("profiles", "file")


# -- TSV ---------------------------------------------------------------------------------------------


def test_tsv_glossaries_skip_comments_and_blank_lines():
    text = "# es\ten\narchivo\tfile\n\n sistema de archivos \t file system\n"
    assert read_glossary_tsv(text) == [("archivo", "file"), ("sistema de archivos", "file system")]


@pytest.mark.parametrize("text, problem", [
    ("archivo\tfile\nsolo una columna\n", "line 2: expected 'source<TAB>target', found 1 field"),
    ("archivo\tfile\tfichero\n", "line 1: expected 'source<TAB>target', found 3 fields"),
    ("archivo\tfile\n\n\tfile\n", "line 3: the source term is empty"),
])
def test_malformed_tsv_lines_are_named_by_number(text, problem):
    with pytest.raises(GlossaryError, match=f"terms.tsv, {problem}"):
        read_glossary_tsv(text, "terms.tsv")


# -- enforcement by attention --------------------------------------------------------------------------


def one_hot(rows: list[int], columns: int) -> list[list[float]]:
    """An alignment where target piece i attends only to source piece rows[i] (EOS rows/columns added)."""
    matrix = [[1.0 if j == column else 0.0 for j in range(columns + 1)] for column in rows]
    return matrix + [[0.0] * columns + [1.0]]


SOURCE = "Guarde el archivo ahora."
SOURCE_PIECES = ["▁Guard", "e", "▁el", "▁archivo", "▁ahora", "."]


def test_the_words_aligned_to_the_term_are_replaced_by_the_target_term():
    target = ["▁Save", "▁the", "▁doc", "ument", "▁now", "."]
    alignment = one_hot([0, 2, 3, 3, 4, 5], len(SOURCE_PIECES))
    terms = glossary(("archivo", "file"))
    assert terms.enforce(SOURCE, "Save the document now.", SOURCE_PIECES, target, alignment) == "Save the file now."


def test_a_translation_that_holds_the_term_is_left_alone():
    terms = glossary(("archivo", "file"))
    alignment = one_hot([0, 2, 3, 4, 5], len(SOURCE_PIECES))
    pieces = ["▁Save", "▁the", "▁File", "▁now", "."]
    assert terms.enforce(SOURCE, "Save the File now.", SOURCE_PIECES, pieces, alignment) == "Save the File now."


def test_punctuation_and_a_sentence_initial_capital_are_kept():
    source, source_pieces = "Archivo, por favor.", ["▁Arch", "ivo", ",", "▁por", "▁favor", "."]
    target = ["▁Document", ",", "▁please", "."]
    alignment = one_hot([0, 2, 4, 5], len(source_pieces))
    terms = glossary(("archivo", "file"))
    assert terms.enforce(source, "Document, please.", source_pieces, target, alignment) == "File, please."


def test_without_a_hard_alignment_the_word_attending_most_is_replaced():
    target = ["▁Save", "▁the", "▁document", "▁now", "."]
    alignment = [  # "document" looks at "archivo" (column 3) only partly, more at "el"
        [1, 0, 0, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0, 0], [0, 0, .6, .4, 0, 0, 0], [0, 0, 0, 0, 1, 0, 0],
        [0, 0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1],
    ]
    terms = glossary(("archivo", "file"))
    assert terms.enforce(SOURCE, "Save the document now.", SOURCE_PIECES, target, alignment) == "Save the file now."


def test_a_term_the_model_wrote_inflected_is_kept_and_a_synonym_is_replaced():
    source, source_pieces = "four primary partitions", ["▁four", "▁primary", "▁partitions"]
    target = ["▁cuatro", "▁particiones", "▁primarias"]
    alignment = one_hot([0, 2, 1], len(source_pieces))
    terms = glossary(("primary", "primario"), source="en", target="es")
    assert terms.enforce(source, "cuatro particiones primarias", source_pieces, target, alignment) == \
        "cuatro particiones primarias"  # the plural feminine the sentence needs
    synonym = ["▁cuatro", "▁particiones", "▁principales"]
    assert terms.enforce(source, "cuatro particiones principales", source_pieces, synonym, alignment) == \
        "cuatro particiones primario"  # the glossary's one form: the agreement is not promised


def test_in_a_code_like_word_only_the_aligned_letters_are_replaced():
    source, source_pieces = "a = SLOPE(Data)", ["▁a", "▁=", "▁SLOPE", "(", "Data", ")"]
    target = ["▁a", "▁=", "▁LOPE", "(", "Datos", ")"]
    alignment = one_hot([0, 1, 2, 3, 4, 5], len(source_pieces))
    terms = glossary(("SLOPE", "PENDIENTE"), source="en", target="es")
    assert terms.enforce(source, "a = LOPE(Datos)", source_pieces, target, alignment) == "a = PENDIENTE(Datos)"


def test_numbers_and_placeholders_are_never_replaced():
    source, source_pieces = "Copie %s archivos", ["▁Copie", "▁%", "s", "▁archivos"]
    target = ["▁Copy", "▁%", "s"]
    alignment = one_hot([0, 3, 3], len(source_pieces))  # the placeholder is (wrongly) aligned to the term
    terms = glossary(("archivos", "files"))
    assert terms.enforce(source, "Copy %s", source_pieces, target, alignment) == "Copy %s"


def test_without_alignment_the_translation_is_left_as_the_model_wrote_it():
    terms = glossary(("archivo", "file"))
    assert terms.enforce(SOURCE, "Save the document now.") == "Save the document now."


def test_pieces_that_do_not_spell_the_translation_leave_it_alone():
    terms = glossary(("archivo", "file"))
    alignment = one_hot([0, 2, 3, 4, 5], len(SOURCE_PIECES))
    assert terms.enforce(SOURCE, "Save it.", SOURCE_PIECES, ["▁Save", "▁the", "▁doc", "▁now", "."],
                         alignment) == "Save it."


# -- the translator ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_translator(tiny_model_dir):
    from carousel.model.loading import load_translator

    return load_translator(tiny_model_dir, "none")


def test_the_translator_enforces_each_sentences_own_glossary(tiny_translator, tiny_test_pairs):
    sources = [source for source, _ in tiny_test_pairs[:4]]
    word = sources[0].split()[1].strip(".,;:")
    terms = glossary((word, "GLOSSARYTERM"))
    search = SearchConfig(beam_size=2)
    plain = tiny_translator.translate(sources, search)
    results = tiny_translator.translate(sources, search, glossaries=[terms, None, None, None])
    assert "glossaryterm" in results[0][0].text.lower()
    assert [r[0].text for r in results[1:]] == [p[0].text for p in plain[1:]]  # the others as without
    assert results[0][0].alignment is None  # asked for without alignment: none returned


def test_translate_texts_takes_one_glossary_for_all_texts(tiny_translator, tiny_test_pairs):
    source = tiny_test_pairs[0][0]
    word = source.split()[1].strip(".,;:")
    [[(text, _)]] = tiny_translator.translate_texts([source], SearchConfig(beam_size=2),
                                                    glossary=glossary((word, "GLOSSARYTERM")))
    assert "glossaryterm" in text.lower()


def test_one_glossary_per_sentence_or_an_error(tiny_translator):
    with pytest.raises(ValueError, match="2 glossaries for 1 sentences"):
        tiny_translator.translate(["Hola"], SearchConfig(beam_size=1), glossaries=[None, None])
