"""Versions of what a live page shows, so a page that polls learns "nothing changed" for the
price of one small indexed query (and answers 304 Not Modified).

A version is a digest of the few columns that change whenever the page would: an edit, a
publish, a delivery moving on, a snooze or handover, a draft saved, a reminder sent.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import func, select

from cmoc.enums import UpdatePhase
from cmoc.extensions import db
from cmoc.models import Delivery, Incident, IncidentEvent, Reminder, Update


def _digest(values: Any) -> str:
    return hashlib.sha1(repr(values).encode(), usedforsecurity=False).hexdigest()[:20]


def dashboard_version() -> str:
    """Changes when the dashboard would: active incidents (any field), waiting drafts,
    reminder outcomes, and the recently resolved list."""
    open_ = Incident.resolved_at.is_(None)
    active = select(Incident.id).where(open_)
    row = db.session.execute(select(
        select(func.count(Incident.id)).where(open_).scalar_subquery(),
        select(func.max(Incident.updated_at)).where(open_).scalar_subquery(),
        select(func.max(Update.updated_at)).where(
            Update.incident_id.in_(active),
            Update.phase == UpdatePhase.DRAFT.value).scalar_subquery(),
        select(func.max(Reminder.updated_at)).where(
            Reminder.incident_id.in_(active)).scalar_subquery(),
        select(func.max(Incident.resolved_at)).scalar_subquery(),
    )).one()
    return _digest(tuple(row))


def incident_version(incident_id: int) -> str | None:
    """Changes when the incident page would; None when there is no such incident."""
    deliveries = (select(func.max(Delivery.updated_at))
                  .join(Update, Update.id == Delivery.update_id)
                  .where(Update.incident_id == incident_id).scalar_subquery())
    row = db.session.execute(select(
        Incident.updated_at, Incident.next_update_due_at, deliveries,
        select(func.max(Update.updated_at)).where(
            Update.incident_id == incident_id).scalar_subquery(),
        select(func.count(IncidentEvent.id)).where(
            IncidentEvent.incident_id == incident_id).scalar_subquery(),
        select(func.max(Reminder.updated_at)).where(
            Reminder.incident_id == incident_id).scalar_subquery(),
    ).where(Incident.id == incident_id)).one_or_none()
    return None if row is None else _digest(tuple(row))
