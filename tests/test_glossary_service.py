"""Glossaries in the service and on the command line: storage (service/glossary_store.py), the routes
and the `glossary` field (service/glossaries.py), batching with and without glossaries (service/queue.py),
`carousel glossaries` and `carousel translate --glossary`; bad input each with a clear error."""

from __future__ import annotations

import asyncio
import io
import warnings
from contextlib import contextmanager

import pytest

from carousel.cli import main
from carousel.model.glossary import MAX_TERMS, Glossary
from carousel.model.search import SearchConfig
from carousel.model.translator import Translation
from carousel.service.database import Database
from carousel.service.glossary_store import GlossaryStore
from tests.helpers import StandInTranslator, run_with_queue, stand_in_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

TERMS = [["paquete", "PKG"], ["sistema de archivos", "FS"]]


class GlossaryStandIn(StandInTranslator):
    """Upper-cases, then writes each term's target term over the source term (as enforcement would)."""

    def __init__(self):
        super().__init__()
        self.glossaries: list = []

    def translate(self, sentences, search, batch_tokens, glossaries=None):
        self.glossaries.append(glossaries)
        results = super().translate(sentences, search, batch_tokens)
        for i, glossary in enumerate(glossaries or []):
            if glossary is not None:
                text = sentences[i]
                for match in reversed(glossary.matches(text)):
                    text = text[:match.start] + match.target + text[match.end:]
                results[i] = [Translation(text.upper(), -0.5, [], [])]
        return results


@contextmanager
def service(tmp_path, database=True, **settings):
    models = tmp_path / "models"
    models.mkdir(parents=True, exist_ok=True)
    translator = GlossaryStandIn()
    if database:
        settings = {"database": tmp_path / "carousel.db", "keys_required": False, **settings}
    app = stand_in_app(models, translator, **settings)
    with TestClient(app) as client:
        assert app.state.registry.wait_until_loaded(30)
        client.translator = translator
        yield client


