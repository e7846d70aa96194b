"""Formatting carried across translation in office files and e-books (formats/inline.py, office.py,
opendocument.py, epub.py), and the bad packages they refuse.

Translations come from visible rules (upper-casing; reordering or dropping the pseudo-tags as a model
might) so each test sees exactly which text went into which run.
"""

from __future__ import annotations

import io
import re
import zipfile

import pytest

from carousel.formats.documents import DocumentError, DocumentLimits, DocumentTooLarge, read_document, translate_document
from carousel.formats.inline import Code, TaggedText, Text
from tests.helpers import docx_with_paragraphs, epub_with_chapters, pptx_with_slides

W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def upper(texts):
    return [text.upper() for text in texts]


def translated(fmt, data, translate=upper, limits=DocumentLimits()):
    return translate_document(read_document(fmt, data, "es", "en", limits=limits), translate)


def part(data: bytes, name: str) -> str:
    return zipfile.ZipFile(io.BytesIO(data)).read(name).decode()


# -- pseudo-tags -----------------------------------------------------------------------------------

PLAIN, BOLD, ITALIC = "plain", "bold", "italic"


def g(number: int, text: str) -> str:
    """A formatted stretch as the translator sees it."""
    return f'<span id="g{number}">{text}</span>'


def x(number: int) -> str:
    """Non-text content as the translator sees it."""
    return f'<img id="x{number}"/>'


def tagged(*items):
    return TaggedText([Text(text, style, style) if style else Code(text) for text, style in items])


def test_formatted_runs_become_pairs_and_the_most_common_formatting_stays_untagged():
    text = tagged(("Pulsa ", PLAIN), ("Guar", BOLD), ("dar ", BOLD), ("ahora", PLAIN), ("<tab>", None),
                  ("y ", PLAIN), ("cierra", ITALIC), (".", PLAIN))
    # adjacent runs of one formatting merge; spaces at a change of formatting go outside the tags
    assert text.text == f"Pulsa {g(1, 'Guardar')} ahora{x(2)}y {g(3, 'cierra')}."
    assert tagged(("Todo en negrita", BOLD)).text == "Todo en negrita"  # one formatting: no tags at all
    assert tagged(("Uno", PLAIN), (" ", BOLD), ("dos", PLAIN)).text == "Uno dos"  # a bold space is not worth a tag
    link = Text("la documentación completa del programa", "link", "link", may_be_default=False)
    assert TaggedText([Text("Lee ", PLAIN, PLAIN), link, Text(".", PLAIN, PLAIN)]).text == (
        f"Lee {g(1, 'la documentación completa del programa')}.")  # a link is never the default
    assert TaggedText([link]).text == "la documentación completa del programa"  # unless it is all there is
    edges = tagged(("<image>", None), ("Hola", PLAIN), ("<bookmark>", None))
    assert edges.text == "Hola" and not edges.tagged  # content at either end keeps its place untagged
    assert edges.render("Hello") == [Code("<image>"), Text("Hello", PLAIN, PLAIN), Code("<bookmark>")]


def test_the_translation_decides_the_order_of_the_formatted_runs():
    text = tagged(("El ", PLAIN), ("rápido", BOLD), (" zorro ", PLAIN), ("marrón", ITALIC))
    assert text.text == f"El {g(1, 'rápido')} zorro {g(2, 'marrón')}"
    out = text.render(f"The {g(1, 'quick')} {g(2, 'brown')} fox")
    assert [(item.text, item.style) for item in out] == [
        ("The ", PLAIN), ("quick", BOLD), (" ", PLAIN), ("brown", ITALIC), (" fox", PLAIN)]


@pytest.mark.parametrize("translation", [
    "Click Save now then close.",  # the tags lost
    'Click </span>Save<span id="g1"> now<img id="x2"/>then close.',  # a pair reversed
    'Click <span id="g1">Save <span id="g3">now</span> then</span><img id="x2"/> close.',  # a pair inside another
    'Click <span id="g1">Save</span> <span id="g1">now</span><img id="x2"/> then close.',  # a pair twice
    'Click <span id="g1">Save</span> now<img id="x9"/><img id="x2"/> then close.',  # a tag the source lacks
    'Click <span id="g1">Save</span> now then <span id="g3">close</span>.',  # a standalone tag lost
    "Click <SPAN ID=\"G1\">Save</SPAN> now<img id=x2>then <span id='g3' >close</ span>.",  # case and quotes forgiven
])
def test_a_translation_with_broken_tags_keeps_all_its_text_and_content_in_the_default_formatting(translation):
    text = tagged(("Pulsa ", PLAIN), ("Guardar", BOLD), (" ahora", PLAIN), ("<tab>", None),
                  ("luego ", PLAIN), ("cierra", ITALIC), (".", PLAIN))
    assert text.text == f"Pulsa {g(1, 'Guardar')} ahora{x(2)}luego {g(3, 'cierra')}."
    out = text.render(translation)
    assert [item for item in out if isinstance(item, Code)] == [Code("<tab>")]  # kept, once
    words = "".join(item.text for item in out if isinstance(item, Text))
    assert re.sub(r"<[^>]*>|\s", "", translation) == re.sub(r"\s", "", words)  # every letter, in order
    well_formed = text.well_formed(translation)
    assert well_formed == ("G1" in translation)  # case is forgiven; everything else is a fallback
    if not well_formed:
        assert {item.style for item in out if isinstance(item, Text)} == {PLAIN}


