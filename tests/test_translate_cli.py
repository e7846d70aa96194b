"""`carousel translate`: line-for-line output in every format, the same text as the Translator, clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import carousel.formats.batch
import carousel.fileio
from carousel.cli import main
from carousel.model.checkpoint import load_model_dir
from carousel.model.precision import DEFAULT_QUANTIZATION
from carousel.model.quantization import Int8Linear, Int8Recurrent, quantize
from carousel.model.search import SearchConfig
from carousel.model.sentences import split_sentences
from carousel.model.loading import load_translator
from carousel.service.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sources(tiny_test_pairs) -> list[str]:
    """Test-split sources with empty and blank lines among them."""
    spanish = [es for es, _ in tiny_test_pairs[:12]]
    return spanish[:4] + ["", "   "] + spanish[4:10] + [""] + spanish[10:]


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def _translate(capsys, *argv) -> tuple[int, str, str]:
    code = main(["translate", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_text_output_has_one_line_per_input_line_and_equals_the_translator(tiny_model_dir, sources, tmp_path, capsys):
    code, out, err = _translate(capsys, "--model", tiny_model_dir, "--beam", 3, _write(tmp_path / "in.txt", sources))
    assert code == 0
    lines = out.split("\n")
    assert lines[-1] == "" and len(lines) - 1 == len(sources)
    expected = load_translator(tiny_model_dir).translate_texts(sources, SearchConfig(beam_size=3))
    assert lines[:-1] == [nbest[0][0] for nbest in expected]
    blank = [i for i, line in enumerate(lines[:-1]) if not line.strip()]  # whitespace comes back as it is
    assert blank == [i for i, s in enumerate(sources) if not s.strip()]
    assert err == ""  # stderr is not a terminal: no progress bar


@pytest.mark.parametrize("shards", [1, 3, 7])
def test_shards_concatenated_in_order_give_exactly_the_whole_files_output(tiny_model_dir, sources, tmp_path, capsys, shards):
    """`--shard I/N`: N contiguous shares of the records; with float32 decoding (independent of batching)
    their outputs, concatenated, are byte for byte the single process's, TSV header included."""
    rows = ["id\tes"] + [f"{i}\t{text}" for i, text in enumerate(sources * 2)]
    path = _write(tmp_path / "in.tsv", rows)
    common = ["--model", tiny_model_dir, "--beam", 2, "--quantize", "none", "--format", "tsv", "--column", "es", "--header"]
    code, whole, _ = _translate(capsys, *common, path)
    assert code == 0
    shares = []
    for shard in range(1, shards + 1):
        code, out, _ = _translate(capsys, *common, "--shard", f"{shard}/{shards}", path)
        assert code == 0
        shares.append(out)
    assert "".join(shares) == whole
    assert max(map(len, (s.splitlines() for s in shares))) - min(map(len, (s.splitlines() for s in shares))) <= 1


def test_a_bad_shard_or_a_shard_of_stdin_is_a_clear_error(tiny_model_dir, tmp_path):
    for shard in ("0/3", "4/3", "a/b", "3"):
        done = _run_translate("--model", tiny_model_dir, "--shard", shard, _write(tmp_path / "in.txt", ["hola"]))
        assert done.returncode == 2 and b"I/N" in done.stderr and b"Traceback" not in done.stderr
    done = _run_translate("--model", tiny_model_dir, "--shard", "1/2", stdin=b"hola\n")
    assert done.returncode != 0 and b"--shard needs input files" in done.stderr


