"""Service load on loopback: throughput and latency with cross-request batching on and off, against offline.

    python benchmarks/serve.py                                  # models/bible-es-en, 32 clients, 30 s, the model's beam
    python benchmarks/serve.py --clients 8 --duration 10 --configs on
    python benchmarks/serve.py --single                         # one client, one 25-word sentence: latency
    python benchmarks/serve.py --url http://127.0.0.1:5000      # a running server, as it is configured

N clients each send one request at a time (one test-split sentence per request, `--per-request` for
more), round-robin over the sentences, for a fixed duration after a short warm-up; the run stops by
itself (`--max-requests` bounds it too). For each configuration the script starts its own
`carousel serve` on a free port with the models directory:

- on:  the server's batching defaults (requests wait up to max_wait_ms for others; merged up to
       max_batch_tokens, see service/queue.py);
- off: `--max-wait-ms 0 --max-batch-tokens 1`: no waiting, and a cost limit below any one request's,
       so every request is its own `translate` call and every sentence its own network batch.
- on2: batching on, with two batching workers of one torch thread each (`--batch-workers 2`).

It prints requests/s, sentences/s, p50/p95/p99 latency, errors by status, the mean batch the server
formed (from /metrics), and "service / offline": sentences/s against `Translator.translate_texts` on the
same sentences in one call in this process (same beam, same threads). The client runs in this process too,
so on a machine with few cores it takes CPU from the server: measure on an idle machine. Each client
holds one keep-alive HTTP/1.1 connection of its own (`KeepAliveConnection`, a few dozen lines), which
spends far less CPU per request than httpx (`--client httpx`, about 2 ms per request here, a tenth of 2
cores at 100 requests/s); the CPU the load generator spent per request is printed with the results.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from carousel.model.precision import DEFAULT_QUANTIZATION, QUANTIZE_MODES  # torch-free, like `carousel --help`

CONFIGS = {
    "on": [],
    "off": ["--max-wait-ms", "0", "--max-batch-tokens", "1"],
    "on2": ["--batch-workers", "2"],
}
MAX_CLIENTS, MAX_DURATION = 1024, 600.0


@dataclass
class LoadResult:
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # successful requests, seconds
    sentences: int = 0  # in successful requests
    statuses: Counter = field(default_factory=Counter)  # "200", "503", "ConnectTimeout", ...

    @property
    def successes(self) -> int:
        return len(self.latencies)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


async def load(
    url: str, sentences: list[str], pair: tuple[str, str], *, clients: int, seconds: float, beam: int | None,
    per_request: int = 1, max_requests: int = 0, start: int = 0, client: str = "lean",
) -> LoadResult:
    """`clients` concurrent clients, each sending one request at a time until `seconds` pass, each on a
    keep-alive connection of its own (`client`: "lean", `KeepAliveConnection`, or "httpx")."""
    result = LoadResult()
    issued = 0
    stop_at = time.perf_counter() + seconds

    async def client_loop(post) -> None:
        nonlocal issued
        while time.perf_counter() < stop_at and not (max_requests and issued >= max_requests):
            first = (start + issued) * per_request
            issued += 1
            q = [sentences[(first + k) % len(sentences)] for k in range(per_request)]
            body = {"q": q[0] if per_request == 1 else q, "source": pair[0], "target": pair[1]}
            if beam is not None:  # else the server's default: the model's own
                body["beam_size"] = beam
            if await timed(post, body, result) == "200":
                result.sentences += per_request

    started = time.perf_counter()
    if client == "httpx":
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as session:
            await asyncio.gather(*(client_loop(functools.partial(httpx_post, session)) for _ in range(clients)))
    else:
        connections = [KeepAliveConnection(url) for _ in range(clients)]
        try:
            await asyncio.gather(*(client_loop(connection.post) for connection in connections))
        finally:
            for connection in connections:
                connection.close()
    result.seconds = time.perf_counter() - started  # includes the requests still running at stop_at
    return result


async def timed(post, body: dict, result: LoadResult) -> str:
    """`await post(body)`; count its status in `result` and, for a 200, the latency. Returns the status."""
    sent = time.perf_counter()
    status = await post(body)
    result.statuses[status] += 1
    if status == "200":
        result.latencies.append(time.perf_counter() - sent)
    return status


async def httpx_post(session: httpx.AsyncClient, body: dict) -> str:
    """POST /translate with httpx: the status, or the transport error's name."""
    try:
        return str((await session.post("/translate", json=body)).status_code)
    except httpx.HTTPError as error:
        return type(error).__name__


