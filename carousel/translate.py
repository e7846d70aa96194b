"""`carousel translate`: offline translation of text, TSV or JSONL files, or of stdin.

    carousel translate --model models/bible-es-en < in.txt > out.txt
    carousel translate --model DIR verses.tsv --format tsv --column es --header -o verses.en.tsv
    carousel translate --model DIR requests.jsonl --format jsonl --nbest 3 --scores

One output line per input line, in input order; a line holding several sentences is cut into
sentences, translated in the same batches as the rest and joined back. Input is read in chunks; each chunk is translated,
written and flushed before the next is read, so memory stays bounded whatever the file size.
With --workers N, N processes each load the model and translate chunks side by side; results are
still written in input order. Problems with the input end in a `UserError` naming file and line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from carousel.errors import UserError

CHUNK_LINES = 2000
MAX_LINE_BYTES = 16 << 20  # a longer "line" is not text (the translator keeps only its first tokens anyway)
FORMATS = ("text", "tsv", "jsonl")
QUANTIZE_MODES = ("none", "int8", "bf16")  # model/quantization.py; repeated so `--help` needs no torch
DEFAULT_QUANTIZATION = "int8"

# (translation, score) pairs for one sentence, best first: what crosses process boundaries.
NBest = list[tuple[str, float]]


def add_translate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="*", type=Path, metavar="FILE", help="input files (default: stdin)")
    parser.add_argument("--model", type=Path, required=True, help="model directory (from `carousel train`)")
    parser.add_argument("-o", "--output", type=Path, help="output file (default: stdout)")
    parser.add_argument("--format", choices=FORMATS, default="text", help="input format (default: %(default)s)")
    parser.add_argument("--column", help="TSV: the column to translate, a number (from 1) or a header name")
    parser.add_argument("--header", action="store_true", help="TSV: the first line of each file names the columns")
    parser.add_argument("--scores", action="store_true", help="add each translation's length-normalised log-probability")
    add_search_arguments(parser)
    parser.add_argument("--nbest", type=positive_int, default=1, help="JSONL: also return N-1 alternatives (≤ --beam)")
    parser.add_argument(
        "--workers", type=positive_int, default=1,
        help="processes that each load the model and translate chunks in parallel (default: 1, in-process)",
    )
    parser.add_argument("--progress", action="store_true", help="show the progress bar even when stderr is not a terminal")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def add_search_arguments(parser: argparse.ArgumentParser) -> None:
    """Decoding flags shared with `carousel evaluate`."""
    parser.add_argument("--beam", type=positive_int, default=5, help="beam size; 1 is greedy (default: %(default)s)")
    parser.add_argument(
        "--batch-tokens", type=positive_int, default=12000,
        help="source tokens × beam per batch (default: %(default)s)",
    )
    parser.add_argument(
        "--length-penalty", type=float, default=None,
        help="GNMT length normalisation alpha; 0 ranks by raw log-probability "
        "(default: the model's own, chosen on validation data by `carousel tune`, else 1.0)",
    )
    parser.add_argument(
        "--channel-weight", type=float, default=None,
        help="weight of the reverse-direction model's score when reranking the beam; 0 turns reranking off "
        "(default: the model's own, chosen by `carousel tune --channel-model`, else off)",
    )
    parser.add_argument(
        "--max-length-ratio", type=float, default=1.5,
        help="output length cap: ratio × source tokens + 10 (default: %(default)s)",
    )
    parser.add_argument(
        "--quantize", choices=QUANTIZE_MODES, default=DEFAULT_QUANTIZATION,
        help="inference precision: int8 dynamic quantization, float32 as trained (none), or bfloat16 (default: %(default)s)",
    )


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def search_config(args: argparse.Namespace, nbest: int = 1):
    """The `SearchConfig` the decoding flags describe."""
    from model.search import (
        MAX_CHANNEL_WEIGHT, MAX_LENGTH_PENALTY, SearchConfig, is_valid_channel_weight, is_valid_length_penalty,
    )

    if args.length_penalty is not None and not is_valid_length_penalty(args.length_penalty):
        raise UserError(f"--length-penalty must be between 0 and {MAX_LENGTH_PENALTY:g}, got {args.length_penalty}")
    if args.channel_weight is not None and not is_valid_channel_weight(args.channel_weight):
        raise UserError(f"--channel-weight must be between 0 and {MAX_CHANNEL_WEIGHT:g}, got {args.channel_weight}")
    if args.max_length_ratio <= 0:
        raise UserError(f"--max-length-ratio must be positive, got {args.max_length_ratio}")
    try:
        return SearchConfig(
            beam_size=args.beam, nbest=nbest, length_penalty=args.length_penalty, max_length_ratio=args.max_length_ratio,
            channel_weight=args.channel_weight,
        )
    except ValueError as error:
        raise UserError(f"{error} (--nbest {nbest}, --beam {args.beam})") from None


def load_translator(model_dir: Path, quantization: str = DEFAULT_QUANTIZATION, search=None, channel: str | None = None):
    """A `Translator` for a model directory, with its weights in the requested precision; with `search`,
    refuse settings the model cannot honour (a channel weight without a channel model). A channel
    weight given on the command line loads the channel model the card names even where it was tuned to 0;
    `channel` overrides that choice (model.translator.ChannelLoading)."""
    from model.translator import Translator

    if channel is None:
        channel = "named" if search is not None and search.channel_weight else "tuned"
    try:
        translator = Translator.from_directory(model_dir, quantization, channel)
    except ValueError as error:  # no quantized engine in this PyTorch build
        raise UserError(str(error)) from None
    if search is not None and search.channel_weight and translator.channel is None:
        raise UserError(f"--channel-weight needs a channel model, and {model_dir} names none: "
                        f"choose one with `carousel tune --model {model_dir} --channel-model DIR --update-card`")
    return translator


def run_translate(args: argparse.Namespace) -> int:
    record_format = _record_format(args)
    search = search_config(args, args.nbest)
    inputs: list[Path | None] = list(args.inputs) or [None]  # None: stdin
    for path in inputs:
        if path is not None:
            _check_readable(path)
    translator = load_translator(args.model, args.quantize, search)  # a bad directory fails here, before any work
    if args.workers > 1:
        translator = None  # each worker process loads its own

    show_progress = not args.quiet and (args.progress or sys.stderr.isatty())
    total = sum(count_lines(path) for path in inputs) if show_progress and None not in inputs else None
    try:
        with _Output(args.output) as out, _progress_bar(total, show_progress) as bar:
            chunks = _chunks(_records(inputs, record_format), CHUNK_LINES)
            if translator is None:
                results = _translate_in_workers(chunks, args, search)
            else:
                results = ((c, translate_nbest(translator, _sources(c), search, args.batch_tokens)) for c in chunks)
            for chunk, translations in results:
                out.write("".join(line + "\n" for line in _render(chunk, translations, record_format)))
                out.flush()
                bar.update(len(chunk))
    except BrokenPipeError:
        return stop_after_broken_pipe()
    return 0


def stop_after_broken_pipe() -> int:
    """The reader of stdout went away (`carousel translate ... | head`): stop quietly, like Unix filters.

    Stdout is pointed at /dev/null so that Python's final flush does not fail again; 141 is 128 + SIGPIPE.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 141


