"""The web page's controls in Chromium (Debian's, driven by playwright as in tests/test_web_page.py), at a
desktop and a phone width, on an es↔en server: the settings it starts with (/frontend/settings: "Detect
language"), the character count against the limit, translation as you type (debounced; an answer to an
older text dropped), copy, suggest a better translation, swap with "Detect language", errors in plain
words, and the interface in Spanish for a browser that asks for Spanish."""

from __future__ import annotations

import json

import pytest

from carousel.service.database import Database
from tests.helpers import page_in_chromium
from tests.test_web_page import PHONE, overflowing

pytestmark = pytest.mark.slow  # a browser and a server per test: the full run, not the fast loop

VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": PHONE}
SPANISH = "Y murió Elimelech, marido de Noemi, y quedó ella con sus dos hijos."
SPANISH_2 = "Los cuales tomaron para sí mujeres de Moab."
FRENCH = "Où est la gare ? Je voudrais prendre le train de huit heures pour Paris."
LIMIT = 300
TYPING_PAUSE_MS = 300  # the server's frontend_timeout_ms in these tests
SLOW_MS = 60_000  # a translation on a loaded 2-core machine


def service_settings(tmp_path) -> dict:
    database = tmp_path / "carousel.db"
    Database(database)  # created, as `carousel keys` leaves it
    return {"database": database, "suggestions": True, "keys_required": False, "max_chars": LIMIT,
            "frontend_timeout_ms": TYPING_PAUSE_MS}


def is_translation(response) -> bool:
    return response.url.endswith("/translate") and response.request.method == "POST"


def options(page, select: str) -> list[str]:
    return page.eval_on_selector_all(f"{select} option", "os => os.map(o => o.value)")


def wait_for_output(page, text: str) -> None:
    """Until the output box shows `text` (polled here: the page's CSP forbids the eval of string predicates)."""
    for _ in range(600):
        if page.inner_text("#output") == text:
            return
        page.wait_for_timeout(50)
    assert page.inner_text("#output") == text


