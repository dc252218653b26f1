"""Publishing: claim a draft once, record one delivery per channel, move the incident on.

Exactly-once rests on the database: a draft moves to `publishing` with a conditional UPDATE
(one winner however many clicks) and each delivery is unique per (update, channel). The
sending itself, and recovery after a crash, are in `cmoc.services.delivering`.

Each selected channel's text must pass `cmoc.texts` (a blocked channel stops only a publish
that includes it). The `{next_update}` token is resolved here, from the very due time the
reminders use. Only an update that goes to the status page or X restarts the public cadence:
a Slack-only update is internal and leaves the public promise where it was.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import func, select, update

from cmoc import texts as text_rules
from cmoc.cadence import Cadence, next_update_due
from cmoc.enums import (
    CHANNEL_LABELS,
    CHANNELS,
    OUTWARD_CHANNELS,
    PUBLIC_CHANNELS,
    DeliveryStatus,
    State,
    Status,
    UpdatePhase,
)
from cmoc.extensions import db
from cmoc.messages import join_names, shipped_marker_labels
from cmoc.models import Delivery, Incident, Update, User
from cmoc.services import ValidationError
from cmoc.services.audit import record
from cmoc.services.draft_fields import allowed_states
from cmoc.services.incidents import refresh_due

log = logging.getLogger(__name__)


class PublishConflict(Exception):
    """The update is already published."""


def planned_due(*, incident: Incident, update: Update, channels: set[str], cadence: Cadence,
                now: datetime) -> datetime | None:
    """The next-update due time this publish sets: none once resolved; publish time + the
    cadence (or the update's own minutes) when it goes public; else unchanged."""
    if update.state == State.RESOLVED.value:
        return None
    if not channels & set(PUBLIC_CHANNELS):
        return incident.next_update_due_at
    return next_update_due(cadence=cadence, state=State(update.state),
                           severity=incident.severity_enum, last_published_at=now,
                           declared_at=incident.created_at,
                           override_minutes=update.next_update_minutes)


def blocked_channels(*, update: Update, channels: set[str], next_update_at: datetime | None,
                     markers: Mapping[str, str] | None = None) -> dict[str, str]:
    """{channel: why its text cannot be sent} among `channels`."""
    return text_rules.problems({c: update.text_for(c) for c in CHANNELS},
                               next_update_at=next_update_at, markers=markers,
                               channels=channels & set(CHANNELS))


def check_publish(*, update: Update, channels: set[str], confirm_public: bool,
                  next_update_at: datetime | None,
                  markers: Mapping[str, str] | None = None) -> dict[str, str]:
    """Per-field errors that stop a publish before anything is sent. A channel whose text is
    blocked is named (`text_<channel>`); leaving it out lets the others go."""
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
    if security and channels & set(OUTWARD_CHANNELS) and not confirm_public:
        errors["confirm_public"] = ("This is a security issue: tick the confirmation to post "
                                    "it on the public status page, X or the incident issue.")
    blocked = blocked_channels(update=update, channels=channels,
                               next_update_at=next_update_at, markers=markers)
    for channel, reason in blocked.items():
        others = channels & set(CHANNELS) - set(blocked)
        errors[f"text_{channel}"] = reason + (
            f" Leave {CHANNEL_LABELS[channel]} out to publish to "
            + join_names([CHANNEL_LABELS[c] for c in CHANNELS if c in others]) + "."
            if others else "")
    return errors


def start_publish(*, update: Update, channels: set[str], confirm_public: bool, actor: User,
                  cadence: Cadence, now: datetime, markers: Mapping[str, str] | None = None,
                  skip_blocked: bool = False) -> Update:
    """Claims the draft (once), gives it the incident's next publish number, records a
    delivery per channel and moves the incident on — all in one transaction.

    With `skip_blocked`, selected channels whose text is blocked are left out (and say why)
    instead of stopping the publish; `markers` names the template variables whose [marker]
    may not be sent (default: those of the shipped templates).
    """
    channels = set(channels)
    markers = shipped_marker_labels() if markers is None else markers
    left_out: dict[str, str] = {}

    def check() -> dict[str, str]:
        due = planned_due(incident=update.incident, update=update, channels=channels,
                          cadence=cadence, now=now)
        if skip_blocked:
            left_out.update(blocked_channels(update=update, channels=channels,
                                             next_update_at=due, markers=markers))
            channels.difference_update(left_out)
            if not channels:
                return {"channels": "Every selected channel is blocked: "
                        + " ".join(left_out.values())}
        return check_publish(update=update, channels=channels, confirm_public=confirm_public,
                             next_update_at=due, markers=markers)

    errors = check()
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
    errors = check()
    if errors:
        db.session.rollback()
        raise ValidationError(errors)
    public = bool(channels & set(PUBLIC_CHANNELS))
    seq = (db.session.scalar(select(func.max(Update.publish_seq)).where(
        Update.incident_id == incident.id)) or 0) + 1
    entry = record("update.publish", actor=actor, target=update, now=now, before={
        "state": incident.state, "status": incident.status}, after={
        "state": update.state, "status": update.status, "channels": sorted(channels),
        **({"left_out": left_out} if left_out else {}),
        **({} if public else {"internal": True})})
    db.session.flush()
    for channel in CHANNELS:
        selected = channel in channels
        reason = ("Left out: " + left_out[channel] if channel in left_out
                  else "Not selected for this update.")
        db.session.add(Delivery(audit_id=entry.id,
            update_id=update.id, channel=channel, created_at=now, updated_at=now,
            status=(DeliveryStatus.PENDING if selected else DeliveryStatus.SKIPPED).value,
            error=None if selected else reason,
            finished_at=None if selected else now,
        ))
    _apply_to_incident(incident=incident, update=update, public=public, cadence=cadence,
                       now=now)
    incident.cmoc_id = incident.cmoc_id or actor.id
    # Every text says the time the reminder uses: the due time just set, to the minute.
    sent = {f"text_{c}": text_rules.resolve(update.text_for(c),
                                            next_update_at=incident.next_update_due_at)
            for c in CHANNELS}
    db.session.execute(update_stmt(Update).where(Update.id == update.id).values(
        publish_seq=seq, severity_at_publish=incident.severity,
        next_due_at=incident.next_update_due_at,
        cadence_minutes=_gap_minutes(incident, now) if public else None, **sent))
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


def _apply_to_incident(*, incident: Incident, update: Update, public: bool,
                       cadence: Cadence, now: datetime) -> None:
    incident.state = update.state
    incident.status = update.status
    incident.updated_at = now
    if update.state == State.RESOLVED.value:
        incident.resolved_at = now
        incident.promised_at = None
    if public:
        # The public was told: the cadence restarts, and the new due time is the promise.
        incident.last_published_at = now
        incident.next_update_minutes = update.next_update_minutes
        refresh_due(incident=incident, cadence=cadence)
        incident.promised_at = incident.next_update_due_at
    elif update.state == State.RESOLVED.value:
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
