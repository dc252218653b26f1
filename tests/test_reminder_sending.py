"""Reminders sent in bulk: batches recorded before they are posted, Slack's Retry-After honoured
per target without holding up the others, and the batched message facts."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import requests

from cmoc.extensions import db
from cmoc.models import Delivery, Incident, IncidentEvent, Reminder, Update, User
from cmoc.services import reminder_sending
from cmoc.services.promises import snooze
from cmoc.services.reminder_messages import reminder_contexts
from cmoc.services.reminders import send_reminders
from tests import factories
from tests.factories import all_reminders, make_user

T = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
SECOND = timedelta(seconds=1)


def due_incident(**extra):
    return factories.due_incident(T, **extra)


def reminders():
    return all_reminders()


def posted_to(fakes, channel):
    return [c for c in fakes.calls("slack", "chat.postMessage") if c.body["channel"] == channel]


def test_many_reminders_in_small_batches_each_go_out_once(remind_app, fakes, monkeypatch):
    monkeypatch.setattr(reminder_sending, "BATCH", 7)
    monkeypatch.setattr(reminder_sending, "SETTLE_EVERY", 4)
    incidents = [due_incident(title=f"Incident {n}") for n in range(30)]
    counts = send_reminders(remind_app, now=T + MIN)
    assert counts["claimed"] == 30 and counts["sent"] == 30
    rows = reminders()
    assert {r.incident_id for r in rows} == {i.id for i in incidents}
    assert all(r.status == "sent" and r.attempts == 1 and r.sent_at for r in rows)
    # Each Slack message is its reminder's, and carries that reminder's id.
    by_ts = {m["ts"]: m for m in fakes.slack_messages}
    assert len(by_ts) == 30
    for row in rows:
        message = by_ts[row.external_id]
        assert message["metadata"]["event_payload"]["reminder_id"] == row.id
        assert f"#{row.incident_id} *Incident" in message["text"]
    assert send_reminders(remind_app, now=T + 2 * MIN)["sent"] == 0


def test_a_reminder_is_recorded_before_slack_sees_it(remind_app, fakes):
    due_incident()
    fakes.fail("slack", "chat.postMessage", status=200, apply=True, delay=5.0,
               body={"ok": True, "channel": "C0REMIND", "ts": "1700000000.000100"})
    worker = threading.Thread(target=send_reminders, args=(remind_app,),
                              kwargs={"now": T + MIN})
    worker.start()
    deadline = time.monotonic() + 30
    while not fakes.calls("slack", "chat.postMessage") and time.monotonic() < deadline:
        time.sleep(0.02)
    (call,) = fakes.calls("slack", "chat.postMessage")
    (row,) = reminders()   # read while Slack has not answered yet
    assert row.status == "sending" and row.payload["text"] == call.body["text"]
    assert row.target == "#cmoc-reminders"
    worker.join(timeout=30)
    assert reminders()[0].status == "sent"


def test_retry_after_holds_back_that_target_only(remind_app, fakes, monkeypatch):
    monkeypatch.setattr(reminder_sending, "SEND_WORKERS", 1)   # one post at a time: in order
    make_user("declarer", "cmoc")   # no Slack id: their incidents' reminders go to the channel
    person = make_user("dm-user", "cmoc", slack_user_id="U0123ABCD")
    channel_bound = [due_incident(title=f"Channel {n}") for n in range(3)]
    dm = due_incident(cmoc_id=person.id, title="To the DM")
    fakes.fail("slack", "chat.postMessage", status=429, headers={"Retry-After": "20"},
               body={"ok": False, "error": "ratelimited"}, where={"channel": "#cmoc-reminders"})
    counts = send_reminders(remind_app, now=T + MIN)
    # The DM is not held up by the channel's rate limit.
    assert counts["sent"] == 1 and counts["failed"] == 3
    assert [m["posted_to"] for m in fakes.slack_messages] == ["U0123ABCD"]
    rows = {r.incident_id: r for r in reminders()}
    assert rows[dm.id].status == "sent"
    held = [rows[i.id] for i in channel_bound]
    # Slack was asked once; the other two waited without asking. A 429 posted nothing, so
    # no attempt is counted for any of them.
    assert len(posted_to(fakes, "#cmoc-reminders")) == 1
    assert [r.attempts for r in held] == [0, 0, 0]
    assert all(r.status == "failed" and "rate limit" in r.error for r in held)
    # Retried from Slack's answer on (the pass's time moved on by its duration).
    assert all(T + MIN + 20 * SECOND <= r.retry_at < T + MIN + 50 * SECOND for r in held)
    # Not before Slack's time, and then each once.
    assert send_reminders(remind_app, now=T + MIN + 10 * SECOND)["sent"] == 0
    assert len(posted_to(fakes, "#cmoc-reminders")) == 1
    assert send_reminders(remind_app, now=T + 2 * MIN)["sent"] == 3
    assert sorted(m["posted_to"] for m in fakes.slack_messages) == (
        ["#cmoc-reminders"] * 3 + ["U0123ABCD"])


def test_the_hold_also_covers_new_reminders_for_that_target(remind_app, fakes):
    first = due_incident(title="First")
    fakes.fail("slack", "chat.postMessage", status=429, headers={"Retry-After": "60"},
               body={"ok": False, "error": "ratelimited"})
    assert send_reminders(remind_app, now=T + MIN)["failed"] == 1
    # A reminder for another incident falls due while the channel is on hold: it waits too.
    later = due_incident(title="Later", next_update_due_at=T + MIN + 10 * SECOND)
    counts = send_reminders(remind_app, now=T + MIN + 20 * SECOND)
    assert counts["claimed"] == 1 and counts["failed"] == 1 and fakes.slack_messages == []
    assert len(fakes.calls("slack", "chat.postMessage")) == 1
    waiting = {r.incident_id: r for r in reminders()}[later.id]
    assert waiting.attempts == 0 and waiting.retry_at >= T + 2 * MIN
    counts = send_reminders(remind_app, now=T + 2 * MIN + 30 * SECOND)
    assert counts["sent"] == 2
    assert {r.incident_id for r in reminders() if r.status == "sent"} == {first.id, later.id}


def test_a_huge_retry_after_is_capped(remind_app, fakes):
    due_incident()
    fakes.fail("slack", "chat.postMessage", status=429, headers={"Retry-After": "7200"},
               body={"ok": False, "error": "ratelimited"})
    send_reminders(remind_app, now=T + MIN)
    (row,) = reminders()
    cap = timedelta(seconds=reminder_sending.MAX_HOLD_SECONDS)
    assert T + MIN + cap <= row.retry_at < T + MIN + cap + 30 * SECOND
    assert send_reminders(remind_app, now=T + MIN + cap + 60 * SECOND)["sent"] == 1


def test_a_reminder_left_in_flight_is_looked_up_even_while_its_channel_waits(
        remind_app, fakes, monkeypatch):
    """A crashed pass posted a reminder but never recorded it. The next pass finds the
    channel rate limited: the reminder waits, still to be looked up, and is then found in
    Slack, not posted twice."""
    monkeypatch.setattr(reminder_sending, "SEND_WORKERS", 1)
    crashed = due_incident(title="Posted before the crash")
    row = Reminder(incident_id=crashed.id, due_at=T, kind="due", seq=0, slot_at=T,
                   status="sending", target="#cmoc-reminders", attempts=1,
                   created_at=T + MIN, updated_at=T + MIN)
    db.session.add(row)
    db.session.flush()
    row.payload = {"channel": "#cmoc-reminders", "text": "Update due now", "blocks": [],
                   "metadata": {"event_type": "cmoc_reminder",
                                "event_payload": {"reminder_id": row.id}}}
    db.session.commit()
    env = fakes.env()
    requests.post(f"{env['SLACK_API_URL']}/chat.postMessage", json=row.payload, timeout=10,
                  headers={"Authorization": f"Bearer {env['SLACK_BOT_TOKEN']}"})
    other = due_incident(title="Rate limited", next_update_due_at=T + 3 * MIN)
    fakes.fail("slack", "chat.postMessage", status=429, headers={"Retry-After": "30"},
               body={"ok": False, "error": "ratelimited"})
    # The new reminder is posted first and meets the 429; the one left in flight waits.
    send_reminders(remind_app, now=T + 4 * MIN)
    rows = {r.incident_id: r for r in reminders()}
    assert rows[crashed.id].status == "failed" and rows[crashed.id].outcome_unknown
    # (Before the crashed incident's escalation, due at T + 5 min.)
    assert send_reminders(remind_app, now=T + 4 * MIN + 50 * SECOND)["sent"] == 2
    rows = {r.incident_id: r for r in reminders()}
    assert rows[crashed.id].status == "sent" and rows[crashed.id].attempts == 1
    assert rows[other.id].status == "sent"
    texts = [m["text"] for m in fakes.slack_messages]
    assert texts.count("Update due now") == 1 and len(texts) == 2


def test_contexts_for_many_incidents_are_each_their_own(remind_app):
    author = make_user("writer", "cmoc")
    with_drafts, internal, public, handed_over, plain = (
        due_incident(title=t) for t in ("drafts", "internal", "public", "handover", "plain"))

    def update(incident, phase, *, at, seq=None, channels=()):
        row = Update(incident_id=incident.id, author_id=author.id, phase=phase,
                     state="investigating", status="degraded_performance",
                     template="default", created_at=at, updated_at=at,
                     published_at=at if seq else None, publish_seq=seq)
        db.session.add(row)
        db.session.flush()
        for channel in channels:
            db.session.add(Delivery(update_id=row.id, channel=channel, status="sent"))
        return row

    update(with_drafts, "draft", at=T - 5 * MIN)
    newest = update(with_drafts, "draft", at=T - 2 * MIN)
    update(internal, "published", at=T - 20 * MIN, seq=1, channels=("statusio",))
    update(internal, "published", at=T - 8 * MIN, seq=2, channels=("slack",))
    update(public, "published", at=T - 8 * MIN, seq=1, channels=("statusio", "slack"))
    db.session.add_all([
        IncidentEvent(incident_id=handed_over.id, kind="oncall_handover",
                      created_at=T - 20 * MIN, detail={"to": "too-old"}),
        IncidentEvent(incident_id=handed_over.id, kind="oncall_handover",
                      created_at=T - 4 * MIN, detail={"to": "carol", "from": "bob"})])
    db.session.commit()
    contexts = reminder_contexts([with_drafts, internal, public, handed_over, plain])
    assert contexts[with_drafts.id] == {"internal_at": None, "draft_id": newest.id,
                                        "handover": None}
    assert contexts[internal.id]["internal_at"] == T - 8 * MIN
    assert contexts[public.id] == {"internal_at": None, "draft_id": None, "handover": None}
    assert contexts[handed_over.id]["handover"] == {"to": "carol", "from": "bob",
                                                    "at": T - 4 * MIN}
    assert contexts[plain.id] == {"internal_at": None, "draft_id": None, "handover": None}


def test_a_reminder_snoozed_while_the_batch_before_it_posts_is_not_sent(
        remind_app, fakes, monkeypatch):
    """Batches are prepared ahead of posting; the due time is checked again just before a
    batch goes out, so a snooze in between is honoured."""
    monkeypatch.setattr(reminder_sending, "BATCH", 1)
    first, second = due_incident(title="First"), due_incident(title="Second")
    fakes.fail("slack", "chat.postMessage", status=200, apply=True, delay=3.0,
               body={"ok": True, "channel": "C0REMIND", "ts": "1700000000.000200"})
    worker = threading.Thread(target=send_reminders, args=(remind_app,),
                              kwargs={"now": T + MIN})
    worker.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:   # the second batch is prepared (payload recorded)
        rows = {r.incident_id: r for r in reminders()}
        if second.id in rows and rows[second.id].payload:
            break
        time.sleep(0.02)
    assert rows[second.id].status == "sending"
    snooze(incident=db.session.get(Incident, second.id), minutes=5,
           actor=db.session.get(User, first.declared_by_id), now=T + MIN)
    worker.join(timeout=30)
    rows = {r.incident_id: r for r in reminders()}
    assert rows[first.id].status == "sent"
    assert rows[second.id].status == "cancelled"
    assert len(fakes.calls("slack", "chat.postMessage")) == 1
