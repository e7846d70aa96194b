"""Soak test on loopback: mixed traffic for a fixed time, then checks that nothing failed, leaked or kept working.

    python benchmarks/soak.py                                     # models/ (bible-es-en), 64 clients, 60 s
    python benchmarks/soak.py --duration 1800 --clients 128 --json soak.json
    python benchmarks/soak.py --url http://127.0.0.1:5000 --pid 1234     # a running server

Unless --url is given, the script starts `carousel serve` on a free port (benchmarks/serve.py's
`Server`): the server is its own process, the load comes from this one. Each client sends one request
at a time, es→en at the server's default beam: a word, a phrase, a verse or a paragraph of several
verses (the test split's source column). A fraction of the clients (--leave-fraction) abandon every
request: they send it, wait a moment, and close the connection before the answer.

Reported, and checked (exit status 1 when a check fails):
- requests sent and answers by status; errors are any answer but 200, 429 and 503 (the contract's
  "busy" answers) and any transport error: there must be none;
- latency percentiles of the 200 answers;
- server RSS (/proc/<pid>/status VmRSS) every second, and its growth from the mean of the first ten
  seconds to the mean of the last ten (at most --max-rss-growth %);
- afterwards, that the server has no work left: queue depth 0 on /metrics and CPU below 5 % of a core;
- for a server the script started: no traceback in its log, and exit status 0 after SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

import httpx

# benchmarks/serve.py, beside this file: the server process, percentiles, the served language pair
from serve import MAX_CLIENTS, Server, percentile, served_pair, timed_post

BUSY = {"429", "503"}  # the contract's answers for "too much at once": expected under overload
IDLE_CPU = 0.05  # of one core
MAX_DURATION = 24 * 3600.0


# -- what the clients send --------------------------------------------------------------------------


class TextMix:
    """Texts of mixed length from a list of verses: words, phrases, verses and paragraphs."""

    def __init__(self, verses: list[str], rng: random.Random):
        self.verses, self.rng = verses, rng

    def next_text(self) -> str:
        kind = self.rng.choices(["word", "phrase", "verse", "paragraph"], weights=[2, 3, 3, 2])[0]
        verse = self.rng.choice(self.verses)
        words = verse.split()
        if kind == "word":
            return self.rng.choice(words).strip(".,;:¿?¡!")
        if kind == "phrase":
            start = self.rng.randrange(len(words))
            return " ".join(words[start : start + self.rng.randint(2, 8)])
        if kind == "verse":
            return verse
        separator = self.rng.choice([" ", "\n", "\n\n"])  # running text, lines or paragraphs
        return separator.join(self.rng.choices(self.verses, k=self.rng.randint(3, 8)))


@dataclass
class LoadResult:
    seconds: float = 0.0
    sent: int = 0
    abandoned: int = 0  # requests whose client closed the connection before the answer
    statuses: Counter = field(default_factory=Counter)  # "200", "503", "ReadTimeout", ...
    latencies: list[float] = field(default_factory=list)  # of 200 answers, seconds

    @property
    def errors(self) -> dict[str, int]:
        return {status: n for status, n in sorted(self.statuses.items()) if status != "200" and status not in BUSY}


# -- the load -------------------------------------------------------------------------------------


async def staying_client(client: httpx.AsyncClient, mix: TextMix, pair, stop_at: float, result: LoadResult) -> None:
    """Sends a request, waits for its answer, and again, until `stop_at`."""
    while time.perf_counter() < stop_at:
        body = {"q": mix.next_text(), "source": pair[0], "target": pair[1]}
        result.sent += 1
        if await timed_post(client, body, result) in BUSY:
            await asyncio.sleep(0.1)  # a polite client backs off a little


async def leaving_client(url: str, mix: TextMix, pair, stop_at: float, result: LoadResult, rng: random.Random) -> None:
    """Sends a request on a fresh connection and closes it before the answer, until `stop_at`."""
    address = urlsplit(url)
    while time.perf_counter() < stop_at:
        body = json.dumps({"q": mix.next_text(), "source": pair[0], "target": pair[1]}).encode()
        head = (
            f"POST /translate HTTP/1.1\r\nHost: {address.netloc}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        result.sent += 1
        try:
            _, writer = await asyncio.open_connection(address.hostname, address.port)
            writer.write(head + body)
            await writer.drain()
            await asyncio.sleep(rng.uniform(0.01, 0.5))  # the server has it queued or is translating it
            writer.close()
            await writer.wait_closed()
            result.abandoned += 1
        except OSError as error:
            result.statuses[type(error).__name__] += 1


async def run_load(url: str, mix: TextMix, pair, clients: int, leaving: int, seconds: float, rng) -> LoadResult:
    result = LoadResult()
    stop_at = time.perf_counter() + seconds
    staying = clients - leaving
    limits = httpx.Limits(max_connections=staying, max_keepalive_connections=staying)
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=300) as client:
        await asyncio.gather(
            *(staying_client(client, mix, pair, stop_at, result) for _ in range(staying)),
            *(leaving_client(url, mix, pair, stop_at, result, rng) for _ in range(leaving)),
        )
    result.seconds = time.perf_counter() - started  # includes the requests still running at stop_at
    return result


# -- watching the server process --------------------------------------------------------------------


def rss_megabytes(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE).group(1)) / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process, all threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


class RssSampler:
    """Samples the server's RSS every second in a thread of its own (the event loop may be busy)."""

    def __init__(self, pid: int):
        self.pid = pid
        self.samples: list[tuple[float, float]] = []  # (seconds since start, MB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        started = time.perf_counter()
        while True:
            self.samples.append((time.perf_counter() - started, rss_megabytes(self.pid)))
            if self._stop.wait(1.0):
                return

    def growth(self, window: float = 10.0) -> dict:
        """Mean RSS of the first and of the last `window` seconds, and the growth between them in %."""
        end = self.samples[-1][0]
        first = statistics.fmean(mb for t, mb in self.samples if t <= window)
        last = statistics.fmean(mb for t, mb in self.samples if t >= end - window)
        return {"first_mb": first, "last_mb": last, "growth_percent": 100 * (last - first) / first,
                "samples": len(self.samples), "windows_overlap": end < 2 * window}


