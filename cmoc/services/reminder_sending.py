"""Sends claimed reminders in bulk: prepared and recorded in batches, posted over a bounded
pool, with Slack's Retry-After honoured per target.

Each batch's payloads and targets are recorded and committed before any of it is posted, so a
crash mid-pass leaves rows in `sending` that the next pass looks up in Slack before sending
again. Only the pool's threads talk to Slack and only the calling thread talks to the database:
a reminder costs one HTTP call plus its share of a few batched statements. Just before a batch
is posted, reminders whose incident was published, snoozed or resolved meanwhile are cancelled.
When Slack answers 429 for a target (a channel or a DM), the rest of that target's reminders
wait out its Retry-After (capped; retried at that time, not counted as attempts) while
reminders for other targets go on. One reminder that cannot be built or posted fails alone.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import selectinload

from cmoc.channels.http import make_session
from cmoc.channels.registry import channel_settings, http_timeout
from cmoc.channels.slack import Slack
from cmoc.extensions import db
from cmoc.models import Incident, Reminder
from cmoc.services.reminder_messages import reminder_contexts, reminder_message, reminder_target
from cmoc.services.slack_blocks import saved_details
from cmoc.services.slack_holds import MAX_HOLD_SECONDS, HoldOff, holds
from cmoc.timeutil import utcnow

log = logging.getLogger(__name__)
SEND_WORKERS = 16
# Reminders prepared and recorded per commit before they are posted; with outcomes recorded
# every SETTLE_EVERY, at most about BATCH + SETTLE_EVERY posts await their record at a crash.
BATCH = 200
SETTLE_EVERY = 50
REMINDER_EVENT = "cmoc_reminder"
# A failed send is tried again this long after, unless Slack said how long to wait.
RETRY_AFTER = timedelta(seconds=30)
NOBODY = ("Nobody to remind: set your Slack member id on your profile, or "
          "SLACK_REMINDER_CHANNEL (and SLACK_ESCALATION_CHANNEL for escalations).")


@dataclass(frozen=True)
class Job:
    reminder_id: int
    payload: dict[str, Any]
    target: str                      # where the payload goes (a hold is per target)
    look_first: bool
    since: datetime
    attempts: int
    outcome_unknown: bool


@dataclass(frozen=True)
class Outcome:
    status: str                      # sent | failed
    attempted: bool = False          # a post was made (counts toward MAX_ATTEMPTS)
    external_id: str | None = None
    error: str | None = None
    outcome_unknown: bool | None = None  # None: leave as it was
    wait: float | None = None        # seconds before it may be tried again
    at: datetime | None = None       # when Slack answered (the lag figures use it)


def reminder_slack(app: Flask, *, workers: int) -> Slack:
    """The Slack client reminders are posted with (any channel: each payload names its own)."""
    settings = channel_settings(app.config)
    return Slack(session=make_session(timeout=http_timeout(app.config), pool_maxsize=workers),
                 base_url=settings["SLACK_API_URL"], token=settings.get("SLACK_BOT_TOKEN"),
                 channel=None, group_id=None)


def send_claimed(app: Flask, reminder_ids: list[int], *, look_first: set[int], now: datetime,
                 build_blocks) -> Counter:
    """Sends the claimed reminders `reminder_ids` (status `sending`); returns outcome counts.
    `build_blocks(incident, text, draft_id, saved_nmu_detail)` makes the message's blocks
    (buttons)."""
    counts: Counter = Counter()
    if not reminder_ids:
        return counts
    workers = min(SEND_WORKERS, len(reminder_ids))
    slack = reminder_slack(app, workers=workers)
    hold = holds(app)
    started = time.monotonic()

    def clock() -> datetime:
        """The pass's `now` moved on by the time it has taken (a hold runs from Slack's
        answer, however long the pass has been going)."""
        return now + timedelta(seconds=time.monotonic() - started)

    with app.app_context(), ThreadPoolExecutor(workers, thread_name_prefix="remind") as pool:
        in_flight: list[tuple[Future, Job]] = []
        try:
            for start in range(0, len(reminder_ids), BATCH):
                batch = reminder_ids[start:start + BATCH]
                jobs = _prepare(app, batch, slack=slack, look_first=look_first, now=now,
                                counts=counts, build_blocks=build_blocks)
                # The next batch was prepared while this one was posted.
                _settle(in_flight, now=now, counts=counts, clock=clock)
                in_flight = []
                jobs = _still_due(jobs, now=now, counts=counts)
                in_flight = [(pool.submit(_deliver, slack, job, hold, clock), job)
                             for job in jobs]
        except Exception:
            db.session.rollback()
            raise
        finally:
            # Posts made are recorded whatever happened to the rest of the pass.
            _settle(in_flight, now=now, counts=counts, clock=clock)
            db.session.remove()
    return counts


def _still_due(jobs: list[Job], *, now: datetime, counts: Counter) -> list[Job]:
    """Cancels, just before posting, the reminders whose incident was published, snoozed or
    resolved since the batch was prepared."""
    if not jobs:
        return jobs
    due = set(db.session.scalars(select(Reminder.id).join(
        Incident, Incident.id == Reminder.incident_id).where(
        Reminder.id.in_([j.reminder_id for j in jobs]), Incident.resolved_at.is_(None),
        Incident.next_update_due_at == Reminder.due_at)))
    gone = [j.reminder_id for j in jobs if j.reminder_id not in due]
    if gone:
        db.session.execute(update(Reminder).where(
            Reminder.id.in_(gone), Reminder.status == "sending").values(
            status="cancelled", updated_at=now,
            error="Incident resolved, updated or snoozed before sending."))
        db.session.commit()
        counts["cancelled"] += len(gone)
    return [j for j in jobs if j.reminder_id in due]


def _prepare(app: Flask, ids: list[int], *, slack: Slack, look_first: set[int], now: datetime,
             counts: Counter, build_blocks) -> list[Job]:
    """Loads a batch, settles what needs no post, records the rest's payload; one commit."""
    config = channel_settings(app.config)
    reminders = db.session.scalars(select(Reminder).where(Reminder.id.in_(ids)).options(
        selectinload(Reminder.incident).selectinload(Incident.cmoc),
        selectinload(Reminder.incident).selectinload(Incident.declared_by))).all()
    position = {rid: n for n, rid in enumerate(ids)}
    reminders.sort(key=lambda r: position[r.id])   # posted in the order they were claimed
    live = {r.id: r.incident for r in reminders if r.incident.resolved_at is None
            and r.incident.next_update_due_at == r.due_at}
    contexts = reminder_contexts(list(live.values()))
    saved = saved_details(list({i.id for i in live.values()}))
    jobs = []
    # Rendering reads the database; the payloads set so far need no flush before it.
    with db.session.no_autoflush:
        for reminder in reminders:
            try:
                job = _prepare_one(reminder, live=live, contexts=contexts, saved=saved,
                                   config=config, slack=slack, look_first=look_first, now=now,
                                   counts=counts, build_blocks=build_blocks)
            except Exception as exc:
                # One reminder that cannot be built fails alone (and is tried again, bounded
                # by its attempts); the rest of the batch goes out.
                log.exception("Reminder %s could not be built", reminder.id)
                reminder.attempts += 1
                reminder.retry_at = now + RETRY_AFTER
                _close(reminder, "failed", now, f"Could not build the reminder "
                       f"({type(exc).__name__}).", counts)
                continue
            if job is not None:
                jobs.append(job)
    db.session.commit()
    return jobs


