"""Actions from Slack: who may act, claiming an action once, doing it, and what it says.

Every action is keyed by (action, incident, due time) in `slack_actions`: the first click
inserts the row and acts, a second click on the same message finds it and is told who acted.
"No material updates" also publishes through a draft whose idempotency key is derived from the
same key, so the publish path's exactly-once rules hold even if two rows were ever attempted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from cmoc.enums import CHANNEL_LABELS, DeliveryStatus, Role
from cmoc.extensions import db
from cmoc.messages import join_names
from cmoc.models import Delivery, Incident, Reminder, SlackAction, Update, User
from cmoc.services import ValidationError
from cmoc.services.audit import record_now
from cmoc.services.drafts import AlreadyPublished, DraftSettings, save_draft
from cmoc.services.promises import PromiseAtStake, snooze
from cmoc.services.publishing import PublishConflict, start_publish
from cmoc.services.reminders import take_over
from cmoc.services.slack_blocks import SNOOZE_MINUTES, ActionRef, nmu_draft, nmu_preview
from cmoc.timeutil import fmt_utc

ACTIONS = ("nmu", "snooze", "snooze_break", "take_over")
RETRYABLE = ("refused", "failed")
ABANDONED = timedelta(minutes=2)
ACTION_LABELS = {"nmu": "posted “No material updates”", "snooze": "snoozed",
                 "snooze_break": "snoozed past the promise", "take_over": "took over"}


@dataclass
class Outcome:
    """What an action did: `status` done | refused | failed | stale, a line for the message,
    the update to deliver (nmu), and for a refused snooze the offer to snooze anyway."""

    status: str
    text: str
    update_id: int | None = None
    offer_break: bool = False


def find_user(*, slack_user_id: str, email_of: Callable[[str], str | None]) -> User | None:
    """The active cmoc user of a Slack member: by the member id on their profile, else by the
    email Slack has for them (users.info): the email on their profile (or from OpenID Connect
    sign-in), or a user name that is that email. Two accounts with it: nobody (ambiguous)."""
    user = db.session.scalar(select(User).where(User.slack_user_id == slack_user_id,
                                                User.active.is_(True)).limit(1))
    if user is not None:
        return user
    email = email_of(slack_user_id)
    if not email:
        return None
    found = db.session.scalars(select(User).where(
        or_(func.lower(User.email) == email.lower(), func.lower(User.username) == email.lower()),
        User.active.is_(True)).limit(2)).all()
    return found[0] if len(found) == 1 else None


def refusal(*, user: User | None, slack_user_id: str, what: str, now: datetime) -> str:
    """Audits a Slack request from someone who may not act, and says why (ephemeral)."""
    record_now("slack.refused", actor=user, actor_name=None if user else f"slack:{slack_user_id}",
               now=now, after={"slack_user_id": slack_user_id, "request": what[:200],
                               "reason": "role" if user else "unknown_user"})
    if user is None:
        return ("cmoc does not know you: set your Slack member id on your cmoc profile "
                "(/profile), then try again.")
    return "Your cmoc role does not allow this: ask an admin for the cmoc role."


def may_act(user: User | None) -> bool:
    return user is not None and user.active and user.can(Role.CMOC)


def claim(*, action: str, ref: ActionRef, user: User, slack_user_id: str,
          now: datetime) -> tuple[SlackAction | None, bool]:
    """(row, True) when this click acts; (the earlier row, False) when another already did or
    is doing it. A refused or failed action may be claimed again, and so may one left pending
    for over two minutes (acting takes a second; the deliveries run after it)."""
    key = f"slack-{action}-{ref.incident_id}-{ref.due}"[:64]
    row = SlackAction(key=key, incident_id=ref.incident_id, action=action, user_id=user.id,
                      slack_user_id=slack_user_id, status="pending", created_at=now)
    db.session.add(row)
    try:
        db.session.commit()
        return row, True
    except IntegrityError:
        db.session.rollback()
    # A claim left pending by a process that died before acting may be taken over too.
    abandoned = (SlackAction.status == "pending") & (SlackAction.created_at < now - ABANDONED)
    again = db.session.execute(
        update(SlackAction).where(SlackAction.key == key,
                                  SlackAction.status.in_(RETRYABLE) | abandoned)
        .values(status="pending", user_id=user.id, slack_user_id=slack_user_id,
                created_at=now, finished_at=None, detail=None)).rowcount
    db.session.commit()
    existing = db.session.scalar(select(SlackAction).where(SlackAction.key == key))
    # None: the insert failed for another reason than an earlier claim (nothing to act on).
    return existing, bool(again) and existing is not None


def already(row: SlackAction) -> str:
    who = row.user.username if row.user else row.slack_user_id
    if row.status == "pending":
        return f"{who} is doing this already ({row.action})."
    return f"Already done: {row.detail or who + ' ' + ACTION_LABELS.get(row.action, '')}"


def perform(*, row: SlackAction, ref: ActionRef, settings: DraftSettings,
            now: datetime) -> Outcome:
    """Does the claimed action and records how it ended on the row."""
    incident = db.session.get(Incident, row.incident_id)
    user = db.session.get(User, row.user_id) if row.user_id else None
    if incident is None or user is None:
        return finish(row, Outcome("failed", "The incident or the user no longer exists."), now)
    name = user.username
    if row.action == "take_over" and not incident.is_resolved:
        take_over(incident=incident, actor=user, now=now)
        return finish(row, Outcome("done", f"{name} took over as CMOC at "
                                           f"{fmt_utc(now, with_date=False)}."), now)
    if incident.is_resolved or not ref.matches(incident):
        due = (fmt_utc(incident.next_update_due_at, with_date=False)
               if incident.next_update_due_at else "none")
        return finish(row, Outcome("stale", "Nothing done: this message is out of date (an "
                                            "update was published, or it was snoozed or "
                                            f"resolved); next update due: {due}."), now)
    if row.action in ("snooze", "snooze_break"):
        try:
            snooze(incident=incident, minutes=SNOOZE_MINUTES, actor=user, now=now,
                   break_promise=row.action == "snooze_break")
        except PromiseAtStake as exc:
            return finish(row, Outcome("refused", exc.errors["break_promise"],
                                       offer_break=True), now)
        except ValidationError as exc:
            return finish(row, Outcome("failed", " ".join(exc.errors.values())), now)
        broke = " (past the promised time: recorded as a broken promise)" if (
            row.action == "snooze_break") else ""
        due = fmt_utc(incident.next_update_due_at, with_date=False)
        return finish(row, Outcome("done", f"{name} snoozed {SNOOZE_MINUTES} min at "
                                           f"{fmt_utc(now, with_date=False)}{broke}: next "
                                           f"update due {due}."), now)
    return _publish_nmu(row=row, ref=ref, incident=incident, user=user, settings=settings,
                        now=now)


def _publish_nmu(*, row: SlackAction, ref: ActionRef, incident: Incident, user: User,
                 settings: DraftSettings, now: datetime) -> Outcome:
    # Rendered again now: what is published is what is current, not what the dialog showed.
    preview = nmu_preview(incident=incident, settings=settings, now=now, detail=ref.detail)
    if not preview.channels:
        return finish(row, Outcome("failed", "Not posted: " + " ".join(
            preview.errors.values())), now)
    draft = nmu_draft(incident, ref.detail)
    draft.channels = set(preview.channels)
    draft.idempotency_key = row.key
    try:
        saved = save_draft(incident=incident, draft=draft, author=user, settings=settings,
                           now=now)
        start_publish(update=saved, channels=set(preview.channels), confirm_public=False,
                      actor=user, cadence=settings.cadence, now=now, markers=settings.markers,
                      skip_blocked=True)
    except (AlreadyPublished, PublishConflict):
        return finish(row, Outcome("stale", "Already published."), now)
    except ValidationError as exc:
        return finish(row, Outcome("failed", "Not posted: " + " ".join(exc.errors.values())),
                      now)
    row.update_id = saved.id
    labels = join_names([CHANNEL_LABELS[c] for c in preview.channels])
    return finish(row, Outcome("done", f"{user.username} posted “No material updates” to "
                                       f"{labels} at {fmt_utc(now, with_date=False)}.",
                               update_id=saved.id), now)


def finish(row: SlackAction, outcome: Outcome, now: datetime) -> Outcome:
    row.status = "done" if outcome.status in ("done", "stale") else outcome.status
    row.detail = outcome.text[:2000]
    row.finished_at = now
    db.session.commit()
    return outcome


def delivery_summary(update_id: int) -> str:
    """How the update's deliveries ended, and the next due time it set."""
    db.session.expire_all()
    found = db.session.get(Update, update_id)
    rows = db.session.scalars(select(Delivery).where(
        Delivery.update_id == update_id,
        Delivery.status != DeliveryStatus.SKIPPED.value)).all()
    parts = []
    for d in rows:
        status = DeliveryStatus(d.status).value.replace("_", " ")
        parts.append(f"{CHANNEL_LABELS[d.channel]}: {status}"
                     + (f" ({d.error})" if d.status == DeliveryStatus.FAILED.value else ""))
    due = (fmt_utc(found.next_due_at, with_date=False) if found and found.next_due_at
           else "none")
    return " · ".join(parts) + f". Next update due {due}."


def active_incidents() -> list[Incident]:
    return list(db.session.scalars(select(Incident).where(Incident.resolved_at.is_(None))
                                   .order_by(Incident.next_update_due_at.asc(),
                                             Incident.id.asc())))


def last_reminders(incident_ids: list[int]) -> dict[int, Reminder]:
    """The newest reminder per incident that was meant to go out (not superseded)."""
    if not incident_ids:
        return {}
    latest = (select(func.max(Reminder.id)).where(
        Reminder.incident_id.in_(incident_ids),
        Reminder.status.not_in(["superseded"])).group_by(Reminder.incident_id))
    rows = db.session.scalars(select(Reminder).where(Reminder.id.in_(latest))).all()
    return {r.incident_id: r for r in rows}


def last_actions(incident_ids: list[int]) -> dict[int, SlackAction]:
    """The newest action taken from Slack per incident."""
    if not incident_ids:
        return {}
    latest = (select(func.max(SlackAction.id)).where(SlackAction.incident_id.in_(incident_ids))
              .group_by(SlackAction.incident_id))
    rows = db.session.scalars(select(SlackAction).where(SlackAction.id.in_(latest))).all()
    return {r.incident_id: r for r in rows}
