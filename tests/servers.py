"""Real servers for the tests of several replicas: PostgreSQL, Redis, haproxy and `carousel serve` itself.

Each runs from a temporary directory on a free port of 127.0.0.1 and is stopped (and its directory
removed) when the `with` block ends. The Debian packages `postgresql`, `redis-server` and `haproxy` must be
installed (the README's test command installs them): a missing one fails the test with the command that
installs it, never skips it. PostgreSQL refuses to run as root; a root test (CI) runs it as the
`postgres` user the Debian package creates.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
INSTALL = "apt-get install -y postgresql redis-server haproxy"


@dataclass
class Running:
    """A server started by a test: its URL and process (`stop` it early to see what a client gets)."""

    url: str
    process: subprocess.Popen
    stop_signal: int = signal.SIGTERM

    def stop(self) -> None:
        stop(self.process, self.stop_signal)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def program(name: str, *patterns: str) -> str:
    """The path of an installed program (looked up on PATH, then in `patterns`), or fail the test."""
    found = shutil.which(name) or next(iter(sorted(p for pattern in patterns for p in glob.glob(pattern))[::-1]), None)
    if found is None:
        pytest.fail(f"{name} is not installed; these tests need the servers: {INSTALL}", pytrace=False)
    return found


def wait_for(check, what: str, process: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{what} exited with status {process.returncode}:\n{tail(log)}")
        try:
            if check():
                return
        except Exception:  # not up yet: refused, reset, starting
            pass
        time.sleep(0.1)
    raise AssertionError(f"{what} did not start within {timeout:.0f} s:\n{tail(log)}")


def tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def postgresql(port: int | None = None) -> Iterator[Running]:
    """A fresh PostgreSQL cluster on `port` (default: a free one); its URL names the `postgres` database
    (user `carousel`, no password)."""
    initdb = program("initdb", "/usr/lib/postgresql/*/bin/initdb")
    server = str(Path(initdb).with_name("postgres"))
    as_user = {}
    directory = Path(tempfile.mkdtemp(prefix="carousel-postgresql-"))
    if os.geteuid() == 0:  # PostgreSQL will not run as root
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            pytest.fail(f"running as root needs the postgres user of Debian's package: {INSTALL}", pytrace=False)
        os.chown(directory, account.pw_uid, account.pw_gid)
        as_user = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    port, log = port or free_port(), directory / "server.log"
    try:
        subprocess.run([initdb, "-D", str(directory / "data"), "-U", "carousel", "-A", "trust", "--no-sync"],
                       check=True, capture_output=True, **as_user)
        with open(log, "w") as output:
            if as_user:
                os.chown(log, as_user["user"], as_user["group"])
            process = subprocess.Popen(
                [server, "-D", str(directory / "data"), "-p", str(port), "-k", str(directory),
                 "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=200"],
                stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **as_user,
            )
        url = f"postgresql://carousel@127.0.0.1:{port}/postgres"
        try:
            import psycopg

            wait_for(lambda: psycopg.connect(url, connect_timeout=2).close() is None, "PostgreSQL", process, log)
            yield Running(url, process, signal.SIGINT)  # SIGINT: fast shutdown
        finally:
            stop(process, signal.SIGINT)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def redis() -> Iterator[Running]:
    """A Redis server that keeps nothing on disk."""
    server = program("redis-server")
    directory = Path(tempfile.mkdtemp(prefix="carousel-redis-"))
    port, log = free_port(), directory / "server.log"
    try:
        with open(log, "w") as output:
            process = subprocess.Popen(
                [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(directory)],
                stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        try:
            import redis as client

            wait_for(lambda: client.Redis(port=port, socket_timeout=1).ping(), "Redis", process, log)
            yield Running(f"redis://127.0.0.1:{port}/0", process)
        finally:
            stop(process)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


class Replica:
    """`carousel serve` on a free port with `environment` on top of the caller's; one batch worker, one
    torch thread."""

    def __init__(self, models_dir: Path, environment: dict[str, str], log: Path, *flags: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        command = [sys.executable, "-m", "carousel", "serve", "--models-dir", str(models_dir),
                   "--port", str(self.port), "--batch-workers", "1", *flags]
        with open(log, "w") as output:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1", **environment},
                stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )

    def wait_until_ready(self) -> None:
        wait_for(lambda: httpx.get(f"{self.url}/ready", timeout=5).status_code == 200,
                 f"carousel serve on port {self.port}", self.process, self.log, timeout=180)

    def stop(self) -> None:
        stop(self.process, timeout=60)


@contextmanager
def replicas(models_dir: Path, environment: dict[str, str], directory: Path, count: int = 2,
             *flags: str) -> Iterator[list[Replica]]:
    started = [Replica(models_dir, environment, directory / f"replica-{n}.log", *flags) for n in range(count)]
    try:
        for replica in started:
            replica.wait_until_ready()
        yield started
    finally:
        for replica in started:
            replica.stop()


HAPROXY_CONFIG = """\
global
    maxconn 2000
    log stdout format raw local0 info

defaults
    mode http
    log global
    option httplog
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    # A request that finds a replica gone (refused, closed, or 503 while it drains) goes to another
    # one: up to 3 tries, each on another server.
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response response-timeout 503

frontend carousel
    bind 127.0.0.1:{port}
    default_backend replicas

backend replicas
    balance roundrobin
    # A replica leaves the rotation as soon as /ready fails (draining, dependency down), and returns
    # when it answers again.
    option httpchk GET /ready
    default-server inter 300ms fall 1 rise 2
{servers}
"""


@contextmanager
def haproxy(backends: list[str], directory: Path) -> Iterator[str]:
    """haproxy on a free port, balancing over `backends` (host:port each); yields its URL."""
    binary = program("haproxy", "/usr/sbin/haproxy")
    port = free_port()
    servers = "\n".join(f"    server replica{n} {address} check" for n, address in enumerate(backends))
    config, log = directory / "haproxy.cfg", directory / "haproxy.log"
    config.write_text(HAPROXY_CONFIG.format(port=port, servers=servers))
    with open(log, "w") as output:
        process = subprocess.Popen([binary, "-db", "-f", str(config)], stdout=output, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(f"{url}/ready", timeout=5).status_code == 200, "haproxy", process, log)
        yield url
    finally:
        stop(process, signal.SIGUSR1)  # soft stop
