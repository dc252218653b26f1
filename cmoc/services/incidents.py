"""Incidents: declaring, editing, listing, and when the next update is due."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import case, select
from sqlalchemy.orm import selectinload

from cmoc.cadence import Cadence, next_update_due
from cmoc.enums import ACTIVE_STATUSES, Severity, State, UpdatePhase
from cmoc.extensions import db
from cmoc.models import Delivery, DraftPresence, Incident, IncidentEvent, Reminder, Update, User
from cmoc.services import ValidationError
from cmoc.services.audit import record

SLACK_CHANNEL = re.compile(r"^#?[a-z0-9][a-z0-9._-]{0,79}$|^[CG][A-Z0-9]{8,20}$")


@dataclass(frozen=True)
class IncidentFields:
    """What a CMOC types when declaring or editing an incident (raw strings from a form or API)."""

    title: str
    severity: str
    status: str
    components: list[str]
    issue_url: str
    slack_channel: str = ""


def valid_http_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return (parts.scheme in ("http", "https") and bool(parts.hostname)
            and not any(c.isspace() for c in value) and "." in parts.hostname)


def clean_fields(
    fields: IncidentFields, *, component_names: list[str], title_max: int,
    require_issue_url: bool = True,
) -> tuple[dict, dict[str, str]]:
    """Returns (clean values, errors) for incident fields."""
    errors: dict[str, str] = {}
    title = " ".join((fields.title or "").split())
    if not title:
        errors["title"] = "Title is required: in simple terms, what is the issue?"
    elif len(title) > title_max:
        errors["title"] = f"Title is too long ({len(title)} characters, at most {title_max})."
    if fields.severity not in Severity.__members__.values():
        errors["severity"] = "Choose a severity: S1, S2, S3 or S4."
    if fields.status not in {s.value for s in ACTIVE_STATUSES}:
        errors["status"] = ("Choose a status: Degraded Performance, Partial Service Disruption, "
                            "Service Disruption or Security Issue.")
    components = list(dict.fromkeys(c for c in fields.components if c))
    unknown = [c for c in components if c not in component_names]
    if unknown:
        errors["components"] = "Unknown component: " + ", ".join(unknown[:5])
    elif not components:
        errors["components"] = "Tick at least one affected component (never 'all')."
    issue_url = (fields.issue_url or "").strip()
    if not issue_url and require_issue_url:
        errors["issue_url"] = "Link the incident issue, e.g. https://gitlab.com/gitlab-com/gl-infra/production/-/issues/12345"
    elif issue_url and (len(issue_url) > 500 or not valid_http_url(issue_url)):
        errors["issue_url"] = "Issue link must be a full http(s) URL, e.g. https://gitlab.com/…/issues/12345"
    slack_channel = (fields.slack_channel or "").strip()
    if slack_channel and not SLACK_CHANNEL.match(slack_channel):
        errors["slack_channel"] = ("Slack channel must look like #incident-12345 (lowercase, "
                                   "digits, '-', '_') or a channel id like C0123ABCD.")
    elif slack_channel and not slack_channel.startswith("#") and not slack_channel[0].isupper():
        slack_channel = "#" + slack_channel
    clean = {
        "title": title, "severity": fields.severity, "status": fields.status,
        "components": components, "issue_url": issue_url or None,
        "slack_channel": slack_channel or None,
    }
    return clean, errors


def declare_incident(
    *, fields: IncidentFields, author: User, component_names: list[str], title_max: int,
    now: datetime, require_issue_url: bool = True, gitlab_issue: str | None = None,
    opening_draft: bool = False,
) -> Incident:
    """Creates an incident in Investigating; its first update is due at once. `gitlab_issue`
    ("group/project#iid") links it to its GitLab issue, whose changes it then follows.

    `opening_draft`: the declarer goes straight on to the first update's form (the web flow),
    so they count as drafting from this moment and no reminder interrupts them."""
    clean, errors = clean_fields(fields, component_names=component_names, title_max=title_max,
                                 require_issue_url=require_issue_url)
    if errors:
        raise ValidationError(errors)
    incident = Incident(
        **clean, state=State.INVESTIGATING.value, declared_by_id=author.id, cmoc_id=author.id,
        created_at=now, updated_at=now, next_update_due_at=now, gitlab_issue=gitlab_issue,
    )
    db.session.add(incident)
    db.session.flush()
    if opening_draft:
        db.session.add(DraftPresence(incident_id=incident.id, user_id=author.id, seen_at=now))
    record("incident.declare", actor=author, target=incident, after=clean, now=now)
    db.session.commit()
    return incident


def edit_incident(
    *, incident: Incident, fields: IncidentFields, component_names: list[str], title_max: int,
    cadence: Cadence, now: datetime, require_issue_url: bool = True, actor: User | None = None,
) -> Incident:
    """Changes title, severity, status, components, links; a severity change moves the due time."""
    if incident.is_resolved:
        raise IncidentResolved("This incident is resolved; it can no longer be edited.")
    clean, errors = clean_fields(fields, component_names=component_names, title_max=title_max,
                                 require_issue_url=require_issue_url)
    if errors:
        raise ValidationError(errors)
    before = {key: getattr(incident, key) for key in clean}
    changed = {k: v for k, v in clean.items() if before[k] != v}
    for key, value in clean.items():
        setattr(incident, key, value)
    incident.updated_at = now
    refresh_due(incident=incident, cadence=cadence, keep_promise=True)
    record("incident.edit", actor=actor, target=incident,
           before={k: before[k] for k in changed}, after=changed, now=now)
    db.session.commit()
    return incident


class IncidentResolved(Exception):
    """The incident is resolved: nothing about it changes any more."""


def refresh_due(*, incident: Incident, cadence: Cadence, keep_promise: bool = False) -> None:
    """Recomputes the due time from the last public update and the cadence. `keep_promise`
    (an edit, e.g. a lower severity): never later than the time the public was promised."""
    due = next_update_due(
        cadence=cadence, state=incident.state_enum, severity=incident.severity_enum,
        last_published_at=incident.last_published_at, declared_at=incident.created_at,
        override_minutes=incident.next_update_minutes,
    )
    if keep_promise and due and incident.promised_at and due > incident.promised_at:
        due = incident.promised_at
    incident.next_update_due_at = due


def get_incident(incident_id: int) -> Incident | None:
    return db.session.get(Incident, incident_id)


def list_incidents(*, active: bool, limit: int = 200, now: datetime | None = None
                   ) -> list[Incident]:
    """Active incidents by due time, or, given `now` (the dashboard), overdue ones first, then
    by severity (S1 first), then by due time. Resolved ones newest first. The declarer and the
    CMOC come in one extra query each, however many incidents there are."""
    query = select(Incident).options(selectinload(Incident.declared_by),
                                     selectinload(Incident.cmoc))
    if active:
        due = Incident.next_update_due_at
        order = [due.asc().nulls_last(), Incident.id.asc()]
        if now is not None:
            order[:0] = [case((due <= now, 0), else_=1), Incident.severity.asc()]
        query = query.where(Incident.resolved_at.is_(None)).order_by(*order)
    else:
        query = query.where(Incident.resolved_at.is_not(None)).order_by(
            Incident.resolved_at.desc())
    return list(db.session.scalars(query.limit(limit)))


def waiting_drafts(incident_ids: list[int]) -> dict[int, Update]:
    """The newest saved draft of each incident that has one (one query, author loaded)."""
    if not incident_ids:
        return {}
    rows = db.session.scalars(
        select(Update).where(Update.incident_id.in_(incident_ids),
                             Update.phase == UpdatePhase.DRAFT.value)
        .options(selectinload(Update.author))
        .order_by(Update.updated_at.desc(), Update.id.desc()))
    drafts: dict[int, Update] = {}
    for row in rows:
        drafts.setdefault(row.incident_id, row)
    return drafts


def statuspage_problem(updates: list[Update]) -> Delivery | None:
    """The latest publish's status.io delivery when it failed (status.io is the source of truth)."""
    for update in updates:  # newest first
        for delivery in update.deliveries:
            if delivery.channel == "statusio" and delivery.status not in ("skipped",
                                                                          "superseded"):
                return delivery if delivery.status == "failed" else None
    return None


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str              # update | event | reminder
    item: object


def timeline_entries(*, incident: Incident, updates: list[Update]) -> list[TimelineEntry]:
    """Updates, snoozes, handovers and reminders of an incident, newest first."""
    entries = [TimelineEntry(u.published_at or u.created_at, "update", u) for u in updates]
    entries += [TimelineEntry(e.created_at, "event", e) for e in db.session.scalars(
        select(IncidentEvent).where(IncidentEvent.incident_id == incident.id)
        .options(selectinload(IncidentEvent.actor)))]
    entries += [TimelineEntry(r.updated_at, "reminder", r) for r in db.session.scalars(
        select(Reminder).where(Reminder.incident_id == incident.id,
                               Reminder.status != "superseded"))]
    return sorted(entries, key=lambda e: e.at, reverse=True)


def timeline(*, incident: Incident) -> list[Update]:
    return list(db.session.scalars(
        select(Update).where(Update.incident_id == incident.id)
        .options(selectinload(Update.author), selectinload(Update.deliveries))
        .order_by(Update.created_at.desc(), Update.id.desc())
    ))
