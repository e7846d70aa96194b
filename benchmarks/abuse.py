"""Abuse on loopback: each attack against a fresh `carousel serve`, while a well-behaved client sends small requests.

    python benchmarks/abuse.py                                    # models/bible-es-en, every attack
    python benchmarks/abuse.py --attacks giant-words paragraph-bomb --seconds 8 --json abuse.json
    python benchmarks/abuse.py --url http://127.0.0.1:5000 --pid 1234      # a running server (no SIGTERM)

Unless --url is given, every attack gets its own `carousel serve` (benchmarks/serve.py's `Server`) on a free
port, with the one model --model (linked into a models directory of its own) and short connection
timeouts (--header-timeout 2 --body-timeout 4 --timeout 5, --shutdown-grace --grace); the attacks on keys
and the database run it with a key database (CAROUSEL_DATABASE) and the small client sends its key.
Each attack lasts --seconds while the small client (one word, one request at a time) measures latency;
then, the attack still running, the server gets SIGTERM. Attacks:

- abandoned: --heavy clients send the most expensive request the limits allow ("a\\n" × max sentences)
  and leave after half a second, again and again;
- timeouts: the same requests, waited for: the server answers 504 and must drop the work;
- idle: --sockets connections that send nothing; slow-headers: that send half a request head;
  slow-body: that send headers and a first byte of the body (how many the server still holds is reported);
- methods: invented HTTP methods and paths (the growth of /metrics in bytes is reported);
- html: malformed markup that is slow to parse ('<a ' × 6,000), --heavy at a time;
- po-plural-bomb: a 120-byte .po whose header asks for 99,999,999 plural forms, --heavy at a time;
- giant-words: --giant clients send a "word" of 10,000 letters (alternately at beam 10 with 3
  alternatives and confidence);
- paragraph-bomb: a .docx of 4.3 million paragraphs (about 0.6 MB, 150 MB unpacked) and one of 25,000
  paragraphs (40 KB), --heavy at a time;
- abandoned-file: --heavy clients upload a text file of 9,000 distinct lines (within the file limits)
  and leave after 5 s (the queue depth the server has left a second after the attack is reported);
- locked-database: another process holds the key database's write lock, 5 s of every 6;
- store-filling: --heavy clients from 127.0.0.2 upload tiny files as fast as they can, while a victim
  from 127.0.0.1 uploads one file a second (its answers are reported);
- key-guessing: a client from 127.0.0.2 sends invalid keys as fast as it can, and now and then the
  valid key (locked out: 429); the small client from 127.0.0.1 keeps its key working.

Per attack, until SIGTERM: answers by status, transport errors, 5xx count, sockets the server still
held at the end (connection attacks), RSS growth of the server and of the server with its child
processes (document readers), the small requests' latency (median, max), and SIGTERM: exit status and
seconds (within = status 0 and at most the grace plus the batching workers' 5 s). Exit status 1 if the
small requests ever took over --max-latency seconds, a 500 came, or SIGTERM did not end the server in time.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import signal
import socket
import sqlite3
import string
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from serve import Server, percentile, served_pair

ROOT = Path(__file__).resolve().parents[1]
ATTACKER = "127.0.0.2"  # another loopback address: its lockouts and quotas are not the small client's
WORKERS_SECONDS = 5.0  # what the batching workers get after the grace period (service/app.py)
DATABASE_ATTACKS = {"locked-database", "key-guessing"}


# -- measurements ------------------------------------------------------------------------------------


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


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (its forkserver and the document readers it forks)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def tree_rss_kib(pid: int | None) -> int | None:
    if pid is None:
        return None
    return sum(rss_kib(p) or 0 for p in [pid, *descendants(pid)])


@dataclass
class Context:
    url: str
    pair: tuple[str, str]
    args: argparse.Namespace
    key: str | None  # the small client's key, when the server requires one
    database: Path | None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    counts: Counter = field(default_factory=Counter)
    extra: dict = field(default_factory=dict)


async def small_client(ctx: Context, latencies: list[float], statuses: Counter) -> None:
    body = {"q": "Dios", "source": ctx.pair[0], "target": ctx.pair[1]}
    if ctx.key:
        body["api_key"] = ctx.key
    async with httpx.AsyncClient(timeout=60) as client:
        while not ctx.stop.is_set():
            started = time.perf_counter()
            try:
                answer = await client.post(f"{ctx.url}/translate", json=body)
                statuses[str(answer.status_code)] += 1
            except httpx.HTTPError as error:
                statuses[type(error).__name__] += 1
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.05)


async def count_answer(counts: Counter, request, *args, **kwargs) -> httpx.Response | None:
    try:
        answer = await request(*args, **kwargs)
        counts[str(answer.status_code)] += 1
        return answer
    except httpx.TimeoutException:
        counts["left"] += 1
    except httpx.HTTPError as error:
        counts[type(error).__name__] += 1
    return None


# -- the attacks -----------------------------------------------------------------------------------


async def heavy(ctx: Context, body: dict, leave_after: float | None) -> None:
    while not ctx.stop.is_set():
        async with httpx.AsyncClient(timeout=leave_after or 120) as client:
            await count_answer(ctx.counts, client.post, f"{ctx.url}/translate", json=body)


async def uploads(ctx: Context, name: str, data: bytes, leave_after: float | None = None,
                  address: str | None = None, pause: float = 0.0, counts: Counter | None = None) -> None:
    transport = httpx.AsyncHTTPTransport(local_address=address) if address else None
    fields = {"source": ctx.pair[0], "target": ctx.pair[1], **({"api_key": ctx.key} if ctx.key else {})}
    async with httpx.AsyncClient(timeout=leave_after or 120, transport=transport) as client:
        while not ctx.stop.is_set():
            await count_answer(counts if counts is not None else ctx.counts, client.post, f"{ctx.url}/translate_file",
                               data=fields, files={"file": (name, data)})
            await asyncio.sleep(pause)


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


async def invented_methods(ctx: Context) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        i = 0
        while not ctx.stop.is_set():
            await count_answer(ctx.counts, client.request, f"X{i}", f"{ctx.url}/scan/{i}")
            i += 1


def plural_bomb() -> bytes:
    return (b'msgid ""\nmsgstr ""\n"Plural-Forms: nplurals=99999999; plural=n;\\n"\n\n'
            b'msgid "a"\nmsgid_plural "b"\nmsgstr[0] ""\n')


def docx_with_paragraphs(count: int, paragraph: bytes = b"<w:p><w:r><w:t>a</w:t></w:r></w:p>") -> bytes:
    import docx

    buffer = io.BytesIO()
    docx.Document().save(buffer)
    original = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in original.infolist():
            data = original.read(info.filename)
            if info.filename == "word/document.xml":
                data = data.replace(b"<w:body>", b"<w:body>" + paragraph * count, 1)
            archive.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def giant_word(length: int = 10_000) -> str:
    rng = random.Random(0)
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(length))


def hold_lock(database: Path, stop: threading.Event, counts: Counter) -> None:
    """Another process's write lock on the key database, 5 s of every 6."""
    while not stop.is_set():
        connection = sqlite3.connect(database, isolation_level=None, timeout=30)
        connection.execute("PRAGMA locking_mode=EXCLUSIVE")
        connection.execute("BEGIN EXCLUSIVE")
        connection.execute("INSERT INTO suggestions (q, s, source, target, created) VALUES ('a', 'b', 'es', 'en', 0)")
        counts["locks held"] += 1
        stop.wait(5)
        connection.execute("ROLLBACK")
        connection.close()
        stop.wait(1)


