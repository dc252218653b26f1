"""`/metrics` in Prometheus text format, computed from the database at each scrape, so every
web worker and the clock report the same numbers."""

from __future__ import annotations

import hmac
import ipaddress

from flask import Flask, Response, abort, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from sqlalchemy import case, func, select

from cmoc.extensions import db
from cmoc.models import (
    Delivery,
    Handover,
    Incident,
    Notice,
    Reminder,
    Update,
    WebhookCounter,
)
from cmoc.services.clock_state import clock_last_seen
from cmoc.services.metrics import overdue_count
from cmoc.services.refusals import refusal_counts
from cmoc.timeutil import utcnow

LATENCY_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 30, 60, 300)
LAG_BUCKETS = (1, 2, 5, 10, 30, 60, 300, 900)


def _seconds(later, earlier):
    """SQL for (later - earlier) in seconds on PostgreSQL and SQLite."""
    if db.engine.dialect.name == "postgresql":
        return func.extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


def _histogram(name: str, doc: str, seconds, where, buckets, labels=()) -> HistogramMetricFamily:
    """One aggregate query: cumulative bucket counts, sum and count."""
    columns = [func.sum(case((seconds <= b, 1), else_=0)) for b in buckets]
    row = db.session.execute(select(*columns, func.count(), func.coalesce(func.sum(seconds), 0))
                             .where(*where)).one()
    counts, total, total_sum = row[:len(buckets)], row[-2], row[-1]
    family = HistogramMetricFamily(name, doc, labels=list(labels))
    family.add_metric([], [(str(float(b)), float(c or 0))
                           for b, c in zip(buckets, counts, strict=True)]
                      + [("+Inf", float(total))], float(total_sum or 0))
    return family


class CmocCollector:
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
        yield GaugeMetricFamily("cmoc_overdue_incidents",
                                "Active incidents whose next update is overdue.",
                                value=overdue_count(now))
        webhooks = CounterMetricFamily(
            "cmoc_webhook_events", "Webhook requests by source and outcome (refused: bad or "
            "missing token; duplicate: the same event again).", labels=["source", "outcome"])
        for row in db.session.scalars(select(WebhookCounter)):
            webhooks.add_metric([row.source, row.outcome], row.count)
        yield webhooks
        refused = CounterMetricFamily(
            "cmoc_refused_requests", "Requests refused to clients that are not signed in, by "
            "kind (the audit action they are summarised under).", labels=["kind"])
        for kind, number in sorted(refusal_counts().items()):
            refused.add_metric([kind], number)
        yield refused
        notices = GaugeMetricFamily(
            "cmoc_notices", "One-off notices (stakeholder messages, GitLab pings and labels, "
            "post-mortem links) by kind and status.", labels=["kind", "status"])
        for kind, status, number in db.session.execute(
                select(Notice.kind, Notice.status, func.count())
                .group_by(Notice.kind, Notice.status)):
            notices.add_metric([kind, status], number)
        yield notices
        handovers = GaugeMetricFamily("cmoc_handovers", "Shift handover issues by status.",
                                      labels=["status"])
        for status, number in db.session.execute(
                select(Handover.status, func.count()).group_by(Handover.status)):
            handovers.add_metric([status], number)
        yield handovers
        last = clock_last_seen()
        yield GaugeMetricFamily(
            "cmoc_clock_heartbeat_age_seconds", "Seconds since the clock last checked in "
            "(-1: never).", value=(now - last).total_seconds() if last else -1)


def _allowed() -> bool:
    token = current_app.config.get("METRICS_TOKEN")
    if token:
        sent = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(sent.encode(), token.encode())
    try:
        # remote_addr is the real client's once ProxyFix applied CMOC_TRUSTED_PROXIES hops, so
        # a proxy on the same host does not make every scrape "loopback".
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


def init_app(app: Flask) -> None:
    @app.get("/metrics", endpoint="web.metrics")
    def metrics():
        """Prometheus scrape: bearer METRICS_TOKEN, or loopback only when none is set."""
        if not _allowed():
            abort(403)
        registry = CollectorRegistry()
        registry.register(CmocCollector())
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