def translate_nbest(translator, sources: list[str], search, batch_tokens: int) -> list[NBest]:
    """Translate with `translator` (a line longer than a sentence is cut into sentences and joined back)."""
    return [[(_one_line(text), score) for text, score in nbest] for nbest in translator.translate_texts(sources, search, batch_tokens)]


# --- input ---------------------------------------------------------------------------------------


@dataclass
class Record:
    """One input line: the text to translate and what the output line is built from."""

    source: str
    payload: Any = None  # the TSV line or the JSON object
    verbatim: str | None = None  # a line copied to the output untranslated (a TSV header)


def read_lines(path: Path | None) -> Iterator[tuple[int, str]]:
    """(line number, text) of a UTF-8 file or of stdin, without line ends.

    Only "\\n" ends a line ("\\r\\n" too), so the line count is what `wc -l` sees; invalid UTF-8 or a
    NUL byte (a binary file) raise a `UserError` naming the file and line.
    """
    name = _display_name(path)
    if path is None:
        stream, close = sys.stdin.buffer, False
    else:
        stream, close = _open_for_reading(path), True
    try:
        number = 0
        while raw := stream.readline(MAX_LINE_BYTES + 1):
            number += 1
            if len(raw) > MAX_LINE_BYTES:
                raise UserError(f"{name}:{number}: line longer than {MAX_LINE_BYTES >> 20} MiB: not a text file")
            if b"\0" in raw:
                raise UserError(f"{name}:{number}: NUL byte: a binary file, not UTF-8 text")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise UserError(f"{name}:{number}: invalid UTF-8 at byte {error.start + 1} of the line") from None
            if number == 1:
                text = text.removeprefix("\ufeff")
            yield number, text.removesuffix("\n").removesuffix("\r")
    finally:
        if close:
            stream.close()


