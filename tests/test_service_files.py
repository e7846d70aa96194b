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

from carousel.service.store import FileStore, StoreFull, StoreUnavailable
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


KEYS = ["key-of-client-a-0123456789abcdef", "key-of-client-b-0123456789abcdef", "key-of-client-c-0123456789abcdef"]


def test_a_store_full_of_other_clients_files_answers_507_with_retry_after_and_keeps_them(tmp_path):
    with service(tmp_path, api_keys=KEYS, max_stored_files=2, max_stored_files_per_client=1) as client:
        urls = [upload(client, f"{n}.txt", b"hola", api_key=key).json()["translatedFileUrl"]
                for n, key in enumerate(KEYS[:2])]
        response = upload(client, "third.txt", b"hola", api_key=KEYS[2])
        assert response.status_code == 507 and "full" in response.json()["error"]
        assert int(response.headers["Retry-After"]) >= 1
        assert all(client.get(url).status_code == 200 for url in urls)  # nobody's file was dropped


def test_one_client_cannot_fill_the_store_for_the_others(tmp_path):
    # 183 tiny uploads once made every client's upload fail for 45 minutes (429, Retry-After: 2713)
    with service(tmp_path, api_keys=KEYS, max_stored_files=6, max_stored_files_per_client=3) as client:
        flood = [upload(client, f"{n}.txt", b"hola", api_key=KEYS[0]) for n in range(10)]
        assert [r.status_code for r in flood] == [200] * 10  # each new file takes the place of its own oldest
        urls = [r.json()["translatedFileUrl"] for r in flood]
        assert [client.get(url).status_code for url in urls] == [404] * 7 + [200] * 3
        other = upload(client, "mine.txt", b"hola", api_key=KEYS[1])
        assert other.status_code == 200 and client.get(other.json()["translatedFileUrl"]).status_code == 200


def test_a_full_disk_is_507_naming_it_and_ready_fails_until_the_store_works(tmp_path, monkeypatch, caplog):
    import logging

    from carousel.service import store as store_module
    from tests.conftest import disk_full

    def no_space(path, data):
        raise disk_full()

    with service(tmp_path) as client, caplog.at_level(logging.INFO):
        assert client.get("/ready").status_code == 200
        with monkeypatch.context() as patch:
            patch.setattr(store_module, "write_atomically", no_space)
            patch.setattr(store_module.FileStore, "_probe", lambda self: (_ for _ in ()).throw(disk_full()), raising=False)
            answers = [upload(client, "a.txt", b"hola") for _ in range(3)]
            assert [a.status_code for a in answers] == [507] * 3
            assert "no space left" in answers[0].json()["error"] and "Retry-After" in answers[0].headers
            ready = client.get("/ready")
            assert ready.status_code == 503 and "file store" in ready.json()["error"]
        client.app.state.file_store.health.recheck_seconds = 0
        client.get("/ready")  # the probe now finds room
        _until(lambda: client.get("/ready").status_code == 200)
        assert upload(client, "a.txt", b"hola").status_code == 200
    assert not [r for r in caplog.records if r.exc_info]  # no traceback
    assert len([r for r in caplog.records if "no space left" in r.getMessage()]) == 1  # one line, not one a request


def _until(condition, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.02)


def test_a_translated_html_download_is_never_sniffed_framed_or_run_in_the_servers_origin(client):
    response = upload(client, "page.html", b"<p>hola</p><script>alert(1)</script>")
    download = client.get(response.json()["translatedFileUrl"])
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["x-frame-options"] == "DENY"
    assert "sandbox" in download.headers["content-security-policy"]
    assert "default-src 'none'" in download.headers["content-security-policy"]
    assert download.headers["content-disposition"].startswith("attachment")


def test_a_po_plural_bomb_is_a_400_naming_the_header(client):
    bomb = b'msgid ""\nmsgstr ""\n"Plural-Forms: nplurals=1000000; plural=n;\\n"\n\nmsgid "a"\nmsgid_plural "b"\nmsgstr[0] ""\n'
    response = upload(client, "bomb.po", bomb)
    assert response.status_code == 400, response.text[:200]
    assert "Plural-Forms" in response.json()["error"] and "1000000 plural forms" in response.json()["error"]


