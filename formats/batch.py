"""Offline translation of whole files: records read in chunks, translated, written in input order.

Input is read in chunks of `CHUNK_LINES` records; each chunk is translated, written and flushed
before the next is read, so memory stays bounded whatever the file size. A chunk is translated in
slices of `PROGRESS_SLICE` records: one after another, side by side on several threads (each on its
share of the cores), or in N worker processes that each load the model. Either way the slices are the
same, results come out in input order, and at most two chunks are in flight.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from carousel.errors import UserError
from carousel.fileio import atomic_file, display_name, read_lines
from carousel.formats.lines import NBest, Record, RecordFormat, Translated, one_line

CHUNK_LINES = 2000
# Records translated per call: enough for full batches (the translator sorts them by length), few enough
# that the progress bar moves every few seconds.
PROGRESS_SLICE = 128


def translate_nbest(translator, sources: list[str], search, batch_tokens: int, glossary=None) -> list[NBest]:
    """Translate with `translator` (a line longer than a sentence is cut into sentences and joined back),
    enforcing `glossary` (model/glossary.py) where one is given."""
    return [nbest for nbest, _ in translate_records(translator, sources, search, batch_tokens, glossary)]


def translate_records(translator, sources: list[str], search, batch_tokens: int, glossary=None) -> list[Translated]:
    """`translate_nbest`, each with its confidence where `search.return_confidence` asks for one (else None)."""
    if search.return_confidence:  # a forced decode with the reverse model per line: only when asked
        results = translator.translate_texts_with_confidence(sources, search, batch_tokens, glossary=glossary)
    else:
        results = [(nbest, None) for nbest in translator.translate_texts(sources, search, batch_tokens, glossary=glossary)]
    return [([(one_line(text), score) for text, score in nbest], confidence) for nbest, confidence in results]


def read_records(inputs: list[Path | None], record_format: RecordFormat) -> Iterator[Record]:
    """The records of every input (None: stdin), in order."""
    for index, path in enumerate(inputs):
        yield from record_format.parse(read_lines(path), display_name(path), first_file=index == 0)


def shard_bounds(count: int, shard: int, shards: int) -> tuple[int, int]:
    """The records [start, end) of share `shard` (from 1) of `shards` contiguous shares of `count` records:
    the shares cover every record once, in order, and differ in size by at most one."""
    return (shard - 1) * count // shards, shard * count // shards


def chunked(records: Iterable[Record], size: int) -> Iterator[list[Record]]:
    chunk: list[Record] = []
    for record in records:
        chunk.append(record)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def sources_of(chunk: list[Record]) -> list[str]:
    """The texts to translate in a chunk (verbatim records such as a TSV header are not translated)."""
    return [record.source for record in chunk if record.verbatim is None]


def translate_in_process(chunks: Iterable[list[Record]], translator, search, batch_tokens: int,
                         progress: Callable[[int], object] | None = None, glossary=None, threads: int = 1):
    """(chunk, translations) for each chunk, translated here, `PROGRESS_SLICE` records at a time so that
    `progress(records done)` follows the work (a chunk of 2,000 lines takes minutes).

    With `threads` > 1 that many slices are translated side by side, each thread on its share of the cores
    (`share_cpu_threads`): a beam search's small matrix products keep one core busy better than they
    split over two. The slices are the same as with one thread, so the output is too.
    """
    def translate(part: list[str]) -> list[Translated]:
        return translate_records(translator, part, search, batch_tokens, glossary)

    with _slice_runner(threads) as run:
        yield from _translate_slices(chunks, lambda part: run(translate, part), progress, eager=threads == 1)


def _translate_slices(chunks: Iterable[list[Record]], start: Callable, progress: Callable[[int], object] | None,
                      eager: bool = False):
    """(chunk, translations) for each chunk, in input order: `start(part)` begins a slice's translation and
    returns a handle whose `result()` waits for it. While a chunk's last slices finish, the next chunk's
    first ones start (at most two chunks are held), unless `eager`: then each chunk is done before the
    next is read."""
    pending: deque = deque()
    for chunk in chunks:
        sources = sources_of(chunk)
        parts = [sources[first:first + PROGRESS_SLICE] for first in range(0, len(sources), PROGRESS_SLICE)]
        pending.append((chunk, [(len(part), start(part)) for part in parts]))
        if len(pending) == 2 or eager:
            yield _collect(*pending.popleft(), progress)
    while pending:
        yield _collect(*pending.popleft(), progress)


@contextmanager
def _slice_runner(threads: int):
    """`run(function, argument)` -> a handle whose `result()` is `function(argument)`: called when the result
    is asked for with one thread, else queued to a pool of `threads`, whose pending work is dropped on the
    way out."""
    if threads == 1:
        yield _Later
        return
    from concurrent.futures import ThreadPoolExecutor

    from carousel.model.precision import share_cpu_threads

    share_cpu_threads(threads)
    pool = ThreadPoolExecutor(threads, thread_name_prefix="translate")
    try:
        yield pool.submit
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class _Later:
    """A call made when its result is asked for, with the interface of a future."""

    def __init__(self, function, argument):
        self.function, self.argument = function, argument

    def result(self):
        return self.function(self.argument)


def _collect(chunk: list[Record], parts: list, progress: Callable[[int], object] | None):
    translations: list[Translated] = []
    for size, handle in parts:
        translations += handle.result()
        if progress is not None:
            progress(size)
    return chunk, translations


class AtomicOutput:
    """Stdout, or a file written under a temporary name and renamed at the end (never half a file)."""

    def __init__(self, path: Path | None):
        self.path = path

    def __enter__(self) -> IO[str]:
        if self.path is None:
            stdout = sys.stdout
            if (getattr(stdout, "encoding", None) or "").lower().replace("-", "") != "utf8":
                stdout.reconfigure(encoding="utf-8")  # type: ignore[union-attr]
            return stdout
        self.writing = atomic_file(self.path, "w", encoding="utf-8", newline="\n")
        try:
            return self.writing.__enter__()
        except OSError as error:
            raise UserError(f"{self.path}: cannot write ({error.strerror})") from None

    def __exit__(self, kind, error, traceback):
        if self.path is not None:
            return self.writing.__exit__(kind, error, traceback)


def stop_after_broken_pipe() -> int:
    """The reader of stdout went away (`carousel translate ... | head`): stop quietly, like Unix filters.

    Stdout is pointed at /dev/null so that Python's final flush does not fail again; 141 is 128 + SIGPIPE.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 141


