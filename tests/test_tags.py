"""Inline tags taken out of a sentence and put back into its translation by the attention (model/tags.py).

The alignments are made by hand: `alignment_for(pairs)` gives each target piece all its weight on one
source piece, so each test says exactly which target word comes from which source word.
"""

from __future__ import annotations

import re

import pytest

from carousel.model.tags import inline_tags, put_back_tags, take_tags

S = "\u2581"


def pieces(text: str) -> list[str]:
    """One piece per word, as SentencePiece marks them."""
    return [S + word for word in text.split()]


def alignment_for(source: str, target: str, links: dict[int, int]) -> list[list[float]]:
    """[target words + EOS][source words + EOS]: target word t attends only to source word links[t]
    (to EOS where it has no link)."""
    columns = len(source.split()) + 1
    rows = []
    for t in range(len(target.split()) + 1):
        row = [0.0] * columns
        row[links.get(t, columns - 1)] = 1.0
        rows.append(row)
    return rows


def moved(sentence: str, translation: str, links: dict[int, int] | None = None) -> str:
    """`translation` (of the sentence's plain text) with the sentence's tags put back by `links`."""
    tagged = take_tags(sentence)
    if links is None:
        return put_back_tags(tagged, translation)
    return put_back_tags(tagged, translation, pieces(tagged.plain), pieces(translation),
                         alignment_for(tagged.plain, translation, links))


def tag_sequence(text: str) -> list[str]:
    return [tag.group(0) for tag in inline_tags(text)]


def words_without_tags(text: str) -> list[str]:
    for tag in reversed(inline_tags(text)):
        text = text[:tag.start()] + " " + text[tag.end():]
    return text.split()


def is_well_formed(text: str) -> bool:
    stack = []
    for tag in inline_tags(text):
        name = tag.group(2).lower()
        if name in ("br", "img", "wbr"):
            continue
        if tag.group(1):
            if not stack or stack.pop() != name:
                return False
        else:
            stack.append(name)
    return not stack


# -- taking tags out -------------------------------------------------------------------------------


def test_a_sentence_without_inline_tags_is_left_as_it_is():
    for sentence in ["Use <file> as input.", "a < b and c > d", "Hola  mundo", ""]:
        tagged = take_tags(sentence)
        assert tagged.plain == sentence and tagged.elements == ()


def test_tags_come_out_and_each_remembers_the_characters_it_wrapped():
    tagged = take_tags("Click <b>Save</b> now")
    assert tagged.plain == "Click Save now"
    (bold,) = tagged.elements
    assert (bold.kind, bold.markup, bold.closing) == ("pair", "<b>", "</b>")
    assert tagged.plain[bold.start:bold.end] == "Save"


def test_nesting_points_and_whitespace():
    tagged = take_tags('<a href="x">Go  <i>home <b>now</b></i></a><br/>then')
    assert tagged.plain == "Go home now then"  # whitespace collapsed; <br> separates words
    link, italic, bold, line_break = tagged.elements
    assert (italic.parent, bold.parent, link.parent) == (0, 1, None)
    assert tagged.plain[italic.start:italic.end] == "home now" and tagged.plain[bold.start:bold.end] == "now"
    assert line_break.kind == "point" and line_break.start == len("Go home now")


def test_an_attribute_may_hold_a_closing_angle_bracket_in_quotes():
    tagged = take_tags('See <a title="a > b" href=\'c>d\'>this</a> page')
    assert tagged.plain == "See this page"
    assert tagged.elements[0].markup == '<a title="a > b" href=\'c>d\'>'


def test_pairs_around_no_text_unpaired_tags_and_untranslated_elements():
    tagged = take_tags('A <a href="u"><img src="i.png"></a> b <b>c <span class="x notranslate">Carousel &amp; Co</span> d')
    assert tagged.plain == "A b c Carousel & Co d"  # what the model reads; the &amp; is read
    linked_image, bold, kept = tagged.elements
    assert linked_image.kind == "point" and linked_image.markup == '<a href="u"><img src="i.png"></a>'
    assert bold.kind == "point" and bold.markup == "<b>"  # never closed: it stays where it is
    assert kept.kind == "verbatim" and kept.markup == '<span class="x notranslate">Carousel &amp; Co</span>'
    assert tagged.plain[kept.start:kept.end] == "Carousel & Co"