def test_a_paragraph_bomb_is_a_413_and_a_document_that_takes_too_long_is_stopped(tmp_path):
    from tests.helpers import docx_with_paragraphs

    with service(tmp_path, max_file_texts=1_000_000, max_file_chars=10_000_000, file_parse_seconds=0.5) as client:
        bomb = docx_with_paragraphs(600_000, "<w:p/>")  # about a minute to parse and write back
        refused = upload(client, "bomb.docx", bomb)
        assert refused.status_code == 413 and "XML elements" in refused.json()["error"]
        slow = docx_with_paragraphs(450_000, "<w:p/>")  # within the caps, but seconds to parse
        started = time.monotonic()
        stopped = upload(client, "slow.docx", slow)
        assert stopped.status_code == 413 and "longer than 0.5 seconds" in stopped.json()["error"]
        assert time.monotonic() - started < 10
        assert upload(client, "fine.txt", b"hola").status_code == 200  # the server is fine
    with service(tmp_path / "defaults") as client:
        refused = upload(client, "bomb.docx", docx_with_paragraphs(20_000))
        assert refused.status_code == 413 and "20000 paragraphs; the limit is 10000" in refused.json()["error"]


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
    first = store.put(b"a" * 10, "txt", client="a")
    second = store.put(b"b" * 10, "txt", client="b")
    with pytest.raises(StoreFull) as full:
        store.put(b"c", "txt", client="c")
    assert 1 <= full.value.retry_after <= 60
    old = time.time() - 120
    os.utime(tmp_path / first, (old, old))  # as if stored two minutes ago
    assert store.path(first) is None and not (tmp_path / first).exists()
    third = store.put(b"c", "txt", client="c")
    assert sorted(store.names()) == sorted([second, third])
    with pytest.raises(StoreFull) as too_big:
        store.put(b"x" * 101, "txt", client="d")
    assert too_big.value.retry_after is None


def test_store_counts_bytes_too(tmp_path):
    store = FileStore(tmp_path, max_files=10, max_bytes=100, ttl=60)
    store.put(b"a" * 60, "txt", client="a")
    with pytest.raises(StoreFull):
        store.put(b"b" * 60, "txt", client="b")
    assert store.put(b"b" * 40, "txt", client="b")


def test_a_clients_new_file_takes_the_place_of_its_own_oldest_never_anothers(tmp_path):
    store = FileStore(tmp_path, max_files=4, max_bytes=1000, ttl=60, client_files=2, client_bytes=100)
    mine = [store.put(b"m" * 10, "txt", client="me") for _ in range(3)]
    assert store.names() == sorted(mine[1:])  # over its quota of 2 files: its oldest went
    theirs = [store.put(b"t" * 10, "txt", client="them") for _ in range(2)]
    store.put(b"m" * 95, "txt", client="me")  # over its 100 bytes: both of its files go
    assert set(store.names()) >= set(theirs) and not set(mine) & set(store.names())


def test_store_names_ignore_the_clients_extension_tricks(tmp_path):
    store = FileStore(tmp_path, max_files=10, max_bytes=1000, ttl=60)
    name = store.put(b"x", "../../etc")
    assert name.endswith(".bin") and (tmp_path / name).is_file()
    assert store.path("../" + name) is None


def test_a_files_texts_go_to_the_queues_in_requests_within_the_sentence_limit(tmp_path):
    with service(tmp_path, max_sentences=5) as client:
        lines = "".join(f"Uno {n}. Dos {n}. Tres {n}.\n" for n in range(3)).encode()  # 9 sentences
        assert round_trip(client, "many.txt", lines) == lines.upper()  # once a 413 ("q holds 9 sentences")
        too_long = upload(client, "long.txt", b"Uno. Dos. Tres. Cuatro. Cinco. Seis.\n")
        assert too_long.status_code == 413 and "6 sentences" in too_long.json()["error"]


# -- one directory shared by several server processes (replicas on one volume) -----------------------------------


