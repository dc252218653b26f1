"""A live cmoc server on loopback and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest
from flask_migrate import upgrade
from playwright.sync_api import sync_playwright
from werkzeug.serving import make_server

from cmoc import ROOT, create_app
from cmoc.extensions import db

CHROMIUM = os.environ.get("CMOC_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
# Chromium flags for a closed network, as root, with no GPU.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]


class LiveServer:
    def __init__(self, app):
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.thread.join(timeout=10)


@pytest.fixture
def live_config() -> dict:
    """Extra app configuration for the live server; tests override this fixture."""
    return {}


@pytest.fixture
def live_server(tmp_path: Path, live_config):
    app = create_app({"SECRET_KEY": "browser-test", "DATABASE_URL": f"sqlite:///{tmp_path}/b.db",
                      "INSTANCE_PATH": str(tmp_path), **live_config})
    with app.app_context():
        upgrade()
    with LiveServer(app) as server:
        server.app = app
        yield server
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's chromium package")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.problems = problems
    yield page
    context.close()


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path