def queue_depth(url: str) -> float:
    metrics = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(float(m.group(1)) for m in re.finditer(r"^carousel_queue_depth\{[^}]*\} (\S+)$", metrics, re.MULTILINE))


def translate_statuses(url: str) -> Counter:
    """The server's own count of /translate answers by status (499: the client had gone)."""
    metrics = httpx.get(f"{url}/metrics", timeout=10).text
    pattern = r'^carousel_http_requests_total\{method="POST",route="/translate",status="(\d+)"\} (\S+)$'
    return Counter({m.group(1): int(float(m.group(2))) for m in re.finditer(pattern, metrics, re.MULTILINE)})


def wait_until_idle(url: str, pid: int | None, timeout: float = 60.0) -> dict:
    """Poll until the queues are empty and the server's CPU is below IDLE_CPU over a second."""
    started = time.perf_counter()
    while True:
        before = cpu_seconds(pid) if pid else 0.0
        time.sleep(1.0)
        cpu = (cpu_seconds(pid) - before) if pid else None
        depth = queue_depth(url)
        idle = depth == 0 and (cpu is None or cpu < IDLE_CPU)
        waited = time.perf_counter() - started
        if idle or waited > timeout:
            return {"idle": idle, "queue_depth": depth, "cpu_core_fraction": cpu, "seconds_waited": waited}


# -- the run and its report ---------------------------------------------------------------------------


def source_texts(args) -> list[str]:
    from carousel.data.corpus import read_split

    column = args.column
    if column is None:
        config = args.models_dir / args.model / "config.json"
        column = json.loads(config.read_text())["src_lang"] if config.is_file() else "es"
    return [row[0] for row in read_split(args.corpus, args.split, [column]) if row[0].strip()]


def soak(args, url: str, pid: int | None) -> dict:
    rng = random.Random(args.seed)
    mix = TextMix(source_texts(args), rng)
    pair = served_pair(url, args.model)
    leaving = min(args.clients - 1, round(args.clients * args.leave_fraction))
    report = {"url": url, "clients": args.clients, "leaving_clients": leaving, "duration": args.duration}
    sampler = RssSampler(pid) if pid else None
    counted_before = translate_statuses(url)
    with sampler or nullcontext():
        load = asyncio.run(run_load(url, mix, pair, args.clients, leaving, args.duration, rng))
    milliseconds = [1000 * s for s in load.latencies]
    report |= {
        "seconds": load.seconds,
        "requests_sent": load.sent,
        "abandoned": load.abandoned,
        "statuses": dict(sorted(load.statuses.items())),
        "errors": load.errors,
        "latency_ms": {f"p{q}": percentile(milliseconds, q) for q in (50, 95, 99)},
        "rss": sampler.growth() if sampler else None,
        "after": wait_until_idle(url, pid),
    }
    report["server_counted"] = dict(sorted((translate_statuses(url) - counted_before).items()))
    return report


