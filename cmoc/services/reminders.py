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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from cmoc.cadence import Cadence
from cmoc.channels.http import make_session
from cmoc.channels.registry import channel_settings, http_timeout
from cmoc.channels.slack import Slack
from cmoc.enums import State
from cmoc.extensions import db
from cmoc.models import Incident, IncidentEvent, Reminder, User
from cmoc.services.audit import record
from cmoc.services.drafts import DraftSettings
from cmoc.services.presence import drafting_now
from cmoc.services.promises import SNOOZE_CHOICES, snooze  # noqa: F401  (moved; re-exported)
from cmoc.services.reminder_messages import (  # noqa: F401  (reminder_message re-exported)
    reminder_context,
    reminder_message,
    reminder_target,
)
from cmoc.services.slack_blocks import NmuPreview, nmu_preview, reminder_blocks
from cmoc.timeutil import utcnow

log = logging.getLogger(__name__)
SEND_WORKERS = 8
REMINDER_EVENT = "cmoc_reminder"
MAX_ATTEMPTS = 3
RETRY_AFTER = timedelta(seconds=30)
NOBODY = ("Nobody to remind: set your Slack member id on your profile, or "
          "SLACK_REMINDER_CHANNEL (and SLACK_ESCALATION_CHANNEL for escalations).")


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
        # Failed sends are tried again (bounded). One that got no clear answer, and a claim
        # left in flight by a dead clock, are looked up in Slack before they are sent again.
        retry = db.session.execute(
            update(Reminder).where(Reminder.status == "failed", Reminder.attempts < MAX_ATTEMPTS,
                                   Reminder.updated_at <= now - RETRY_AFTER)
            .values(status="sending", updated_at=now)
            .returning(Reminder.id, Reminder.outcome_unknown)).all()
        stale = db.session.execute(
            update(Reminder).where(Reminder.status == "sending",
                                   Reminder.updated_at <= now - timedelta(minutes=2))
            .values(updated_at=now).returning(Reminder.id)).scalars().all()
        db.session.commit()
        to_send.extend(rid for rid, _ in retry)
        to_send.extend(stale)
        look_first = set(stale) | {rid for rid, unknown in retry if unknown}
        db.session.remove()
    if to_send:
        workers = min(SEND_WORKERS, len(to_send))
        settings = channel_settings(config)
        slack = Slack(session=make_session(timeout=http_timeout(config), pool_maxsize=workers),
                      base_url=settings["SLACK_API_URL"],
                      token=settings.get("SLACK_BOT_TOKEN"), channel=None, group_id=None)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="remind") as pool:
            for status in pool.map(lambda rid: _send_one(app, slack, rid, now=now,
                                                         look_first=rid in look_first),
                                   to_send):
                counts[status] = counts.get(status, 0) + 1
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


def _send_one(app: Flask, slack: Slack, reminder_id: int, *, now: datetime,
              look_first: bool) -> str:
    """Sends one claimed reminder, after looking for it in Slack when an earlier attempt may
    have posted it."""
    with app.app_context():
        try:
            reminder = db.session.get(Reminder, reminder_id)
            incident = db.session.get(Incident, reminder.incident_id)
            if incident.resolved_at is not None or incident.next_update_due_at != reminder.due_at:
                # Resolved, published or snoozed since the claim: never remind.
                return _record(reminder, "cancelled", now=now,
                               error="Incident resolved, updated or snoozed before sending.")
            config = channel_settings(app.config)
            target = reminder_target(incident, config, reminder.kind)
            context = reminder_context(incident)
            text = reminder_message(incident=incident, kind=reminder.kind, now=now,
                                    base_url=config["BASE_URL"],
                                    mention=config.get("SLACK_ESCALATION_MENTION"), **context)
            payload = reminder.payload if look_first and reminder.payload else {
                "channel": target or "<SLACK_REMINDER_CHANNEL>", "text": text,
                "blocks": reminder_blocks(
                    incident=incident, text=text, base_url=config["BASE_URL"],
                    draft_id=context["draft_id"], preview=_nmu_preview(app, incident, now)),
                "unfurl_links": False,
                "metadata": {"event_type": REMINDER_EVENT,
                             "event_payload": {"reminder_id": reminder.id}}}
            reminder.payload = payload
            reminder.target = target
            if not slack.token:
                return _record(reminder, "dry_run", now=now,
                               error="Dry-run: SLACK_BOT_TOKEN is not set.")
            if not target:
                # Final: retrying cannot help until someone sets where reminders go; the
                # dashboard shows it on the incident.
                return _record(reminder, "undeliverable", now=now, error=NOBODY)
            if look_first:
                found = slack.find_existing(payload, since=reminder.created_at)
                if found is not None and found.ok:
                    reminder.external_id = found.external_id
                    reminder.outcome_unknown = False
                    return _record(reminder, "sent", now=now)
                if found is not None:
                    # Slack could not be asked: resending now might post it twice.
                    reminder.outcome_unknown = True
                    return _record(reminder, "failed", now=now,
                                   error=f"Could not check Slack for it: {found.error}")
            reminder.attempts += 1
            result = slack.send(payload)
            reminder.outcome_unknown = result.outcome_unknown
            if result.ok:
                reminder.external_id = result.external_id
                return _record(reminder, "sent", now=now)
            return _record(reminder, "failed", now=now, error=result.error)
        finally:
            db.session.remove()


def _nmu_preview(app: Flask, incident: Incident, now: datetime) -> NmuPreview | None:
    """The "no material updates" texts for the button's confirmation; a reminder goes out
    without that button rather than not at all if they cannot be rendered."""
    try:
        return nmu_preview(incident=incident, settings=DraftSettings.from_app(app), now=now)
    except Exception:
        log.exception("No material updates preview failed for incident %s", incident.id)
        return None


def _record(reminder: Reminder, status: str, *, now: datetime, error: str | None = None) -> str:
    reminder.status = status
    reminder.error = error
    reminder.updated_at = now
    if status == "sent":
        reminder.sent_at = utcnow()  # when it really went out, for the lag figures
    db.session.commit()
    return status


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
