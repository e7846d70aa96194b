"""The translation memory in the service: what it holds is answered before the model and marked in
`sentenceMemory`; accepted suggestions feed it; it is off unless configured (service/translation.py).

The stand-in translator upper-cases and records every sentence it gets, so a test sees both which
sentences came from the memory and that the model never saw them."""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import pytest
from pydantic import ValidationError

from carousel.service.database import Database
from carousel.service.memory import TranslationMemory
from carousel.service.settings import ServiceSettings
from tests.helpers import StandInTranslator, stand_in_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


@contextmanager
def service(tmp_path, entries=(), **settings):
    """A server with a key-less database holding `entries` (source, target) es→en; memory on unless said."""
    models = tmp_path / "models"
    models.mkdir(parents=True, exist_ok=True)
    TranslationMemory(Database(tmp_path / "carousel.db")).add("es", "en", entries, origin="test") if entries else None
    translator = StandInTranslator()
    settings = {"memory": True, "keys_required": False, **settings}
    app = stand_in_app(models, translator, database=tmp_path / "carousel.db", **settings)
    with TestClient(app) as client:
        assert app.state.registry.wait_until_loaded(30)
        yield client, translator


def translated(client, q, **fields):
    answer = client.post("/translate", json={"q": q, "source": "es", "target": "en", **fields})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_stored_sentence_is_answered_as_stored_and_never_reaches_the_model(tmp_path):
    with service(tmp_path, [("Hola, mundo.", "Hello, world.")]) as (client, translator):
        answer = translated(client, "¡HOLA,  mundo!")
        assert answer == {"translatedText": "Hello, world.", "sentenceMemory": [
            {"source": "¡HOLA,  mundo!", "translation": "Hello, world.", "memory": True}]}
        assert translator.batches == []


def test_a_string_of_two_sentences_takes_one_from_the_memory_and_one_from_the_model(tmp_path):
    with service(tmp_path, [("Guardar el archivo", "Save the file")]) as (client, translator):
        answer = translated(client, "  guardar el archivo.  Luego cerrar.\n")
        assert answer["translatedText"] == "  Save the file  LUEGO CERRAR.\n"
        assert [(s["source"], s["memory"]) for s in answer["sentenceMemory"]] == [
            ("guardar el archivo.", True), ("Luego cerrar.", False)]
        assert translator.batches == [["Luego cerrar."]]


def test_a_whole_string_the_memory_holds_counts_as_one_sentence(tmp_path):
    stored = ("Pulse Aceptar. Se guardará.", "Press OK. It will be saved.")
    with service(tmp_path, [stored]) as (client, translator):
        answer = translated(client, ["pulse aceptar.  Se guardará", "Se guardará."])
        assert answer["translatedText"] == ["Press OK. It will be saved.", "SE GUARDARÁ."]
        assert answer["sentenceMemory"][0] == [
            {"source": "pulse aceptar.  Se guardará", "translation": "Press OK. It will be saved.", "memory": True}]
        assert translator.batches == [["Se guardará."]]


def test_html_sentences_are_looked_up_between_the_tags(tmp_path):
    with service(tmp_path, [("Abrir", "Open")]) as (client, translator):
        answer = translated(client, "<p>Abrir</p><p>Cerrar</p>", format="html")
        assert answer["translatedText"] == "<p>Open</p><p>CERRAR</p>"
        assert translator.batches == [["Cerrar"]]


def test_an_accepted_suggestion_answers_the_next_request(tmp_path):
    with service(tmp_path, suggestions=True) as (client, translator):
        assert translated(client, "Buenos días")["translatedText"] == "BUENOS DÍAS"
        suggestion = {"q": "Buenos días", "s": "Good morning", "source": "es", "target": "en"}
        assert client.post("/suggest", json=suggestion).json() == {"success": True}
        answer = translated(client, "buenos días.")
        assert answer["translatedText"] == "Good morning" and answer["sentenceMemory"][0]["memory"] is True
        assert translator.batches == [["Buenos días"]]  # only the request before the suggestion
    rows = TranslationMemory(Database(tmp_path / "carousel.db")).entries()
    assert [(r.source_text, r.target_text, r.origin) for r in rows] == [("Buenos días", "Good morning", "suggestion")]


def test_suggestions_stay_out_of_the_memory_while_it_is_off(tmp_path):
    with service(tmp_path, suggestions=True, memory=False) as (client, _):
        client.post("/suggest", json={"q": "Buenos días", "s": "Good morning", "source": "es", "target": "en"})
    assert TranslationMemory(Database(tmp_path / "carousel.db")).counts() == []


def test_with_the_memory_off_nothing_is_looked_up(tmp_path, monkeypatch):
    def refuse(*arguments, **keywords):
        raise AssertionError("the memory was looked up")

    monkeypatch.setattr(TranslationMemory, "lookup", refuse)
    with service(tmp_path, [("Hola", "Hello")], memory=False) as (client, translator):
        assert translated(client, "Hola") == {"translatedText": "HOLA"}  # no sentenceMemory either
        assert translator.batches == [["Hola"]]


def test_the_memory_needs_a_database():
    with pytest.raises(ValidationError, match="memory needs a database"):
        ServiceSettings(memory=True)


def test_a_memory_that_cannot_be_read_leaves_the_translation_to_the_model(tmp_path, caplog):
    with service(tmp_path, [("Hola", "Hello")]) as (client, translator):
        for path in tmp_path.glob("carousel.db*"):
            path.unlink()  # the memory's database is gone: translated anyway, never a 500
        answer = translated(client, "Hola")
        assert answer["translatedText"] == "HOLA" and answer["sentenceMemory"][0]["memory"] is False
        assert "translation memory unavailable" in caplog.text


def test_a_pair_without_entries_and_alternatives_and_confidence_fields_with_hits(tmp_path):
    with service(tmp_path, [("Hola", "Hello")]) as (client, _):
        answer = translated(client, "Hola. Adiós.", alternatives=1, return_scores=True, return_alignment=True)
        assert answer["translatedText"] == "Hello ADIÓS."
        assert answer["alternatives"] == [] and answer["scores"] == pytest.approx(-0.25)
        assert [a["translation"] for a in answer["alignment"]] == ["Hello", "ADIÓS."]


def test_a_file_route_takes_lines_from_the_memory(tmp_path):
    with service(tmp_path, [("Primera línea", "First line")]) as (client, translator):
        response = client.post("/translate_file", data={"source": "es", "target": "en"},
                               files={"file": ("a.txt", "Primera línea\nSegunda línea\n".encode())})
        assert response.status_code == 200, response.text
        download = client.get(response.json()["translatedFileUrl"])
        assert download.content.decode() == "First line\nSEGUNDA LÍNEA\n"
        assert translator.batches == [["Segunda línea"]]
