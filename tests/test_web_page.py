"""The web page on a 390 px phone screen, in a real browser (Debian's chromium driven by playwright, as in
tests/test_service.py): file upload to /translate_file and the download link, the message for an empty
box, and nothing wider than the screen once the alignment's sentence selector is filled. And the marks
on low-confidence sentences where the model is calibrated."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import page_in_chromium

pytestmark = pytest.mark.slow  # minutes of servers under load, fuzzing or a browser: run in full, not in the fast loop

PHONE = {"width": 390, "height": 844}
# Two long verses: the alignment's sentence selector lists each, and a select is as wide as its longest option.
TEXT = (
    "Y aconteció en los días que gobernaban los jueces, que hubo hambre en la tierra, y un varón de "
    "Beth-lehem de Judá fué á peregrinar en los campos de Moab, él y su mujer, y dos hijos suyos. "
    "Los cuales tomaron para sí mujeres de Moab, el nombre de la una Orpha, y el nombre de la otra Ruth."
)
SUBTITLES = (
    "1\n00:00:01,000 --> 00:00:03,500\nEn el principio creó Dios los cielos y la tierra.\n\n"
    "2\n00:00:04,000 --> 00:00:06,000\nY la tierra estaba desordenada y vacía.\n"
)
WIDE_ELEMENTS = ["#source", "#target", "#text", "#go", "#file", "#file-go", "#sentence", "#heatmap", "#api-key"]


def overflowing(page) -> dict:
    """Whether the page scrolls sideways, and the elements whose right edge is past the screen."""
    return page.evaluate(
        """(selectors) => ({
            scrolls: document.documentElement.scrollWidth > document.documentElement.clientWidth,
            past: selectors.filter((s) => {
                const e = document.querySelector(s);
                return e && e.offsetParent !== null
                    && e.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5;
            }),
        })""",
        WIDE_ELEMENTS,
    )


@pytest.mark.slow
def test_web_page_on_a_phone_uploads_a_file_says_when_the_box_is_empty_and_fits_the_screen(models_dir):
    with page_in_chromium(models_dir, viewport=PHONE, accept_downloads=True) as (page, url, errors):
        page.goto(f"{url}/")
        page.wait_for_selector("#file-box:not([hidden])")  # /frontend/settings: files accepted
        assert page.inner_text("#file-formats").split() == [
            ".txt", ".text", ".html", ".htm", ".srt", ".po", ".pot", ".docx", ".odt", ".pptx", ".epub",
        ]
        assert ".srt" in page.get_attribute("#file", "accept").split(",")
        page.select_option("#source", "es")

        # A translation with its alignment: two long sentences in the selector, still within 390 px.
        page.fill("#text", TEXT)
        page.click("#go")
        page.wait_for_selector("#heatmap table")
        assert page.eval_on_selector_all("#sentence option", "os => os.length") == 2
        longest = max(page.eval_on_selector_all("#sentence option", "os => os.map(o => o.textContent.length)"))
        assert longest > 80  # wider than the screen if nothing held the select in
        page.click(".options summary")  # the options (beam, key) open too
        assert overflowing(page) == {"scrolls": False, "past": []}
        translation = page.inner_text("#output")
        assert translation.strip()

        # Translate on an empty box: a message, not the previous translation left standing.
        page.fill("#text", "   \n")
        page.click("#go")
        page.wait_for_selector("#output:has-text('Nothing to translate')")  # the page's CSP forbids eval
        assert translation not in page.inner_text("#output")
        assert page.is_hidden("#alignment-box") and page.inner_text("#output-meta") == ""

        # A subtitle file: upload, a download link, the cues translated with numbers and timings kept.
        page.set_input_files("#file", {"name": "ruth.srt", "mimeType": "application/x-subrip",
                                       "buffer": SUBTITLES.encode("utf-8")})
        page.click("#file-go")
        page.wait_for_selector("#download")
        assert re.fullmatch(r"/download_file/[^/]+\.srt", page.get_attribute("#download", "href"))
        with page.expect_download() as download_info:
            page.click("#download")
        download = download_info.value
        assert download.suggested_filename == "translated-ruth.srt"
        blocks = Path(download.path()).read_text(encoding="utf-8").strip().split("\n\n")
        assert [block.splitlines()[:2] for block in blocks] == [
            ["1", "00:00:01,000 --> 00:00:03,500"], ["2", "00:00:04,000 --> 00:00:06,000"],
        ]
        cues = [" ".join(block.splitlines()[2:]) for block in blocks]
        assert all(cues) and "creó Dios" not in cues[0] and "desordenada" not in cues[1]
        assert overflowing(page) == {"scrolls": False, "past": []}

        # A format the service does not read: its error, and no stale link.
        page.set_input_files("#file", {"name": "notes.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4"})
        page.click("#file-go")
        page.wait_for_selector("#file-result.error")
        assert ".pdf" in page.inner_text("#file-result") and page.query_selector("#download") is None
        assert errors == []


# The `calibrated_models_dir` calibration reads the source's length only: about 1 for a short sentence,
# about 0 for a long one.
SURE = "Amén."
DOUBTFUL = TEXT.split(". ")[0] + "."
SLOW_MS = 180_000  # a translation with confidence also runs the reverse model; a loaded 2-core machine is slow


@pytest.mark.slow
def test_web_page_asks_for_confidence_where_offered_and_marks_the_doubtful_sentence(calibrated_models_dir):
    with page_in_chromium(calibrated_models_dir) as (page, url, errors):
        sent = []
        page.on("request", lambda r: sent.append(r.post_data_json) if r.url.endswith("/translate") else None)
        page.goto(f"{url}/")
        page.wait_for_selector("#file-box:not([hidden])")  # /frontend/settings read: it names the calibrated pairs
        page.select_option("#source", "es")
        page.select_option("#target", "en")
        page.fill("#text", f"{SURE} {DOUBTFUL}")
        with page.expect_response(lambda r: r.url.endswith("/translate"), timeout=SLOW_MS) as response:
            page.click("#go")
        answer = response.value.json()
        page.wait_for_selector("#confidence-note:not([hidden])")
        assert sent[-1]["return_confidence"] is True
        low = [s for s in answer["sentenceConfidence"] if s["confidence"] < 0.35]
        assert [s["source"] for s in low] == [DOUBTFUL]
        marks = page.query_selector_all("#output mark.low-confidence")
        assert len(marks) == 1
        value = f"{low[0]['confidence']:.2f}"
        # Not colour alone: a visible ⚠, a tooltip, words for screen readers and a line that explains.
        assert marks[0].text_content() == f"⚠{low[0]['translation']} (low confidence {value})"
        assert page.is_visible("#output mark.low-confidence .flag")
        assert f"Low confidence ({value})" in marks[0].get_attribute("title")
        assert page.inner_text("#confidence-note") == f"⚠ Marked sentences may be wrong: low confidence ({value})."
        assert "confidence 0.50" in page.inner_text("#output-meta")

        # Swap: the box gets the translation itself, not the marks; en→es is not calibrated, so the page
        # does not ask (the reverse model's cost is paid only where an answer comes back).
        page.click("#swap")
        assert page.input_value("#text") == answer["translatedText"]
        with page.expect_response(lambda r: r.url.endswith("/translate"), timeout=SLOW_MS):
            page.click("#go")
        page.wait_for_selector("#output:not(:has(mark))")
        assert "return_confidence" not in sent[-1]
        assert page.is_hidden("#confidence-note") and "confidence" not in page.inner_text("#output-meta")
        assert errors == []
