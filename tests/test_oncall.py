"""Reminders follow the on-call CMOC: PagerDuty's /oncalls (a wire-level fake over HTTPS, as
the `pagerduty` client insists), a shift boundary crossed by an injected clock, errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from cmoc.extensions import db
from cmoc.fake_apis import FakeApis
from cmoc.models import AuditEntry, Incident, IncidentEvent, OnCall, Reminder
from cmoc.services.oncall import current_shift, follow_oncall
from cmoc.services.reminders import send_reminders
from cmoc.timeutil import utcnow
from tests.factories import login, make_incident, make_user

DAY = datetime(2026, 11, 26, tzinfo=UTC)
H = timedelta(hours=1)


@pytest.fixture
def pagerduty():
    server = FakeApis(tls=True).start()
    server.pagerduty_api.put_on_call(user_id="PANA", name="Ana Lima", email="Ana@Example.com",
                                     start=DAY + 8 * H, end=DAY + 16 * H)
    server.pagerduty_api.put_on_call(user_id="PBOB", name="Bob Stone", email="bob@example.com",
                                     start=DAY + 16 * H, end=DAY + 24 * H)
    yield server
    server.stop()


@pytest.fixture
def oncall_app(make_app, fakes, pagerduty):
    app = make_app(**fakes.env(), **pagerduty.pagerduty_env(),
                   SLACK_REMINDER_CHANNEL="#cmoc-reminders", BASE_URL="https://cmoc.example.com")
    with app.app_context():
        yield app
        db.session.remove()


@pytest.fixture
def people(oncall_app):
    return {
        "ana": make_user("ana", "cmoc", email="ana@example.com", slack_user_id="U0ANA0001"),
        "bob": make_user("bob", "cmoc", email="bob@example.com", slack_user_id="U0BOB0001"),
        "carol": make_user("carol", "cmoc", slack_user_id="U0CAROL01"),
    }


def events(incident_id: int) -> list[IncidentEvent]:
    db.session.expire_all()
    return db.session.scalars(select(IncidentEvent).where(
        IncidentEvent.incident_id == incident_id, IncidentEvent.kind == "oncall_handover")
        .order_by(IncidentEvent.id)).all()


def owner(incident_id: int) -> str | None:
    db.session.expire_all()
    incident = db.session.get(Incident, incident_id)
    return incident.cmoc.username if incident.cmoc else None


def test_a_shift_change_hands_incidents_to_the_on_call_cmoc(oncall_app, people, fakes):
    # Carol declared during Ana's shift: hers until the next shift change.
    mine = make_incident(people["carol"], cmoc_id=people["carol"].id, now=DAY + 9 * H).id
    # Declared from GitLab with no CMOC yet: the on-call one gets it at once.
    unowned = make_incident(people["carol"], cmoc_id=None, now=DAY + 9 * H).id
    result = follow_oncall(oncall_app, now=DAY + 10 * H)
    assert result == {"configured": True, "on_call": "Ana Lima", "user": "ana",
                      "handed_over": [unowned], "error": None}
    assert (owner(mine), owner(unowned)) == ("carol", "ana")
    # A second pass in the same shift changes nothing.
    assert follow_oncall(oncall_app, now=DAY + 10 * H + 5 * timedelta(minutes=1))[
        "handed_over"] == []
    # 16:00: Bob's shift. Both incidents go to him, on the timeline and in the audit log.
    result = follow_oncall(oncall_app, now=DAY + 16 * H + timedelta(minutes=2))
    assert sorted(result["handed_over"]) == sorted([mine, unowned])
    assert (owner(mine), owner(unowned)) == ("bob", "bob")
    last = events(mine)[-1]
    assert last.detail == {"from": "carol", "to": "bob", "until": "00:00 UTC",
                           "via": "PagerDuty"}
    audit = db.session.scalars(select(AuditEntry).where(
        AuditEntry.action == "incident.take_over")).all()
    assert {a.actor_name for a in audit} == {"pagerduty"} and len(audit) == 3
    # Someone taking over during Bob's shift keeps it for the rest of the shift.
    client = oncall_app.test_client()
    login(client, people["carol"])
    assert client.post(f"/incidents/{mine}/take-over").status_code == 302
    assert follow_oncall(oncall_app, now=DAY + 17 * H)["handed_over"] == []
    assert owner(mine) == "carol"
    # The timeline says it.
    page = client.get(f"/incidents/{unowned}").get_data(as_text=True)
    assert "Handed over at shift change to bob (was ana)" in page


def test_the_reminder_reaches_the_on_call_cmoc_and_says_why(oncall_app, people, fakes):
    due = DAY + 16 * H + timedelta(minutes=5)
    incident = make_incident(people["carol"], cmoc_id=people["ana"].id, now=DAY + 9 * H,
                             last_published_at=due - timedelta(minutes=10),
                             next_update_due_at=due, heads_up=False)
    follow_oncall(oncall_app, now=DAY + 16 * H)
    counts = send_reminders(oncall_app, now=due)
    assert counts["sent"] == 1
    reminder = db.session.scalar(select(Reminder).where(Reminder.incident_id == incident.id))
    assert reminder.target == "U0BOB0001"
    message = fakes.slack_messages[-1]
    assert "Handed over at shift change (16:00 UTC) from ana to bob" in message["text"]
    assert "on call until 00:00 UTC" in message["text"]


def test_pagerduty_failures_are_tolerated_until_the_shift_ends(oncall_app, people, pagerduty):
    incident = make_incident(people["carol"], cmoc_id=None, now=DAY + 9 * H).id
    assert follow_oncall(oncall_app, now=DAY + 10 * H)["user"] == "ana"
    for status in (500, 503, 429, 401):
        pagerduty.fail("pagerduty", "oncalls", status=status, times=5,
                       body={"error": {"message": "Service Unavailable", "code": 2000}})
        result = follow_oncall(oncall_app, now=DAY + 11 * H)
        pagerduty.clear_faults()
        assert result["error"] and "HttpError" in result["error"], (status, result)
        # The last good answer still holds: Ana until 16:00.
        assert result["on_call"] == "Ana Lima"
    # A network failure, and the shift ends while PagerDuty is unreachable: nobody is
    # assumed on call, nothing moves.
    env = pagerduty.pagerduty_env()
    oncall_app.config["PAGERDUTY_API_URL"] = "https://127.0.0.1:9/pagerduty"
    result = follow_oncall(oncall_app, now=DAY + 16 * H + timedelta(minutes=1))
    assert result["error"] and result["on_call"] is None and result["handed_over"] == []
    assert owner(incident) == "ana"
    page = _dashboard(oncall_app, people["carol"])
    assert 'id="oncall-error"' in page and "could not be asked" in page
    # Back: Bob.
    oncall_app.config["PAGERDUTY_API_URL"] = env["PAGERDUTY_API_URL"]
    assert follow_oncall(oncall_app, now=DAY + 16 * H + timedelta(minutes=6))["user"] == "bob"
    assert owner(incident) == "bob"
    row = db.session.get(OnCall, env["PAGERDUTY_CMOC_SCHEDULE_ID"])
    db.session.refresh(row)
    assert row.error is None and row.shift_end == DAY + 24 * H


def _dashboard(app, user) -> str:
    client = app.test_client()
    login(client, user)
    return client.get("/").get_data(as_text=True)


def test_an_on_call_person_without_a_cmoc_account_changes_nothing(oncall_app, people, pagerduty):
    now = utcnow()   # the dashboard shows the shift that holds now
    pagerduty.pagerduty_api.put_on_call(user_id="PDAN", name="Dan Viewer", email="dan@x.io",
                                        start=now - H, end=now + H)
    make_user("dan", "viewer", email="dan@x.io")   # a viewer is not a CMOC
    incident = make_incident(people["carol"], cmoc_id=people["carol"].id, now=now - 2 * H).id
    result = follow_oncall(oncall_app, now=now)
    assert result["on_call"] == "Dan Viewer" and result["user"] is None
    assert owner(incident) == "carol"
    page = _dashboard(oncall_app, people["carol"])
    assert "Dan Viewer" in page and 'id="oncall-unmapped"' in page
    # Nobody on call at all: also nothing.
    assert follow_oncall(oncall_app, now=now + 2 * H)["on_call"] is None
    assert current_shift(oncall_app.config, now=now + 2 * H) is None


def test_without_pagerduty_behaviour_is_as_before(make_app, fakes):
    app = make_app(**fakes.env())
    with app.app_context():
        user = make_user("carol", "cmoc")
        incident = make_incident(user, cmoc_id=None).id
        assert follow_oncall(app, now=DAY) == {"configured": False}
        assert owner(incident) is None
        assert 'id="oncall"' not in _dashboard(app, user)
        runner = app.test_cli_runner()
        out = runner.invoke(args=["follow-oncall"])
        assert out.exit_code == 0 and "configured=False" in out.output
        db.session.remove()


def test_the_profile_keeps_the_email_pagerduty_knows(oncall_app, people):
    client = oncall_app.test_client()
    login(client, people["carol"])
    bad = client.post("/profile", data={"slack_user_id": "U0CAROL01", "email": "carol@"})
    assert bad.status_code == 400 and b"Enter an email address" in bad.data
    ok = client.post("/profile", data={"slack_user_id": "U0CAROL01",
                                       "email": "carol@example.com"})
    assert ok.status_code == 302
    db.session.refresh(people["carol"])
    assert people["carol"].email == "carol@example.com"
    # Someone else's address is refused: it would route their on-call incidents here.
    taken = client.post("/profile", data={"slack_user_id": "U0CAROL01",
                                          "email": "ANA@example.com"})
    assert taken.status_code == 400 and b"Another account has this email" in taken.data


def test_two_accounts_with_the_on_call_email_get_nothing(oncall_app, people):
    make_user("ana2", "cmoc", email="ana@example.com")   # e.g. set by an admin, or OIDC
    incident = make_incident(people["carol"], cmoc_id=None, now=DAY + 9 * H).id
    result = follow_oncall(oncall_app, now=DAY + 10 * H)
    assert result["on_call"] == "Ana Lima" and result["user"] is None
    assert owner(incident) is None


def test_a_take_over_meanwhile_is_not_overwritten(oncall_app, people):
    """The handover only moves an incident whose CMOC is still the one it read."""
    from cmoc.services.oncall import hand_over

    incident = make_incident(people["carol"], cmoc_id=None, now=DAY + 9 * H)
    follow_oncall(oncall_app, now=DAY + 10 * H)   # Ana on call; the incident is hers
    shift = current_shift(oncall_app.config, now=DAY + 10 * H)
    row = db.session.get(Incident, incident.id)
    row.cmoc_id = None
    db.session.commit()
    db.session.expire_all()
    stale = db.session.get(Incident, incident.id)  # read: no CMOC
    # Meanwhile Carol takes it over from another session.
    from sqlalchemy import update as sql_update
    with db.engine.begin() as connection:
        connection.execute(sql_update(Incident).where(Incident.id == incident.id)
                           .values(cmoc_id=people["carol"].id))
    assert stale.cmoc_id is None
    assert hand_over(shift=shift, to=people["ana"], now=DAY + 11 * H) == []
    assert owner(incident.id) == "carol"


def test_a_misconfigured_url_is_a_recorded_error_not_a_crash(oncall_app, people):
    oncall_app.config["PAGERDUTY_API_URL"] = "http://api.pagerduty.com"   # the client wants https
    result = follow_oncall(oncall_app, now=DAY + 10 * H)
    assert result["error"] == "UrlError" and result["handed_over"] == []
    out = oncall_app.test_cli_runner().invoke(args=["follow-oncall"])
    assert out.exit_code == 1 and "error=UrlError" in out.output
