"""Documents translated whole (formats/documents.py): what each format keeps, and gettext done properly.

Translations come from a visible rule (upper-casing, or a marker around each text) so each test can see
exactly what was translated and what was kept; `msgfmt` (GNU gettext) judges the catalogs.
"""

from __future__ import annotations

import io
import subprocess

import polib
import pytest

from carousel.formats.documents import DocumentError, document_format, read_document, translate_document

upper = lambda texts: [text.upper() for text in texts]  # noqa: E731


def marked(texts):
    return [f"«{text}»" for text in texts]


def translated(fmt, data, translate=upper, **options) -> bytes:
    return translate_document(read_document(fmt, data, "es", "en", **options), translate)


def test_format_comes_from_the_extension_and_unknown_ones_are_named():
    assert document_format("A.PO") == "po" and document_format("x.pot") == "po"
    assert document_format("page.htm") == "html" and document_format("subs.srt") == "srt"
    with pytest.raises(DocumentError, match=r"\.pdf.*supported"):
        document_format("paper.pdf")


def test_plain_text_keeps_blank_lines_and_indentation():
    data = "Hola mundo\n\n   sangría aquí  \n---\n".encode()
    assert translated("text", data).decode() == "HOLA MUNDO\n\n   SANGRÍA AQUÍ  \n---\n"


def test_html_keeps_markup_byte_for_byte_and_skips_scripts():
    page = ('<!DOCTYPE html><html><head><title>Título</title><script>var hola = "no";</script></head>'
            '<body class="x"><p>Buenos  días &amp; noches</p><img src="a.png" alt="x"/></body></html>')
    out = translated("html", page.encode(), marked).decode()
    assert out == ('<!DOCTYPE html><html><head><title>«Título»</title><script>var hola = "no";</script></head>'
                   '<body class="x"><p>«Buenos días &amp; noches»</p><img src="a.png" alt="«x»"/></body></html>')


def test_subrip_keeps_numbering_and_timings():
    import srt

    data = ("1\n00:00:01,000 --> 00:00:02,500\nHola\n\n7\n00:00:03,000 --> 00:00:04,000\n♪\n\n"
            "8\n00:01:00,000 --> 00:01:02,000\nAdiós, amigo\n").encode()
    cues = list(srt.parse(translated("srt", data).decode()))
    assert [c.index for c in cues] == [1, 7, 8]
    assert [c.content for c in cues] == ["HOLA", "♪", "ADIÓS, AMIGO"]
    assert [(c.start.total_seconds(), c.end.total_seconds()) for c in cues] == [(1, 2.5), (3, 4), (60, 62)]
    with pytest.raises(DocumentError):
        read_document("srt", b"not a subtitle file\n")


# -- gettext ---------------------------------------------------------------------------------------

TEMPLATE = r'''# Demo.
#, fuzzy
msgid ""
msgstr ""
"Project-Id-Version: demo 1.0\n"
"PO-Revision-Date: YEAR-MO-DA HO:MI+ZONE\n"
"Last-Translator: FULL NAME <EMAIL@ADDRESS>\n"
"Language-Team: LANGUAGE <LL@li.org>\n"
"Language: \n"
"MIME-Version: 1.0\n"
"Content-Type: text/plain; charset=CHARSET\n"
"Content-Transfer-Encoding: 8bit\n"
"Plural-Forms: nplurals=INTEGER; plural=EXPRESSION;\n"

#: src/main.c:10
msgid "_Archivo"
msgstr ""

#, c-format
msgid "Se borraron %d archivos de %s"
msgstr ""

#, c-format
msgid "Un archivo"
msgid_plural "%d archivos"
msgstr[0] ""
msgstr[1] ""

#, c-format
msgid "%1$s de %2$s"
msgstr ""

#, python-format
msgid "Hola %(name)s, tienes {0} mensajes"
msgstr ""

msgctxt "menu"
msgid "Abrir"
msgstr ""

msgctxt "verbo"
msgid "Abrir"
msgstr "Open it"

msgid "&Guardar como"
msgstr ""

msgid "Ya traducido"
msgstr "Already translated"

#~ msgid "Obsoleto"
#~ msgstr ""
'''