def stop_started_server(server: Server, report: dict) -> None:
    """SIGTERM, then the exit status and whether the log holds a traceback (read before Server.stop removes it)."""
    server.process.send_signal(signal.SIGTERM)
    try:
        status = server.process.wait(90)
    except subprocess.TimeoutExpired:
        status = None  # Server.stop kills it
    log = server.log.read_text(errors="replace")
    report["server"] = {"exit_status": status, "traceback_in_log": "Traceback" in log}
    if "Traceback" in log:
        report["server"]["log_tail"] = server.tail(40)
    server.stop()


def checks(report: dict, max_rss_growth: float) -> dict[str, bool]:
    results = {"no errors": not report["errors"], "idle afterwards": report["after"]["idle"]}
    if report["rss"]:
        results[f"RSS growth ≤ {max_rss_growth:g} %"] = report["rss"]["growth_percent"] <= max_rss_growth
    if "server" in report:
        results["exit status 0 after SIGTERM"] = report["server"]["exit_status"] == 0
        results["no traceback in the log"] = not report["server"]["traceback_in_log"]
    return results


def print_report(report: dict) -> None:
    def row(name: str, value) -> None:
        print(f"  {name:<28} {value}")

    print(f"\nsoak: {report['clients']} clients ({report['leaving_clients']} leaving mid-request), "
          f"{report['duration']:g} s against {report['url']}")
    row("requests sent", f"{report['requests_sent']} in {report['seconds']:.1f} s")
    for status, count in report["statuses"].items():
        row(f"  answered {status}", count)
    row("  abandoned by the client", report["abandoned"])
    row("errors (not 200/429/503)", sum(report["errors"].values()))
    row("the server counted", ", ".join(f"{n} × {status}" for status, n in report["server_counted"].items()))
    latency = report["latency_ms"]
    row("latency of 200s (ms)", f"p50 {latency['p50']:.0f}  p95 {latency['p95']:.0f}  p99 {latency['p99']:.0f}")
    if report["rss"]:
        rss = report["rss"]
        overlap = " (windows overlap: run shorter than 20 s)" if rss["windows_overlap"] else ""
        row("server RSS (MB)", f"first 10 s {rss['first_mb']:.1f}, last 10 s {rss['last_mb']:.1f}, "
            f"growth {rss['growth_percent']:+.1f} % over {rss['samples']} samples{overlap}")
    after = report["after"]
    cpu = "" if after["cpu_core_fraction"] is None else f", CPU {100 * after['cpu_core_fraction']:.1f} % of a core"
    row("afterwards", f"queue depth {after['queue_depth']:g}{cpu} (after {after['seconds_waited']:.1f} s)")
    if "server" in report:
        row("server exit status", report["server"]["exit_status"])
        if report["server"].get("log_tail"):
            print(report["server"]["log_tail"])
    print()
    for name, passed in report["checks"].items():
        print(f"  {'ok  ' if passed else 'FAIL'} {name}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (default: 60)")
    parser.add_argument("--clients", type=int, default=64, help="concurrent clients (default: 64)")
    parser.add_argument("--leave-fraction", type=float, default=0.1, help="clients that abandon their requests")
    parser.add_argument("--url", help="load this running server instead of starting one")
    parser.add_argument("--pid", type=int, help="with --url: the server's process id, for RSS and CPU")
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--model", default="bible-es-en", help="model directory name under --models-dir")
    parser.add_argument("--beam", type=int, default=None, help="default beam of the server started here (default: each model's own)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads of the server (default: torch's)")
    parser.add_argument("--corpus", type=Path, default=Path("data/corpora/bible"))
    parser.add_argument("--split", default="test")
    parser.add_argument("--column", help="corpus column to send (default: the model's source language)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-rss-growth", type=float, default=10.0, help="percent (default: 10)")
    parser.add_argument("--json", type=Path, help="also write the report as JSON to this file ('-': stdout)")
    args = parser.parse_args()
    if not 1 <= args.clients <= MAX_CLIENTS or not 0 < args.duration <= MAX_DURATION:
        parser.error(f"--clients must be 1..{MAX_CLIENTS}, --duration 0..{MAX_DURATION:.0f} s")
    if not 0 <= args.leave_fraction < 1:
        parser.error("--leave-fraction must be in [0, 1)")

    server = None if args.url else Server(args.models_dir, args.beam, [], args.threads)
    try:
        url = args.url or server.url
        report = soak(args, url, args.pid if args.url else server.process.pid)
        if server is not None:
            stop_started_server(server, report)
    finally:
        if server is not None:
            server.stop()
    report["checks"] = checks(report, args.max_rss_growth)
    print_report(report)
    if args.json:
        text = json.dumps(report, indent=2, ensure_ascii=False)
        if str(args.json) == "-":
            print(text)
        else:
            args.json.write_text(text + "\n")
    return 0 if all(report["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