async def guess_keys(ctx: Context) -> None:
    transport = httpx.AsyncHTTPTransport(local_address=ATTACKER)
    body = {"q": "hola", "source": ctx.pair[0], "target": ctx.pair[1]}
    async with httpx.AsyncClient(timeout=30, transport=transport) as client:
        i = 0
        while not ctx.stop.is_set():
            key = ctx.key if i % 50 == 49 else f"guess-{i}"
            counts = ctx.extra.setdefault("valid_key_from_attacker", Counter()) if key == ctx.key else ctx.counts
            await count_answer(counts, client.post, f"{ctx.url}/translate", json={**body, "api_key": key})
            i += 1


def start_attack(name: str, ctx: Context) -> tuple[list, list[socket.socket], threading.Event | None]:
    """(coroutines to run, sockets opened, a thread's stop event) of attack `name`: its payloads are built
    here, off the event loop, so that the small client's latency is the server's."""
    args, pair = ctx.args, ctx.pair
    heavy_body = {"q": "a\n" * args.max_sentences, "source": pair[0], "target": pair[1]}
    if ctx.key:
        heavy_body["api_key"] = ctx.key
    tasks: list = []
    if name == "abandoned":
        tasks = [heavy(ctx, heavy_body, 0.5) for _ in range(args.heavy)]
    elif name == "timeouts":
        tasks = [heavy(ctx, heavy_body, None) for _ in range(args.heavy)]
    elif name == "html":
        tasks = [heavy(ctx, {**heavy_body, "q": "<a " * 6000, "format": "html"}, None) for _ in range(args.heavy)]
    elif name == "methods":
        tasks = [invented_methods(ctx)]
    elif name == "po-plural-bomb":
        tasks = [uploads(ctx, "bomb.po", plural_bomb()) for _ in range(args.heavy)]
    elif name == "giant-words":
        word = giant_word()
        costly = {**heavy_body, "q": word, "beam_size": 10, "alternatives": 3, "return_confidence": True}
        tasks = [heavy(ctx, {**heavy_body, "q": word} if i % 2 == 0 else costly, None) for i in range(args.giant)]
    elif name == "paragraph-bomb":
        bombs = [("bomb.docx", docx_with_paragraphs(4_300_000)), ("small-bomb.docx", docx_with_paragraphs(25_000))]
        ctx.extra["bomb_bytes"] = [len(data) for _, data in bombs]
        tasks = [uploads(ctx, *bombs[i % 2]) for i in range(args.heavy)]
    elif name == "abandoned-file":
        lines = "".join(f"Línea {n} de un archivo grande.\n" for n in range(9_000))
        ctx.extra["file_bytes"] = len(lines.encode())
        tasks = [uploads(ctx, "large.txt", lines.encode(), leave_after=5.0) for _ in range(args.heavy)]
    elif name == "store-filling":
        victim = ctx.extra.setdefault("victim_uploads", Counter())
        tasks = [uploads(ctx, "tiny.txt", b"hola", address=ATTACKER) for _ in range(args.heavy)]
        tasks.append(uploads(ctx, "mine.txt", b"hola", pause=1.0, counts=victim))
    elif name == "key-guessing":
        tasks = [guess_keys(ctx)]
    elif name == "locked-database":
        stop = threading.Event()
        threading.Thread(target=hold_lock, args=(ctx.database, stop, ctx.counts), daemon=True).start()
        return [], [], stop
    else:
        payload = {
            "idle": b"",
            "slow-headers": b"POST /translate HTTP/1.1\r\nHost: x\r\n",
            "slow-body": b"POST /translate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 1000\r\n\r\n{",
        }[name]
        sockets = open_sockets(ctx.url, args.sockets, payload)
        ctx.counts["sockets"] = len(sockets)
        return [], sockets, None
    return tasks, [], None