def translate(client, **fields):
    return client.post("/translate", json={"q": "Instale el paquete.", "source": "es", "target": "en", **fields})


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([*map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


# -- the routes --------------------------------------------------------------------------------------


def test_a_stored_glossary_is_listed_used_by_name_or_id_replaced_and_removed(tmp_path):
    with service(tmp_path) as client:
        created = client.post("/glossaries", json={"name": "debian", "source": "ES", "target": "en", "terms": TERMS})
        assert created.status_code == 200, created.text
        entry = created.json()
        assert entry == {"id": entry["id"], "name": "debian", "source": "es", "target": "en", "terms": 2}
        assert client.get("/glossaries").json() == [entry]
        assert client.get("/glossaries?source=en").json() == []
        assert translate(client, glossary="debian").json()["translatedText"] == "INSTALE EL PKG."
        assert translate(client, glossary=entry["id"]).json()["translatedText"] == "INSTALE EL PKG."
        assert translate(client).json()["translatedText"] == "INSTALE EL PAQUETE."
        replaced = client.post("/glossaries", json={"name": "debian", "source": "es", "target": "en",
                                                    "tsv": "paquete\tBUNDLE\n"}).json()
        assert replaced["id"] == entry["id"] and replaced["terms"] == 1
        assert translate(client, glossary="debian").json()["translatedText"] == "INSTALE EL BUNDLE."
        assert client.delete("/glossaries/debian").json() == {"success": True}
        assert client.delete("/glossaries/debian").status_code == 404
        gone = translate(client, glossary="debian")
        assert gone.status_code == 400 and "no glossary 'debian'" in gone.json()["error"]


def test_inline_glossaries_as_pairs_objects_or_a_form_field_and_without_a_database(tmp_path):
    with service(tmp_path, database=False) as client:
        objects = [{"source": "paquete", "target": "PKG"}]
        assert translate(client, glossary=TERMS).json()["translatedText"] == "INSTALE EL PKG."
        assert translate(client, glossary=objects).json()["translatedText"] == "INSTALE EL PKG."
        form = client.post("/translate", data={"q": "el paquete", "source": "es", "target": "en",
                                               "glossary": '[["paquete", "PKG"]]'})
        assert form.json()["translatedText"] == "EL PKG"
        stored = translate(client, glossary="debian")
        assert stored.status_code == 403 and "database" in stored.json()["error"]
        assert client.post("/glossaries", json={"name": "x", "source": "es", "target": "en",
                                                "terms": TERMS}).status_code == 403


@pytest.mark.parametrize("glossary, status, message", [
    ([["", "PKG"]], 400, "term 1: the source term is empty"),
    ([["paquete", ""]], 400, "term 1: the target term is empty"),
    ([["paquete"]], 400, "term 1: give a source term and a target term"),
    ([["a" * 201, "b"]], 400, "201 characters"),
    ("[not json", 400, "not a JSON list"),
    ({"source": "paquete"}, 400, "invalid field 'glossary'"),
    (True, 400, "invalid field 'glossary'"),
])
def test_bad_inline_glossaries_are_a_400_naming_the_problem(tmp_path, glossary, status, message):
    with service(tmp_path, database=False) as client:
        answer = translate(client, glossary=glossary)
        assert answer.status_code == status and message in answer.json()["error"], answer.text


def test_a_term_longer_than_the_text_is_no_match_and_no_error(tmp_path):
    with service(tmp_path, database=False) as client:
        answer = translate(client, q="paquete", glossary=[["paquete de software libre", "free software package"]])
        assert answer.status_code == 200 and answer.json()["translatedText"] == "PAQUETE"


def test_a_glossary_of_another_language_pair_is_refused_naming_both(tmp_path):
    with service(tmp_path) as client:
        client.post("/glossaries", json={"name": "en-es", "source": "en", "target": "es", "terms": [["file", "archivo"]]})
        answer = translate(client, glossary="en-es")
        assert answer.status_code == 400
        assert "is for en→es; this request translates es→en" in answer.json()["error"]
        auto = translate(client, glossary=TERMS, source="auto")
        assert auto.status_code == 400 and "source language" in auto.json()["error"]


@pytest.mark.parametrize("body, message", [
    ({"name": "12", "terms": TERMS}, "not digits alone"),
    ({"name": "a b", "terms": TERMS}, "invalid glossary name"),
    ({"name": "x"}, "give the glossary's terms"),
    ({"name": "x", "terms": []}, "no terms"),
    ({"name": "x", "tsv": "paquete\tPKG\nroto\n"}, "tsv, line 2: expected 'source<TAB>target'"),
    ({"name": "x", "terms": TERMS, "source": "español"}, "language codes"),
])
def test_bad_glossaries_to_store_are_a_400_naming_the_problem(tmp_path, body, message):
    with service(tmp_path) as client:
        answer = client.post("/glossaries", json={"source": "es", "target": "en", **body})
        assert answer.status_code == 400 and message in answer.json()["error"], answer.text


def test_100k_terms_are_stored_and_used_and_more_are_refused(tmp_path):
    terms = [[f"término{i}", f"term{i}"] for i in range(MAX_TERMS - 1)] + [["paquete", "PKG"]]
    with service(tmp_path) as client:
        stored = client.post("/glossaries", json={"name": "big", "source": "es", "target": "en", "terms": terms})
        assert stored.status_code == 200 and stored.json()["terms"] == MAX_TERMS
        assert translate(client, glossary="big").json()["translatedText"] == "INSTALE EL PKG."
        more = client.post("/glossaries", json={"name": "bigger", "source": "es", "target": "en",
                                                "terms": terms + [["uno", "one"]]})
        assert more.status_code == 413 and f"at most {MAX_TERMS}" in more.json()["error"]


def test_managing_glossaries_takes_a_key_when_keys_are_on(tmp_path):
    with service(tmp_path, keys_required=True, api_keys=["k" * 32]) as client:
        body = {"name": "x", "source": "es", "target": "en", "terms": TERMS}
        assert client.post("/glossaries", json=body).status_code == 403
        assert client.get("/glossaries").status_code == 403
        assert client.delete("/glossaries/x").status_code == 403
        assert client.post("/glossaries", json={**body, "api_key": "k" * 32}).status_code == 200
        assert client.get("/glossaries", headers={"Authorization": "Bearer " + "k" * 32}).json()[0]["name"] == "x"


PO = 'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\nmsgid "Instale el paquete."\nmsgstr ""\n'


@pytest.mark.parametrize("name, content, translated", [
    ("notes.txt", "Instale el paquete.\n", "INSTALE EL PKG.\n"),
    ("messages.po", PO, 'msgstr "INSTALE EL PKG."'),
])
def test_files_take_a_glossary_too(tmp_path, name, content, translated):
    with service(tmp_path) as client:
        client.post("/glossaries", json={"name": "debian", "source": "es", "target": "en", "terms": [["paquete", "PKG"]]})
        for glossary in ('[["paquete", "PKG"]]', "debian"):
            answer = client.post("/translate_file", files={"file": (name, io.BytesIO(content.encode()))},
                                 data={"source": "es", "target": "en", "glossary": glossary})
            assert answer.status_code == 200, answer.text
            download = answer.json()["translatedFileUrl"].rsplit("/", 1)[1]
            assert translated in client.get(f"/download_file/{download}").text
        other = client.post("/translate_file", files={"file": (name, io.BytesIO(content.encode()))},
                            data={"source": "es", "target": "en", "glossary": "nonexistent"})
        assert other.status_code == 400 and "no glossary 'nonexistent'" in other.json()["error"]


# -- batching: sentences with and without glossaries share batches -----------------------------------------


def test_requests_with_different_glossaries_share_one_batch():
    translator = GlossaryStandIn()
    first, second = Glossary([("paquete", "PKG")], "es", "en"), Glossary([("paquete", "BUNDLE")], "es", "en")

    async def scenario(queue):
        search = SearchConfig(beam_size=2)
        return await asyncio.gather(queue.submit(["el paquete", "otro"], search, glossary=first),
                                    queue.submit(["el paquete"], search),
                                    queue.submit(["el paquete"], search, glossary=second))

    results = run_with_queue(translator, scenario, max_wait_ms=200)
    assert [[n[0].text for n in r] for r in results] == [["EL PKG", "OTRO"], ["EL PAQUETE"], ["EL BUNDLE"]]
    assert len(translator.calls) == 1
    assert translator.glossaries == [[first, first, None, second]]


# -- storage and the command line ---------------------------------------------------------------------------


def test_the_command_line_adds_lists_shows_and_removes_glossaries(tmp_path, capsys):
    database = tmp_path / "carousel.db"
    terms = tmp_path / "terms.tsv"
    terms.write_text("# a comment\npaquete\tpackage\nPaquete\tbundle\n\nsistema de archivos\tfile system\n", encoding="utf-8")
    code, out, _ = cli(capsys, "glossaries", "add", "debian", terms, "--source", "es", "--target", "en",
                       "--term", "roto=broken", "--database", database)
    assert code == 0 and out.startswith("debian\t1\tes\ten\t3 terms")  # "Paquete" replaced "paquete": the last wins
    code, out, _ = cli(capsys, "glossaries", "list", "--database", database)
    assert out.splitlines() == ["name\tid\tsource\ttarget\tterms", "debian\t1\tes\ten\t3"]
    code, out, _ = cli(capsys, "glossaries", "show", "1", "--database", database)
    assert out.splitlines()[1:] == ["Paquete\tbundle", "sistema de archivos\tfile system", "roto\tbroken"]
    store = GlossaryStore(Database(database))
    assert [m.target for m in store.load(store.find("debian")).matches("El paquete")] == ["bundle"]
    assert cli(capsys, "glossaries", "remove", "debian", "--database", database)[0] == 0
    code, _, err = cli(capsys, "glossaries", "remove", "debian", "--database", database)
    assert code == 2 and "no glossary 'debian'" in err


@pytest.mark.parametrize("content, extra, message", [
    ("paquete\tpackage\nroto\n", [], "terms.tsv, line 2: expected 'source<TAB>target', found 1 field"),
    ("\tpackage\n", [], "terms.tsv, line 1: the source term is empty"),
    (None, ["--term", "roto"], "--term 'roto': write SOURCE=TARGET"),
    (None, [], "give a TSV file of terms or --term"),
])
def test_the_command_line_refuses_bad_glossaries_with_the_line(tmp_path, capsys, content, extra, message):
    terms = tmp_path / "terms.tsv"
    files = []
    if content is not None:
        terms.write_text(content, encoding="utf-8")
        files = [terms]
    code, _, err = cli(capsys, "glossaries", "add", "x", *files, "--source", "es", "--target", "en", *extra,
                       "--database", tmp_path / "carousel.db")
    assert code == 2 and message in err, err


def test_translate_takes_a_glossary_file(tmp_path, capsys, tiny_model_dir, tiny_test_pairs):
    source = tiny_test_pairs[0][0]
    word = source.split()[1].strip(".,;:")
    (tmp_path / "in.txt").write_text(source + "\n", encoding="utf-8")
    (tmp_path / "terms.tsv").write_text(f"{word}\tGLOSSARYTERM\n", encoding="utf-8")
    code, out, err = cli(capsys, "translate", "--model", tiny_model_dir, tmp_path / "in.txt", "--glossary",
                         tmp_path / "terms.tsv", "--quiet", "--beam", "2")
    assert code == 0, err
    assert "glossaryterm" in out.lower()
    (tmp_path / "bad.tsv").write_text("uno\tdos\ttres\n", encoding="utf-8")
    code, _, err = cli(capsys, "translate", "--model", tiny_model_dir, tmp_path / "in.txt", "--glossary",
                       tmp_path / "bad.tsv", "--quiet")
    assert code == 2 and "bad.tsv, line 1: expected 'source<TAB>target', found 3 fields" in err


# -- the web page ---------------------------------------------------------------------------------------------


@pytest.mark.slow  # a browser and a server: the full run, not the fast loop
def test_the_web_page_lists_the_pairs_glossaries_and_sends_the_chosen_one(tmp_path, models_dir, tiny_test_pairs):
    from tests.helpers import page_in_chromium

    source = tiny_test_pairs[0][0]
    word = source.split()[1].strip(".,;:")
    database = tmp_path / "carousel.db"
    store = GlossaryStore(Database(database))
    store.put("bible", Glossary([(word, "GLOSSARYTERM")], "es", "en"))
    store.put("reverse", Glossary([("word", "palabra")], "en", "es"))
    settings = {"database": database, "keys_required": False}
    with page_in_chromium(models_dir, settings) as (page, url, errors):
        page.goto(f"{url}/")
        page.select_option("#source", "es")
        page.wait_for_selector("#glossary-box:not([hidden])")
        assert page.eval_on_selector_all("#glossary option", "os => os.map(o => o.value)") == ["", "bible"]
        page.select_option("#glossary", "bible")
        page.uncheck("#live")
        page.fill("#text", source)
        with page.expect_request(lambda r: r.url.endswith("/translate") and r.method == "POST") as sent:
            page.click("#go")
        assert sent.value.post_data_json["glossary"] == "bible"
        page.wait_for_selector("#output:has-text('GLOSSARYTERM')", timeout=60_000)
        assert errors == []


def test_the_service_enforces_a_glossary_with_the_real_translator(models_dir, tiny_test_pairs):
    from carousel.service.app import create_app
    from carousel.service.settings import ServiceSettings

    source = tiny_test_pairs[0][0]
    word = source.split()[1].strip(".,;:")
    with TestClient(create_app(ServiceSettings(models_dir=models_dir))) as client:
        assert client.app.state.registry.wait_until_loaded(60)
        body = {"q": [source, tiny_test_pairs[1][0]], "source": "es", "target": "en", "beam_size": 2}
        plain = client.post("/translate", json=body).json()["translatedText"]
        answer = client.post("/translate", json={**body, "glossary": [[word, "GLOSSARYTERM"]]})
        assert answer.status_code == 200, answer.text
        translated = answer.json()["translatedText"]
        assert "glossaryterm" in translated[0].lower() and "glossaryterm" not in plain[0].lower()
