"""Sending: each channel of an update in its own thread, claimed before any call; retries
that cannot duplicate a post; recovery of deliveries left behind by a crash (the clock's job).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app
from sqlalchemy import func, or_, select, update

from cmoc.channels import Channel, ChannelResult, PostContext
from cmoc.channels.registry import build_channels, build_statusio
from cmoc.channels.statusio import StatusIO
from cmoc.enums import DeliveryStatus, UpdatePhase
from cmoc.extensions import db
from cmoc.models import Delivery, Incident, Update
from cmoc.services.components import component_catalog, ensure_components
from cmoc.timeutil import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    inline_attempts: int = 3          # attempts within one publish
    max_attempts: int = 6             # attempts in all, counting the clock's retries
    backoff_seconds: float = 1.0      # doubled after each failed attempt
    max_inline_wait: float = 10.0     # a longer Retry-After is left to the clock
    stale_after: timedelta = timedelta(seconds=90)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> RetryPolicy:
        return cls(
            inline_attempts=int(config.get("PUBLISH_INLINE_ATTEMPTS", 3)),
            max_attempts=int(config.get("PUBLISH_MAX_ATTEMPTS", 6)),
            backoff_seconds=float(config.get("PUBLISH_BACKOFF_SECONDS", 1.0)),
            max_inline_wait=float(config.get("PUBLISH_MAX_INLINE_WAIT", 10.0)),
            stale_after=timedelta(seconds=float(config.get("PUBLISH_STALE_SECONDS", 90))),
        )


def channels_for(app: Flask, *, fetch_components: bool = False) -> dict[str, Channel]:
    """The adapters; with fetch_components, status.io's component ids are loaded if missing."""
    if fetch_components:
        ensure_components(statusio=statusio_for(app), now=utcnow())
    return build_channels(app.config, components=component_catalog(app.config))


def statusio_for(app: Flask) -> StatusIO:
    """Only the status.io adapter (component list and refresh need nothing else)."""
    return build_statusio(app.config, components=component_catalog(app.config))


def run_deliveries(app: Flask, update_id: int, *, sleep: Callable[[float], None] = time.sleep,
                   clock: Callable[[], datetime] = utcnow) -> None:
    """Sends the update's pending deliveries concurrently, then settles the update."""
    with app.app_context():
        ids = list(db.session.scalars(select(Delivery.id).where(
            Delivery.update_id == update_id,
            Delivery.status == DeliveryStatus.PENDING.value)))
        channels = channels_for(app, fetch_components=bool(ids))
        policy = RetryPolicy.from_config(app.config)
        db.session.remove()
    if ids:
        with ThreadPoolExecutor(max_workers=len(ids), thread_name_prefix="deliver") as pool:
            futures = [pool.submit(_deliver_in_context, app, delivery_id, channels, policy,
                                   sleep, clock) for delivery_id in ids]
            for future in futures:
                future.result()
    with app.app_context():
        settle_update(update_id)
        db.session.remove()


def start_background(app: Flask, update_id: int, *, wait_seconds: float) -> bool:
    """Runs the deliveries in a thread; waits up to `wait_seconds`. True when all settled."""
    thread = threading.Thread(target=run_deliveries, args=(app, update_id), daemon=True,
                              name=f"publish-{update_id}")
    thread.start()
    thread.join(wait_seconds)
    return not thread.is_alive()


def _deliver_in_context(app, delivery_id, channels, policy, sleep, clock) -> None:
    with app.app_context():
        try:
            deliver(delivery_id=delivery_id, channels=channels, policy=policy, sleep=sleep,
                    clock=clock)
        except Exception:
            # Never lose the error: the delivery stays claimed and the clock resumes it.
            log.exception("delivery %s crashed", delivery_id)
            raise
        finally:
            db.session.remove()


def _context(delivery: Delivery) -> PostContext:
    update_row = delivery.update
    incident = update_row.incident
    previous = db.session.scalar(
        select(Update.state).where(Update.incident_id == incident.id,
                                   Update.phase == UpdatePhase.PUBLISHED.value,
                                   Update.id != update_row.id)
        .order_by(Update.published_at.desc()).limit(1))
    return PostContext(
        update_id=update_row.id, incident_id=incident.id, title=incident.title,
        text=update_row.text_for(delivery.channel), state=update_row.state,
        status=update_row.status, severity=incident.severity,
        components=tuple(incident.components), issue_url=incident.issue_url or "",
        status_page_url=current_app.config["STATUS_PAGE_URL"],
        statusio_incident_id=incident.statusio_incident_id, previous_state=previous,
        twitter_last_tweet_id=incident.twitter_last_tweet_id,
        slack_channel_id=incident.slack_channel_id, slack_thread_ts=incident.slack_thread_ts,
    )