# -- one attack on one server ----------------------------------------------------------------------


async def attack(name: str, ctx: Context, pid: int | None, server: Server | None) -> dict:
    latencies: list[float] = []
    small_statuses: Counter = Counter()
    rss_before, tree_before = rss_kib(pid), tree_rss_kib(pid)
    tree_peak = tree_before or 0
    metrics_before = len(httpx.get(f"{ctx.url}/metrics").content)
    small = asyncio.ensure_future(small_client(ctx, latencies, small_statuses))
    coroutines, sockets, lock_stop = await asyncio.to_thread(start_attack, name, ctx)
    tasks = [asyncio.ensure_future(coroutine) for coroutine in coroutines]
    for _ in range(int(ctx.args.seconds * 4)):
        await asyncio.sleep(0.25)
        tree_peak = max(tree_peak, tree_rss_kib(pid) or 0)
    held = await asyncio.to_thread(still_open, sockets) if sockets else None
    rss_after, tree_after = rss_kib(pid), tree_rss_kib(pid)
    result = {"attack": name}
    attack_counts, small_counts, small_latencies = Counter(ctx.counts), Counter(small_statuses), list(latencies)
    if server is not None:  # SIGTERM with the attack still running
        result.update(await asyncio.to_thread(terminate, server, ctx.args.grace))
        late = (ctx.counts + small_statuses) - (attack_counts + small_counts)
        result["answers_after_sigterm"] = dict(late)
    else:
        await asyncio.sleep(1.0)
        result["queue_depth_after_1s"] = queue_depth(ctx.url)
        result["metrics_growth_bytes"] = len(httpx.get(f"{ctx.url}/metrics").content) - metrics_before
    ctx.stop.set()
    if lock_stop is not None:
        lock_stop.set()
    for task in [small, *tasks]:
        task.cancel()
    await asyncio.gather(small, *tasks, return_exceptions=True)
    statuses = attack_counts + small_counts  # until SIGTERM; what came after is answers_after_sigterm
    latencies = small_latencies
    result.update({
        "attack_answers": dict(attack_counts),
        **{key: dict(value) if isinstance(value, Counter) else value for key, value in ctx.extra.items()},
        "small_answers": dict(small_counts),
        "small_requests": len(latencies),
        "small_latency_median_s": round(percentile(latencies, 50), 3) if latencies else None,
        "small_latency_max_s": round(max(latencies), 3) if latencies else None,
        "server_5xx": sum(v for k, v in statuses.items() if k.startswith("5")),
        "server_500": statuses.get("500", 0),
        "transport_errors": sum(v for k, v in small_counts.items() if not k.isdigit()),
        "sockets_still_held": held,
        "rss_growth_kib": None if rss_before is None or rss_after is None else rss_after - rss_before,
        "rss_with_children_growth_kib": None if tree_before is None else tree_after - tree_before,
        "rss_with_children_peak_growth_kib": None if tree_before is None else tree_peak - tree_before,
    })
    return result