def test_code_is_copied_as_it_is():
    tagged = take_tags("Run <code>apt update</code> and press <kbd>Enter</kbd>")
    assert tagged.plain == "Run apt update and press Enter"
    assert [(e.kind, e.markup) for e in tagged.elements] == [
        ("verbatim", "<code>apt update</code>"), ("verbatim", "<kbd>Enter</kbd>")]
    assert moved("Select <code>Network</code> now", "Seleccione red ahora", {0: 0, 1: 1, 2: 2}) == \
        "Seleccione <code>Network</code> ahora"


def test_crossing_tags_in_the_source_keep_only_the_pairs_that_nest():
    tagged = take_tags("<b>a <i>b</b> c</i>")
    assert [(e.kind, e.markup) for e in tagged.elements] == [("pair", "<b>"), ("point", "<i>"), ("point", "</i>")]


# -- putting them back -----------------------------------------------------------------------------


def test_a_paired_tag_wraps_the_words_its_words_were_translated_into():
    #          Haga0 clic1 en2 Guardar3 ahora4 ; Click0 Save1 now2
    assert moved("Click <b>Save</b> now", "Haga clic en Guardar ahora", {0: 0, 1: 0, 3: 1, 4: 2}) == \
        "Haga clic en <b>Guardar</b> ahora"


def test_the_words_may_move_and_the_smallest_run_covering_them_is_wrapped():
    # the adjective moves after the noun; "very fast" becomes two words aligned to both
    assert moved("The <i>red</i> car is <b>very fast</b>.", "El coche rojo es muy rápido.",
                 {0: 0, 1: 2, 2: 1, 3: 3, 4: 4, 5: 5}) == "El coche <i>rojo</i> es <b>muy rápido</b>."


def test_punctuation_the_source_kept_outside_stays_outside():
    assert moved("Press <b>Save</b>.", "Pulse Guardar.", {0: 0, 1: 1}) == "Pulse <b>Guardar</b>."
    assert moved("<b>Warning:</b> stop", "Aviso: pare", {0: 0, 1: 1}) == "<b>Aviso:</b> pare"
    assert moved("Say <q>hi</q>", "Diga «hola»", {0: 0, 1: 1}) == "Diga «<q>hola</q>»"


def test_tags_around_the_first_and_the_last_word():
    assert moved("<b>Open</b> the file <i>now</i>", "Abra el archivo ahora", {0: 0, 1: 1, 2: 2, 3: 3}) == \
        "<b>Abra</b> el archivo <i>ahora</i>"


def test_nested_tags_stay_nested_even_when_the_alignment_says_otherwise():
    # the inner word is aligned outside its parent's words: it is kept inside, and the result nests
    out = moved("<a>go <b>home</b></a> now", "ve ahora casa", {0: 0, 1: 2, 2: 1})
    assert is_well_formed(out) and tag_sequence(out) == ["<a>", "<b>", "</b>", "</a>"]
    assert out.startswith("<a>ve")


def test_adjacent_tags_keep_their_order_and_do_not_cross():
    out = moved("<b>red</b> <i>car</i>", "coche rojo", {0: 1, 1: 0})
    assert is_well_formed(out) and tag_sequence(out) == ["<b>", "</b>", "<i>", "</i>"]
    assert "<b>rojo</b>" in out  # the first pair where it belongs; the second wherever is left


def test_tags_wrapping_part_of_a_copied_word():
    assert moved("Press <kbd>Ctrl</kbd>+<kbd>C</kbd> now", "Pulse Ctrl+C ahora", {0: 0, 1: 1, 2: 2}) == \
        "Pulse <kbd>Ctrl</kbd>+<kbd>C</kbd> ahora"


def test_standalone_tags_go_after_the_word_aligned_with_the_word_before_them():
    assert moved("one two<br>three four", "uno dos tres cuatro", {0: 0, 1: 1, 2: 2, 3: 3}) == \
        "uno dos<br> tres cuatro"
    assert moved("<br>Hello", "Hola", {0: 0}) == "<br>Hola"
    assert moved('Done <img src="ok.png">', "Hecho", {0: 0}) == 'Hecho<img src="ok.png">'


def test_an_untranslated_element_replaces_the_words_its_text_became():
    sentence = 'Welcome to <span translate="no">Carousel Pro</span> today'
    assert moved(sentence, "Bienvenido a Carrusel Pro hoy", {0: 0, 1: 1, 2: 2, 3: 3, 4: 4}) == \
        'Bienvenido a <span translate="no">Carousel Pro</span> hoy'
    # the model dropped it: it goes back after the word before it, never lost
    assert moved(sentence, "Bienvenido a hoy", {0: 0, 1: 1, 2: 4}) == \
        'Bienvenido a<span translate="no">Carousel Pro</span> hoy'


