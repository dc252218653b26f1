"""Sending: each channel's lane in its own thread, claimed (with a lease) before any call;
retries that cannot duplicate a post; look-ups before any resend after an unclear answer;
recovery of work left behind by a crash (the clock's job). The order rules are in `lanes`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from flask import Flask, current_app
from sqlalchemy import and_, or_, select, update

from cmoc.channels import Channel
from cmoc.channels.registry import build_channels, build_statusio
from cmoc.channels.statusio import StatusIO
from cmoc.enums import DeliveryStatus, UpdatePhase
from cmoc.extensions import db
from cmoc.models import Delivery, Update
from cmoc.services.components import component_catalog, ensure_components
from cmoc.services.delivery_steps import (  # noqa: F401  (re-exported for callers and tests)
    LEAVE,
    RetryPolicy,
    begin_send,
    look_step,
    post_context_for,
    send_step,
)
from cmoc.services.lanes import claim_next
from cmoc.services.leases import KEEPER
from cmoc.timeutil import utcnow

log = logging.getLogger(__name__)
S = DeliveryStatus


def channels_for(app: Flask, *, fetch_components: bool = False) -> dict[str, Channel]:
    """The adapters; with fetch_components, status.io's component ids are loaded if missing."""
    if fetch_components:
        ensure_components(statusio=statusio_for(app), now=utcnow())
    return build_channels(app.config, components=component_catalog(app.config))


def statusio_for(app: Flask) -> StatusIO:
    """Only the status.io adapter (component list and refresh need nothing else)."""
    return build_statusio(app.config, components=component_catalog(app.config))


# -- running lanes -------------------------------------------------------------------------
def run_deliveries(app: Flask, update_id: int, *, sleep: Callable[[float], None] = time.sleep,
                   clock: Callable[[], datetime] = utcnow) -> None:
    """Works the lanes of the channels this update chose (concurrently), then settles."""
    with app.app_context():
        incident_id = db.session.scalar(select(Update.incident_id).where(Update.id == update_id))
        lanes = list(db.session.scalars(select(Delivery.channel).where(
            Delivery.update_id == update_id, Delivery.status != S.SKIPPED.value)))
        db.session.remove()
    run_lanes(app, [(incident_id, channel) for channel in lanes], sleep=sleep, clock=clock)


def run_lanes(app: Flask, lanes: list[tuple[int, str]], *,
              sleep: Callable[[float], None] = time.sleep,
              clock: Callable[[], datetime] = utcnow) -> None:
    if lanes:
        with app.app_context():
            channels = channels_for(app, fetch_components=True)
            db.session.remove()
        policy = RetryPolicy.from_config(app.config)
        with ThreadPoolExecutor(max_workers=min(len(lanes), 16),
                                thread_name_prefix="deliver") as pool:
            futures = [pool.submit(_lane_in_context, app, incident_id, channel, channels,
                                   policy, sleep, clock) for incident_id, channel in lanes]
            for future in futures:
                future.result()
    with app.app_context():
        for incident_id in sorted({incident_id for incident_id, _ in lanes}):
            settle_updates(incident_id)
        db.session.remove()


def start_background(app: Flask, update_id: int, *, wait_seconds: float) -> bool:
    """Runs the deliveries in a thread; waits up to `wait_seconds`. True when all settled."""
    thread = threading.Thread(target=run_deliveries, args=(app, update_id), daemon=True,
                              name=f"publish-{update_id}")
    thread.start()
    thread.join(wait_seconds)
    return not thread.is_alive()


def _lane_in_context(app, incident_id, channel, channels, policy, sleep, clock) -> None:
    with app.app_context():
        try:
            run_lane(incident_id=incident_id, channel=channels[channel], policy=policy,
                     sleep=sleep, clock=clock)
        except Exception:
            # Never lose the error: the delivery stays claimed and the clock resumes it.
            log.exception("lane %s/%s crashed", incident_id, channel)
            raise
        finally:
            db.session.remove()