async def timed_post(session: httpx.AsyncClient, body: dict, result: LoadResult) -> str:
    """POST /translate with httpx, counted in `result` as `timed` counts it (benchmarks/soak.py's client)."""
    return await timed(functools.partial(httpx_post, session), body, result)


class ConnectionClosed(EOFError):
    """The server closed the connection inside an answer."""


class ClosedBeforeAnswer(ConnectionClosed):
    """The server closed the connection before answering: on a kept-alive one, a close while it was idle."""


class KeepAliveConnection:
    """One HTTP/1.1 keep-alive connection that POSTs JSON to the service's /translate and reads the answer.

    The load generator shares this machine's cores with the server, so what it spends per request is taken
    from the server being measured: httpx spends about 2 ms of CPU per request (a tenth of 2 cores at 100
    requests/s), this about 0.2 ms. Like httpx, it sends again once, on a new connection, when a kept-alive
    one turns out closed before any answer (servers and proxies close idle ones), and opens a new one
    after a failure, which counts as its exception's name."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        if parts.scheme != "http":
            raise ValueError(f"the lean client speaks plain HTTP only; measure {url} with --client httpx")
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.path = parts.path.rstrip("/") + "/translate"  # under the server's url_prefix, if any
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, body: dict) -> str:
        """The answer's status, or the name of what went wrong."""
        data = json.dumps(body).encode()
        request = (f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
                   f"Content-Length: {len(data)}\r\n\r\n").encode() + data
        reused = self.writer is not None
        status = await self._send(request)
        if reused and status == ClosedBeforeAnswer.__name__:
            status = await self._send(request)
        return status

    async def _send(self, request: bytes) -> str:
        try:
            return await asyncio.wait_for(self._exchange(request), 120)
        except (OSError, EOFError, ValueError, asyncio.TimeoutError) as error:
            self.close()
            return type(error).__name__

    async def _exchange(self, request: bytes) -> str:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(request)
        status_line = await self.reader.readline()
        if not status_line:
            raise ClosedBeforeAnswer()
        version, status = _parse_status_line(status_line)
        headers = await self._read_headers()
        keep_alive = headers.get("connection", "").lower() != "close" and (
            version != "HTTP/1.0" or headers.get("connection", "").lower() == "keep-alive")
        if headers.get("transfer-encoding", "").lower() == "chunked":
            await self._read_chunks()
        elif "content-length" in headers:
            await self.reader.readexactly(int(headers["content-length"]))
        else:  # the body runs to the end of the connection
            await self.reader.read()
            keep_alive = False
        if not keep_alive:
            self.close()
        return status

    async def _read_line(self) -> bytes:
        line = await self.reader.readline()
        if not line.endswith(b"\n"):
            raise ConnectionClosed("inside an answer")
        return line

    async def _read_headers(self) -> dict[str, str]:
        headers = {}
        while (line := await self._read_line()) != b"\r\n":
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        return headers

    async def _read_chunks(self) -> None:
        while (size := int((await self._read_line()).split(b";")[0], 16)) > 0:
            await self.reader.readexactly(size + 2)  # the chunk and its CRLF
        while await self._read_line() != b"\r\n":  # trailer fields, if any, then the final CRLF
            pass

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def _parse_status_line(line: bytes) -> tuple[str, str]:
    """A status line such as "HTTP/1.1 200 OK" -> ("HTTP/1.1", "200"); anything else is a ValueError."""
    found = re.fullmatch(rb"(HTTP/1\.[01]) (\d{3})(?: [^\r\n]*)?\r?\n", line)
    if found is None:
        raise ValueError(f"not an HTTP/1.x status line: {line[:60]!r}")
    return found.group(1).decode("ascii"), found.group(2).decode("ascii")