# -- .docx -----------------------------------------------------------------------------------------


def test_docx_bold_and_italic_inside_a_paragraph_go_around_the_translated_words_in_the_translations_order():
    import docx

    document = docx.Document()
    paragraph = document.add_paragraph()
    paragraph.add_run("El ")
    paragraph.add_run("gato").bold = True
    paragraph.add_run(" come ")
    paragraph.add_run("pescado").italic = True
    paragraph.add_run(" hoy.")
    buffer = io.BytesIO()
    document.save(buffer)
    document = read_document("docx", buffer.getvalue())
    assert document.texts == [f"El {g(1, 'gato')} come {g(2, 'pescado')} hoy."]
    output = document.render([f"Today {g(2, 'fish')} is eaten by the {g(1, 'cat')}."])
    runs = docx.Document(io.BytesIO(output)).paragraphs[0].runs
    assert [(run.text, run.bold, run.italic) for run in runs] == [
        ("Today ", None, None), ("fish", None, True), (" is eaten by the ", None, None), ("cat", True, None),
        (".", None, None)]


def test_docx_tabs_breaks_fields_and_links_keep_their_place():
    paragraph = (
        f'<w:p {W}><w:pPr><w:jc w:val="center"/></w:pPr><w:bookmarkStart w:id="0" w:name="inicio"/>'
        '<w:r><w:t>Página</w:t></w:r><w:r><w:tab/></w:r>'
        '<w:r><w:fldChar w:fldCharType="begin"/></w:r><w:r><w:instrText> PAGE </w:instrText></w:r>'
        '<w:r><w:fldChar w:fldCharType="separate"/></w:r><w:r><w:t>3</w:t></w:r><w:r><w:fldChar w:fldCharType="end"/></w:r>'
        '<w:proofErr w:type="spellStart"/><w:r><w:t xml:space="preserve"> de la </w:t></w:r><w:r><w:br/></w:r>'
        '<w:hyperlink w:anchor="x"><w:r><w:rPr><w:u w:val="single"/></w:rPr><w:t>guía</w:t></w:r></w:hyperlink>'
        '<w:r><w:t xml:space="preserve"> completa</w:t></w:r><w:bookmarkEnd w:id="0"/></w:p>'
    )
    data = docx_with_paragraphs(1, paragraph)
    document = read_document("docx", data)
    assert document.texts == [f"Página{x(1)}{x(2)} de la {x(3)}{g(4, 'guía')} completa"]
    xml = part(document.render([f"Page{x(1)}{x(2)} of the{x(3)} complete {g(4, 'guide')}"]), "word/document.xml")
    body = xml[xml.index("<w:body>"):]
    order = ['<w:jc w:val="center"/>', 'w:name="inicio"', ">Page<", "<w:tab/>", 'w:fldCharType="begin"', " PAGE ",
             ">3<", 'w:fldCharType="end"', "> of the<", "<w:br/>", "> complete <", 'w:anchor="x"', ">guide<",
             "<w:bookmarkEnd"]
    positions = [body.index(marker) for marker in order]
    assert positions == sorted(positions)
    assert "proofErr" not in body  # a spell-check mark means nothing after translation


def test_docx_translation_that_loses_its_tags_keeps_every_word_and_the_tab():
    import docx

    data = docx_with_paragraphs(1, f'<w:p {W}><w:r><w:t>Pulsa</w:t></w:r><w:r><w:tab/></w:r>'
                                   '<w:r><w:rPr><w:b/></w:rPr><w:t xml:space="preserve"> Guardar</w:t></w:r>'
                                   '<w:r><w:t xml:space="preserve"> ahora</w:t></w:r></w:p>')
    output = translated("docx", data, lambda texts: ["Click Save now </span>"])
    paragraph = docx.Document(io.BytesIO(output)).paragraphs[0]
    assert "<w:tab/>" in part(output, "word/document.xml")
    assert paragraph.text.split() == ["Click", "Save", "now"] and not any(run.bold for run in paragraph.runs)


