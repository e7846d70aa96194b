"""Batches translated in child processes, so that the batching workers do not share one GIL.

A service batching worker (service/queue.py) translates batches of about ten sentences. Part of each
beam-search step is Python, which holds the GIL, so two worker threads of one process give 1.3 times one
thread, where two processes give 1.75 times (`benchmarks/batch_workers.py`). With `batch_processes` (the
default), the worker threads still form the batches, but each hands its batch to one of N child processes
and waits for the answer (waiting on a pipe releases the GIL).

Each child loads the models it is asked for, by directory, with the registry's loader, at the first batch
of each, and keeps them; the weights are loaded once per child and shared between the models that need
them (a model's confidence reads the reverse direction's model, which is served too: `SharedWeights`). A child that dies (out of memory, a crash) fails the batch it had and is replaced
by a fresh one, and the next batch goes on; an error inside a translation comes back as that batch's
error. The pipe carries our own objects between our own processes (pickle, as `multiprocessing` does);
nothing from a client is unpickled.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

STOP_SECONDS = 5.0  # how long a child may take to finish its batch and leave before it is killed


class TranslationProcessDied(RuntimeError):
    """The child process translating a batch ended before it answered."""


class TranslationProcesses:
    """`count` child processes, each on its share of the cores; `translate` borrows a free one."""

    def __init__(self, count: int, load: Callable, quantization: str, threads: int = 1):
        """`load(directory, quantization, shared)`: a translator for a model directory, its weights taken from
        and added to `shared` (model/loading.py `SharedWeights`, one per child)."""
        self._load, self._quantization, self._threads = load, quantization, threads
        self._context = multiprocessing.get_context("spawn")  # no fork of a process whose thread pools run
        self._free: queue.Queue[_Child] = queue.Queue()
        self._children: list[_Child] = []
        self._lock = threading.Lock()
        self._closed = False
        for _ in range(count):
            child = self._start_child()
            self._children.append(child)
            self._free.put(child)

    def translate(self, directory: Path, sentences: list[str], search, batch_tokens: int, glossaries=None) -> list:
        """What `translator.translate(sentences, search, batch_tokens[, glossaries])` returns, computed by a
        child with the model of `directory`."""
        child = self._free.get()
        try:
            return child.call((str(directory), sentences, search, batch_tokens, glossaries))
        except TranslationProcessDied:
            child = self._replace(child)
            raise
        finally:
            self._free.put(child)

    def close(self, timeout: float = STOP_SECONDS) -> None:
        with self._lock:
            self._closed = True
            children = list(self._children)
        for child in children:
            child.stop(timeout)

    def _start_child(self) -> "_Child":
        parent_end, child_end = self._context.Pipe()
        process = self._context.Process(
            target=_serve, args=(child_end, self._load, self._quantization, self._threads),
            name="translation-process", daemon=True,
        )
        process.start()
        child_end.close()
        return _Child(process, parent_end)

    def _replace(self, dead: "_Child") -> "_Child":
        dead.stop(0)
        with self._lock:
            if self._closed:
                return dead
            fresh = self._start_child()
            self._children[self._children.index(dead)] = fresh
        log.error("a translation process died (exit code %s); started a new one", dead.process.exitcode)
        return fresh


class _Child:
    """One child process and the parent's end of its pipe (used by one worker thread at a time)."""

    def __init__(self, process, connection):
        self.process, self.connection = process, connection

    def call(self, request):
        try:
            self.connection.send(request)
            status, value = self.connection.recv()
        except (EOFError, OSError, BrokenPipeError):
            raise TranslationProcessDied("the translation process ended while translating this batch") from None
        if status == "error":
            raise RuntimeError(value)
        return value

    def stop(self, timeout: float) -> None:
        try:
            self.connection.send(None)
        except (OSError, BrokenPipeError):
            pass
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(1.0)
        self.connection.close()


def _serve(connection, load: Callable, quantization: str, threads: int) -> None:
    """A child's loop: (directory, sentences, search, batch_tokens, glossaries) in, ("ok", results) or
    ("error", message) out; None stops it. A model is loaded at its first batch here, and kept."""
    import signal

    import torch

    from carousel.model.loading import SharedWeights

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server stops its children itself, after its requests
    torch.set_num_threads(threads)
    translators: dict[str, object] = {}
    shared = SharedWeights()
    while True:
        try:
            request = connection.recv()
        except (EOFError, OSError):
            return  # the server is gone
        if request is None:
            return
        directory, sentences, search, batch_tokens, glossaries = request
        try:
            if directory not in translators:
                translators[directory] = load(Path(directory), quantization, shared)
            translator = translators[directory]
            if glossaries is not None:
                results = translator.translate(sentences, search, batch_tokens, glossaries)
            else:
                results = translator.translate(sentences, search, batch_tokens)
            connection.send(("ok", results))
        except Exception as error:  # noqa: BLE001 - any failure is that batch's, reported to its requests
            connection.send(("error", f"{type(error).__name__}: {error}"))