def run_lane(*, incident_id: int, channel: Channel, policy: RetryPolicy,
             sleep: Callable[[float], None] = time.sleep,
             clock: Callable[[], datetime] = utcnow) -> None:
    """Works one lane until nothing is left to do now, or a wait is for the clock.

    While it works on a delivery (and during a short wait before an inline retry) the runner's
    lease is renewed in the background, so nobody else starts the delivery meanwhile; after
    the wait the lane is planned again (a newer update published during the wait supersedes it
    instead of a resend).
    """
    app = current_app._get_current_object()
    sends: dict[int, int] = {}   # delivery id -> sends in this run
    held: str | None = None      # the lease token kept across an inline wait
    while True:
        claim = claim_next(incident_id=incident_id, channel=channel.name, now=clock(),
                           lease=policy.lease, holder=held)
        held = None
        if claim is None:
            return
        # The lease is renewed in the background while this runner works on the delivery.
        with KEEPER.holding(app, claim.delivery_id, claim.token, lease=policy.lease,
                            clock=clock):
            if claim.action == "look":
                look_step(claim, channel=channel, policy=policy, clock=clock)
                continue
            sends[claim.delivery_id] = sends.get(claim.delivery_id, 0) + 1
            wait = send_step(claim, channel=channel, policy=policy, clock=clock,
                             inline=sends[claim.delivery_id] < policy.inline_attempts)
            if wait is None:
                continue
            if wait is LEAVE:
                return               # retried enough for now: the clock goes on later
            held = claim.token
            sleep(wait)


def settle_updates(incident_id: int) -> int:
    """Marks the incident's publishing updates published once none of their deliveries is
    queued, waiting, in flight, due for an automatic retry or a look-up. Returns how many."""
    unsettled = or_(
        Delivery.status.in_([S.PENDING.value, S.WAITING.value, S.SENDING.value]),
        and_(Delivery.status == S.FAILED.value,
             or_(Delivery.retryable.is_(True), Delivery.outcome_unknown.is_(True))))
    busy = select(Delivery.update_id).where(unsettled)
    settled = db.session.execute(update(Update).where(
        Update.incident_id == incident_id, Update.phase == UpdatePhase.PUBLISHING.value,
        Update.id.not_in(busy)).values(phase=UpdatePhase.PUBLISHED.value)).rowcount
    db.session.commit()
    return settled


def settle_update(update_id: int) -> bool:
    """Settles the update's incident; True when this update is published now."""
    incident_id = db.session.scalar(select(Update.incident_id).where(Update.id == update_id))
    settle_updates(incident_id)
    return db.session.scalar(select(Update.phase).where(Update.id == update_id)) == \
        UpdatePhase.PUBLISHED.value


# -- the clock's job -----------------------------------------------------------------------
def resume_deliveries(app: Flask, *, now: datetime | None = None,
                      sleep: Callable[[float], None] = time.sleep) -> dict[str, int]:
    """Works every lane with something to do: deliveries whose runner died (lease expired),
    retries and look-ups that are due, and queued or waiting ones nobody is working on.

    Idempotent and safe to run from several processes: every step is claimed under the
    incident's lock, and a live lease keeps everyone else off the lane.
    """
    now = now or utcnow()
    policy = RetryPolicy.from_config(app.config)
    counts = {"stale_sending": 0, "retries": 0, "stale_pending": 0, "settled": 0}
    conditions = {
        "stale_sending": and_(Delivery.status == S.SENDING.value,
                              or_(Delivery.lease_until.is_(None), Delivery.lease_until <= now)),
        "retries": and_(Delivery.status == S.FAILED.value, Delivery.next_attempt_at <= now,
                        or_(Delivery.retryable.is_(True), Delivery.outcome_unknown.is_(True)),
                        or_(Delivery.lease_until.is_(None), Delivery.lease_until <= now)),
        "stale_pending": and_(Delivery.status.in_([S.PENDING.value, S.WAITING.value]),
                              Delivery.updated_at <= now - policy.pending_grace),
    }
    lanes: set[tuple[int, str]] = set()
    with app.app_context():
        for name, condition in conditions.items():
            rows = db.session.execute(select(Update.incident_id, Delivery.channel).join(
                Update, Update.id == Delivery.update_id).where(condition)).all()
            counts[name] = len(rows)
            lanes.update((incident_id, channel) for incident_id, channel in rows)
        publishing = set(db.session.scalars(select(Update.incident_id).where(
            Update.phase == UpdatePhase.PUBLISHING.value)))
        db.session.remove()
    run_lanes(app, sorted(lanes), sleep=sleep, clock=lambda: now)
    with app.app_context():
        for incident_id in sorted(publishing - {i for i, _ in lanes}):
            counts["settled"] += settle_updates(incident_id)
        db.session.remove()
    return counts
