"""HTML as texts with inline markup (formats/html.py): one sentence across inline tags, untranslated
elements, the attributes people read, markup kept; and the same output from the API and the file path.

Most tests translate with a visible rule (upper-casing, or a marker around each text), so they see
exactly what was translated and what was kept; the last ones use the tiny model end to end.
"""

from __future__ import annotations

import time

import pytest

from carousel.formats.documents import read_document, translate_document
from carousel.formats.html import HtmlTooComplex, read_page, split_html
from carousel.model.loading import load_translator
from carousel.model.tags import inline_tags


def rendered(markup: str, translate=lambda texts: [text.upper() for text in texts]) -> str:
    page = read_page(markup)
    return page.render(translate(page.texts))


def test_inline_tags_no_longer_cut_a_sentence():
    page = read_page('<p class="x">Haga clic en <b class="k">Guardar</b> <a href="/a?b=1&amp;c=2">ahora</a>.</p>')
    assert page.texts == ["Haga clic en <b>Guardar</b> <a>ahora</a>."]  # short tags in the text
    # the translation's short tags get their attributes back, wherever the translation put them
    assert page.render(["Click <a>now</a> on <b>Save</b>."]) == \
        '<p class="x">Click <a href="/a?b=1&amp;c=2">now</a> on <b class="k">Save</b>.</p>'


def test_block_tags_still_cut_and_edges_stay_markup():
    page = read_page("<div><br/>\n  <b>Uno</b> y dos<br></div><ul><li>tres</li><li><img src=i.png> cuatro</li></ul>")
    assert page.texts == ["<b>Uno</b> y dos", "tres", "cuatro"]
    assert page.render(["<b>One</b> and two", "three", "four"]) == \
        "<div><br/>\n  <b>One</b> and two<br></div><ul><li>three</li><li><img src=i.png> four</li></ul>"


def test_translate_no_and_notranslate_are_copied_with_their_content():
    markup = ('<div translate="no">Hola <b>mundo</b> <img alt="Un gato"></div>'
              '<p class="a notranslate">Hola</p>'
              '<p>Bienvenido a <span class="notranslate">Carousel &amp; Co</span> hoy</p>')
    page = read_page(markup)
    assert page.texts == ['Bienvenido a <span translate="no">Carousel & Co</span> hoy']
    out = page.render(['Welcome to <span translate="no">Carousel & Co</span> today'])
    assert out == ('<div translate="no">Hola <b>mundo</b> <img alt="Un gato"></div><p class="a notranslate">Hola</p>'
                   '<p>Welcome to <span class="notranslate">Carousel &amp; Co</span> today</p>')


def test_code_is_part_of_the_sentence_but_never_translated():
    page = read_page("<p>Ejecute <code class=sh>apt  update</code> y pulse <kbd>Intro</kbd>.</p><p>Un <code>x</p>")
    assert page.texts == ["Ejecute <code>apt update</code> y pulse <kbd>Intro</kbd>.", "Un <code>x"]
    assert page.render(["Run <code>apt update</code> and press <kbd>Intro</kbd>.", "A <code>x"]) == \
        "<p>Run <code class=sh>apt  update</code> and press <kbd>Intro</kbd>.</p><p>A <code>x</p>"


def test_an_untranslated_element_without_its_end_tag_keeps_the_rest_of_the_page():
    assert rendered('<p>Hola</p><div translate="no">adiós <p>y más') == '<p>HOLA</p><div translate="no">adiós <p>y más'


def test_the_attributes_people_read_are_translated_and_others_kept():
    markup = ('<img src="gato.png" alt="Un gato" class="foto"><a href="/x" title=\'Ir &amp; volver\'>ir</a>'
              '<input type="text" placeholder="Su nombre" value="Juan" aria-label="Nombre">'
              '<input type=submit value=Enviar><input type="checkbox" value="sí">'
              '<button translate="no" title="No traducir">OK</button><img alt="3">')
    out = rendered(markup)
    assert out == ('<img src="gato.png" alt="UN GATO" class="foto"><a href="/x" title="IR &amp; VOLVER">IR</a>'
                   '<input type="text" placeholder="SU NOMBRE" value="Juan" aria-label="NOMBRE">'
                   '<input type=submit value="ENVIAR"><input type="checkbox" value="sí">'
                   '<button translate="no" title="No traducir">OK</button><img alt="3">')