def _prepare_one(reminder: Reminder, *, live: dict, contexts: dict, saved: dict,
                 config: dict, slack: Slack, look_first: set[int], now: datetime,
                 counts: Counter, build_blocks) -> Job | None:
    """Builds one reminder's payload; settles it here when nothing is to be posted."""
    incident = reminder.incident
    if reminder.id not in live:
        # Resolved, published or snoozed since the claim: never remind.
        _close(reminder, "cancelled", now, "Incident resolved, updated or snoozed before "
               "sending.", counts)
        return None
    check = reminder.id in look_first
    target = reminder_target(incident, config, reminder.kind)
    if not (check and reminder.payload):
        context = contexts[incident.id]
        text = reminder_message(incident=incident, kind=reminder.kind, now=now,
                                base_url=config["BASE_URL"],
                                mention=config.get("SLACK_ESCALATION_MENTION"), **context)
        reminder.payload = {
            "channel": target or "<SLACK_REMINDER_CHANNEL>", "text": text,
            "blocks": build_blocks(incident, text, context["draft_id"],
                                   saved.get(incident.id, "")),
            "unfurl_links": False,
            "metadata": {"event_type": REMINDER_EVENT,
                         "event_payload": {"reminder_id": reminder.id}}}
    reminder.target = target
    if not slack.token:
        _close(reminder, "dry_run", now, "Dry-run: SLACK_BOT_TOKEN is not set.", counts)
        return None
    if not target:
        # Final: retrying cannot help until someone sets where reminders go; the dashboard
        # shows it on the incident.
        _close(reminder, "undeliverable", now, NOBODY, counts)
        return None
    reminder.updated_at = now
    return Job(reminder.id, reminder.payload, reminder.payload["channel"], check,
               reminder.created_at, reminder.attempts, reminder.outcome_unknown)


