"""The service's SQLite database: migrations, API keys managed by `carousel keys` while the server runs,
per-key limits, `/suggest`, concurrent writers and restarts, and the export `carousel prepare` reads."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import warnings
from contextlib import contextmanager

import pytest

from carousel.cli import main
from carousel.service.database import MIGRATIONS, Database, schema_version
from tests.helpers import StandInTranslator, stand_in_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

TRANSLATE = {"q": "Hola", "source": "es", "target": "en"}


@contextmanager
def service(tmp_path, **settings):
    models = tmp_path / "models"
    models.mkdir(parents=True, exist_ok=True)
    app = stand_in_app(models, StandInTranslator(), database=tmp_path / "carousel.db", **settings)
    with TestClient(app) as client:
        assert app.state.registry.wait_until_loaded(30)
        yield client


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([*map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_new_database_is_migrated_to_the_latest_version_once(tmp_path):
    Database(tmp_path / "a.db")
    Database(tmp_path / "a.db")  # opening again applies nothing twice
    with sqlite3.connect(tmp_path / "a.db") as connection:
        assert schema_version(connection) == len(MIGRATIONS)
        assert connection.execute("SELECT COUNT(*) FROM schema_version").fetchone() == (1,)


def test_a_database_from_a_newer_carousel_is_refused(tmp_path):
    Database(tmp_path / "a.db")
    with sqlite3.connect(tmp_path / "a.db") as connection:
        connection.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(RuntimeError, match="newer"):
        Database(tmp_path / "a.db")


def test_keys_added_and_revoked_from_the_command_line_apply_without_a_restart(tmp_path, capsys):
    database = tmp_path / "carousel.db"
    with service(tmp_path) as client:
        assert client.post("/translate", json=TRANSLATE).status_code == 403  # a key database: keys required
        assert client.get("/frontend/settings").json()["keyRequired"] is True
        code, out, err = cli(capsys, "keys", "add", "--database", database, "--name", "alice")
        assert code == 0, err
        key = out.strip()
        assert len(key) >= 43  # 256 random bits
        assert client.post("/translate", json=TRANSLATE).status_code == 403
        assert client.post("/translate", json={**TRANSLATE, "api_key": key}).status_code == 200
        assert client.post("/translate", json=TRANSLATE, headers={"Authorization": f"Bearer {key}"}).status_code == 200
        code, out, _ = cli(capsys, "keys", "list", "--database", database)
        assert key in out and "alice" in out
        assert cli(capsys, "keys", "revoke", "--database", database, key)[0] == 0
        assert client.post("/translate", json={**TRANSLATE, "api_key": key}).status_code == 403
        assert key not in cli(capsys, "keys", "list", "--database", database)[1]
        assert key in cli(capsys, "keys", "list", "--database", database, "--all")[1]
        code, _, err = cli(capsys, "keys", "revoke", "--database", database, key)
        assert code == 2 and "no such" in err


def test_per_key_limits(tmp_path):
    with service(tmp_path) as client:
        database = Database(tmp_path / "carousel.db")
        limited = database.add_key("limited", requests_per_minute=2, chars_per_request=10).key
        free = database.add_key("free").key
        too_long = client.post("/translate", json={**TRANSLATE, "q": "x" * 11, "api_key": limited})
        assert too_long.status_code == 413
        statuses = [client.post("/translate", json={**TRANSLATE, "api_key": limited}).status_code for _ in range(3)]
        assert statuses[-1] == 429 and 200 in statuses
        assert all(client.post("/translate", json={**TRANSLATE, "api_key": free}).status_code == 200 for _ in range(5))


def test_suggestions_are_refused_when_off_and_kept_with_model_and_time_when_on(tmp_path):
    with service(tmp_path / "off", keys_required=False) as client:
        assert client.post("/suggest", json={"q": "a", "s": "b", "source": "es", "target": "en"}).status_code == 403
    with service(tmp_path / "on", suggestions=True, keys_required=False) as client:  # a database for suggestions only
        answer = client.post("/suggest", data={"q": "Hola", "s": "Hello", "source": "es", "target": "en"})
        assert answer.status_code == 200 and answer.json() == {"success": True}
        assert client.post("/suggest?q=Adiós&s=Goodbye&source=es&target=en").json() == {"success": True}
        missing = client.post("/suggest", json={"q": "Hola", "source": "es", "target": "en"})
        assert missing.status_code == 400 and "'s'" in missing.json()["error"]
    rows = Database(tmp_path / "on" / "carousel.db").suggestions()
    assert [(r.q, r.s, r.source, r.target, r.model) for r in rows] == [
        ("Hola", "Hello", "es", "en", "stand-in-es-en"), ("Adiós", "Goodbye", "es", "en", "stand-in-es-en")]
    assert all(r.created > 0 for r in rows)


def _write_suggestions(path, worker: int, count: int) -> None:
    database = Database(path)
    for n in range(count):
        database.add_suggestion(f"q{worker}-{n}", f"s{worker}-{n}", "es", "en")


def test_concurrent_writers_in_threads_and_processes_lose_nothing(tmp_path):
    path = tmp_path / "carousel.db"
    Database(path)
    threads = [threading.Thread(target=_write_suggestions, args=(path, w, 40)) for w in range(4)]
    processes = [multiprocessing.get_context("spawn").Process(target=_write_suggestions, args=(path, 10 + w, 40))
                 for w in range(2)]
    for worker in [*threads, *processes]:
        worker.start()
    for worker in [*threads, *processes]:
        worker.join(120)
    assert all(p.exitcode == 0 for p in processes)
    rows = Database(path).suggestions()  # a fresh connection, as after a restart
    assert len(rows) == 6 * 40
    assert {r.q for r in rows} == {f"q{w}-{n}" for w in [0, 1, 2, 3, 10, 11] for n in range(40)}


def test_a_server_restart_keeps_keys_and_suggestions(tmp_path):
    with service(tmp_path, suggestions=True) as client:
        key = Database(tmp_path / "carousel.db").add_key("k").key
        assert client.post("/suggest", json={"q": "uno", "s": "one", "source": "es", "target": "en",
                                             "api_key": key}).status_code == 200
    with service(tmp_path, suggestions=True) as client:  # a new app on the same database
        assert client.post("/translate", json=TRANSLATE).status_code == 403
        assert client.post("/translate", json={**TRANSLATE, "api_key": key}).status_code == 200
    assert [r.s for r in Database(tmp_path / "carousel.db").suggestions()] == ["one"]


def test_exported_suggestions_are_a_corpus_prepare_tsv_imports(tmp_path, capsys):
    database = Database(tmp_path / "carousel.db")
    for n in range(30):
        database.add_suggestion(f"frase número {n}\tcon tab", f"sentence number {n}", "es", "en")
    database.add_suggestion("otra", "other", "es", "fr")  # another direction: not exported
    out = tmp_path / "suggestions.tsv"
    code, stdout, err = cli(capsys, "suggestions", "export", "--database", tmp_path / "carousel.db",
                            "--source", "es", "--target", "en", "--out", out)
    assert code == 0, err and "30 suggestions" in stdout
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "es\ten" and len(lines) == 31 and lines[1] == "frase número 0 con tab\tsentence number 0"
    code, _, err = cli(capsys, "prepare", "tsv", out, "--header", "--src-col", "es", "--tgt-col", "en",
                       "--src-lang", "es", "--tgt-lang", "en", "--valid-size", "5", "--test-size", "5",
                       "--out", tmp_path / "corpus")
    assert code == 0, err
    assert (tmp_path / "corpus" / "corpus.json").is_file()


# -- reliability: an emptied, locked or broken database never opens the server nor fails with a 500 ---------


def test_keys_stay_required_however_the_table_empties(tmp_path, capsys):
    database = tmp_path / "carousel.db"
    with service(tmp_path) as client:
        key = Database(database).add_key("alice").key
        assert client.post("/translate", json={**TRANSLATE, "api_key": key}).status_code == 200
        assert cli(capsys, "keys", "revoke", "--database", database, key)[0] == 0
        assert client.post("/translate", json=TRANSLATE).status_code == 403  # every key revoked
        for suffix in ("", "-wal", "-shm"):
            (tmp_path / f"carousel.db{suffix}").unlink(missing_ok=True)
        code, _, err = cli(capsys, "keys", "list", "--database", database)  # once made an empty database
        listing_made_it = database.exists()
        Database(database)  # a new, empty database all the same
        refused = client.post("/translate", json=TRANSLATE)  # once 200: the server was open
        assert refused.status_code == 403 and "required" in refused.json()["error"]
        assert client.get("/frontend/settings").json()["keyRequired"] is True
    assert code == 2 and "no database" in err and not listing_made_it


def test_short_keys_are_refused_when_given_and_warned_about_when_configured(tmp_path, capsys, caplog):
    import logging

    code, _, err = cli(capsys, "keys", "add", "--database", tmp_path / "k.db", "--key", "x")
    assert code == 2 and "1 characters can be guessed" in err
    with pytest.raises(ValueError, match="at least 22"):
        Database(tmp_path / "k.db").add_key(key="shortish-key")
    assert Database(tmp_path / "k.db").add_key(key="k" * 22).key == "k" * 22
    with caplog.at_level(logging.WARNING), service(tmp_path / "fixed", api_keys=["x"]) as client:
        assert client.post("/translate", json={**TRANSLATE, "api_key": "x"}).status_code == 200
    assert any("key 1: a key of 1 characters can be guessed" in r.getMessage() for r in caplog.records)


def test_a_keys_limits_apply_to_files_too(tmp_path):
    def upload(client, key, text):
        return client.post("/translate_file", data={"source": "es", "target": "en", "api_key": key},
                           files={"file": ("a.txt", text.encode())})

    with service(tmp_path, max_chars=100, files_dir=tmp_path / "files") as client:
        database = Database(tmp_path / "carousel.db")
        short = database.add_key("short", chars_per_request=100).key
        assert client.post("/translate", json={**TRANSLATE, "q": "hola " * 30, "api_key": short}).status_code == 413
        refused = upload(client, short, "hola\n" * 30)  # 120 characters: once 200
        assert refused.status_code == 413 and "this API key allows 100" in refused.json()["error"]
        slow = database.add_key("slow", requests_per_minute=3).key
        # 250 characters take 3 requests of max_chars 100 through /translate: the file counts as 3
        assert upload(client, slow, "hola mundo\n" * 25).status_code == 200
        limited = upload(client, slow, "hola")
        assert limited.status_code == 429 and "3 requests a minute" in limited.json()["error"]


def _locked(path):
    """A connection holding the database exclusively (as a process in the middle of a long write)."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA locking_mode=EXCLUSIVE")
    connection.execute("BEGIN EXCLUSIVE")
    connection.execute("INSERT INTO suggestions (q, s, source, target, created) VALUES ('a', 'b', 'es', 'en', 0)")
    return connection


