"""The Debian corpus: cleaning rules on hand-made catalog entries, and a rebuild of one package.

The rebuild downloads `diffutils` with apt-get (CI has Debian's archive and runs as root) and checks
that its pairs are those the committed corpus holds under its ids.
"""

from __future__ import annotations

import argparse
import gzip
import shutil
from pathlib import Path

import polib
import pytest

from carousel.data.corpus import SPLITS, load_corpus_manifest, read_split, write_corpus
from carousel.data.debian.builder import Pair, cap_fragments, id_hash, is_fragment, one_translation_each
from carousel.data.debian.cleaning import clean_candidate
from carousel.data.gettext import looks_english, sentences, strip_accelerators, token_mismatch
from carousel.commands.prepare_debian import add_arguments, run
from carousel.data.debian.config import DebianConfig
from carousel.data.debian.gettext import catalog_candidates
from carousel.data.debian.licences import dep5_licence
from carousel.data.debian.manpages import man_candidates, parse_page, roff_text
from carousel.data.debian.manuals import MANUALS, manual_blocks, manual_candidates
from carousel.data.debian.packages import PinnedPackage, archive_path
from carousel.data.debian.records import Candidate

DEBIAN = Path(__file__).resolve().parent.parent / "data" / "corpora" / "debian"
CONFIG = DebianConfig()


def _catalog(tmp_path: Path, entries: list[polib.POEntry]) -> Path:
    """An unpacked package holding one Spanish .mo catalog with these entries."""
    catalog = polib.POFile()
    catalog.metadata = {"Content-Type": "text/plain; charset=UTF-8", "Plural-Forms": "nplurals=2; plural=(n != 1);"}
    for entry in entries:
        catalog.append(entry)
    directory = tmp_path / "usr/share/locale/es/LC_MESSAGES"
    directory.mkdir(parents=True)
    catalog.save_as_mofile(str(directory / "demo.mo"))
    return tmp_path


def _cleaned(english: str, spanish: str, document: bool = False):
    return clean_candidate(Candidate("x", english, spanish, "demo", "gettext", "demo", document), CONFIG)


# --- catalogs ------------------------------------------------------------------------------------


def test_plural_forms_pair_singular_with_form_0_and_plural_with_form_1(tmp_path):
    entry = polib.POEntry(
        msgid="%d file", msgid_plural="%d files", msgstr_plural={0: "%d archivo", 1: "%d archivos"}
    )
    dropped = []
    candidates = catalog_candidates("demo", _catalog(tmp_path, [entry]), dropped)
    assert [(c.en, c.es) for c in candidates] == [("%d file", "%d archivo"), ("%d files", "%d archivos")]
    assert candidates[1].id == candidates[0].id + ":plural"
    assert dropped == []


def test_credits_and_untranslated_entries_are_dropped_and_context_only_changes_the_id(tmp_path):
    entries = [
        polib.POEntry(msgid="translator-credits", msgstr="Jorge González"),
        polib.POEntry(msgctxt="NAME OF TRANSLATORS", msgid="Your names", msgstr="Ana"),
        polib.POEntry(msgid="OK", msgstr="OK"),
        polib.POEntry(msgid="Open", msgstr="Abrir"),
        polib.POEntry(msgctxt="adjective", msgid="Open", msgstr="Abierto"),
    ]
    dropped = []
    candidates = catalog_candidates("demo", _catalog(tmp_path, entries), dropped)
    assert sorted((c.en, c.es) for c in candidates) == [("Open", "Abierto"), ("Open", "Abrir")]
    assert len({c.id for c in candidates}) == 2
    assert all(c.id.startswith("gettext:demo:demo.mo:") for c in candidates)
    assert sorted(record.reason for record in dropped) == ["translator credits", "translator credits", "untranslated"]


def test_accelerator_marks_are_removed_but_identifiers_kept():
    assert strip_accelerators("_File", "_Archivo") == ("File", "Archivo")
    assert strip_accelerators("Save _As…", "Guardar _como…") == ("Save As…", "Guardar como…")
    assert strip_accelerators("&Open", "&Abrir") == ("Open", "Abrir")
    assert strip_accelerators("~Edit", "~Editar") == ("Edit", "Editar")
    assert strip_accelerators("Set file_name", "Establecer file_name") == ("Set file_name", "Establecer file_name")
    assert strip_accelerators("AT&T modem", "módem AT&T") == ("AT&T modem", "módem AT&T")
    assert strip_accelerators("Fish &amp; chips", "Pescado &amp; patatas")[0] == "Fish &amp; chips"


