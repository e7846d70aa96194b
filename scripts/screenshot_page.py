"""Make the README's screenshot of the web page: the service on the shipped models, a Spanish text
translated with "Detect language", in Debian's headless Chromium (driven by playwright, as the browser
tests do).

    python scripts/screenshot_page.py                      # writes docs/page.png
    python scripts/screenshot_page.py --out /tmp/page.png --models-dir runs/mine --locale es-ES

The PNG is reduced to a palette of 64 colours, so that the repository stays small (about 40 kB).
Needs `apt-get install chromium` and the dev extras (`pip install -e ".[dev]"`: playwright).
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
TEXT = "El gato duerme en el sofá. Mañana iremos a la playa con mis padres."
VIEWPORT = {"width": 1000, "height": 490}
COLOURS = 64


@contextlib.contextmanager
def running_service(models_dir: Path | None):
    """The service on a free local port, in a thread; yields its base URL once the models are loaded."""
    import uvicorn

    from carousel.service.app import create_app
    from carousel.service.settings import ServiceSettings

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = ServiceSettings(port=port, **({"models_dir": models_dir} if models_dir else {}))
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        if not app.state.registry.wait_until_loaded(300) or not app.state.registry.models:
            raise SystemExit(f"no model could be loaded from {settings.models_dir}")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def screenshot(url: str, out: Path, locale: str) -> None:
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        raise SystemExit("needs Debian's chromium: apt-get install chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            page = browser.new_page(viewport=VIEWPORT, locale=locale)
            page.goto(f"{url}/")
            page.wait_for_selector("#target option", state="attached")
            # the heatmap is below the fold: not asked for (the option sits in the closed Options box)
            page.eval_on_selector("#show-alignment", "box => { box.checked = false; }")
            with page.expect_response(lambda r: r.url.endswith("/translate"), timeout=120_000):
                page.fill("#text", TEXT)  # translated as typed, after the pause
            page.wait_for_selector("#copy:not([hidden])")
            page.screenshot(path=str(out))
        finally:
            browser.close()


def shrink(path: Path) -> None:
    """The same picture in a palette of COLOURS colours: text and flat colours survive it."""
    from PIL import Image

    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=COLOURS, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "page.png")
    parser.add_argument("--models-dir", type=Path, help="default: the shipped models/")
    parser.add_argument("--locale", default="en-US", help="the browser's language (es-ES: the page in Spanish)")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with running_service(args.models_dir) as url:
        screenshot(url, args.out, args.locale)
    shrink(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} kB)")


if __name__ == "__main__":
    main()
