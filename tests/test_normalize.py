"""Source normalisation: 1909 spelling and modern spelling reach the model as the same text."""

from __future__ import annotations

from pathlib import Path

import pytest

from carousel.model.normalize import Normalizer, build_normalizer

SHIPPED_ES_EN = Path(__file__).resolve().parents[1] / "models" / "bible-es-en"

# Verses of the test split as RV1909 prints them, and as a user types them today.
BOTH_SPELLINGS = [
    ("Y Noemí le dijo: Hé aquí tu cuñada se ha vuelto á su pueblo y á sus dioses.",
     "Y Noemí le dijo: He aquí tu cuñada se ha vuelto a su pueblo y a sus dioses."),
    ("Y fué palabra de Jehová á Jonás hijo de Amittai, diciendo:",
     "Y fue palabra de Jehová a Jonás hijo de Amittai, diciendo:"),
    ("Y vió Dios lo que hicieron, que se convirtieron de su mal camino: y arrepintióse del mal que había dicho les había de hacer, y no lo hizo.",
     "Y vio Dios lo que hicieron, que se convirtieron de su mal camino: y arrepintióse del mal que había dicho les había de hacer, y no lo hizo."),
    ("Y él les dió su palabra, ó les dió por sólo éste su pan.",
     "Y él les dio su palabra, o les dio por solo este su pan."),
    ("ACONTECIÓ en los días que gobernaban los jueces, que hubo hambre en la tierra.",
     "Aconteció en los días que gobernaban los jueces, que hubo hambre en la tierra."),
]


@pytest.mark.parametrize("old, modern", BOTH_SPELLINGS)
def test_old_and_modern_spelling_normalise_identically(old, modern):
    normalize = build_normalizer("spanish_modern")
    assert normalize(old) == normalize(modern) == modern


def test_words_that_keep_their_accent_today_are_left_alone():
    normalize = build_normalizer("spanish_modern")
    text = "Él dijo: ¿Qué más quieres de mí? Tú sabes que sí, y Jehová está aquí."
    assert normalize(text) == text


def test_case_is_preserved_and_only_whole_words_change():
    normalize = build_normalizer("spanish_modern")
    assert normalize("Á él y FUÉ; fuése") == "A él y FUE; fuése"


def test_rules_round_trip_through_the_model_directory_file(tmp_path):
    original = build_normalizer("spanish_modern")
    original.save(tmp_path / "normalization.json")
    loaded = Normalizer.load(tmp_path / "normalization.json")
    assert loaded == original
    assert loaded("Y vió") == "Y vio"


def test_no_normalisation_is_the_identity():
    assert build_normalizer("none")("Y vió á él") == "Y vió á él"
    with pytest.raises(ValueError):
        build_normalizer("klingon")


@pytest.mark.slow
def test_the_shipped_model_translates_both_spellings_alike():
    """The normalisation travels in the model directory: the shipped es→en model gets the same input
    whichever spelling the user types, and so gives the same English."""
    from carousel.model.search import SearchConfig
    from carousel.model.loading import load_translator

    translator = load_translator(SHIPPED_ES_EN, quantization="none")
    assert translator.normalizer.name == "spanish_modern"
    search = SearchConfig(beam_size=5)
    old = translator.translate_texts([old for old, _ in BOTH_SPELLINGS], search)
    modern = translator.translate_texts([modern for _, modern in BOTH_SPELLINGS], search)
    assert [nbest[0][0] for nbest in old] == [nbest[0][0] for nbest in modern]
    assert all(nbest[0][0].strip() for nbest in modern)
    # Without it, the 1909 spellings reach the model raw and the translations change.
    translator.normalizer = build_normalizer("none")
    raw = translator.translate_texts([old for old, _ in BOTH_SPELLINGS], search)
    assert [nbest[0][0] for nbest in raw] != [nbest[0][0] for nbest in modern]