def _catalog(data: bytes) -> polib.POFile:
    return polib.pofile(data.decode())


def _msgfmt_check(tmp_path, data: bytes) -> subprocess.CompletedProcess:
    path = tmp_path / "out.po"
    path.write_bytes(data)
    # --use-fuzzy: our new translations are fuzzy, and msgfmt skips fuzzy entries otherwise
    return subprocess.run(["msgfmt", "--check", "--check-accelerators=_", "--use-fuzzy", "-o", "/dev/null", str(path)],
                          capture_output=True, text=True)


def test_gettext_template_becomes_a_catalog_msgfmt_accepts(tmp_path):
    out = translated("po", TEMPLATE.encode(), marked)
    check = _msgfmt_check(tmp_path, out)
    assert check.returncode == 0, check.stderr
    catalog = _catalog(out)
    assert catalog.metadata["Language"] == "en"
    assert catalog.metadata["Plural-Forms"].startswith("nplurals=2;")
    assert "charset=UTF-8" in catalog.metadata["Content-Type"]
    entries = {(e.msgctxt, e.msgid): e for e in catalog}
    assert entries[(None, "_Archivo")].msgstr == "«_Archivo»"  # the mark goes before the first letter
    assert entries[(None, "&Guardar como")].msgstr == "«&Guardar como»"
    assert entries[(None, "Se borraron %d archivos de %s")].msgstr == "«Se borraron» %d «archivos de» %s"
    assert entries[(None, "%1$s de %2$s")].msgstr == "%1$s «de» %2$s"
    assert entries[(None, "Hola %(name)s, tienes {0} mensajes")].msgstr == "«Hola» %(name)s«, tienes» {0} «mensajes»"
    plural = entries[(None, "Un archivo")]
    assert plural.msgstr_plural == {0: "«Un archivo»", 1: "%d «archivos»"}
    # new translations are fuzzy, for a reviewer; existing ones and their flags are untouched
    assert all("fuzzy" in entries[key].flags for key in [(None, "_Archivo"), (None, "Un archivo"), ("menu", "Abrir")])
    assert entries[("menu", "Abrir")].msgstr == "«Abrir»"
    assert entries[("verbo", "Abrir")].msgstr == "Open it" and "fuzzy" not in entries[("verbo", "Abrir")].flags
    assert entries[(None, "Ya traducido")].msgstr == "Already translated"
    assert [e.msgid for e in catalog.obsolete_entries()] == ["Obsoleto"]
    assert entries[(None, "_Archivo")].occurrences == [("src/main.c", "10")]


def test_msgfmt_check_would_catch_a_lost_placeholder(tmp_path):
    """The check the previous test relies on is real: a translation that drops %d is refused."""
    catalog = _catalog(translated("po", TEMPLATE.encode(), marked))
    next(e for e in catalog if e.msgid.startswith("Se borraron")).msgstr = "«borrados» %s"
    assert _msgfmt_check(tmp_path, str(catalog).encode()).returncode != 0


def test_retranslate_replaces_existing_translations_and_marks_them_fuzzy():
    catalog = _catalog(translated("po", TEMPLATE.encode(), upper, overwrite=True))
    entry = next(e for e in catalog if e.msgid == "Ya traducido")
    assert entry.msgstr == "YA TRADUCIDO" and "fuzzy" in entry.flags


def test_plural_forms_follow_the_catalogs_own_count():
    three = TEMPLATE.replace("nplurals=INTEGER; plural=EXPRESSION;",
                             "nplurals=3; plural=(n==1 ? 0 : n%10>=2 && n%10<=4 ? 1 : 2);")
    catalog = _catalog(translated("po", three.encode(), upper))
    plural = next(e for e in catalog if e.msgid_plural)
    assert plural.msgstr_plural == {0: "UN ARCHIVO", 1: "%d ARCHIVOS", 2: "%d ARCHIVOS"}


# -- office documents ------------------------------------------------------------------------------