def _run_translate(*argv, stdin: bytes = b"") -> subprocess.CompletedProcess:
    """The real `carousel translate` in a new process, as a user runs it; stdout and stderr as bytes."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, "-m", "carousel", "translate", *map(str, argv)],
        input=stdin, capture_output=True, cwd=ROOT, env=env, timeout=600, check=False,
    )


def test_stdin_to_stdout_keeps_line_count_and_empty_lines(tiny_model_dir, sources):
    data = "".join(s + "\n" for s in sources[:6])
    done = _run_translate("--model", tiny_model_dir, "--beam", 1, stdin=data.encode("utf-8"))
    assert done.returncode == 0, done.stderr.decode()
    lines = done.stdout.decode("utf-8").split("\n")[:-1]
    assert len(lines) == 6
    assert (lines[4], lines[5]) == ("", "   ")  # blank lines come back as they are
    assert all(lines[:4])


def test_empty_file_gives_empty_output_and_exit_0(tiny_model_dir, tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    done = _run_translate("--model", tiny_model_dir, tmp_path / "empty.txt")
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")


def test_output_file_multiple_inputs_and_progress_bar(tiny_model_dir, sources, tmp_path, capsys):
    first, second = _write(tmp_path / "a.txt", sources[:3]), _write(tmp_path / "b.txt", sources[3:7])
    out_file = tmp_path / "out.txt"
    code, out, err = _translate(capsys, "--model", tiny_model_dir, "--beam", 1, first, second, "-o", out_file, "--progress")
    assert code == 0 and out == ""
    assert len(out_file.read_text(encoding="utf-8").splitlines()) == 7
    assert "7/7" in err and "sentences/s" in err  # the total is known for files
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


def test_jsonl_keeps_fields_and_adds_translation_score_and_alternatives(tiny_model_dir, sources, tmp_path, capsys):
    records = [{"text": sources[0], "id": 1}, {"text": "", "id": 2}, {"text": sources[1], "meta": {"x": [1]}}]
    path = _write(tmp_path / "in.jsonl", [json.dumps(records[0]), json.dumps(records[1]), "", json.dumps(records[2])])
    code, out, _ = _translate(
        capsys, "--model", tiny_model_dir, "--format", "jsonl", "--beam", 3, "--nbest", 3, "--scores", path
    )
    assert code == 0
    lines = out.split("\n")[:-1]
    assert len(lines) == 4 and lines[2] == ""
    first, empty, third = json.loads(lines[0]), json.loads(lines[1]), json.loads(lines[3])
    assert first["id"] == 1 and third["meta"] == {"x": [1]}
    search = SearchConfig(beam_size=3, nbest=3)
    # The same texts in one call, as the CLI batches them (int8 output depends on the batch).
    nbest = load_translator(tiny_model_dir).translate_texts([r["text"] for r in records], search)[0]
    assert first["translation"] == nbest[0][0]
    assert first["score"] == pytest.approx(nbest[0][1], abs=1e-3)
    assert first["alternatives"] == [text for text, _ in nbest[1:]]
    assert first["alternative_scores"] == sorted(first["alternative_scores"], reverse=True)
    assert empty["translation"] == "" and empty["alternatives"] == []


def test_tsv_appends_a_translation_column(tiny_model_dir, sources, tmp_path, capsys):
    rows = [f"{i}\t{s}\tnote {i}" for i, s in enumerate(sources[:4])]
    with_header = _write(tmp_path / "h.tsv", ["id\tes\tnote", *rows])
    code, out, _ = _translate(
        capsys, "--model", tiny_model_dir, "--beam", 2, "--format", "tsv", "--column", "es", "--header", with_header
    )
    assert code == 0
    lines = out.split("\n")[:-1]
    assert lines[0] == "id\tes\tnote\ttranslation"
    expected = load_translator(tiny_model_dir).translate_texts(sources[:4], SearchConfig(beam_size=2))
    assert lines[1:] == [f"{row}\t{nbest[0][0]}" for row, nbest in zip(rows, expected)]

    code, by_number, _ = _translate(
        capsys, "--model", tiny_model_dir, "--beam", 2, "--format", "tsv", "--column", 2, _write(tmp_path / "n.tsv", rows)
    )
    assert code == 0 and by_number.split("\n")[:-1] == lines[1:]


# A long sentence and a short one: confidence about 0 and about 1 under the `calibrated_models_dir`
# calibration (it reads the source's length in subword pieces only).
DOUBTFUL = ("Y aconteció en los días que gobernaban los jueces, que hubo hambre en la tierra, y un varón de "
            "Beth-lehem de Judá fué á peregrinar en los campos de Moab, él y su mujer, y dos hijos suyos.")
SURE = "Amén."


def test_confidence_adds_a_tsv_column_and_a_jsonl_field(calibrated_models_dir, tmp_path, capsys):
    model = calibrated_models_dir / "tiny-es-en"
    texts = [DOUBTFUL, SURE, f"{SURE} {DOUBTFUL}", ""]
    rows = [f"{i}\t{text}" for i, text in enumerate(texts)]
    code, out, err = _translate(capsys, "--model", model, "--beam", 2, "--format", "tsv", "--column", "es", "--header",
                                "--scores", "--confidence", _write(tmp_path / "in.tsv", ["id\tes", *rows]))
    assert code == 0, err
    lines = out.split("\n")[:-1]
    assert lines[0] == "id\tes\ttranslation\tscore\tconfidence"
    search = SearchConfig(beam_size=2, return_confidence=True)
    expected = load_translator(model, search=search).translate_texts_with_confidence(texts, search)
    cells = [line.split("\t") for line in lines[1:]]
    assert [row[2] for row in cells] == [nbest[0][0] for nbest, _ in expected]
    confidences = [float(row[4]) for row in cells]
    assert confidences == [pytest.approx(c, abs=1e-4) for _, c in expected]
    assert confidences[0] < 0.1 and confidences[1] > 0.9 and confidences[3] == 1.0  # an empty line: nothing to doubt
    assert confidences[2] == pytest.approx((confidences[0] + confidences[1]) / 2, abs=0.02)  # a line's sentences: mean

    records = [{"text": DOUBTFUL, "id": 1}, {"text": SURE, "id": 2}]
    path = _write(tmp_path / "in.jsonl", [json.dumps(r) for r in records])
    code, out, err = _translate(capsys, "--model", model, "--beam", 2, "--format", "jsonl", "--confidence", path)
    assert code == 0, err
    answers = [json.loads(line) for line in out.split("\n")[:-1]]
    assert [a["id"] for a in answers] == [1, 2] and all(0 <= a["confidence"] <= 1 for a in answers)
    assert answers[0]["confidence"] < 0.1 < 0.9 < answers[1]["confidence"]
    assert "confidence" not in json.loads(_translate(capsys, "--model", model, "--format", "jsonl", path)[1].split("\n")[0])


def test_confidence_without_columns_or_without_a_calibration_exits_2_with_one_line(
    tiny_model_dir, calibrated_models_dir, tmp_path, capsys
):
    text, tsv = _write(tmp_path / "in.txt", ["hola"]), _write(tmp_path / "in.tsv", ["1\thola"])
    code, out, err = _translate(capsys, "--model", calibrated_models_dir / "tiny-es-en", "--confidence", text)
    assert (code, out) == (2, "") and "--confidence adds a column: use --format tsv or jsonl" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    code, out, err = _translate(capsys, "--model", tiny_model_dir, "--format", "tsv", "--column", 2, "--confidence", tsv)
    assert (code, out) == (2, "") and "has no confidence calibration" in err and "carousel calibrate" in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_workers_give_the_same_output_as_one_process(tiny_model_dir, sources, tmp_path, capsys, monkeypatch):
    path = _write(tmp_path / "in.txt", sources * 2)
    monkeypatch.setattr(carousel.formats.batch, "CHUNK_LINES", 7)  # several chunks, finishing out of order is possible
    code, single, _ = _translate(capsys, "--model", tiny_model_dir, "--beam", 2, path)
    assert code == 0
    code, parallel, err = _translate(capsys, "--model", tiny_model_dir, "--beam", 2, "--workers", 2, path)
    assert code == 0, err
    assert parallel == single


def test_threads_give_the_same_output_as_one_thread(tiny_model_dir, sources, tmp_path, capsys, monkeypatch):
    path = _write(tmp_path / "in.txt", sources * 3)
    monkeypatch.setattr(carousel.formats.batch, "CHUNK_LINES", 11)  # several chunks of several slices each
    monkeypatch.setattr(carousel.formats.batch, "PROGRESS_SLICE", 3)
    threads = torch.get_num_threads()
    try:
        code, single, _ = _translate(capsys, "--model", tiny_model_dir, "--beam", 2, "--threads", 1, path)
        assert code == 0
        code, parallel, err = _translate(capsys, "--model", tiny_model_dir, "--beam", 2, "--threads", 3, path)
        assert code == 0, err
    finally:
        torch.set_num_threads(threads)  # --threads shares this process's torch threads out among its threads
    assert parallel == single and len(parallel.splitlines()) == len(sources) * 3


def test_slices_finishing_out_of_order_on_threads_come_out_in_input_order_with_all_progress():
    """The first slices are the slowest: with three threads the later ones finish first."""
    from carousel.formats import batch as files
    from carousel.formats.lines import record_format
    from carousel.model.search import SearchConfig as Search
    from tests.helpers import StandInTextTranslator

    class Slow(StandInTextTranslator):
        def translate_texts(self, texts, search, batch_tokens=None, glossary=None):
            time.sleep(0.2 if int(texts[0].split()[1]) < files.PROGRESS_SLICE else 0)
            return super().translate_texts(texts, search, batch_tokens)

    lines = [f"línea {i}" for i in range(1000)]
    records = list(record_format("text").parse(iter(enumerate(lines, 1)), "in.txt", True))
    done = []
    results = files.translate_in_process(files.chunked(records, 300), Slow(), Search(), 12000,
                                         progress=done.append, threads=3)
    translated = [nbest[0][0] for chunk, translations in results for nbest, _ in translations]
    assert translated == [line.upper() for line in lines] and sum(done) == 1000


def test_threads_with_workers_or_with_a_document_are_a_clear_error(tiny_model_dir, tmp_path, capsys):
    code, out, err = _translate(capsys, "--model", tiny_model_dir, "--threads", 2, "--workers", 2,
                                _write(tmp_path / "in.txt", ["hola"]))
    assert (code, out) == (2, "") and "--threads is for one process" in err
    page = tmp_path / "page.html"
    page.write_text("<p>hola</p>", encoding="utf-8")
    code, out, err = _translate(capsys, "--model", tiny_model_dir, "--threads", 2, page, "-o", tmp_path / "out.html")
    assert code == 2 and "--threads" in err and "do not apply to html documents" in err


def test_a_100000_character_line_is_translated_sentence_by_sentence_in_bounded_time(
    tiny_model_dir, sources, tmp_path, capsys
):
    long_line = (sources[0] + " ") * (100_000 // len(sources[0]) + 1)
    assert len(long_line) > 100_000
    path = _write(tmp_path / "long.txt", [long_line, sources[1]])
    started = time.perf_counter()
    code, out, _ = _translate(capsys, "--model", tiny_model_dir, "--beam", 2, path)
    assert code == 0
    lines = out.split("\n")[:-1]
    assert len(lines) == 2 and lines[0].strip()
    # Cut into sentences, each translated with its output capped, the line stays bounded.
    sentences = len(split_sentences(long_line).sentences)
    assert len(lines[0].split()) <= sentences * SearchConfig().max_length_cap
    assert time.perf_counter() - started < 300  # seconds, on a loaded 2-core machine; far less when idle


@pytest.mark.parametrize("mode", ["int8", "bf16"])
def test_quantized_model_still_translates(tiny_model_dir, sources, tmp_path, capsys, mode):
    path = _write(tmp_path / "in.txt", sources)
    code, out, _ = _translate(capsys, "--model", tiny_model_dir, "--beam", 2, "--quantize", mode, path)
    assert code == 0
    lines = out.split("\n")[:-1]
    assert len(lines) == len(sources)
    assert any(lines) and all(line == source for line, source in zip(lines, sources) if not source.strip())


def test_int8_quantizes_the_recurrent_and_linear_layers_including_the_tied_output(tiny_model_dir):
    model = quantize(load_model_dir(tiny_model_dir).model, "int8")
    for module in (model.encoder.forward_rnns[0], model.decoder.rnn, model.decoder.output_projection):
        assert type(module).__module__.startswith("torch.ao.nn.quantized.dynamic"), module
    assert model.decoder.embedding.weight.dtype == torch.float32  # the tied embedding keeps its float copy
    assert DEFAULT_QUANTIZATION == ServiceSettings().quantize


def test_int8_row_quantizes_the_same_layers_with_its_own_int8_modules(tiny_model_dir):
    model = quantize(load_model_dir(tiny_model_dir).model, "int8-row")
    for module in (model.encoder.forward_rnns[0], model.decoder.rnn):
        assert isinstance(module, Int8Recurrent), module
    for module in (model.decoder.output_projection, model.decoder.attentional_layer):
        assert isinstance(module, Int8Linear) and module.weight_t.dtype == torch.int8, module
    assert model.decoder.embedding.weight.dtype == torch.float32


def _bad_inputs(tmp: Path) -> dict[str, tuple[list[str], str]]:
    """name -> (extra arguments, expected message fragment)."""
    (tmp / "bad-utf8.txt").write_bytes(b"hola\n" + b"caf\xe9\n")
    (tmp / "binary.bin").write_bytes(b"\x7fELF\x00\x01\x02\n\x00")
    (tmp / "no-line-ends.bin").write_bytes(b"x" * (carousel.fileio.MAX_LINE_BYTES + 1))
    (tmp / "bad.jsonl").write_text('{"text": "hola"}\n{"text": "adi\n', encoding="utf-8")
    (tmp / "notext.jsonl").write_text('{"text": "hola"}\n{"src": "adiós"}\n', encoding="utf-8")
    (tmp / "short.tsv").write_text("1\thola\n2\n", encoding="utf-8")
    (tmp / "header.tsv").write_text("id\tes\n1\thola\n", encoding="utf-8")
    (tmp / "ok.txt").write_text("hola\n", encoding="utf-8")
    return {
        "missing input": ([str(tmp / "nowhere.txt")], "nowhere.txt: no such file"),
        "directory input": ([str(tmp)], "is a directory"),
        "invalid utf-8": ([str(tmp / "bad-utf8.txt")], "bad-utf8.txt:2: invalid UTF-8"),
        "binary file": ([str(tmp / "binary.bin")], "binary.bin:1: NUL byte"),
        "binary without line ends": ([str(tmp / "no-line-ends.bin")], "no-line-ends.bin:1: line longer than 16 MiB"),
        "invalid json": (["--format", "jsonl", str(tmp / "bad.jsonl")], "bad.jsonl:2: invalid JSON"),
        "no text key": (["--format", "jsonl", str(tmp / "notext.jsonl")], 'notext.jsonl:2: the object has no "text" key'),
        "tsv row too short": (
            ["--format", "tsv", "--column", "2", str(tmp / "short.tsv")], "short.tsv:2: the row has 1 column"
        ),
        "unknown tsv column": (
            ["--format", "tsv", "--column", "fr", "--header", str(tmp / "header.tsv")], "no column 'fr'"
        ),
        "tsv without column": (["--format", "tsv", str(tmp / "ok.txt")], "needs --column"),
        "nbest above beam": (["--format", "jsonl", "--nbest", "4", "--beam", "2", str(tmp / "ok.txt")], "nbest"),
        "nbest in text": (["--nbest", "2", str(tmp / "ok.txt")], "--nbest needs --format jsonl"),
    }


def test_each_input_problem_exits_2_with_a_one_line_message(tiny_model_dir, tmp_path, capsys):
    for name, (extra, message) in _bad_inputs(tmp_path).items():
        code, _, err = _translate(capsys, "--model", tiny_model_dir, *extra)
        assert code == 2, name
        assert message in err, (name, err)
        assert err.count("\n") == 1 and "Traceback" not in err, name
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


def test_missing_or_broken_model_directory_exits_2(tiny_model_dir, tmp_path, capsys):
    text = _write(tmp_path / "in.txt", ["hola"])
    code, _, err = _translate(capsys, "--model", tmp_path / "no-model", text)
    assert code == 2 and "does not exist" in err
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    code, _, err = _translate(capsys, "--model", broken, text)
    assert code == 2 and "missing" in err


def test_failed_run_leaves_no_output_file(tiny_model_dir, tmp_path, capsys):
    (tmp_path / "in.txt").write_bytes(b"hola\n" * 3 + b"\xff\n")
    out_file = tmp_path / "out.txt"
    code, _, err = _translate(capsys, "--model", tiny_model_dir, tmp_path / "in.txt", "-o", out_file)
    assert code == 2 and "in.txt:4" in err
    assert not out_file.exists() and list(tmp_path.iterdir()) == [tmp_path / "in.txt"]


# `carousel translate` with a stand-in model that upper-cases, so a million lines stream through in seconds.
_STREAMING_CLI = """
import sys
import carousel.model.loading
from carousel.cli import main
from tests.helpers import StandInTextTranslator

