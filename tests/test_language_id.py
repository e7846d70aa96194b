"""Language identification (service/languages.py): real languages, honest confidences, no silent pass-through."""

from __future__ import annotations

import warnings

import pytest

from carousel.service.app import create_app
from carousel.service.languages import Detection, choose_source, language_name, shared_identifier
from carousel.service.settings import ServiceSettings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

FRENCH = "Où est la gare ? Je voudrais prendre le train de huit heures pour Paris."
GERMAN = "Wo ist der Bahnhof? Ich möchte den Zug um acht Uhr nach Berlin nehmen."
SPANISH = "Y murió Elimelech, marido de Noemi, y quedó ella con sus dos hijos;"
ENGLISH = "In the days when the judges judged, there was a famine in the land."


@pytest.fixture(scope="module")
def client(models_dir):
    app = create_app(ServiceSettings(models_dir=models_dir, quantize="none"))
    with TestClient(app) as client:
        assert app.state.registry.wait_until_loaded(120)
        yield client


def test_identifier_names_languages_no_model_serves():
    identifier = shared_identifier()
    for text, code in [(FRENCH, "fr"), (GERMAN, "de"), (SPANISH, "es"), (ENGLISH, "en"),
                       ("Где находится вокзал?", "ru"), ("Dove si trova la stazione?", "it")]:
        ranked = identifier.detect(text)
        assert ranked[0].language == code, (text, ranked[:3])
        assert ranked[0].confidence > 25 and ranked[0].confidence > 2 * ranked[1].confidence
    assert all(d.confidence == 0 for d in identifier.detect("1234 !!"))  # no letters, no evidence
    assert language_name("fr") == "French" and language_name("nb") == "Norwegian Bokmål"


def test_auto_takes_a_served_language_only_when_it_is_nearly_as_likely():
    served = ["es", "en"]
    assert choose_source([Detection("fr", 90.0), Detection("es", 5.0)], served) == (Detection("fr", 90.0), False)
    assert choose_source([Detection("pt", 40.0), Detection("es", 30.0)], served) == (Detection("es", 30.0), True)
    assert choose_source([Detection("en", 60.0)], served) == (Detection("en", 60.0), True)
    assert choose_source([Detection("zh", 0.0)], served) == (Detection("es", 0.0), True)


def test_weak_evidence_of_an_unserved_language_is_not_a_refusal():
    hello = [Detection("st", 17.3), Detection("it", 9.3), Detection("es", 6.7), Detection("en", 4.2)]
    assert choose_source(hello, ["en", "es"], target="es") == (Detection("en", 4.2), True)  # translated, not passed through
    assert choose_source(hello, ["es", "en"], target="en") == (Detection("es", 6.7), True)
    # no served language has any evidence at all: refused rather than guessed (tests below)
    assert choose_source([Detection("st", 17.3)], ["es", "en"], target="en") == (Detection("st", 17.3), False)
    sure = [Detection("fr", 54.5), Detection("en", 3.1)]  # "Bonjour": French on evidence
    assert choose_source(sure, ["es", "en"], target="en") == (Detection("fr", 54.5), False)


def test_a_greeting_with_source_auto_is_translated_not_refused(client):
    assert shared_identifier().detect("Hola")[0].language != "es"  # a single word is weak evidence
    response = client.post("/translate", json={"q": "Hola", "source": "auto", "target": "en"})
    assert response.status_code == 200, response.text
    assert response.json()["detectedLanguage"]["language"] == "es"


def test_detect_reports_the_actual_language(client):
    ranked = client.post("/detect", json={"q": FRENCH}).json()
    assert ranked[0]["language"] == "fr" and ranked[0]["confidence"] > 90
    assert all(0 <= d["confidence"] <= 100 for d in ranked)
    assert client.post("/detect", data={"q": "hola, ¿qué tal?"}).json()[0]["language"] == "es"
    assert [d["confidence"] for d in client.post("/detect", json={"q": "1234"}).json()] == [0.0, 0.0]


def test_french_with_source_auto_is_refused_naming_the_language(client):
    response = client.post("/translate", json={"q": FRENCH, "source": "auto", "target": "en"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert "French (fr" in error and "es" in error, error
    # one French string in a list refuses the request: nothing is passed through silently
    listed = client.post("/translate", json={"q": [SPANISH, FRENCH], "source": "auto", "target": "en"})
    assert listed.status_code == 400 and "French" in listed.json()["error"]


def test_explicit_source_is_respected_and_auto_still_serves_its_languages(client):
    explicit = client.post("/translate", json={"q": FRENCH, "source": "es", "target": "en"})
    assert explicit.status_code == 200 and "detectedLanguage" not in explicit.json()
    auto = client.post("/translate", json={"q": [SPANISH, ENGLISH], "source": "auto", "target": "en"}).json()
    assert [d["language"] for d in auto["detectedLanguage"]] == ["es", "en"]
    assert auto["translatedText"][1] == ENGLISH  # already in the target language


SHORT_FRENCH = "Le chat dort sur le canapé."  # French 14.4%, Spanish 2.4%, English 1.9%: no served evidence


def test_short_text_with_no_evidence_for_a_served_language_is_refused_not_guessed():
    ranked = shared_identifier().detect(SHORT_FRENCH)
    assert ranked[0].language == "fr" and ranked[0].confidence < 20  # weak evidence, below REFUSE_AT
    assert choose_source(ranked, ["es", "en"], target="en") == (ranked[0], False)
    assert choose_source(ranked, ["en", "es"], target="es") == (ranked[0], False)
    hola = shared_identifier().detect("Hola")  # weak too, but Spanish has a share of the evidence
    assert choose_source(hola, ["es", "en"], target="en")[1] is True


def test_short_french_with_source_auto_is_a_400_with_the_facts_for_a_page(client):
    response = client.post("/translate", json={"q": SHORT_FRENCH, "source": "auto", "target": "en"})
    assert response.status_code == 400, response.text
    body = response.json()
    assert "French (fr" in body["error"] and "no language this server translates is likely" in body["error"]
    assert body["detail"] == {"reason": "unserved_language", "language": "fr", "confidence": body["detail"]["confidence"],
                              "sure": False, "sources": ["es"], "target": "en", "served": ["es"]}
    sure = client.post("/translate", json={"q": FRENCH, "source": "auto", "target": "en"}).json()
    assert sure["detail"]["sure"] is True and sure["error"].startswith("detected French (fr")