def queue_depth(url: str) -> float | None:
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith("carousel_queue_depth{"):
            return float(line.split()[-1])
    return None


def terminate(server: Server, grace: float) -> dict:
    """SIGTERM now; the exit status and how long the server took to exit."""
    depth = queue_depth(server.url)
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    try:
        status = server.process.wait(grace + WORKERS_SECONDS + 60)
    except subprocess.TimeoutExpired:
        status = None
    seconds = time.monotonic() - started
    return {
        "queue_depth_at_sigterm": depth,
        "sigterm_exit_status": status,
        "sigterm_seconds": round(seconds, 2),
        "sigterm_within_grace": status == 0 and seconds <= grace + WORKERS_SECONDS,
    }


def key_database(directory: Path) -> tuple[Path, str]:
    from carousel.service.database import Database

    path = directory / "keys.db"
    return path, Database(path).add_key("benchmark").key


def run_one(name: str, args: argparse.Namespace, models_dir: Path, directory: Path) -> dict:
    database = key = None
    if name in DATABASE_ATTACKS:
        database, key = key_database(directory / name)
        os.environ["CAROUSEL_DATABASE"] = str(database)
    else:
        os.environ.pop("CAROUSEL_DATABASE", None)
    extra = ["--header-timeout", "2", "--body-timeout", "4", "--timeout", "5", "--shutdown-grace", str(args.grace),
             "--max-sentences", str(args.max_sentences)]
    server = Server(models_dir, beam=5, extra=extra, threads=args.threads)
    try:
        ctx = Context(server.url, served_pair(server.url, args.model), args, key, database)
        result = asyncio.run(attack(name, ctx, server.process.pid, server))
        if result.get("sigterm_exit_status") is None:
            result["server_log_tail"] = server.tail(10)
        return result
    finally:
        server.stop()


ATTACKS = ["abandoned", "timeouts", "idle", "slow-headers", "slow-body", "methods", "html",
           "po-plural-bomb", "giant-words", "paragraph-bomb", "abandoned-file", "locked-database",
           "store-filling", "key-guessing"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running server (default: start one per attack)")
    parser.add_argument("--pid", type=int, help="the running server's process id, for RSS")
    parser.add_argument("--key", help="an API key of the running server, for the small client")
    parser.add_argument("--models-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--model", default="bible-es-en", help="the model the server loads (alone) and is attacked on")
    parser.add_argument("--attacks", nargs="+", choices=ATTACKS, default=ATTACKS)
    parser.add_argument("--heavy", type=int, default=2, help="heavy clients at a time")
    parser.add_argument("--giant", type=int, default=4, help="clients sending giant words")
    parser.add_argument("--sockets", type=int, default=50, help="connections per connection attack")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each attack")
    parser.add_argument("--grace", type=float, default=5.0, help="the server's --shutdown-grace")
    parser.add_argument("--max-sentences", type=int, default=1000, help="the server's --max-sentences")
    parser.add_argument("--max-latency", type=float, default=3.0, help="small requests must stay under this")
    parser.add_argument("--threads", type=int, default=0, help="OMP_NUM_THREADS for the server (0: default)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()

    results = []
    if args.url is None:
        with tempfile.TemporaryDirectory(prefix="carousel-abuse-") as temporary:
            directory = Path(temporary)
            models_dir = directory / "models"
            models_dir.mkdir()
            (models_dir / args.model).symlink_to((args.models_dir / args.model).resolve())
            for name in args.attacks:
                (directory / name).mkdir()
                results.append(run_one(name, args, models_dir, directory))
                print(json.dumps(results[-1]), flush=True)
    else:
        url = args.url.rstrip("/")
        for name in args.attacks:
            ctx = Context(url, served_pair(url, args.model), args, args.key, None)
            results.append(asyncio.run(attack(name, ctx, args.pid, None)))
            print(json.dumps(results[-1]), flush=True)
    failed = [r["attack"] for r in results
              if (r["small_latency_max_s"] or 0) > args.max_latency or r["server_500"]
              or r.get("sigterm_within_grace") is False]
    print(f"{len(results)} attacks; small requests over {args.max_latency:g} s, 500s or a slow SIGTERM in: "
          f"{failed or 'none'}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
