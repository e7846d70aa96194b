"""`carousel translate FILE` for documents: the format from the extension, the structure kept, clear errors.

The translator is a stand-in (upper-cases) so the tests see exactly what was translated.
"""

from __future__ import annotations

import shutil
import subprocess

import polib
import pytest

import carousel.model.loading
from carousel.cli import main
from tests.helpers import StandInTextTranslator

POT = (
    'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=CHARSET\\n"\n'
    '"Plural-Forms: nplurals=INTEGER; plural=EXPRESSION;\\n"\n\n'
    '#, c-format\nmsgid "_Borrar %s"\nmsgstr ""\n\n'
    '#, c-format\nmsgid "Un gato"\nmsgid_plural "%d gatos"\nmsgstr[0] ""\nmsgstr[1] ""\n\n'
    'msgid "Hecho"\nmsgstr "Done"\n'
)


@pytest.fixture(autouse=True)
def stand_in(monkeypatch):
    monkeypatch.setattr(carousel.model.loading, "load_translator", lambda *a, **k: StandInTextTranslator())


def run(capsys, *argv):
    code = main(["translate", "--model", "unused", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_gettext_template_by_extension_is_translated_and_checks(tmp_path, capsys):
    source = tmp_path / "app.pot"
    source.write_text(POT, encoding="utf-8")
    code, _, err = run(capsys, source, "-o", tmp_path / "app.en.po")
    assert code == 0, err
    catalog = polib.pofile(str(tmp_path / "app.en.po"))
    assert catalog.find("_Borrar %s").msgstr == "_BORRAR %s"
    assert catalog.find("Un gato").msgstr_plural == {0: "UN GATO", 1: "%d GATOS"}
    assert catalog.find("Hecho").msgstr == "Done"  # existing translations are kept...
    if shutil.which("msgfmt"):
        check = subprocess.run(["msgfmt", "--check", "--use-fuzzy", "-o", "/dev/null", str(tmp_path / "app.en.po")],
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
    code, _, _ = run(capsys, source, "--retranslate", "-o", tmp_path / "again.po")
    assert polib.pofile(str(tmp_path / "again.po")).find("Hecho").msgstr == "HECHO"  # ...unless asked


def test_subrip_goes_to_stdout_and_html_keeps_its_markup(tmp_path, capsys):
    (tmp_path / "a.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\nhola\n", encoding="utf-8")
    code, out, _ = run(capsys, tmp_path / "a.srt")
    assert code == 0 and out == "1\n00:00:01,000 --> 00:00:02,000\nHOLA\n\n"
    (tmp_path / "p.html").write_text("<h1 id='t'>hola</h1>", encoding="utf-8")
    code, out, _ = run(capsys, tmp_path / "p.html")
    assert out == "<h1 id='t'>HOLA</h1>"


def test_docx_needs_an_output_file_and_keeps_bold(tmp_path, capsys):
    import docx

    document = docx.Document()
    document.add_paragraph().add_run("negrita").bold = True
    document.save(tmp_path / "in.docx")
    code, _, err = run(capsys, tmp_path / "in.docx")
    assert code == 2 and "-o FILE" in err
    code, _, err = run(capsys, tmp_path / "in.docx", "-o", tmp_path / "out.docx")
    assert code == 0, err
    run_ = docx.Document(tmp_path / "out.docx").paragraphs[0].runs[0]
    assert run_.text == "NEGRITA" and run_.bold is True


def test_text_files_still_stream_line_by_line_and_mixed_documents_are_refused(tmp_path, capsys):
    (tmp_path / "a.txt").write_text("uno\ndos\n", encoding="utf-8")
    code, out, _ = run(capsys, tmp_path / "a.txt")
    assert code == 0 and out == "UNO\nDOS\n"
    (tmp_path / "b.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\nhola\n", encoding="utf-8")
    (tmp_path / "c.po").write_text(POT, encoding="utf-8")
    code, _, err = run(capsys, tmp_path / "b.srt", tmp_path / "c.po")
    assert code == 2 and "one format at a time" in err
    code, _, err = run(capsys, tmp_path / "b.srt", "--scores")
    assert code == 2 and "do not apply" in err


def test_a_subtitle_cues_lines_stay_lines_as_the_service_keeps_them(tmp_path, capsys):
    (tmp_path / "a.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\nhola\namigo mío\n", encoding="utf-8")
    code, out, _ = run(capsys, tmp_path / "a.srt")
    assert code == 0 and out == "1\n00:00:01,000 --> 00:00:02,000\nHOLA\nAMIGO MÍO\n\n"


def test_presentations_and_books_need_an_output_file_and_come_back_translated(tmp_path, capsys):
    import zipfile

    from tests.helpers import epub_with_chapters, pptx_with_slides

    (tmp_path / "in.pptx").write_bytes(pptx_with_slides("<a:p><a:r><a:t>hola</a:t></a:r></a:p>"))
    (tmp_path / "in.epub").write_bytes(epub_with_chapters({"uno.xhtml": "<p>hola</p>"}))
    for name, part in (("in.pptx", "ppt/slides/slide1.xml"), ("in.epub", "OEBPS/uno.xhtml")):
        code, _, err = run(capsys, tmp_path / name)
        assert code == 2 and "-o FILE" in err
        code, _, err = run(capsys, tmp_path / name, "-o", tmp_path / f"out-{name}")
        assert code == 0, err
        assert "HOLA" in zipfile.ZipFile(tmp_path / f"out-{name}").read(part).decode()
    (tmp_path / "bad.epub").write_bytes(b"not a zip")
    code, _, err = run(capsys, tmp_path / "bad.epub", "-o", tmp_path / "x.epub")
    assert code != 0 and "not a .epub file" in err and "Traceback" not in err
