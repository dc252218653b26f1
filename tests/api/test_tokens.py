"""Token CLI and admin UI: shown once, stored hashed, listed, revoked."""

from __future__ import annotations

from cmoc.extensions import db
from cmoc.models import ApiToken
from cmoc.services.tokens import hash_token
from tests.api.conftest import ApiClient
from tests.factories import login, make_user


def test_cli_create_list_revoke(app, runner):
    make_user("ops", "viewer")
    created = runner.invoke(args=["tokens", "create", "ops", "--name", "grafana"])
    assert created.exit_code == 0, created.output
    token = created.output.strip().splitlines()[-1]
    assert token.startswith("cmoc_") and len(token) > 40
    row = db.session.query(ApiToken).one()
    assert row.token_hash == hash_token(token) and token not in row.token_hash
    client = ApiClient(app.test_client(), token)
    assert client.get("/incidents").status_code == 200
    assert client.post("/incidents", json={}).status_code == 403  # a viewer's token
    listed = runner.invoke(args=["tokens", "list"])
    assert "grafana" in listed.output and token not in listed.output
    assert runner.invoke(args=["tokens", "revoke", str(row.id)]).exit_code == 0
    assert client.get("/incidents").status_code == 401
    missing = runner.invoke(args=["tokens", "create", "nobody"])
    assert missing.exit_code == 1 and "No user" in missing.output


def test_admin_ui_creates_shows_once_and_revokes(app):
    admin = make_user("ada", "admin")
    make_user("bot", "cmoc")
    client = app.test_client()
    login(client, admin)
    page = client.post("/admin/tokens", data={"username": "bot", "name": "slack-bot"})
    html = page.get_data(as_text=True)
    token = html.split('<code id="new-token">')[1].split("</code>")[0]
    assert token.startswith("cmoc_")
    listing = client.get("/admin/users").get_data(as_text=True)
    assert "slack-bot" in listing and token not in listing
    row = db.session.query(ApiToken).one()
    client.post(f"/admin/tokens/{row.id}/revoke")
    db.session.refresh(row)
    assert row.revoked_at is not None
    assert ApiClient(app.test_client(), token).get("/incidents").status_code == 401
