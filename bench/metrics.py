"""`/metrics` scrape time at 10,000 and 1,000,000 deliveries: the trigger-kept counters (the
app's route) against the old collector that scanned every delivery and reminder at each scrape
(kept below as the baseline), side by side in one run.

    .venv/bin/python -m bench.metrics [--database-url URL] [--sizes 10000 1000000]

Without --database-url it runs on SQLite in a temporary folder. With it, the database's public
schema is dropped and rebuilt for each size. Each size is seeded in SQL (a delivery per channel
of each published update, mostly sent; reminders, four per incident); the triggers fire on
every row, and the deltas are folded once, as the clock does every 15 s. Scrapes go through
the in-process test client, old and new alternating.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from flask import Response, request
from flask_migrate import upgrade
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from sqlalchemy import case, func, select, text

from cmoc import create_app
from cmoc.extensions import db
from cmoc.models import Delivery, Handover, Incident, Notice, Reminder, Update, WebhookCounter
from cmoc.prometheus import LAG_BUCKETS, LATENCY_BUCKETS
from cmoc.services.clock_state import clock_last_seen
from cmoc.services.metric_counters import fold
from cmoc.services.metrics import overdue_count
from cmoc.services.refusals import refusal_counts
from cmoc.timeutil import utcnow

# {n}: the numbers 1..n as rows of series(x), the same SQL on both databases.
SERIES = """
CREATE TABLE series (x INTEGER PRIMARY KEY);
INSERT INTO series (x) WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g
    WHERE x < :n) SELECT x FROM g"""
SEED = """
INSERT INTO users (username, password_hash, role, active, created_at)
VALUES ('bench', '-', 'cmoc', true, {now});
INSERT INTO incidents (title, severity, state, status, components, declared_by_id, created_at,
    updated_at, resolved_at)
SELECT 'Past incident ' || x, 'S' || (1 + x % 4), 'resolved', 'operational', '[]', 1,
       {at_x}, {at_x}, {at_x} FROM series WHERE x <= :incidents;
INSERT INTO updates (incident_id, author_id, phase, state, status, template, variables,
    text_statusio, text_twitter, text_slack, text_gitlab, edited_channels, created_at,
    updated_at, published_at, publish_seq)
SELECT i.id, 1, 'published', 'investigating', 'investigating', 'investigating', '{{}}', '',
       '', '', '', '[]', i.created_at, i.created_at, i.created_at, s.x
FROM incidents i CROSS JOIN series s WHERE s.x <= 10;
INSERT INTO deliveries (update_id, channel, status, attempts, retryable, outcome_unknown,
    maybe_posted, created_at, updated_at, finished_at)
SELECT u.id, c.channel,
       CASE WHEN u.id % 53 = 0 THEN 'failed' WHEN u.id % 31 = 0 THEN 'superseded'
            WHEN c.n = 2 AND u.id % 7 = 0 THEN 'dry_run' ELSE 'sent' END,
       1, false, false, false, u.published_at, u.published_at, {finished}
FROM updates u CROSS JOIN (SELECT 1 AS n, 'statusio' AS channel UNION ALL
    SELECT 2, 'twitter' UNION ALL SELECT 3, 'slack' UNION ALL SELECT 4, 'gitlab') c;
INSERT INTO reminders (incident_id, due_at, kind, seq, slot_at, status, attempts,
    outcome_unknown, created_at, updated_at, sent_at)
SELECT i.id, i.created_at, 'due', s.x, i.created_at,
       CASE WHEN s.x = 4 THEN 'superseded' ELSE 'sent' END, 1, false, i.created_at,
       i.created_at, {sent} FROM incidents i CROSS JOIN series s WHERE s.x <= 4;