def test_newlines_collapse_and_markup_may_stay_when_both_sides_have_it():
    kept, dropped = _cleaned("<b>Warning:</b>\nthe disk\tis full", "<b>Aviso:</b>\nel disco está lleno")
    assert kept == [("x", "<b>Warning:</b> the disk is full", "<b>Aviso:</b> el disco está lleno")]
    assert dropped == []


@pytest.mark.parametrize(
    ("english", "spanish"),
    [
        ("Copied %s to %s", "Copiado %s"),
        ("%1$s of %2$d", "%1$s de %2$s"),
        ("Delete {name}?", "¿Borrar {nombre}?"),
        ("Page {0}", "Página"),
        ("Track %1", "Pista"),
        ("<b>Bold</b> text", "texto en negrita"),
    ],
)
def test_placeholder_or_tag_mismatch_is_dropped_with_a_reason(english, spanish):
    kept, dropped = _cleaned(english, spanish)
    assert kept == []
    assert [record.reason for record in dropped] == ["placeholder or tag mismatch"]


def test_reordered_positional_placeholders_are_fine():
    assert token_mismatch("%1$s of %2$s", "%2$s de %1$s") == ""
    assert token_mismatch("{ $count } tabs", "{ $count } pestañas") == ""


def test_control_characters_are_removed():
    assert _cleaned("\atimed out", "\aha expirado")[0] == [("x", "timed out", "ha expirado")]


def test_empty_and_identical_sides_are_dropped():
    assert _cleaned("Linux", "Linux")[1][0].reason == "identical sides"
    assert _cleaned("Name", "  ")[1][0].reason == "empty"


# --- documents -----------------------------------------------------------------------------------


def test_document_blocks_split_into_sentence_pairs_when_counts_match():
    kept, _ = _cleaned(
        "Click OK. The dialog closes, e.g. after saving.", "Pulse Aceptar. El diálogo se cierra, p. ej. tras guardar.", True
    )
    assert [row[0] for row in kept] == ["x:s1", "x:s2"]
    assert kept[1][2] == "El diálogo se cierra, p. ej. tras guardar."


def test_document_blocks_with_different_numbers_are_misaligned():
    _, dropped = _cleaned("Set the value to 12.", "Establezca el valor en 15.", True)
    assert dropped[0].reason == "misaligned block (numbers)"


def test_sentence_splitter_keeps_abbreviations():
    assert sentences("Use Mr. Smith's file. Then quit!") == ["Use Mr. Smith's file.", "Then quit!"]


def test_sentences_of_a_long_paragraph_are_never_cut_at_a_length_limit():
    long = "A clause, " * 60 + "and the end. Then a second sentence."
    assert sentences(long) == [long[: long.index(" Then")], "Then a second sentence."]


def test_english_left_in_a_translation_is_told_from_spanish_and_from_commands():
    assert looks_english("Remove matching prefix pattern. The word is expanded to produce a pattern as in pathname expansion.")
    assert not looks_english("Elimina el patrón de prefijo coincidente. La palabra se expande como en la expansión de rutas.")
    assert not looks_english("Escrito por Paul Rubin, Arnold Robbins, David MacKenzie y Randy Smith.")
    assert not looks_english("if lista; then lista; [ elif lista; then lista; ] ... [ else lista; ] fi")


# --- man pages -----------------------------------------------------------------------------------

_ENGLISH_PAGE = r""".\" generated by hand
.TH DEMO 1 "May 2023" "demo 1.0" "User Commands"
.SH NAME
demo \- print a greeting
.SH DESCRIPTION
.B demo
prints a greeting on the standard output.
.PP
With no \fIFILE\fR, read \(lqstandard input\(rq.
.nf
demo \-x file
.fi
.TP
.BR \-n ", " \-\-name
use \fBNAME\fP in the greeting
.SH "SEE ALSO"
.BR echo (1)
.SH BUGS
First paragraph.
.PP
Second paragraph.
"""

_SPANISH_PAGE = r""".\" -*- coding: UTF-8 -*-
.TH DEMO 1 "Mayo de 2023" "demo 1.0" "Órdenes de usuario"
.SH NOMBRE
demo \- muestra un saludo
.SH DESCRIPCIÓN
\fBdemo\fP muestra un saludo por la salida estándar.
.PP
Si no se indica \fIARCHIVO\fP, lee la \(lqentrada estándar\(rq.
.nf
demo \-x archivo
.fi
.TP
\fB\-n\fP, \fB\-\-name\fP
usa \fBNOMBRE\fP en el saludo
.SH "VÉASE TAMBIÉN"
\fBecho\fP(1)
.SH ERRORES
The only paragraph, left in English by the translator and not matching the English page.
.SH TRADUCCIÓN
La traducción al español de esta página del manual fue creada por Alguien.
"""