def _deliver(slack: Slack, job: Job, hold: HoldOff, clock) -> Outcome:
    """Posts one reminder (in a pool thread: no database here), after looking for it in Slack
    when an earlier attempt may have posted it. Never raises: a surprise is a failure whose
    outcome is unknown (looked up before any resend)."""
    try:
        return _post(slack, job, hold, clock)
    except Exception as exc:
        log.exception("Reminder %s: posting failed", job.reminder_id)
        return Outcome("failed", attempted=True, outcome_unknown=True,
                       error=f"Unexpected error while posting ({type(exc).__name__}).")


def _post(slack: Slack, job: Job, hold: HoldOff, clock) -> Outcome:
    wait = hold.left(job.target, clock())
    if wait > 0:
        # Not asked: a reminder that may already be in Slack stays "to be looked up".
        return Outcome("failed", wait=wait, outcome_unknown=True if job.look_first else None,
                       error=f"Slack is rate limiting {job.target}: tried again after "
                             f"{wait:.0f} s.")
    if job.look_first:
        found = slack.find_existing(job.payload, since=job.since)
        if found is not None and found.ok:
            return Outcome("sent", external_id=found.external_id, outcome_unknown=False,
                           at=utcnow())
        if found is not None:
            if found.retry_after:
                hold.hold(job.target, clock(), found.retry_after)
            # Slack could not be asked: resending now might post it twice.
            return Outcome("failed", outcome_unknown=True, wait=found.retry_after,
                           error=f"Could not check Slack for it: {found.error}")
    result = slack.send(job.payload)
    if result.ok:
        return Outcome("sent", attempted=True, external_id=result.external_id,
                       outcome_unknown=result.outcome_unknown, at=utcnow())
    # A rate limit means Slack did not post it: not an attempt (paced by Retry-After).
    limited = (result.retryable and result.retry_after is not None
               and not result.outcome_unknown)
    if result.retry_after:
        hold.hold(job.target, clock(), result.retry_after)
    return Outcome("failed", attempted=not limited, error=result.error,
                   wait=result.retry_after, outcome_unknown=result.outcome_unknown)


def _settle(in_flight: list[tuple[Future, Job]], *, now: datetime, counts: Counter,
            clock) -> None:
    """Records outcomes as they come: an UPDATE by primary key per SETTLE_EVERY (the rows are
    not loaded again; the job carries what the record needs)."""
    futures = {future: job for future, job in in_flight}
    rows: list[dict[str, Any]] = []
    for future in as_completed(futures):
        outcome: Outcome = future.result()
        job = futures[future]
        sent = outcome.status == "sent"
        wait = (timedelta(seconds=min(outcome.wait, MAX_HOLD_SECONDS)) if outcome.wait
                else RETRY_AFTER)
        rows.append({
            "id": job.reminder_id, "status": outcome.status, "error": outcome.error,
            "updated_at": now, "attempts": job.attempts + outcome.attempted,
            "outcome_unknown": (job.outcome_unknown if outcome.outcome_unknown is None
                                else outcome.outcome_unknown),
            "external_id": outcome.external_id if sent else None,
            "sent_at": outcome.at if sent else None,
            "retry_at": None if sent else clock() + wait})
        counts[outcome.status] += 1
        if len(rows) >= SETTLE_EVERY:
            _record(rows)
            rows = []
    _record(rows)


def _record(rows: list[dict[str, Any]]) -> None:
    if rows:
        # Only rows still in flight: another pass that settled one meanwhile (a look-up that
        # found it) is not overwritten.
        db.session.execute(update(Reminder).where(Reminder.status == "sending"), rows,
                           execution_options={"synchronize_session": None})
    db.session.commit()


def _close(reminder: Reminder, status: str, now: datetime, error: str, counts: Counter) -> None:
    reminder.status, reminder.error, reminder.updated_at = status, error, now
    counts[status] += 1
