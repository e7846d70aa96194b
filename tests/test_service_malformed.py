"""Malformed and hostile requests, beyond those of tests/test_service.py: each is a 4xx JSON error naming the problem.

Bytes that are not UTF-8 in every body encoding, numbers JSON allows but Python refuses, wrong types and
nulls in every field, bodies without a declared type or length, enormous texts and batches at the
default limits, and out-of-range search values. The app runs with its default settings over a stand-in
translator: none of these requests may reach a translator.
"""

from __future__ import annotations

import json

import pytest

from carousel.service.settings import ServiceSettings
from tests.helpers import StandInTranslator, stand_in_app
from tests.test_service import assert_error, running

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
LIMITS = ServiceSettings()  # the defaults the app below runs with


def multipart(**fields: bytes) -> bytes:
    """A multipart/form-data body (boundary "b") with the fields' raw bytes."""
    parts = [b'--b\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (n.encode(), v) for n, v in fields.items()]
    return b"".join(parts) + b"--b--\r\n"


def fields(**extra) -> bytes:
    return json.dumps({"q": "Hola", "source": "es", "target": "en", **extra}).encode()


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    translator = StandInTranslator()
    with running(stand_in_app(tmp_path_factory.mktemp("models"), translator)) as client:
        yield client, translator


@pytest.fixture
def client(service):
    client, translator = service
    before = len(translator.calls)
    yield client
    assert len(translator.calls) == before, "a refused request reached the translator"


def test_a_well_formed_request_passes(service):
    client, _ = service
    assert client.post("/translate", content=fields(), headers={"content-type": JSON}).json() == {"translatedText": "HOLA"}


@pytest.mark.parametrize(
    "body, content_type, words",
    [
        # bodies that are not what they claim to be
        (b"q=\xff\xfe&source=es&target=en", FORM, ["UTF-8"]),  # raw bytes, not %-escapes
        (multipart(q=b"\xff\xfe", source=b"es", target=b"en"), "multipart/form-data; boundary=b", ["UTF-8"]),
        (b'{"q": "Hola", "source": "es", "target": "en", "beam_size": ' + b"9" * 5000 + b"}", JSON, ["digits"]),
        (b"\xef\xbb\xbf" + fields(), JSON, ["malformed JSON", "BOM"]),
        (b"", JSON, ["malformed JSON"]),
        (b"null", JSON, ["object"]),
        (b'"Hola"', JSON, ["object"]),
        (fields(), None, ["content type"]),
        (b"--b\r\n", "multipart/form-data", ["boundary"]),
        (b"&".join(b"f%d=1" % i for i in range(2_000)) + b"&q=a&source=es&target=en", FORM, ["fields"]),
        # wrong types and nulls
        (fields(q={"text": "Hola"}), JSON, ["q", "an object"]),
        (fields(q=[["Hola"]]), JSON, ["item 0", "a list"]),
        (fields(q=None), JSON, ["q", "null"]),
        (fields(q=["Hola", "", None]), JSON, ["item 2", "null"]),
        (fields(source=None), JSON, ["source"]),
        (fields(target=5), JSON, ["target"]),
        (fields(return_scores="maybe"), JSON, ["return_scores"]),
        (fields(return_alignment=[]), JSON, ["return_alignment"]),
        (fields(alternatives=1.5), JSON, ["alternatives"]),
        (fields(api_key=5), JSON, ["api_key"]),
        (fields().replace(b"}", b', "beam_size": NaN}'), JSON, ["beam_size", "finite"]),  # Python's json reads NaN
        (fields().replace(b"}", b', "beam_size": -Infinity}'), JSON, ["beam_size", "finite"]),
        (b"q=Hola&source=es&target=en&beam_size=wide", FORM, ["beam_size"]),
        (b"q=Hola&source=es&target=en&return_scores=perhaps", FORM, ["return_scores"]),
    ],
)
def test_malformed_bodies_are_400(client, body, content_type, words):
    headers = {"content-type": content_type} if content_type else {}
    assert_error(client.post("/translate", content=body, headers=headers), 400, *words)


@pytest.mark.parametrize(
    "body, content_type, words",
    [
        (b'{"q": ["Hola"]}', JSON, ["q"]),
        (b'{"q": null}', JSON, ["q"]),
        (b"q=\xff", FORM, ["UTF-8"]),
        (multipart(q=b"Hol\xe1"), "multipart/form-data; boundary=b", ["UTF-8"]),
    ],
)
def test_malformed_detect_bodies_are_400(client, body, content_type, words):
    assert_error(client.post("/detect", content=body, headers={"content-type": content_type}), 400, *words)


def test_enormous_texts_and_batches_are_413_at_the_default_limits(client):
    over = LIMITS.max_chars + 1
    assert_error(client.post("/translate", content=fields(q="a" * over), headers={"content-type": JSON}), 413, "characters")
    batch = fields(q=[""] * 50_000)  # small in bytes, far too many strings
    assert_error(client.post("/translate", content=batch, headers={"content-type": JSON}), 413, "strings")
    form = b"source=es&target=en&" + b"&".join([b"q=a"] * (LIMITS.max_batch_items + 1))
    assert_error(client.post("/translate", content=form, headers={"content-type": FORM}), 413, "strings")


def test_an_enormous_body_without_content_length_is_cut_off_413(client):
    def chunks():  # sent chunked: no Content-Length to refuse it by, so the stream is counted
        yield b'{"q": "'
        for _ in range(100):
            yield b"a" * 100_000
        yield b'", "source": "es", "target": "en"}'

    assert_error(client.post("/translate", content=chunks(), headers={"content-type": JSON}), 413, "limit")


@pytest.mark.parametrize(
    "body, content_type, words",
    [
        (fields(beam_size=-1), JSON, ["beam_size", "-1"]),
        (fields(beam_size=10**30), JSON, ["beam_size", "between 1 and"]),
        (fields(alternatives=10**30), JSON, ["alternatives", "between 0 and"]),
        (b"q=Hola&source=es&target=en&beam_size=-3", FORM, ["beam_size", "-3"]),
        (b"q=Hola&source=es&target=en&beam_size=99", FORM, ["beam_size", "99"]),
    ],
)
def test_search_values_out_of_range_are_422(client, body, content_type, words):
    assert_error(client.post("/translate", content=body, headers={"content-type": content_type}), 422, *words)