def _man_roots(tmp_path: Path, english: str, spanish: str) -> dict[str, Path]:
    """Two unpacked packages: `manpages-es` with es/man1/demo.1.gz, `demo` with man1/demo.1.gz."""
    roots = {"manpages-es": tmp_path / "es", "demo": tmp_path / "en"}
    for root, directory, text in ((roots["manpages-es"], "es/man1", spanish), (roots["demo"], "man1", english)):
        (root / "usr/share/man" / directory).mkdir(parents=True)
        (root / "usr/share/man" / directory / "demo.1.gz").write_bytes(gzip.compress(text.encode("utf-8"), mtime=0))
    (roots["manpages-es"] / "usr/share/man/es/man1/other.1.gz").symlink_to("demo.1.gz")
    (roots["manpages-es"] / "usr/share/man/es/man1/lost.1.gz").write_bytes(gzip.compress(b".TH LOST 1\n"))
    return roots


def test_roff_escapes_and_font_changes_become_plain_text():
    assert roff_text(r"\fBcat\fP \- concatenate \(lqfiles\(rq, \fI\,FILE\/\fR\[u00E9]\(co") == "cat - concatenate “files”, FILE\u00e9©"
    assert roff_text(r"a\&.b \e \*(lqq\*(rq \s-1SMALL\s0") == r"a.b \ “q” SMALL"


def test_roff_pages_read_as_sections_of_blocks_with_code_and_comments_left_out():
    sections = parse_page(_ENGLISH_PAGE)
    assert [section.title for section in sections] == ["NAME", "DESCRIPTION", "SEE ALSO", "BUGS"]
    assert sections[1].blocks == [
        ("P", "demo prints a greeting on the standard output."),
        ("P", "With no FILE, read “standard input”."),
        ("TAG", "-n, --name"),
        ("TP", "use NAME in the greeting"),
    ]
    assert sections[2].blocks == [("P", "echo(1)")]
    assert parse_page(".so man1/other.1\n") is None


def test_man_pages_pair_blocks_by_order_in_sections_whose_structure_matches(tmp_path):
    dropped = []
    candidates = man_candidates(_man_roots(tmp_path, _ENGLISH_PAGE, _SPANISH_PAGE), dropped)
    pairs = {candidate.id: (candidate.en, candidate.es) for candidate in candidates}
    assert pairs["man:demo.1:2.2"] == ("With no FILE, read “standard input”.", "Si no se indica ARCHIVO, lee la “entrada estándar”.")
    assert pairs["man:demo.1:2.4"] == ("use NAME in the greeting", "usa NOMBRE en el saludo")
    assert pairs["man:demo.1:1.0"] == ("NAME", "NOMBRE")
    assert {candidate.unit for candidate in candidates} == {"man:demo.1"}
    assert all(c.package == "manpages-es" and c.kind == "man" and c.document for c in candidates)
    # BUGS has two paragraphs in English and one in Spanish; the TRADUCCIÓN section is the translator's own.
    assert not any(pair_id.startswith("man:demo.1:4.") for pair_id in pairs)
    reasons = sorted((record.id, record.reason) for record in dropped)
    assert reasons == [("man:demo.1:4", "section structure differs"), ("man:lost.1", "no English page")]


def test_man_page_paragraphs_left_in_english_are_dropped(tmp_path):
    spanish = _SPANISH_PAGE.replace(
        "lee la \\(lqentrada estándar\\(rq.", "read the standard input, which is the default when it is not given."
    )
    dropped = []
    candidates = man_candidates(_man_roots(tmp_path, _ENGLISH_PAGE, spanish), dropped)
    assert "man:demo.1:2.2" not in {candidate.id for candidate in candidates}
    assert ("man:demo.1:2.2", "untranslated (English)") in {(record.id, record.reason) for record in dropped}


def test_man_pages_section_counts_must_match(tmp_path):
    english = _ENGLISH_PAGE + ".SH AUTHOR\nWritten by someone.\n"
    dropped = []
    assert man_candidates(_man_roots(tmp_path, english, _SPANISH_PAGE), dropped) == []
    assert ("man:demo.1", "page structure differs") in {(record.id, record.reason) for record in dropped}


