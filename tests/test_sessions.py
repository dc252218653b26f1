"""Server-side sessions (issue 13, finding 1): a session ends for every copy of its cookie, has
an absolute lifetime and an idle timeout, and ends when the account's password, role or state
changes; the profile lists a user's sessions and ends them."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from cmoc.extensions import db
from cmoc.models import AuditEntry
from cmoc.timeutil import clock_moved
from tests.factories import PASSWORD, login, make_user

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
CHROME_MAC = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like "
              "Gecko) Chrome/131.0.0.0 Safari/537.36")


def row_by_id(session_id: int):
    from cmoc.models import UserSession

    return db.session.get(UserSession, session_id)


def rows():
    """The user_sessions table (imported here so the behaviour tests also ran before it
    existed, and failed on what they check)."""
    from cmoc.models import UserSession

    return db.session.query(UserSession)


def browser(app, user_agent: str | None = None):
    """A test client, sending `user_agent` when given."""
    client = app.test_client()
    if user_agent:
        client.environ_base["HTTP_USER_AGENT"] = user_agent
    return client


def copy_of(client, app, user_agent: str | None = None):
    """A second client holding a copy of `client`'s session cookie (a stolen or shared one)."""
    other = browser(app, user_agent)
    other.set_cookie("session", client.get_cookie("session").value)
    return other


def refused(response) -> bool:
    return response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_copied_cookie_is_refused_after_logout_on_pages_and_api(app, client):
    alice = make_user("alice", "cmoc")
    login(client, alice)
    thief = copy_of(client, app)
    assert thief.get("/").status_code == 200
    assert thief.get("/api/v1/incidents").status_code == 200
    assert client.post("/logout").status_code == 302
    assert refused(thief.get("/"))
    assert thief.get("/api/v1/incidents").status_code == 401
    assert refused(thief.get("/profile"))
    assert refused(client.get("/"))


def test_lifetime_is_absolute_activity_does_not_extend_it(app, client):
    login(client, make_user("alice", "viewer"))
    hours = app.config["SESSION_HOURS"]
    with clock_moved() as advance:
        for _ in range(int(hours) - 1):
            advance(timedelta(minutes=59))
            assert client.get("/").status_code == 200
        advance(timedelta(hours=hours) - timedelta(minutes=59) * (int(hours) - 1)
                + timedelta(minutes=1))
        assert refused(client.get("/"))
    assert refused(client.get("/"))  # ended for good, even back in the present
    row = rows().one()
    assert row.ended_at is not None and row.end_reason == "expired"


def test_idle_timeout(app, client):
    login(client, make_user("alice", "viewer"))
    idle = timedelta(minutes=app.config["SESSION_IDLE_MINUTES"])
    with clock_moved() as advance:
        advance(idle - timedelta(minutes=1))
        assert client.get("/").status_code == 200
        advance(idle - timedelta(minutes=1))  # idle counts from the last request
        assert client.get("/").status_code == 200
        advance(idle + timedelta(minutes=1))
        assert refused(client.get("/"))
        assert client.get("/api/v1/incidents").status_code == 401
    assert rows().one().end_reason == "idle"


def test_last_seen_is_written_at_most_once_a_minute(app, client):
    login(client, make_user("alice", "viewer"))
    row = rows().one()
    first = row.last_seen_at
    with clock_moved() as advance:
        advance(timedelta(seconds=20))
        client.get("/")
        db.session.expire_all()
        assert row_by_id(row.id).last_seen_at == first
        advance(timedelta(seconds=50))
        client.get("/")
        db.session.expire_all()
        assert row_by_id(row.id).last_seen_at > first


@pytest.mark.parametrize("change", [{"role": "viewer"}, {"active": "0"}])
def test_role_change_and_deactivation_end_every_session(app, client, change):
    admin = make_user("root", "admin")
    alice = make_user("alice", "cmoc")
    login(client, admin)
    alice_one, alice_two = app.test_client(), app.test_client()
    login(alice_one, alice)
    login(alice_two, alice)
    assert alice_one.get("/").status_code == 200
    assert client.post(f"/admin/users/{alice.id}", data=change).status_code == 302
    if change.get("active") == "0":
        # Reactivated at once: her old cookies must stay dead all the same.
        client.post(f"/admin/users/{alice.id}", data={"active": "1"})
    assert refused(alice_one.get("/")) and refused(alice_two.get("/"))
    assert alice_one.get("/api/v1/incidents").status_code == 401
    assert client.get("/").status_code == 200  # the admin's own session is untouched


