"""Issue 13, finding 4: parallel password guesses against gunicorn (two workers, eight threads
each) check at most `login_lock_after` passwords, and the right password sent in the burst
gets in only if it was one of those."""

from __future__ import annotations

import re
import threading

import requests

from cmoc.extensions import db
from cmoc.models import AuditEntry
from tests.factories import PASSWORD, make_user

GUESSES = 120
LIMIT = 5


def _burst(server, passwords: list[str]) -> list[int]:
    """Sends every password at once (same client, one CSRF token) and returns the statuses."""
    session = requests.Session()
    page = session.get(server.url + "/login", timeout=60).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    cookies = session.cookies.get_dict()
    statuses: list[int] = [0] * len(passwords)
    barrier = threading.Barrier(len(passwords))

    def guess(n: int) -> None:
        barrier.wait()
        statuses[n] = requests.post(
            server.url + "/login", cookies=cookies, allow_redirects=False, timeout=240,
            data={"username": "ada", "password": passwords[n], "csrf_token": token}).status_code

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(len(passwords))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def test_parallel_wrong_guesses_check_at_most_the_limit(live_app, start_server):
    make_user("ada", "admin")
    server = start_server()
    statuses = _burst(server, [f"wrong-guess-{n}" for n in range(GUESSES)])
    checked = statuses.count(401)
    assert 1 <= checked <= LIMIT, statuses
    assert statuses.count(429) == GUESSES - checked, statuses
    db.session.expire_all()
    assert db.session.query(AuditEntry).filter_by(action="login.failed").count() == checked


def test_right_password_in_the_burst_gets_in_only_within_the_limit(live_app, start_server):
    """Whatever order the server takes them in: without a sign-in, at most the limit checked;
    with one, fewer than the limit wrong passwords were checked before it (a success then
    clears that address's failures, as after a user's own typos)."""
    make_user("ada", "admin")
    server = start_server()
    passwords = [f"wrong-guess-{n}" for n in range(GUESSES)]
    passwords[GUESSES // 2] = PASSWORD
    statuses = _burst(server, passwords)
    assert set(statuses) <= {302, 401, 429}, statuses
    db.session.expire_all()
    entries = db.session.query(AuditEntry).order_by(AuditEntry.id).all()
    failed = [e.id for e in entries if e.action == "login.failed"]
    if statuses[GUESSES // 2] == 429:
        assert statuses.count(401) <= LIMIT, statuses
        assert not [e for e in entries if e.action == "login"]
    else:
        signed_in = next(e.id for e in entries if e.action == "login")
        assert len([i for i in failed if i < signed_in]) < LIMIT, statuses


def test_behind_a_proxy_gunicorn_and_the_app_see_each_client(live_app, start_server):
    """Through gunicorn as configured (config/gunicorn.conf.py) with CMOC_TRUSTED_PROXIES=1:
    one proxied client failing 20 times with random names is limited alone."""
    make_user("ada", "admin")
    server = start_server(CMOC_TRUSTED_PROXIES="1")
    session = requests.Session()
    page = session.get(server.url + "/login", timeout=60).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)

    def post(name: str, password: str, client: str) -> int:
        return session.post(server.url + "/login", allow_redirects=False, timeout=60,
                            headers={"X-Forwarded-For": f"192.0.2.1, {client}"},
                            data={"username": name, "password": password,
                                  "csrf_token": token}).status_code

    assert [post(f"random-{n}", "nope-nope-nope", "203.0.113.66") for n in range(20)] \
        == [401] * 20
    assert post("ada", PASSWORD, "203.0.113.66") == 429
    assert post("ada", PASSWORD, "198.51.100.7") == 302
    db.session.expire_all()
    ips = {e.action: e.ip for e in db.session.query(AuditEntry).order_by(AuditEntry.id)}
    assert ips["login.failed"] == "203.0.113.66" and ips["login"] == "198.51.100.7"