# --- Debian manuals ------------------------------------------------------------------------------

_HANDBOOK = MANUALS[[manual.name for manual in MANUALS].index("debian-handbook")]


def _handbook_page(title: str, paragraphs: list[str], navigation: str) -> str:
    body = "".join(f'<div class="para">{text}</div>' for text in paragraphs)
    return (
        f'<html><body><div class="navheader"><table><tr><td>{navigation}</td></tr></table></div>'
        f'<div class="section"><h2 class="title">{title}</h2>{body}<pre class="screen">$ apt update</pre></div>'
        f'<ul class="docnav"><li>{navigation}</li></ul></body></html>'
    )


def _handbook(tmp_path: Path, pages: dict[str, tuple[str, str]]) -> Path:
    """An unpacked debian-handbook holding each page as (English HTML, Spanish HTML)."""
    root = tmp_path / "debian-handbook"
    for page, (english, spanish) in pages.items():
        for directory, text in ((_HANDBOOK.english_dir, english), (_HANDBOOK.spanish_dir, spanish)):
            (root / directory).mkdir(parents=True, exist_ok=True)
            (root / directory / page).write_text(text, encoding="utf-8")
    return root


def test_manual_blocks_read_publican_paragraphs_without_navigation_or_code(tmp_path):
    root = _handbook(tmp_path, {"sect.demo.html": (_handbook_page("Quotas", ["One. Two."], "Next"), "")})
    blocks = manual_blocks(root / _HANDBOOK.english_dir / "sect.demo.html")
    assert blocks == [("h2", "Quotas"), ("p", "One. Two.")]


def test_manual_pages_pair_blocks_by_order_and_each_page_is_a_unit(tmp_path):
    pages = {
        "sect.quotas.html": (
            _handbook_page("Quotas", ["Quotas limit the disk space of a user."], "Next"),
            _handbook_page("Cuotas", ["Las cuotas limitan el espacio en disco de un usuario."], "Siguiente"),
        ),
        "sect.other.html": (
            _handbook_page("Other", ["First.", "Second."], "Next"),
            _handbook_page("Otra", ["Primero y segundo."], "Siguiente"),
        ),
        "sect.english.html": (
            _handbook_page("Left", ["This paragraph is the same in the two languages of the book."], "Next"),
            _handbook_page("Izquierda", ["This paragraph was not translated, and it is in English in the book."], "Siguiente"),
        ),
    }
    root = _handbook(tmp_path, pages)
    dropped = []
    candidates = manual_candidates(_HANDBOOK, root, root, dropped)
    assert [(c.id, c.en, c.es, c.unit) for c in candidates] == [
        ("debian-handbook:sect.english:1", "Left", "Izquierda", "debian-handbook:sect.english"),
        ("debian-handbook:sect.quotas:1", "Quotas", "Cuotas", "debian-handbook:sect.quotas"),
        ("debian-handbook:sect.quotas:2", "Quotas limit the disk space of a user.",
         "Las cuotas limitan el espacio en disco de un usuario.", "debian-handbook:sect.quotas"),
    ]  # fmt: skip
    assert all(c.package == "debian-handbook" and c.kind == "debian-doc" and c.document for c in candidates)
    assert sorted((record.id, record.reason) for record in dropped) == [
        ("debian-handbook:sect.english:2", "untranslated (English)"),
        ("debian-handbook:sect.other", "page structure differs"),
    ]


# --- global rules --------------------------------------------------------------------------------


def _pair(pair_id, en, es, split="train"):
    return Pair(pair_id, en, es, "demo", "gettext", split)


def test_one_english_string_keeps_its_most_frequent_translation():
    pairs = [_pair("a", "Open", "Abrir"), _pair("b", "Open", "Abierto"), _pair("c", "Open", "Abrir")]
    dropped = []
    kept = one_translation_each(pairs, dropped)
    assert [(p.id, p.es) for p in kept] == [("a", "Abrir")]
    assert sorted(r.reason for r in dropped) == ["alternative translation", "duplicate"]


def test_fragments_are_capped_by_hash_and_the_cap_is_deterministic():
    sentences = [_pair(f"s{i}", f"This is sentence {i}", f"Esta es la frase {i}") for i in range(30)]
    fragments = [_pair(f"f{i}", f"Word{i}", f"Palabra{i}") for i in range(40)]
    dropped = []
    kept, cutoffs = cap_fragments(sentences + fragments, CONFIG, dropped)
    kept_fragments = [p for p in kept if is_fragment(p.en, CONFIG)]
    assert len(kept_fragments) == 10  # 25% of 40 rows
    assert {p.id for p in kept_fragments} == {p.id for p in sorted(fragments, key=lambda p: id_hash(p.id))[:10]}
    assert cutoffs["train"] == max(id_hash(p.id) for p in kept_fragments)
    assert len(dropped) == 30 and {r.reason for r in dropped} == {"fragment cap"}


