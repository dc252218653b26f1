"""Communication metrics from a scripted incident with known times; the report; /metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cmoc.extensions import db
from cmoc.models import Delivery, Reminder, Update
from cmoc.services.clock_state import beat
from cmoc.services.metrics import report
from tests.factories import login, make_incident, make_user

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def published(incident, author, at, *, state, cadence, publisher=None):
    update = Update(incident_id=incident.id, author_id=author.id, phase="published",
                    state=state, status=incident.status, template=state, created_at=at,
                    updated_at=at, published_at=at, published_by_id=(publisher or author).id,
                    cadence_minutes=cadence, next_due_at=at + cadence * MIN if cadence else None,
                    severity_at_publish=incident.severity, text_statusio="s", text_twitter="t",
                    text_slack="k")
    db.session.add(update)
    db.session.flush()
    db.session.add(Delivery(update_id=update.id, channel="twitter", status="sent", attempts=1,
                            created_at=at, updated_at=at, finished_at=at + 2 * MIN / 60))
    return update


def scripted():
    """S1 declared 09:00; first update 09:07; then 09:16 (due 09:17, on time), 09:40 (due
    09:26: 14 min late), resolved 10:05 (due 10:10 in monitoring: on time)."""
    alice, bob = make_user("alice", "cmoc"), make_user("bob", "cmoc")
    incident = make_incident(alice, now=T0, severity="S1", title="Scripted")
    published(incident, alice, T0 + 7 * MIN, state="investigating", cadence=10)
    published(incident, alice, T0 + 16 * MIN, state="identified", cadence=10)
    published(incident, bob, T0 + 40 * MIN, state="monitoring", cadence=30)
    published(incident, bob, T0 + 65 * MIN, state="resolved", cadence=None)
    incident.state, incident.status, incident.resolved_at = "resolved", "operational", T0 + 65 * MIN
    for kind, at in (("due", 26), ("escalation", 31), ("repeat", 36)):
        db.session.add(Reminder(incident_id=incident.id, due_at=T0 + 26 * MIN, kind=kind,
                                seq=0 if kind != "repeat" else 1, slot_at=T0 + at * MIN,
                                status="sent", created_at=T0 + at * MIN,
                                updated_at=T0 + at * MIN, sent_at=T0 + at * MIN + 2 * MIN / 60))
    db.session.commit()
    return incident


def test_metrics_of_a_scripted_incident(app):
    scripted()
    data = report(since=T0 - timedelta(days=1), until=T0 + timedelta(days=1))
    comms = data.incidents[0]
    assert comms.time_to_first_update == 7 * 60
    assert [g.on_time for g in comms.gaps] == [True, False, True]
    assert [g.cadence_minutes for g in comms.gaps] == [10, 10, 30]
    assert len(comms.late) == 1 and comms.late_minutes_total == 14
    assert (comms.reminders, comms.escalations) == (2, 1)
    people = {r.username: r for r in data.cmocs}
    assert people["alice"].adherence == 1.0 and people["alice"].updates_with_due == 1
    assert people["bob"].adherence == 0.5 and people["bob"].incidents == 1
    assert people["alice"].median_time_to_first == 7 * 60
    assert people["bob"].median_time_to_first is None


def test_only_sent_status_page_or_x_posts_make_an_update_public(app):
    """Finding 5: a Slack-only update, or a public post that failed, is not a public update."""
    alice = make_user("alice", "cmoc")
    incident = make_incident(alice, now=T0, title="Security")
    slack_only = published(incident, alice, T0 + 1 * MIN, state="investigating", cadence=10)
    slack_only.deliveries[0].channel = "slack"
    failed = published(incident, alice, T0 + 3 * MIN, state="investigating", cadence=10)
    failed.deliveries[0].status = "failed"
    published(incident, alice, T0 + 20 * MIN, state="investigating", cadence=10)
    db.session.commit()
    comms = report(since=T0 - timedelta(days=1), until=T0 + timedelta(days=1)).incidents[0]
    assert comms.time_to_first_update == 20 * 60
    assert comms.not_public == 2 and comms.gaps == []


def test_report_page_charts_and_csv(app, client):
    incident = scripted()
    login(client, make_user("vera", "viewer"))
    page = client.get("/reports/comms?since=2026-11-01&until=2026-11-03")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'id="adherence-chart"' in html and 'id="ttfu-chart"' in html and "<svg" in html
    assert "50%" in html and "100%" in html and "7.0 min" in html
    csv = client.get("/reports/comms.csv?since=2026-11-01&until=2026-11-03")
    rows = csv.get_data(as_text=True).splitlines()
    assert rows[0].startswith("incident_id,title,severity")
    assert rows[1].startswith(f"{incident.id},Scripted,S1,") and ",420,3,1,14.0,2,1" in rows[1]
    assert rows[0].endswith(",not_public_updates,promises_broken,no_public_post_decisions")
    detail = client.get(f"/incidents/{incident.id}").get_data(as_text=True)
    assert "7.0 min after declaring" in detail and "2 of 3" in detail


def test_prometheus_metrics_and_protection(make_app):
    app = make_app(METRICS_TOKEN="scrape-secret")
    with app.app_context():
        scripted()
        make_incident(title="Overdue", next_update_due_at=datetime.now(UTC) - MIN)
        beat(now=datetime.now(UTC) - 30 * timedelta(seconds=1))
        db.session.remove()
    client = app.test_client()
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    body = client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"}).get_data(
        as_text=True)
    assert 'cmoc_deliveries_total{channel="twitter",outcome="sent"} 4.0' in body
    assert "cmoc_overdue_incidents 1.0" in body
    assert 'cmoc_publish_latency_seconds_bucket{le="5.0"} 4.0' in body, [
        line for line in body.splitlines() if "latency" in line]
    assert "cmoc_reminder_lag_seconds_count 3.0" in body
    assert 'cmoc_reminder_lag_seconds_bucket{le="5.0"} 3.0' in body
    assert 'cmoc_active_incidents{severity="S1"} 1.0' in body
    age = next(float(line.split()[1]) for line in body.splitlines()
               if line.startswith("cmoc_clock_heartbeat_age_seconds "))
    assert 29 <= age < 120


def test_metrics_without_token_is_loopback_only(app, client):
    assert client.get("/metrics").status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 403


def test_csv_cells_cannot_start_a_formula():
    from cmoc.csvexport import csv_text

    text = csv_text(["a", "b", "c"], [["=HYPERLINK(x)", "@SUM(1)", 3], ["plain", "-2", None]])
    assert text.splitlines() == ["a,b,c", "'=HYPERLINK(x),'@SUM(1),3", "plain,'-2,"]
