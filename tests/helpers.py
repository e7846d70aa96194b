"""Stand-in translators and small helpers shared by test modules (fixtures live in conftest.py).

Stand-ins answer at once without a model, so tests of the service, the batching queue and the file
translators can script exactly what the translator returns and see exactly what it was asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import threading
import zipfile
from pathlib import Path
from typing import Callable, NamedTuple

from carousel.model.search import SearchConfig
from carousel.model.translator import Translation


class Call(NamedTuple):
    """One call of a stand-in's `translate`: the sentences of a (possibly merged) batch and its search."""

    sentences: list[str]
    search: SearchConfig


def upper_case(sentence: str, search: SearchConfig) -> str:
    return sentence.upper()


def with_beam(sentence: str, search: SearchConfig) -> str:
    """"<sentence>@<beam>": an answer that shows which beam size the translator was given."""
    return f"{sentence}@{search.beam_size}"


class StandInTranslator:
    """The sentence-level interface the service and its batching queue use (`translate`).

    Each sentence's translation is `render(sentence, search)` (upper-cased by default); every call is
    recorded in `calls`; `gate` holds every call until it is set (for queue, timeout and merging tests).
    """

    src_lang, tgt_lang = "es", "en"

    def __init__(self, blocked: bool = False, render: Callable[[str, SearchConfig], str] = upper_case):
        self.gate = threading.Event()
        if not blocked:
            self.gate.set()
        self.render = render
        self.calls: list[Call] = []

    @property
    def batches(self) -> list[list[str]]:
        """The sentences of each call, in call order."""
        return [call.sentences for call in self.calls]

    def translate(self, sentences, search, batch_tokens):
        self.calls.append(Call(list(sentences), search))
        self.gate.wait(30)
        rendered = [self.render(s, search) for s in sentences]
        return [[Translation(text, -0.5, [s, "</s>"], [text, "</s>"])] for s, text in zip(sentences, rendered)]


class StandInTextTranslator:
    """The text-level interface the file translators use (`translate_texts`): each text's single
    translation is `render(text)` with score 0 (upper-cased by default)."""

    def __init__(self, render: Callable[[str], str] = str.upper, src_lang: str = "es", tgt_lang: str = "en"):
        self.render = render
        self.src_lang, self.tgt_lang = src_lang, tgt_lang

    def translate_texts(self, texts, search, batch_tokens=None, glossary=None):
        return [[(self.render(text), 0.0)] for text in texts]


def stand_in_app(models_dir: Path, translator, load_gate: threading.Event | None = None, **settings):
    """The service over `translator`, served as the model directory `stand-in-es-en` of `models_dir`;
    `load_gate` holds loading until it is set; `settings` are ServiceSettings fields."""
    from carousel.service.app import create_app
    from carousel.service.registry import ModelRegistry
    from carousel.service.settings import ServiceSettings

    (models_dir / "stand-in-es-en").mkdir(exist_ok=True)
    (models_dir / "stand-in-es-en" / "config.json").write_text("{}")

    def load(directory, quantization):
        if load_gate is not None:
            load_gate.wait(30)
        translator.card = {"name": "stand-in"}
        return translator

    # One batching worker unless a test asks for more: a blocked stand-in then holds the whole queue.
    service_settings = ServiceSettings(models_dir=models_dir, **{"batch_workers": 1, **settings})
    return create_app(service_settings, ModelRegistry(service_settings, load))


async def until(condition: Callable[[], object], timeout: float = 30.0) -> None:
    """Wait, polling, until `condition()` is true; fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition never became true"
        await asyncio.sleep(0.005)


@contextlib.contextmanager
def page_in_chromium(models_dir: Path, settings: dict | None = None, **page_options):
    """The service on `models_dir` on a free port (uvicorn in a thread) and a page of Debian's chromium
    (driven by playwright) on it: yields (page, base URL, page errors). `settings` are ServiceSettings
    fields; `page_options` playwright's (viewport, locale, permissions, ...). .ci/run installs both."""
    import socket

    import uvicorn
    from playwright import sync_api

    from carousel.service.app import create_app
    from carousel.service.settings import ServiceSettings

    chromium = Path("/usr/bin/chromium")
    assert chromium.exists(), "the page test needs Debian's chromium: apt-get install chromium (see README)"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(ServiceSettings(models_dir=models_dir, port=port, **(settings or {})))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        assert app.state.registry.wait_until_loaded(120)
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(chromium))
            page = browser.new_page(**page_options)
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            try:
                yield page, f"http://127.0.0.1:{port}", errors
            finally:
                browser.close()
    finally:
        server.should_exit = True
        thread.join(30)


