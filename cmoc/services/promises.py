"""The public promise: every public update tells readers when the next one comes.

Snoozing past that time needs an explicit confirmation and is recorded as a broken promise;
deciding that no public post is needed (e.g. a security issue kept off the public channels) is
an explicit, audited decision that restarts the cadence; the heads-up can be switched off.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from cmoc.cadence import Cadence
from cmoc.extensions import db
from cmoc.models import Incident, IncidentEvent, User
from cmoc.services import ValidationError
from cmoc.services.audit import record
from cmoc.timeutil import fmt_utc

SNOOZE_CHOICES = (5, 10, 15)
REASON_MAX = 500


class PromiseAtStake(ValidationError):
    """The snooze would move the reminder past the time the public was promised."""

    def __init__(self, message: str, *, minutes: int, until: datetime, promised: datetime):
        super().__init__({"break_promise": message})
        self.minutes, self.until, self.promised = minutes, until, promised


def snooze_until(*, incident: Incident, minutes: int, now: datetime) -> datetime:
    return max(incident.next_update_due_at or now, now) + timedelta(minutes=minutes)


def breaks_promise(*, incident: Incident, until: datetime) -> bool:
    """Whether moving the due time to `until` passes the time the last public update promised
    (once the due time is already past it, the promise was broken and recorded before)."""
    promised, due = incident.promised_at, incident.next_update_due_at
    return bool(promised and until > promised and (due is None or due <= promised))


def snooze(*, incident: Incident, minutes: int, actor: User, now: datetime,
           break_promise: bool = False) -> Incident:
    """Moves the due time on by 5, 10 or 15 minutes and records it on the timeline. Past the
    promised time only with `break_promise`, and then recorded as a broken promise."""
    if incident.is_resolved:
        raise ValidationError({"minutes": "This incident is resolved; nothing to snooze."})
    if minutes not in SNOOZE_CHOICES:
        raise ValidationError({"minutes": "Snooze for 5, 10 or 15 minutes."})
    before = incident.next_update_due_at
    until = snooze_until(incident=incident, minutes=minutes, now=now)
    breaking = breaks_promise(incident=incident, until=until)
    if breaking and not break_promise:
        raise PromiseAtStake(
            f"Snoozing {minutes} min moves the reminder to {fmt_utc(until, with_date=False)}, "
            f"past {fmt_utc(incident.promised_at, with_date=False)}: the time the last public "
            "update promised the next one. The public will wait longer than promised. Confirm "
            "to snooze anyway (recorded as a broken promise), or post an update now — "
            "“No material updates” keeps the promise.",
            minutes=minutes, until=until, promised=incident.promised_at)
    incident.next_update_due_at = until
    detail = {"minutes": minutes, "from": fmt_utc(before), "to": fmt_utc(until)}
    if breaking:
        detail |= {"breaks_promise": True, "promised": fmt_utc(incident.promised_at)}
    record("incident.snooze", actor=actor, target=incident, now=now,
           before={"next_update_due_at": before},
           after={"next_update_due_at": until, "minutes": minutes,
                  **({"breaks_promise": True, "promised_at": incident.promised_at}
                     if breaking else {})})
    db.session.add(IncidentEvent(incident_id=incident.id, kind="snooze", actor_id=actor.id,
                                 created_at=now, detail=detail))
    db.session.commit()
    return incident


def decide_no_public_post(*, incident: Incident, reason: str, actor: User, cadence: Cadence,
                          now: datetime) -> Incident:
    """Records that no public post is needed now (with why) and restarts the cadence, so the
    reminder stops asking until the next due time."""
    if incident.is_resolved:
        raise ValidationError({"reason": "This incident is resolved."})
    reason = " ".join((reason or "").split())
    if len(reason) < 3:
        raise ValidationError({"reason": "Say why no public post is needed (the audit log "
                                         "keeps it)."})
    if len(reason) > REASON_MAX:
        raise ValidationError({"reason": f"Keep the reason under {REASON_MAX} characters."})
    before = incident.next_update_due_at
    incident.next_update_due_at = now + cadence.interval(incident.state_enum,
                                                         incident.severity_enum)
    record("incident.no_public_post", actor=actor, target=incident, now=now,
           before={"next_update_due_at": before},
           after={"next_update_due_at": incident.next_update_due_at, "reason": reason})
    db.session.add(IncidentEvent(incident_id=incident.id, kind="no_public_post",
                                 actor_id=actor.id, created_at=now, detail={
                                     "reason": reason, "from": fmt_utc(before),
                                     "to": fmt_utc(incident.next_update_due_at)}))
    db.session.commit()
    return incident


def set_heads_up(*, incident: Incident, on: bool, actor: User, now: datetime) -> Incident:
    """Turns the heads-up before due on or off for this incident."""
    if incident.heads_up != on:
        record("incident.heads_up", actor=actor, target=incident, now=now,
               before={"heads_up": incident.heads_up}, after={"heads_up": on})
        incident.heads_up = on
        db.session.commit()
    return incident
