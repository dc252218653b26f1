"""Reminders: slots, messages, exactly-once sending across passes, restarts and racing clocks."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from cmoc import create_app
from cmoc.enums import Severity, State
from cmoc.extensions import db
from cmoc.models import IncidentEvent, Reminder
from cmoc.services.clock_state import ClockLock, beat, clock_is_healthy
from cmoc.services.incidents import refresh_due
from cmoc.services.promises import snooze
from cmoc.services.reminder_messages import reminder_message
from cmoc.services.reminders import reminder_slots, send_reminders
from tests import factories
from tests.factories import all_reminders, login, make_incident, make_user

T = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def test_slots_due_escalation_and_repeats():
    def kinds(now):
        return [(s.kind, s.seq) for s in reminder_slots(due_at=T, interval=10 * MIN,
                                                         grace=5 * MIN, now=now)]
    assert kinds(T - timedelta(seconds=1)) == []
    assert kinds(T) == [("due", 0)]
    assert kinds(T + 5 * MIN) == [("due", 0), ("escalation", 0)]
    assert kinds(T + 10 * MIN) == [("due", 0), ("escalation", 0), ("repeat", 1)]
    assert kinds(T + 25 * MIN) == [("due", 0), ("escalation", 0), ("repeat", 2)]


@pytest.fixture
def remind_app(make_app, fakes):
    app = make_app(**fakes.env(), SLACK_REMINDER_CHANNEL="#cmoc-reminders",
                   SLACK_ESCALATION_MENTION="<!subteam^SIMOC>",
                   BASE_URL="https://cmoc.example.com")
    with app.app_context():
        yield app
        db.session.remove()


def due_incident(**extra):
    return factories.due_incident(T, **extra)


def reminders():
    return all_reminders()


def test_message_names_incident_and_links_to_the_drafting_form(remind_app):
    incident = due_incident(title="Errors <on> API")
    text = reminder_message(incident=incident, kind="due", now=T + MIN,
                            base_url="https://cmoc.example.com", mention=None)
    assert f"#{incident.id} *Errors &lt;on&gt; API*" in text
    assert "(S1 · Investigating · Service Disruption)" in text
    assert "last public update 11m ago (13:50 UTC)" in text
    assert (f"<https://cmoc.example.com/incidents/{incident.id}/updates/new?"
            "template=no-material-updates&state=investigating|No material updates>") in text
    escalation = reminder_message(incident=incident, kind="escalation", now=T + 6 * MIN,
                                  base_url="https://x", mention="<!subteam^SIMOC>")
    assert escalation.startswith("<!subteam^SIMOC> the CMOC (declarer) has not posted the "
                                 "update due at 14:00")
    assert "overdue by 6m" in escalation


def test_due_reminder_goes_out_once_then_escalation_then_cadence(remind_app, fakes):
    due_incident()
    assert send_reminders(remind_app, now=T - 3 * MIN)["claimed"] == 0
    # The heads-up, two minutes before due (once).
    assert send_reminders(remind_app, now=T - 2 * MIN)["sent"] == 1
    assert send_reminders(remind_app, now=T - MIN)["claimed"] == 0
    assert fakes.slack_messages[0]["text"].startswith(
        ":hourglass_flowing_sand: Update due in 2m (by 14:00 UTC)")
    assert send_reminders(remind_app, now=T + timedelta(seconds=2))["sent"] == 1
    for _ in range(3):  # later passes inside the same slot send nothing
        assert send_reminders(remind_app, now=T + 2 * MIN)["claimed"] == 0
    assert len(fakes.slack_messages) == 2
    first = fakes.slack_messages[1]
    assert first["posted_to"] == "#cmoc-reminders"
    assert first["text"].startswith(":alarm_clock: Update due now (14:00 UTC)")
    send_reminders(remind_app, now=T + 5 * MIN)
    assert fakes.slack_messages[2]["text"].startswith("<!subteam^SIMOC>")
    send_reminders(remind_app, now=T + 7 * MIN)
    assert len(fakes.slack_messages) == 3   # never more often than the cadence
    send_reminders(remind_app, now=T + 10 * MIN)
    assert fakes.slack_messages[3]["text"].startswith(":alarm_clock: Still no update")
    send_reminders(remind_app, now=T + 19 * MIN)
    send_reminders(remind_app, now=T + 20 * MIN)
    assert len(fakes.slack_messages) == 5
    assert [r.kind for r in reminders()] == ["heads_up", "due", "escalation", "repeat",
                                             "repeat"]
    assert all(r.status == "sent" for r in reminders())


def test_restart_sends_nothing_twice(remind_app, fakes):
    due_incident()
    send_reminders(remind_app, now=T + MIN)
    # A fresh process: a new app on the same database.
    # (Every channel as before: an https BASE_URL refuses to start with simulated channels.)
    restarted = create_app({**{k: remind_app.config[k] for k in (
        "SECRET_KEY", "SLACK_REMINDER_CHANNEL", "BASE_URL", *fakes.env())},
        "DATABASE_URL": remind_app.config["SQLALCHEMY_DATABASE_URI"],
        "INSTANCE_PATH": remind_app.instance_path})
    assert send_reminders(restarted, now=T + 2 * MIN)["claimed"] == 0
    assert len(fakes.slack_messages) == 1
    with restarted.app_context():
        db.engine.dispose()


def test_clock_down_across_due_and_grace_sends_one_escalation(remind_app, fakes):
    due_incident()
    counts = send_reminders(remind_app, now=T + 32 * MIN)
    assert counts["claimed"] == 1 and counts["superseded"] == 2
    assert len(fakes.slack_messages) == 1
    assert fakes.slack_messages[0]["text"].startswith("<!subteam^SIMOC>")
    send_reminders(remind_app, now=T + 33 * MIN)
    assert len(fakes.slack_messages) == 1


def test_direct_message_when_the_cmoc_has_a_slack_id(remind_app, fakes):
    user = make_user("dm-user", "cmoc", slack_user_id="U0123ABCD")
    due_incident(cmoc_id=user.id)
    send_reminders(remind_app, now=T + MIN)
    assert fakes.slack_messages[0]["posted_to"] == "U0123ABCD"
    assert fakes.slack_messages[0]["channel"] == "D0123ABCD"
    assert reminders()[0].target == "U0123ABCD"


def test_resolved_snoozed_or_published_incidents_get_nothing(remind_app, fakes):
    resolved = due_incident(state="resolved", status="operational", resolved_at=T - MIN)
    snoozed = due_incident()
    user = make_user("snoozer", "cmoc")
    snooze(incident=snoozed, minutes=10, actor=user, now=T - MIN)
    assert snoozed.next_update_due_at == T + 10 * MIN
    event = db.session.scalar(select(IncidentEvent))
    assert (event.kind, event.detail["minutes"]) == ("snooze", 10)
    send_reminders(remind_app, now=T + 5 * MIN)
    assert fakes.slack_messages == [] and resolved.resolved_at is not None
    # Published since: the due time moved, so the old slot is gone too.
    snoozed.last_published_at = T + 6 * MIN
    refresh_due(incident=snoozed, cadence=remind_app.config["CADENCE_MATRIX"])
    db.session.commit()
    send_reminders(remind_app, now=T + 12 * MIN)
    assert fakes.slack_messages == []
    send_reminders(remind_app, now=T + 16 * MIN)
    assert len(fakes.slack_messages) == 1


def test_claimed_but_resolved_before_sending_is_cancelled(remind_app, fakes):
    incident = due_incident()
    db.session.add(Reminder(incident_id=incident.id, due_at=T, kind="due", seq=0, slot_at=T,
                            status="sending", created_at=T, updated_at=T))
    incident.state, incident.resolved_at = "resolved", T + MIN
    db.session.commit()
    counts = send_reminders(remind_app, now=T + 5 * MIN)
    assert counts["cancelled"] == 1 and fakes.slack_messages == []


def test_failed_send_is_retried_once_slack_is_back(remind_app, fakes):
    due_incident()
    fakes.fail("slack", "chat.postMessage", status=503, body="down")
    assert send_reminders(remind_app, now=T + MIN)["failed"] == 1
    assert reminders()[0].error.startswith("Slack server error")
    send_reminders(remind_app, now=T + MIN + timedelta(seconds=10))
    assert fakes.slack_messages == []
    send_reminders(remind_app, now=T + 2 * MIN)
    assert len(fakes.slack_messages) == 1 and reminders()[0].status == "sent"


def test_dry_run_without_slack_token(make_app):
    app = make_app()
    with app.app_context():
        due_incident()
        assert send_reminders(app, now=T + MIN)["dry_run"] == 1
        assert reminders()[0].payload["channel"] == "<SLACK_REMINDER_CHANNEL>"
        db.session.remove()


def test_nobody_to_remind_is_shown_and_never_retried(make_app, fakes):
    other = make_app(**fakes.env())  # token but no channel and no Slack id
    with other.app_context():
        incident = due_incident()
        assert send_reminders(other, now=T + MIN)["undeliverable"] == 1
        assert "Slack member id" in reminders()[0].error
        for minutes in (2, 3, 4, 8):      # retried every 30 s forever, before
            counts = send_reminders(other, now=T + minutes * MIN)
            assert counts["sent"] == 0 and counts["failed"] == 0
        assert [r.status for r in reminders()] == ["undeliverable", "undeliverable"]
        assert reminders()[1].kind == "escalation"
        viewer = make_user("viewer", "viewer")
        client = other.test_client()
        login(client, viewer)
        page = client.get("/").get_data(as_text=True)
        assert f'id="reminder-problem-{incident.id}"' in page and "Nobody to remind" in page
        db.session.remove()


def test_escalation_goes_where_the_incident_manager_sees_it(remind_app, fakes):
    user = make_user("dm-user", "cmoc", slack_user_id="U0123ABCD")
    due_incident(cmoc_id=user.id, slack_channel="#incident-4711")
    send_reminders(remind_app, now=T + MIN)
    send_reminders(remind_app, now=T + 5 * MIN)
    due, escalation = fakes.slack_messages
    assert due["posted_to"] == "U0123ABCD"           # the reminder: the CMOC's DM
    assert escalation["posted_to"] == "#incident-4711"   # the escalation: the incident channel
    assert escalation["text"].startswith("<!subteam^SIMOC> the CMOC (<@U0123ABCD>)")
    remind_app.config["SLACK_ESCALATION_CHANNEL"] = "#imoc-escalations"
    due_incident(cmoc_id=user.id, slack_channel="#incident-4712")
    send_reminders(remind_app, now=T + 5 * MIN)
    assert fakes.slack_messages[-1]["posted_to"] == "#imoc-escalations"


def test_escalation_without_incident_channel_goes_to_the_reminder_channel(remind_app, fakes):
    user = make_user("dm-user", "cmoc", slack_user_id="U0123ABCD")
    due_incident(cmoc_id=user.id)
    send_reminders(remind_app, now=T + 6 * MIN)
    assert fakes.slack_messages[0]["posted_to"] == "#cmoc-reminders"


def test_unanswered_reminder_is_looked_up_not_sent_twice(remind_app, fakes):
    """Slack posted the DM but the answer never came (read timeout): the retry finds it."""
    remind_app.config["HTTP_READ_TIMEOUT"] = 1.0
    user = make_user("dm-user", "cmoc", slack_user_id="U0123ABCD")
    due_incident(cmoc_id=user.id)
    fakes.fail("slack", "chat.postMessage", status=200, apply=True, delay=1.5,
               body={"ok": True})
    assert send_reminders(remind_app, now=T + MIN)["failed"] == 1
    assert reminders()[0].outcome_unknown
    send_reminders(remind_app, now=T + 2 * MIN)
    assert len(fakes.slack_messages) == 1
    reminder = reminders()[0]
    assert reminder.status == "sent" and reminder.external_id == fakes.slack_messages[0]["ts"]
    assert reminder.attempts == 1
    assert fakes.calls("slack", "conversations.open")  # the DM's channel id, for the look-up


def test_two_clocks_racing_send_one_reminder(remind_app, fakes):
    for _ in range(5):
        due_incident()
    barrier = threading.Barrier(4)
    results = []

    def clock():
        barrier.wait(timeout=30)
        results.append(send_reminders(remind_app, now=T + MIN))

    threads = [threading.Thread(target=clock) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sum(r["claimed"] for r in results) == 5
    assert len(fakes.slack_messages) == 5
    assert len(reminders()) == 5


def test_clock_lock_admits_one_clock(remind_app, tmp_path):
    first = ClockLock(engine=db.engine, instance_path=str(tmp_path))
    second = ClockLock(engine=db.engine, instance_path=str(tmp_path))
    assert first.acquire()
    assert not second.acquire()
    first.release()
    assert second.acquire()
    second.release()


def test_heartbeat_and_dashboard_warning(remind_app):
    user = make_user("viewer", "viewer")
    client = remind_app.test_client()
    login(client, user)
    assert b'id="clock-warning"' in client.get("/").data
    beat(now=datetime.now(UTC))
    assert clock_is_healthy(now=datetime.now(UTC))
    assert not clock_is_healthy(now=datetime.now(UTC) + timedelta(minutes=5))
    assert b'id="clock-warning"' not in client.get("/").data


def test_snooze_take_over_and_profile_pages(remind_app):
    user = make_user("carol", "cmoc")
    other = make_user("dave", "cmoc")
    incident = make_incident(cmoc_id=other.id, next_update_due_at=datetime.now(UTC))
    client = remind_app.test_client()
    login(client, user)
    page = client.get("/").get_data(as_text=True)
    assert 'data-due="' in page and 'data-snooze="10"' in page
    before = incident.next_update_due_at
    client.post(f"/incidents/{incident.id}/snooze", data={"minutes": "10", "next": "/"})
    db.session.refresh(incident)
    assert incident.next_update_due_at >= before + timedelta(minutes=10)
    bad = client.post(f"/incidents/{incident.id}/snooze", data={"minutes": "60"},
                      follow_redirects=True)
    assert b"Snooze for 5, 10 or 15 minutes" in bad.data
    client.post(f"/incidents/{incident.id}/take-over")
    db.session.refresh(incident)
    assert incident.cmoc_id == user.id
    detail = client.get(f"/incidents/{incident.id}").get_data(as_text=True)
    assert "snoozed the next update by 10 min" in detail
    assert "carol took over as CMOC from dave" in detail
    refused = client.post("/profile", data={"slack_user_id": "not an id"})
    assert refused.status_code == 400 and b"member id" in refused.data
    client.post("/profile", data={"slack_user_id": "u0123abcd"})
    db.session.refresh(user)
    assert user.slack_user_id == "U0123ABCD"


def test_cadence_override_drives_the_due_time(remind_app):
    incident = due_incident(next_update_minutes=45)
    refresh_due(incident=incident, cadence=remind_app.config["CADENCE_MATRIX"])
    assert incident.next_update_due_at == T - 10 * MIN + 45 * MIN
    assert remind_app.config["CADENCE_MATRIX"].interval(State.MONITORING, Severity.S2) == 60 * MIN


def test_send_reminders_cli(remind_app, fakes):
    due_incident(next_update_due_at=datetime.now(UTC) - MIN)
    result = remind_app.test_cli_runner().invoke(args=["send-reminders"])
    assert result.exit_code == 0 and "claimed=1" in result.output and "sent=1" in result.output
