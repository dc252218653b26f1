"""The report computed in SQL equals the Python reference (`python_report`) on generated
incidents full of edge cases, on every backend."""

from __future__ import annotations

import random
from dataclasses import astuple
from datetime import UTC, datetime, timedelta

import pytest

from cmoc.extensions import db
from cmoc.models import Delivery, Incident, IncidentEvent, Reminder, Update
from cmoc.services.metrics import python_report, report
from tests.factories import make_user

SINCE = datetime(2026, 11, 1, tzinfo=UTC)
UNTIL = datetime(2026, 11, 8, tzinfo=UTC)
MIN, SEC, US = timedelta(minutes=1), timedelta(seconds=1), timedelta(microseconds=1)

# What one channel did with one update; None: no delivery on that channel.
OUTCOMES = [None, None, "sent", "sent", "sent", "failed", "dry_run", "superseded", "skipped",
            "pending"]


def _update(rng, incident, users, at, seq):
    published = rng.random() > 0.1  # some stay drafts: never counted
    cadence = rng.choice([None, 10, 10, 15, 30, 60]) if published else None
    update = Update(
        incident_id=incident.id, author_id=rng.choice(users).id, state="investigating",
        status="service_disruption", template="investigating", created_at=at, updated_at=at,
        phase="published" if published else "draft",
        published_at=at if published else None, publish_seq=seq if published else None,
        # Sometimes no publisher recorded: the author counts.
        published_by_id=rng.choice(users).id if published and rng.random() > 0.2 else None,
        cadence_minutes=cadence, next_due_at=at + cadence * MIN if cadence else None)
    db.session.add(update)
    db.session.flush()
    for channel in ("statusio", "twitter", "slack", "gitlab"):
        outcome = rng.choice(OUTCOMES)
        if outcome:
            db.session.add(Delivery(update_id=update.id, channel=channel, status=outcome,
                                    created_at=at, updated_at=at))


def _incident(rng, users, declared):
    incident = Incident(title=f"Incident at {declared:%d %H:%M}", severity=rng.choice("1234"),
                        status="service_disruption", declared_by_id=users[0].id,
                        created_at=declared, updated_at=declared, components=[])
    db.session.add(incident)
    db.session.flush()
    at = declared
    for seq in range(1, rng.randint(0, 9) + 1):
        # Microseconds on purpose; sometimes two updates in the same instant (order: id).
        at += rng.choice([timedelta(0), 3 * MIN, 9 * MIN, 11 * MIN, 25 * MIN, 61 * MIN]) \
            + timedelta(microseconds=rng.randint(0, 999_999))
        _update(rng, incident, users, at, seq)
    if rng.random() < 0.6:
        incident.state, incident.resolved_at = "resolved", at
    for n in range(rng.randint(0, 4)):
        db.session.add(Reminder(
            incident_id=incident.id, due_at=declared + n * MIN,
            kind=rng.choice(["heads_up", "due", "escalation", "repeat"]), seq=n,
            slot_at=declared, created_at=declared, updated_at=declared,
            status=rng.choice(["sent", "dry_run", "failed", "superseded", "sending"])))
    for _ in range(rng.randint(0, 3)):
        kind = rng.choice(["snooze", "snooze", "no_public_post", "state_change"])
        detail = {"minutes": 5}
        if kind == "snooze" and rng.random() < 0.5:
            detail |= {"breaks_promise": True, "promised": "09:00 UTC"}
        db.session.add(IncidentEvent(incident_id=incident.id, kind=kind, created_at=declared,
                                     detail=detail))