def batch_means(url: str) -> dict[str, float]:
    """Sums and counts of the server's batch histograms (all models together)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    totals: Counter = Counter()
    for name in ("carousel_batch_sentences_sum", "carousel_batch_sentences_count", "carousel_batch_requests_sum"):
        for match in re.finditer(rf"^{name}\{{[^}}]*\}} (\S+)$", text, re.MULTILINE):
            totals[name] += float(match.group(1))
    return totals


def describe_batches(before: dict[str, float], after: dict[str, float]) -> str:
    batches = after["carousel_batch_sentences_count"] - before["carousel_batch_sentences_count"]
    if not batches:
        return "no batches"
    sentences = after["carousel_batch_sentences_sum"] - before["carousel_batch_sentences_sum"]
    requests = after["carousel_batch_requests_sum"] - before["carousel_batch_requests_sum"]
    return f"{batches:.0f} batches of {sentences / batches:.1f} sentences from {requests / batches:.1f} requests"


# -- the server ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`carousel serve` on a free loopback port, stopped with SIGTERM (killed if it does not stop)."""

    def __init__(self, models_dir: Path, beam: int | None, extra: list[str], threads: int, ready_timeout: float = 300):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        descriptor, name = tempfile.mkstemp(prefix="carousel-serve-", suffix=".log")
        self.log = Path(name)
        env = dict(os.environ)
        if threads:
            env["OMP_NUM_THREADS"] = str(threads)
        command = [sys.executable, "-m", "carousel", "serve", "--models-dir", str(models_dir), "--host", "127.0.0.1",
                   "--port", str(self.port), *(["--beam", str(beam)] if beam else []), "--log-level", "warning", *extra]
        with os.fdopen(descriptor, "w") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            self._wait_ready(ready_timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"carousel serve exited with status {self.process.returncode}:\n{self.tail()}")
            try:
                answer = httpx.get(f"{self.url}/ready", timeout=5)
                if answer.status_code == 200:
                    return
                if answer.status_code == 503 and "retry-after" not in answer.headers:
                    raise RuntimeError(f"the server cannot serve: {answer.json()}")
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"the server was not ready after {timeout:.0f} s:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.unlink(missing_ok=True)


# -- measurements ----------------------------------------------------------------------------------


def offline_rate(model_dir: Path, sentences: list[str], beam: int | None, threads: int, quantize: str) -> float:
    """Sentences/s of one `Translator.translate_texts` call on all the sentences, in this process."""
    import torch

    from carousel.model.search import SearchConfig
    from carousel.model.loading import load_translator

    if threads:
        torch.set_num_threads(threads)
    translator = load_translator(model_dir, quantize)
    search = SearchConfig(beam_size=beam)
    translator.translate_texts(sentences[:8], search)  # warm-up
    started = time.perf_counter()
    translator.translate_texts(sentences, search)
    return len(sentences) / (time.perf_counter() - started)


def served_pair(url: str, model: str) -> tuple[str, str]:
    models = httpx.get(f"{url}/models", timeout=10).json()
    chosen = next((m for m in models if m["name"] == model), None) or (models[0] if models else None)
    if chosen is None:
        raise RuntimeError(f"{url} serves no model")
    if chosen["name"] != model:
        print(f"{url} does not serve {model!r}; using {chosen['name']!r}")
    return chosen["source"], chosen["target"]


