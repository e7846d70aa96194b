"""`carousel evaluate`: sacreBLEU's numbers, multi-reference, paired bootstrap, the model card, clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import sacrebleu

from carousel.cli import main
from carousel.evaluation.scoring import score_system
from carousel.model.search import SearchConfig
from carousel.model.loading import load_translator

HYPOTHESES = [
    "The cat sat on the mat.",
    "In the beginning God created the heavens and the earth.",
    "He went to live in the country of Moab.",
]
REFERENCES = [
    "The cat is sitting on the mat.",
    "In the beginning, God created the heavens and the earth.",
    "A certain man went to live in the land of Moab.",
]
SECOND_REFERENCES = [
    "There is a cat on the mat.",
    "In the beginning God created the heaven and the earth.",
    "He went to sojourn in the country of Moab.",
]


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def _evaluate(capsys, *argv) -> tuple[int, str, str]:
    code = main(["evaluate", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def _evaluate_json(capsys, *argv) -> dict:
    code, out, err = _evaluate(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def test_a_file_scored_against_itself_gets_bleu_100(tmp_path, capsys):
    refs = _write(tmp_path / "ref.txt", REFERENCES)
    report = _evaluate_json(capsys, "--hyp", refs, "--refs", refs)
    system = report["systems"][0]
    assert (system["bleu"], system["chrf"], system["ter"]) == (100.0, 100.0, 0.0)
    assert report["sentences"] == 3


def test_scores_match_sacrebleu_called_directly(tmp_path, capsys):
    report = _evaluate_json(
        capsys, "--hyp", _write(tmp_path / "hyp.txt", HYPOTHESES), "--refs", _write(tmp_path / "ref.txt", REFERENCES)
    )
    system = report["systems"][0]
    assert system["bleu"] == round(sacrebleu.corpus_bleu(HYPOTHESES, [REFERENCES]).score, 2)
    assert system["chrf"] == round(sacrebleu.corpus_chrf(HYPOTHESES, [REFERENCES]).score, 2)
    assert system["ter"] == round(sacrebleu.corpus_ter(HYPOTHESES, [REFERENCES]).score, 2)
    assert 0 < system["bleu"] < 100
    assert report["signatures"]["bleu"].startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:")
    assert set(report["signatures"]) == {"bleu", "chrf", "ter"}


def test_multiple_references(tmp_path, capsys):
    refs = [_write(tmp_path / "ref1.txt", REFERENCES), _write(tmp_path / "ref2.txt", SECOND_REFERENCES)]
    report = _evaluate_json(capsys, "--hyp", _write(tmp_path / "hyp.txt", HYPOTHESES), "--refs", *refs)
    both = [REFERENCES, SECOND_REFERENCES]
    assert report["systems"][0]["bleu"] == round(sacrebleu.corpus_bleu(HYPOTHESES, both).score, 2)
    assert report["systems"][0]["ter"] == round(sacrebleu.corpus_ter(HYPOTHESES, both).score, 2)
    assert report["signatures"]["bleu"].startswith("nrefs:2|")
    assert report["systems"][0]["bleu"] > score_system(HYPOTHESES, [REFERENCES])["bleu"]


def test_two_systems_get_a_paired_bootstrap_p_value(tmp_path, capsys):
    first, second = _write(tmp_path / "a.txt", HYPOTHESES), _write(tmp_path / "b.txt", SECOND_REFERENCES)
    refs = _write(tmp_path / "ref.txt", REFERENCES)
    report = _evaluate_json(capsys, "--hyp", first, "--hyp", second, "--refs", refs, "--resamples", 100)
    baseline, other = report["systems"]
    assert baseline["p_value"] is None
    assert set(other["p_value"]) == {"bleu", "chrf", "ter"} and all(0 < p <= 1 for p in other["p_value"].values())
    assert other["bleu"] == round(sacrebleu.corpus_bleu(SECOND_REFERENCES, [REFERENCES]).score, 2)
    assert "bs:100" in report["signatures"]["bleu"] and report["significance"]["baseline"] == str(first)

    code, table, _ = _evaluate(capsys, "--hyp", first, "--hyp", second, "--refs", refs, "--resamples", 100)
    assert code == 0
    assert "p BLEU" in table and "paired bootstrap" in table
    assert f"{other['p_value']['bleu']:.4f}" in table


def test_model_on_a_corpus_split_with_two_references_and_a_second_system(
    tiny_model_dir, tiny_corpus, tiny_test_pairs, tmp_path, capsys
):
    other = _write(tmp_path / "kjv.txt", [en for _, en in tiny_test_pairs])  # WEB as a "system" against WEB + KJV
    hyps = tmp_path / "hyps.txt"
    report = _evaluate_json(
        capsys, "--model", tiny_model_dir, "--corpus", tiny_corpus, "--split", "test", "--src", "es",
        "--ref", "en", "--ref", "en_kjv", "--beam", 2, "--hyp", other, "--write-hyps", hyps, "--resamples", 100,
    )
    assert report["sentences"] == len(tiny_test_pairs) and report["references"] == ["en", "en_kjv"]
    assert report["search"]["beam"] == 2
    model, file_system = report["systems"]
    nbests = load_translator(tiny_model_dir).translate_texts([es for es, _ in tiny_test_pairs], SearchConfig(beam_size=2))
    expected = [nbest[0][0] for nbest in nbests]
    assert hyps.read_text(encoding="utf-8").split("\n")[:-1] == expected
    from carousel.data.corpus import read_split

    references = [list(column) for column in zip(*read_split(tiny_corpus, "test", ["en", "en_kjv"]))]
    assert model["bleu"] == round(sacrebleu.corpus_bleu(expected, references).score, 2)
    assert file_system["bleu"] == 100.0 and file_system["p_value"]["bleu"] < 0.05


def test_update_card_records_scores_settings_and_command(tiny_model_dir, tiny_corpus, tmp_path, capsys):
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    code, out, err = _evaluate(capsys, "--model", model_dir, "--corpus", tiny_corpus, "--beam", 1, "--update-card")
    assert code == 0, err
    assert "BLEU" in out and "evaluation.test" in err
    card = json.loads((model_dir / "card.json").read_text(encoding="utf-8"))
    entry = card["evaluation"]["test"]
    assert {"bleu", "chrf", "ter", "signatures", "split", "beam", "command", "sentences", "split_sha256"} <= set(entry)
    assert entry["beam"] == 1 and entry["split"] == "test" and entry["references"] == ["en"] and entry["source"] == "es"
    assert entry["command"].startswith("carousel evaluate --model ") and "--beam 1" in entry["command"]
    assert f"{entry['bleu']:.2f}" in out
    assert "## evaluation" in (model_dir / "card.md").read_text(encoding="utf-8")
    assert card["training"] == json.loads((tiny_model_dir / "card.json").read_text())["training"]
    load_translator(model_dir)  # the checksums still verify


def _error_cases(tmp: Path, corpus: Path) -> dict[str, tuple[list[str], str]]:
    hyp = _write(tmp / "hyp.txt", HYPOTHESES)
    short = _write(tmp / "short.txt", REFERENCES[:2])
    (tmp / "bad.txt").write_bytes(b"fine\n\xc3\x28 broken\nfine\n")
    (tmp / "empty.txt").write_bytes(b"")
    (tmp / "binary.bin").write_bytes(b"\x7fELF\x00\x01\x02\n\x00")
    long_line = ("house " * 20_000)[:100_000]  # 16,667 words: TER would take minutes
    long = _write(tmp / "long.txt", [HYPOTHESES[0], long_line, HYPOTHESES[2]])
    return {
        "line count": (["--hyp", hyp, "--refs", short], f"{hyp} has 3 lines but {short} has 2 lines"),
        "reference line counts": (["--hyp", hyp, "--refs", hyp, short], f"{short} has 2 lines but {hyp} has 3"),
        "invalid utf-8": (["--hyp", tmp / "bad.txt", "--refs", hyp], "bad.txt:2: invalid UTF-8"),
        "missing file": (["--hyp", tmp / "nowhere.txt", "--refs", hyp], "nowhere.txt: no such file"),
        "empty file": (["--hyp", tmp / "empty.txt", "--refs", hyp], "empty.txt: empty file"),
        "empty references": (["--hyp", hyp, "--refs", tmp / "empty.txt"], "empty.txt: empty file"),
        "binary file": (["--hyp", tmp / "binary.bin", "--refs", hyp], "binary.bin:1: NUL byte"),
        "100,000-character line": (["--hyp", long, "--refs", hyp], "long.txt:2: 16,667 words on one line"),
        "unknown column": (["--hyp", hyp, "--corpus", corpus, "--ref", "fr"], "no column 'fr'"),
        "hyp vs split length": (
            ["--hyp", hyp, "--corpus", corpus, "--ref", "en"], f"{hyp} has 3 lines but the test split of {corpus} has 40"
        ),
        "unknown split": (["--hyp", hyp, "--corpus", corpus, "--split", "dev", "--ref", "en"], "no split 'dev'"),
        "nothing to score": (["--refs", hyp], "nothing to score"),
        "card without model": (["--hyp", hyp, "--refs", hyp, "--update-card"], "--update-card needs --model"),
        "missing model": (
            ["--model", tmp / "no-model", "--corpus", corpus, "--src", "es", "--ref", "en"], "does not exist"
        ),
    }


def test_each_error_exits_2_with_a_one_line_message(tiny_corpus, tmp_path, capsys):
    for name, (argv, message) in _error_cases(tmp_path, tiny_corpus).items():
        code, _, err = _evaluate(capsys, *argv)
        assert code == 2, name
        assert message in err, (name, err)
        assert err.count("\n") == 1 and "Traceback" not in err, name


def test_a_100000_character_line_of_one_word_is_scored_like_sacrebleu(tmp_path, capsys):
    hypotheses = [HYPOTHESES[0], "x" * 100_000, HYPOTHESES[2]]  # like unspaced CJK text: cheap for every metric
    report = _evaluate_json(
        capsys, "--hyp", _write(tmp_path / "hyp.txt", hypotheses), "--refs", _write(tmp_path / "ref.txt", REFERENCES)
    )
    system = report["systems"][0]
    assert system["bleu"] == round(sacrebleu.corpus_bleu(hypotheses, [REFERENCES]).score, 2)
    assert system["ter"] == round(sacrebleu.corpus_ter(hypotheses, [REFERENCES]).score, 2)


def test_score_system_is_reusable():
    scores = score_system(HYPOTHESES, [REFERENCES, SECOND_REFERENCES])
    assert scores["bleu"] == round(sacrebleu.corpus_bleu(HYPOTHESES, [REFERENCES, SECOND_REFERENCES]).score, 2)
    assert scores["signatures"]["chrf"].startswith("nrefs:2|")
    with pytest.raises(ValueError, match="one length"):
        score_system(HYPOTHESES, [REFERENCES[:2]])  # sacreBLEU alone would score the first two silently


def test_a_model_is_evaluated_on_a_compressed_split_and_the_card_records_its_text_hash(tiny_model_dir, tiny_corpus, tmp_path, capsys):
    # The committed Debian corpus keeps its splits as test.tsv.gz; evaluating on it once crashed.
    import gzip
    import hashlib

    corpus = tmp_path / "corpus"
    shutil.copytree(tiny_corpus, corpus)
    text = (corpus / "test.tsv").read_bytes()
    (corpus / "test.tsv.gz").write_bytes(gzip.compress(text))
    (corpus / "test.tsv").unlink()
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    code, out, err = _evaluate(capsys, "--model", model, "--corpus", corpus, "--split", "test", "--beam", "1",
                               "--update-card", "--quiet")
    assert code == 0, err
    card = json.loads((model / "card.json").read_text(encoding="utf-8"))
    recorded = [entry for entry in card["evaluation"].values() if isinstance(entry, dict) and "split_sha256" in entry]
    assert recorded and recorded[0]["split_sha256"] == hashlib.sha256(text).hexdigest()
