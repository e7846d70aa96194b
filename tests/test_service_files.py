"""`POST /translate_file` and `GET /download_file/{name}` (service/files.py) and the file store behind them.

The stand-in translator upper-cases, so a downloaded file shows exactly which parts were translated.
"""

from __future__ import annotations

import io
import os
import time
import warnings
from contextlib import contextmanager

import pytest

from carousel.service.store import FileStore, StoreFull
from tests.helpers import StandInTranslator, stand_in_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


@contextmanager
def service(tmp_path, translator=None, **settings):
    models = tmp_path / "models"
    models.mkdir(parents=True, exist_ok=True)
    settings.setdefault("files_dir", tmp_path / "files")
    app = stand_in_app(models, translator or StandInTranslator(), **settings)
    with TestClient(app) as client:
        assert app.state.registry.wait_until_loaded(30)
        yield client


@pytest.fixture
def client(tmp_path):
    with service(tmp_path) as client:
        yield client


def upload(client, name: str, data: bytes, **fields):
    fields = {"source": "es", "target": "en", **fields}
    return client.post("/translate_file", data=fields, files={"file": (name, data)})


def round_trip(client, name: str, data: bytes) -> bytes:
    response = upload(client, name, data)
    assert response.status_code == 200, response.text
    url = response.json()["translatedFileUrl"]
    assert url.startswith("http://testserver/download_file/")
    download = client.get(url)
    assert download.status_code == 200
    return download.content


def test_text_html_and_subrip_files_come_back_translated(client):
    assert round_trip(client, "notes.txt", "Hola\n\n  mundo\n".encode()) == "HOLA\n\n  MUNDO\n".encode()
    page = round_trip(client, "page.html", b"<p class='a'>hola <b>amigo</b></p>").decode()
    assert page == "<p class='a'>HOLA <b>AMIGO</b></p>"
    subtitles = round_trip(client, "film.srt", b"1\n00:00:01,000 --> 00:00:02,000\nbuenas noches\n").decode()
    assert "00:00:01,000 --> 00:00:02,000\nBUENAS NOCHES" in subtitles


def test_gettext_template_comes_back_as_a_catalog(client):
    import polib

    template = b'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n#, c-format\nmsgid "Hay %d gatos"\nmsgstr ""\n'
    response = upload(client, "app.pot", template)
    assert response.json()["translatedFileUrl"].endswith(".po")
    catalog = polib.pofile(client.get(response.json()["translatedFileUrl"]).text)
    entry = catalog.find("Hay %d gatos")
    assert entry.msgstr == "HAY %d GATOS" and "fuzzy" in entry.flags
    assert catalog.metadata["Language"] == "en"


def test_docx_comes_back_with_its_media_type(client):
    import docx

    document = docx.Document()
    document.add_paragraph("Buenos días")
    buffer = io.BytesIO()
    document.save(buffer)
    response = upload(client, "letter.docx", buffer.getvalue())
    download = client.get(response.json()["translatedFileUrl"])
    assert download.headers["content-type"].startswith("application/vnd.openxmlformats-officedocument")
    assert docx.Document(io.BytesIO(download.content)).paragraphs[0].text == "BUENOS DÍAS"


def test_fields_may_come_from_the_query_string_and_the_key_from_a_bearer_token(tmp_path):
    with service(tmp_path, api_keys=["k"]) as client:
        refused = client.post("/translate_file?source=es&target=en", files={"file": ("a.txt", b"hola")})
        assert refused.status_code == 403
        accepted = client.post("/translate_file?source=es&target=en", files={"file": ("a.txt", b"hola")},
                               headers={"Authorization": "Bearer k"})
        assert accepted.status_code == 200, accepted.text
        assert client.get(accepted.json()["translatedFileUrl"]).content == b"HOLA"


