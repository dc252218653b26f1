"""OpenID Connect sign-in against a real provider on loopback (discovery, JWKS, code flow)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from cmoc.extensions import db
from cmoc.models import AuditEntry, User
from cmoc.oidc import role_for
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


# -- GitLab's claim layout, outages, provider errors (issue 14, item 6) ----------------------
def test_gitlab_layout_groups_only_in_userinfo_sign_in(oidc_app, provider):
    """GitLab: `groups` only in userinfo, `groups_direct` only in the ID token."""
    provider.layout = "gitlab"
    provider.user["groups"] = ["gitlab-com", "gitlab-com/support", "gitlab-com/support/cmoc"]
    provider.user["groups_direct"] = ["gitlab-com/support/cmoc/oncall"]
    response = sign_in_via_provider(oidc_app.test_client())
    assert response.status_code == 302, response.get_data(as_text=True)
    assert db.session.query(User).filter_by(username="grace").one().role == "cmoc"


def test_a_mapped_group_covers_its_subgroups(oidc_app, provider):
    provider.user["groups"] = ["gitlab-com/gl-infra/reliability/database"]
    assert sign_in_via_provider(oidc_app.test_client()).status_code == 302
    assert db.session.query(User).filter_by(username="grace").one().role == "viewer"
    # A sibling whose name merely starts the same is not a subgroup.
    assert role_for(["gitlab-com/gl-infra-other"], {"roles": {"gitlab-com/gl-infra": "viewer"}}
                    ) is None
    # The highest role wins when several entries match.
    assert role_for(["gitlab-com/gl-infra/x", "gitlab-com/support/cmoc/y"], {"roles": {
        "gitlab-com/gl-infra": "viewer", "gitlab-com/support/cmoc": "cmoc"}}) == "cmoc"


def test_userinfo_down_falls_back_to_the_id_tokens_direct_groups(oidc_app, provider):
    provider.layout, provider.mode = "gitlab", "userinfo_down"
    provider.user["groups_direct"] = ["gitlab-com/support/cmoc/emea"]
    assert sign_in_via_provider(oidc_app.test_client()).status_code == 302
    assert db.session.query(User).filter_by(username="grace").one().role == "cmoc"


def test_userinfo_about_someone_else_is_refused(oidc_app, provider):
    provider.layout, provider.mode = "gitlab", "other_subject"
    response = sign_in_via_provider(oidc_app.test_client())
    assert response.status_code == 401 and db.session.query(User).count() == 0


def test_provider_down_shows_a_clear_page_and_local_sign_in_still_works(make_app, provider):
    app = make_app(**provider.config(), BASE_URL="http://localhost")
    with app.app_context():
        make_user("local", "cmoc")
        provider.stop()
        client = app.test_client()
        start = client.get("/login/oidc")
        page = start.get_data(as_text=True)
        assert start.status_code == 503 and "GitLab sign-in is unavailable" in page
        assert "Traceback" not in page and 'id="back-to-sign-in"' in page
        failed = db.session.query(AuditEntry).filter_by(action="login.failed").one()
        assert failed.after["reason"] == "provider unavailable"
        assert failed.after["stage"] == "discovery"
        local = client.post("/login", data={"username": "local", "password": PASSWORD})
        assert local.status_code == 302 and client.get("/").status_code == 200
        db.session.remove()


def test_provider_failing_at_the_code_exchange_is_unavailable_not_a_500(oidc_app, provider):
    provider.mode = "token_down"
    response = sign_in_via_provider(oidc_app.test_client())
    assert response.status_code == 503
    assert b"GitLab sign-in is unavailable" in response.data
    entry = db.session.query(AuditEntry).filter_by(action="login.failed").one()
    assert entry.after["stage"] == "token"


def test_the_providers_error_code_is_shown_logged_and_audited(oidc_app, provider, caplog):
    provider.mode = "deny"
    response = sign_in_via_provider(oidc_app.test_client())
    assert response.status_code == 401 and b"access_denied" in response.data
    entry = db.session.query(AuditEntry).filter_by(action="login.failed").one()
    assert entry.after["error"] == "access_denied"
    assert "access_denied" in caplog.text


def test_redirect_uri_comes_from_the_base_url_not_the_request_host(make_app, provider):
    app = make_app(**provider.config(), BASE_URL="http://cmoc.internal:8080")
    with app.app_context():
        start = app.test_client().get("/login/oidc", base_url="http://localhost:5000")
        sent = parse_qs(urlsplit(start.headers["Location"]).query)
        assert sent["redirect_uri"] == ["http://cmoc.internal:8080/login/oidc/callback"]
        db.session.remove()


def test_a_made_up_username_is_corrected_once_the_claim_arrives(oidc_app, provider):
    provider.user = {"sub": "alice", "groups": ["gitlab-com/support/cmoc"]}
    assert sign_in_via_provider(oidc_app.test_client()).status_code == 302
    user = db.session.query(User).one()
    assert user.username == "user-alice"
    provider.user["preferred_username"] = "alice"
    assert sign_in_via_provider(oidc_app.test_client()).status_code == 302
    db.session.refresh(user)
    assert user.username == "alice"
    renamed = db.session.query(AuditEntry).filter_by(action="user.rename").one()
    assert (renamed.before, renamed.after) == ({"username": "user-alice"},
                                               {"username": "alice", "via": "oidc"})
    # A name someone chose is never changed afterwards.
    provider.user["preferred_username"] = "alice2"
    sign_in_via_provider(oidc_app.test_client())
    db.session.refresh(user)
    assert user.username == "alice"


def test_a_userinfo_hiccup_never_demotes_a_known_user(oidc_app, provider):
    """Review finding: GitLab's ID token has only direct groups; userinfo down must not lower
    a CMOC to viewer (or lock them out) in the middle of an incident."""
    provider.layout = "gitlab"
    provider.user["groups"] = ["gitlab-com", "gitlab-com/support", "gitlab-com/support/cmoc"]
    provider.user["groups_direct"] = ["gitlab-com/gl-infra"]   # only a viewer group directly
    assert sign_in_via_provider(oidc_app.test_client()).status_code == 302
    user = db.session.query(User).filter_by(username="grace").one()
    assert user.role == "cmoc"
    provider.mode = "userinfo_down"
    assert sign_in_via_provider(oidc_app.test_client()).status_code == 302
    db.session.refresh(user)
    assert user.role == "cmoc"
    # With userinfo answering, a real change of groups still applies.
    provider.mode = "ok"
    provider.user["groups"] = ["gitlab-com/gl-infra"]
    sign_in_via_provider(oidc_app.test_client())
    db.session.refresh(user)
    assert user.role == "viewer"


def test_only_a_verified_email_is_kept(oidc_app, provider):
    provider.user["email"] = "grace@example.com"   # no email_verified: not trusted
    sign_in_via_provider(oidc_app.test_client())
    user = db.session.query(User).filter_by(username="grace").one()
    assert user.email is None
    provider.user["email_verified"] = True
    sign_in_via_provider(oidc_app.test_client())
    db.session.refresh(user)
    assert user.email == "grace@example.com"


def test_an_error_answer_nobody_asked_for_is_neither_shown_nor_audited(oidc_app):
    response = oidc_app.test_client().get(
        "/login/oidc/callback?error=access_denied&error_description=Call+us+at+555&state=x")
    assert response.status_code == 400 and b"555" not in response.data
    assert db.session.query(AuditEntry).filter_by(action="login.failed").count() == 0
