"""Lockout, rate limits, session expiry, cookie flags, tampered cookies, no leaked secrets."""

from __future__ import annotations

from datetime import timedelta

from cmoc.extensions import db
from cmoc.models import AuditEntry
from tests.factories import PASSWORD, login, make_incident, make_user


def attempt(client, username, password, ip="198.51.100.1"):
    return client.post("/login", data={"username": username, "password": password},
                       environ_base={"REMOTE_ADDR": ip})


def test_account_locks_after_repeated_failures(client):
    make_user("ada", "admin")
    for _ in range(5):
        assert attempt(client, "ada", "wrong-password!").status_code == 401
    locked = attempt(client, "ada", PASSWORD)
    assert locked.status_code == 429 and b"locked for 15 minutes" in locked.data
    assert db.session.query(AuditEntry).filter_by(action="login.refused").count() == 1
    # Other accounts are not affected.
    make_user("bob", "cmoc")
    assert attempt(client, "bob", PASSWORD, ip="198.51.100.2").status_code == 302


def test_success_clears_the_failure_count(client):
    make_user("ada", "admin")
    for _ in range(4):
        attempt(client, "ada", "wrong-password!")
    assert attempt(client, "ada", PASSWORD).status_code == 302
    client.post("/logout")
    for _ in range(4):
        attempt(client, "ada", "wrong-password!")
    assert attempt(client, "ada", PASSWORD).status_code == 302


def test_one_address_is_rate_limited_across_accounts(make_app):
    app = make_app(LOGIN_IP_LIMIT=3)
    with app.app_context():
        make_user("ada", "admin")
        client = app.test_client()
        for name in ("x1", "x2", "x3"):
            attempt(client, name, "nope-nope-nope", ip="192.0.2.9")
        assert attempt(client, "ada", PASSWORD, ip="192.0.2.9").status_code == 429
        assert attempt(client, "ada", PASSWORD, ip="192.0.2.10").status_code == 302
        db.session.remove()


def test_session_cookie_flags_and_expiry(make_app):
    app = make_app(BASE_URL="https://cmoc.example.com", SESSION_HOURS=8, SANDBOX=True)
    assert app.permanent_session_lifetime == timedelta(hours=8)
    with app.app_context():
        make_user("ada", "admin")
        client = app.test_client()
        response = client.post("/login", data={"username": "ada", "password": PASSWORD},
                               base_url="https://cmoc.example.com")
        cookie = response.headers["Set-Cookie"]
        for flag in ("Secure", "HttpOnly", "SameSite=Lax", "Expires="):
            assert flag in cookie, cookie
        page = client.get("/login", base_url="https://cmoc.example.com")
        assert page.headers["Strict-Transport-Security"].startswith("max-age=")
        db.session.remove()


def test_tampered_session_cookie_is_refused(client):
    user = make_user("ada", "admin")
    login(client, user)
    cookie = client.get_cookie("session")
    value = cookie.value
    forged = value[:-3] + ("AAA" if not value.endswith("AAA") else "BBB")
    client.set_cookie("session", forged)
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_secrets_never_appear_in_pages_or_errors(make_app, fakes):
    secrets = {"SECRET_KEY": "s3cret-key-value", "SLACK_BOT_TOKEN": "xoxb-very-secret",
               "STATUSIO_API_KEY": "statusio-secret-key", "TWITTER_CONSUMER_SECRET": "tw-secret",
               "METRICS_TOKEN": "metrics-secret"}
    app = make_app(**{**fakes.env(), **secrets})
    with app.app_context():
        admin = make_user("ada", "admin")
        incident = make_incident(admin)
        client = app.test_client()
        login(client, admin)
        fakes.fail("slack", "chat.postMessage", status=200, body={"ok": False,
                                                                  "error": "invalid_auth"})
        client.post(f"/incidents/{incident.id}/updates/new", data={
            "action": "publish", "state": "investigating", "template": "investigating",
            "var_symptom": "errors", "channels": ["slack"], "channels_shown": "1"})
        pages = [client.get(url).get_data(as_text=True) for url in (
            "/", f"/incidents/{incident.id}", f"/incidents/{incident.id}/updates/new",
            "/admin/users", "/admin/audit", "/reports/comms", "/profile", "/nope")]
        assert "check SLACK_BOT_TOKEN" in pages[1]
        for page in pages:
            for value in secrets.values():
                assert value not in page
        db.session.remove()


def test_server_error_shows_no_stack_trace(make_app):
    app = make_app(TESTING=False, PROPAGATE_EXCEPTIONS=False)

    def boom():
        raise RuntimeError("internal detail that must not leak")

    app.add_url_rule("/boom", view_func=boom)
    with app.app_context():
        client = app.test_client()
        login(client, make_user("ada", "admin"))
        response = client.get("/boom")
        assert response.status_code == 500
        body = response.get_data(as_text=True)
        assert "internal detail" not in body and "Traceback" not in body
        db.session.remove()