def count_lines(path: Path) -> int:
    """Lines in a file, counted in 1 MiB blocks (for the progress bar's total)."""
    lines, last = 0, b"\n"
    with _open_for_reading(path) as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (last != b"\n")


def _records(inputs: list[Path | None], record_format: RecordFormat) -> Iterator[Record]:
    for index, path in enumerate(inputs):
        yield from record_format.parse(read_lines(path), _display_name(path), first_file=index == 0)


def _chunks(records: Iterable[Record], size: int) -> Iterator[list[Record]]:
    chunk: list[Record] = []
    for record in records:
        chunk.append(record)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _sources(chunk: list[Record]) -> list[str]:
    return [record.source for record in chunk if record.verbatim is None]


def _check_readable(path: Path) -> None:
    _open_for_reading(path).close()


def _open_for_reading(path: Path) -> IO[bytes]:
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, not a file") from None
    except OSError as error:
        raise UserError(f"{path}: cannot read ({error.strerror})") from None


def _display_name(path: Path | None) -> str:
    return "<stdin>" if path is None else str(path)


# --- formats -------------------------------------------------------------------------------------


class RecordFormat:
    """Turns input lines into records and records plus translations into output lines."""

    def __init__(self, scores: bool, nbest: int):
        self.scores, self.nbest = scores, nbest

    def parse(self, lines: Iterator[tuple[int, str]], name: str, first_file: bool) -> Iterator[Record]:
        for _, line in lines:
            yield Record(line)

    def render(self, record: Record, nbest: NBest) -> str:
        text, score = nbest[0]
        return f"{text}\t{score:.4f}" if self.scores else text


class TsvFormat(RecordFormat):
    """Tab-separated rows; the output is the row with the translation (and score) appended."""

    def __init__(self, scores: bool, nbest: int, column: str, header: bool):
        super().__init__(scores, nbest)
        self.column, self.header = column, header
        if column.isdigit():
            self.index: int | None = int(column) - 1
            if self.index < 0:
                raise UserError("--column numbers start at 1")
        elif header:
            self.index = None  # looked up in each file's header
        else:
            raise UserError(f"--column {column!r} is a name: add --header, or give the column's number (from 1)")

    def parse(self, lines: Iterator[tuple[int, str]], name: str, first_file: bool) -> Iterator[Record]:
        index = self.index
        for number, line in lines:
            fields = line.split("\t")
            if self.header and number == 1:
                if index is None:
                    if self.column not in fields:
                        raise UserError(f"{name}:1: no column {self.column!r} in the header (have {', '.join(fields)})")
                    index = fields.index(self.column)
                if first_file:  # one header in the output, however many files
                    yield Record("", verbatim="\t".join([*fields, "translation", *(["score"] if self.scores else [])]))
                continue
            if index >= len(fields):
                raise UserError(f"{name}:{number}: the row has {len(fields)} column(s), no column {self.column}")
            yield Record(fields[index], payload=line)

    def render(self, record: Record, nbest: NBest) -> str:
        text, score = nbest[0]
        return "\t".join([record.payload, _one_field(text), *([f"{score:.4f}"] if self.scores else [])])


class JsonlFormat(RecordFormat):
    """One JSON object per line with a "text" key; the output object adds "translation" (and more)."""

    def parse(self, lines: Iterator[tuple[int, str]], name: str, first_file: bool) -> Iterator[Record]:
        for number, line in lines:
            if not line.strip():
                yield Record("", verbatim="")  # blank lines stay blank
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as error:
                raise UserError(f"{name}:{number}: invalid JSON ({error.msg} at column {error.colno})") from None
            if not isinstance(value, dict):
                raise UserError(f"{name}:{number}: expected a JSON object like {{\"text\": \"...\"}}")
            if "text" not in value:
                raise UserError(f"{name}:{number}: the object has no \"text\" key")
            if not isinstance(value["text"], str):
                raise UserError(f"{name}:{number}: \"text\" must be a string, not {type(value['text']).__name__}")
            yield Record(value["text"], payload=value)

    def render(self, record: Record, nbest: NBest) -> str:
        text, score = nbest[0]
        value = dict(record.payload, translation=text)
        if self.scores:
            value["score"] = round(score, 4)
        if self.nbest > 1:
            value["alternatives"] = [alternative for alternative, _ in nbest[1:]]
            if self.scores:
                value["alternative_scores"] = [round(s, 4) for _, s in nbest[1:]]
        return json.dumps(value, ensure_ascii=False)


