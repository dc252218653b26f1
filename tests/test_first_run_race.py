"""First run under concurrency (issue 13, finding 2): however many /setup posts arrive at once,
the database lets exactly one of them create the first admin."""

from __future__ import annotations

import threading
import urllib.error
import urllib.parse
import urllib.request

from sqlalchemy import func, select
from werkzeug.serving import make_server

from cmoc.extensions import db
from cmoc.models import User
from tests.factories import PASSWORD

SETUPS = 12


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _post_setup(url: str, username: str) -> tuple[int, str]:
    """POSTs the setup form; (status, Location) without following redirects."""
    body = urllib.parse.urlencode({"username": username, "password": PASSWORD,
                                   "confirm": PASSWORD}).encode()
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(urllib.request.Request(f"{url}/setup", data=body), timeout=60) as r:
            return r.status, r.headers.get("Location", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Location", "")


def test_concurrent_setups_create_exactly_one_admin(app):
    """Twelve first-run posts, with twelve different names, at the same moment against a live
    threaded server: one admin, the others sent to sign in or told setup is done, no 5xx."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    start = threading.Barrier(SETUPS)
    answers: list[tuple[int, str]] = []

    def one(i: int) -> None:
        start.wait()
        answers.append(_post_setup(url, f"admin{i}"))

    try:
        threads = [threading.Thread(target=one, args=(i,)) for i in range(SETUPS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    finally:
        server.shutdown()
        serving.join(timeout=10)
    db.session.expire_all()
    assert len(answers) == SETUPS
    assert all(status < 500 for status, _ in answers), answers
    assert db.session.scalar(select(func.count(User.id))) == 1
    assert db.session.scalar(select(User.role)) == "admin"
    # The winner is signed in and sent to the dashboard; every other post is refused: sent to
    # sign in, or shown "Setup is already done" (400).
    assert [a for a in answers if a == (302, "/")] == [(302, "/")], answers
    assert all(a == (302, "/login") or a[0] == 400 for a in answers if a != (302, "/")), answers