def run_with_queue(translator: "StandInTranslator", scenario, **options):
    """Run `scenario(queue)` on a started BatchingQueue over `translator`; afterwards release the
    translator's gate (a blocked stand-in) and close the queue."""
    from carousel.service.queue import BatchingQueue

    queue = BatchingQueue(translator, **options)
    queue.start()

    async def main():
        try:
            return await scenario(queue)
        finally:
            translator.gate.set()
            await asyncio.to_thread(queue.close, 30)

    return asyncio.run(main())


def run_app(app, scenario, patience: float = 30.0):
    """Run `scenario(client)` (an httpx.AsyncClient on `app`, in process) once the models are loaded."""
    import httpx

    async def main():
        async with app.router.lifespan_context(app):
            assert await asyncio.to_thread(app.state.registry.wait_until_loaded, patience)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://service", timeout=patience) as client:
                return await scenario(client)

    return asyncio.run(main())


def docx_with_paragraphs(count: int, paragraph: str = "<w:p><w:r><w:t>Hola</w:t></w:r></w:p>") -> bytes:
    """A .docx whose body holds `count` copies of `paragraph` (raw WordprocessingML): a paragraph bomb
    compresses to a few kilobytes."""
    import docx

    document = docx.Document()
    buffer = io.BytesIO()
    document.save(buffer)
    original = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in original.infolist():
            data = original.read(info.filename)
            if info.filename == "word/document.xml":
                data = data.replace(b"<w:body>", b"<w:body>" + paragraph.encode() * count, 1)
            archive.writestr(info, data)
    return out.getvalue()


def pptx_with_slides(*slides: str) -> bytes:
    """A .pptx whose slides hold the given DrawingML paragraphs (`<a:p>…</a:p>` each, one text box a
    slide): the parts a presentation needs to be listed and read, not a full PowerPoint template."""
    drawing = "http://schemas.openxmlformats.org/drawingml/2006/main"
    presentation = "http://schemas.openxmlformats.org/presentationml/2006/main"
    relations = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    kind = "application/vnd.openxmlformats-officedocument.presentationml"
    overrides = "".join(f'<Override PartName="/ppt/slides/slide{n}.xml" ContentType="{kind}.slide+xml"/>'
                        for n in range(1, len(slides) + 1))
    parts = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/ppt/presentation.xml" ContentType="{kind}.presentation.main+xml"/>{overrides}</Types>'),
        "_rels/.rels": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{relations}/officeDocument" Target="ppt/presentation.xml"/></Relationships>'),
        "ppt/presentation.xml": (
            f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><p:presentation xmlns:p="{presentation}" '
            f'xmlns:r="{relations}"><p:sldIdLst>'
            + "".join(f'<p:sldId id="{255 + n}" r:id="rId{n}"/>' for n in range(1, len(slides) + 1))
            + "</p:sldIdLst></p:presentation>"),
    }
    for number, paragraphs in enumerate(slides, start=1):
        parts[f"ppt/slides/slide{number}.xml"] = (
            f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><p:sld xmlns:a="{drawing}" '
            f'xmlns:p="{presentation}" xmlns:r="{relations}"><p:cSld><p:spTree><p:sp><p:txBody><a:bodyPr/>'
            f"{paragraphs}</p:txBody></p:sp></p:spTree></p:cSld></p:sld>")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            archive.writestr(name, text)
    return out.getvalue()


def epub_with_chapters(chapters: dict[str, str], manifest: dict[str, str] | None = None) -> bytes:
    """An EPUB 3 of the given XHTML bodies (file name under OEBPS/ -> the <body>'s content), listed in
    that order; `manifest` replaces the manifest's items (href -> media type) for malformed books."""
    items = manifest if manifest is not None else {name: "application/xhtml+xml" for name in chapters}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip")  # stored, first
        archive.writestr("META-INF/container.xml", (
            '<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
            '<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
            "</rootfiles></container>"))
        archive.writestr("OEBPS/content.opf", (
            '<?xml version="1.0" encoding="UTF-8"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0" '
            'unique-identifier="id"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Libro</dc:title>'
            '<dc:identifier id="id">x</dc:identifier><dc:language>es</dc:language></metadata><manifest>'
            + "".join(f'<item id="i{n}" href="{href}" media-type="{kind}"/>' for n, (href, kind) in enumerate(items.items()))
            + '</manifest><spine>' + "".join(f'<itemref idref="i{n}"/>' for n in range(len(items))) + "</spine></package>"))
        for name, body in chapters.items():
            archive.writestr(f"OEBPS/{name}", (
                '<?xml version="1.0" encoding="UTF-8"?><!DOCTYPE html><html xmlns="http://www.w3.org/1999/xhtml">'
                f"<head><title>{name}</title></head><body>{body}</body></html>"))
    return out.getvalue()
