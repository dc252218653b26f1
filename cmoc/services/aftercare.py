"""After Resolved (the handbook's Stage 4): the incident review link, a read-back of the public
status page, and closing an incident declared by mistake without any post."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import exists, select

from cmoc.channels.statusio import STATUS_CODES, StatusIO
from cmoc.enums import PUBLIC_CHANNELS, DeliveryStatus, State, Status
from cmoc.extensions import db
from cmoc.models import Delivery, Incident, IncidentEvent, Notice, Update, User
from cmoc.services import ValidationError
from cmoc.services.audit import record
from cmoc.services.incidents import valid_http_url
from cmoc.services.lanes import lock_incident
from cmoc.services.notices import queue_slack_notice
from cmoc.timeutil import fmt_utc

LIVE_CHECK = "live_check"
# Resolved incidents are read back from status.io for this long after resolving.
LIVE_CHECK_WINDOW = timedelta(hours=24)
S = DeliveryStatus


# -- the incident review link ---------------------------------------------------------------
def add_postmortem(*, incident: Incident, url: str, actor: User, config: dict[str, Any],
                   now: datetime) -> Notice:
    """Stores the review link and posts it once to the incident's Slack thread."""
    url = (url or "").strip()
    if not incident.is_resolved:
        raise ValidationError({"postmortem_url": "Add the incident review link after Resolved."})
    if not url or len(url) > 500 or not valid_http_url(url):
        raise ValidationError({"postmortem_url": "Give the full http(s) link of the incident "
                                                 "review, e.g. https://gitlab.com/…/issues/123"})
    before = incident.postmortem_url
    incident.postmortem_url = url
    record("incident.postmortem", actor=actor, target=incident, now=now,
           before={"postmortem_url": before}, after={"postmortem_url": url})
    db.session.add(IncidentEvent(incident_id=incident.id, kind="postmortem", actor_id=actor.id,
                                 created_at=now, detail={"url": url}))
    db.session.commit()
    return queue_slack_notice(
        incident=incident, kind="postmortem", config=config, actor_id=actor.id, now=now,
        text=f"Incident review for #{incident.id} {incident.title}: {url}")


# -- the public page, read back -------------------------------------------------------------
def check_live_page(*, incident: Incident, statusio: StatusIO, now: datetime) -> IncidentEvent:
    """Reads the incident back from status.io: does the public page agree that it is resolved
    and operational? The answer goes on the timeline (a mismatch is a red warning)."""
    found, error = statusio.read_incident(incident.statusio_incident_id)
    if error:
        detail = {"ok": None, "summary": f"Could not read the status page: {error}"}
    elif not found["found"]:
        detail = {"ok": False, "summary": "The status page has no such incident."}
    else:
        resolved = found["resolved"]
        operational = found["status"] == STATUS_CODES[Status.OPERATIONAL.value]
        problems = ([] if resolved else ["still shows the incident as active"]) + \
            ([] if operational else ["does not show Operational"])
        detail = {"ok": not problems, "resolved": resolved, "status": found["status"],
                  "summary": ("The public status page agrees: resolved, operational."
                              if not problems else
                              "The public status page " + " and ".join(problems) + ".")}
    event = IncidentEvent(incident_id=incident.id, kind=LIVE_CHECK, created_at=now,
                          detail={**detail, "checked_at": fmt_utc(now)})
    db.session.add(event)
    db.session.commit()
    return event


def latest_live_check(incident: Incident) -> IncidentEvent | None:
    return db.session.scalar(select(IncidentEvent).where(
        IncidentEvent.incident_id == incident.id, IncidentEvent.kind == LIVE_CHECK)
        .order_by(IncidentEvent.created_at.desc(), IncidentEvent.id.desc()).limit(1))


def live_checks_due(*, now: datetime) -> list[int]:
    """Resolved incidents whose status.io resolve went out, not yet read back."""
    resolve_sent = exists().where(
        Delivery.update_id == Update.id, Update.incident_id == Incident.id,
        Update.state == State.RESOLVED.value, Delivery.channel == "statusio",
        Delivery.status == S.SENT.value)
    checked = exists().where(IncidentEvent.incident_id == Incident.id,
                             IncidentEvent.kind == LIVE_CHECK)
    return list(db.session.scalars(select(Incident.id).where(
        Incident.resolved_at >= now - LIVE_CHECK_WINDOW,
        Incident.statusio_incident_id.is_not(None), resolve_sent, ~checked)))


def run_live_checks(app: Flask, *, now: datetime) -> int:
    """The clock's job: reads back every resolved incident not checked yet."""
    from cmoc.services.delivering import statusio_for

    with app.app_context():
        statusio = statusio_for(app)
        done = 0
        if statusio.configured:
            for incident_id in live_checks_due(now=now):
                check_live_page(incident=db.session.get(Incident, incident_id),
                                statusio=statusio, now=now)
                done += 1
        db.session.remove()
    return done


# -- declared by mistake ----------------------------------------------------------------------
def public_posts_possible(incident: Incident) -> bool:
    """True when a status page post or tweet of this incident went out, or may have."""
    return db.session.scalar(select(exists().where(
        Delivery.update_id == Update.id, Update.incident_id == incident.id,
        Delivery.channel.in_(PUBLIC_CHANNELS),
        (Delivery.status.in_([S.SENT.value, S.SENDING.value]))
        | Delivery.outcome_unknown.is_(True) | Delivery.maybe_posted.is_(True))))


def close_without_posting(*, incident: Incident, reason: str, actor: User,
                          now: datetime) -> Incident:
    """Closes an incident declared by mistake: no post anywhere, reminders stop, anything
    still queued is superseded. Refused once something public went out (resolve it instead)."""
    reason = " ".join((reason or "").split())
    if incident.is_resolved:
        raise ValidationError({"reason": "This incident is already closed."})
    if not 5 <= len(reason) <= 500:
        raise ValidationError({"reason": "Say why it was declared by mistake (5–500 "
                                         "characters); it goes in the audit log."})
    # Under the incident's lock, as lanes claim deliveries: no post can start meanwhile.
    lock_incident(incident.id)
    db.session.refresh(incident)
    if incident.is_resolved:
        db.session.rollback()
        raise ValidationError({"reason": "This incident is already closed."})
    if public_posts_possible(incident):
        db.session.rollback()
        raise ValidationError({"reason": "Something was already posted publicly (or may have "
                                         "been): publish a Resolved update instead."})
    before = {"state": incident.state, "status": incident.status}
    incident.state, incident.status = State.RESOLVED.value, Status.OPERATIONAL.value
    incident.resolved_at = now
    incident.next_update_due_at = None
    incident.closed_reason = reason
    incident.updated_at = now
    record("incident.close_without_posting", actor=actor, target=incident, now=now,
           before=before, after={"state": incident.state, "reason": reason})
    db.session.add(IncidentEvent(incident_id=incident.id, kind="closed", actor_id=actor.id,
                                 created_at=now, detail={"reason": reason}))
    db.session.commit()
    return incident


def after_resolved(incident: Incident) -> dict[str, Any]:
    """What the incident page shows about Stage 4: the review link and whether it reached
    Slack, the last read-back of the public page, and whether it may be closed unposted."""
    postmortem = None
    if incident.postmortem_url:
        postmortem = db.session.scalar(select(Notice).where(
            Notice.incident_id == incident.id, Notice.kind == "postmortem")
            .order_by(Notice.id.desc()).limit(1))
    return {"postmortem_notice": postmortem, "live_check": latest_live_check(incident),
            "can_close": not incident.is_resolved and not public_posts_possible(incident)}