def deliver(*, delivery_id: int, channels: dict[str, Channel], policy: RetryPolicy,
            sleep: Callable[[float], None] = time.sleep,
            clock: Callable[[], datetime] = utcnow) -> DeliveryStatus | None:
    """Sends one pending delivery (claiming it first). Idempotent: returns None if not ours."""
    now = clock()
    claimed = db.session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.status == DeliveryStatus.PENDING.value)
        .values(status=DeliveryStatus.SENDING.value, started_at=now, updated_at=now)
    ).rowcount == 1
    db.session.commit()
    if not claimed:
        return None
    delivery = db.session.get(Delivery, delivery_id)
    channel = channels[delivery.channel]
    # A retry after an unknown outcome re-sends the very same payload (same text, same
    # thread), so the remote's duplicate check and our look-up both work.
    if not (delivery.outcome_unknown and delivery.payload):
        delivery.payload = channel.build(_context(delivery))
        db.session.commit()
    payload = delivery.payload
    if "skip" in payload:
        return _finish(delivery, DeliveryStatus.SKIPPED, error=payload["skip"], clock=clock)
    if not channel.configured:
        return _finish(delivery, DeliveryStatus.DRY_RUN,
                       error="Dry-run: no credentials for this channel; nothing was sent.",
                       clock=clock)
    attempt = 0
    while True:
        result = None
        if delivery.outcome_unknown:
            result = channel.find_existing(payload)
            if result is not None and not result.ok:
                # Could not look: keep it unknown and let the clock look again later.
                return _failed(delivery, result, policy=policy, clock=clock,
                               keep_unknown=True)
        if result is None:
            attempt += 1
            delivery.attempts += 1
            delivery.updated_at = clock()
            db.session.commit()
            result = channel.send(payload)
            if result.duplicate and delivery.outcome_unknown:
                # The earlier, unanswered attempt did go out.
                result = ChannelResult.sent(delivery.external_id)
        if result.ok:
            return _sent(delivery, result, clock=clock)
        delivery.outcome_unknown = result.outcome_unknown
        wait = result.retry_after if result.retry_after is not None else (
            policy.backoff_seconds * 2 ** (attempt - 1))
        can_retry = result.retryable or result.outcome_unknown
        if (not can_retry or attempt >= policy.inline_attempts
                or delivery.attempts >= policy.max_attempts or wait > policy.max_inline_wait):
            return _failed(delivery, result, policy=policy, clock=clock, wait=wait)
        delivery.error = f"{result.error} (retrying in {wait:.0f}s)"
        db.session.commit()
        sleep(wait)


def _sent(delivery: Delivery, result: ChannelResult, *, clock) -> DeliveryStatus:
    incident = db.session.get(Incident, delivery.update.incident_id)
    for key, value in result.thread.items():
        if hasattr(incident, key) and value:
            setattr(incident, key, value)
    delivery.external_id = result.external_id or delivery.external_id
    delivery.outcome_unknown = False
    return _finish(delivery, DeliveryStatus.SENT, error=None, clock=clock)


def _failed(delivery: Delivery, result: ChannelResult, *, policy: RetryPolicy, clock,
            wait: float | None = None, keep_unknown: bool = False) -> DeliveryStatus:
    automatic = (result.retryable or delivery.outcome_unknown or keep_unknown) and \
        delivery.attempts < policy.max_attempts
    delivery.retryable = automatic
    delivery.next_attempt_at = (clock() + timedelta(seconds=wait or policy.backoff_seconds)
                                if automatic else None)
    if keep_unknown:
        delivery.outcome_unknown = True
    return _finish(delivery, DeliveryStatus.FAILED, error=result.error, clock=clock)


def _finish(delivery: Delivery, status: DeliveryStatus, *, error: str | None,
            clock) -> DeliveryStatus:
    now = clock()
    delivery.status = status.value
    delivery.error = error
    delivery.finished_at = now
    delivery.updated_at = now
    db.session.commit()
    return status


def settle_update(update_id: int) -> bool:
    """Marks the update published once no delivery is pending or in flight."""
    unsettled = db.session.scalar(select(func.count(Delivery.id)).where(
        Delivery.update_id == update_id,
        Delivery.status.in_([DeliveryStatus.PENDING.value, DeliveryStatus.SENDING.value])))
    if unsettled:
        return False
    db.session.execute(update(Update).where(
        Update.id == update_id, Update.phase == UpdatePhase.PUBLISHING.value
    ).values(phase=UpdatePhase.PUBLISHED.value))
    db.session.commit()
    return True


def resume_deliveries(app: Flask, *, now: datetime | None = None,
                      sleep: Callable[[float], None] = time.sleep) -> dict[str, int]:
    """The clock's job: picks up stale pending/sending deliveries and due automatic retries.

    Idempotent and safe to run from several processes: every hand-over is a conditional UPDATE.
    """
    now = now or utcnow()
    policy = RetryPolicy.from_config(app.config)
    stale = now - policy.stale_after
    counts = {"stale_pending": 0, "stale_sending": 0, "retries": 0, "settled": 0}
    with app.app_context():
        # In flight too long: the worker died mid-call, so the outcome is unknown.
        counts["stale_sending"] = db.session.execute(
            update(Delivery)
            .where(Delivery.status == DeliveryStatus.SENDING.value, Delivery.started_at < stale)
            .values(status=DeliveryStatus.PENDING.value, outcome_unknown=True, updated_at=now)
        ).rowcount
        counts["retries"] = db.session.execute(
            update(Delivery)
            .where(Delivery.status == DeliveryStatus.FAILED.value, Delivery.retryable.is_(True),
                   Delivery.next_attempt_at <= now, Delivery.attempts < policy.max_attempts)
            .values(status=DeliveryStatus.PENDING.value, updated_at=now)
        ).rowcount
        db.session.commit()
        # Pending long enough that no publishing worker is on them, or just reopened above.
        update_ids = set(db.session.scalars(select(Delivery.update_id).where(
            Delivery.status == DeliveryStatus.PENDING.value,
            or_(Delivery.updated_at < stale, Delivery.updated_at == now))))
        counts["stale_pending"] = len(update_ids)
        waiting = list(db.session.scalars(select(Update.id).where(
            Update.phase == UpdatePhase.PUBLISHING.value)))
        db.session.remove()
    for update_id in sorted(update_ids):
        run_deliveries(app, update_id, sleep=sleep, clock=lambda: now)
    with app.app_context():
        for update_id in waiting:
            if update_id not in update_ids and settle_update(update_id):
                counts["settled"] += 1
        db.session.remove()
    return counts