def twenty_five_words(sentences: list[str]) -> str:
    return min(sentences, key=lambda s: (abs(len(s.split()) - 25), len(s)))


def resident_megabytes(pid: int) -> list[tuple[str, float]]:
    """(what, resident MB) of process `pid` ("server") and of each of its child processes, named by how
    they were started (Linux /proc; a process that has just ended is left out)."""
    processes = [("server", pid)]
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            processes += [(_process_role(int(child)), int(child)) for child in task.read_text().split()]
        except OSError:  # a thread that ended since the listing
            continue
    measured = []
    for role, process in processes:
        try:
            status = Path(f"/proc/{process}/status").read_text()
        except OSError:
            continue
        found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        if found:
            measured.append((role, int(found.group(1)) / 1024))
    return measured


def _process_role(pid: int) -> str:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "child"
    for marker, role in (("resource_tracker", "resource tracker"), ("forkserver", "document forkserver"),
                         ("spawn_main", "batch process")):
        if marker in command:
            return role
    return "child"


def run_load(url: str, sentences: list[str], pair, args, offline: float | None, server_pid: int | None = None) -> None:
    warmup = asyncio.run(load(url, sentences, pair, clients=args.clients, seconds=args.warmup, beam=args.beam,
                              per_request=args.per_request, client=args.client))
    before = batch_means(url)
    cpu_started = time.process_time()  # this process's CPU: the load generator's own cost
    result = asyncio.run(load(url, sentences, pair, clients=args.clients, seconds=args.duration, beam=args.beam,
                              per_request=args.per_request, max_requests=args.max_requests,
                              start=sum(warmup.statuses.values()), client=args.client))
    client_cpu = time.process_time() - cpu_started
    after = batch_means(url)
    milliseconds = [1000 * s for s in result.latencies]
    rate = result.sentences / result.seconds
    errors = {status: count for status, count in sorted(result.statuses.items()) if status != "200"}
    print(f"  {result.successes} requests in {result.seconds:.1f} s: {result.successes / result.seconds:.1f} requests/s, "
          f"{rate:.1f} sentences/s")
    print(f"  latency p50 {percentile(milliseconds, 50):.0f} ms, p95 {percentile(milliseconds, 95):.0f} ms, "
          f"p99 {percentile(milliseconds, 99):.0f} ms")
    print(f"  errors: {errors or 'none'}")
    print(f"  server: {describe_batches(before, after)}")
    print(f"  load generator ({args.client}): {1000 * client_cpu / max(1, sum(result.statuses.values())):.2f} ms of CPU per request")
    if server_pid is not None and Path("/proc").is_dir():
        measured = resident_megabytes(server_pid)
        print("  resident memory: " + ", ".join(f"{role} {mb:.0f} MB" for role, mb in measured)
              + f"; {sum(mb for _, mb in measured):.0f} MB in all")
    if offline:
        print(f"  service / offline = {100 * rate / offline:.0f}%")


