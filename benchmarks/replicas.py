"""Throughput through haproxy with one replica and with two: what scaling out buys on this machine.

    python benchmarks/replicas.py                       # models/bible-es-en, 16 clients, 20 s each
    python benchmarks/replicas.py --clients 32 --duration 60 --model general-es-en

For each count (1, then 2) the script starts that many `carousel serve` replicas on free loopback ports
(each with the server's defaults: two batching workers sharing the machine's torch threads) and haproxy
in front of them (the configuration the replica tests use, tests/servers.py), then N clients each send
one Bible test verse at a time through haproxy for `--duration` seconds after a warm-up. It prints
requests/s, verses/s, p50/p95 latency and errors for each, and the ratio two / one.

Replicas on one machine share its cores: on 2 cores the ratio stays near 1 (both replicas decode on the
same two cores); on separate machines, or a machine with cores to spare, it is what scaling out gives.
The clients and haproxy run here too and take some CPU: measure on an idle machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from serve import Server, load, percentile

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests/servers.py: haproxy as the tests run it

from tests.servers import haproxy  # noqa: E402


def measure(models_dir: Path, replicas: int, sentences: list[str], args) -> float:
    """Start `replicas` servers behind haproxy, load them, print the figures; returns verses/s."""
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="carousel-replicas-") as directory:
        servers = []
        for _ in range(replicas):
            server = Server(models_dir, args.beam, ["--quantize", args.quantize], threads=0)
            stack.callback(server.stop)
            servers.append(server)
        balancer = stack.enter_context(haproxy([f"127.0.0.1:{s.port}" for s in servers], Path(directory)))
        pair = tuple(args.model.split("-")[-2:])
        asyncio.run(load(balancer, sentences, pair, clients=args.clients, seconds=args.warmup, beam=args.beam,
                         client=args.client))
        result = asyncio.run(load(balancer, sentences, pair, clients=args.clients, seconds=args.duration,
                                  beam=args.beam, client=args.client))
    milliseconds = [1000 * s for s in result.latencies]
    rate = result.sentences / result.seconds
    errors = {status: count for status, count in sorted(result.statuses.items()) if status != "200"}
    print(f"{replicas} replica{'s' if replicas > 1 else ''}: {result.successes / result.seconds:.1f} requests/s, "
          f"{rate:.1f} verses/s, p50 {percentile(milliseconds, 50):.0f} ms, p95 {percentile(milliseconds, 95):.0f} ms, "
          f"errors: {errors or 'none'}", flush=True)
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="bible-es-en", help="a model directory of models/ (default: bible-es-en)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds measured for each count")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--beam", type=int, default=None, help="beam of every request (default: the model's own)")
    parser.add_argument("--quantize", default="int8")
    parser.add_argument("--client", choices=("lean", "httpx"), default="lean",
                        help="load generator, as in benchmarks/serve.py (the README's figures were measured with httpx)")
    args = parser.parse_args()

    from carousel.data.corpus import read_split

    sentences = [row[0] for row in read_split(ROOT / "data" / "corpora" / "bible", "test", ["es"]) if row[0].strip()]
    with tempfile.TemporaryDirectory(prefix="carousel-models-") as models_dir:
        os.symlink(ROOT / "models" / args.model, Path(models_dir) / args.model)  # one model: quick to load
        print(f"{args.model}, {args.clients} clients, {args.duration:.0f} s each, beam {args.beam or 'of the model'}, "
              f"{args.quantize}, {os.cpu_count()} cores; haproxy {shutil.which('haproxy')}", flush=True)
        one = measure(Path(models_dir), 1, sentences, args)
        two = measure(Path(models_dir), 2, sentences, args)
    print(f"two replicas / one = {two / one:.2f}")


if __name__ == "__main__":
    main()