@pytest.mark.parametrize(
    "name, data, fields, words",
    [
        ("paper.pdf", b"%PDF-1.4", {}, ["unsupported", ".pdf"]),
        ("noext", b"hola", {}, ["unsupported"]),
        ("bad.txt", b"\xff\xfe hola", {}, ["UTF-8"]),
        ("bad.docx", b"not a zip", {}, ["zip"]),
        ("a.txt", b"hola", {"target": ""}, ["target"]),
        ("a.txt", b"hola", {"target": "xx"}, ["xx"]),
    ],
)
def test_bad_uploads_are_400s_that_name_the_problem(client, name, data, fields, words):
    response = upload(client, name, data, **fields)
    assert response.status_code == 400, response.text
    for word in words:
        assert word in response.json()["error"]


def test_missing_file_part_and_non_multipart_bodies_are_400s(client):
    assert client.post("/translate_file", data={"source": "es", "target": "en"}).status_code == 400
    assert client.post("/translate_file", json={"source": "es", "target": "en"}).status_code == 400


def test_a_file_over_the_size_limit_is_a_413(tmp_path):
    with service(tmp_path, max_file_bytes=1000) as client:
        assert upload(client, "small.txt", b"hola " * 100).status_code == 200
        response = upload(client, "big.txt", b"hola " * 20_000)
        assert response.status_code == 413 and "limit" in response.json()["error"]


def test_a_full_store_answers_429_with_retry_after_and_keeps_earlier_files(tmp_path):
    with service(tmp_path, max_stored_files=2) as client:
        urls = [upload(client, f"{n}.txt", b"hola").json()["translatedFileUrl"] for n in range(2)]
        response = upload(client, "third.txt", b"hola")
        assert response.status_code == 429
        assert int(response.headers["Retry-After"]) >= 1
        assert all(client.get(url).status_code == 200 for url in urls)  # nobody's file was dropped


@pytest.mark.parametrize(
    "name",
    ["..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "%2E%2E", "%2e%2e%2fservice%2fapp.py",
     "0123456789abcdef0123456789abcdef.txt%00", "0123456789ABCDEF0123456789ABCDEF.txt", "..%5C..%5Cwin.ini"],
)
def test_download_names_cannot_leave_the_store(tmp_path, name):
    secret = tmp_path / "secret.txt"
    secret.write_text("do not serve")
    with service(tmp_path) as client:
        response = client.get(f"/download_file/{name}")
        assert response.status_code == 404, (name, response.text)
        assert "do not serve" not in response.text


def test_download_of_an_unknown_name_is_a_404(client):
    assert client.get("/download_file/0123456789abcdef0123456789abcdef.txt").status_code == 404


# -- the store itself ------------------------------------------------------------------------------


def test_store_expires_files_and_refuses_when_full(tmp_path):
    store = FileStore(tmp_path, max_files=2, max_bytes=100, ttl=60)
    first = store.put(b"a" * 10, "txt")
    second = store.put(b"b" * 10, "txt")
    with pytest.raises(StoreFull) as full:
        store.put(b"c", "txt")
    assert 1 <= full.value.retry_after <= 60
    old = time.time() - 120
    os.utime(tmp_path / first, (old, old))  # as if stored two minutes ago
    assert store.path(first) is None and not (tmp_path / first).exists()
    third = store.put(b"c", "txt")
    assert sorted(store.names()) == sorted([second, third])
    with pytest.raises(StoreFull) as too_big:
        store.put(b"x" * 101, "txt")
    assert too_big.value.retry_after is None


def test_store_counts_bytes_too(tmp_path):
    store = FileStore(tmp_path, max_files=10, max_bytes=100, ttl=60)
    store.put(b"a" * 60, "txt")
    with pytest.raises(StoreFull):
        store.put(b"b" * 60, "txt")
    assert store.put(b"b" * 40, "txt")


def test_store_names_ignore_the_clients_extension_tricks(tmp_path):
    store = FileStore(tmp_path, max_files=10, max_bytes=1000, ttl=60)
    name = store.put(b"x", "../../etc")
    assert name.endswith(".bin") and (tmp_path / name).is_file()
    assert store.path("../" + name) is None