def run_single(url: str, sentence: str, pair, args) -> None:
    asyncio.run(load(url, [sentence], pair, clients=1, seconds=min(args.warmup, 2.0), beam=args.beam, client=args.client))
    result = asyncio.run(load(url, [sentence], pair, clients=1, seconds=args.duration, beam=args.beam,
                              max_requests=args.max_requests, client=args.client))
    milliseconds = [1000 * s for s in result.latencies]
    errors = {status: count for status, count in result.statuses.items() if status != "200"}
    print(f"  {result.successes} requests: p50 {percentile(milliseconds, 50):.1f} ms, "
          f"p95 {percentile(milliseconds, 95):.1f} ms, mean {statistics.fmean(milliseconds or [float('nan')]):.1f} ms"
          f"{f', errors {errors}' if errors else ''}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--model", default="bible-es-en", help="model directory name under --models-dir")
    parser.add_argument("--url", help="measure this running server instead of starting one")
    parser.add_argument("--configs", default="on,off", help="batching configurations to start: on, off or both")
    parser.add_argument("--corpus", type=Path, default=Path("data/corpora/bible"))
    parser.add_argument("--split", default="test")
    parser.add_argument("--column", help="corpus column to send (default: the model's source language)")
    parser.add_argument("--limit", type=int, default=0, help="first N sentences only")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds per configuration")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds first")
    parser.add_argument("--max-requests", type=int, default=100_000, help="stop a measurement after this many")
    parser.add_argument("--beam", type=int, default=None, help="beam of every request (default: the model's own)")
    parser.add_argument("--per-request", type=int, default=1, help="sentences per request (q as a list when > 1)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads for server and offline (default: torch's)")
    parser.add_argument(
        "--quantize", choices=QUANTIZE_MODES, default=DEFAULT_QUANTIZATION,
        help="precision, server and offline (default: %(default)s)",
    )
    parser.add_argument("--single", action="store_true", help="latency of one client sending one 25-word sentence")
    parser.add_argument("--no-offline", action="store_true", help="skip the offline comparison")
    parser.add_argument("--client", choices=("lean", "httpx"), default="lean",
                        help="load generator: a minimal keep-alive HTTP/1.1 client (default), or httpx, which takes "
                             "about 2 ms of CPU per request from the server on a small machine")
    args = parser.parse_args()
    if not 1 <= args.clients <= MAX_CLIENTS or not 0 < args.duration <= MAX_DURATION or args.per_request < 1:
        parser.error(f"--clients must be 1..{MAX_CLIENTS}, --duration 0..{MAX_DURATION:.0f} s, --per-request ≥ 1")
    if args.url and args.client == "lean" and urlsplit(args.url).scheme != "http":
        parser.error(f"the lean client speaks plain HTTP only: measure {args.url} with --client httpx")

    from carousel.data.corpus import read_split

    model_dir = args.models_dir / args.model
    column = args.column
    if column is None:
        config = model_dir / "config.json"
        if not config.is_file():
            parser.error(f"{config} not found: give --column, or --models-dir/--model of a model directory")
        column = json.loads(config.read_text(encoding="utf-8")).get("src_lang") or "es"
    sentences = [row[0] for row in read_split(args.corpus, args.split, [column]) if row[0].strip()]
    if args.limit:
        sentences = sentences[: args.limit]
    if args.single:
        sentences = [twenty_five_words(sentences)]
        print(f"one client, one sentence of {len(sentences[0].split())} words, beam {args.beam or 'of the model'}, {args.duration:.0f} s: "
              f"{sentences[0]!r}")
    else:
        print(f"{len(sentences)} sentences ({args.corpus} {args.split} {column}), {args.clients} clients × "
              f"{args.per_request} sentence(s) per request, beam {args.beam or 'of the model'}, {args.duration:.0f} s per configuration")

    offline = None
    if not args.single and not args.no_offline and (model_dir / "config.json").is_file():
        offline = offline_rate(model_dir, sentences, args.beam, args.threads, args.quantize)
        print(f"offline: Translator.translate_texts on all {len(sentences)} sentences: {offline:.1f} sentences/s")

    targets = [("as configured", None)] if args.url else [(name, CONFIGS[name]) for name in args.configs.split(",")]
    for name, extra in targets:
        print(f"\nbatching {name}" + (f" ({' '.join(extra)})" if extra else ""), flush=True)
        server = None if args.url else Server(args.models_dir, args.beam, [*extra, "--quantize", args.quantize], args.threads)
        try:
            url = args.url or server.url
            pair = served_pair(url, args.model)
            if args.single:
                run_single(url, sentences[0], pair, args)
            else:
                run_load(url, sentences, pair, args, offline, None if server is None else server.process.pid)
        finally:
            if server is not None:
                server.stop()


if __name__ == "__main__":
    main()