def test_without_an_alignment_tags_follow_the_source_in_proportion():
    assert moved("one <b>two</b> three four", "uno dos tres cuatro") == "uno <b>dos</b> tres cuatro"
    assert moved("one two <b>three</b>", "uno dos tres cuatro cinco six") == "uno dos tres cuatro <b>cinco six</b>"


def test_a_useless_alignment_still_gives_every_tag_once_well_formed():
    sentence = '<a href="x">A <b>b</b> <i>c</i></a> d<br><em>e</em> <span>f <u>g</u></span>'
    translation = "uno dos tres cuatro cinco seis"
    everything_on_eos = {}
    everything_on_one = {t: 0 for t in range(6)}
    for links in (everything_on_eos, everything_on_one, None):
        out = moved(sentence, translation, links)
        assert tag_sequence(out) == tag_sequence(sentence) and is_well_formed(out)
        assert words_without_tags(out) == translation.split()


def test_an_empty_translation_keeps_the_tags():
    assert moved("<b>Hola</b> mundo<br>", "", {}) == "<b></b><br>"


def test_pieces_that_do_not_match_the_words_are_matched_by_characters():
    # span repair added a word the pieces do not spell; the source was normalised (lower case)
    tagged = take_tags("Click <b>Save</b> on page 3")
    translation = "Haga clic en Guardar en la página 3"
    source_pieces = [S + "click", S + "Sa", "ve", S + "on", S + "page", S + "3"]
    target_pieces = [S + "Haga", S + "clic", S + "en", S + "Guard", "ar", S + "en", S + "la", S + "página"]
    links = {0: 0, 1: 0, 2: 0, 3: 1, 4: 2, 5: 3, 6: 4, 7: 4}
    alignment = [[1.0 if c == links.get(t, 6) else 0.0 for c in range(7)] for t in range(9)]
    assert put_back_tags(tagged, translation, source_pieces, target_pieces, alignment) == \
        "Haga clic en <b>Guardar</b> en la página 3"


@pytest.mark.parametrize("seed", range(30))
def test_random_alignments_never_break_the_markup(seed):
    import random

    rng = random.Random(seed)
    sentence = "a <b>b c</b> <i>d <u>e</u></i><br>f <a href='>'>g</a> h"
    tagged = take_tags(sentence)
    translation = " ".join(f"w{k}" for k in range(rng.randint(0, 9)))
    links = {t: rng.randint(0, 8) for t in range(len(translation.split()))}
    out = moved(sentence, translation, links) if translation else put_back_tags(tagged, translation)
    assert tag_sequence(out) == tag_sequence(sentence) and is_well_formed(out)
    assert words_without_tags(out) == translation.split()


# -- in the translator -----------------------------------------------------------------------------


def test_the_translator_searches_the_plain_text_and_puts_the_tags_back(tiny_model_dir):
    from carousel.model.loading import load_translator
    from carousel.model.search import SearchConfig

    translator = load_translator(tiny_model_dir, quantization="none")
    tagged = ["Y murió <b>Elimelech</b>, marido de <a href='/n'>Noemi</a>.", "<br><b>3</b>", "Hola<br>"]
    plain = ["Y murió Elimelech, marido de Noemi.", "", "Hola"]
    with_tags = translator.translate(tagged, SearchConfig(beam_size=3, nbest=2))
    without = translator.translate(plain, SearchConfig(beam_size=3, nbest=2))
    for sentence, nbest, plain_nbest in zip(tagged[::2], with_tags[::2], without[::2]):
        assert len(nbest) == len(plain_nbest) and all(t.alignment is None for t in nbest)
        for translation, plain_translation in zip(nbest, plain_nbest):
            assert tag_sequence(translation.text) == tag_sequence(sentence) and is_well_formed(translation.text)
            assert "".join(part for part in re.split(r"<[^<>]*>", translation.text)) == plain_translation.text
            assert translation.source_tokens == plain_translation.source_tokens
    assert with_tags[1][0].text == "<br><b>3</b>"  # no letters outside its tags: as it is


def test_inline_tags_do_not_cut_a_gettext_message():
    from carousel.formats.catalogs import CatalogText

    message = CatalogText("Click <b>Save</b> to keep %s in <file>")
    assert message.texts == ["Click <b>Save</b> to keep", "in"]  # placeholders still cut; inline tags do not
    assert message.join(["Pulse <b>Guardar</b> para guardar", "en"]) == "Pulse <b>Guardar</b> para guardar %s en <file>"
