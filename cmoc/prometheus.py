"""`/metrics` in Prometheus text format, computed from the database at each scrape, so every
web worker and the clock report the same numbers."""

from __future__ import annotations

import hmac
import ipaddress

from flask import Flask, Response, abort, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from sqlalchemy import func, select

from cmoc.extensions import db
from cmoc.models import Incident, WebhookCounter
from cmoc.services.clock_state import clock_last_seen
from cmoc.services.metric_counters import Key
from cmoc.services.metric_counters import totals as counter_totals
from cmoc.services.metrics import overdue_count
from cmoc.services.refusals import refusal_counts
from cmoc.timeutil import utcnow

# Frozen in migration 0020's triggers: a change here needs a migration that recreates them.
LATENCY_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 30, 60, 300)
LAG_BUCKETS = (1, 2, 5, 10, 30, 60, 300, 900)


def _histogram(name: str, doc: str, totals: dict[Key, float], metric: str,
               buckets) -> HistogramMetricFamily:
    """Cumulative buckets from the per-bucket counters (each bucket's label is its bound)."""
    running, cumulative = 0.0, []
    for bound in buckets:
        running += totals.get((metric, str(float(bound)), ""), 0.0)
        cumulative.append((str(float(bound)), running))
    count = running + totals.get((metric, "+Inf", ""), 0.0)
    family = HistogramMetricFamily(name, doc)
    family.add_metric([], [*cumulative, ("+Inf", count)], totals.get((metric, "sum", ""), 0.0))
    return family


def _counts(totals: dict[Key, float], metric: str) -> list[tuple[str, str, float]]:
    return sorted((label, sublabel, value) for (m, label, sublabel), value in totals.items()
                  if m == metric)


class CmocCollector:
    def collect(self):
        now = utcnow()
        # Deliveries, reminders, notices and handovers from the trigger-kept counters: this
        # does not grow with history (cmoc/services/metric_counters.py). A label combination
        # seen once stays, at 0 when no row has it any more.
        totals = counter_totals()
        deliveries = CounterMetricFamily(
            "cmoc_deliveries", "Deliveries by channel and outcome.", labels=["channel", "outcome"])
        for channel, status, count in _counts(totals, "deliveries"):
            deliveries.add_metric([channel, status], count)
        yield deliveries
        yield _histogram("cmoc_publish_latency_seconds",
                         "From publish to the channel's answer (sent).", totals,
                         "publish_latency", LATENCY_BUCKETS)
        yield _histogram("cmoc_reminder_lag_seconds",
                         "From a reminder's due time to Slack's answer.", totals,
                         "reminder_lag", LAG_BUCKETS)
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
        for kind, status, number in _counts(totals, "notices"):
            notices.add_metric([kind, status], number)
        yield notices
        handovers = GaugeMetricFamily("cmoc_handovers", "Shift handover issues by status.",
                                      labels=["status"])
        for status, _, number in _counts(totals, "handovers"):
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