def _on_the_tolerance(users):
    """Public updates exactly 60 s after their due time (on time) and 1 µs more (late)."""
    declared = SINCE + timedelta(days=1)
    incident = Incident(title="On the edge", severity="S2", status="service_disruption",
                        declared_by_id=users[0].id, created_at=declared, updated_at=declared)
    db.session.add(incident)
    db.session.flush()
    at = declared + 5 * MIN
    for seq, after in enumerate([timedelta(0), 10 * MIN + 60 * SEC, 10 * MIN + 60 * SEC + US,
                                 10 * MIN], start=1):
        at += after
        update = Update(incident_id=incident.id, author_id=users[1].id, state="investigating",
                        status="service_disruption", template="investigating", created_at=at,
                        updated_at=at, phase="published", published_at=at, publish_seq=seq,
                        cadence_minutes=10, next_due_at=at + 10 * MIN)
        db.session.add(update)
        db.session.flush()
        db.session.add(Delivery(update_id=update.id, channel="statusio", status="sent",
                                created_at=at, updated_at=at))


def generate(seed: int = 16, incidents: int = 60) -> None:
    rng = random.Random(seed)
    users = [make_user(name) for name in ("alice", "bob", "carol", "dan")]
    for _ in range(incidents):
        # Declared before, inside and after the period; some inside but updated after it.
        declared = SINCE + timedelta(days=rng.uniform(-1.5, 8.5))
        _incident(rng, users, declared.replace(microsecond=rng.randint(0, 999_999)))
    # Exactly on the bounds: `since` is in, `until` is out.
    _incident(rng, users, SINCE)
    _incident(rng, users, UNTIL)
    _on_the_tolerance(users)
    db.session.commit()


def incident_figures(comms) -> tuple:
    return (comms.incident_id, comms.title, comms.severity, comms.declared_at,
            comms.first_public_at, comms.first_publisher, comms.time_to_first_update,
            comms.gap_count, comms.late_count, comms.reminders, comms.escalations,
            comms.reminders_dry_run, comms.escalations_dry_run, comms.superseded,
            comms.not_public, comms.promises_broken, comms.no_public_post)


def assert_same(sql, reference) -> None:
    assert [incident_figures(c) for c in sql.incidents] == \
        [incident_figures(c) for c in reference.incidents]
    for ours, theirs in zip(sql.incidents, reference.incidents, strict=True):
        assert ours.late_minutes_total == pytest.approx(theirs.late_minutes_total, abs=1e-9)
        assert [astuple(g) for g in ours.gaps] == [astuple(g) for g in theirs.gaps]
    assert [(r.username, r.incidents, r.updates_with_due, r.on_time, r.adherence,
             sorted(r.first_updates), r.median_time_to_first) for r in sql.cmocs] == \
        [(r.username, r.incidents, r.updates_with_due, r.on_time, r.adherence,
          sorted(r.first_updates), r.median_time_to_first) for r in reference.cmocs]


@pytest.mark.parametrize("limit", [2000, 7])
def test_sql_report_equals_the_python_reference(app, limit):
    generate()
    sql = report(since=SINCE, until=UNTIL, limit=limit)
    reference = python_report(since=SINCE, until=UNTIL, limit=limit)
    # The data has every case the figures distinguish.
    assert len(sql.incidents) == min(limit, len(reference.incidents))
    if limit == 2000:
        assert any(c.first_public_at is None for c in sql.incidents)
        assert any(c.not_public for c in sql.incidents)
        assert any(c.late_count for c in sql.incidents)
        assert any(c.gap_count > c.late_count for c in sql.incidents)
        assert any(c.promises_broken for c in sql.incidents)
        assert any(c.superseded for c in sql.incidents)
        assert any(c.reminders_dry_run for c in sql.incidents)
        assert sql.incidents[0].declared_at == SINCE
        assert all(SINCE <= c.declared_at < UNTIL for c in sql.incidents)
    assert_same(sql, reference)
    edge = next(c for c in sql.incidents if c.title == "On the edge")
    assert [g.on_time for g in edge.gaps] == [True, False, True]
    assert edge.late_minutes_total == pytest.approx((60 + 1e-6) / 60, abs=1e-12)


def test_an_empty_period(app):
    generate(incidents=5)
    empty = report(since=UNTIL + timedelta(days=30), until=UNTIL + timedelta(days=31))
    assert empty.incidents == [] and empty.cmocs == []
