"""Back-translation: a reverse model's translations become a training corpus (data/backtranslation.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from carousel.data.backtranslation import back_translate
from carousel.errors import UserError
from carousel.data.bible import HELD_OUT_ENGLISH_ONLY_BOOKS, RESERVED_BOOKS, TEST_BOOKS, VALID_BOOKS
from carousel.data.corpus import load_corpus_manifest, read_split
from carousel.model.search import SearchConfig
from carousel.model.loading import load_translator
from tests.conftest import ROOT
from tests.helpers import StandInTextTranslator

ENV = dict(os.environ, OMP_NUM_THREADS="1")


def _silent_on_amen() -> StandInTextTranslator:
    """A stand-in reverse model that returns nothing for one sentence, to exercise the drop rule."""
    return StandInTextTranslator(lambda text: "" if text == "Amen." else f"«{text}»", src_lang="en", tgt_lang="es")


def test_back_translations_become_a_train_only_corpus_with_the_original_as_target(tmp_path, tiny_model_dir):
    translator = load_translator(tiny_model_dir)  # es→en: its English output is the synthetic side
    rows = [("v1", "Y dijo Dios: Sea la luz."), ("v2", "En el principio creó Dios los cielos y la tierra.")]
    manifest, splits = back_translate(
        rows, translator, SearchConfig(beam_size=2), tmp_path / "bt", "bt", {"model": "tiny"}, progress=False
    )

    assert manifest.columns == ["id", "en", "es"]
    assert manifest.splits["train"].rows == 2 and manifest.splits["valid"].rows == manifest.splits["test"].rows == 0
    written = read_split(tmp_path / "bt", "train", ["id", "en", "es"])
    assert written == splits["train"]
    assert [(record_id, original) for record_id, _, original in written] == rows
    expected = [nbest[0][0] for nbest in translator.translate_texts([text for _, text in rows], SearchConfig(beam_size=2))]
    assert [synthetic for _, synthetic, _ in written] == expected


def test_an_empty_back_translation_is_dropped_with_a_reason(tmp_path):
    rows = [("a", "Jesus wept."), ("b", "Amen."), ("c", "God is love.")]
    _, splits = back_translate(rows, _silent_on_amen(), SearchConfig(), tmp_path / "bt", "bt", {}, progress=False)
    assert [row[0] for row in splits["train"]] == ["a", "c"]
    assert [(record.id, record.reason) for record in load_corpus_manifest(tmp_path / "bt").dropped] == [("b", "empty")]
    assert splits["train"][0] == ("a", "«Jesus wept.»", "Jesus wept.")


def test_a_tag_starts_every_synthetic_source_and_must_be_one_word(tmp_path):
    rows = [("a", "Jesus wept."), ("c", "God is love.")]
    _, splits = back_translate(rows, _silent_on_amen(), SearchConfig(), tmp_path / "bt", "bt", {}, progress=False, tag="BT")
    assert [synthetic for _, synthetic, _ in splits["train"]] == ["BT «Jesus wept.»", "BT «God is love.»"]
    assert [original for _, _, original in splits["train"]] == ["Jesus wept.", "God is love."]
    with pytest.raises(UserError, match="one word"):
        back_translate(rows, _silent_on_amen(), SearchConfig(), tmp_path / "bt2", "bt", {}, progress=False, tag="B T")


@pytest.mark.slow
def test_cli_back_translates_a_text_file_and_refuses_a_missing_one(tmp_path, tiny_model_dir):
    text = tmp_path / "mono.txt"
    text.write_text("En el principio.\n\nY la luz.\n", encoding="utf-8")
    command = [sys.executable, "-m", "carousel", "prepare", "back-translation", "--model", str(tiny_model_dir),
               "--beam", "2", "--quiet", "--out", str(tmp_path / "bt")]
    done = subprocess.run([*command, "--text", str(text)], cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert [row[0] for row in read_split(tmp_path / "bt", "train", ["id"])] == ["mono.txt:1", "mono.txt:3"]
    search = load_corpus_manifest(tmp_path / "bt").source["search"]
    assert search["beam_size"] == 2 and search["length_penalty"] == 1.0  # the value used, the model's own

    missing = subprocess.run(
        [*command, "--text", str(tmp_path / "nope.txt")], cwd=ROOT, env=ENV, capture_output=True, text=True
    )
    assert missing.returncode != 0
    assert "nope.txt" in missing.stderr and "Traceback" not in missing.stderr


@pytest.mark.sword
def test_english_only_bible_text_comes_from_books_outside_the_parallel_corpus_and_its_evaluation():
    if shutil.which("mod2imp") is None:
        pytest.fail("mod2imp not found: install libsword-utils and the sword-text-* packages (CI installs them)")
    from carousel.data.bible import MODULES, english_only_verses, read_module

    rows = english_only_verses(progress=False)
    books = {ref.rsplit(" ", 1)[0] for ref, _ in rows}
    spanish_books = {verse.book for verse in read_module(MODULES[0]).values()}
    assert {"Tobit", "Sirach", "I Maccabees"} <= books
    assert not books & (spanish_books | TEST_BOOKS | VALID_BOOKS | RESERVED_BOOKS | HELD_OUT_ENGLISH_ONLY_BOOKS)
    assert len(rows) > 5000 and all(text.strip() for _, text in rows)


def test_the_committed_back_translation_corpus_holds_no_evaluation_book():
    corpus = ROOT / "data" / "corpora" / "bible-web-deuterocanon-bt"
    books = {record_id.rsplit(" ", 1)[0] for (record_id,) in read_split(corpus, "train", ["id"])}
    assert books and not books & (TEST_BOOKS | VALID_BOOKS | RESERVED_BOOKS | HELD_OUT_ENGLISH_ONLY_BOOKS)
