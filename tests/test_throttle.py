"""Issue 13, findings 3 and 6: the real client's address behind a proxy, lockouts an attacker
cannot turn against a user everywhere, admin unlock, and anonymous refusals that are counted
and summarised instead of each writing a permanent audit row."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from cmoc.config import ConfigError
from cmoc.extensions import db
from cmoc.models import AuditEntry
from cmoc.services.login_guard import LoginPolicy, Outcome, try_password
from tests.factories import PASSWORD, login, make_user

PROXY = "10.0.0.2"


def attempt(client, username, password, *, ip=PROXY, forwarded=None):
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return client.post("/login", data={"username": username, "password": password},
                       environ_base={"REMOTE_ADDR": ip}, headers=headers)


def audit(action: str) -> list[AuditEntry]:
    return db.session.query(AuditEntry).filter_by(action=action).order_by(AuditEntry.id).all()


def test_behind_one_proxy_each_client_has_its_own_address(make_app):
    """20 failures with random names from one client of the proxy lock out neither other
    clients nor the right password, and the audit log shows each client's address."""
    app = make_app(TRUSTED_PROXIES=1)
    with app.app_context():
        make_user("ada", "admin")
        client = app.test_client()
        for n in range(20):
            response = attempt(client, f"random-{n}", "wrong-password!",
                               forwarded="203.0.113.66")
            assert response.status_code == 401
        assert attempt(client, "x", "y", forwarded="203.0.113.66").status_code == 429
        assert attempt(client, "ada", PASSWORD, forwarded="198.51.100.7").status_code == 302
        addresses = {e.ip for e in audit("login.failed")}
        assert addresses == {"203.0.113.66"}
        assert audit("login")[-1].ip == "198.51.100.7"
        db.session.remove()


def test_without_trusted_proxies_x_forwarded_for_is_ignored(make_app):
    """Default 0 hops: a client cannot pick its address with X-Forwarded-For."""
    app = make_app(LOGIN_IP_LIMIT=3)
    with app.app_context():
        make_user("ada", "admin")
        client = app.test_client()
        for n in range(3):
            attempt(client, f"n{n}", "nope-nope-nope", ip="192.0.2.9", forwarded=f"10.9.9.{n}")
        refused = attempt(client, "n9", "nope-nope-nope", ip="192.0.2.9", forwarded="10.9.9.99")
        assert refused.status_code == 429
        assert {e.ip for e in audit("login.failed")} == {"192.0.2.9"}
        db.session.remove()


def test_metrics_loopback_rule_uses_the_real_client(make_app):
    """A same-host proxy (127.0.0.1) does not make /metrics public once its hop is trusted;
    without trusted hops a forged X-Forwarded-For: 127.0.0.1 does not open it either."""
    behind = make_app(TRUSTED_PROXIES=1)
    client = behind.test_client()
    outside = client.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"},
                         headers={"X-Forwarded-For": "203.0.113.5"})
    assert outside.status_code == 403
    local = client.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"},
                       headers={"X-Forwarded-For": "127.0.0.1"})
    assert local.status_code == 200 and b"cmoc_active_incidents" in local.data
    direct = make_app().test_client()
    forged = direct.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.5"},
                        headers={"X-Forwarded-For": "127.0.0.1"})
    assert forged.status_code == 403


@pytest.mark.parametrize("value", [-1, "two", True])
def test_trusted_proxies_must_be_a_hop_count(make_app, value):
    with pytest.raises(ConfigError, match="trusted_proxies"):
        make_app(TRUSTED_PROXIES=value)


def test_a_locked_account_still_signs_in_from_another_address(client):
    make_user("ada", "admin")
    for _ in range(5):
        assert attempt(client, "ada", "wrong-password!", ip="203.0.113.1").status_code == 401
    locked = attempt(client, "ada", PASSWORD, ip="203.0.113.1")
    assert locked.status_code == 429 and b"locked" in locked.data
    assert attempt(client, "ada", PASSWORD, ip="198.51.100.2").status_code == 302


