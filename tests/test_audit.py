"""The audit trail: an entry for every change, append-only, browsable and exportable."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from cmoc.extensions import db
from cmoc.models import AuditEntry, Delivery, Incident
from cmoc.services.audit import AppendOnlyError, record_now
from tests.factories import ISSUE_URL, PASSWORD, login, make_incident, make_user


def actions() -> list[str]:
    db.session.expire_all()
    return [e.action for e in db.session.scalars(select(AuditEntry).order_by(AuditEntry.id))]


def last(action: str) -> AuditEntry:
    db.session.expire_all()
    return db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)
                              .order_by(AuditEntry.id.desc())).first()


def test_every_change_is_audited_with_actor_ip_before_and_after(app, client):
    admin = make_user("ada", "admin")
    client.post("/login", data={"username": "ada", "password": "wrong-password!"},
                environ_base={"REMOTE_ADDR": "203.0.113.7"})
    failed = last("login.failed")
    assert (failed.actor_name, failed.ip, failed.via) == ("ada", "203.0.113.7", "web")
    login(client, admin)
    assert last("login").actor_name == "ada"

    client.post("/incidents/new", data={
        "title": "Errors", "severity": "S2", "status": "degraded_performance",
        "components": ["API"], "issue_url": ISSUE_URL})
    incident = db.session.query(Incident).one()
    declared = last("incident.declare")
    assert declared.target_type == "incident" and declared.target_id == str(incident.id)
    assert declared.after["severity"] == "S2"

    client.post(f"/incidents/{incident.id}/edit", data={
        "title": "Errors", "severity": "S1", "status": "degraded_performance",
        "components": ["API"], "issue_url": ISSUE_URL})
    edit = last("incident.edit")
    assert (edit.before, edit.after) == ({"severity": "S2"}, {"severity": "S1"})

    client.post(f"/incidents/{incident.id}/updates/new", data={
        "action": "publish", "state": "investigating", "template": "investigating",
        "var_symptom": "errors", "channels": ["slack"], "channels_shown": "1",
        "idempotency_key": "a1"})
    publish = last("update.publish")
    assert publish.before["state"] == "investigating" and publish.after["channels"] == ["slack"]
    assert "draft.save" in actions()
    delivery = db.session.scalars(select(Delivery).where(Delivery.channel == "slack")).one()
    assert delivery.audit_id == publish.id   # deliveries link to the audit entry

    client.post(f"/incidents/{incident.id}/snooze", data={"minutes": "5"})
    assert last("incident.snooze").after["minutes"] == 5
    other = make_user("bob", "cmoc")
    client.post("/admin/users", data={"username": "carl", "password": PASSWORD,
                                      "role": "viewer"})
    assert last("user.create").after == {"username": "carl", "role": "viewer"}
    client.post(f"/admin/users/{other.id}", data={"role": "admin"})
    assert (last("user.role").before, last("user.role").after) == ({"role": "cmoc"},
                                                                   {"role": "admin"})
    client.post("/admin/tokens", data={"username": "bob", "name": "bot"})
    token = last("token.create")
    assert token.after["name"] == "bot" and token.after["user"] == "bob"
    client.post(f"/admin/tokens/{token.target_id}/revoke")
    assert last("token.revoke").actor_name == "ada"
    client.post("/profile", data={"slack_user_id": "U0123ABCD"})
    assert last("profile.update").after == {"slack_user_id": "U0123ABCD"}
    client.post(f"/incidents/{incident.id}/take-over")
    client.post("/logout")
    assert actions()[-1] == "logout"


def test_refusals_are_audited(make_app):
    # Requests run outside a held app context here, so Flask-WTF's per-request token cache
    # (on `g`) behaves as in production.
    app = make_app(WTF_CSRF_ENABLED=True)
    with app.app_context():
        make_user("vera", "viewer")
        db.session.remove()

    def check(action):
        with app.app_context():
            entry = last(action)
            db.session.remove()
            return entry

    client = app.test_client()
    assert client.post("/login", data={"username": "vera"}).status_code == 400
    assert check("security.csrf_refused").after["path"] == "/login"
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    client.post("/login", data={"username": "vera", "password": PASSWORD, "csrf_token": token})
    # signing in starts a fresh session, so a fresh CSRF token
    page = client.get("/").get_data(as_text=True)
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    assert client.post("/incidents/new", data={"csrf_token": token}).status_code == 403
    forbidden = check("security.forbidden")
    assert forbidden.actor_name == "vera" and forbidden.after["method"] == "POST"
    big = client.post("/incidents/new", data={"csrf_token": token, "title": "x" * 300_000})
    assert big.status_code == 413 and check("security.too_large") is not None


def test_audit_log_is_append_only(app):
    record_now("login", actor=make_user("ada", "admin"))
    entry = db.session.scalars(select(AuditEntry)).first()
    entry.action = "tampered"
    with pytest.raises(AppendOnlyError):
        db.session.commit()
    db.session.rollback()
    with pytest.raises(AppendOnlyError):
        db.session.delete(db.session.scalars(select(AuditEntry)).first())
        db.session.commit()
    db.session.rollback()
    if db.engine.dialect.name == "postgresql":   # the database refuses too, not just the ORM
        with pytest.raises(Exception, match="append-only"):
            db.session.execute(text("UPDATE audit_log SET action = 'x'"))
        db.session.rollback()


def test_admin_browses_filters_and_exports(app, client):
    admin = make_user("ada", "admin")
    login(client, admin)
    incident = make_incident()
    client.post(f"/incidents/{incident.id}/snooze", data={"minutes": "10"})
    page = client.get("/admin/audit?action=incident").get_data(as_text=True)
    assert "incident.snooze" in page and "login" not in page.split("<tbody>")[1]
    by_target = client.get(f"/admin/audit?target=incident:{incident.id}").get_data(as_text=True)
    assert "incident.snooze" in by_target
    csv = client.get("/admin/audit.csv?actor=ada")
    assert csv.mimetype == "text/csv"
    lines = csv.get_data(as_text=True).splitlines()
    assert lines[0].startswith("id,at,actor,action") and any("incident.snooze" in ln
                                                             for ln in lines)
    client.post("/logout")
    login(client, make_user("carol", "cmoc"))
    assert client.get("/admin/audit").status_code == 403
    assert client.get("/admin/audit.csv").status_code == 403


def test_config_and_template_changes_are_audited(app, tmp_path):
    from datetime import UTC, datetime

    from cmoc.services.audit import record_config_change

    config = tmp_path / "extra.toml"
    config.write_text("status_page_url = 'https://a.example'\n")
    templates = tmp_path / "messages"
    templates.mkdir()
    (templates / "x.j2").write_text("hello")
    now = datetime(2026, 11, 26, tzinfo=UTC)
    first = record_config_change(paths=[config, templates], now=now)
    assert first is not None and len(first.after["files"]) == 2
    assert record_config_change(paths=[config, templates], now=now) is None  # unchanged
    (templates / "x.j2").write_text("hello again")
    changed = record_config_change(paths=[config, templates], now=now)
    assert changed.before["changed"] == [str(templates / "x.j2")]
    assert changed.actor_name == "deploy"
