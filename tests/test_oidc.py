"""OpenID Connect sign-in against a real provider on loopback (discovery, JWKS, code flow)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests

from cmoc.extensions import db
from cmoc.models import AuditEntry, User
from tests.factories import PASSWORD, make_user


@pytest.fixture
def oidc_app(make_app, provider):
    app = make_app(**provider.config(), BASE_URL="http://localhost")
    with app.app_context():
        yield app
        db.session.remove()


def sign_in_via_provider(client):
    """Follows the code flow: app -> provider /authorize -> app callback."""
    start = client.get("/login/oidc?next=/incidents/resolved")
    assert start.status_code == 302
    authorize = requests.get(start.headers["Location"], allow_redirects=False, timeout=10)
    assert authorize.status_code == 302
    callback = urlsplit(authorize.headers["Location"])
    return client.get(f"{callback.path}?{callback.query}")


def test_sign_in_creates_user_with_mapped_role(oidc_app, provider):
    client = oidc_app.test_client()
    assert b"Sign in with GitLab" in client.get("/login").data
    response = sign_in_via_provider(client)
    assert response.status_code == 302 and response.headers["Location"] == "/incidents/resolved"
    user = db.session.query(User).filter_by(username="grace").one()
    assert user.role == "cmoc" and user.oidc_subject == f"{provider.issuer}|4242"
    assert client.get("/").status_code == 200
    assert db.session.query(AuditEntry).filter_by(action="login").one().after == {
        "method": "oidc"}
    # Group membership changes are applied at the next sign-in.
    provider.user["groups"] = ["gitlab-com/gl-infra"]
    sign_in_via_provider(oidc_app.test_client())
    db.session.refresh(user)
    assert user.role == "viewer"


def test_no_mapped_group_is_refused(oidc_app, provider):
    provider.user["groups"] = ["some/other-group"]
    response = sign_in_via_provider(oidc_app.test_client())
    assert response.status_code == 403 and b"none of your groups" in response.data
    assert db.session.query(User).count() == 0


@pytest.mark.parametrize("mode", ["forged", "expired", "wrong_nonce", "wrong_audience"])
def test_bad_id_tokens_are_refused(oidc_app, provider, mode):
    provider.mode = mode
    client = oidc_app.test_client()
    response = sign_in_via_provider(client)
    assert response.status_code == 401, mode
    assert b"could not be verified" in response.data
    assert client.get("/").status_code == 302  # not signed in
    assert db.session.query(User).count() == 0
    failed = db.session.query(AuditEntry).filter_by(action="login.failed").one()
    assert failed.actor_name == "oidc"


def test_callback_without_state_is_refused(oidc_app):
    response = oidc_app.test_client().get("/login/oidc/callback?code=x&state=forged")
    assert response.status_code == 401


def test_local_login_can_be_turned_off(make_app, provider):
    app = make_app(**provider.config(), LOCAL_LOGIN=False)
    with app.app_context():
        make_user("local", "admin")
        client = app.test_client()
        page = client.get("/login").get_data(as_text=True)
        assert "Sign in with GitLab" in page and 'name="password"' not in page
        refused = client.post("/login", data={"username": "local", "password": PASSWORD})
        assert refused.status_code == 403
        assert client.get("/setup").status_code == 302
        db.session.remove()
