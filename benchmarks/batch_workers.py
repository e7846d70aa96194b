"""Small batches side by side: N threads of one process against N processes, as the service's workers decode.

    python benchmarks/batch_workers.py --model models/general-es-en --source ../shared/evalsets/flores101/devtest.es

The service's batching workers translate batches of about ten sentences, each on one core (service/queue.py).
In one process they share the GIL; in separate processes they would not. This prints sentences/s for one
thread, N threads and N processes over the same batches, each with one torch thread, so the gain a
process-based worker could bring is measured, not guessed.
"""

from __future__ import annotations

import argparse
import multiprocessing
import threading
import time
from pathlib import Path


def load(model: Path):
    import torch

    from carousel.model.loading import load_translator
    from carousel.model.search import SearchConfig

    torch.set_num_threads(1)
    search = SearchConfig()
    return load_translator(model, "int8", search), search


def batches_of(source: Path, lines: int, size: int) -> list[list[str]]:
    texts = [line for line in source.read_text(encoding="utf-8").splitlines() if line.strip()][:lines]
    return [texts[i:i + size] for i in range(0, len(texts), size)]


def translate_all(translator, search, batches: list[list[str]]) -> None:
    for batch in batches:
        translator.translate(batch, search)


def in_threads(translator, search, batches: list[list[str]], count: int) -> float:
    """Seconds for `count` threads to translate every batch (batch i on thread i mod count)."""
    threads = [threading.Thread(target=translate_all, args=(translator, search, batches[k::count])) for k in range(count)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def _process(model: Path, batches: list[list[str]], ready, go, results) -> None:
    translator, search = load(model)
    translate_all(translator, search, batches[:2])  # warm-up
    ready.put(True)
    go.wait()
    started = time.perf_counter()
    translate_all(translator, search, batches)
    results.put(time.perf_counter() - started)


def in_processes(model: Path, batches: list[list[str]], count: int) -> float:
    """Seconds for `count` processes, each with its own model, to translate every batch (the slowest one's)."""
    context = multiprocessing.get_context("spawn")
    ready, results, go = context.Queue(), context.Queue(), context.Event()
    processes = [context.Process(target=_process, args=(model, batches[k::count], ready, go, results)) for k in range(count)]
    for process in processes:
        process.start()
    for _ in processes:
        ready.get()
    go.set()
    seconds = max(results.get() for _ in processes)
    for process in processes:
        process.join()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/general-es-en"))
    parser.add_argument("--source", type=Path, default=Path("../shared/evalsets/flores101/devtest.es"))
    parser.add_argument("--lines", type=int, default=400)
    parser.add_argument("--batch", type=int, default=10, help="sentences per batch (the service's are about 10)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    batches = batches_of(args.source, args.lines, args.batch)
    sentences = sum(map(len, batches))
    translator, search = load(args.model)
    translate_all(translator, search, batches[:2])  # warm-up
    print(f"{sentences} sentences in batches of {args.batch}, one torch thread per worker")
    for round_ in range(1, args.rounds + 1):
        one = in_threads(translator, search, batches, 1)
        threads = in_threads(translator, search, batches, args.workers)
        processes = in_processes(args.model, batches, args.workers)
        print(f"round {round_}: 1 thread {sentences / one:.1f}, {args.workers} threads {sentences / threads:.1f}, "
              f"{args.workers} processes {sentences / processes:.1f} sentences/s", flush=True)


if __name__ == "__main__":
    main()
