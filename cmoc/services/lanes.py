"""Lanes: the deliveries of one incident on one channel, worked in publish order.

What the public sees must be a subsequence of what the CMOC published. So, per incident and
channel:
- only the newest update that chose the channel is ever sent; an older one still unsent becomes
  `superseded` (as does any still unsent when the incident is resolved);
- a delivery whose outcome is unknown (no clear answer: it may be on the remote) is looked up
  before anything else happens on the lane, and newer deliveries wait for that look-up;
- one runner at a time works a lane, holding a lease on the delivery it is working on.

`plan_lane` decides the next step from a snapshot of the lane (pure); `claim_next` takes the
incident's lock, plans, records what the plan changes and claims the delivery to work on.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, text, update

from cmoc.enums import CHANNEL_LABELS, DeliveryStatus, State
from cmoc.extensions import db
from cmoc.models import Delivery, Incident, Update
from cmoc.timeutil import fmt_utc

S = DeliveryStatus
DONE = frozenset({S.SENT.value, S.DRY_RUN.value, S.SKIPPED.value, S.SUPERSEDED.value})


@dataclass(frozen=True)
class LaneRow:
    """What the planner needs of one delivery."""

    id: int
    update_id: int
    seq: int
    resolves: bool           # the update is the one that resolved the incident
    status: str
    outcome_unknown: bool = False
    retryable: bool = False
    next_attempt_at: datetime | None = None
    lease_until: datetime | None = None
    lease_token: str | None = None

    def held_by_other(self, now: datetime, holder: str | None) -> bool:
        return (self.lease_until is not None and self.lease_until > now
                and (holder is None or self.lease_token != holder))


@dataclass
class LanePlan:
    action: str                        # send | look | busy | idle
    row: LaneRow | None = None
    supersede: dict[int, str] = field(default_factory=dict)   # delivery id -> why
    wait: dict[int, str] = field(default_factory=dict)        # delivery id -> why


def plan_lane(rows: list[LaneRow], *, channel: str, resolved: bool, now: datetime,
              holder: str | None = None) -> LanePlan:
    """The next step on a lane (rows in publish order) and the rows it supersedes or holds.
    `holder` is the lease token of the runner asking, if it kept one across an inline wait."""
    label = CHANNEL_LABELS.get(channel, channel)
    newest = max((r.seq for r in rows if r.status != S.SKIPPED.value), default=None)
    newest_update = next((r.update_id for r in rows if r.seq == newest), None)
    supersede: dict[int, str] = {}
    for index, row in enumerate(rows):
        if row.status in DONE:
            continue
        later = [r for r in rows[index + 1:]
                 if r.status in (S.PENDING.value, S.WAITING.value)]
        if row.held_by_other(now, holder):
            why = (f"Waiting: update #{row.update_id} is being sent to {label} first "
                   "(one post at a time, in publish order).")
            if row.status == S.FAILED.value and row.next_attempt_at is not None:
                why = (f"Waiting: update #{row.update_id} is retried on {label} first, at "
                       f"{fmt_utc(row.next_attempt_at, with_date=False)}.")
            return LanePlan("busy", row, supersede, {r.id: why for r in later})
        if row.outcome_unknown or row.status == S.SENDING.value:
            # A dead runner's delivery (lease expired) is as unknown as an unanswered one.
            due = row.status != S.FAILED.value or row.next_attempt_at is None \
                or row.next_attempt_at <= now
            why = (f"Waiting: {label} gave no clear answer for update #{row.update_id}, so it "
                   f"may already be there; cmoc checks {label} before posting this one.")
            if not due:
                why += f" Next check {fmt_utc(row.next_attempt_at, with_date=False)}."
            return LanePlan("look" if due else "idle", row, supersede, {r.id: why for r in later})
        if newest is not None and row.seq < newest:
            supersede[row.id] = (f"Not sent: update #{newest_update} is newer and replaces it "
                                 f"on {label}, so this text would be out of date.")
            continue
        if resolved and not row.resolves:
            supersede[row.id] = ("Not sent: the incident was resolved before this could go "
                                 f"out on {label}.")
            continue
        if row.status == S.FAILED.value:
            if not row.retryable:
                continue          # needs a person: the Retry button puts it back to pending
            if row.next_attempt_at is not None and row.next_attempt_at > now:
                return LanePlan("idle", row, supersede)
        return LanePlan("send", row, supersede)
    return LanePlan("idle", None, supersede)


@dataclass(frozen=True)
class Claim:
    """A delivery this runner now holds: send it, or (look) search the remote for it first."""

    delivery_id: int
    action: str
    token: str


def lock_incident(incident_id: int) -> None:
    """Serialises lane decisions of one incident. On PostgreSQL this row lock waits for other
    holders; on SQLite the write takes the database's write lock before anything is read."""
    db.session.execute(text("UPDATE incidents SET id = id WHERE id = :id"), {"id": incident_id})


def lane_rows(incident_id: int, channel: str) -> list[LaneRow]:
    rows = db.session.execute(
        select(Delivery.id, Delivery.update_id, Update.publish_seq, Update.state,
               Delivery.status, Delivery.outcome_unknown, Delivery.retryable,
               Delivery.next_attempt_at, Delivery.lease_until, Delivery.lease_token)
        .join(Update, Update.id == Delivery.update_id)
        .where(Update.incident_id == incident_id, Delivery.channel == channel,
               Update.publish_seq.is_not(None))
        .order_by(Update.publish_seq)).all()
    return [LaneRow(id=r[0], update_id=r[1], seq=r[2], resolves=r[3] == State.RESOLVED.value,
                    status=r[4], outcome_unknown=r[5], retryable=r[6], next_attempt_at=r[7],
                    lease_until=r[8], lease_token=r[9]) for r in rows]


def claim_next(*, incident_id: int, channel: str, now: datetime, lease: timedelta,
               holder: str | None = None) -> Claim | None:
    """Plans the lane under the incident's lock, records supersessions and waits, and claims
    the delivery to work on (status sending, a fresh lease). None when there is nothing to do
    now (idle, or another runner holds the lane)."""
    lock_incident(incident_id)
    resolved = db.session.scalar(select(Incident.resolved_at).where(
        Incident.id == incident_id)) is not None
    plan = plan_lane(lane_rows(incident_id, channel), channel=channel, resolved=resolved,
                     now=now, holder=holder)
    for delivery_id, why in plan.supersede.items():
        db.session.execute(update(Delivery).where(Delivery.id == delivery_id).values(
            status=S.SUPERSEDED.value, error=why, retryable=False, next_attempt_at=None,
            lease_token=None, lease_until=None, finished_at=now, updated_at=now))
    for delivery_id, why in plan.wait.items():
        db.session.execute(update(Delivery).where(
            Delivery.id == delivery_id,
            Delivery.status.in_([S.PENDING.value, S.WAITING.value])).values(
            status=S.WAITING.value, error=why, updated_at=now))
    claim = None
    if plan.action in ("send", "look"):
        token = secrets.token_hex(16)
        row = db.session.get(Delivery, plan.row.id)
        row.status = S.SENDING.value
        row.lease_token = token
        row.lease_until = now + lease
        row.started_at = row.started_at or now
        row.updated_at = now
        row.error = None if plan.action == "send" else row.error
        claim = Claim(delivery_id=row.id, action=plan.action, token=token)
    db.session.commit()
    return claim
