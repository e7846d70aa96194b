"""Several replicas behind a load balancer, on the real servers: PostgreSQL for keys and suggestions, Redis
for the rate limits and lockouts, one shared file-store directory, haproxy in front (tests/servers.py).

Two `carousel serve` processes agree on everything a client can see: a key added once works on both and
revoking it stops both; a key's 10 requests a minute are 10 through the pair; a file translated by one
downloads from the other; SIGTERM to one under load costs no client an error. The database and the
counters failing are 503s (and /ready fails), never a 500 and never unlimited requests.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests import servers
from tests.helpers import StandInTranslator, stand_in_app

pytestmark = pytest.mark.slow
TRANSLATE = {"q": "En el principio creó Dios los cielos y la tierra.", "source": "es", "target": "en"}


@dataclass
class Cluster:
    database: str  # postgresql:// URL
    limits: str  # redis:// URL
    balancer: str  # haproxy's URL
    replicas: list[servers.Replica]


@pytest.fixture(scope="module")
def cluster(models_dir, tmp_path_factory):
    directory = tmp_path_factory.mktemp("cluster")
    with servers.postgresql() as database, servers.redis() as limits:
        environment = {
            "CAROUSEL_DATABASE": database.url, "CAROUSEL_LIMITS_STORAGE": limits.url,
            "CAROUSEL_FILES_DIR": str(directory / "files"), "CAROUSEL_SUGGESTIONS": "true",
            "CAROUSEL_QUANTIZE": "none",
        }
        with servers.replicas(models_dir, environment, directory) as replicas:
            backends = [f"127.0.0.1:{replica.port}" for replica in replicas]
            with servers.haproxy(backends, directory) as balancer:
                yield Cluster(database.url, limits.url, balancer, replicas)


def carousel(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "carousel", *arguments], capture_output=True, text=True,
                          cwd=servers.ROOT, timeout=120)


def add_key(cluster: Cluster, *flags: str) -> str:
    added = carousel("keys", "add", "--database", cluster.database, *flags)
    assert added.returncode == 0, added.stderr
    return added.stdout.strip()


def translate(url: str, key: str, **headers) -> httpx.Response:
    return httpx.post(f"{url}/translate", json={**TRANSLATE, "api_key": key}, headers=headers, timeout=60)


def test_a_key_added_once_works_on_every_replica_and_revoking_it_stops_all(cluster):
    key = add_key(cluster, "--name", "both")
    urls = [replica.url for replica in cluster.replicas] + [cluster.balancer]
    assert [translate(url, key).status_code for url in urls] == [200, 200, 200]
    assert key in carousel("keys", "list", "--database", cluster.database).stdout
    revoked = carousel("keys", "revoke", "--database", cluster.database, key)
    assert revoked.returncode == 0, revoked.stderr
    answers = [translate(url, key) for url in urls]
    assert [a.status_code for a in answers] == [403, 403, 403]
    assert all(a.json()["error"] == "invalid API key" for a in answers)


def test_a_key_limited_to_10_requests_a_minute_gets_exactly_10_through_the_pair(cluster):
    key = add_key(cluster, "--requests-per-minute", "10")
    answers = [translate(cluster.balancer, key) for _ in range(16)]  # round robin: 8 to each replica
    assert sorted(a.status_code for a in answers) == [200] * 10 + [429] * 6
    assert all(int(a.headers["retry-after"]) >= 1 for a in answers if a.status_code == 429)
    # Straight to each replica: both count into the same window.
    assert [translate(replica.url, key).status_code for replica in cluster.replicas] == [429, 429]


def test_failed_keys_lock_an_address_out_of_every_replica(cluster):
    address = {"X-Forwarded-For": "192.0.2.7"}  # the balancer is trusted to name the client (uvicorn's default)
    first, second = cluster.replicas
    wrong = [translate((first, second)[n % 2].url, f"guess-{n}", **address).status_code for n in range(10)]
    assert wrong == [403] * 10  # CAROUSEL_KEY_FAILURES_PER_MINUTE: 10 an address, counted together
    key = add_key(cluster)
    assert [translate(r.url, key, **address).status_code for r in cluster.replicas] == [429, 429]
    assert translate(first.url, key).status_code == 200  # other addresses are not locked out


def test_a_file_translated_through_one_replica_downloads_through_the_other(cluster):
    key = add_key(cluster)
    first, second = cluster.replicas
    upload = httpx.post(f"{first.url}/translate_file", data={"source": "es", "target": "en", "api_key": key},
                        files={"file": ("verses.txt", "En el principio.\nY la tierra.\n".encode())}, timeout=60)
    assert upload.status_code == 200, upload.text
    name = upload.json()["translatedFileUrl"].rsplit("/", 1)[1]
    downloads = [httpx.get(f"{url}/download_file/{name}", timeout=30) for url in (second.url, cluster.balancer)]
    assert [d.status_code for d in downloads] == [200, 200]
    assert downloads[0].content == downloads[1].content and downloads[0].content.count(b"\n") == 2


def test_suggestions_sent_to_the_replicas_are_exported_from_postgresql(cluster, tmp_path):
    key = add_key(cluster)
    for url, text in zip([r.url for r in cluster.replicas], ["Hola.", "Adiós."]):
        body = {"q": text, "s": text.upper(), "source": "es", "target": "en", "api_key": key}
        assert httpx.post(f"{url}/suggest", json=body, timeout=30).json() == {"success": True}
    out = tmp_path / "suggestions.tsv"
    exported = carousel("suggestions", "export", "--database", cluster.database, "--source", "es",
                        "--target", "en", "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    assert out.read_text().splitlines() == ["es\ten", "Hola.\tHOLA.", "Adiós.\tADIÓS."]


def test_sigterm_to_one_replica_under_steady_load_costs_no_client_an_error(cluster):
    """Runs last: it stops a replica. haproxy retries what the stopping replica refuses."""
    key = add_key(cluster)
    stop, answers = threading.Event(), []

    def client() -> None:
        with httpx.Client(timeout=60) as session:
            while not stop.is_set():
                response = session.post(f"{cluster.balancer}/translate", json={**TRANSLATE, "api_key": key})
                answers.append((response.status_code, response.text[:200]))

    with ThreadPoolExecutor(4) as pool:
        for _ in range(4):
            pool.submit(client)
        time.sleep(3)
        victim = cluster.replicas[0]
        victim.process.terminate()
        assert victim.process.wait(90) == 0, servers.tail(victim.log)
        time.sleep(3)  # the other replica carries the load alone
        stop.set()
    failures = [answer for answer in answers if answer[0] != 200]
    assert len(answers) > 20 and not failures, failures[:5]


# -- the shared servers failing: 503 and not ready, never a 500, never unlimited -------------------------------


def test_migrations_run_once_on_postgresql_even_when_replicas_start_together():
    from carousel.service.database import MIGRATIONS, Database

    with servers.postgresql() as server:
        url = server.url
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda _: Database(url), range(4)))  # four replicas starting at once
        import psycopg

        with psycopg.connect(url) as connection:
            assert connection.execute("SELECT version FROM schema_version").fetchall() == [(len(MIGRATIONS),)]
        database = Database(url)
        key = database.add_key("k", requests_per_minute=5)
        assert database.active_key(key.key).requests_per_minute == 5
        assert database.revoke_key(key.key) and database.active_key(key.key) is None
        assert database.add_suggestion("a", "b", "es", "en") < database.add_suggestion("c", "d", "es", "en")


def test_postgresql_down_is_503_and_not_ready(tmp_path):
    from carousel.service.database import Database

    with servers.postgresql() as server:
        url = server.url
        key = Database(url).add_key("k").key
        app = stand_in_app(tmp_path, StandInTranslator(), database=url, database_timeout_seconds=1.0)
        from fastapi.testclient import TestClient

        with TestClient(app) as client:
            assert client.post("/translate", json={**TRANSLATE, "api_key": key}).status_code == 200
            wait_until(lambda: client.get("/ready").status_code == 200)
            server.stop()
            answers = [client.post("/translate", json={**TRANSLATE, "api_key": key}) for _ in range(3)]
            assert [a.status_code for a in answers] == [503] * 3, answers[0].text
            assert "key database is unavailable" in answers[0].json()["error"]
            assert int(answers[0].headers["retry-after"]) >= 1
            wait_until(lambda: client.get("/ready").status_code == 503)
            assert "key database" in client.get("/ready").json()["error"]
            listing = carousel("keys", "list", "--database", url)
            assert listing.returncode == 2 and "cannot" in listing.stderr and "Traceback" not in listing.stderr


def test_a_service_started_before_postgresql_migrates_it_once_it_answers(tmp_path):
    from fastapi.testclient import TestClient

    from carousel.service.database import Database

    port = servers.free_port()
    url = f"postgresql://carousel@127.0.0.1:{port}/postgres"
    app = stand_in_app(tmp_path, StandInTranslator(), database=url, database_timeout_seconds=1.0)
    with TestClient(app) as client:
        refused = client.post("/translate", json={**TRANSLATE, "api_key": "k" * 43})
        assert refused.status_code == 503 and "key database is unavailable" in refused.json()["error"]
        assert client.get("/ready").status_code == 503
        with servers.postgresql(port):
            wait_until(lambda: client.get("/ready").status_code == 200, timeout=60)  # the probe migrated it
            key = Database(url, create=False).add_key("late").key
            assert client.post("/translate", json={**TRANSLATE, "api_key": key}).status_code == 200


def test_redis_down_is_503_on_limited_routes_and_not_ready(tmp_path):
    from fastapi.testclient import TestClient

    with servers.redis() as server:
        app = stand_in_app(tmp_path, StandInTranslator(), limits_storage=server.url, rate_limit_per_minute=100)
        with TestClient(app) as client:
            assert client.post("/translate", json=TRANSLATE).status_code == 200
            wait_until(lambda: client.get("/ready").status_code == 200)
            server.stop()
            answers = [client.post("/translate", json=TRANSLATE) for _ in range(3)]
            assert [a.status_code for a in answers] == [503] * 3, answers[0].text
            assert "rate limits cannot be counted" in answers[0].json()["error"]
            assert client.get("/languages").status_code == 200  # routes without limits still answer
            wait_until(lambda: client.get("/ready").status_code == 503)
            assert "limits storage" in client.get("/ready").json()["error"]


def wait_until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