def test_docx_keeps_styles_tables_and_run_formatting():
    import docx

    document = docx.Document()
    document.add_heading("Capítulo uno", level=1)
    paragraph = document.add_paragraph()
    paragraph.add_run("Texto en negrita").bold = True
    paragraph.add_run(" y normal.")
    table = document.add_table(rows=1, cols=2)
    table.cell(0, 0).text = "Celda"
    table.cell(0, 1).text = "42"
    document.sections[0].footer.paragraphs[0].text = "Pie de página"
    buffer = io.BytesIO()
    document.save(buffer)

    out = docx.Document(io.BytesIO(translated("docx", buffer.getvalue())))
    assert out.paragraphs[0].text == "CAPÍTULO UNO" and out.paragraphs[0].style.name == "Heading 1"
    assert out.paragraphs[1].text == "TEXTO EN NEGRITA Y NORMAL."
    assert out.paragraphs[1].runs[0].bold is True
    assert [c.text for c in out.tables[0].rows[0].cells] == ["CELDA", "42"]
    assert out.sections[0].footer.paragraphs[0].text == "PIE DE PÁGINA"


def test_odt_keeps_paragraph_styles():
    from odf import teletype
    from odf.opendocument import OpenDocumentText, load
    from odf.style import Style, TextProperties
    from odf.text import H, P, Span

    document = OpenDocumentText()
    bold = Style(name="Bold", family="text")
    bold.addElement(TextProperties(fontweight="bold"))
    document.automaticstyles.addElement(bold)
    document.text.addElement(H(outlinelevel=1, text="Título"))
    paragraph = P(text="Hola ")
    paragraph.addElement(Span(stylename=bold, text="mundo"))
    document.text.addElement(paragraph)
    document.text.addElement(P(text="123"))
    buffer = io.BytesIO()
    document.write(buffer)

    out = load(io.BytesIO(translated("odt", buffer.getvalue())))
    from odf.text import H as OutH, P as OutP

    assert [teletype.extractText(h) for h in out.getElementsByType(OutH)] == ["TÍTULO"]
    assert [teletype.extractText(p) for p in out.getElementsByType(OutP)] == ["HOLA MUNDO", "123"]


def test_damaged_office_files_are_document_errors():
    with pytest.raises(DocumentError, match="zip"):
        read_document("docx", b"PK not really")
    with pytest.raises(DocumentError):
        read_document("odt", b"plain text")


# -- hostile documents: bounded before they are translated ------------------------------------------


def _catalog_with(plural_forms: str) -> bytes:
    return TEMPLATE.replace("nplurals=INTEGER; plural=EXPRESSION;", plural_forms).encode()


@pytest.mark.parametrize("plural_forms, words", [
    ("nplurals=1000000; plural=(n != 1);", ["Plural-Forms", "1000000 plural forms", "1 to 6"]),
    ("nplurals=7; plural=(n != 1);", ["7 plural forms"]),
    ("nplurals=2; plural=n(;", ["Plural-Forms", "gettext rejects"]),
    ("nplurals=2; plural=n%10;", ["Plural-Forms", "picks plural form 9", "nplurals is 2"]),
])
def test_a_plural_forms_header_gettext_would_refuse_is_named_before_anything_is_built(plural_forms, words):
    # 119 bytes of header once made 22.9 MB of output (nplurals=1000000), or killed the server (99999999)
    with pytest.raises(DocumentError) as refused:
        read_document("po", _catalog_with(plural_forms), "es", "en")
    for word in words:
        assert word in str(refused.value)


def test_an_unterminated_string_in_a_catalog_is_refused_naming_its_line():
    # polib took "Hola mundo as "Hola mund", without a word; msgfmt refuses it
    catalog = 'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\nmsgid "Hola mundo\nmsgstr ""\n'
    with pytest.raises(DocumentError, match=r'line 5: unterminated string: msgid "Hola mundo'):
        read_document("po", catalog.encode(), "es", "en")
    continued = 'msgid ""\nmsgstr ""\n\nmsgid ""\n"Hola "\n"mundo\nmsgstr ""\n'
    with pytest.raises(DocumentError, match="line 6"):
        read_document("po", continued.encode(), "es", "en")
    fine = 'msgid ""\nmsgstr ""\n\n#~ msgid "Viejo"\n#~ msgstr ""\nmsgid "Dijo \\"hola\\"."\nmsgstr ""\n'
    assert read_document("po", fine.encode(), "es", "en").texts == ['Dijo "hola".']