def test_docx_footnotes_and_headers_are_translated_too():
    import docx

    document = docx.Document()
    document.add_paragraph("Cuerpo")
    document.sections[0].header.paragraphs[0].text = "Cabecera"
    buffer = io.BytesIO()
    document.save(buffer)
    out = docx.Document(io.BytesIO(translated("docx", buffer.getvalue())))
    assert out.paragraphs[0].text == "CUERPO" and out.sections[0].header.paragraphs[0].text == "CABECERA"


# -- .odt ------------------------------------------------------------------------------------------


def odt_document() -> bytes:
    from odf.opendocument import OpenDocumentText
    from odf.style import Style, TextProperties
    from odf.text import A, LineBreak, Note, NoteBody, P, S, Span

    document = OpenDocumentText()
    bold = Style(name="Negrita", family="text")
    bold.addElement(TextProperties(fontweight="bold"))
    document.automaticstyles.addElement(bold)
    paragraph = P(text="Pulsa")
    paragraph.addElement(S(c=2))
    paragraph.addElement(Span(stylename=bold, text="Guardar"))
    paragraph.addText(" y lee la ")
    paragraph.addElement(A(href="https://example.org", text="guía"))
    paragraph.addElement(LineBreak())
    paragraph.addText("hoy.")
    note = Note(id="n1", noteclass="footnote")
    body = NoteBody()
    body.addElement(P(text="Una nota al pie"))
    note.addElement(body)
    paragraph.addElement(note)
    document.text.addElement(paragraph)
    buffer = io.BytesIO()
    document.write(buffer)
    return buffer.getvalue()


def test_odt_spans_links_breaks_and_notes_survive_and_notes_are_translated():
    document = read_document("odt", odt_document())
    # text:s is spaces; the note at the end keeps its place untagged, its paragraph translated on its own
    assert document.texts == [f"Pulsa  {g(1, 'Guardar')} y lee la {g(2, 'guía')}{x(3)}hoy.", "Una nota al pie"]
    output = document.render([f"Read the {g(2, 'guide')} and press {g(1, 'Save')}{x(3)}today.", "A footnote"])
    assert zipfile.ZipFile(io.BytesIO(output)).infolist()[0].filename == "mimetype"
    xml = part(output, "content.xml")
    assert re.search(r'Read the <text:a [^>]*xlink:href="https://example.org"[^>]*>guide</text:a> and press '
                     r'<text:span text:style-name="Negrita">Save</text:span><text:line-break/>today\.<text:note ', xml)
    assert "<text:p>A footnote</text:p>" in xml


# -- .pptx -----------------------------------------------------------------------------------------

def test_pptx_runs_line_breaks_and_paragraph_properties_are_kept_on_every_slide():
    first = ('<a:p><a:pPr algn="ctr"/><a:r><a:rPr lang="es-ES"/><a:t>Pulsa </a:t></a:r>'
             '<a:r><a:rPr lang="es-ES" b="1"/><a:t>Guardar</a:t></a:r><a:br><a:rPr lang="es-ES"/></a:br>'
             '<a:r><a:rPr lang="es-ES" dirty="0"/><a:t>y sal.</a:t></a:r><a:endParaRPr lang="es-ES"/></a:p>')
    second = '<a:p><a:r><a:rPr i="1"/><a:t>Adiós</a:t></a:r></a:p><a:p><a:r><a:t>42</a:t></a:r></a:p>'
    document = read_document("pptx", pptx_with_slides(first, second, *["<a:p/>"] * 9))
    # the language and spell-check attributes are not formatting: those runs are one stretch
    assert document.texts == [f"Pulsa {g(1, 'Guardar')}{x(2)}y sal.", "Adiós"]
    output = document.render([f"Press {g(1, 'Save')}{x(2)}and leave.", "Goodbye"])
    slide = part(output, "ppt/slides/slide1.xml")
    assert re.search(r'<a:pPr algn="ctr"/><a:r><a:rPr lang="es-ES"/><a:t>Press </a:t></a:r><a:r><a:rPr lang="es-ES" '
                     r'b="1"/><a:t>Save</a:t></a:r><a:br>.*</a:br><a:r><a:rPr lang="es-ES"/><a:t>and leave.</a:t></a:r>'
                     r'<a:endParaRPr lang="es-ES"/></a:p>', slide)
    assert "<a:t>Goodbye</a:t>" in part(output, "ppt/slides/slide2.xml") and "<a:t>42</a:t>" in part(output, "ppt/slides/slide2.xml")
    assert part(output, "[Content_Types].xml") == part(pptx_with_slides(first, second, *["<a:p/>"] * 9), "[Content_Types].xml")