# --- files ---------------------------------------------------------------------------------------


def test_compressed_splits_are_reproducible_and_readable(tmp_path):
    rows = {"train": [("a", "Hello", "Hola")], "valid": [], "test": []}
    for name in ("one", "two"):
        write_corpus(tmp_path / name, "demo", ["id", "en", "es"], {"en": "en", "es": "es"}, rows, {}, [], compress=True)
    assert (tmp_path / "one/train.tsv.gz").read_bytes() == (tmp_path / "two/train.tsv.gz").read_bytes()
    assert not (tmp_path / "one/train.tsv").exists()
    assert read_split(tmp_path / "one", "train", ["en", "es"]) == [("Hello", "Hola")]
    manifest = load_corpus_manifest(tmp_path / "one")
    assert manifest.splits["train"].sha256 == __import__("hashlib").sha256(b"a\tHello\tHola\n").hexdigest()
    assert gzip.decompress((tmp_path / "one/train.tsv.gz").read_bytes()) == b"a\tHello\tHola\n"


def test_archive_names_encode_the_epoch(tmp_path):
    (tmp_path / "diffutils_1%3a3.8-4_amd64.deb").write_bytes(b"")
    assert archive_path(PinnedPackage("diffutils", "1:3.8-4"), tmp_path).name == "diffutils_1%3a3.8-4_amd64.deb"
    assert archive_path(PinnedPackage("diffutils", "1:3.8-5"), tmp_path) is None


def test_dep5_licence_of_files_star():
    text = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nCopyright: x\nLicense: GPL-3+\n"
    assert dep5_licence(text) == "GPL-3+"


# --- the committed corpus ------------------------------------------------------------------------


def test_committed_corpus_is_compressed_and_held_out_by_package():
    manifest = load_corpus_manifest(DEBIAN)
    assert manifest.columns == ["id", "en", "es"]
    held_out = set(manifest.source["held_out"]["valid"]) | set(manifest.source["held_out"]["test"])
    assert held_out and all((DEBIAN / f"{split}.tsv.gz").is_file() for split in SPLITS)
    for column in ("en", "es"):
        train = {row[0] for row in read_split(DEBIAN, "train", [column])}
        for split in ("valid", "test"):
            assert not train & {row[0] for row in read_split(DEBIAN, split, [column])}


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None, reason="needs apt-get")
def test_rebuilding_one_package_gives_its_committed_rows(tmp_path):
    package = "diffutils"
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        ["--only", package, "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "out"),
         "--max-fragment-share", "1", "--quiet"]  # fmt: skip
    )
    run(args)
    prefix = f"gettext:{package}:"
    rebuilt = {row[0]: row[1:] for split in SPLITS for row in read_split(tmp_path / "out", split, ["id", "en", "es"])}
    committed_rows = {split: read_split(DEBIAN, split, ["id", "en", "es"]) for split in SPLITS}
    committed = {row[0]: row[1:] for rows in committed_rows.values() for row in rows if row[0].startswith(prefix)}
    assert rebuilt and committed
    assert all(pair_id.startswith(prefix) for pair_id in rebuilt)

    # Every committed row of the package comes out of the rebuild unchanged ...
    assert {pair_id: rebuilt.get(pair_id) for pair_id in committed} == committed

    # ... and every rebuilt row the full build left out was left out by a rule that looks across
    # packages: its English string kept under another id, its Spanish side held out in valid/test,
    # or a fragment beyond the full build's cap.
    manifest = load_corpus_manifest(DEBIAN)
    cutoff = manifest.source["fragment_hash_cutoff"]["train"]
    english_elsewhere = {row[1] for rows in committed_rows.values() for row in rows if not row[0].startswith(prefix)}
    held_out_spanish = {row[2] for split in ("valid", "test") for row in committed_rows[split]}
    unexplained = [
        (pair_id, en, es)
        for pair_id, (en, es) in rebuilt.items()
        if pair_id not in committed
        and en not in english_elsewhere
        and es not in held_out_spanish
        and not (is_fragment(en, CONFIG) and cutoff is not None and id_hash(pair_id) > cutoff)
    ]
    assert unexplained == []
