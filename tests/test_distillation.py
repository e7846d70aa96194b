"""Sequence-level knowledge distillation: a teacher's translations become a training corpus (data/distillation.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from carousel.data.corpus import load_corpus_manifest, read_split, spread_sample, write_corpus
from carousel.data.distillation import distill, distinct_sources, held_out_splits
from carousel.errors import UserError
from carousel.model.loading import load_translator
from carousel.model.search import SearchConfig
from tests.conftest import ROOT
from tests.helpers import StandInTextTranslator

ENV = dict(os.environ, OMP_NUM_THREADS="1")


def _corpus_with_repeats(directory, source=None):
    train = [("a", "Y dijo Dios.", "And God said."), ("b", "La luz.", "The light."), ("c", "Y dijo Dios.", "God said."),
             ("d", "", "Nothing."), ("e", "El agua.", "The water.")]
    write_corpus(directory, "repeats", ["id", "es", "en"], {"es": "es", "en": "en"},
                 {"train": train, "valid": [("v", "Sí.", "Yes.")], "test": []}, source or {}, [])
    return directory


def test_each_distinct_source_is_kept_once_and_max_pairs_spreads_over_the_split(tmp_path):
    corpus = _corpus_with_repeats(tmp_path / "c")
    assert distinct_sources(corpus, "es") == [("a", "Y dijo Dios."), ("b", "La luz."), ("e", "El agua.")]
    assert distinct_sources(corpus, "es", max_pairs=2) == [("a", "Y dijo Dios."), ("b", "La luz.")]
    with pytest.raises(UserError, match="no column 'fr'"):
        distinct_sources(corpus, "fr")


def test_a_spread_sample_follows_the_whole_split_not_its_head():
    rows = list(range(15))
    assert spread_sample(rows, 10) == [0, 1, 3, 4, 6, 7, 9, 10, 12, 13]  # a plain stride of 1 would stop at 9
    assert spread_sample(rows, 5) == [0, 3, 6, 9, 12]
    assert spread_sample(rows, 0) == rows and spread_sample(rows, 99) == rows


def test_the_teachers_translations_become_the_targets_of_a_train_only_corpus(tmp_path, tiny_model_dir):
    teacher = load_translator(tiny_model_dir)
    rows = distinct_sources(_corpus_with_repeats(tmp_path / "c"), "es")
    search = SearchConfig(beam_size=2)
    manifest, splits = distill(rows, teacher, search, tmp_path / "kd", {"teacher": "tiny"}, progress=False)
    assert manifest.columns == ["id", "es", "en"]
    assert manifest.splits["train"].rows == 3 and manifest.splits["valid"].rows == 0
    written = read_split(tmp_path / "kd", "train", ["id", "es", "en"])
    assert written == splits["train"]
    assert [(record_id, source) for record_id, source, _ in written] == rows
    expected = [nbest[0][0] for nbest in teacher.translate_texts([source for _, source in rows], search)]
    assert [translation for _, _, translation in written] == expected


def test_the_held_out_splits_keep_their_human_references_in_the_teachers_column_order(tmp_path):
    corpus = tmp_path / "c"
    write_corpus(corpus, "en-first", ["id", "en", "es"], {"en": "en", "es": "es"},
                 {"train": [("a", "The light.", "La luz.")], "valid": [("v", "Yes.", "Sí.")],
                  "test": [("t", "No.", "No.")]}, {}, [])
    held_out = held_out_splits(corpus, ["id", "es", "en"])
    assert held_out == {"valid": [("v", "Sí.", "Yes.")], "test": [("t", "No.", "No.")]}
    assert held_out_splits(corpus, ["id", "es", "fr"]) == {}

    teacher = StandInTextTranslator(str.upper, src_lang="es", tgt_lang="en")
    manifest, splits = distill([("a", "La luz.")], teacher, SearchConfig(), tmp_path / "kd", {}, progress=False,
                               held_out=held_out)
    assert read_split(tmp_path / "kd", "train", ["es", "en"]) == [("La luz.", "LA LUZ.")]
    assert read_split(tmp_path / "kd", "valid", ["id", "es", "en"]) == [("v", "Sí.", "Yes.")]
    assert manifest.splits["test"].rows == 1 and splits["valid"] == held_out["valid"]


def test_an_empty_translation_is_dropped_with_a_reason(tmp_path):
    teacher = StandInTextTranslator(lambda text: "" if text == "La luz." else text.upper(), src_lang="es", tgt_lang="en")
    rows = [("a", "Y dijo Dios."), ("b", "La luz.")]
    _, splits = distill(rows, teacher, SearchConfig(), tmp_path / "kd", {}, progress=False)
    assert splits["train"] == [("a", "Y dijo Dios.", "Y DIJO DIOS.")]
    assert [(r.id, r.reason) for r in load_corpus_manifest(tmp_path / "kd").dropped] == [("b", "empty")]


@pytest.mark.slow
def test_cli_distills_a_corpus_and_refuses_a_missing_one(tmp_path, tiny_model_dir):
    parts = [{"name": "genesis", "split": "train", "pairs": 5, "licence": "public domain"}]
    corpus = _corpus_with_repeats(tmp_path / "c", {"description": "a mix", "parts": parts})
    command = [sys.executable, "-m", "carousel", "prepare", "distillation", "--model", str(tiny_model_dir),
               "--beam", "2", "--quiet", "--out", str(tmp_path / "kd")]
    done = subprocess.run([*command, "--corpus", str(corpus)], cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    manifest = load_corpus_manifest(tmp_path / "kd")
    assert manifest.splits["train"].rows == 3 and manifest.source["sources_translated"] == 3
    assert read_split(tmp_path / "kd", "valid", ["es", "en"]) == [("Sí.", "Yes.")]  # the reference, not the teacher's
    assert manifest.source["search"]["beam_size"] == 2 and manifest.source["corpus"]["name"] == "repeats"
    assert manifest.source["teacher_checksums"] == load_translator(tiny_model_dir).card["checksums"]
    assert manifest.source["parts"] == parts  # so a student's card names the data and its licences

    missing = subprocess.run([*command, "--corpus", str(tmp_path / "nope")], cwd=ROOT, env=ENV,
                             capture_output=True, text=True)
    assert missing.returncode != 0
    assert "nope" in missing.stderr and "Traceback" not in missing.stderr