def _put_files(directory: str, process: int) -> list[str]:
    """Five uploads of five different clients through a store of this process's own; what each got."""
    store = FileStore(directory, max_files=5, max_bytes=10_000, ttl=60)
    outcomes = []
    for n in range(5):
        try:
            outcomes.append(store.put(b"x" * 100, "txt", client=f"client-{process}-{n}"))
        except StoreFull:
            outcomes.append("full")
        except StoreUnavailable as error:  # two writers in each other's way (as happens without the lock)
            outcomes.append(f"unavailable: {error}")
    return outcomes


def test_processes_sharing_the_directory_never_store_more_than_its_bounds(tmp_path):
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(4) as pool:
        outcomes = [o for result in pool.starmap(_put_files, [(str(tmp_path), p) for p in range(4)]) for o in result]
    stored = [o for o in outcomes if o != "full"]
    assert outcomes.count("full") == 15 and len(stored) == 5, outcomes  # 20 uploads raced for 5 places
    assert FileStore(tmp_path, max_files=5, max_bytes=10_000, ttl=60).names() == sorted(stored)


def test_a_file_stored_by_one_process_is_found_and_counted_by_another(tmp_path):
    first = FileStore(tmp_path, max_files=10, max_bytes=1000, ttl=60, client_files=1)
    second = FileStore(tmp_path, max_files=10, max_bytes=1000, ttl=60, client_files=1)
    name = first.put(b"one", "txt", client="alice")
    assert second.path(name) == tmp_path / name  # downloaded through the other replica
    other = second.put(b"two", "txt", client="alice")  # over alice's quota of 1: her own file makes room
    assert first.names() == [other]
    assert "alice" not in (tmp_path / ".owners.json").read_text()  # owners are hashed, never keys


def test_presentations_and_books_come_back_with_their_media_types_and_bad_ones_are_400s(client):
    import zipfile

    from tests.helpers import epub_with_chapters, pptx_with_slides

    slides = pptx_with_slides("<a:p><a:r><a:t>Hola </a:t></a:r><a:r><a:rPr b='1'/><a:t>amigo</a:t></a:r></a:p>")
    book = epub_with_chapters({"uno.xhtml": "<p>Buenos <em>días</em></p>"})
    for name, data, media_type, part, text in [
        ("deck.pptx", slides, "application/vnd.openxmlformats-officedocument.presentationml.presentation",
         "ppt/slides/slide1.xml", "<a:t>HOLA </a:t></a:r><a:r><a:rPr b=\"1\"/><a:t>AMIGO</a:t>"),
        ("book.epub", book, "application/epub+zip", "OEBPS/uno.xhtml", "<p>BUENOS <em>DÍAS</em></p>"),
    ]:
        response = upload(client, name, data)
        assert response.status_code == 200, response.text
        download = client.get(response.json()["translatedFileUrl"])
        assert download.headers["content-type"] == media_type
        assert text in zipfile.ZipFile(io.BytesIO(download.content)).read(part).decode()
    for name, data, words in [("deck.pptx", b"not a zip", "not a .pptx file"),
                              ("book.epub", epub_with_chapters({}, manifest={}), "no content documents")]:
        response = upload(client, name, data)
        assert response.status_code == 400 and words in response.json()["error"], response.text


# -- where the files live when no directory is configured ----------------------------------------------------


def test_a_server_without_a_files_directory_removes_its_own_when_it_stops(tmp_path):
    with service(tmp_path, files_dir=None) as client:
        directory = client.app.state.file_store.directory
        round_trip(client, "notes.txt", b"hola\n")  # a file nobody downloads again
        assert any(directory.iterdir())
    assert not directory.exists()


def test_a_configured_files_directory_and_its_files_outlive_the_server(tmp_path):
    with service(tmp_path, files_dir=tmp_path / "shared") as client:
        url = upload(client, "notes.txt", b"hola\n").json()["translatedFileUrl"]
    name = url.rsplit("/", 1)[1]
    assert (tmp_path / "shared" / name).read_bytes() == b"HOLA\n"  # another replica may still serve it


def test_a_temporary_store_is_removed_when_collected_even_unclosed():
    import gc

    store = FileStore.temporary(max_files=2, max_bytes=100, ttl=60)
    directory = store.directory
    store.put(b"x", "txt")
    del store
    gc.collect()
    assert not directory.exists()
