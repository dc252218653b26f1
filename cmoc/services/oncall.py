"""Reminders follow the on-call CMOC (PagerDuty's "Incident Management - CMOC" schedule).

Optional: with PAGERDUTY_API_TOKEN and PAGERDUTY_CMOC_SCHEDULE_ID the clock's `follow-oncall`
job (also `cmoc follow-oncall`) asks PagerDuty who is on call now (the maintained `pagerduty`
client), keeps the answer in the `oncall` table (a failed call keeps the last answer and notes
the error; an answer is used only until its shift ends), maps the person to an active cmoc
user with the CMOC role by email, and hands every active incident whose CMOC is off call to
them: at a shift change (an owner who took over during the current shift keeps it) or when
the incident has no CMOC yet. The handover is on the timeline and in the next reminder.
Without PagerDuty settings nothing changes.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pagerduty
from flask import Flask
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from cmoc.enums import Role
from cmoc.extensions import db
from cmoc.models import Incident, IncidentEvent, OnCall, User
from cmoc.services.audit import record
from cmoc.timeutil import fmt_utc

log = logging.getLogger(__name__)
HANDOVER_KINDS = ("handover", "oncall_handover")
# Without a shift end (PagerDuty gives one for every shift; this is a guard), an answer older
# than this is not trusted.
STALE_WITHOUT_END = timedelta(minutes=30)


@dataclass(frozen=True)
class OnCallSettings:
    token: str | None
    schedule_id: str | None
    api_url: str
    ca_file: str | None
    refresh_seconds: int

    @property
    def configured(self) -> bool:
        return bool(self.token and self.schedule_id)


def oncall_settings(config: dict[str, Any]) -> OnCallSettings:
    table = config.get("ONCALL") or {}
    return OnCallSettings(
        token=config.get("PAGERDUTY_API_TOKEN"),
        schedule_id=config.get("PAGERDUTY_CMOC_SCHEDULE_ID"),
        api_url=str(config.get("PAGERDUTY_API_URL") or "https://api.pagerduty.com"),
        ca_file=config.get("PAGERDUTY_CA_FILE") or None,
        refresh_seconds=int(float(table.get("refresh_minutes", 5)) * 60))


def pagerduty_client(settings: OnCallSettings, *, timeout: float = 10.0
                     ) -> pagerduty.RestApiV2Client:
    verify: Any = ssl.create_default_context(cafile=settings.ca_file) if settings.ca_file \
        else True
    client = pagerduty.RestApiV2Client(settings.token, base_url=settings.api_url,
                                       verify=verify)
    client.timeout = timeout   # the client sends its own attribute (60 s), not httpx's
    # The clock asks again in a few minutes: no long in-call retry loops (the client's
    # default retries a 429 without limit, with a doubling cooldown).
    client.max_network_attempts = 1
    client.max_http_attempts = 2
    client.retry = {429: 1}
    client.sleep_timer = 1.0
    return client


@dataclass(frozen=True)
class Shift:
    pd_user_id: str
    name: str
    email: str | None
    start: datetime | None
    end: datetime | None


def _when(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None
    except ValueError:
        return None


def fetch_shift(client: pagerduty.RestApiV2Client, *, schedule_id: str, now: datetime
                ) -> Shift | None:
    """The first-level on-call of the schedule at `now` (None: nobody)."""
    moment = now.isoformat()
    rows = client.list_all("oncalls", params={
        "schedule_ids[]": [schedule_id], "include[]": ["users"], "earliest": "true",
        "since": moment, "until": moment, "time_zone": "UTC"})
    rows = [r for r in rows if isinstance(r, dict) and isinstance(r.get("user"), dict)]
    if not rows:
        return None
    row = min(rows, key=lambda r: r.get("escalation_level") or 99)
    user = row["user"]
    return Shift(pd_user_id=str(user.get("id") or ""), name=str(user.get("name")
                 or user.get("summary") or ""), email=user.get("email"),
                 start=_when(row.get("start")), end=_when(row.get("end")))


def refresh_oncall(config: dict[str, Any], *, now: datetime,
                   client: pagerduty.RestApiV2Client | None = None) -> OnCall | None:
    """Asks PagerDuty and records the answer (or the failure, keeping the last answer)."""
    settings = oncall_settings(config)
    if not settings.configured:
        return None
    row = db.session.get(OnCall, settings.schedule_id) or OnCall(
        schedule_id=settings.schedule_id)
    db.session.add(row)
    row.checked_at = now
    try:
        shift = fetch_shift(client or pagerduty_client(settings),
                            schedule_id=settings.schedule_id, now=now)
    except Exception as exc:  # noqa: BLE001 — pagerduty.Error, UrlError, httpx errors alike
        # Tolerated: the last answer stays good until its shift ends.
        row.error = _error_text(exc)
        log.warning("follow-oncall: PagerDuty could not be asked: %s", row.error,
                    exc_info=not isinstance(exc, pagerduty.Error))
    else:
        row.error = None
        row.fetched_at = now
        row.pd_user_id = shift.pd_user_id if shift else None
        row.name = shift.name if shift else None
        row.email = shift.email if shift else None
        row.shift_start = shift.start if shift else None
        row.shift_end = shift.end if shift else None
    try:
        db.session.commit()
    except IntegrityError:
        # `cmoc follow-oncall` and the clock wrote the first row at once: theirs stands.
        db.session.rollback()
        return db.session.get(OnCall, settings.schedule_id)
    return row


def _error_text(exc: Exception) -> str:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    kind = type(exc).__name__
    return f"{kind} (HTTP {status})" if status else kind


def current_shift(config: dict[str, Any], *, now: datetime) -> OnCall | None:
    """The recorded on-call answer while it holds (its shift not over), else None."""
    settings = oncall_settings(config)
    if not settings.configured:
        return None
    row = db.session.get(OnCall, settings.schedule_id)
    if row is None or row.fetched_at is None or not row.email:
        return None
    if row.shift_end is not None:
        return row if row.shift_end > now else None
    return row if now - row.fetched_at <= STALE_WITHOUT_END else None


def cmoc_for(email: str | None) -> User | None:
    """The active cmoc user (CMOC role or above) with this email, case-insensitively; None
    when none or several have it (ambiguous: nobody is handed anything)."""
    if not email:
        return None
    users = [u for u in db.session.scalars(select(User).where(
        func.lower(User.email) == email.strip().lower(), User.active.is_(True)))
        if u.can(Role.CMOC)]
    return users[0] if len(users) == 1 else None


def _owner_since(incident: Incident) -> datetime:
    last = db.session.scalar(select(func.max(IncidentEvent.created_at)).where(
        IncidentEvent.incident_id == incident.id, IncidentEvent.kind.in_(HANDOVER_KINDS)))
    return last or incident.created_at


def hand_over(*, shift: OnCall, to: User, now: datetime) -> list[int]:
    """Gives the on-call CMOC the active incidents whose CMOC is off call (see module doc)."""
    moved = []
    incidents = db.session.scalars(select(Incident).where(
        Incident.resolved_at.is_(None)).order_by(Incident.id)).all()
    for incident in incidents:
        seen = incident.cmoc_id
        if seen == to.id:
            continue
        if seen is not None and (shift.shift_start is None
                                 or _owner_since(incident) >= shift.shift_start):
            continue   # taken over (or declared) during this shift: theirs until the next one
        previous = incident.cmoc.username if incident.cmoc else None
        until = fmt_utc(shift.shift_end, with_date=False) if shift.shift_end else None
        # Only if nobody took it over meanwhile (a click in the web, another pass).
        owner_is = Incident.cmoc_id.is_(None) if seen is None else Incident.cmoc_id == seen
        moved_now = db.session.execute(update(Incident).where(
            Incident.id == incident.id, owner_is).values(cmoc_id=to.id)).rowcount
        if moved_now != 1:
            continue
        db.session.add(IncidentEvent(
            incident_id=incident.id, kind="oncall_handover", created_at=now,
            detail={"from": previous, "to": to.username, "until": until,
                    "via": "PagerDuty"}))
        record("incident.take_over", actor=None, actor_name="pagerduty", target=incident,
               now=now, before={"cmoc": previous},
               after={"cmoc": to.username, "via": "on-call shift change"})
        moved.append(incident.id)
    db.session.commit()
    return moved


def follow_oncall(app: Flask, *, now: datetime, client: pagerduty.RestApiV2Client | None = None
                  ) -> dict[str, Any]:
    """The clock's `follow-oncall` job and `cmoc follow-oncall`: refresh, then hand over."""
    with app.app_context():
        try:
            row = refresh_oncall(app.config, now=now, client=client)
            if row is None:
                return {"configured": False}
            shift = current_shift(app.config, now=now)
            person = cmoc_for(shift.email) if shift else None
            moved = hand_over(shift=shift, to=person, now=now) if person else []
            return {"configured": True, "on_call": shift.name if shift else None,
                    "user": person.username if person else None, "handed_over": moved,
                    "error": row.error}
        finally:
            db.session.remove()


def oncall_summary(config: dict[str, Any], *, now: datetime) -> dict[str, Any] | None:
    """For the dashboard: who is on call, as which user, until when, and any error."""
    settings = oncall_settings(config)
    if not settings.configured:
        return None
    row = db.session.get(OnCall, settings.schedule_id)
    shift = current_shift(config, now=now)
    person = cmoc_for(shift.email) if shift else None
    return {"name": shift.name if shift else None, "user": person,
            "until": shift.shift_end if shift else None,
            "unmapped": bool(shift and person is None), "error": row.error if row else None,
            "checked_at": row.checked_at if row else None}
