"""The old /metrics scrape's full-scan queries, kept as the oracle the trigger-kept counters
are checked against (tests/test_metric_counters.py, the reliability model)."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import case, func, select

from cmoc.extensions import db
from cmoc.models import Delivery, Handover, Notice, Reminder, Update
from cmoc.prometheus import LAG_BUCKETS, LATENCY_BUCKETS

COUNTED = ("cmoc_deliveries_total", "cmoc_notices", "cmoc_handovers")
HISTOGRAMS = ("cmoc_publish_latency_seconds", "cmoc_reminder_lag_seconds")


def _seconds(later, earlier):
    if db.engine.dialect.name == "postgresql":
        return func.extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


def _recount_histogram(name, seconds, where, buckets) -> dict:
    columns = [func.sum(case((seconds <= b, 1), else_=0)) for b in buckets]
    row = db.session.execute(select(*columns, func.count(), func.coalesce(func.sum(seconds), 0))
                             .where(*where)).one()
    samples = {(f"{name}_bucket", (("le", str(float(b))),)): float(c or 0)
               for b, c in zip(buckets, row[:len(buckets)], strict=True)}
    samples[(f"{name}_bucket", (("le", "+Inf"),))] = float(row[-2])
    samples[(f"{name}_count", ())] = float(row[-2])
    samples[(f"{name}_sum", ())] = float(row[-1] or 0)
    return samples


def recount() -> dict:
    samples = {}
    for channel, status, n in db.session.execute(
            select(Delivery.channel, Delivery.status, func.count())
            .group_by(Delivery.channel, Delivery.status)):
        samples[("cmoc_deliveries_total", (("channel", channel), ("outcome", status)))] = n
    for kind, status, n in db.session.execute(
            select(Notice.kind, Notice.status, func.count()).group_by(Notice.kind, Notice.status)):
        samples[("cmoc_notices", (("kind", kind), ("status", status)))] = n
    for status, n in db.session.execute(
            select(Handover.status, func.count()).group_by(Handover.status)):
        samples[("cmoc_handovers", (("status", status),))] = n
    samples |= _recount_histogram(
        "cmoc_publish_latency_seconds", _seconds(Delivery.finished_at, Update.published_at),
        [Delivery.update_id == Update.id, Delivery.status == "sent",
         Update.published_at.is_not(None)], LATENCY_BUCKETS)
    samples |= _recount_histogram(
        "cmoc_reminder_lag_seconds", _seconds(Reminder.sent_at, Reminder.slot_at),
        [Reminder.status == "sent", Reminder.sent_at.is_not(None)], LAG_BUCKETS)
    db.session.remove()
    return samples


def scraped(client) -> dict:
    body = client.get("/metrics").get_data(as_text=True)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body)
            if family.name in {*HISTOGRAMS, "cmoc_deliveries", *COUNTED}
            for s in family.samples}


def assert_equal(got: dict, expected: dict) -> None:
    # A label combination no row has any more is scraped as 0; the recount omits it.
    got = {k: v for k, v in got.items() if v or k[0].startswith(HISTOGRAMS)}
    assert sorted(got) == sorted(expected)
    for key, value in expected.items():
        # Sums are floats added and taken away one observation at a time.
        assert got[key] == pytest.approx(value, abs=1e-6), key


def check(client) -> dict:
    expected = recount()
    assert_equal(scraped(client), expected)
    return expected