def test_password_change_ends_other_sessions_and_keeps_this_one(app, client):
    alice = make_user("alice", "cmoc")
    login(client, alice)
    elsewhere = app.test_client()
    login(elsewhere, alice)
    copy = copy_of(client, app)
    new = "a-brand-new-password"
    wrong = client.post("/profile/password", data={"current": "not-it-at-all", "password": new,
                                                   "confirm": new})
    assert wrong.status_code == 400 and b"current password" in wrong.data
    assert elsewhere.get("/").status_code == 200
    ok = client.post("/profile/password", data={"current": PASSWORD, "password": new,
                                                "confirm": new})
    assert ok.status_code == 302
    assert client.get("/").status_code == 200
    assert refused(elsewhere.get("/"))
    assert refused(copy.get("/"))  # the cookie as it was before the change is dead too
    assert app.test_client().post("/login", data={"username": "alice",
                                                  "password": new}).status_code == 302


def test_profile_lists_sessions_and_ends_one_or_all_others(app):
    alice = make_user("alice", "cmoc")
    mine = browser(app, FIREFOX)
    laptop = browser(app, CHROME_MAC)
    third = app.test_client()
    for c in (mine, laptop, third):
        login(c, alice)
    page = mine.get("/profile").get_data(as_text=True)
    assert "Firefox on Linux" in page and "Chrome on macOS" in page
    assert page.count("this session") == 1
    ids = [int(i) for i in re.findall(r'action="/profile/sessions/(\d+)/end"', page)]
    assert len(ids) == 2  # the other two; this one is ended by signing out
    laptop_row = rows().filter_by(user_agent="Chrome on macOS").one()
    assert mine.post(f"/profile/sessions/{laptop_row.id}/end").status_code == 302
    assert refused(laptop.get("/"))
    assert third.get("/").status_code == 200
    assert mine.post("/profile/sessions/end-others").status_code == 302
    assert refused(third.get("/"))
    assert mine.get("/").status_code == 200
    audited = db.session.query(AuditEntry.action, AuditEntry.target_type, AuditEntry.after)
    assert audited.filter(AuditEntry.action.like("session.%")).order_by(AuditEntry.id).all() == [
        ("session.end", "user", {"session": laptop_row.id}),
        ("session.end_others", "user", {"ended": 1})]


def test_a_user_cannot_end_someone_elses_session(app, client):
    alice, bob = make_user("alice", "cmoc"), make_user("bob", "cmoc")
    login(client, alice)
    bobs = app.test_client()
    login(bobs, bob)
    bob_row = rows().filter_by(user_id=bob.id).one()
    assert client.post(f"/profile/sessions/{bob_row.id}/end").status_code == 404
    assert refused(app.test_client().post(f"/profile/sessions/{bob_row.id}/end"))
    assert bobs.get("/").status_code == 200


def test_cookie_presented_by_another_browser_is_refused(app):
    alice = make_user("alice", "cmoc")
    mine = browser(app, FIREFOX)
    login(mine, alice)
    thief = copy_of(mine, app, CHROME_MAC)
    assert refused(thief.get("/"))
    assert refused(mine.get("/"))  # the session is ended: it was seen in two browsers


def test_session_ending_needs_a_signed_in_user_and_csrf(make_app):
    app = make_app(WTF_CSRF_ENABLED=True)
    with app.app_context():
        alice = make_user("alice", "cmoc")
        client = app.test_client()
        page = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        client.post("/login", data={"username": "alice", "password": PASSWORD,
                                    "csrf_token": token})
        assert client.get("/").status_code == 200
        assert client.post("/profile/sessions/end-others").status_code == 400
        row = rows().filter_by(user_id=alice.id).one()
        assert row.ended_at is None


def test_requests_do_not_reissue_the_cookie(app, client):
    """The cookie is not re-sent with a fresh expiry on every request (finding 1): its expiry
    stays the one set at sign-in."""
    login(client, make_user("alice", "viewer"))
    client.get("/")  # the first page stores its CSRF token in the session
    assert "Set-Cookie" not in client.get("/").headers
    assert "Set-Cookie" not in client.get("/api/v1/incidents").headers


@pytest.mark.parametrize("setting", [{"SESSION_IDLE_MINUTES": 0}, {"SESSION_HOURS": -1},
                                     {"SESSION_IDLE_MINUTES": True}])
def test_session_limits_must_be_positive_numbers(make_app, setting):
    from cmoc.config import ConfigError

    with pytest.raises(ConfigError, match="must be a positive number"):
        make_app(**setting)