DROP TABLE series"""
TIMES = {
    # The x-th incident x minutes ago; a delivery answered 0.1-60 s after its publish; a
    # reminder sent 1-20 s after its slot.
    "postgresql": {"now": "now()", "at_x": "now() - x * interval '1 minute'",
                   "finished": "u.published_at + ((u.id * 7 + c.n) % 600) * interval '0.1 s'",
                   "sent": "i.created_at + (1 + (i.id + s.x) % 20) * interval '1 s'"},
    "sqlite": {"now": "datetime('now')", "at_x": "datetime('now', -x || ' minutes')",
               "finished": "strftime('%Y-%m-%d %H:%M:%f', u.published_at, "
                           "(((u.id * 7 + c.n) % 600) / 10.0) || ' seconds')",
               "sent": "datetime(i.created_at, (1 + (i.id + s.x) % 20) || ' seconds')"},
}


# -- the baseline: the collector as it was (a full scan of deliveries and reminders) -------
def _seconds(later, earlier):
    if db.engine.dialect.name == "postgresql":
        return func.extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


def _histogram(name: str, doc: str, seconds, where, buckets) -> HistogramMetricFamily:
    columns = [func.sum(case((seconds <= b, 1), else_=0)) for b in buckets]
    row = db.session.execute(select(*columns, func.count(), func.coalesce(func.sum(seconds), 0))
                             .where(*where)).one()
    counts, total, total_sum = row[:len(buckets)], row[-2], row[-1]
    family = HistogramMetricFamily(name, doc, labels=[])
    family.add_metric([], [(str(float(b)), float(c or 0))
                           for b, c in zip(buckets, counts, strict=True)]
                      + [("+Inf", float(total))], float(total_sum or 0))
    return family


class OldCollector:
    def collect(self):
        now = utcnow()
        deliveries = CounterMetricFamily(
            "cmoc_deliveries", "Deliveries by channel and outcome.", labels=["channel", "outcome"])
        for channel, status, count in db.session.execute(
                select(Delivery.channel, Delivery.status, func.count())
                .group_by(Delivery.channel, Delivery.status)):
            deliveries.add_metric([channel, status], count)
        yield deliveries
        yield _histogram(
            "cmoc_publish_latency_seconds", "From publish to the channel's answer (sent).",
            _seconds(Delivery.finished_at, Update.published_at),
            [Delivery.update_id == Update.id, Delivery.status == "sent",
             Update.published_at.is_not(None)], LATENCY_BUCKETS)
        yield _histogram(
            "cmoc_reminder_lag_seconds", "From a reminder's due time to Slack's answer.",
            _seconds(Reminder.sent_at, Reminder.slot_at),
            [Reminder.status == "sent", Reminder.sent_at.is_not(None)], LAG_BUCKETS)
        active = GaugeMetricFamily("cmoc_active_incidents", "Active incidents by severity.",
                                   labels=["severity"])
        for severity, count in db.session.execute(
                select(Incident.severity, func.count()).where(Incident.resolved_at.is_(None))
                .group_by(Incident.severity)):
            active.add_metric([severity], count)
        yield active
        yield GaugeMetricFamily("cmoc_overdue_incidents", "Overdue.", value=overdue_count(now))
        webhooks = CounterMetricFamily("cmoc_webhook_events", "Webhooks.",
                                       labels=["source", "outcome"])
        for row in db.session.scalars(select(WebhookCounter)):
            webhooks.add_metric([row.source, row.outcome], row.count)
        yield webhooks
        refused = CounterMetricFamily("cmoc_refused_requests", "Refused.", labels=["kind"])
        for kind, number in sorted(refusal_counts().items()):
            refused.add_metric([kind], number)
        yield refused
        notices = GaugeMetricFamily("cmoc_notices", "Notices.", labels=["kind", "status"])
        for kind, status, number in db.session.execute(
                select(Notice.kind, Notice.status, func.count())
                .group_by(Notice.kind, Notice.status)):
            notices.add_metric([kind, status], number)
        yield notices
        handovers = GaugeMetricFamily("cmoc_handovers", "Handovers.", labels=["status"])
        for status, number in db.session.execute(
                select(Handover.status, func.count()).group_by(Handover.status)):
            handovers.add_metric([status], number)
        yield handovers
        last = clock_last_seen()
        yield GaugeMetricFamily("cmoc_clock_heartbeat_age_seconds", "Clock.",
                                value=(now - last).total_seconds() if last else -1)


def old_metrics() -> Response:
    registry = CollectorRegistry()
    registry.register(OldCollector())
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


# -- the run ------------------------------------------------------------------------------------
def seed(size: int) -> None:
    dialect = db.engine.dialect.name
    incidents = max(1, size // 40)  # ten updates each, a delivery per channel of each
    for statement in SERIES.split(";\n"):
        db.session.execute(text(statement), {"n": max(incidents, 10)})
    for statement in SEED.format(**TIMES[dialect]).split(";\n"):
        db.session.execute(text(statement), {"incidents": incidents})
    db.session.commit()
    if dialect == "postgresql":
        db.session.execute(text("ANALYZE"))
        db.session.commit()


def scrape_times(client, requests: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {"/metrics": [], "/metrics?old=1": []}
    for _ in range(requests):
        for path, times in samples.items():
            started = time.perf_counter()
            response = client.get(path)
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (path, response.status_code)
    return samples


def p50_p99(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(0.99 * (len(ordered) - 1))]


def run(size: int, database_url: str | None, workdir: str, requests: int) -> None:
    url = database_url or f"sqlite:///{workdir}/metrics-{size}.sqlite3"
    app = create_app({"SECRET_KEY": "bench", "DATABASE_URL": url, "INSTANCE_PATH": workdir})
    # /metrics?old=1 is the baseline: the same route, sign-in check and client as the new one.
    new_metrics = app.view_functions["web.metrics"]
    app.view_functions["web.metrics"] = (
        lambda: old_metrics() if request.args.get("old") else new_metrics())
    with app.app_context():
        if database_url:
            db.session.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            db.session.commit()
        upgrade()
        started = time.perf_counter()
        seed(size)
        seeded = time.perf_counter() - started
        started = time.perf_counter()
        moved = fold()
        folded = time.perf_counter() - started
        dialect = db.engine.dialect.name
        rows = {t: db.session.scalar(
                    select(func.count()).select_from(db.metadata.tables[t]))
                for t in ("deliveries", "reminders", "metric_counters")}
        db.session.remove()
    print(f"\n{rows['deliveries']:,} deliveries, {rows['reminders']:,} reminders "
          f"({dialect}): seeded in {seeded:.0f}s with the triggers; "
          f"{moved:,} deltas folded into {rows['metric_counters']} counters in {folded:.1f}s")
    client = app.test_client()
    old = client.get("/metrics?old=1").get_data(as_text=True)
    new = client.get("/metrics").get_data(as_text=True)
    assert _figures(old) == _figures(new), ("the new scrape disagrees with the old one",
                                            _figures(old), _figures(new))
    samples = scrape_times(client, requests)
    new_p50, new_p99 = p50_p99(samples["/metrics"])
    old_p50, old_p99 = p50_p99(samples["/metrics?old=1"])
    print(f"  {'scrape':28} {'p50 ms':>8} {'p99 ms':>8}   ({requests} each, alternating)")
    print(f"  {'old (full scan)':28} {old_p50:>8.1f} {old_p99:>8.1f}")
    print(f"  {'new (counters)':28} {new_p50:>8.1f} {new_p99:>8.1f}")
    print(f"  old/new p50: {old_p50 / new_p50:.0f}x")
    with app.app_context():
        db.engine.dispose()


def _figures(body: str) -> dict[str, float]:
    """The delivery and histogram samples, sums rounded (they are floats added in turn)."""
    figures = {}
    for line in body.splitlines():
        if line.startswith(("cmoc_deliveries_total{", "cmoc_publish_latency", "cmoc_reminder_lag")):
            name, value = line.rsplit(" ", 1)
            if float(value) or "_bucket" in name or "_sum" in name or "_count" in name:
                figures[name] = round(float(value), 3)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        for size in args.sizes:
            run(size, args.database_url, workdir, args.requests)


if __name__ == "__main__":
    main()
