"""Cross-request dynamic batching: many small requests become one `translate` call.

Each model has one `BatchingQueue`. A request puts its sentences on the queue with `submit` and awaits
the asyncio future it gets back. A worker thread (off the event loop, so the server keeps answering)
takes the oldest waiting job, waits at most `max_wait_ms` from that job's arrival for others to join,
merges the jobs that share its search settings (beam, n-best, alignment) up to `max_batch_tokens`,
translates them in one call, and hands each request its own results through
`loop.call_soon_threadsafe`. A job whose future was cancelled (request timed out, client went away)
leaves the queue at once and is never translated. With several workers (`workers`), one batch is
collected while others translate: on a small CPU, two single-threaded searches side by side keep both
cores busier than one search over two threads (benchmarks/serve.py measures it).

Cost is estimated before tokenisation as (characters / 4 + 2) × beam: about one subword per four
characters plus EOS, times the rows the beam search carries. That is the unit of `translate`'s
`batch_tokens` as well, which the merged call receives, so one merged batch is about one network batch.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from carousel.model.translator import SearchConfig, Translation

log = logging.getLogger(__name__)


class QueueFull(Exception):
    """More sentences are waiting than the queue holds; the client should retry later."""


class QueueClosed(Exception):
    """The queue is shutting down and takes no new work."""


@dataclass(frozen=True)
class BatchReport:
    """What one merged `translate` call did (for metrics and tests)."""

    requests: int
    sentences: int
    source_tokens: int
    target_tokens: int
    seconds: float


def estimated_cost(sentences: list[str], beam_size: int) -> int:
    return sum(len(s) // 4 + 2 for s in sentences) * beam_size


@dataclass(eq=False)
class _Job:
    sentences: list[str]
    search: SearchConfig
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    cost: int
    arrived: float = field(default_factory=time.monotonic)


class BatchingQueue:
    """A bounded queue of translation jobs in front of one translator, served by worker threads."""

    def __init__(
        self,
        translator,
        *,
        max_batch_tokens: int = 6000,
        max_wait_ms: float = 5.0,
        queue_size: int = 2048,
        on_batch: Callable[[BatchReport], None] | None = None,
        name: str = "model",
        workers: int = 1,
    ):
        self.translator = translator
        self.max_batch_tokens = max_batch_tokens
        self.max_wait = max_wait_ms / 1000.0
        self.queue_size = queue_size
        self.on_batch = on_batch
        self.name = name
        self._jobs: deque[_Job] = deque()
        self._pending = 0  # sentences waiting (not yet taken by the worker)
        self._condition = threading.Condition()
        self._closing = False
        self.workers = workers
        self._threads: list[threading.Thread] = []

    @property
    def depth(self) -> int:
        """Sentences waiting to be translated."""
        return self._pending

    def start(self) -> None:
        with self._condition:
            if not self._threads:
                self._threads = [
                    threading.Thread(target=self._work, name=f"batching-{self.name}-{i}", daemon=True)
                    for i in range(self.workers)
                ]
                for thread in self._threads:
                    thread.start()

    def submit(self, sentences: list[str], search: SearchConfig) -> asyncio.Future:
        """Queue sentences; the future resolves to their n-best lists, in order. Call from the event loop.

        Raises `QueueFull` when the queue holds too many sentences already (a request larger than the
        whole queue is still taken when the queue is empty, so it can never be refused forever).
        """
        loop = asyncio.get_running_loop()
        job = _Job(list(sentences), search, loop.create_future(), loop, estimated_cost(sentences, search.beam_size))
        with self._condition:
            if self._closing:
                raise QueueClosed(f"the {self.name} queue is shutting down")
            if self._pending and self._pending + len(job.sentences) > self.queue_size:
                raise QueueFull(f"{self._pending} sentences are already waiting for {self.name}")
            self._jobs.append(job)
            self._pending += len(job.sentences)
            self._condition.notify()
        job.future.add_done_callback(lambda future: self._forget(job) if future.cancelled() else None)
        return job.future

    def close(self, timeout: float | None = None) -> None:
        """Stop taking work, translate what is queued, and stop the workers (waiting up to `timeout` each)."""
        with self._condition:
            self._closing = True
            self._condition.notify_all()
        for thread in self._threads:
            thread.join(timeout)

    # -- worker thread -----------------------------------------------------------------------------

    def _forget(self, job: _Job) -> None:
        with self._condition:
            try:
                self._jobs.remove(job)
            except ValueError:
                return  # already taken by the worker; its result will be dropped
            self._pending -= len(job.sentences)

    def _work(self) -> None:
        while True:
            batch = self._collect()
            if batch is None:
                return
            batch = [job for job in batch if not job.future.cancelled()]
            if batch:
                self._translate(batch)

    def _collect(self) -> list[_Job] | None:
        """Wait for work, then take the oldest job and the compatible jobs that fit with it."""
        with self._condition:
            while not self._jobs:
                if self._closing:
                    return None
                self._condition.wait()
            deadline = self._jobs[0].arrived + self.max_wait
            while not self._closing and sum(job.cost for job in self._jobs) < self.max_batch_tokens:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._condition.wait(remaining)
            if not self._jobs:  # every waiting job was cancelled meanwhile
                return []
            first = self._jobs.popleft()
            batch, cost, kept = [first], first.cost, deque()
            while self._jobs:
                job = self._jobs.popleft()
                if job.search == first.search and cost + job.cost <= self.max_batch_tokens:
                    batch.append(job)
                    cost += job.cost
                else:
                    kept.append(job)
            self._jobs = kept
            self._pending -= sum(len(job.sentences) for job in batch)
            return batch

    def _translate(self, batch: list[_Job]) -> None:
        sentences = [s for job in batch for s in job.sentences]
        started = time.perf_counter()
        try:
            results = self.translator.translate(sentences, batch[0].search, self.max_batch_tokens)
        except Exception as error:  # the requests fail, the worker lives on
            log.exception("translation failed for a batch of %d sentences", len(sentences))
            for job in batch:
                _resolve(job, error=error)
            return
        seconds = time.perf_counter() - started
        start = 0
        for job in batch:
            _resolve(job, results[start : start + len(job.sentences)])
            start += len(job.sentences)
        if self.on_batch is not None:
            report = BatchReport(
                requests=len(batch),
                sentences=len(sentences),
                source_tokens=sum(len(nbest[0].source_tokens) for nbest in results if nbest),
                target_tokens=sum(len(nbest[0].target_tokens) for nbest in results if nbest),
                seconds=seconds,
            )
            try:
                self.on_batch(report)
            except Exception:
                log.exception("batch observer failed")


def _resolve(job: _Job, result: list[list[Translation]] | None = None, error: Exception | None = None) -> None:
    def settle() -> None:
        if job.future.done():  # cancelled while it was being translated
            return
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(result)

    try:
        job.loop.call_soon_threadsafe(settle)
    except RuntimeError:  # the event loop is closed: nobody is waiting any more
        pass