# --- parallel workers ----------------------------------------------------------------------------

TranslatorFactory = Callable[[], object]  # builds a translator inside a worker process (picklable)
_worker_translator = None
_worker_glossary = None  # the glossary of `carousel translate --glossary`, sent once to each worker


def translate_in_workers(
    chunks: Iterator[list[Record]], workers: int, make_translator: TranslatorFactory, search, batch_tokens: int,
    glossary=None, progress: Callable[[int], object] | None = None,
) -> Iterator[tuple[list[Record], list[Translated]]]:
    """`translate_in_process` in `workers` processes that each load the model: the same slices, handed out
    one at a time so that the processes stay equally busy, and the same order. No GIL is shared, at the
    price of a model load per process."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    import torch

    threads = max(1, torch.get_num_threads() // workers)
    pool = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),  # no fork of a process whose thread pools already run
        initializer=_start_worker,
        initargs=(make_translator, threads, glossary),
    )
    finished = False
    try:
        yield from _translate_slices(
            chunks, lambda part: pool.submit(_translate_in_worker, part, search, batch_tokens), progress)
        finished = True
    except BrokenProcessPool:
        raise UserError("a translation worker process died (out of memory? try fewer --workers)") from None
    finally:
        pool.shutdown(wait=finished, cancel_futures=True)


def _start_worker(make_translator: TranslatorFactory, threads: int, glossary=None) -> None:
    import torch

    global _worker_translator, _worker_glossary
    torch.set_num_threads(threads)
    _worker_translator, _worker_glossary = make_translator(), glossary


def _translate_in_worker(sources: list[str], search, batch_tokens: int) -> list[Translated]:
    return translate_records(_worker_translator, sources, search, batch_tokens, _worker_glossary)
