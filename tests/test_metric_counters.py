"""/metrics from the trigger-kept counters equals a full recount of the rows (the old
scrape's queries, kept here as the oracle) after real publishing, retries, failures,
supersessions, dry runs, reminders, deletes and the clock's fold; the migration's backfill
equals the recount too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import delete, func, select, text, update

from cmoc.extensions import db
from cmoc.models import Delivery, Handover, Incident, MetricDelta, Notice, Reminder, Update
from cmoc.services.components import refresh_components
from cmoc.services.delivering import channels_for, resume_deliveries
from cmoc.services.metric_counters import fold
from cmoc.services.reminders import send_reminders
from cmoc.timeutil import utcnow
from tests.factories import login, make_incident, make_user, publish
from tests.metrics_oracle import check, scraped

T = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


# -- the scenario -------------------------------------------------------------------------------
@pytest.fixture
def mixed_app(make_app, fakes):
    """All channels on the fakes but X, which has no credentials (dry run)."""
    config = {k: v for k, v in fakes.env().items() if not k.startswith("TWITTER_")}
    app = make_app(**config, PUBLISH_BACKOFF_SECONDS=0, PUBLISH_WAIT_SECONDS=30,
                   HTTP_READ_TIMEOUT=1.0, SLACK_REMINDER_CHANNEL="#cmoc-reminders")
    with app.app_context():
        yield app
        db.session.remove()


def test_scraped_totals_equal_a_recount_through_retries_failures_and_deletes(mixed_app, fakes):
    app = mixed_app
    client = app.test_client()
    login(client, make_user("carol", "cmoc"))
    refresh_components(statusio=channels_for(app)["statusio"], now=utcnow())

    def later(seconds: float):
        return utcnow() + timedelta(seconds=seconds)

    check(client)

    # Status page create rate-limited, then superseded by the newer update; Slack fails once
    # and is retried inline, then fails for good on the second update; X is a dry run.
    first = make_incident(components=["API"], title="Mixed one")
    fakes.fail("statusio", "incident/create", status=429, headers={"Retry-After": "120"},
               body={"status": {"error": "yes", "message": "Too many requests"}})
    fakes.fail("slack", "chat.postMessage", status=503, body="down")
    publish(client, first, symptom="errors on the API", key="m1")
    check(client)
    fakes.fail("slack", "chat.postMessage", status=200,
               body={"ok": False, "error": "channel_not_found"})
    publish(client, first, state="identified", cause="a bad deploy", key="m2")
    resume_deliveries(app, now=later(125), sleep=lambda s: None)
    counted = check(client)
    outcomes = {k[1] for k in counted if k[0] == "cmoc_deliveries_total"}
    assert (("channel", "statusio"), ("outcome", "superseded")) in outcomes
    assert (("channel", "twitter"), ("outcome", "dry_run")) in outcomes

    # The Retry button on the failed Slack post: failed -> pending -> sent.
    fakes.clear_faults()
    failed = db.session.scalars(select(Delivery).where(Delivery.status == "failed")).all()
    assert [d.channel for d in failed] == ["slack"]
    for delivery in failed:
        client.post(f"/incidents/{first.id}/updates/{delivery.update_id}/retry",
                    data={"channels": [delivery.channel]})
    resume_deliveries(app, now=later(400), sleep=lambda s: None)
    check(client)
    fold()
    assert db.session.scalar(select(func.count()).select_from(MetricDelta)) == 0
    check(client)

    # Reminders: a failed send, then sent once Slack is back; sent ones have a lag.
    make_incident(title="Due", created_at=T - 30 * MIN, last_published_at=T - 10 * MIN,
                  next_update_due_at=T)
    fakes.fail("slack", "chat.postMessage", status=503, body="down")
    assert send_reminders(app, now=T + MIN)["failed"] == 1
    check(client)
    send_reminders(app, now=T + 2 * MIN)
    send_reminders(app, now=T + 40 * MIN)
    lag = check(client)
    assert lag[("cmoc_reminder_lag_seconds_count", ())] >= 1

    # Notices and handovers change status; an update's publish time moves; rows go with a
    # deleted update and a deleted incident (cascades, which no ORM event sees).
    notice = Notice(incident_id=first.id, kind="postmortem", key="k", channel="slack")
    db.session.add_all([notice, Handover(shift_start=T, shift_end=T + 8 * 60 * MIN,
                                         status="pending", title="Handover")])
    db.session.commit()
    check(client)
    notice.status = "sent"
    db.session.execute(update(Handover).values(status="done"))
    for row in db.session.scalars(select(Update).where(Update.incident_id == first.id)):
        row.published_at -= 3 * MIN
    db.session.commit()
    check(client)
    fold()
    newest = db.session.scalar(select(func.max(Update.id)))
    db.session.execute(delete(Update).where(Update.id == newest))
    db.session.commit()
    check(client)
    db.session.execute(delete(Incident))
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(Delivery)) == 0
    left = scraped(client)
    check(client)
    assert left[("cmoc_publish_latency_seconds_count", ())] == 0


def test_triggers_exist_at_head(app):
    """A SQLite batch_alter_table of these tables would drop its triggers silently."""
    if db.engine.dialect.name == "postgresql":
        names = db.session.scalars(text(
            "SELECT tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace"))
    else:
        names = db.session.scalars(text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))
    expected = {f"cmoc_metrics_{table}_{event}"
                for table in ("deliveries", "reminders", "notices", "handovers", "updates")
                for event in ("ins", "upd", "del")} - {"cmoc_metrics_updates_ins"}
    assert expected <= set(names)


def test_migration_backfill_equals_the_recount(app):
    """Rows written before the counters existed: the upgrade counts them as the scrape did."""
    downgrade(revision="-1")   # the revision before the counters
    db.session.remove()
    alice = make_user("alice", "cmoc")
    incident = make_incident(alice, now=T, title="Before the upgrade")
    for n, (state, statuses) in enumerate((("investigating", ("sent", "failed", "dry_run")),
                                           ("identified", ("sent", "superseded", "sent")),
                                           ("resolved", ("pending", "sent", "skipped")))):
        at = T + 10 * n * MIN
        row = Update(incident_id=incident.id, author_id=alice.id, phase="published",
                     state=state, status="investigating", template=state, created_at=at,
                     updated_at=at, published_at=at, publish_seq=n + 1)
        db.session.add(row)
        db.session.flush()
        for k, (channel, status) in enumerate(zip(("statusio", "twitter", "slack"), statuses,
                                                  strict=True)):
            db.session.add(Delivery(update_id=row.id, channel=channel, status=status,
                                    created_at=at, updated_at=at,
                                    finished_at=at + timedelta(seconds=0.3 + 7 * k * n)))
    for k, status in enumerate(("sent", "sent", "failed", "superseded")):
        db.session.add(Reminder(incident_id=incident.id, due_at=T, kind="due", seq=k,
                                slot_at=T, status=status, created_at=T, updated_at=T,
                                sent_at=T + timedelta(seconds=1.5 + 100 * k)))
    db.session.add(Notice(incident_id=incident.id, kind="postmortem", key="k",
                          channel="slack", status="sent"))
    db.session.add(Handover(shift_start=T, shift_end=T + MIN, status="done", title="H"))
    db.session.commit()
    upgrade()
    db.session.remove()
    assert db.session.scalar(select(func.count()).select_from(MetricDelta)) == 0
    expected = check(app.test_client())
    assert expected[("cmoc_deliveries_total", (("channel", "slack"), ("outcome", "sent")))] == 1
    assert expected[("cmoc_publish_latency_seconds_count", ())] == 4
