"""Refused requests from clients that are not signed in (no CSRF token, a refused /metrics
scrape, a throttled sign-in...). Anyone can send these, so each one is counted (for
/metrics) and the append-only audit log gets at most one summary entry per kind per interval,
carrying the number refused since the previous summary. Refusals of signed-in users are
audited one by one elsewhere."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import has_request_context, request
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from cmoc.extensions import db
from cmoc.models import RefusalCounter
from cmoc.services.audit import record


def note_refusal(*, kind: str, detail: dict[str, Any], now: datetime,
                 interval: timedelta) -> bool:
    """Counts one refusal of `kind` (the audit action) and, when the last summary of that kind
    is at least `interval` old, writes the next one. Returns whether it wrote one."""
    _bump(kind)
    row = db.session.get(RefusalCounter, kind, populate_existing=True)
    if row.reported_at is not None and row.reported_at > now - interval:
        return False
    previous_count, previous_at, count = row.reported_count, row.reported_at, row.count
    # Compare-and-set on reported_count: of concurrent refusals, one writes the summary.
    claimed = db.session.execute(
        update(RefusalCounter).where(RefusalCounter.kind == kind,
                                     RefusalCounter.reported_count == previous_count,
                                     or_(RefusalCounter.reported_at.is_(None),
                                         RefusalCounter.reported_at <= now - interval))
        .values(reported_count=count, reported_at=now)).rowcount
    if not claimed:
        db.session.rollback()
        return False
    # The fields of an audited refusal (method, path, detail) are this latest one's.
    request_fields = ({"method": request.method, "path": request.path[:200]}
                      if has_request_context() else {})
    record(kind, actor=None, actor_name="-", now=now,
           after={**request_fields, **detail, "summary": True,
                  "count": count - previous_count, "since": previous_at})
    db.session.commit()
    return True


def _bump(kind: str) -> None:
    """Adds one to the kind's counter (committed), creating the row the first time."""
    for _ in range(3):
        bumped = db.session.execute(update(RefusalCounter).where(RefusalCounter.kind == kind)
                                    .values(count=RefusalCounter.count + 1)).rowcount
        if bumped:
            db.session.commit()
            return
        db.session.add(RefusalCounter(kind=kind, count=1, reported_count=0))
        try:
            db.session.commit()
            return
        except IntegrityError:   # another request made the row first: bump it instead
            db.session.rollback()


def refusal_counts() -> dict[str, int]:
    return dict(db.session.execute(select(RefusalCounter.kind, RefusalCounter.count)).all())


def summary_interval(config: dict[str, Any]) -> timedelta:
    """`refusal_summary_minutes`: at most one summary audit entry per kind this often."""
    return timedelta(minutes=float(config.get("REFUSAL_SUMMARY_MINUTES", 10)))