carousel.model.loading.load_translator = lambda *args, **kwargs: StandInTextTranslator()
sys.exit(main(sys.argv[1:]))
"""


def _streaming_peak_kib(source: Path, out_file: Path) -> int:
    """Peak resident memory of `carousel translate` (stand-in model) over `source`, in KiB."""
    process = subprocess.Popen(
        [sys.executable, "-c", _STREAMING_CLI, "translate", "--model", str(source.parent), str(source), "-o", str(out_file)],
        cwd=ROOT, stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(process.pid, 0)  # this child's own peak, not earlier children's
    assert os.waitstatus_to_exitcode(status) == 0, process.stderr.read().decode()
    return usage.ru_maxrss


@pytest.mark.slow
def test_a_million_lines_stream_through_in_bounded_memory(tmp_path):
    lines = 1_000_000
    source, out_file = tmp_path / "in.txt", tmp_path / "out.txt"
    with source.open("w", encoding="utf-8") as handle:
        for number in range(lines):
            handle.write(f"línea {number:07d} de un archivo muy largo que no cabe entero en memoria\n")
    assert source.stat().st_size > 65 << 20
    one_line = _write(tmp_path / "one.txt", ["una línea"])
    baseline = _streaming_peak_kib(one_line, tmp_path / "one.out")  # Python, torch, the CLI
    # Held whole, the input alone would add over 150 MiB as Python strings; a chunk at a time, a few MiB.
    assert _streaming_peak_kib(source, out_file) - baseline < 30 << 10
    with out_file.open(encoding="utf-8") as handle:
        assert next(handle) == "LÍNEA 0000000 DE UN ARCHIVO MUY LARGO QUE NO CABE ENTERO EN MEMORIA\n"
        assert 1 + sum(1 for _ in handle) == lines


def test_the_progress_bar_moves_as_slices_finish_not_when_the_chunk_is_written():
    """500 lines are one chunk; the bar must hear of each slice of translated records before the chunk's
    output is written, or it sits at 0/500 until the end."""
    from carousel.formats import batch as files
    from carousel.formats.lines import record_format
    from carousel.model.search import SearchConfig as Search
    from tests.helpers import StandInTextTranslator

    events = []

    class Counting(StandInTextTranslator):
        def translate_texts(self, texts, search, batch_tokens=None, glossary=None):
            events.append(("translated", len(texts)))
            return super().translate_texts(texts, search, batch_tokens)

    records = list(record_format("text").parse(iter(enumerate([f"línea {i}" for i in range(500)], 1)), "in.txt", True))
    results = files.translate_in_process(files.chunked(records, files.CHUNK_LINES), Counting(), Search(), 12000,
                                         progress=lambda done: events.append(("progress", done)))
    for chunk, translations in results:
        events.append(("written", len(chunk)))
    assert [kind for kind, _ in events].count("progress") == 4  # 128 + 128 + 128 + 116
    assert events[-1] == ("written", 500) and sum(n for kind, n in events if kind == "progress") == 500
    assert events.index(("progress", 128)) < events.index(("written", 500))