def release(route, translation: str) -> None:
    """Answer a held /translate request with `translation`, if the page still waits for it."""
    try:
        route.fulfill(status=200, content_type="application/json", body=json.dumps({"translatedText": translation}))
    except Exception:  # the page gave up on that request already (it aborts an older one): dropped too
        pass


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_typing_copying_suggesting_swapping_and_plain_errors(two_way_models_dir, tmp_path, viewport):
    settings = service_settings(tmp_path)
    with page_in_chromium(two_way_models_dir, settings, viewport=VIEWPORTS[viewport], locale="en-US",
                          permissions=["clipboard-read", "clipboard-write"]) as (page, url, errors):
        sent = []
        page.on("request", lambda r: sent.append(json.loads(r.post_data)) if r.url.endswith("/translate") else None)
        page.goto(f"{url}/")
        page.wait_for_selector("#target option", state="attached")

        # /frontend/settings: "Detect language" into English at start; each language once
        assert page.input_value("#source") == "auto" and page.input_value("#target") == "en"
        assert options(page, "#source") == ["auto", "en", "es"] and options(page, "#target") == ["en", "es"]  # by name
        assert page.inner_text("#chars") == f"0 / {LIMIT} characters"
        assert page.is_hidden("#copy") and page.is_hidden("#suggest") and page.is_hidden("#suggest-box")

        # Typing: one request once the typing pauses, no click
        with page.expect_response(is_translation, timeout=SLOW_MS) as response:
            page.locator("#text").press_sequentially(SPANISH)
        answer = response.value.json()
        wait_for_output(page, answer["translatedText"])
        assert len(sent) == 1 and sent[0]["q"] == SPANISH and sent[0]["source"] == "auto"
        assert "detected Spanish" in page.inner_text("#output-meta")
        assert page.inner_text("#chars") == f"{len(SPANISH)} / {LIMIT} characters"

        # An answer to a text no longer in the box is dropped: the box was emptied meanwhile
        held = []
        page.route("**/translate", lambda route: held.append(route))
        page.fill("#text", "Hola.")
        while not held:
            page.wait_for_timeout(50)
        page.fill("#text", "")
        page.wait_for_timeout(TYPING_PAUSE_MS + 200)
        release(held[0], "STALE")
        page.wait_for_timeout(300)
        assert page.inner_text("#output") == "" and page.inner_text("#chars") == f"0 / {LIMIT} characters"
        page.unroute("**/translate")

        # An older text's answer that arrives after a newer one is dropped
        held = []
        page.route("**/translate", lambda route: held.append(route) if not held else route.continue_())
        page.fill("#text", "Hola.")
        while not held:
            page.wait_for_timeout(50)
        with page.expect_response(is_translation, timeout=SLOW_MS) as response:
            page.fill("#text", SPANISH_2)
        newer = response.value.json()["translatedText"]
        wait_for_output(page, newer)
        release(held[0], "STALE")
        page.wait_for_timeout(300)
        assert page.inner_text("#output") == newer
        page.unroute("**/translate")

        # Copy: the translation itself into the clipboard
        page.click("#copy")
        page.wait_for_selector("#copy-done:has-text('Copied')")
        assert page.evaluate("navigator.clipboard.readText()") == newer

        # Suggest: the box opens with the translation; the suggestion is stored with the detected source
        page.click("#suggest")
        assert page.input_value("#suggestion") == newer
        page.fill("#suggestion", "Who took wives of the women of Moab.")
        with page.expect_response(lambda r: r.url.endswith("/suggest"), timeout=SLOW_MS) as response:
            page.click("#suggest-send")
        assert response.value.ok
        page.wait_for_selector("#suggest-result:has-text('Thank you')")
        stored = Database(settings["database"]).suggestions()
        assert [(s.q, s.s, s.source, s.target) for s in stored] == [
            (SPANISH_2, "Who took wives of the women of Moab.", "es", "en")]

        # Swap with "Detect language": English (the target) into Spanish (the language detected)
        with page.expect_response(is_translation, timeout=SLOW_MS):
            page.click("#swap")
        assert (page.input_value("#source"), page.input_value("#target")) == ("en", "es")
        assert page.input_value("#text") == newer and sent[-1]["source"] == "en"

        # Errors in plain words: French with "Detect language", and a text over the limit
        page.select_option("#source", "auto")
        page.fill("#text", FRENCH)
        page.click("#go")
        wait_for_output(page, "This text looks like French; this server translates English and Spanish.")
        assert page.is_hidden("#copy") and page.is_hidden("#suggest")
        page.fill("#text", "a" * (LIMIT + 1))
        page.click("#go")
        wait_for_output(page, f"This text is {LIMIT + 1} characters long; this server translates up to {LIMIT} at a time.")
        assert "over" in page.get_attribute("#chars", "class")
        assert overflowing(page) == {"scrolls": False, "past": []}
        assert errors == []


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_a_browser_in_spanish_gets_the_page_in_spanish(two_way_models_dir, tmp_path, viewport):
    with page_in_chromium(two_way_models_dir, service_settings(tmp_path), viewport=VIEWPORTS[viewport],
                          locale="es-ES") as (page, url, errors):
        page.goto(f"{url}/")
        page.wait_for_selector("#target option", state="attached")
        assert page.get_attribute("html", "lang") == "es"
        assert page.inner_text("#go") == "Traducir" and page.get_attribute("#text", "placeholder") == "Escribe aquí…"
        assert page.eval_on_selector_all("#source option", "os => os.map(o => o.textContent)") == [
            "Detectar idioma", "español", "inglés"]
        assert page.inner_text("#chars") == f"0 / {LIMIT} caracteres"
        page.fill("#text", FRENCH)
        page.click("#go")
        wait_for_output(page, "Este texto parece estar en francés; este servidor traduce español e inglés.")
        with page.expect_response(is_translation, timeout=SLOW_MS):
            page.fill("#text", SPANISH)
        page.wait_for_selector("#output-meta:has-text('detectado: español')")
        assert page.inner_text("#copy") == "Copiar" and page.inner_text("#suggest") == "Sugerir una traducción mejor"
        assert overflowing(page) == {"scrolls": False, "past": []}
        assert errors == []


def test_a_browser_in_another_language_gets_the_page_in_english(two_way_models_dir, tmp_path):
    with page_in_chromium(two_way_models_dir, service_settings(tmp_path), locale="de-DE") as (page, url, errors):
        page.goto(f"{url}/")
        page.wait_for_selector("#target option", state="attached")
        assert page.get_attribute("html", "lang") == "en" and page.inner_text("#go") == "Translate"
        assert errors == []
