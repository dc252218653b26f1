"""First run, sign-in, roles, CSRF, and pages that need login."""

from __future__ import annotations

import pytest

from cmoc.extensions import db
from cmoc.models import User
from tests.factories import PASSWORD, login, make_incident, make_user


def test_first_run_creates_admin_and_then_disappears(client):
    assert client.get("/").headers["Location"].startswith("/login")
    assert client.get("/login").headers["Location"] == "/setup"
    page = client.get("/setup")
    assert b"Create admin" in page.data
    bad = client.post("/setup", data={"username": "root", "password": "short", "confirm": "short"})
    assert bad.status_code == 400 and b"Password must be 10" in bad.data
    assert b'value="root"' in bad.data  # typed username kept
    ok = client.post("/setup", data={"username": "root", "password": PASSWORD,
                                     "confirm": PASSWORD})
    assert ok.status_code == 302
    user = db.session.query(User).one()
    assert user.role == "admin" and user.password_hash != PASSWORD
    assert user.password_hash.startswith(("scrypt:", "pbkdf2:"))
    assert client.get("/").status_code == 200
    # once an account exists the setup page is gone, even for a second visitor
    other = client.application.test_client()
    assert other.get("/setup").headers["Location"] == "/login"
    again = other.post("/setup", data={"username": "evil", "password": PASSWORD,
                                       "confirm": PASSWORD})
    assert again.status_code == 302 and db.session.query(User).count() == 1


def test_login_logout(client):
    user = make_user("bob", "viewer")
    wrong = client.post("/login", data={"username": "bob", "password": "nope-nope-nope"})
    assert wrong.status_code == 401 and b"wrong password" in wrong.data
    unknown = client.post("/login", data={"username": "nobody", "password": PASSWORD})
    assert unknown.status_code == 401
    login(client, user)
    assert client.get("/").status_code == 200
    assert client.post("/logout").status_code == 302
    assert client.get("/").status_code == 302


def test_deactivated_user_cannot_sign_in(client):
    make_user("gone", "cmoc", active=False)
    assert client.post("/login", data={"username": "gone", "password": PASSWORD}).status_code == 401


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example",
                                    "javascript:alert(1)"])
def test_next_parameter_cannot_redirect_off_site(client, target):
    make_user("bob")
    response = client.post("/login", query_string={"next": target},
                           data={"username": "bob", "password": PASSWORD})
    assert response.headers["Location"] == "/"


def test_next_parameter_keeps_local_paths(client):
    make_user("bob")
    response = client.post("/login", query_string={"next": "/incidents/resolved"},
                           data={"username": "bob", "password": PASSWORD})
    assert response.headers["Location"] == "/incidents/resolved"


def test_every_page_requires_login_except_public_ones(app, client):
    make_user("someone")
    incident = make_incident()
    # Public, or (webhooks) authenticated by their own secret instead of a session.
    public = {"/login", "/setup", "/healthz", "/login/oidc", "/login/oidc/callback", "/metrics",
              "/hooks/gitlab", "/slack/actions", "/slack/commands"}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        url = rule.rule.replace("<int:incident_id>", str(incident.id)) \
                       .replace("<int:update_id>", "1").replace("<int:user_id>", "1") \
                       .replace("<int:token_id>", "1").replace("<int:session_id>", "1")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            response = client.open(url, method=method)
            if rule.rule in public:
                assert response.status_code in (200, 302, 401, 404), (method, url)
                continue
            if rule.rule.startswith("/api/"):
                assert response.status_code == 401, (method, url)
                assert response.json["error"]["code"] == "unauthorized"
                continue
            assert response.status_code == 302, (method, url)
            assert response.headers["Location"].startswith("/login"), (method, url)


def test_healthz_is_public(client):
    assert client.get("/healthz").json == {"status": "ok"}


def test_viewer_reads_but_cannot_write(client):
    viewer = make_user("vera", "viewer")
    incident = make_incident()
    login(client, viewer)
    assert client.get("/").status_code == 200
    assert client.get(f"/incidents/{incident.id}").status_code == 200
    assert b"Draft update" not in client.get(f"/incidents/{incident.id}").data
    for url in ("/incidents/new", f"/incidents/{incident.id}/updates/new",
                f"/incidents/{incident.id}/edit", "/admin/users"):
        assert client.get(url).status_code == 403
        assert client.post(url, data={}).status_code == 403
    assert client.post(f"/incidents/{incident.id}/preview", data={}).status_code == 403


def test_cmoc_cannot_manage_users(client):
    login(client, make_user("carl", "cmoc"))
    assert client.get("/admin/users").status_code == 403
    assert client.post("/admin/users/1", data={"role": "admin"}).status_code == 403


def test_admin_manages_users(client):
    admin = make_user("ada", "admin")
    login(client, admin)
    created = client.post("/admin/users", data={"username": "new-cmoc", "password": PASSWORD,
                                                 "role": "cmoc"})
    assert created.status_code == 302
    user = db.session.query(User).filter_by(username="new-cmoc").one()
    assert user.role == "cmoc"
    dup = client.post("/admin/users", data={"username": "NEW-cmoc", "password": PASSWORD,
                                            "role": "cmoc"})
    assert dup.status_code == 400 and b"already exists" in dup.data
    client.post(f"/admin/users/{user.id}", data={"role": "viewer"})
    client.post(f"/admin/users/{user.id}", data={"active": "0"})
    db.session.refresh(user)
    assert (user.role, user.active) == ("viewer", False)
    # an admin cannot lock themselves out
    client.post(f"/admin/users/{admin.id}", data={"role": "viewer"})
    db.session.refresh(admin)
    assert admin.role == "admin"


def test_csrf_is_enforced_on_forms(make_app):
    app = make_app(WTF_CSRF_ENABLED=True)
    with app.app_context():
        make_user("bob")
        client = app.test_client()
        refused = client.post("/login", data={"username": "bob", "password": PASSWORD})
        assert refused.status_code == 400 and b"CSRF" in refused.data
        page = client.get("/login").get_data(as_text=True)
        token = page.split('name="csrf_token" value="')[1].split('"')[0]
        ok = client.post("/login", data={"username": "bob", "password": PASSWORD,
                                         "csrf_token": token})
        assert ok.status_code == 302
        incident = make_incident()
        preview = client.post(f"/incidents/{incident.id}/preview", data={"state": "identified"})
        assert preview.status_code == 400 and preview.json["error"]["code"] == "csrf"


def test_security_headers(client):
    response = client.get("/login")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert b"<script>" not in response.data  # no inline script for the CSP to allow