def test_a_locked_database_is_a_quick_503_with_retry_after_and_probes_never_wait(tmp_path):
    import asyncio
    import time

    from tests.helpers import run_app

    models = tmp_path / "models"
    models.mkdir()
    app = stand_in_app(models, StandInTranslator(), database=tmp_path / "carousel.db", database_timeout_seconds=0.5)
    key = Database(tmp_path / "carousel.db").add_key("k").key

    async def scenario(client):
        assert (await client.post("/translate", json={**TRANSLATE, "api_key": key})).status_code == 200
        lock = _locked(tmp_path / "carousel.db")
        try:
            started = time.monotonic()
            keyed = asyncio.ensure_future(client.post("/translate", json={**TRANSLATE, "api_key": key}))
            health = await client.get("/health")
            health_seconds = time.monotonic() - started
            answer = await keyed
            answer_seconds = time.monotonic() - started
            ready = await client.get("/ready")
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        return health, health_seconds, answer, answer_seconds, ready

    health, health_seconds, answer, answer_seconds, ready = run_app(app, scenario)
    assert health.status_code == 200 and health_seconds < 0.4  # the key lookup never held the event loop
    assert answer.status_code == 503 and "key database is unavailable" in answer.json()["error"]
    assert int(answer.headers["retry-after"]) >= 1 and answer_seconds < 5  # once 30 s, then a 500
    assert ready.status_code == 503 and "key database" in ready.json()["error"]


