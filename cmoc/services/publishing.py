"""Publishing: claim a draft once, record one delivery per channel, move the incident on.

Exactly-once rests on the database: a draft moves to `publishing` with a conditional UPDATE
(one winner however many clicks) and each delivery is unique per (update, channel). The
sending itself, and recovery after a crash, are in `cmoc.services.delivering`.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import func, select, update

from cmoc.cadence import Cadence
from cmoc.enums import (
    CHANNELS,
    PUBLIC_CHANNELS,
    DeliveryStatus,
    State,
    Status,
    UpdatePhase,
)
from cmoc.extensions import db
from cmoc.models import Delivery, Incident, Update, User
from cmoc.services import ValidationError
from cmoc.services.audit import record
from cmoc.services.drafts import allowed_states
from cmoc.services.incidents import refresh_due
from cmoc.tweet import TWEET_LIMIT, weighted_length

log = logging.getLogger(__name__)


class PublishConflict(Exception):
    """The update is already published."""


def check_publish(*, update: Update, channels: set[str], confirm_public: bool) -> dict[str, str]:
    """Per-field errors that stop a publish before anything is sent."""
    incident = update.incident
    errors: dict[str, str] = {}
    if incident.is_resolved:
        errors["state"] = "This incident is resolved: nothing can be published after Resolved."
    elif State(update.state) not in allowed_states(incident.state_enum):
        errors["state"] = (f"The incident is now {incident.state_enum.label}; this draft moves "
                           f"it back to {State(update.state).label}. Change its state.")
    unknown = channels - set(CHANNELS)
    if unknown:
        errors["channels"] = "Unknown channel: " + ", ".join(sorted(unknown))
    elif not channels:
        errors["channels"] = "Choose at least one channel to publish to."
    security = Status.SECURITY_ISSUE.value in (update.status, incident.status)
    if security and channels & set(PUBLIC_CHANNELS) and not confirm_public:
        errors["confirm_public"] = ("This is a security issue: tick the confirmation to post "
                                    "it on the public status page or X.")
    for channel in channels & set(CHANNELS):
        if not update.text_for(channel).strip():
            errors[f"text_{channel}"] = "Text is empty for a channel you selected."
    if "twitter" in channels and weighted_length(update.text_twitter) > TWEET_LIMIT:
        errors["text_twitter"] = "The tweet is over 280 weighted characters."
    return errors


def start_publish(*, update: Update, channels: set[str], confirm_public: bool, actor: User,
                  cadence: Cadence, now: datetime) -> Update:
    """Claims the draft (once), gives it the incident's next publish number, records a
    delivery per channel and moves the incident on — all in one transaction."""
    errors = check_publish(update=update, channels=channels, confirm_public=confirm_public)
    if errors:
        raise ValidationError(errors)
    claim = (
        update_stmt(Update)
        .where(Update.id == update.id, Update.phase == UpdatePhase.DRAFT.value)
        .values(phase=UpdatePhase.PUBLISHING.value, published_at=now, published_by_id=actor.id)
    )
    if db.session.execute(claim).rowcount != 1:
        db.session.rollback()
        raise PublishConflict("This update was already published.")
    incident = db.session.get(Incident, update.incident_id, with_for_update=True,
                              populate_existing=True)
    # Checked again under the lock: another update may have moved the incident meanwhile
    # (e.g. resolved it) after the checks above.
    errors = check_publish(update=update, channels=channels, confirm_public=confirm_public)
    if errors:
        db.session.rollback()
        raise ValidationError(errors)
    seq = (db.session.scalar(select(func.max(Update.publish_seq)).where(
        Update.incident_id == incident.id)) or 0) + 1
    entry = record("update.publish", actor=actor, target=update, now=now, before={
        "state": incident.state, "status": incident.status}, after={
        "state": update.state, "status": update.status, "channels": sorted(channels)})
    db.session.flush()
    for channel in CHANNELS:
        selected = channel in channels
        db.session.add(Delivery(audit_id=entry.id,
            update_id=update.id, channel=channel, created_at=now, updated_at=now,
            status=(DeliveryStatus.PENDING if selected else DeliveryStatus.SKIPPED).value,
            error=None if selected else "Not selected for this update.",
            finished_at=None if selected else now,
        ))
    _apply_to_incident(incident=incident, update=update, cadence=cadence, now=now)
    incident.cmoc_id = incident.cmoc_id or actor.id
    db.session.execute(update_stmt(Update).where(Update.id == update.id).values(
        publish_seq=seq, severity_at_publish=incident.severity,
        next_due_at=incident.next_update_due_at, cadence_minutes=_gap_minutes(incident, now)))
    db.session.commit()
    db.session.refresh(update)
    return update


def _gap_minutes(incident: Incident, now: datetime) -> int | None:
    if incident.next_update_due_at is None:
        return None
    return round((incident.next_update_due_at - now).total_seconds() / 60)


def update_stmt(model):
    # sqlalchemy.update, named so it does not shadow the Update model in this module.
    return update(model)


def _apply_to_incident(*, incident: Incident, update: Update, cadence: Cadence,
                       now: datetime) -> None:
    incident.state = update.state
    incident.status = update.status
    incident.last_published_at = now
    incident.next_update_minutes = update.next_update_minutes
    incident.updated_at = now
    if update.state == State.RESOLVED.value:
        incident.resolved_at = now
    refresh_due(incident=incident, cadence=cadence)


def retry_deliveries(*, update: Update, channels: set[str] | None, now: datetime,
                     actor: User | None = None) -> list[str]:
    """Puts failed deliveries back in their lane; never touches one that was sent.

    One whose outcome was unknown stays unknown, so it is looked up before it is resent; one
    that a newer update (or Resolved) has replaced meanwhile becomes superseded, not sent.
    """
    wanted = channels or set(CHANNELS)
    reopened = []
    entry = record("delivery.retry", actor=actor, target=update, now=now,
                   after={"channels": sorted(wanted)})
    db.session.flush()
    for delivery in update.deliveries:
        if delivery.channel not in wanted:
            continue
        result = db.session.execute(
            update_stmt(Delivery)
            .where(Delivery.id == delivery.id, Delivery.status == DeliveryStatus.FAILED.value)
            .values(status=DeliveryStatus.PENDING.value, updated_at=now, next_attempt_at=None,
                    finished_at=None, audit_id=entry.id)
        )
        if result.rowcount == 1:
            reopened.append(delivery.channel)
    if not reopened:
        db.session.rollback()
        raise ValidationError({"channels": "Nothing to retry: no failed delivery was chosen."})
    db.session.execute(update_stmt(Update).where(Update.id == update.id)
                       .values(phase=UpdatePhase.PUBLISHING.value))
    db.session.commit()
    return reopened