# -- .epub -----------------------------------------------------------------------------------------


def test_epub_content_documents_are_translated_as_html_and_mimetype_stays_first_and_stored():
    book = epub_with_chapters({"uno.xhtml": "<h1>Capítulo uno</h1><p>Había una <em>vez</em>.</p>",
                               "nav.xhtml": '<nav><ol><li><a href="uno.xhtml">Capítulo uno</a></li></ol></nav>'})
    output = translated("epub", book)
    archive = zipfile.ZipFile(io.BytesIO(output))
    first = archive.infolist()[0]
    assert first.filename == "mimetype" and first.compress_type == zipfile.ZIP_STORED
    assert archive.read("mimetype") == b"application/epub+zip"
    chapter = archive.read("OEBPS/uno.xhtml").decode()
    assert "<h1>CAPÍTULO UNO</h1>" in chapter and "<em>VEZ</em>" in chapter
    assert '<a href="uno.xhtml">CAPÍTULO UNO</a>' in archive.read("OEBPS/nav.xhtml").decode()
    assert archive.read("OEBPS/content.opf") == zipfile.ZipFile(io.BytesIO(book)).read("OEBPS/content.opf")


# -- bad packages ----------------------------------------------------------------------------------


def zip_of(parts: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return out.getvalue()


@pytest.mark.parametrize("fmt, data, words", [
    ("pptx", b"PK\x03\x04 not really a zip", "not a .pptx file"),
    ("epub", b"plain text, not a book", "not a .epub file"),
    ("odt", zip_of({"mimetype": b"application/vnd.oasis.opendocument.text"}), "no content.xml"),
    ("epub", zip_of({"mimetype": b"application/epub+zip"}), "no META-INF/container.xml"),
    ("epub", epub_with_chapters({}, manifest={}), "no content documents"),
    ("epub", epub_with_chapters({}, manifest={"ch9.xhtml": "application/xhtml+xml"}), "OEBPS/ch9.xhtml"),
    ("pptx", zip_of({"ppt/slides/slide1.xml": b"<p:sld><unclosed"}), "not well-formed"),
    ("docx", zip_of({"word/document.xml": (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        b"<w:document " + W.encode() + b"><w:body><w:p><w:r><w:t>&b;</w:t></w:r></w:p></w:body></w:document>")}),
     "declares XML entities"),
])
def test_files_that_are_not_what_their_extension_says_are_refused_naming_the_problem(fmt, data, words):
    with pytest.raises(DocumentError, match=re.escape(words)) as raised:
        read_document(fmt, data)
    assert not isinstance(raised.value, DocumentTooLarge)


def test_zip_bombs_and_packages_of_too_many_files_are_refused_before_parsing():
    bomb = zip_of({"ppt/slides/slide1.xml": b"<a:p/>" * 3_000_000})  # 18 MB of paragraphs in a few kB
    assert len(bomb) < 100_000
    with pytest.raises(DocumentTooLarge, match="unpacks to"):
        read_document("pptx", bomb, limits=DocumentLimits(max_unzipped_bytes=1_000_000))
    with pytest.raises(DocumentTooLarge, match="3000000 XML elements"):
        read_document("pptx", bomb)
    many = zip_of({f"OEBPS/{n}.css": b"" for n in range(50)})
    with pytest.raises(DocumentTooLarge, match="50 files"):
        read_document("epub", many, limits=DocumentLimits(max_parts=20))
    chapters = epub_with_chapters({"uno.xhtml": "<p>Hola</p>" * 200})
    with pytest.raises(DocumentTooLarge, match="paragraphs"):
        read_document("epub", chapters, limits=DocumentLimits(max_texts=100))


def test_damaged_and_encrypted_packages_are_refused_as_unreadable():
    from tests.helpers import pptx_with_slides

    data = bytearray(pptx_with_slides("<a:p><a:r><a:t>hola mundo, una prueba de texto</a:t></a:r></a:p>" * 20))
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo("ppt/slides/slide1.xml")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for index in range(start + 10, start + 40):  # the deflate stream, scrambled
        data[index] ^= 0x5A
    encrypted = bytearray(pptx_with_slides("<a:p><a:r><a:t>hola</a:t></a:r></a:p>"))
    for header in (b"PK\x03\x04", b"PK\x01\x02"):  # the "encrypted" flag on every entry
        at = encrypted.find(header)
        while at != -1:
            encrypted[at + (6 if header == b"PK\x03\x04" else 8)] |= 1
            at = encrypted.find(header, at + 4)
    for damaged in (data, encrypted):
        with pytest.raises(DocumentError, match="not a readable zip archive"):
            read_document("pptx", bytes(damaged))
