"""Reading and writing uploaded documents in child processes: bounded in time and memory, and stoppable.

A parser cannot be interrupted from another thread: a .docx of millions of paragraphs kept a thread
busy for minutes after its client had left, grew the server by gigabytes, and kept the process alive
after SIGTERM. So each document is read (`read_texts`) and written back with its translations
(`render_texts`, which reads it again) in a child process of its own, forked from a clean, single-threaded
server process (multiprocessing's forkserver, with the document libraries already imported):

- the memory it may allocate is capped (`memory` bytes of data segment, RLIMIT_DATA: the libraries it
  maps are not counted): a document that needs more fails there, not here;
- it is killed when it takes longer than `seconds`, when its request is cancelled (client gone, the
  file's time budget spent) and when the server stops (`stop`), whatever it is parsing;
- the event loop waits for its answer on the pipe itself (no thread), and at most `workers` documents
  are read or written at a time.

Both ends of a job raise the formats' own errors: `DocumentError` (400) and `DocumentTooLarge` (413,
also for time and memory). As with any multiprocessing child that is not forked, the child imports the
parent's main script again (as `__mp_main__`): a script that starts the server must do so under
`if __name__ == "__main__":`, as `carousel`'s own entry points do.
"""

from __future__ import annotations

import asyncio
import logging
import math
import multiprocessing
import multiprocessing.forkserver
import resource
import signal
import threading
import traceback
from dataclasses import dataclass

from carousel.formats.documents import DocumentError, DocumentLimits, DocumentTooLarge, read_document, sentence_counts

log = logging.getLogger(__name__)
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["carousel.service.document_process", "lxml.etree", "polib", "srt"])


@dataclass(frozen=True)
class DocumentJob:
    """What a child needs to read a document again: the upload and how to read it."""

    fmt: str
    data: bytes
    source: str
    target: str
    limits: DocumentLimits


class ShuttingDown(Exception):
    """The server is stopping: no document is read or written any more."""


def read_texts(job: DocumentJob) -> tuple[list[str], dict[str, int]]:
    """(the texts to translate, the sentences of each distinct one)."""
    document = read_document(job.fmt, job.data, job.source, job.target, limits=job.limits)
    return document.texts, sentence_counts(document.texts)


def render_texts(job: DocumentJob, translations: list[str]) -> bytes:
    return read_document(job.fmt, job.data, job.source, job.target, limits=job.limits).render(translations)


class DocumentProcesses:
    def __init__(self, workers: int):
        self._turns = asyncio.Semaphore(workers)
        self._running: set = set()
        self._stopped = False

    async def run(self, function, arguments: tuple, seconds: float, memory: int):
        """`function(*arguments)` in a child process, within `seconds` and `memory` bytes."""
        async with self._turns:
            if self._stopped:
                raise ShuttingDown("the server is shutting down")
            receiver, sender = _CONTEXT.Pipe(duplex=False)
            process = _CONTEXT.Process(target=_child, args=(sender, function, arguments, seconds, memory),
                                       name="carousel-document", daemon=True)
            process.start()
            sender.close()
            self._running.add(process)
            try:
                message = await _receive(receiver, seconds)
            finally:
                self._running.discard(process)
                receiver.close()
                _end(process)
            return _outcome(message, process.exitcode, seconds, memory)

    def warm_up(self) -> None:
        """Start the forkserver now, in a thread: the first document then waits for no interpreter start."""
        threading.Thread(target=multiprocessing.forkserver.ensure_running, name="forkserver", daemon=True).start()

    def stop(self) -> None:
        """Kill every child at once (the server is stopping); later jobs raise ShuttingDown."""
        self._stopped = True
        for process in list(self._running):
            _end(process)


async def _receive(receiver, seconds: float):
    """The child's message, or None when it took longer than `seconds` or died without one."""
    loop = asyncio.get_running_loop()
    readable = loop.create_future()
    loop.add_reader(receiver.fileno(), lambda: readable.done() or readable.set_result(None))
    try:
        await asyncio.wait_for(readable, seconds)
    except asyncio.TimeoutError:
        return None
    finally:
        loop.remove_reader(receiver.fileno())
    try:
        return receiver.recv()  # the child sends all of it at once: this read does not wait for work
    except (EOFError, OSError):
        return ("died", "")


def _outcome(message, exitcode: int | None, seconds: float, memory: int):
    if message is None or (message[0] == "died" and exitcode == -signal.SIGXCPU):
        raise DocumentTooLarge(f"the file took longer than {seconds:g} seconds to read or write")
    kind, value = message
    if kind == "ok":
        return value
    if kind == "too-large":
        raise DocumentTooLarge(value)
    if kind == "invalid":
        raise DocumentError(value)
    if kind in ("memory", "died"):
        raise DocumentTooLarge(f"the file needs more than {memory // (1024 * 1024)} MiB of memory to read or write")
    raise RuntimeError(f"reading or writing a document failed in its process:\n{value}")


def _end(process) -> None:
    if process.exitcode is None:
        process.kill()
    process.join(1.0)  # a killed child is gone at once; the forkserver reaps it


def _child(sender, function, arguments: tuple, seconds: float, memory: int) -> None:
    resource.setrlimit(resource.RLIMIT_DATA, (memory, memory))
    cpu = math.ceil(seconds) + 1  # a backstop: the parent kills it after `seconds` of wall time anyway
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    try:
        message = ("ok", function(*arguments))
    except DocumentTooLarge as error:
        message = ("too-large", str(error))
    except DocumentError as error:
        message = ("invalid", str(error))
    except MemoryError:
        message = ("memory", "")
    except BaseException:
        message = ("failed", traceback.format_exc())
    sender.send(message)
    sender.close()