@pytest.mark.parametrize("damage", ["deleted", "corrupted", "a directory"])
def test_a_broken_database_is_503_not_ready_and_logged_in_one_line(tmp_path, damage, caplog):
    import logging
    import shutil
    import time

    path = tmp_path / "carousel.db"
    with caplog.at_level(logging.INFO), service(tmp_path) as client:
        key = Database(path).add_key("k").key
        assert client.post("/translate", json={**TRANSLATE, "api_key": key}).status_code == 200
        for suffix in ("", "-wal", "-shm"):
            (tmp_path / f"carousel.db{suffix}").unlink(missing_ok=True)
        if damage == "corrupted":
            path.write_bytes(b"not a database at all, " * 100)
        elif damage == "a directory":
            path.mkdir()
        answers = [client.post("/translate", json={**TRANSLATE, "api_key": key}) for _ in range(3)]
        assert [a.status_code for a in answers] == [503] * 3, answers[0].text
        assert "key database is unavailable" in answers[0].json()["error"]
        ready = client.get("/ready")
        assert ready.status_code == 503 and "key database" in ready.json()["error"]
        assert not path.is_file() or damage == "corrupted"  # never made again behind the admin's back
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
        Database(path).add_key("again", key="k" * 43)
        deadline = time.monotonic() + 30
        while client.get("/ready").status_code != 200:  # a background probe finds it working again
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert client.post("/translate", json={**TRANSLATE, "api_key": "k" * 43}).status_code == 200
    assert not [r for r in caplog.records if r.exc_info]  # no traceback
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR and "key database" in r.getMessage()]) == 1


def test_generated_keys_never_start_with_a_dash_which_a_command_line_reads_as_an_option(tmp_path, monkeypatch):
    import secrets as secrets_module

    draws = iter(["-looks-like-an-option-" + "x" * 21, "a-real-key-" + "y" * 32])
    monkeypatch.setattr(secrets_module, "token_urlsafe", lambda n: next(draws))
    database = Database(tmp_path / "keys.db")
    assert database.add_key("alice").key.startswith("a-real-key-")
