"""Abuse on loopback: each attack against a running `carousel serve`, while a well-behaved client sends small requests.

    python benchmarks/abuse.py                                    # models/ (bible-es-en), default sizes
    python benchmarks/abuse.py --heavy 2 --sockets 20 --seconds 8 --json abuse.json
    python benchmarks/abuse.py --url http://127.0.0.1:5000 --pid 1234      # a running server

Unless --url is given, the script starts `carousel serve` on a free port (benchmarks/serve.py's `Server`)
with short connection timeouts (--header-timeout 2 --body-timeout 4 --timeout 5). Attacks, one after
the other, each for --seconds while the small client (one word, one request at a time) measures latency:

- abandoned: --heavy clients send the most expensive request the limits allow ("a\\n" × max sentences)
  and leave after half a second, again and again;
- timeouts: the same requests, waited for: the server answers 504 and must drop the work;
- idle: --sockets connections that send nothing; slow-headers: that send half a request head;
  slow-body: that send headers and a first byte of the body (how many the server still holds is reported);
- methods: invented HTTP methods and paths (the growth of /metrics in bytes is reported);
- html: malformed markup that is slow to parse ('<a ' × 6,000), --heavy at a time.

Per attack: requests sent, answers by status, transport errors, 5xx count, sockets the server still
held at the end (connection attacks), server RSS growth (/proc/<pid>/status) and the small requests'
latency (median, max). Exit status 1 if the small requests ever took over --max-latency seconds or any
5xx answer other than 503/504 came.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

from serve import Server, percentile, served_pair

ROOT = Path(__file__).resolve().parents[1]


def rss_kib(pid: int | None) -> int | None:
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


async def small_client(url: str, pair, stop: asyncio.Event, latencies: list[float], statuses: Counter) -> None:
    async with httpx.AsyncClient(timeout=60) as client:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                answer = await client.post(f"{url}/translate", json={"q": "Dios", "source": pair[0], "target": pair[1]})
                statuses[str(answer.status_code)] += 1
            except httpx.HTTPError as error:
                statuses[type(error).__name__] += 1
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.05)


async def heavy(url: str, pair, text: str, stop: asyncio.Event, counts: Counter, leave_after: float | None,
                form: str = "text") -> None:
    body = {"q": text, "source": pair[0], "target": pair[1], "format": form}
    while not stop.is_set():
        async with httpx.AsyncClient(timeout=leave_after or 120) as client:
            try:
                answer = await client.post(f"{url}/translate", json=body)
                counts[str(answer.status_code)] += 1
            except httpx.TimeoutException:
                counts["left" if leave_after else "client-timeout"] += 1
            except httpx.HTTPError as error:
                counts[type(error).__name__] += 1


def open_sockets(url: str, count: int, payload: bytes) -> list[socket.socket]:
    host, port = url.removeprefix("http://").split(":")
    sockets = []
    for _ in range(count):
        connection = socket.create_connection((host, int(port)), timeout=5)
        if payload:
            connection.sendall(payload)
        sockets.append(connection)
    return sockets


def still_open(sockets: list[socket.socket]) -> int:
    """Sockets the server has not closed (a read would block)."""
    held = 0
    for connection in sockets:
        connection.setblocking(False)
        try:
            data = connection.recv(65536)
            held += 0 if data == b"" or data.startswith(b"HTTP/1.1 4") or data.startswith(b"HTTP/1.1 5") else 1
        except BlockingIOError:
            held += 1
        except OSError:
            pass
        connection.close()
    return held


async def invented_methods(url: str, stop: asyncio.Event, counts: Counter) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        i = 0
        while not stop.is_set():
            try:
                answer = await client.request(f"X{i}", f"{url}/scan/{i}")
                counts[str(answer.status_code)] += 1
            except httpx.HTTPError as error:
                counts[type(error).__name__] += 1
            i += 1


async def attack(name: str, url: str, pair, args, pid: int | None) -> dict:
    stop = asyncio.Event()
    latencies: list[float] = []
    small_statuses: Counter = Counter()
    counts: Counter = Counter()
    rss_before = rss_kib(pid)
    metrics_before = len(httpx.get(f"{url}/metrics").content)
    heavy_text = "a\n" * args.max_sentences
    sockets: list[socket.socket] = []
    tasks = [asyncio.create_task(small_client(url, pair, stop, latencies, small_statuses))]
    if name == "abandoned":
        tasks += [asyncio.create_task(heavy(url, pair, heavy_text, stop, counts, 0.5)) for _ in range(args.heavy)]
    elif name == "timeouts":
        tasks += [asyncio.create_task(heavy(url, pair, heavy_text, stop, counts, None)) for _ in range(args.heavy)]
    elif name == "html":
        tasks += [asyncio.create_task(heavy(url, pair, "<a " * 6000, stop, counts, None, "html"))
                  for _ in range(args.heavy)]
    elif name == "methods":
        tasks.append(asyncio.create_task(invented_methods(url, stop, counts)))
    else:
        payload = {
            "idle": b"",
            "slow-headers": b"POST /translate HTTP/1.1\r\nHost: x\r\n",
            "slow-body": b"POST /translate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 1000\r\n\r\n{",
        }[name]
        sockets = await asyncio.to_thread(open_sockets, url, args.sockets, payload)
        counts["sockets"] = len(sockets)
    await asyncio.sleep(args.seconds)
    held = await asyncio.to_thread(still_open, sockets) if sockets else None
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(1.0)  # the server settles: work of the last abandoned requests is dropped
    rss_after = rss_kib(pid)
    statuses = counts + small_statuses
    return {
        "attack": name,
        "attack_answers": dict(counts),
        "small_answers": dict(small_statuses),
        "small_requests": len(latencies),
        "small_latency_median_s": round(percentile(latencies, 50), 3) if latencies else None,
        "small_latency_max_s": round(max(latencies), 3) if latencies else None,
        "server_5xx": sum(v for k, v in statuses.items() if k.startswith("5")),
        "server_500": statuses.get("500", 0),
        "transport_errors": sum(v for k, v in small_statuses.items() if not k.isdigit()),
        "sockets_still_held": held,
        "rss_growth_kib": None if rss_before is None or rss_after is None else rss_after - rss_before,
        "metrics_growth_bytes": len(httpx.get(f"{url}/metrics").content) - metrics_before,
    }


ATTACKS = ["abandoned", "timeouts", "idle", "slow-headers", "slow-body", "methods", "html"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running server (default: start one)")
    parser.add_argument("--pid", type=int, help="the running server's process id, for RSS")
    parser.add_argument("--models-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--model", default="bible-es-en")
    parser.add_argument("--attacks", nargs="+", choices=ATTACKS, default=ATTACKS)
    parser.add_argument("--heavy", type=int, default=2, help="heavy clients at a time")
    parser.add_argument("--sockets", type=int, default=50, help="connections per connection attack")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each attack")
    parser.add_argument("--max-sentences", type=int, default=1000, help="the server's --max-sentences")
    parser.add_argument("--max-latency", type=float, default=2.0, help="small requests must stay under this")
    parser.add_argument("--threads", type=int, default=0, help="OMP_NUM_THREADS for the server (0: default)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()

    server = None
    if args.url is None:
        extra = ["--header-timeout", "2", "--body-timeout", "4", "--timeout", "5",
                 "--max-sentences", str(args.max_sentences)]
        server = Server(args.models_dir, beam=5, extra=extra, threads=args.threads)
        url, pid = server.url, server.process.pid
    else:
        url, pid = args.url.rstrip("/"), args.pid
    try:
        pair = served_pair(url, args.model)
        results = []
        for name in args.attacks:
            result = asyncio.run(attack(name, url, pair, args, pid))
            results.append(result)
            print(json.dumps(result), flush=True)
    finally:
        if server is not None:
            server.stop()
    failed = [r["attack"] for r in results
              if (r["small_latency_max_s"] or 0) > args.max_latency or r["server_500"]]
    print(f"{len(results)} attacks; small requests over {args.max_latency:g} s or 500s in: {failed or 'none'}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
