"""The same file gives the same output through `carousel translate FILE` and `POST /translate_file`.

Both paths read and render files with carousel.formats.documents, but translate differently (the
translator in process; the service's batching queues): a difference once joined a subtitle cue's lines
on the command line only. The tiny test model translates each file both ways (float32, whose output
does not depend on batching); text files must match byte for byte, zip packages part by part.
"""

from __future__ import annotations

import io
import warnings
import zipfile

import pytest

from carousel.cli import main
from tests.helpers import epub_with_chapters, pptx_with_slides

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

VERSES = ["En el principio creó Dios los cielos y la tierra.", "Y dijo Dios: Sea la luz; y fue la luz.",
          "Y vio Dios que la luz era buena."]


def docx_file() -> bytes:
    import docx

    document = docx.Document()
    paragraph = document.add_paragraph("Y dijo ")
    paragraph.add_run("Dios").bold = True
    paragraph.add_run(": Sea la ")
    paragraph.add_run("luz").italic = True
    paragraph.add_run(".\ty fue la luz.")
    document.add_paragraph(VERSES[2])
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def odt_file() -> bytes:
    from odf.opendocument import OpenDocumentText
    from odf.style import Style, TextProperties
    from odf.text import P, Span

    document = OpenDocumentText()
    bold = Style(name="B", family="text")
    bold.addElement(TextProperties(fontweight="bold"))
    document.automaticstyles.addElement(bold)
    paragraph = P(text="En el principio creó ")
    paragraph.addElement(Span(stylename=bold, text="Dios"))
    paragraph.addText(" los cielos y la tierra.")
    document.text.addElement(paragraph)
    buffer = io.BytesIO()
    document.write(buffer)
    return buffer.getvalue()


FILES = {
    "notes.txt": ("\n".join(VERSES[:2]) + "\n\n   " + VERSES[2] + "\n").encode(),
    "page.html": f"<h1>{VERSES[0]}</h1><p class='x'>{VERSES[1]} <b>{VERSES[2]}</b></p>".encode(),
    "film.srt": f"1\n00:00:01,000 --> 00:00:02,000\n{VERSES[0]}\n{VERSES[1]}\n\n2\n00:00:03,000 --> 00:00:04,000\n♪\n".encode(),
    "app.po": ('msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
               f'#, c-format\nmsgid "{VERSES[0]}\\n  %s {VERSES[2]}\\n"\nmsgstr ""\n\n'
               f'msgid "Y vio Dios"\nmsgid_plural "{VERSES[1]}"\nmsgstr[0] ""\nmsgstr[1] ""\n').encode(),
    "letter.docx": docx_file(),
    "letter.odt": odt_file(),
    "deck.pptx": pptx_with_slides(f"<a:p><a:r><a:t>{VERSES[0]} </a:t></a:r><a:r><a:rPr i='1'/><a:t>Dios</a:t></a:r></a:p>"),
    "book.epub": epub_with_chapters({"uno.xhtml": f"<p>{VERSES[0]}</p><p><em>{VERSES[1]}</em></p>"}),
}


@pytest.fixture(scope="module")
def service(models_dir, tmp_path_factory):
    from carousel.service.app import create_app
    from carousel.service.settings import ServiceSettings

    files = tmp_path_factory.mktemp("files")
    app = create_app(ServiceSettings(models_dir=models_dir, quantize="none", files_dir=files))
    with TestClient(app) as client:
        assert app.state.registry.wait_until_loaded(120)
        yield client


def through_the_service(client, name: str, data: bytes) -> bytes:
    response = client.post("/translate_file", data={"source": "es", "target": "en"}, files={"file": (name, data)})
    assert response.status_code == 200, response.text
    return client.get(response.json()["translatedFileUrl"]).content


def through_the_command_line(tiny_model_dir, tmp_path, capsys, name: str, data: bytes) -> bytes:
    (tmp_path / name).write_bytes(data)
    output = tmp_path / f"out-{name}"
    code = main(["translate", "--model", str(tiny_model_dir), "--quantize", "none", str(tmp_path / name),
                 "-o", str(output)])
    assert code == 0, capsys.readouterr().err
    return output.read_bytes()


def parts(data: bytes) -> dict[str, bytes]:
    archive = zipfile.ZipFile(io.BytesIO(data))
    return {info.filename: archive.read(info) for info in archive.infolist()}


@pytest.mark.parametrize("name", list(FILES))
def test_the_command_line_and_the_service_give_the_same_file(service, tiny_model_dir, tmp_path, capsys, name):
    data = FILES[name]
    offline = through_the_command_line(tiny_model_dir, tmp_path, capsys, name, data)
    served = through_the_service(service, name, data)
    if name.endswith((".docx", ".odt", ".pptx", ".epub")):
        assert list(parts(offline)) == list(parts(data))  # every part kept, in order
        assert parts(offline) == parts(served)
    else:
        assert offline == served
    assert offline != data  # something was translated
