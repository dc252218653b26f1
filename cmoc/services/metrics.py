"""Communication metrics: time to first public update, cadence adherence, lateness, reminders.

Public means public: only updates with a status page or X delivery that was sent count as
public updates (a Slack-only update is internal; a failed or dry-run post told nobody).
Pure functions compute from rows; `incident_comms` loads one incident's rows. `report` is
computed in SQL (`cmoc.services.report_sql`); `python_report` is the reference it must equal.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from cmoc.enums import PUBLIC_CHANNELS, DeliveryStatus
from cmoc.extensions import db
from cmoc.models import Delivery, Incident, IncidentEvent, Reminder, Update

# An update up to a minute after its due time still counts as on time.
LATE_TOLERANCE = timedelta(seconds=60)


@dataclass(frozen=True)
class Gap:
    update_id: int
    published_at: datetime
    due_at: datetime
    cadence_minutes: int | None
    publisher: str | None

    @property
    def late_seconds(self) -> float:
        return max(0.0, (self.published_at - self.due_at).total_seconds())

    @property
    def on_time(self) -> bool:
        return self.published_at <= self.due_at + LATE_TOLERANCE


@dataclass
class IncidentComms:
    incident_id: int
    title: str
    severity: str
    declared_at: datetime
    first_public_at: datetime | None
    first_publisher: str | None
    gaps: list[Gap] = field(default_factory=list)
    # What happened, sent or dry-run (no Slack credentials); the dry-run share also on its own.
    reminders: int = 0
    escalations: int = 0
    reminders_dry_run: int = 0
    escalations_dry_run: int = 0
    # Deliveries never sent because a newer update (or Resolved) replaced them on the channel.
    superseded: int = 0
    # Published updates that reached no public channel (Slack only, or every public post
    # failed), snoozes past the promised time, and "no public post needed" decisions.
    not_public: int = 0
    promises_broken: int = 0
    no_public_post: int = 0

    @property
    def time_to_first_update(self) -> float | None:
        if self.first_public_at is None:
            return None
        return (self.first_public_at - self.declared_at).total_seconds()

    @property
    def gap_count(self) -> int:
        """Public updates that had a due time (the report counts these without the gaps)."""
        return len(self.gaps)

    @property
    def late(self) -> list[Gap]:
        return [g for g in self.gaps if not g.on_time]

    @property
    def late_count(self) -> int:
        return len(self.late)

    @property
    def late_minutes_total(self) -> float:
        return sum(g.late_seconds for g in self.late) / 60


def reached_public(update: Update) -> bool:
    """Whether the update was sent to the status page or X (not merely chosen for them)."""
    return any(d.channel in PUBLIC_CHANNELS and d.status == DeliveryStatus.SENT.value
               for d in update.deliveries)


def compute_comms(incident: Incident, published: list[Update], reminders: list[Reminder],
                  events: list[IncidentEvent] = ()) -> IncidentComms:
    """Metrics of one incident from its published updates (oldest first), reminders and
    timeline events. Only updates that reached a public channel are public updates."""
    everything = published
    published = [u for u in everything if reached_public(u)]
    comms = IncidentComms(
        incident_id=incident.id, title=incident.title, severity=incident.severity,
        declared_at=incident.created_at,
        first_public_at=published[0].published_at if published else None,
        first_publisher=_publisher(published[0]) if published else None)
    for previous, current in zip(published, published[1:], strict=False):
        if previous.next_due_at is None:
            continue
        comms.gaps.append(Gap(update_id=current.id, published_at=current.published_at,
                              due_at=previous.next_due_at,
                              cadence_minutes=previous.cadence_minutes,
                              publisher=_publisher(current)))
    happened = [r for r in reminders if r.status in ("sent", "dry_run")]
    comms.reminders = sum(1 for r in happened if r.kind != "escalation")
    comms.escalations = sum(1 for r in happened if r.kind == "escalation")
    dry_run = [r for r in happened if r.status == "dry_run"]
    comms.reminders_dry_run = sum(1 for r in dry_run if r.kind != "escalation")
    comms.escalations_dry_run = sum(1 for r in dry_run if r.kind == "escalation")
    comms.not_public = len(everything) - len(published)
    comms.promises_broken = sum(1 for e in events if e.kind == "snooze"
                                and (e.detail or {}).get("breaks_promise"))
    comms.no_public_post = sum(1 for e in events if e.kind == "no_public_post")
    return comms


def _publisher(update: Update) -> str | None:
    person = update.published_by or update.author
    return person.username if person else None


def _published(incident_ids: list[int]) -> dict[int, list[Update]]:
    rows = db.session.scalars(
        select(Update).where(Update.incident_id.in_(incident_ids),
                             Update.published_at.is_not(None))
        .options(selectinload(Update.published_by), selectinload(Update.author),
                 selectinload(Update.deliveries))
        .order_by(Update.published_at, Update.id)).all()
    grouped: dict[int, list[Update]] = {i: [] for i in incident_ids}
    for row in rows:
        grouped[row.incident_id].append(row)
    return grouped


def _superseded(incident_ids: list[int]) -> dict[int, int]:
    return dict(db.session.execute(
        select(Update.incident_id, func.count(Delivery.id))
        .join(Delivery, Delivery.update_id == Update.id)
        .where(Update.incident_id.in_(incident_ids),
               Delivery.status == DeliveryStatus.SUPERSEDED.value)
        .group_by(Update.incident_id)).all())


def _events(incident_ids: list[int]) -> dict[int, list[IncidentEvent]]:
    grouped: dict[int, list[IncidentEvent]] = {i: [] for i in incident_ids}
    for event in db.session.scalars(select(IncidentEvent).where(
            IncidentEvent.incident_id.in_(incident_ids),
            IncidentEvent.kind.in_(["snooze", "no_public_post"]))):
        grouped[event.incident_id].append(event)
    return grouped


def incident_comms(incident: Incident) -> IncidentComms:
    reminders = db.session.scalars(select(Reminder).where(
        Reminder.incident_id == incident.id)).all()
    comms = compute_comms(incident, _published([incident.id])[incident.id], list(reminders),
                          _events([incident.id])[incident.id])
    comms.superseded = _superseded([incident.id]).get(incident.id, 0)
    return comms


@dataclass
class CmocRow:
    username: str
    incidents: int = 0
    updates_with_due: int = 0
    on_time: int = 0
    first_updates: list[float] = field(default_factory=list)

    @property
    def adherence(self) -> float | None:
        return self.on_time / self.updates_with_due if self.updates_with_due else None

    @property
    def median_time_to_first(self) -> float | None:
        return statistics.median(self.first_updates) if self.first_updates else None


@dataclass
class Report:
    since: datetime
    until: datetime
    incidents: list[IncidentComms]
    cmocs: list[CmocRow]


def report(*, since: datetime, until: datetime, limit: int = 2000) -> Report:
    """Incidents declared in [since, until) (the first `limit`) and the per-CMOC figures over
    them, aggregated in SQL."""
    from cmoc.services.report_sql import sql_report  # it builds on this module's types

    return sql_report(since=since, until=until, limit=limit)


def python_report(*, since: datetime, until: datetime, limit: int = 2000) -> Report:
    """`report` computed in Python from every update of the period: the reference the SQL
    report is tested against, and the baseline bench.scale times it against."""
    incidents = db.session.scalars(
        select(Incident).where(Incident.created_at >= since, Incident.created_at < until)
        .order_by(Incident.created_at).limit(limit)).all()
    ids = [i.id for i in incidents]
    published = _published(ids) if ids else {}
    reminders: dict[int, list[Reminder]] = {i: [] for i in ids}
    if ids:
        for r in db.session.scalars(select(Reminder).where(Reminder.incident_id.in_(ids))):
            reminders[r.incident_id].append(r)
    events = _events(ids) if ids else {}
    rows = [compute_comms(i, published[i.id], reminders[i.id], events[i.id])
            for i in incidents]
    superseded = _superseded(ids) if ids else {}
    for comms in rows:
        comms.superseded = superseded.get(comms.incident_id, 0)
    people: dict[str, CmocRow] = {}
    for comms, incident in zip(rows, incidents, strict=True):
        handled = {_publisher(u) for u in published[incident.id]} - {None}
        for name in handled:
            people.setdefault(name, CmocRow(name)).incidents += 1
        if comms.first_publisher:
            people.setdefault(comms.first_publisher, CmocRow(comms.first_publisher)) \
                .first_updates.append(comms.time_to_first_update)
        for gap in comms.gaps:
            row = people.setdefault(gap.publisher or "?", CmocRow(gap.publisher or "?"))
            row.updates_with_due += 1
            row.on_time += gap.on_time
    return Report(since=since, until=until, incidents=rows,
                  cmocs=sorted(people.values(), key=lambda r: r.username))


def overdue_count(now: datetime) -> int:
    return db.session.scalar(select(func.count(Incident.id)).where(
        Incident.resolved_at.is_(None), Incident.next_update_due_at <= now))