def _record_format(args: argparse.Namespace) -> RecordFormat:
    if args.format != "tsv" and (args.column is not None or args.header):
        raise UserError("--column and --header apply to --format tsv")
    if args.nbest > 1 and args.format != "jsonl":
        raise UserError("--nbest needs --format jsonl (text and TSV output keep one translation per line)")
    if args.format == "tsv":
        if args.column is None:
            raise UserError("--format tsv needs --column (a number from 1, or a name with --header)")
        return TsvFormat(args.scores, args.nbest, args.column, args.header)
    if args.format == "jsonl":
        return JsonlFormat(args.scores, args.nbest)
    return RecordFormat(args.scores, args.nbest)


def _render(chunk: list[Record], translations: list[NBest], record_format: RecordFormat) -> list[str]:
    results = iter(translations)
    return [
        record.verbatim if record.verbatim is not None else record_format.render(record, next(results))
        for record in chunk
    ]


def _one_line(text: str) -> str:
    """Output stays one line per input line, whatever the subword model decodes to."""
    return " ".join(text.splitlines()) if ("\n" in text or "\r" in text) else text


def _one_field(text: str) -> str:
    return text.replace("\t", " ")


# --- output and progress -------------------------------------------------------------------------


class _Output:
    """Stdout, or a file written under a temporary name and renamed at the end (never half a file)."""

    def __init__(self, path: Path | None):
        self.path = path
        self.partial = None if path is None else path.with_name(f".{path.name}.partial")

    def __enter__(self) -> IO[str]:
        if self.path is None:
            stdout = sys.stdout
            if (getattr(stdout, "encoding", None) or "").lower().replace("-", "") != "utf8":
                stdout.reconfigure(encoding="utf-8")  # type: ignore[union-attr]
            return stdout
        try:
            self.handle = open(self.partial, "w", encoding="utf-8", newline="\n")
        except OSError as error:
            raise UserError(f"{self.path}: cannot write ({error.strerror})") from None
        return self.handle

    def __exit__(self, kind, error, traceback) -> None:
        if self.path is None:
            return
        self.handle.close()
        if kind is None:
            os.replace(self.partial, self.path)
        else:
            self.partial.unlink(missing_ok=True)


def _progress_bar(total: int | None, show: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit=" sentences", file=sys.stderr, disable=not show, mininterval=0.5, dynamic_ncols=True)


# --- parallel workers ----------------------------------------------------------------------------

_worker_translator = None


def _translate_in_workers(
    chunks: Iterator[list[Record]], args: argparse.Namespace, search
) -> Iterator[tuple[list[Record], list[NBest]]]:
    """Translate chunks in `args.workers` processes, yielding results in input order.

    At most two chunks per worker are in flight, so memory stays bounded however long the input is.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    import torch

    threads = max(1, torch.get_num_threads() // args.workers)
    pool = ProcessPoolExecutor(
        args.workers,
        mp_context=multiprocessing.get_context("spawn"),  # no fork of a process whose thread pools already run
        initializer=_start_worker,
        initargs=(args.model, args.quantize, search, threads),
    )
    pending: deque = deque()
    try:
        for chunk in chunks:
            pending.append((chunk, pool.submit(_translate_in_worker, _sources(chunk), search, args.batch_tokens)))
            if len(pending) >= 2 * args.workers:
                chunk, future = pending.popleft()
                yield chunk, future.result()
        while pending:
            chunk, future = pending.popleft()
            yield chunk, future.result()
    except BrokenProcessPool:
        raise UserError("a translation worker process died (out of memory? try fewer --workers)") from None
    finally:
        pool.shutdown(wait=not pending, cancel_futures=True)


def _start_worker(model_dir: Path, quantization: str, search, threads: int) -> None:
    import torch

    global _worker_translator
    torch.set_num_threads(threads)
    _worker_translator = load_translator(model_dir, quantization, search)


def _translate_in_worker(sources: list[str], search, batch_tokens: int) -> list[NBest]:
    return translate_nbest(_worker_translator, sources, search, batch_tokens)

