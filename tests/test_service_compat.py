"""LibreTranslate compatibility beyond /translate's JSON: where fields may come from (query string, forms,
JSON, `Authorization: Bearer`), `/frontend/settings`, and the API docs served without a CDN.

A stand-in translator (upper-cases) stands for the model: these tests are about the HTTP layer.
"""

from __future__ import annotations

import re
import warnings
from contextlib import contextmanager
from urllib.parse import urljoin

import pytest

from tests.helpers import StandInTranslator, stand_in_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


@contextmanager
def service(tmp_path, **settings):
    tmp_path.mkdir(parents=True, exist_ok=True)
    app = stand_in_app(tmp_path, StandInTranslator(), **settings)
    with TestClient(app) as client:
        assert app.state.registry.wait_until_loaded(30)
        yield client


@pytest.fixture
def open_client(tmp_path):
    with service(tmp_path) as client:
        yield client


@pytest.fixture
def keyed_client(tmp_path):
    with service(tmp_path, api_keys=["secret-key"]) as client:
        yield client


# -- where fields come from ------------------------------------------------------------------------


def test_translate_reads_every_field_from_the_query_string_without_a_body(keyed_client):
    response = keyed_client.post("/translate?q=Hola%20mundo&source=es&target=en&api_key=secret-key")
    assert response.status_code == 200, response.text
    assert response.json() == {"translatedText": "HOLA MUNDO"}


def test_repeated_q_in_the_query_string_is_a_batch(open_client):
    response = open_client.post("/translate?q=uno&q=dos&source=es&target=en")
    assert response.json() == {"translatedText": ["UNO", "DOS"]}


@pytest.mark.parametrize("body", ["json", "form", "multipart"])
def test_body_fields_win_over_the_query_string_and_the_rest_is_merged(open_client, body):
    url = "/translate?q=desde%20la%20url&source=es"
    fields = {"q": "desde el cuerpo", "target": "en"}
    if body == "json":
        response = open_client.post(url, json=fields)
    elif body == "form":
        response = open_client.post(url, data=fields)
    else:
        response = open_client.post(url, data=fields, files={"unused": (None, b"x")})
    assert response.status_code == 200, response.text
    assert response.json() == {"translatedText": "DESDE EL CUERPO"}


def test_detect_reads_q_from_the_query_string(open_client):
    response = open_client.post("/detect?q=el%20perro%20de%20la%20casa%20y%20los%20gatos")
    assert response.status_code == 200, response.text
    assert response.json()[0]["language"] == "es"


@pytest.mark.parametrize("where", ["json", "form", "query", "bearer"])
def test_api_key_is_accepted_wherever_libretranslate_clients_send_it(keyed_client, where):
    fields = {"q": "Hola", "source": "es", "target": "en"}
    if where == "json":
        response = keyed_client.post("/translate", json={**fields, "api_key": "secret-key"})
    elif where == "form":
        response = keyed_client.post("/translate", data={**fields, "api_key": "secret-key"})
    elif where == "query":
        response = keyed_client.post("/translate?api_key=secret-key", json=fields)
    else:
        response = keyed_client.post("/translate", json=fields, headers={"Authorization": "Bearer secret-key"})
    assert response.status_code == 200, response.text


def test_a_wrong_key_is_refused_wherever_it_comes_from(keyed_client):
    fields = {"q": "Hola", "source": "es", "target": "en"}
    assert keyed_client.post("/translate?api_key=wrong", json=fields).status_code == 403
    assert keyed_client.post("/translate", json=fields, headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert keyed_client.post("/translate", json=fields, headers={"Authorization": "Basic c2VjcmV0LWtleQ=="}).status_code == 403
    # a key in the body is the one that counts, even with a valid bearer token beside it
    wrong_in_body = keyed_client.post("/translate", json={**fields, "api_key": "wrong"},
                                      headers={"Authorization": "Bearer secret-key"})
    assert wrong_in_body.status_code == 403


def test_invalid_utf8_in_the_query_string_is_a_400_not_a_replacement_character(open_client):
    response = open_client.post("/translate?q=%FF&source=es&target=en")
    assert response.status_code == 400
    assert "UTF-8" in response.json()["error"]


def test_missing_fields_are_still_named(open_client):
    response = open_client.post("/translate?q=Hola")
    assert response.status_code == 400
    assert "source" in response.json()["error"] and "target" in response.json()["error"]


# -- /frontend/settings ----------------------------------------------------------------------------


def test_frontend_settings_has_libretranslates_shape_and_follows_the_settings(tmp_path):
    with service(tmp_path / "a", max_chars=1234) as client:
        answer = client.get("/frontend/settings").json()
    assert set(answer) >= {"charLimit", "frontendTimeout", "apiKeys", "keyRequired", "suggestions",
                           "filesTranslation", "supportedFilesFormat", "language"}
    assert answer["charLimit"] == 1234 and answer["keyRequired"] is False
    assert answer["filesTranslation"] is True
    assert {".txt", ".html", ".srt", ".po", ".docx", ".odt"} <= set(answer["supportedFilesFormat"])
    assert answer["language"] == {"source": {"code": "auto", "name": "Auto Detect"},
                                  "target": {"code": "en", "name": "English"}}

    with service(tmp_path / "b", api_keys=["k"], files_translation=False, frontend_language_source="es",
                 frontend_language_target="xx") as client:
        answer = client.get("/frontend/settings").json()
    assert answer["keyRequired"] is True
    assert answer["filesTranslation"] is False and answer["supportedFilesFormat"] == []
    assert answer["language"]["source"] == {"code": "es", "name": "Spanish"}
    assert answer["language"]["target"]["code"] == "en"  # a target no model serves falls back to one that is


# -- offline docs ----------------------------------------------------------------------------------


def test_docs_page_and_every_asset_it_references_come_from_the_app(open_client):
    page = open_client.get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    references = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", page.text)
    references += re.findall(r"""url\s*:\s*["']([^"']+)["']""", page.text)  # the OpenAPI document
    assert references, page.text
    assert not re.search(r"https?://", page.text), "the docs page must not load anything from another host"
    assert "/openapi.json" in references
    for reference in references:
        response = open_client.get(urljoin("http://testserver/docs", reference))
        assert response.status_code == 200, reference
        assert response.content, reference
    bundle = open_client.get("/docs/assets/swagger-ui-bundle.js")
    assert "SwaggerUIBundle" in bundle.text


def test_redoc_is_not_served_from_a_cdn(open_client):
    assert open_client.get("/redoc").status_code == 404


def test_docs_send_the_pages_protective_headers_and_allow_only_their_own_inline_script(open_client):
    import base64
    import hashlib

    page = open_client.get("/docs")
    policy = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "default-src 'self'" in policy
    assert page.headers["x-frame-options"] == "DENY" and page.headers["x-content-type-options"] == "nosniff"
    scripts = re.findall(r"<script>(.*?)</script>", page.text, re.S)
    assert scripts  # Swagger UI starts from one inline script: allowed by its hash, nothing else is
    for script in scripts:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy
    assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
