"""Finding 7: a heads-up before due (configurable, off per incident), and no reminder while the
incident's CMOC is drafting — except a promised due time, which still fires."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from cmoc.extensions import db
from cmoc.models import DraftPresence, Incident, Reminder, Update
from cmoc.services.presence import drafting_now, heartbeat
from cmoc.services.reminders import reminder_slots, send_reminders
from tests.factories import login, make_incident, make_user

T = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def kinds() -> list[tuple[str, str]]:
    db.session.expire_all()
    return [(r.kind, r.status) for r in db.session.scalars(select(Reminder).order_by(Reminder.id))]


def promised(carol, **extra) -> Incident:
    # Published at 13:50 (S1 Investigating): promised, and due, at 14:00.
    return make_incident(carol, cmoc_id=carol.id, created_at=T - 20 * MIN,
                         last_published_at=T - 10 * MIN, next_update_due_at=T, promised_at=T,
                         **extra)


def test_heads_up_slot_comes_before_due_and_only_until_due():
    def slots(now, lead=2 * MIN):
        return [s.kind for s in reminder_slots(due_at=T, interval=10 * MIN, grace=5 * MIN,
                                               now=now, heads_up=lead)]
    assert slots(T - 3 * MIN) == []
    assert slots(T - 2 * MIN) == ["heads_up"]
    assert slots(T - MIN) == ["heads_up"]
    assert slots(T) == ["due"]
    assert slots(T - MIN, lead=None) == []


def test_heads_up_is_sent_once_two_minutes_before_due(remind_app, fakes):
    promised(make_user("carol", "cmoc"))
    assert send_reminders(remind_app, now=T - 2 * MIN - timedelta(seconds=1))["claimed"] == 0
    assert send_reminders(remind_app, now=T - 2 * MIN)["sent"] == 1
    assert send_reminders(remind_app, now=T - MIN)["claimed"] == 0
    text = fakes.slack_messages[0]["text"]
    assert text.startswith(":hourglass_flowing_sand: Update due in 2m (by 14:00 UTC as promised)")
    send_reminders(remind_app, now=T)
    assert kinds() == [("heads_up", "sent"), ("due", "sent")]


def test_heads_up_can_be_configured_or_turned_off(remind_app, fakes):
    carol = make_user("carol", "cmoc")
    remind_app.config["REMINDER_HEADS_UP_MINUTES"] = 5
    promised(carol)
    send_reminders(remind_app, now=T - 5 * MIN)
    assert kinds() == [("heads_up", "sent")]
    remind_app.config["REMINDER_HEADS_UP_MINUTES"] = 0    # off everywhere
    promised(carol)
    send_reminders(remind_app, now=T - MIN)
    assert len(kinds()) == 1
    remind_app.config["REMINDER_HEADS_UP_MINUTES"] = 2
    promised(carol, heads_up=False)                       # off for this incident
    send_reminders(remind_app, now=T - MIN + timedelta(seconds=1))
    assert [k for k, _ in kinds()].count("heads_up") == 2  # the second incident (on) only


def test_heads_up_switch_on_the_incident_page(remind_app):
    carol = make_user("carol", "cmoc")
    incident = promised(carol)
    client = remind_app.test_client()
    login(client, carol)
    page = client.get(f"/incidents/{incident.id}").get_data(as_text=True)
    assert "Heads-up 2 min before due: <strong>on</strong>" in page
    client.post(f"/incidents/{incident.id}/heads-up", data={"on": "0"})
    db.session.refresh(incident)
    assert incident.heads_up is False
    page = client.get(f"/incidents/{incident.id}").get_data(as_text=True)
    assert "<strong>off</strong>" in page and 'id="heads-up-toggle">Turn on' in page


def test_no_heads_up_while_the_cmoc_drafts_but_the_promised_due_still_fires(remind_app, fakes):
    carol = make_user("carol", "cmoc")
    incident = promised(carol)
    heartbeat(incident=incident, user=carol, now=T - 2 * MIN - timedelta(seconds=10))
    assert send_reminders(remind_app, now=T - 2 * MIN)["claimed"] == 0
    heartbeat(incident=incident, user=carol, now=T - 30 * timedelta(seconds=1))
    # Due now and nothing published: the promise is at stake, the reminder comes anyway.
    assert send_reminders(remind_app, now=T)["sent"] == 1
    assert kinds() == [("due", "sent")]
    assert fakes.slack_messages[0]["text"].startswith(":alarm_clock: Update due now (14:00 UTC")


def test_someone_else_drafting_does_not_hold_back_the_cmocs_heads_up(remind_app, fakes):
    carol, dave = make_user("carol", "cmoc"), make_user("dave", "cmoc")
    incident = promised(carol)
    heartbeat(incident=incident, user=dave, now=T - 2 * MIN)
    assert drafting_now(incident_ids=[incident.id], now=T - 2 * MIN) == set()
    assert send_reminders(remind_app, now=T - 2 * MIN)["sent"] == 1


def test_a_heads_up_held_back_comes_when_the_draft_is_left(remind_app, fakes):
    carol = make_user("carol", "cmoc")
    incident = promised(carol)
    heartbeat(incident=incident, user=carol, now=T - 2 * MIN)
    assert send_reminders(remind_app, now=T - 2 * MIN)["claimed"] == 0
    heartbeat(incident=incident, user=carol, now=T - 2 * MIN, gone=True)   # page left
    assert db.session.scalar(select(DraftPresence)) is None
    assert send_reminders(remind_app, now=T - 90 * timedelta(seconds=1))["sent"] == 1
    assert kinds() == [("heads_up", "sent")]


def test_first_update_reminder_waits_while_the_declarer_writes_it(remind_app, fakes):
    """Finding 7: declaring leads straight to the draft page; no reminder seconds later."""
    carol = make_user("carol", "cmoc")
    client = remind_app.test_client()
    login(client, carol)
    declared = client.post("/incidents/new", data={
        "action": "save", "title": "Errors", "severity": "S1", "status": "service_disruption",
        "components": ["API"], "issue_url": "https://gitlab.com/g/p/-/issues/1"})
    assert declared.status_code == 302 and "/updates/new" in declared.headers["Location"]
    incident = db.session.scalar(select(Incident))
    now = incident.created_at + timedelta(seconds=5)
    assert drafting_now(incident_ids=[incident.id], now=now) == {incident.id}
    assert send_reminders(remind_app, now=now)["claimed"] == 0
    # The page's heartbeat keeps it so; a saved draft counts as drafting too.
    assert client.post(f"/incidents/{incident.id}/drafting").json == {"ok": True}
    client.post(f"/incidents/{incident.id}/updates/new", data={
        "action": "save", "state": "investigating", "template": "investigating",
        "var_symptom": "errors"})
    db.session.execute(DraftPresence.__table__.delete())
    db.session.commit()
    draft = db.session.scalar(select(Update))
    assert drafting_now(incident_ids=[incident.id], now=draft.updated_at + 30 * timedelta(
        seconds=1)) == {incident.id}
    # Left without publishing: once the last sign of drafting is a minute old, it comes.
    later = draft.updated_at + 61 * timedelta(seconds=1)
    assert send_reminders(remind_app, now=later)["sent"] == 1
    assert kinds() == [("due", "sent")]
    assert f"/incidents/{incident.id}/updates/{draft.id}|Open your saved draft>" in \
        fakes.slack_messages[0]["text"]


def test_escalation_is_not_held_back_by_drafting_but_repeats_are(remind_app, fakes):
    carol = make_user("carol", "cmoc")
    incident = make_incident(carol, cmoc_id=carol.id, created_at=T, next_update_due_at=T)
    heartbeat(incident=incident, user=carol, now=T + 5 * MIN)
    send_reminders(remind_app, now=T + 5 * MIN)
    assert kinds() == [("escalation", "sent")]
    heartbeat(incident=incident, user=carol, now=T + 10 * MIN)
    assert send_reminders(remind_app, now=T + 10 * MIN)["claimed"] == 0
    # Still nothing published a minute after the last heartbeat: the repeat comes.
    assert send_reminders(remind_app, now=T + 11 * MIN + timedelta(seconds=1))["sent"] == 1
    assert kinds()[-1] == ("repeat", "sent")


def test_heartbeat_needs_the_cmoc_role(remind_app):
    viewer = make_user("vera", "viewer")
    incident = make_incident(viewer)
    client = remind_app.test_client()
    login(client, viewer)
    assert client.post(f"/incidents/{incident.id}/drafting").status_code == 403
    assert db.session.scalar(select(DraftPresence)) is None
