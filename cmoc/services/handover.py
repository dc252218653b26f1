"""The end-of-shift handover issue (the handbook: "create a handover issue even if nothing
happened"), written in GITLAB_HANDOVER_PROJECT from `templates/handover/issue.md.j2`.

One issue per shift: the shift's row is claimed (unique start) before writing, and GitLab is
always searched first for an issue carrying the shift's marker in its description, so a
second run — the button, `cmoc handover`, the clock, an attempt that got no answer — finds
the issue instead of making another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from cmoc import ROOT
from cmoc.channels.registry import build_gitlab_api
from cmoc.enums import DeliveryStatus
from cmoc.extensions import db
from cmoc.gitlab_settings import gitlab_settings, handover_settings
from cmoc.models import Handover, Incident, Notice, Reminder, Update, User
from cmoc.services.audit import record
from cmoc.services.stakeholders import status_page_link
from cmoc.timeutil import fmt_utc

LEASE = timedelta(seconds=120)
MAX_ATTEMPTS = 5
_TEMPLATES = Environment(loader=FileSystemLoader(str(ROOT / "templates" / "handover")),
                         autoescape=False, undefined=StrictUndefined,  # noqa: S701 (Markdown)
                         trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


# -- shifts ---------------------------------------------------------------------------------
def shift_at(moment: datetime, starts: tuple[dtime, ...]) -> tuple[datetime, datetime]:
    """(start, end) of the shift `moment` falls in; shifts start at `starts` (UTC) daily."""
    moment = moment.astimezone(UTC)
    edges = sorted(datetime.combine(moment.date() + timedelta(days=d), t, UTC)
                   for d in (-1, 0, 1) for t in starts)
    start = max(e for e in edges if e <= moment)
    return start, min(e for e in edges if e > moment)


def previous_shift(moment: datetime, starts: tuple[dtime, ...]) -> tuple[datetime, datetime]:
    start, _ = shift_at(moment, starts)
    return shift_at(start - timedelta(microseconds=1), starts)


def marker(start: datetime) -> str:
    return f"<!-- cmoc-handover:{start:%Y-%m-%dT%H:%MZ} -->"


def title_for(start: datetime, end: datetime) -> str:
    return f"CMOC handover {start:%Y-%m-%d %H:%M}–{end:%H:%M} UTC"


# -- content --------------------------------------------------------------------------------
@dataclass
class IncidentReport:
    incident: Incident
    url: str
    status_page: str | None
    published_in_shift: int
    overdue: bool
    problems: list[str] = field(default_factory=list)


@dataclass
class ShiftReport:
    start: datetime
    end: datetime
    now: datetime
    incidents: list[IncidentReport]
    cmocs: list[str]

    @property
    def nothing_happened(self) -> bool:
        return not self.incidents

    @property
    def attention(self) -> list[IncidentReport]:
        return [r for r in self.incidents if r.overdue or r.problems]


def shift_report(*, start: datetime, end: datetime, now: datetime,
                 config: dict[str, Any]) -> ShiftReport:
    """The incidents active at any time in the shift, with what needs the next CMOC."""
    until = min(now, end)
    incidents = list(db.session.scalars(select(Incident).where(
        Incident.created_at < end,
        or_(Incident.resolved_at.is_(None), Incident.resolved_at >= start))
        .options(selectinload(Incident.cmoc)).order_by(Incident.severity, Incident.id)))
    base = str(config.get("BASE_URL", "")).rstrip("/")
    reports, cmocs = [], set()
    for incident in incidents:
        updates = list(db.session.scalars(select(Update).where(
            Update.incident_id == incident.id, Update.published_at.is_not(None))
            .options(selectinload(Update.deliveries), selectinload(Update.published_by))))
        in_shift = [u for u in updates if start <= u.published_at < end]
        cmocs.update(u.published_by.username for u in in_shift if u.published_by)
        if incident.cmoc:
            cmocs.add(incident.cmoc.username)
        overdue = (not incident.is_resolved and incident.next_update_due_at is not None
                   and incident.next_update_due_at < until)
        reports.append(IncidentReport(
            incident=incident, url=f"{base}/incidents/{incident.id}",
            status_page=status_page_link(incident, config), published_in_shift=len(in_shift),
            overdue=overdue, problems=_problems(incident, updates, start, end)))
    return ShiftReport(start=start, end=end, now=now, incidents=reports, cmocs=sorted(cmocs))


def _problems(incident: Incident, updates: list[Update], start: datetime,
              end: datetime) -> list[str]:
    problems = []
    for row in updates:
        for delivery in row.deliveries:
            if delivery.status == DeliveryStatus.FAILED.value:
                problems.append(f"update #{row.id} failed on {delivery.channel}: "
                                f"{delivery.error or 'no detail'}")
    reminders = db.session.scalars(select(Reminder).where(
        Reminder.incident_id == incident.id, Reminder.status.in_(["failed", "undeliverable"]),
        Reminder.updated_at >= start, Reminder.updated_at < end))
    problems += [f"reminder for {fmt_utc(r.due_at, with_date=False)} {r.status}: {r.error}"
                 for r in reminders]
    notices = db.session.scalars(select(Notice).where(
        Notice.incident_id == incident.id, Notice.status == "failed"))
    problems += [f"{n.kind.replace('_', ' ')} not sent: {n.error}" for n in notices]
    return problems


def render_body(report: ShiftReport) -> str:
    return _TEMPLATES.get_template("issue.md.j2").render(
        r=report, marker=marker(report.start), fmt_utc=fmt_utc)


# -- writing the issue ------------------------------------------------------------------------
def write_handover(*, config: dict[str, Any], start: datetime, end: datetime, now: datetime,
                   actor: User | None = None, via: str = "clock") -> Handover:
    """Writes the shift's handover issue once. Returns its row: sent (with the issue), failed
    (why), dry_run (GitLab or the handover project not configured: the text is kept to copy),
    or sending (another run is writing it right now)."""
    row, claimed = _claim(start=start, end=end, now=now, actor=actor, via=via)
    if not claimed:
        return row
    report = shift_report(start=start, end=end, now=now, config=config)
    row.title, row.body = title_for(start, end), render_body(report)
    settings = gitlab_settings(config)
    project = settings.handover_project
    if not (settings.configured and project):
        return _finish(row, "dry_run", now=now, error="Dry-run: GITLAB_TOKEN or "
                       "GITLAB_HANDOVER_PROJECT is not set; copy the text into the issue.")
    api = build_gitlab_api(config)
    found, failure = api.find_issue(project, search=row.title, marker=marker(start))
    if failure:
        return _finish(row, "failed", now=now, error=f"Could not check for an existing "
                       f"handover issue: {failure.error}", unknown=row.outcome_unknown)
    if not found:
        row.attempts += 1
        db.session.commit()   # counted before the call: an unanswered one is looked up next
        found, failure = api.create_issue(project, title=row.title, description=row.body,
                                          labels=list(handover_settings(config).labels))
        if failure:
            return _finish(row, "failed", now=now, error=failure.error,
                           unknown=failure.outcome_unknown)
    row.issue_iid, row.issue_url = found.get("iid"), found.get("web_url")
    record("handover.write", actor=actor, actor_name=None if actor else via, target=row,
           now=now, after={"shift": title_for(start, end), "issue": row.issue_url,
                           "incidents": len(report.incidents)})
    return _finish(row, "sent", now=now)


def _claim(*, start: datetime, end: datetime, now: datetime, actor: User | None,
           via: str) -> tuple[Handover, bool]:
    row = db.session.scalar(select(Handover).where(Handover.shift_start == start))
    if row is None:
        db.session.add(Handover(shift_start=start, shift_end=end, status="pending",
                                title=title_for(start, end), via=via,
                                actor_id=actor.id if actor else None, created_at=now,
                                updated_at=now))
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
    claimed = db.session.execute(update(Handover).where(
        Handover.shift_start == start,
        or_(Handover.status.in_(["pending", "failed", "dry_run"]),
            and_(Handover.status == "sending", Handover.lease_until <= now)))
        .values(status="sending", lease_until=now + LEASE, updated_at=now, via=via,
                actor_id=actor.id if actor else None)).rowcount == 1
    db.session.commit()
    row = db.session.scalar(select(Handover).where(Handover.shift_start == start))
    db.session.refresh(row)
    return row, claimed


def _finish(row: Handover, status: str, *, now: datetime, error: str | None = None,
            unknown: bool = False) -> Handover:
    row.status, row.error, row.outcome_unknown = status, error, unknown
    row.lease_until, row.updated_at = None, now
    db.session.commit()
    return row


def scheduled_handover(config: dict[str, Any], *, now: datetime) -> Handover | None:
    """The clock's job: the shift that ended last gets its issue (a failed attempt is tried
    again on later passes, at most MAX_ATTEMPTS times). Nothing without a handover project."""
    handover = handover_settings(config)
    settings = gitlab_settings(config)
    if not (handover.scheduled and settings.configured and settings.handover_project):
        return None
    start, end = previous_shift(now, handover.shift_starts)
    row = db.session.scalar(select(Handover).where(Handover.shift_start == start))
    if row is not None and (row.status == "sent" or row.attempts >= MAX_ATTEMPTS
                            or (row.status == "sending" and row.lease_until > now)):
        return None
    return write_handover(config=config, start=start, end=end, now=now, via="clock")


def recent_handovers(limit: int = 20) -> list[Handover]:
    return list(db.session.scalars(select(Handover).options(selectinload(Handover.actor))
                                   .order_by(Handover.shift_start.desc()).limit(limit)))

