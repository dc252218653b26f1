"""Reminders on the cadence: a heads-up before due, due, one escalation after the grace period,
then repeats.

`send_reminders` is the clock's job and a CLI command. It claims each reminder slot by
inserting a row with a unique (incident, due time, kind, seq) key before sending, so a restart,
an overlapping pass or a second clock never sends the same reminder twice; and it re-reads the
incident before sending, so nothing goes out for a resolved, published or snoozed incident.
While the incident's CMOC is drafting (`cmoc.services.presence`) the heads-up and repeats are
not sent, nor the first update's due reminder (nothing was promised yet); a promised due time
and the escalation still are.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from cmoc.cadence import Cadence
from cmoc.enums import State
from cmoc.extensions import db
from cmoc.models import Incident, IncidentEvent, Reminder, User
from cmoc.services.audit import record
from cmoc.services.drafts import DraftSettings
from cmoc.services.presence import drafting_now
from cmoc.services.reminder_sending import RETRY_AFTER, send_claimed
from cmoc.services.slack_blocks import NmuPreview, nmu_preview, reminder_blocks

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class Slot:
    kind: str          # heads_up | due | escalation | repeat
    seq: int
    at: datetime


def reminder_slots(*, due_at: datetime, interval: timedelta, grace: timedelta,
                   now: datetime, heads_up: timedelta | None = None) -> list[Slot]:
    """The slots of one due time that have come by `now`, oldest first. The heads-up comes
    `heads_up` before due, and only until the due time itself."""
    if now < due_at:
        if heads_up and now >= due_at - heads_up:
            return [Slot("heads_up", 0, due_at - heads_up)]
        return []
    slots = [Slot("due", 0, due_at)]
    if now >= due_at + grace:
        slots.append(Slot("escalation", 0, due_at + grace))
    repeats = int((now - due_at) / interval)
    if repeats >= 1:
        slots.append(Slot("repeat", repeats, due_at + repeats * interval))
    return sorted(slots, key=lambda s: s.at)


def send_reminders(app: Flask, *, now: datetime) -> dict[str, int]:
    """One pass: claims the reminder slots that have come, then sends them."""
    config = app.config
    cadence: Cadence = config["CADENCE_MATRIX"]
    grace = timedelta(minutes=float(config.get("REMINDER_GRACE_MINUTES", 5)))
    lead = timedelta(minutes=float(config.get("REMINDER_HEADS_UP_MINUTES", 2) or 0))
    counts = {"claimed": 0, "superseded": 0, "sent": 0, "failed": 0, "dry_run": 0,
              "cancelled": 0}
    to_send: list[int] = []
    look_first: set[int] = set()
    with app.app_context():
        due = db.session.scalars(select(Incident).where(
            Incident.resolved_at.is_(None), Incident.next_update_due_at <= now + lead)).all()
        drafting = drafting_now(incident_ids=[i.id for i in due], now=now)
        taken = {(r.incident_id, r.due_at, r.kind, r.seq) for r in db.session.execute(
            select(Reminder.incident_id, Reminder.due_at, Reminder.kind, Reminder.seq)
            .join(Incident, Incident.id == Reminder.incident_id)
            .where(Incident.resolved_at.is_(None), Reminder.due_at == Incident.next_update_due_at)
        )}
        claims: list[list[Reminder]] = []
        for incident in due:
            if incident.state_enum is State.RESOLVED:
                continue
            interval = cadence.interval(incident.state_enum, incident.severity_enum)
            slots = [s for s in reminder_slots(due_at=incident.next_update_due_at,
                                               interval=interval, grace=grace, now=now,
                                               heads_up=lead if incident.heads_up else None)
                     if (incident.id, incident.next_update_due_at, s.kind, s.seq) not in taken
                     and not _holds_back(s, incident, drafting=incident.id in drafting)]
            if not slots:
                continue
            # After downtime several slots may have come at once: send one, the escalation
            # if it is among them (the IM must hear of it), else the latest.
            chosen = next((s for s in slots if s.kind == "escalation"), slots[-1])
            claims.append([Reminder(
                incident_id=incident.id, due_at=incident.next_update_due_at, kind=s.kind,
                seq=s.seq, slot_at=s.at, created_at=now, updated_at=now,
                status="sending" if s is chosen else "superseded") for s in slots])
        for claim in _claim(claims):
            counts["claimed"] += 1
            counts["superseded"] += len(claim) - 1
            to_send.append(next(r.id for r in claim if r.status == "sending"))
        # Failed sends are tried again (bounded) once their wait is over. One that got no clear
        # answer, and a claim left in flight by a dead clock, are looked up in Slack before
        # they are sent again.
        retry_due = and_(Reminder.status == "failed", Reminder.attempts < MAX_ATTEMPTS,
                         or_(Reminder.retry_at <= now,
                             and_(Reminder.retry_at.is_(None),
                                  Reminder.updated_at <= now - RETRY_AFTER)))
        stale_due = and_(Reminder.status == "sending",
                         Reminder.updated_at <= now - timedelta(minutes=2))
        retry, stale = [], []
        # Asked first, so an idle pass (the usual one) writes nothing.
        if db.session.scalar(select(or_(select(Reminder.id).where(retry_due).exists(),
                                        select(Reminder.id).where(stale_due).exists()))):
            retry = db.session.execute(
                update(Reminder).where(retry_due).values(status="sending", updated_at=now)
                .returning(Reminder.id, Reminder.outcome_unknown)).all()
            stale = db.session.execute(
                update(Reminder).where(stale_due).values(updated_at=now)
                .returning(Reminder.id)).scalars().all()
            db.session.commit()
        to_send.extend(rid for rid, _ in retry)
        to_send.extend(stale)
        look_first = set(stale) | {rid for rid, unknown in retry if unknown}
        db.session.remove()
    settings = DraftSettings.from_app(app) if to_send else None   # once per pass
    counts.update(send_claimed(
        app, to_send, look_first=look_first, now=now,
        build_blocks=lambda incident, text, draft_id, saved: reminder_blocks(
            incident=incident, text=text, base_url=config["BASE_URL"], draft_id=draft_id,
            preview=_nmu_preview(incident, settings=settings, now=now, saved=saved))))
    return counts


def _holds_back(slot: Slot, incident: Incident, *, drafting: bool) -> bool:
    """While the CMOC is drafting: no heads-up, no repeat, and no due reminder for a first
    update that nothing promised (it is due at declaration, and they are writing it). A
    promised due time and the escalation still come. The slot is not claimed, so it still
    comes if they stop without publishing."""
    if not drafting:
        return False
    return (slot.kind in ("heads_up", "repeat")
            or (slot.kind == "due" and incident.promised_at is None))


def _claim(claims: list[list[Reminder]]) -> list[list[Reminder]]:
    """Inserts the slot rows: all in one transaction, or one incident at a time when another
    clock got some first (the unique key refuses its rows)."""
    if not claims:
        return []
    db.session.add_all([row for claim in claims for row in claim])
    try:
        db.session.commit()
        return claims
    except IntegrityError:
        db.session.rollback()
    won = []
    for claim in claims:
        fresh = [Reminder(**{c.key: getattr(row, c.key) for c in Reminder.__table__.columns
                             if c.key != "id"}) for row in claim]
        db.session.add_all(fresh)
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            continue
        won.append(fresh)
    return won


def _nmu_preview(incident: Incident, *, settings: DraftSettings, now: datetime,
                 saved: str | None = None) -> NmuPreview | None:
    """The "no material updates" texts for the button's confirmation; a reminder goes out
    without that button rather than not at all if they cannot be rendered."""
    try:
        return nmu_preview(incident=incident, settings=settings, now=now, saved=saved)
    except Exception:
        log.exception("No material updates preview failed for incident %s", incident.id)
        return None


def reminder_problems(incident_ids: list[int]) -> dict[int, str]:
    """Incidents whose latest reminder could not be delivered, with why (for the dashboard)."""
    if not incident_ids:
        return {}
    latest = (select(Reminder.incident_id, func.max(Reminder.id).label("id"))
              .where(Reminder.incident_id.in_(incident_ids),
                     Reminder.status.not_in(["superseded", "cancelled"]))
              .group_by(Reminder.incident_id).subquery())
    rows = db.session.execute(select(Reminder.incident_id, Reminder.error).join(
        latest, Reminder.id == latest.c.id).where(
        Reminder.status.in_(["undeliverable", "failed"]))).all()
    return {incident_id: error or "The reminder could not be sent." for incident_id, error in rows}


def take_over(*, incident: Incident, actor: User, now: datetime) -> Incident:
    """Makes `actor` the incident's CMOC (a handover); reminders go to them from now on."""
    previous = incident.cmoc.username if incident.cmoc else None
    record("incident.take_over", actor=actor, target=incident, now=now,
           before={"cmoc": previous}, after={"cmoc": actor.username})
    incident.cmoc_id = actor.id
    db.session.add(IncidentEvent(incident_id=incident.id, kind="handover", actor_id=actor.id,
                                 created_at=now, detail={"from": previous,
                                                         "to": actor.username}))
    db.session.commit()
    return incident
