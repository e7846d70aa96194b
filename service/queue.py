"""Cross-request dynamic batching: many small requests become one `translate` call.

Each model has one `BatchingQueue`. A request puts its sentences on the queue with `submit` and awaits
the asyncio future it gets back. Worker threads (off the event loop, so the server keeps answering)
form batches and hand each request its results through `loop.call_soon_threadsafe`.

A request's sentences enter batches in slices of at most `slice_sentences` sentences. A batch takes one
slice from each waiting request in turn (round-robin; a new request goes ahead of those that have had a
turn, and a request that contributed goes to the back), among the requests that share the search
settings (beam, n-best, alignment) of the first, each slice cut to the cost left in the batch (up to
`max_batch_tokens`; the batch's first slice takes at least one sentence). A batch that takes a
request's first slice is short: there each slice takes at most a quarter of `max_batch_tokens` (or
one sentence), and the requests that have had a turn a quarter together. A batch of requests that
have had a turn is short too (a quarter) while every other worker is in a long one, so that a worker
is soon free for a new request. So:

- a large request never holds a worker for longer than one small batch, and cannot starve the others:
  a small request that arrives behind it joins the very next batch, which is short;
- a request whose future is cancelled (timed out, client gone) leaves the queue at once: its slices not
  yet taken are dropped, so its work stops within one batch.

The first waiting request waits at most `max_wait_ms` from its arrival for others to join. With several
workers (`workers`), one batch is collected while others translate: on a small CPU, two single-threaded
searches side by side keep both cores busier than one search over two threads (benchmarks/serve.py).

Cost is what `submit` is given for each sentence (the service gives source tokens × beam, × 2 with a
confidence: service/costs.py), else estimated before tokenisation as (characters / 4 + 2) × beam: about
one subword per four characters plus EOS, times the rows the beam search carries. That is the unit of
`translate`'s `batch_tokens` as well, which the merged call receives, so one merged batch is about one
network batch. Slicing by cost as well as by count keeps a request of long sentences (a "word" of
thousands of letters cut into pieces) from putting more into one batch than any other request can.
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
    costs: list[int]  # per sentence
    glossary: object | None = None  # a Glossary enforced on this job's sentences after the batch's search
    arrived: float = field(default_factory=time.monotonic)
    taken: int = 0  # sentences handed to workers so far (slices are taken in order)
    finished: int = 0  # sentences translated
    results: list = field(default_factory=list)
    dropped: bool = False  # cancelled or failed: nothing more of it is translated

    @property
    def waiting(self) -> int:
        return len(self.sentences) - self.taken


@dataclass(eq=False)
class _Slice:
    job: _Job
    start: int
    end: int


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
        slice_sentences: int = 32,
        translate: Callable | None = None,
    ):
        self.translator = translator
        # what a worker calls with a batch: the translator's own `translate`, or a stand-in with its
        # signature that runs it elsewhere (service/worker_processes.py)
        self._translate_batch = translate or translator.translate
        self.max_batch_tokens = max_batch_tokens
        self.max_wait = max_wait_ms / 1000.0
        self.queue_size = queue_size
        self.on_batch = on_batch
        self.name = name
        self.slice_sentences = max(1, slice_sentences)
        self._jobs: deque[_Job] = deque()  # jobs with sentences not yet taken, in round-robin order
        self._pending = 0  # sentences waiting (not yet taken by a worker)
        self._condition = threading.Condition()
        self._closing = False
        self.workers = workers
        self._long_batches = 0  # batches in flight of jobs that have had a turn, at full budget
        self._threads: list[threading.Thread] = []

    @property
    def depth(self) -> int:
        """Sentences waiting to be translated."""
        return self._pending

    @property
    def stopped(self) -> bool:
        """No worker thread is running (never started, or closed and finished)."""
        return not any(thread.is_alive() for thread in self._threads)

    def start(self) -> None:
        with self._condition:
            if not self._threads:
                self._threads = [
                    threading.Thread(target=self._work, name=f"batching-{self.name}-{i}", daemon=True)
                    for i in range(self.workers)
                ]
                for thread in self._threads:
                    thread.start()

    def submit(self, sentences: list[str], search: SearchConfig, costs: list[int] | None = None,
               glossary=None) -> asyncio.Future:
        """Queue sentences (with each one's cost; estimated when not given); the future resolves to their
        n-best lists, in order. Call from the event loop. A `glossary` (model/glossary.py) is applied to
        these sentences only: jobs with different glossaries, or none, still share batches.

        Raises `QueueFull` when the queue holds too many sentences already (a request larger than the
        whole queue is still taken when the queue is empty, so it can never be refused forever).
        Cancelling the future drops the sentences not yet translated.
        """
        loop = asyncio.get_running_loop()
        if costs is None:
            costs = [estimated_cost([sentence], search.beam) for sentence in sentences]
        job = _Job(list(sentences), search, loop.create_future(), loop, list(costs), glossary)
        job.results = [None] * len(job.sentences)
        with self._condition:
            if self._closing:
                raise QueueClosed(f"the {self.name} queue is shutting down")
            if self._pending and self._pending + len(job.sentences) > self.queue_size:
                raise QueueFull(f"{self._pending} sentences are already waiting for {self.name}")
            if not job.sentences:
                job.future.set_result([])
                return job.future
            # Ahead of the jobs that have had a turn already: a request's first slice never waits a round.
            turn = next((i for i, waiting in enumerate(self._jobs) if waiting.taken), len(self._jobs))
            self._jobs.insert(turn, job)
            self._pending += len(job.sentences)
            self._condition.notify()
        job.future.add_done_callback(lambda future: self._drop(job) if future.cancelled() else None)
        return job.future

    def close(self, timeout: float | None = None) -> bool:
        """Stop taking work, translate what is queued, and stop the workers (waiting up to `timeout` in all).

        Returns whether every worker has stopped."""
        with self._condition:
            self._closing = True
            self._condition.notify_all()
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return self.stopped

    def cancel_waiting(self) -> int:
        """Drop every sentence not yet taken (shutdown after the grace period); their requests get QueueClosed."""
        with self._condition:
            jobs, self._jobs = list(self._jobs), deque()
            for job in jobs:
                self._pending -= job.waiting
                job.dropped = True
        for job in jobs:
            _settle(job, error=QueueClosed(f"the {self.name} queue shut down before translating this request"))
        return len(jobs)

    # -- worker thread -----------------------------------------------------------------------------

    def _drop(self, job: _Job) -> None:
        """The job's request no longer waits (cancelled) or failed: forget its untaken sentences."""
        with self._condition:
            if job.dropped:
                return
            job.dropped = True
            try:
                self._jobs.remove(job)
            except ValueError:
                return  # every slice already taken; the results of those in flight will be dropped
            self._pending -= job.waiting

    def _work(self) -> None:
        while True:
            collected = self._collect()
            if collected is None:
                return
            batch, long = collected
            # `cancelled()` as well as `dropped`: the drop runs as a loop callback, a moment after the
            # cancellation itself, and a worker must not start work in that moment.
            batch = [piece for piece in batch if not piece.job.dropped and not piece.job.future.cancelled()]
            try:
                if batch:
                    self._translate(batch)
            finally:
                if long:
                    with self._condition:
                        self._long_batches -= 1

    def _next_slice(self, job: _Job, room: int, first: bool = True) -> tuple[int, int]:
        """(end, cost) of the job's next slice: up to slice_sentences sentences costing up to `room`; the
        first slice of a batch takes one sentence whatever it costs."""
        end, cost = job.taken, 0
        while end < len(job.sentences) and end - job.taken < self.slice_sentences:
            if (end > job.taken or not first) and cost + job.costs[end] > room:
                break
            cost += job.costs[end]
            end += 1
        return end, cost

    def _collect(self) -> tuple[list[_Slice], bool] | None:
        """Wait for work, then take one slice from each compatible job in turn, up to max_batch_tokens;
        returns (the slices, whether the batch is a long one: only jobs that have had a turn, at full budget)."""
        with self._condition:
            while not self._jobs:
                if self._closing:
                    return None
                self._condition.wait()
            deadline = self._jobs[0].arrived + self.max_wait
            while not self._closing and self._jobs:
                search = self._jobs[0].search
                ready = sum(self._next_slice(job, self.max_batch_tokens)[1] for job in self._jobs if job.search == search)
                remaining = deadline - time.monotonic()
                if ready >= self.max_batch_tokens or remaining <= 0:
                    break
                self._condition.wait(remaining)
            if not self._jobs:  # every waiting job was cancelled meanwhile
                return [], False
            search = self._jobs[0].search
            batch: list[_Slice] = []
            cost = old_cost = 0
            # A batch that starts a request (new jobs come first: see submit) stays short: a slice of a
            # quarter of the budget (or one sentence), and a quarter for the jobs that have had a turn.
            # So does a batch of such jobs while the other workers are all in long ones: one worker is
            # soon free for a new request.
            quarter = self.max_batch_tokens // 4
            starting = not self._jobs[0].taken
            long = not starting and self._long_batches < self.workers - 1 or self.workers == 1
            budget = self.max_batch_tokens if starting or long else quarter
            served: list[_Job] = []
            for job in list(self._jobs):
                if job.search != search or job.future.cancelled():
                    continue
                starting = starting or not job.taken
                room = budget - cost
                if starting:
                    room = min(room, quarter - old_cost) if job.taken else min(room, max(quarter, job.costs[job.taken]))
                end, slice_cost = self._next_slice(job, room, first=not batch)
                if end == job.taken:
                    continue  # no room left for this one; a smaller slice of another job may still fit
                old_cost += slice_cost if job.taken else 0
                batch.append(_Slice(job, job.taken, end))
                cost += slice_cost
                self._pending -= end - job.taken
                job.taken = end
                served.append(job)
            for job in served:  # round-robin: who was served goes to the back (or leaves, when done)
                self._jobs.remove(job)
                if job.waiting:
                    self._jobs.append(job)
            long = long and not starting
            self._long_batches += long
            if self._jobs:
                self._condition.notify()  # work is left: a worker that sleeps may take it
            return sorted(batch, key=lambda piece: piece.job.arrived), long

    def _translate(self, batch: list[_Slice]) -> None:
        sentences = [s for piece in batch for s in piece.job.sentences[piece.start : piece.end]]
        started = time.perf_counter()
        try:
            glossaries = [piece.job.glossary for piece in batch for _ in range(piece.start, piece.end)]
            if any(glossary is not None for glossary in glossaries):
                results = self._translate_batch(sentences, batch[0].job.search, self.max_batch_tokens, glossaries)
            else:
                results = self._translate_batch(sentences, batch[0].job.search, self.max_batch_tokens)
        except Exception as error:  # the requests fail, the worker lives on
            log.exception("translation failed for a batch of %d sentences", len(sentences))
            for job in {piece.job: None for piece in batch}:
                self._drop(job)
                _settle(job, error=error)
            return
        seconds = time.perf_counter() - started
        start = 0
        complete = []
        with self._condition:
            for piece in batch:
                count = piece.end - piece.start
                piece.job.results[piece.start : piece.end] = results[start : start + count]
                piece.job.finished += count
                start += count
                if piece.job.finished == len(piece.job.sentences) and not piece.job.dropped:
                    complete.append(piece.job)
        for job in complete:
            _settle(job, job.results)
        if self.on_batch is not None:
            report = BatchReport(
                requests=len({id(piece.job) for piece in batch}),
                sentences=len(sentences),
                source_tokens=sum(len(nbest[0].source_tokens) for nbest in results if nbest),
                target_tokens=sum(len(nbest[0].target_tokens) for nbest in results if nbest),
                seconds=seconds,
            )
            try:
                self.on_batch(report)
            except Exception:
                log.exception("batch observer failed")


def _settle(job: _Job, result: list[list[Translation]] | None = None, error: Exception | None = None) -> None:
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
