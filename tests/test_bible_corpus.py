"""The Bible corpus: OSIS cleaning on hand-written snippets, alignment checks, and the committed build."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pytest

from carousel.data.alignment import find_shifted_verses
from carousel.data.bible import RESERVED_BOOKS, TEST_BOOKS, VALID_BOOKS, BibleConfig, build_bible_corpus
from carousel.data.corpus import SPLITS, load_corpus_manifest, read_split
from carousel.data.osis import balance_tags, osis_to_text, parse_osis_verse
from carousel.data.sword import parse_export

CORPORA = Path(__file__).resolve().parent.parent / "data" / "corpora"
BIBLE = CORPORA / "bible"


# --- OSIS cleaning -------------------------------------------------------------------------


def test_strongs_wrappers_keep_their_words_and_numbers():
    verse = parse_osis_verse(
        '<w lemma="strong:H7225">EN el principio</w> <w lemma="strong:H1254 strong:H9999">crió</w> Dios.'
    )
    assert verse.text == "EN el principio crió Dios."
    assert verse.strongs == {"H7225", "H1254", "H9999"}


def test_trans_change_keeps_its_words():
    assert (
        osis_to_text('darkness <transChange type="added">was</transChange> upon the deep')
        == "darkness was upon the deep"
    )


def test_notes_are_dropped_with_their_content_but_not_the_text_after():
    fragment = (
        '<w lemma="strong:H0430">God</w><note placement="foot"><reference type="annotateRef">1:1 </reference>'
        "The Hebrew word rendered “God” is “אֱלֹהִ֑ים” (Elohim).</note> <w>created</w>."
    )
    assert osis_to_text(fragment) == "God created."


def test_headings_milestones_and_paragraph_marks_are_dropped():
    fragment = (
        '<div type="x-milestone" subType="x-preverse" sID="pv1"/><div sID="gen4" type="x-p"/> '
        '<title type="x-introduction">Heading</title><milestone n="Genesis" type="x-usfm-h"/>'
        '<chapter n="1" osisID="Gen.1" sID="Gen.1"/>¶ And <w>God</w> said,  Let there be light:'
        '<div eID="gen4" type="x-p"/>'
    )
    assert osis_to_text(fragment) == "And God said, Let there be light:"


def test_canonical_psalm_titles_are_kept_because_rv1909_prints_them_in_the_verse():
    fragment = (
        '<title canonical="true" type="psalm">A Psalm of David.</title> <lg sID="a"/><l sID="b"/>'
        "LORD, how are they increased!"
    )
    assert osis_to_text(fragment) == "A Psalm of David. LORD, how are they increased!"


def test_poetry_line_milestones_separate_words():
    assert osis_to_text('increased!<l eID="x"/><l sID="y"/>Many <w>are</w> they') == "increased! Many are they"


def test_quotes_accents_and_spanish_marks_are_kept_exactly():
    fragment = '<q marker="" who="Jesus">“<w>Let</w> there be light,” and God’s</q> ¿Qué? ¡Oh Jehová!'
    assert osis_to_text(fragment) == "“Let there be light,” and God’s ¿Qué? ¡Oh Jehová!"


def test_spacing_before_punctuation_is_normalised():
    assert osis_to_text("<w>día</w> , <w>noche</w> . ( <w>Selah</w> ) ¿ Qué ?") == "día, noche. (Selah) ¿Qué?"


def test_word_elements_touching_are_separated_except_enclitic_pronouns():
    fragment = '<w>hay allí</w><transChange type="added">también</transChange> <w>sáca</w><w>lo</w> <w>dí</w><w>lo</w>.'

    assert osis_to_text(fragment) == "hay allí también sácalo dílo."


def test_stray_usfm_markers_are_removed():
    assert osis_to_text('And the \\nd <w lemma="strong:H3068">LORD</w></divineName> spake') == "And the LORD spake"


def test_fragments_split_across_verses_are_repaired_without_losing_text():
    opened = '<list> <item type="x-indent-1"><w>Of</w> the sons of Phinehas.</item> <item><w>Of</w> David,'
    closed = "<w>Benjamin</w>, and Shemariah. </item> </list>"
    assert osis_to_text(opened) == "Of the sons of Phinehas. Of David,"
    assert osis_to_text(closed) == "Benjamin, and Shemariah."
    assert balance_tags("<a><b>x</a>") == "<a><b>x</b></a>"


def test_headings_and_module_keys_are_not_verses():
    export = (
        "$$$[ Module Heading ]\n\n$$$Genesis 0:0\n<title>Genesis</title>\n$$$Genesis 1:0\n<chapter sID='x'/>\n"
        "$$$Genesis 1:1\nIn the beginning\n$$$I Peter 2:10\nWhich in time past\n"
    )
    verses = list(parse_export(export))
    assert [(verse.ref, verse.osis) for verse in verses] == [
        ("Genesis 1:1", "In the beginning"),
        ("I Peter 2:10", "Which in time past"),
    ]
    assert verses[1].book == "I Peter" and verses[1].chapter == 2 and verses[1].verse == 10


def test_a_verse_numbered_one_off_is_found_as_shifted():
    refs = ["B 1:1", "B 1:2", "B 1:3", "B 1:4"]
    books = ["B"] * 4
    english = {"B 1:1": {"a", "b"}, "B 1:2": {"c", "d"}, "B 1:3": {"e", "f"}, "B 1:4": {"g", "h"}}
    spanish = {"B 1:1": {"a", "b"}, "B 1:2": {"c", "d"}, "B 1:3": {"g", "h"}, "B 1:4": {"g", "h", "x"}}
    shifted = find_shifted_verses(refs, books, spanish, english, window=2, margin=0.2)
    assert [(shift.ref, shift.neighbour_ref) for shift in shifted] == [("B 1:3", "B 1:4")]


# --- the committed corpus --------------------------------------------------------------------

_RESERVED_REF = re.compile(
    rb"\b(?:" + b"|".join(re.escape(book.encode()) for book in sorted(RESERVED_BOOKS)) + rb") \d+:\d+"
)


def test_reserved_books_appear_in_no_file_under_data_corpora():
    files = [path for path in CORPORA.rglob("*") if path.is_file()]
    assert files, f"no corpus files under {CORPORA}"
    leaks = [str(path) for path in files if _RESERVED_REF.search(path.read_bytes())]
    assert not leaks, f"reserved-book references found in {leaks}"


def test_committed_splits_hold_their_books_and_match_the_manifest():
    manifest = load_corpus_manifest(BIBLE)
    assert manifest.columns == ["ref", "es", "en", "en_kjv"]
    for split in SPLITS:
        data = (BIBLE / f"{split}.tsv").read_bytes()
        assert hashlib.sha256(data).hexdigest() == manifest.splits[split].sha256
        books = {ref.rsplit(" ", 1)[0] for (ref,) in read_split(BIBLE, split, ["ref"])}
        expected = {"test": TEST_BOOKS, "valid": VALID_BOOKS}.get(split)
        if expected is None:
            assert not books & (TEST_BOOKS | VALID_BOOKS | RESERVED_BOOKS)
        else:
            assert books == expected
    assert "Revelation of John 22:21" in {record.id for record in manifest.dropped}


@pytest.mark.sword
@pytest.mark.slow
def test_rebuilding_from_the_sword_modules_gives_the_committed_files(tmp_path):
    if shutil.which("mod2imp") is None:
        pytest.fail(
            "mod2imp not found: install the Debian packages libsword-utils, sword-text-sparv, "
            "sword-text-web and sword-text-kjv (CI installs them)"
        )
    build_bible_corpus(tmp_path, BibleConfig(), progress=False)
    for name in ["corpus.json", *(f"{split}.tsv" for split in SPLITS)]:
        assert (tmp_path / name).read_bytes() == (BIBLE / name).read_bytes(), f"{name} differs from the committed file"