def test_many_addresses_meet_a_slower_account_wide_back_off(app):
    """Past login_account_limit failures from everywhere, the account takes one attempt per
    login_account_backoff_seconds, whatever the address; a refused attempt does not extend it."""
    make_user("ada", "admin")
    policy = LoginPolicy(account_limit=6, account_backoff_seconds=30)
    t0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

    def guess(password: str, ip: str, seconds: float) -> Outcome:
        return try_password(username="ada", password=password, ip=ip, policy=policy,
                            now=t0 + timedelta(seconds=seconds))

    for n in range(6):
        assert guess("wrong-password!", f"203.0.113.{n}", n / 10) == Outcome()
    assert "try again in 30 seconds" in guess(PASSWORD, "198.51.100.9", 1).refused
    assert guess(PASSWORD, "198.51.100.9", 20).refused
    assert guess("wrong-password!", "203.0.113.50", 31) == Outcome()
    assert guess(PASSWORD, "198.51.100.9", 45).refused
    assert guess(PASSWORD, "198.51.100.9", 62).user.username == "ada"


def test_admin_unlocks_an_account(client):
    admin = make_user("root", "admin")
    make_user("ada", "cmoc")
    for _ in range(5):
        attempt(client, "ada", "wrong-password!", ip="203.0.113.1")
    assert attempt(client, "ada", PASSWORD, ip="203.0.113.1").status_code == 429
    login(client, admin)
    page = client.get("/admin/users").get_data(as_text=True)
    assert "locked from 1 address" in page
    action = re.search(r'action="(/admin/users/\d+/unlock)"', page).group(1)
    response = client.post(action)
    assert response.status_code == 302
    entry = audit("user.unlock")[-1]
    assert entry.actor_name == "root" and entry.after["cleared_failures"] == 5
    client.post("/logout")
    assert attempt(client, "ada", PASSWORD, ip="203.0.113.1").status_code == 302


def test_only_admins_unlock(client):
    make_user("ada", "cmoc")
    viewer = make_user("vic", "viewer")
    login(client, viewer)
    assert client.post("/admin/users/1/unlock").status_code == 403


def _login_with_token(client, username: str) -> None:
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert client.post("/login", data={"username": username, "password": PASSWORD,
                                       "csrf_token": token}).status_code == 302


def _refused_count(text: str, kind: str) -> float:
    match = re.search(rf'cmoc_refused_requests_total{{kind="{re.escape(kind)}"}} (\S+)', text)
    return float(match.group(1)) if match else 0.0


def test_anonymous_refusals_are_counted_and_summarised(make_app):
    """100 CSRF-less anonymous POSTs and 100 refused /metrics scrapes: a handful of audit rows
    (one summary per kind per interval), and the metric counts 100 each."""
    app = make_app(WTF_CSRF_ENABLED=True)
    with app.app_context():
        client = app.test_client()
        for _ in range(100):
            assert client.post("/login", data={"username": "x", "password": "y"},
                               environ_base={"REMOTE_ADDR": "203.0.113.7"}).status_code == 400
            assert client.get("/metrics",
                              environ_base={"REMOTE_ADDR": "203.0.113.8"}).status_code == 403
        assert db.session.query(AuditEntry).count() <= 4
        csrf, forbidden = audit("security.csrf_refused"), audit("security.forbidden")
        assert len(csrf) == 1 and len(forbidden) == 1
        assert csrf[0].after["count"] == 1 and csrf[0].ip == "203.0.113.7"
        scrape = client.get("/metrics").get_data(as_text=True)
        assert _refused_count(scrape, "security.csrf_refused") == 100
        assert _refused_count(scrape, "security.forbidden") == 100
        make_user("root", "admin")
        _login_with_token(client, "root")
        page = client.get("/admin/audit?action=security.")
        assert page.status_code == 200 and "203.0.113.8" in page.get_data(as_text=True)
        db.session.remove()


def test_summary_carries_the_count_since_the_last_one(make_app):
    """An interval later the next refusal writes one more entry, counting those in between."""
    app = make_app(WTF_CSRF_ENABLED=True, REFUSAL_SUMMARY_MINUTES=0)
    with app.app_context():
        client = app.test_client()
        for _ in range(3):
            client.post("/login", data={"username": "x", "password": "y"})
        counts = [e.after["count"] for e in audit("security.csrf_refused")]
        assert counts == [1, 1, 1]
        db.session.remove()


def test_authenticated_refusals_stay_audited_one_by_one(make_app):
    app = make_app(WTF_CSRF_ENABLED=True)
    with app.app_context():
        user = make_user("vic", "viewer")
        client = app.test_client()
        _login_with_token(client, "vic")
        for _ in range(3):
            assert client.post("/admin/users", data={"username": "z"}).status_code == 400
            assert client.get("/admin/users").status_code == 403
        assert len(audit("security.csrf_refused")) == 3
        assert len(audit("security.forbidden")) == 3
        assert {e.actor_id for e in audit("security.forbidden")} == {user.id}
        db.session.remove()
