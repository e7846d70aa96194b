"""`carousel prepare po`: gettext catalogs the tests write themselves, as trees, archives and bad inputs."""

from __future__ import annotations

import io
import json
import os
import tarfile
import zipfile
from pathlib import Path

import polib
import pytest
from pydantic import ValidationError

from carousel.cli import main
from carousel.data import catalog_files
from carousel.data.corpus import load_corpus_manifest, read_split
from carousel.data.debian import gettext as debian_gettext
from carousel.data.gettext import catalog_pairs
from carousel.data.markup import UNRESOLVED, plain_text
from carousel.data.po_corpus import PoConfig, build_po_corpus, detect_markup
from carousel.data.user_corpus import ImportConfig
from carousel.errors import UserError

HEADER = {"Content-Type": "text/plain; charset=UTF-8", "Plural-Forms": "nplurals=2; plural=(n != 1);", "Language": "es"}


def _catalog(path: Path, entries: list[polib.POEntry]) -> Path:
    catalog = polib.POFile()
    catalog.metadata = dict(HEADER)
    for entry in entries:
        catalog.append(entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    catalog.save(str(path))
    return path


def _entry(msgid: str, msgstr: str, source: str = "library/demo.rst", **extra) -> polib.POEntry:
    return polib.POEntry(msgid=msgid, msgstr=msgstr, occurrences=[(f"../Doc/{source}", "1")], **extra)


def _build(paths: list[Path], tmp_path: Path, **settings):
    config = PoConfig(name="demo", target_language="es", **settings)
    return build_po_corpus(paths, config, tmp_path / "out")


def _rows(out: Path) -> dict[str, tuple[str, str]]:
    return {row[0]: (row[1], row[2]) for row in read_split(out, "train", ["id", "en", "es"])}


# --- markup --------------------------------------------------------------------------------------


def test_rest_roles_literals_links_and_emphasis_become_the_text_a_reader_sees():
    text = (
        "Use :func:`~os.path.join` with ``sep='/'``, see `the guide <https://example.org/guide>`_ "
        "and :ref:`the tutorial <tut-intro>`, :pep:`8#names` and *emphasis*\\ s [#]_. Example::"
    )
    assert plain_text(text, "rest").text == (
        "Use join with sep='/', see the guide and the tutorial, PEP 8 and emphasiss. Example:"
    )


def test_rest_references_without_their_own_text_and_substitutions_are_unresolved():
    assert plain_text("See :ref:`tut-intro` for details.", "rest").text == f"See {UNRESOLVED} for details."
    assert plain_text("Python |version| is here.", "rest").text == f"Python {UNRESOLVED} is here."


def test_code_blocks_are_removed_and_counted_as_code():
    plain = plain_text("Run this::\n\n    import os\n    os.getcwd()\n\nThen stop.", "rest")
    assert plain.text == "Run this: Then stop."
    assert plain.code_share > 0.5
    assert plain_text(":func:`os.getcwd`", "rest").code_share == 1.0
    assert plain_text("Type:\n\n./configure\nmake\nmake install\n\nDone.", "xml").text == "Type: Done."


def test_mallard_elements_give_their_rendered_text():
    text = 'Press <keyseq><key>Ctrl</key><key>S</key></keyseq> or pick <guiseq><gui>File</gui><gui>Save</gui></guiseq>.'
    assert plain_text(text, "xml").text == "Press Ctrl+S or pick File ▸ Save."
    assert plain_text('Go to <link href="https://gnome.org"/> &amp; <em>relax</em>.', "xml").text == (
        "Go to https://gnome.org & relax."
    )
    assert plain_text('See <link xref="shell-intro"/>.', "xml").text == f"See {UNRESOLVED}."
    assert plain_text("<_:media-1/> (Eject)", "xml").text == "(Eject)"


def test_markup_is_told_by_the_files_the_entries_come_from(tmp_path):
    rest = polib.pofile(str(_catalog(tmp_path / "a.po", [_entry("A :class:`B`.", "Una :class:`B`.")])))
    xml = polib.pofile(str(_catalog(tmp_path / "b.po", [_entry("<gui>OK</gui>", "<gui>Aceptar</gui>", "C/x.page")])))
    ui = polib.pofile(str(_catalog(tmp_path / "c.po", [_entry("_Open", "_Abrir", "src/window.c")])))
    assert [detect_markup(catalog) for catalog in (rest, xml, ui)] == ["rest", "xml", "strings"]


def test_a_documentation_catalog_gives_clean_pairs(tmp_path):
    path = _catalog(tmp_path / "docs/library/os.po", [
        _entry("Return the :class:`str` for *path*.", "Retorna la :class:`str` de *path*."),
        _entry(":func:`os.getcwd`", ":func:`os.getcwd`"),
        _entry("See :ref:`os-files`.", "Vea :ref:`os-files`."),
        _entry(":func:`os.getcwd` and :func:`os.chdir`", "La :func:`os.getcwd` y :func:`os.chdir`"),
    ])
    manifest, _, _ = _build([tmp_path / "docs"], tmp_path)
    assert list(_rows(tmp_path / "out").values()) == [("Return the str for path.", "Retorna la str de path.")]
    assert manifest.dropped_counts == {"mostly code": 1, "unresolved reference": 1, "untranslated": 1}
    assert path.is_file()


# --- entries -------------------------------------------------------------------------------------


def test_fuzzy_obsolete_empty_identical_and_credits_are_counted_per_reason(tmp_path):
    _catalog(tmp_path / "po/es.po", [
        _entry("Open the file.", "Abra el archivo."),
        _entry("Close the file.", "Cierre el archivo.", flags=["fuzzy"]),
        _entry("Save the file.", "Guarde el archivo.", obsolete=True),
        _entry("Print the file.", ""),
        _entry("Python", "Python"),
        _entry("The ``x`` value.", "The ``x`` value."),
        _entry("*Linux*", "Linux"),
        _entry("translator-credits", "Ana"),
    ])
    manifest, _, reports = _build([tmp_path / "po"], tmp_path)
    assert list(_rows(tmp_path / "out").values()) == [("Open the file.", "Abra el archivo.")]
    expected = {"empty": 1, "fuzzy": 1, "identical sides": 1, "obsolete": 1, "translator credits": 1, "untranslated": 2}
    assert manifest.dropped_counts == expected
    assert reports[0].entries == 8 and reports[0].pairs == 1 and dict(reports[0].dropped) == expected
    assert manifest.source["catalogs"]["po/es.po"]["dropped"] == expected


def test_plural_entries_give_both_forms_and_software_strings_lose_accelerators(tmp_path):
    entries = [
        polib.POEntry(msgid="%d file", msgid_plural="%d files", msgstr_plural={0: "%d archivo", 1: "%d archivos"},
                      occurrences=[("src/main.c", "3")]),
        polib.POEntry(msgid="_Open", msgstr="_Abrir", occurrences=[("src/main.c", "4")]),
        polib.POEntry(msgid="<b>Warning</b>", msgstr="Aviso", occurrences=[("src/main.c", "5")]),
    ]
    _catalog(tmp_path / "app/es.po", entries)
    manifest, _, _ = _build([tmp_path / "app"], tmp_path)
    rows = _rows(tmp_path / "out")
    assert sorted(rows.values()) == [("%d file", "%d archivo"), ("%d files", "%d archivos"), ("Open", "Abrir")]
    assert any(pair_id.endswith(":plural") for pair_id in rows)
    assert manifest.dropped_counts == {"placeholder or tag mismatch": 1}


def test_debian_reads_its_catalogs_with_the_same_rules():
    assert debian_gettext.catalog_pairs is catalog_pairs
    catalog = polib.POFile()
    catalog.append(polib.POEntry(msgid="Yes", msgstr="Sí", flags=["fuzzy"]))
    catalog.append(polib.POEntry(msgid="No", msgstr="No"))
    dropped = []
    assert catalog_pairs(catalog, "demo", dropped) == []
    assert [record.reason for record in dropped] == ["fuzzy", "untranslated"]


# --- paragraphs and sentences ----------------------------------------------------------------------


def test_paragraphs_split_into_sentence_pairs_where_both_sides_agree(tmp_path):
    names = "one two three four five six seven eight nine".split()
    long_en = " ".join(f"Sentence {name} says something rather important about files." for name in names)
    long_es = " ".join(f"La frase {name} dice algo importante sobre archivos." for name in names[:8])
    _catalog(tmp_path / "d/a.po", [
        _entry("Open the file. Then close it.", "Abra el archivo. Luego ciérrelo."),
        _entry("Save it. Then quit.", "Guárdelo y salga."),  # 2 vs 1 sentences, short: kept whole
        _entry(long_en, long_es),  # 9 vs 8 sentences, too long to keep whole
        _entry("Yes. I think that this is a very long sentence indeed.", "Sí. Creo."),  # ratios implausible
    ])
    manifest, _, _ = _build([tmp_path / "d"], tmp_path)
    rows = _rows(tmp_path / "out")
    assert sorted(rows.values()) == sorted([
        ("Open the file.", "Abra el archivo."), ("Then close it.", "Luego ciérrelo."),
        ("Save it. Then quit.", "Guárdelo y salga."),
    ])
    assert sum(pair_id.endswith((":s1", ":s2")) for pair_id in rows) == 2
    assert manifest.dropped_counts == {"misaligned block (length ratio)": 1, "misaligned paragraph": 1}
    record = next(record for record in manifest.dropped if record.reason == "misaligned paragraph")
    assert record.detail.startswith("9 vs 8 sentences")


def test_numbers_that_differ_mark_a_misaligned_paragraph(tmp_path):
    _catalog(tmp_path / "d/a.po", [_entry("Set it to 12.", "Póngalo en 15.")])
    with pytest.raises(UserError, match="misaligned block \\(numbers\\) 1"):
        _build([tmp_path / "d"], tmp_path)


# --- archives ----------------------------------------------------------------------------------------


def _po_bytes(tmp_path: Path) -> bytes:
    path = _catalog(tmp_path / "source.po", [_entry("Open the file.", "Abra el archivo."), _entry("Quit.", "Salir.")])
    return path.read_bytes()


def _tar(path: Path, members: dict[str, bytes], mode: str = "w:xz") -> Path:
    with tarfile.open(path, mode) as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("suffix", [".tar.xz", ".tar.gz", ".zip"])
def test_archives_give_the_same_pairs_as_the_tree(tmp_path, suffix):
    data = _po_bytes(tmp_path)
    members = {"proj/library/a.po": data, "proj/COPYING": b"Creative Commons Attribution 3.0\n", "proj/README": b"x"}
    if suffix == ".zip":
        archive = tmp_path / "proj.zip"
        with zipfile.ZipFile(archive, "w") as bundle:
            for name, content in members.items():
                bundle.writestr(name, content)
    else:
        archive = _tar(tmp_path / f"proj{suffix}", members, "w:xz" if suffix == ".tar.xz" else "w:gz")
    (tmp_path / "tree/proj/library").mkdir(parents=True)
    (tmp_path / "tree/proj/library/a.po").write_bytes(data)
    manifest, _, _ = build_po_corpus([archive], PoConfig(name="proj", target_language="es", licence="CC BY 3.0"),
                                     tmp_path / "from-archive")
    build_po_corpus([tmp_path / "tree/proj"], PoConfig(name="proj", target_language="es"), tmp_path / "from-tree")
    assert _rows(tmp_path / "from-archive") == _rows(tmp_path / "from-tree")
    assert list(_rows(tmp_path / "from-archive"))[0].startswith("proj/library/a.po:")
    catalog = manifest.source["catalogs"]["proj/library/a.po"]
    assert catalog["licence"] == "CC BY 3.0" and catalog["licence_file"] == "proj/COPYING"
    assert manifest.source["licence_files"]["proj/COPYING"]["first_line"] == "Creative Commons Attribution 3.0"
    assert manifest.source["inputs"][0]["kind"] == "archive" and manifest.source["inputs"][0]["sha256"]


@pytest.mark.parametrize("name", ["../evil.po", "/etc/evil.po", "proj/../../evil.po"])
def test_an_archive_with_a_member_outside_it_is_refused(tmp_path, name):
    archive = _tar(tmp_path / "bad.tar.gz", {"proj/a.po": _po_bytes(tmp_path), name: b"x"}, "w:gz")
    with pytest.raises(UserError, match="points outside the archive"):
        _build([archive], tmp_path)
    assert not (tmp_path / "evil.po").exists()


def test_oversized_members_are_refused_and_links_skipped(tmp_path, monkeypatch):
    data = _po_bytes(tmp_path)
    archive = tmp_path / "links.tar.gz"
    with tarfile.open(archive, "w:gz") as bundle:
        info = tarfile.TarInfo("proj/a.po")
        info.size = len(data)
        bundle.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("proj/passwd.po")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        bundle.addfile(link)
    manifest, _, _ = _build([archive], tmp_path)
    assert list(manifest.source["catalogs"]) == ["proj/a.po"]
    monkeypatch.setattr(catalog_files, "MAX_MEMBER_BYTES", len(data) - 1)
    with pytest.raises(UserError, match="larger than"):
        _build([archive], tmp_path)


def test_a_tree_is_walked_without_following_links(tmp_path):
    (tmp_path / "outside").mkdir()
    _catalog(tmp_path / "outside/secret.po", [_entry("Secret.", "Secreto.")])
    _catalog(tmp_path / "tree/a.po", [_entry("Open.", "Abrir.")])
    os.symlink(tmp_path / "outside", tmp_path / "tree/linked")
    os.symlink(tmp_path / "outside/secret.po", tmp_path / "tree/b.po")
    manifest, _, _ = _build([tmp_path / "tree"], tmp_path)
    assert list(manifest.source["catalogs"]) == ["tree/a.po"]


def test_include_and_exclude_pick_catalogs_by_path(tmp_path):
    _catalog(tmp_path / "po/es.po", [_entry("Open.", "Abrir.")])
    _catalog(tmp_path / "po/fr.po", [_entry("Open.", "Ouvrir.")])
    manifest, _, _ = _build([tmp_path / "po"], tmp_path, include=["*/es.po"])
    assert list(manifest.source["catalogs"]) == ["po/es.po"]
    manifest, _, _ = _build([tmp_path / "po"], tmp_path, exclude=["fr.po"])
    assert list(manifest.source["catalogs"]) == ["po/es.po"]


# --- the command line ----------------------------------------------------------------------------------


def test_cli_prints_the_summary_and_records_licences_per_source(tmp_path, capsys):
    _catalog(tmp_path / "docs/user/a.po", [_entry("Open the file.", "Abra el archivo."), _entry("Quit.", "")])
    _catalog(tmp_path / "docs/devel/b.po", [_entry("Close the file.", "Cierre el archivo.")])
    out = tmp_path / "out"
    code = main(["prepare", "po", str(tmp_path / "docs"), "--tgt-lang", "es", "--out", str(out),
                 "--licence", "GFDL", "--licence-of", "docs/user/*=CC BY 3.0"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "user" in printed and "devel" in printed and "CC BY 3.0" in printed and "GFDL" in printed
    manifest = load_corpus_manifest(out)
    assert manifest.columns == ["id", "en", "es"] and manifest.splits["train"].rows == 2
    assert manifest.splits["valid"].rows == manifest.splits["test"].rows == 0
    assert {row["group"]: row["licence"] for row in manifest.source["summary"]} == {
        "docs/devel": "GFDL", "docs/user": "CC BY 3.0"
    }
    assert json.loads((out / "corpus.json").read_text())["source"]["summary"][1]["dropped"] == {"empty": 1}


def test_cli_holds_out_whole_paragraphs_when_asked(tmp_path):
    _catalog(tmp_path / "d/a.po", [_entry(f"Line {n}. Then {n}.", f"Línea {n}. Luego {n}.") for n in range(10)])
    out = tmp_path / "out"
    assert main(["prepare", "po", str(tmp_path / "d"), "--tgt-lang", "es", "--out", str(out),
                 "--valid-size", "2", "--test-size", "2", "--quiet"]) == 0
    manifest = load_corpus_manifest(out)
    assert (manifest.splits["train"].rows, manifest.splits["valid"].rows, manifest.splits["test"].rows) == (16, 2, 2)
    valid = [row[0] for row in read_split(out, "valid", ["id"])]
    assert valid[0].removesuffix(":s1") == valid[1].removesuffix(":s2")


def _cli_error(argv: list[str], capsys) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1
    return err


def test_cli_reports_a_bad_path_as_one_line(tmp_path, capsys):
    err = _cli_error(["prepare", "po", str(tmp_path / "missing.tar.xz"), "--tgt-lang", "es"], capsys)
    assert "no such file or directory" in err
    (tmp_path / "empty").mkdir()
    assert "no gettext catalogs" in _cli_error(["prepare", "po", str(tmp_path / "empty"), "--tgt-lang", "es"], capsys)


def test_cli_reports_a_corrupt_archive_or_catalog_as_one_line(tmp_path, capsys):
    (tmp_path / "broken.tar.xz").write_bytes(b"not an xz stream at all")
    err = _cli_error(["prepare", "po", str(tmp_path / "broken.tar.xz"), "--tgt-lang", "es"], capsys)
    assert "not a readable archive" in err
    (tmp_path / "d").mkdir()
    (tmp_path / "d/bad.po").write_text('msgid "a"\nmsgstr "b\nmsgid\n', encoding="utf-8")
    _catalog(tmp_path / "d/good.po", [_entry("Open.", "Abrir.")])
    err = _cli_error(["prepare", "po", str(tmp_path / "d"), "--tgt-lang", "es", "--out", str(tmp_path / "o")], capsys)
    assert "d/bad.po: not a readable gettext catalog" in err and "--skip-unreadable" in err
    header = b'msgid ""\nmsgstr "Content-Type: text/plain; charset=UTF-8\\n"\n\n'
    (tmp_path / "d/latin.po").write_bytes(header + b'msgid "a\xff"\n')
    assert main(["prepare", "po", str(tmp_path / "d"), "--tgt-lang", "es", "--out", str(tmp_path / "o"),
                 "--skip-unreadable", "--quiet"]) == 0
    assert load_corpus_manifest(tmp_path / "o").dropped_counts == {"unreadable catalog": 2}


def test_cli_rejects_a_malformed_licence_rule(tmp_path, capsys):
    _catalog(tmp_path / "d/a.po", [_entry("Open.", "Abrir.")])
    err = _cli_error(["prepare", "po", str(tmp_path / "d"), "--tgt-lang", "es", "--licence-of", "GFDL"], capsys)
    assert "GLOB=TEXT" in err


@pytest.mark.parametrize("config", [lambda **kw: PoConfig(name="proj", **kw),
                                    lambda **kw: ImportConfig(name="proj", source={"kind": "text", "paths": ["x.es", "x.en"]}, **kw)])
def test_both_importers_refuse_the_same_language_codes(config):
    # The codes name the corpus's columns, beside the record-id column "id".
    with pytest.raises(ValidationError, match="use the ISO 639-3 code 'ind'"):
        config(source_language="en", target_language="id")
    with pytest.raises(ValidationError, match="is not a language code"):
        config(source_language="en", target_language="es es")
    with pytest.raises(ValidationError, match="must differ"):
        config(source_language="es", target_language="es")
    assert config(source_language="en", target_language="pt-BR").target_language == "pt-BR"
