"""One step of a lane's runner: look for an unanswered post, or send once, and record the
outcome under the lease (a runner that lost its lease records nothing)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select, update

from cmoc.channels import Channel, ChannelResult, PostContext
from cmoc.enums import CHANNEL_LABELS, DeliveryStatus
from cmoc.extensions import db
from cmoc.models import Delivery, Incident, Update
from cmoc.services.lanes import Claim, lock_incident
from cmoc.timeutil import fmt_utc

log = logging.getLogger(__name__)
S = DeliveryStatus
# `send_step`'s answer when a retry is left to the clock (the lane stops for now).
LEAVE = float("inf")
# Incident columns a channel may set when it posts (where the next post attaches).
THREAD_FIELDS = ("statusio_incident_id", "twitter_last_tweet_id", "slack_channel_id",
                 "slack_thread_ts")


@dataclass(frozen=True)
class RetryPolicy:
    inline_attempts: int = 3          # sends within one run of a lane
    max_attempts: int = 6             # sends in all, counting the clock's retries
    backoff_seconds: float = 1.0      # doubled after each failed attempt
    max_inline_wait: float = 10.0     # a longer wait is left to the clock
    lease: timedelta = timedelta(seconds=8)  # renewed in the background while working
    pending_grace: timedelta = timedelta(seconds=10)  # the publishing worker goes first
    max_lookup_wait: float = 60.0     # between look-ups that could not reach the remote

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> RetryPolicy:
        return cls(
            inline_attempts=int(config.get("PUBLISH_INLINE_ATTEMPTS", 3)),
            max_attempts=int(config.get("PUBLISH_MAX_ATTEMPTS", 6)),
            backoff_seconds=float(config.get("PUBLISH_BACKOFF_SECONDS", 1.0)),
            max_inline_wait=float(config.get("PUBLISH_MAX_INLINE_WAIT", 10.0)),
            lease=timedelta(seconds=float(config.get("PUBLISH_LEASE_SECONDS", 8))),
            pending_grace=timedelta(seconds=float(config.get("PUBLISH_PENDING_GRACE_SECONDS",
                                                             10))),
        )

    def wait_after(self, result: ChannelResult, attempt: int) -> float:
        if result.retry_after is not None:
            return result.retry_after
        return self.backoff_seconds * 2 ** max(0, attempt - 1)


# -- one step: look or send ----------------------------------------------------------------
def look_step(claim: Claim, *, channel: Channel, policy: RetryPolicy, clock) -> None:
    """Searches the remote for a delivery whose earlier attempt got no clear answer."""
    delivery = db.session.get(Delivery, claim.delivery_id)
    found = None
    if delivery.payload and "skip" not in delivery.payload and channel.configured:
        found = _ours(delivery, channel.find_existing(delivery.payload,
                                                      since=delivery.started_at))
    now = clock()
    if found is not None and found.ok:
        _record_sent(claim, found, now=now)
    elif found is not None:
        wait = min(policy.max_lookup_wait, max(policy.backoff_seconds, 5.0))
        label = CHANNEL_LABELS[delivery.channel]
        _record(claim, now=now, status=S.FAILED.value, outcome_unknown=True, retryable=True,
                next_attempt_at=now + timedelta(seconds=wait),
                error=f"Could not check whether it reached {label}: {found.error}. Next check "
                      f"{fmt_utc(now + timedelta(seconds=wait), with_date=False)}; nothing is "
                      "resent until then.")
    elif delivery.attempts >= policy.max_attempts:
        _record(claim, now=now, status=S.FAILED.value, outcome_unknown=False, retryable=False,
                next_attempt_at=None,
                error=f"Not posted after {delivery.attempts} attempts ({delivery.error}). "
                      "Use Retry to send it again.")
    else:
        # Certainly not there: back in the queue; the lane decides between resend and
        # superseded (a newer update may replace it by now).
        _record(claim, now=now, status=S.PENDING.value, outcome_unknown=False,
                finished_at=None)


def begin_send(claim: Claim, *, channel: Channel, policy: RetryPolicy,
               clock) -> tuple[Delivery, dict[str, Any]] | None:
    """What a runner records just before the call: the exact payload, one more attempt, a
    renewed lease. None when the lease was lost (someone else has the delivery now)."""
    delivery = db.session.get(Delivery, claim.delivery_id)
    payload = channel.build(post_context_for(delivery))
    now = clock()
    renewed = db.session.execute(update(Delivery).where(
        Delivery.id == claim.delivery_id, Delivery.lease_token == claim.token).values(
        payload=payload, attempts=Delivery.attempts + 1, updated_at=now,
        lease_until=now + policy.lease)).rowcount == 1
    db.session.commit()
    if not renewed:
        log.warning("delivery %s: lease lost before sending; not sent", claim.delivery_id)
        return None
    db.session.refresh(delivery)
    return delivery, payload


def send_step(claim: Claim, *, channel: Channel, policy: RetryPolicy, clock,
          inline: bool) -> float | None:
    """Sends once. Returns the wait before an inline retry (the lease is kept for it), LEAVE
    when a retry is due later (the clock's), or None when the delivery is settled."""
    begun = begin_send(claim, channel=channel, policy=policy, clock=clock)
    if begun is None:
        return None
    delivery, payload = begun
    now = clock()
    if "skip" in payload:
        _record(claim, now=now, status=S.SKIPPED.value, error=payload["skip"])
        return None
    if not channel.configured:
        _record(claim, now=now, status=S.DRY_RUN.value,
                error="Dry-run: no credentials for this channel; nothing was sent.")
        return None
    result = channel.send(payload)
    if result.duplicate:
        # X already has this text. If an earlier, unanswered attempt of this delivery posted
        # it, take that tweet's id so the thread goes on from it; otherwise the text must
        # change (it repeats an older tweet).
        found = (_ours(delivery, channel.find_existing(payload, since=delivery.started_at))
                 if delivery.maybe_posted else None)
        result = found if found is not None and found.ok else ChannelResult.failed(
            result.error + ". The same text is already on the account's timeline from an "
            "earlier tweet: change the text and publish a new update.")
    now = clock()
    if result.ok:
        _record_sent(claim, result, now=now)
        return None
    attempts = db.session.scalar(select(Delivery.attempts).where(
        Delivery.id == claim.delivery_id))
    wait = policy.wait_after(result, attempts)
    automatic = (result.retryable or result.outcome_unknown) and attempts < policy.max_attempts
    again = automatic and inline and wait <= policy.max_inline_wait
    retry_at = now + timedelta(seconds=wait)
    _record(claim, now=now, status=S.FAILED.value, outcome_unknown=result.outcome_unknown,
            maybe_posted=delivery.maybe_posted or result.outcome_unknown,
            retryable=automatic, next_attempt_at=retry_at if automatic else None,
            error=result.error + (f" (retrying at {fmt_utc(retry_at, with_date=False)})"
                                  if automatic else ""),
            keep_until=retry_at + policy.lease if again else None)
    if again:
        return wait
    return LEAVE if automatic else None


def _ours(delivery: Delivery, found: ChannelResult | None) -> ChannelResult | None:
    """A found post that is already another delivery's (the same words posted for another
    update or incident) is not this one's: treated as not found."""
    if found is None or not found.ok:
        return found
    if delivery.channel == "statusio":
        if delivery.payload.get("path") != "incident/create":
            return found
        other = db.session.scalar(select(Incident.id).where(
            Incident.statusio_incident_id == found.external_id,
            Incident.id != delivery.update.incident_id))
    else:
        other = db.session.scalar(select(Delivery.id).where(
            Delivery.channel == delivery.channel, Delivery.external_id == found.external_id,
            Delivery.status == S.SENT.value, Delivery.id != delivery.id))
    return None if other is not None else found


def post_context_for(delivery: Delivery) -> PostContext:
    update_row = delivery.update
    incident = update_row.incident
    previous = db.session.scalar(
        select(Update.state).where(Update.incident_id == incident.id,
                                   Update.publish_seq < update_row.publish_seq)
        .order_by(Update.publish_seq.desc()).limit(1))
    return PostContext(
        update_id=update_row.id, incident_id=incident.id, title=incident.title,
        text=update_row.text_for(delivery.channel), state=update_row.state,
        status=update_row.status, severity=incident.severity,
        components=tuple(incident.components), issue_url=incident.issue_url or "",
        status_page_url=current_app.config["STATUS_PAGE_URL"],
        statusio_incident_id=incident.statusio_incident_id, previous_state=previous,
        twitter_last_tweet_id=incident.twitter_last_tweet_id,
        slack_channel_id=incident.slack_channel_id, slack_thread_ts=incident.slack_thread_ts,
        statusio_notify=update_row.statusio_notify,  # issue 11: per-update subscriber flags
    )


def _record(claim: Claim, *, now: datetime, status: str,
            keep_until: datetime | None = None, **values) -> bool:
    """Writes the outcome and releases the lease (or, with keep_until, keeps it for an inline
    retry), only if this runner still holds it."""
    done = status not in (S.PENDING.value, S.WAITING.value, S.SENDING.value)
    values.setdefault("finished_at", now if done else None)
    lease = ({"lease_until": keep_until} if keep_until
             else {"lease_token": None, "lease_until": None})
    result = db.session.execute(update(Delivery).where(
        Delivery.id == claim.delivery_id, Delivery.lease_token == claim.token).values(
        status=status, updated_at=now, **lease, **values))
    db.session.commit()
    if result.rowcount != 1:
        log.warning("delivery %s: lease lost; outcome %s not recorded", claim.delivery_id,
                    status)
    return result.rowcount == 1


def _record_sent(claim: Claim, result: ChannelResult, *, now: datetime) -> None:
    """Sent: the delivery and, in the same transaction, where the incident's thread goes on."""
    delivery = db.session.get(Delivery, claim.delivery_id)
    incident_id = delivery.update.incident_id
    lock_incident(incident_id)  # lock order everywhere: incident, then its deliveries
    marked = db.session.execute(update(Delivery).where(
        Delivery.id == claim.delivery_id, Delivery.lease_token == claim.token).values(
        status=S.SENT.value, external_id=result.external_id or delivery.external_id,
        outcome_unknown=False, retryable=False, next_attempt_at=None, error=None,
        lease_token=None, lease_until=None, finished_at=now, updated_at=now)).rowcount == 1
    thread = {k: v for k, v in result.thread.items() if k in THREAD_FIELDS and v}
    if marked and thread:
        db.session.execute(update(Incident).where(Incident.id == incident_id).values(**thread))
    db.session.commit()
    if not marked:
        log.warning("delivery %s: lease lost; sent as %s but not recorded here",
                    claim.delivery_id, result.external_id)