def test_markup_outside_the_texts_is_kept_byte_for_byte():
    markup = ("<!DOCTYPE html>\n<HTML lang=es><!-- nota --><head><style>p > b {x: 1}</style>"
              "<script>if (a < b) { s = '<b>hola</b>'; }</script></head>"
              "<BODY><P CLASS='q'  id=a>Hola &amp; adiós</P ><table><tr><td>&nbsp;</td></tr></table></BODY></HTML>")
    assert rendered(markup, lambda texts: ["X"] * len(texts)) == markup.replace("Hola &amp; adiós", "X")


def test_text_that_only_looks_like_a_tag_stays_text():
    page = read_page("<p>Use &lt;b&gt; for bold &amp; &lt;file&gt; here</p>")
    assert page.texts == ["Use &lt;b> for bold & <file> here"]  # "<file>" is not an inline tag
    assert page.render(page.texts) == "<p>Use &lt;b&gt; for bold &amp; &lt;file&gt; here</p>"


def test_a_translation_that_lost_a_tag_still_has_every_tag_once_in_order():
    page = read_page("<p>Uno <b>dos</b> <i>tres</i></p>")
    out = page.render(["One two three"])  # a translator that dropped them all
    assert [tag.group(0) for tag in inline_tags(out)] == ["<b>", "</b>", "<i>", "</i>"]


def test_the_parse_deadline_still_holds():
    with pytest.raises(HtmlTooComplex):
        read_page("<a " * 6000, deadline=time.monotonic() + 0.001)


def test_the_api_splitter_cuts_texts_into_sentences_and_joins_them_back():
    document = split_html('<p>Hola <b>mundo</b>. Otra <i>frase</i>.</p><img alt="Un gato">')
    assert document.sentences == ["Hola <b>mundo</b>.", "Otra <i>frase</i>.", "Un gato"]
    assert document.join(["Hello <b>world</b>.", "Another <i>one</i>.", "A cat"]) == \
        '<p>Hello <b>world</b>. Another <i>one</i>.</p><img alt="A cat">'


# -- with a model ------------------------------------------------------------------------------------


PAGE = ('<html><head><title>Noemí</title></head><body><p class="v">Y murió <b>Elimelech</b>, marido de '
        '<a href="/n">Noemi</a>, y quedó ella con sus dos hijos.</p><p>Los cuales tomaron para sí '
        '<span translate="no">mujeres de Moab</span>.</p><img src="r.png" alt="Rut y Noemí"></body></html>')


@pytest.fixture(scope="module")
def reference(tiny_model_dir):
    return load_translator(tiny_model_dir, quantization="none")


def test_the_model_translates_each_block_as_one_text_with_its_tags(reference):
    out = translate_document(read_document("html", PAGE.encode()),
                             lambda texts: [n[0][0] for n in reference.translate_texts(texts)]).decode()
    for tag in ['<p class="v">', "<b>", "</b>", '<a href="/n">', "</a>", '<span translate="no">mujeres de Moab</span>']:
        assert out.count(tag) == 1, (tag, out)
    assert out.index("<b>") < out.index("</b>") < out.index('<a href="/n">') < out.index("</a>") < out.index("</p>")
    assert 'alt="Rut y Noemí"' not in out and "<title>Noemí</title>" not in out


def test_the_api_and_the_file_path_give_the_same_page(models_dir, reference):
    from fastapi.testclient import TestClient

    from carousel.service.app import create_app
    from carousel.service.settings import ServiceSettings

    offline = translate_document(read_document("html", PAGE.encode(), "es", "en"),
                                 lambda texts: [n[0][0] for n in reference.translate_texts(texts)]).decode()
    app = create_app(ServiceSettings(models_dir=models_dir, quantize="none"))
    with TestClient(app) as client:
        assert app.state.registry.wait_until_loaded(120)
        answer = client.post("/translate", json={"q": PAGE, "source": "es", "target": "en", "format": "html"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["translatedText"] == offline
        uploaded = client.post("/translate_file", data={"source": "es", "target": "en"},
                               files={"file": ("page.html", PAGE.encode(), "text/html")})
        assert uploaded.status_code == 200, uploaded.text
        assert client.get(uploaded.json()["translatedFileUrl"]).text == offline


def test_floods_of_unclosed_or_unmatched_tags_are_read_in_linear_time():
    for markup in ["<p>" + "<code>x " * 30000, "<p>a " + "<b>" * 30000 + "</i>" * 30000,
                   '<div class="notranslate">' * 30000]:
        started = time.monotonic()
        page = read_page(markup)
        assert page.render(page.texts) == markup
        assert time.monotonic() - started < 5  # quadratic pairing took minutes
