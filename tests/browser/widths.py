"""Prints the page width of the three main pages on phone viewports (and the timeline height).

    .venv/bin/python -m tests.browser.widths [SCREENSHOT_FOLDER]

Seeds the busy scenario against the fake channel APIs, signs in and measures
`document.documentElement.scrollWidth` against `innerWidth` at 360, 390 and 1366 px.
"""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path

from flask_migrate import upgrade
from playwright.sync_api import sync_playwright

from cmoc import create_app
from cmoc.fake_apis import FakeApis
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, LiveServer
from tests.browser.scenario import seed
from tests.factories import PASSWORD

WIDTHS = (360, 390, 1366)


def pages(ids) -> dict[str, str]:
    return {"dashboard": "/", "incident": f"/incidents/{ids.main}",
            "draft": f"/incidents/{ids.main}/updates/new"}


def measure(shots: Path | None = None) -> list[tuple[str, int, int, int, int]]:
    """(page, viewport, scrollWidth, innerWidth, timeline height) rows."""
    rows = []
    fakes = FakeApis().start()
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"SECRET_KEY": "widths", "DATABASE_URL": f"sqlite:///{tmp}/w.db",
                          "INSTANCE_PATH": tmp, **fakes.env(), "PUBLISH_BACKOFF_SECONDS": 0})
        with app.app_context():
            upgrade()
        ids = seed(app)
        with LiveServer(app) as server, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=CHROMIUM_ARGS)
            for width in WIDTHS:
                context = browser.new_context(viewport={"width": width, "height": 800})
                page = context.new_page()
                page.goto(server.url + "/login")
                page.fill("#username", "carol")
                page.fill("#password", PASSWORD)
                page.click("main button[type=submit]")
                page.wait_for_url(server.url + "/")
                for name, path in pages(ids).items():
                    page.goto(server.url + path)
                    scroll, inner, timeline = page.evaluate(
                        "[document.documentElement.scrollWidth, innerWidth,"
                        " (document.querySelector('.timeline') || {}).offsetHeight || 0]")
                    rows.append((name, width, scroll, inner, timeline))
                    if shots:
                        page.screenshot(path=str(shots / f"{name}-{width}.png"), full_page=True)
                context.close()
            browser.close()
    fakes.stop()
    return rows


if __name__ == "__main__":
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else None  # optional: save screenshots
    for name, width, scroll, inner, timeline in measure(folder):
        extra = f"  timeline {timeline}px" if timeline else ""
        print(f"{name:10} {width:5}px viewport: scrollWidth {scroll:5} / innerWidth {inner}{extra}")
