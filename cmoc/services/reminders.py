"""Reminders on the cadence: due, one escalation after the grace period, then repeats.

`send_reminders` is the clock's job and a CLI command. It claims each reminder slot by
inserting a row with a unique (incident, due time, kind, seq) key before sending, so a restart,
an overlapping pass or a second clock never sends the same reminder twice; and it re-reads the
incident before sending, so nothing goes out for a resolved, published or snoozed incident.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from cmoc.cadence import Cadence
from cmoc.channels.http import make_session
from cmoc.channels.registry import channel_settings, http_timeout
from cmoc.channels.slack import Slack, escape
from cmoc.enums import State
from cmoc.extensions import db
from cmoc.models import Incident, IncidentEvent, Reminder, User
from cmoc.services import ValidationError
from cmoc.services.audit import record
from cmoc.timeutil import fmt_duration, fmt_utc, utcnow

log = logging.getLogger(__name__)
SNOOZE_CHOICES = (5, 10, 15)
SEND_WORKERS = 8
REMINDER_EVENT = "cmoc_reminder"
MAX_ATTEMPTS = 3
RETRY_AFTER = timedelta(seconds=30)
NOBODY = ("Nobody to remind: set your Slack member id on your profile, or "
          "SLACK_REMINDER_CHANNEL (and SLACK_ESCALATION_CHANNEL for escalations).")


@dataclass(frozen=True)
class Slot:
    kind: str          # due | escalation | repeat
    seq: int
    at: datetime


def reminder_slots(*, due_at: datetime, interval: timedelta, grace: timedelta,
                   now: datetime) -> list[Slot]:
    """The slots of one due time that have come by `now`, oldest first."""
    if now < due_at:
        return []
    slots = [Slot("due", 0, due_at)]
    if now >= due_at + grace:
        slots.append(Slot("escalation", 0, due_at + grace))
    repeats = int((now - due_at) / interval)
    if repeats >= 1:
        slots.append(Slot("repeat", repeats, due_at + repeats * interval))
    return sorted(slots, key=lambda s: s.at)


def reminder_message(*, incident: Incident, kind: str, now: datetime, base_url: str,
                     mention: str | None) -> str:
    """The Slack text of a reminder (user text escaped; links straight to the drafting form)."""
    overdue = fmt_duration((now - incident.next_update_due_at).total_seconds())
    last = (f"last public update {fmt_duration((now - incident.last_published_at).total_seconds())}"
            f" ago ({fmt_utc(incident.last_published_at, with_date=False)})"
            if incident.last_published_at else "no public update yet")
    draft = f"{base_url.rstrip('/')}/incidents/{incident.id}/updates/new"
    state = incident.state_enum
    head = {
        "due": ":alarm_clock: Update due",
        "escalation": f":rotating_light: Update overdue by {overdue}",
        "repeat": f":alarm_clock: Still no update, overdue by {overdue}",
    }[kind]
    lines = [
        f"{head} for #{incident.id} *{escape(incident.title)}* "
        f"({incident.severity} · {state.label} · {incident.status_enum.label}); {last}.",
        f"Draft now: <{draft}?template={state.value}|{state.label} update> · "
        f"<{draft}?template=no-material-updates&state={state.value}|No material updates>",
    ]
    if kind == "escalation":
        person = incident.cmoc or incident.declared_by
        who = (f"<@{person.slack_user_id}>" if person and person.slack_user_id
               else escape(person.username) if person else "nobody")
        lines.insert(0, f"{mention + ' ' if mention else ''}the CMOC ({who}) has not posted the "
                        f"update due at {fmt_utc(incident.next_update_due_at, with_date=False)}.")
    return "\n".join(lines)


def _target(incident: Incident, config: dict[str, Any], kind: str) -> str | None:
    """Where a reminder goes. Reminders: the CMOC's DM, else the reminder channel.
    Escalations: where the people escalated to will see them — SLACK_ESCALATION_CHANNEL, else
    the incident's own Slack channel, else the reminder channel (never the CMOC's DM, where a
    mention of the incident manager notifies nobody)."""
    if kind == "escalation":
        return (config.get("SLACK_ESCALATION_CHANNEL") or incident.slack_channel
                or config.get("SLACK_REMINDER_CHANNEL"))
    person = incident.cmoc or incident.declared_by
    if person is not None and person.slack_user_id:
        return person.slack_user_id
    return config.get("SLACK_REMINDER_CHANNEL")


def send_reminders(app: Flask, *, now: datetime) -> dict[str, int]:
    """One pass: claims the reminder slots that have come, then sends them."""
    config = app.config
    cadence: Cadence = config["CADENCE_MATRIX"]
    grace = timedelta(minutes=float(config.get("REMINDER_GRACE_MINUTES", 5)))
    counts = {"claimed": 0, "superseded": 0, "sent": 0, "failed": 0, "dry_run": 0,
              "cancelled": 0}
    to_send: list[int] = []
    look_first: set[int] = set()
    with app.app_context():
        due = db.session.scalars(select(Incident).where(
            Incident.resolved_at.is_(None), Incident.next_update_due_at <= now)).all()
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
                                               interval=interval, grace=grace, now=now)
                     if (incident.id, incident.next_update_due_at, s.kind, s.seq) not in taken]
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
            target = _target(incident, config, reminder.kind)
            text = reminder_message(incident=incident, kind=reminder.kind, now=now,
                                    base_url=config["BASE_URL"],
                                    mention=config.get("SLACK_ESCALATION_MENTION"))
            payload = reminder.payload if look_first and reminder.payload else {
                "channel": target or "<SLACK_REMINDER_CHANNEL>", "text": text,
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


def snooze(*, incident: Incident, minutes: int, actor: User, now: datetime) -> Incident:
    """Moves the due time on by 5, 10 or 15 minutes and records it on the timeline."""
    if incident.is_resolved:
        raise ValidationError({"minutes": "This incident is resolved; nothing to snooze."})
    if minutes not in SNOOZE_CHOICES:
        raise ValidationError({"minutes": "Snooze for 5, 10 or 15 minutes."})
    before = incident.next_update_due_at
    incident.next_update_due_at = max(before or now, now) + timedelta(minutes=minutes)
    record("incident.snooze", actor=actor, target=incident, now=now,
           before={"next_update_due_at": before},
           after={"next_update_due_at": incident.next_update_due_at, "minutes": minutes})
    db.session.add(IncidentEvent(incident_id=incident.id, kind="snooze", actor_id=actor.id,
                                 created_at=now, detail={
                                     "minutes": minutes, "from": fmt_utc(before),
                                     "to": fmt_utc(incident.next_update_due_at)}))
    db.session.commit()
    return incident


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
