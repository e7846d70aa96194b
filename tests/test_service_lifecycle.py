"""The real server process (`carousel serve`) stopping with SIGTERM: in-flight work finishes, exit status 0.

A deployment stops the service with SIGTERM (`docker stop`, Kubernetes, systemd). Requests that are
running or queued must still get their translations, new connections must be refused, the batching
queues drain, and the process must end cleanly (status 0) within a bounded time, so that a restart
serves again at once.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from carousel.data.corpus import read_split

ROOT = Path(__file__).resolve().parents[1]
IN_FLIGHT = 4  # concurrent requests when SIGTERM arrives
SENTENCES_PER_REQUEST = 20  # at beam 10, a request takes a second or so on a busy machine
EXIT_WITHIN = 90.0  # seconds from SIGTERM to exit, the draining included


@pytest.fixture(scope="module")
def verses() -> list[str]:
    return [row[0] for row in read_split(ROOT / "data" / "corpora" / "bible", "test", ["es"])]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServerProcess:
    """`carousel serve` on a free port, its output in a log file; one torch thread, as in the tests.

    `--max-batch-tokens 1`: no two requests share a batch, so while one is translated the others wait
    in the queue, where /metrics counts their sentences: the test knows when all are in flight.
    """

    def __init__(self, models_dir: Path, log: Path):
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = log
        command = [
            sys.executable, "-m", "carousel", "serve", "--models-dir", str(models_dir),
            "--port", self.url.rsplit(":", 1)[1], "--max-batch-tokens", "1", "--timeout", "120", "--log-level", "info",
            "--batch-workers", "1",  # one request translating, the others queued behind it when SIGTERM comes
            "--shutdown-grace", "80",  # all of them finish, even on a busy machine (default 20 s, then 503)
        ]
        environment = {**os.environ, "OMP_NUM_THREADS": "1"}
        with open(log, "w") as output:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=environment, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    def wait_until_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"the server exited early:\n{self.output()}"
            try:
                if httpx.get(f"{self.url}/ready", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"not ready after {timeout:.0f} s:\n{self.output()}")

    def queue_depth(self) -> float:
        metrics = httpx.get(f"{self.url}/metrics", timeout=5).text
        return sum(float(line.split()[-1]) for line in metrics.splitlines() if line.startswith("carousel_queue_depth{"))

    def terminate_and_wait(self, timeout: float = EXIT_WITHIN) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def translate(url: str, texts: list[str]) -> tuple[int, dict, float]:
    """(status, answer, time it arrived) of one slow request: many sentences at the widest beam."""
    body = {"q": texts, "source": "es", "target": "en", "beam_size": 10}
    answer = httpx.post(f"{url}/translate", json=body, timeout=300)
    return answer.status_code, answer.json(), time.monotonic()


def wait_until_refused(url: str, timeout: float = 10.0) -> float | None:
    """When a new connection was first refused (None if it never was within `timeout`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/health", timeout=1)
        except httpx.ConnectError:
            return time.monotonic()
        except httpx.TransportError:
            pass
        time.sleep(0.02)
    return None


@pytest.mark.slow
def test_sigterm_finishes_in_flight_requests_exits_0_and_a_restart_serves(models_dir, verses, tmp_path):
    server = ServerProcess(models_dir, tmp_path / "first.log")
    try:
        server.wait_until_ready()
        batches = [verses[i * SENTENCES_PER_REQUEST : (i + 1) * SENTENCES_PER_REQUEST] for i in range(IN_FLIGHT)]
        with ThreadPoolExecutor(IN_FLIGHT) as pool:
            requests = [pool.submit(translate, server.url, texts) for texts in batches]
            # All of them have arrived when the queue holds every request but the one being translated.
            deadline = time.monotonic() + 60
            while server.queue_depth() < (IN_FLIGHT - 1) * SENTENCES_PER_REQUEST:
                assert time.monotonic() < deadline, "the requests never queued up"
                assert not any(r.done() for r in requests), "a request finished before the others arrived"
                time.sleep(0.01)
            server.process.send_signal(signal.SIGTERM)
            refused_at = wait_until_refused(server.url)
            answers = [request.result() for request in requests]
        status = server.process.wait(EXIT_WITHIN)
    finally:
        server.kill()

    log = server.output()
    for (code, answer, _), texts in zip(answers, batches):
        assert code == 200, answer
        assert len(answer["translatedText"]) == len(texts) and all(answer["translatedText"])
    assert refused_at is not None and refused_at < max(arrived for _, _, arrived in answers), (
        "new connections were still accepted while the in-flight requests finished"
    )
    assert status == 0, f"exit status {status} after SIGTERM:\n{log}"
    assert "Application shutdown complete" in log and "Traceback" not in log, log

    restarted = ServerProcess(models_dir, tmp_path / "second.log")
    try:
        restarted.wait_until_ready()
        code, answer, _ = translate(restarted.url, verses[:1])
        assert code == 200 and answer["translatedText"][0]
        assert restarted.terminate_and_wait() == 0, restarted.output()
    finally:
        restarted.kill()