def test_a_paragraph_bomb_is_refused_from_its_raw_xml_before_any_parser_runs():
    import time

    from carousel.formats.documents import DocumentLimits, DocumentTooLarge
    from tests.helpers import docx_with_paragraphs

    bomb = docx_with_paragraphs(300_000, "<w:p/>")  # 1.8 MB of XML in a few kilobytes
    started = time.perf_counter()
    with pytest.raises(DocumentTooLarge, match="300000 paragraphs; the limit is 10000"):
        read_document("docx", bomb)
    assert time.perf_counter() - started < 5  # counted, not parsed (parsing took 10 s and more)
    with pytest.raises(DocumentTooLarge, match="XML elements"):
        read_document("docx", docx_with_paragraphs(3_000, "<w:p><w:r><w:t>a</w:t></w:r></w:p>"),
                      limits=DocumentLimits(max_elements=5_000))
    with pytest.raises(DocumentTooLarge, match="unpacks to"):
        read_document("docx", bomb, limits=DocumentLimits(max_unzipped_bytes=1_000_000))


def test_texts_characters_html_parse_time_and_the_rendered_size_are_bounded():
    from carousel.formats.documents import DocumentLimits, DocumentTooLarge

    with pytest.raises(DocumentTooLarge, match="11 texts to translate; the limit is 10"):
        read_document("text", b"hola\n" * 11, limits=DocumentLimits(max_texts=10))
    with pytest.raises(DocumentTooLarge, match="characters"):
        read_document("srt", b"1\n00:00:01,000 --> 00:00:02,000\n" + b"a" * 101 + b"\n",
                      limits=DocumentLimits(max_chars=100))
    with pytest.raises(DocumentTooLarge, match="could not be parsed within"):  # the HTML splitter's deadline
        read_document("html", b"<a " * 6000, limits=DocumentLimits(parse_seconds=0.001))
    document = read_document("text", b"a\n" * 10, limits=DocumentLimits(max_output_ratio=2))
    with pytest.raises(DocumentTooLarge, match="translated file would be"):
        document.render(["x" * 200_000] * 10)  # 2 MB from 20 bytes: over 2 × 20 + 1 MiB


def test_text_without_letters_is_kept_as_it_is_in_every_format():
    # one rule for "anything to translate?" (model/sentences.py has_words): a letter
    assert translated("text", "Hola\n2024\n12:30 —\n".encode(), marked).decode() == "«Hola»\n2024\n12:30 —\n"
    assert translated("html", b"<p>Hola</p><p>3.</p>", marked).decode() == "<p>«Hola»</p><p>3.</p>"


def test_gettext_messages_of_several_lines_keep_their_breaks_and_indentation(tmp_path):
    help_text = (
        '#, c-format\nmsgid ""\n"Uso: %s [opciones]\\n"\n"\\n"\n"  -h, --help     muestra esta ayuda\\n"\n'
        '"  -v             más detalles\\n"\nmsgstr ""\n\n'
        'msgid "Un archivo\\nborrado"\nmsgid_plural "%d archivos\\nborrados"\nmsgstr[0] ""\nmsgstr[1] ""\n'
    )
    catalog = TEMPLATE.split("#: src/main.c:10")[0] + help_text
    asked = []

    def translate(texts):
        asked.extend(texts)
        return [text.upper() for text in texts]

    out = translated("po", catalog.encode(), translate)
    assert not any("\n" in text for text in asked)  # each line translated as a line
    entries = {e.msgid: e for e in _catalog(out)}
    assert entries["Uso: %s [opciones]\n\n  -h, --help     muestra esta ayuda\n  -v             más detalles\n"].msgstr == (
        "USO: %s [OPCIONES]\n\n  -H, --HELP MUESTRA ESTA AYUDA\n  -V MÁS DETALLES\n")
    assert entries["Un archivo\nborrado"].msgstr_plural == {0: "UN ARCHIVO\nBORRADO", 1: "%d ARCHIVOS\nBORRADOS"}
    check = _msgfmt_check(tmp_path, out)
    assert check.returncode == 0, check.stderr
