"""Keystroke to tweet counter, in Chromium: the in-browser count (twitter-text from npm) side by
side with the server round trip it replaced (the same page with the library blocked, so the
counter waits for POST /preview).

    .venv/bin/python -m bench.keystroke [--keys 60]

For each key: `keydown` → the counter's text changes (a MutationObserver) → the next frame
(requestAnimationFrame), all timed with performance.now() inside the page. One key at a time,
each waiting for its own counter update, so the figures are per keystroke.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import tempfile
import threading

from flask_migrate import upgrade
from playwright.sync_api import sync_playwright
from werkzeug.security import generate_password_hash
from werkzeug.serving import make_server

from cmoc import create_app
from cmoc.extensions import db
from cmoc.models import Incident, User

PASSWORD = "bench-password-1"
CHROMIUM = os.environ.get("CMOC_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
PROBE = """() => {
  window.__lat = []; let t0 = null;
  const box = document.getElementById('text_twitter');
  const counter = document.getElementById('tweet-count');
  box.addEventListener('keydown', () => { t0 = performance.now(); }, true);
  new MutationObserver(() => {
    if (t0 === null) return;
    const start = t0, updated = performance.now(); t0 = null;
    requestAnimationFrame(() => window.__lat.push([updated - start, performance.now() - start]));
  }).observe(counter, {childList: true, characterData: true, subtree: true});
}"""


def _app(workdir: str):
    app = create_app({"SECRET_KEY": "bench", "DATABASE_URL": f"sqlite:///{workdir}/b.sqlite3",
                      "INSTANCE_PATH": workdir})
    with app.app_context():
        upgrade()
        user = User(username="carol", role="cmoc", password_hash=generate_password_hash(PASSWORD))
        db.session.add(user)
        db.session.flush()
        incident = Incident(title="Elevated error rates", severity="S1", state="investigating",
                            status="service_disruption", components=["API"],
                            declared_by_id=user.id)
        db.session.add(incident)
        db.session.commit()
        incident_id = incident.id
        db.session.remove()
    return app, incident_id


def measure(browser, base: str, incident_id: int, *, keys: int, local: bool) -> list[list[float]]:
    context = browser.new_context()
    page = context.new_page()
    if not local:
        page.route("**/vendor/twitter-text-*.js", lambda route: route.abort())
    page.goto(f"{base}/login")
    page.fill("#username", "carol")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{base}/incidents/{incident_id}/updates/new")
    page.fill("#var_symptom", "errors")
    box = page.locator("#text_twitter")
    box.fill("We're seeing errors on GitLab.com.")
    page.wait_for_timeout(1000)
    page.evaluate(PROBE)
    for n in range(keys):
        box.press("x")
        page.wait_for_function("n => window.__lat.length > n", arg=n, timeout=30_000)
    figures = page.evaluate("window.__lat")
    context.close()
    return figures


def _line(name: str, figures: list[list[float]]) -> str:
    updated = sorted(f[0] for f in figures)
    painted = sorted(f[1] for f in figures)

    def p(values: list[float], q: float) -> float:
        return values[min(len(values) - 1, int(q * len(values)))]
    return (f"{name}: n={len(figures)} to counter p50={statistics.median(updated):.2f}ms "
            f"p99={p(updated, .99):.2f}ms; to next frame p50={statistics.median(painted):.2f}ms "
            f"p99={p(painted, .99):.2f}ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, default=60)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    workdir = tempfile.mkdtemp(prefix="cmoc-bench-keys-")
    app, incident_id = _app(workdir)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                 args=["--no-sandbox"])
            local = measure(browser, base, incident_id, keys=args.keys, local=True)
            remote = measure(browser, base, incident_id, keys=max(10, args.keys // 4),
                             local=False)
            browser.close()
    finally:
        server.shutdown()
    print(_line("in browser (twitter-text)", local))
    print(_line("server round trip (baseline)", remote))
    ratio = statistics.median(f[1] for f in remote) / statistics.median(f[1] for f in local)
    print(f"keystroke to painted counter: in-browser is {ratio:.0f}x faster (p50); "
          "target <= 16 ms")


if __name__ == "__main__":
    main()
