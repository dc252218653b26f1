"""One-off notices that are not updates: the post-mortem link in the incident's Slack thread,
the CMOC's pings about the GitLab issue, the stakeholder messages (and their threads), the
label on the GitLab issue.

The same rules as every post: recorded before it is sent, claimed with a lease so one runner
sends it, an unclear answer looked up (Slack: by the metadata cmoc attaches) before any
resend, retried by the clock when that cannot double it. A reply waits for the message that
starts its thread (`parent`), and for the reply before it (`after`), so a thread keeps order.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError

from cmoc.channels import ChannelResult
from cmoc.channels.gitlab_api import GitLabApi, IssueRef
from cmoc.channels.http import make_session
from cmoc.channels.registry import build_gitlab_api, channel_settings, http_timeout
from cmoc.channels.slack import Slack, escape
from cmoc.extensions import db
from cmoc.models import Incident, Notice
from cmoc.timeutil import utcnow

log = logging.getLogger(__name__)
EVENT_TYPE = "cmoc_notice"
LEASE = timedelta(seconds=60)
MAX_ATTEMPTS = 5
SETTLED = ("sent", "dry_run")


def notice_key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:64]


def slack_payload(*, channel: str, text: str, escaped: bool = False,
                  thread_ts: str | None = None) -> dict[str, Any]:
    """A Slack message: `text` escaped (typed text never becomes a mention) unless the caller
    built it from escaped parts already."""
    body = text if escaped else escape(text)
    payload: dict[str, Any] = {
        "channel": channel, "text": body, "unfurl_links": False,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": body,
                                                "verbatim": True}}]}
    if thread_ts:
        payload["thread_ts"] = thread_ts
    return payload


def queue_notice(*, incident_id: int, kind: str, key: str, channel: str,
                 payload: dict[str, Any], now: datetime, actor_id: int | None = None,
                 parent_id: int | None = None, after_id: int | None = None,
                 update_id: int | None = None) -> Notice:
    """Records a notice (committed). The same (incident, kind, key) is one notice, however
    often it is asked for: the existing one is returned."""
    existing = db.session.scalar(select(Notice).where(
        Notice.incident_id == incident_id, Notice.kind == kind, Notice.key == key))
    if existing is not None:
        return existing
    notice = Notice(incident_id=incident_id, kind=kind, key=key, channel=channel,
                    status="pending", payload=payload, actor_id=actor_id, parent_id=parent_id,
                    after_id=after_id, update_id=update_id, created_at=now, updated_at=now)
    db.session.add(notice)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        return db.session.scalar(select(Notice).where(
            Notice.incident_id == incident_id, Notice.kind == kind, Notice.key == key))
    if channel == "slack":
        # The metadata carries the row's id: the look-up after an unclear answer finds it.
        notice.payload = {**payload, "metadata": {"event_type": EVENT_TYPE,
                                                  "event_payload": {"notice_id": notice.id}}}
    db.session.commit()
    return notice


def queue_slack_notice(*, incident: Incident, kind: str, text: str, config: dict[str, Any],
                       actor_id: int | None, now: datetime) -> Notice:
    """Records a Slack notice in the incident's thread (or the advocates channel when there is
    no thread yet). The same text of the same kind is one notice, however often it is asked."""
    settings = channel_settings(config)
    payload = slack_payload(
        channel=incident.slack_channel_id or settings.get("SLACK_ADVOCATES_CHANNEL")
        or "<SLACK_ADVOCATES_CHANNEL>", text=text, thread_ts=incident.slack_thread_ts)
    return queue_notice(incident_id=incident.id, kind=kind, key=notice_key(text),
                        channel="slack", payload=payload, actor_id=actor_id, now=now)


class _Senders:
    """The adapters a pass of `send_notices` uses, built once per pass."""

    def __init__(self, config: dict[str, Any]):
        settings = channel_settings(config)
        self.slack = Slack(session=make_session(timeout=http_timeout(config)),
                           base_url=settings["SLACK_API_URL"],
                           token=settings.get("SLACK_BOT_TOKEN"), channel=None, group_id=None)
        self.gitlab: GitLabApi = build_gitlab_api(config)


def send_notices(app: Flask, *, now: datetime | None = None,
                 only: list[int] | None = None) -> dict[str, int]:
    """Sends every notice that is queued, due for a retry, or whose sender died (or just the
    `only` ones). The clock's job, and run right after a notice is queued."""
    now = now or utcnow()
    counts = {"sent": 0, "failed": 0, "dry_run": 0}
    with app.app_context():
        query = select(Notice.id).where(or_(
            Notice.status == "pending",
            and_(Notice.status == "failed", Notice.next_attempt_at <= now,
                 or_(Notice.retryable.is_(True), Notice.outcome_unknown.is_(True))),
            and_(Notice.status == "sending", Notice.lease_until <= now)))
        if only is not None:
            query = query.where(Notice.id.in_(only))
        # In id order: a thread's first message goes before its replies, replies in order.
        ids = list(db.session.scalars(query.order_by(Notice.id)))
        senders = _Senders(app.config)
        for notice_id in ids:
            status = _send_one(notice_id, senders=senders, now=now)
            if status:
                counts[status] = counts.get(status, 0) + 1
        db.session.remove()
    return counts


def _send_one(notice_id: int, *, senders: _Senders, now: datetime) -> str | None:
    claimed = db.session.execute(update(Notice).where(
        Notice.id == notice_id,
        or_(Notice.status.in_(["pending", "failed"]),
            and_(Notice.status == "sending", Notice.lease_until <= now)))
        .values(status="sending", lease_until=now + LEASE, updated_at=now)).rowcount == 1
    db.session.commit()
    if not claimed:
        return None
    notice = db.session.get(Notice, notice_id)
    blocked, status = _blocked(notice, now=now)
    if blocked:
        return status
    if notice.channel == "gitlab":
        return _send_label(notice, api=senders.gitlab, now=now)
    slack = senders.slack
    if not slack.token or str(notice.payload.get("channel", "")).startswith("<"):
        return _finish(notice, "dry_run", now=now,
                       error="Dry-run: no Slack credentials or no channel; nothing was sent.")
    if notice.outcome_unknown or notice.attempts:
        found = slack.find_existing(notice.payload, since=notice.created_at)
        if found is not None and found.ok:
            notice.external_id = found.external_id
            return _finish(notice, "sent", now=now)
        if found is not None:
            return _finish(notice, "failed", now=now, unknown=True, retryable=True,
                           error=f"Could not check Slack for it: {found.error}")
    notice.attempts += 1
    db.session.commit()   # recorded before the call: a sender that dies mid-call is looked up
    return _outcome(notice, slack.send(notice.payload), now=now)


def _blocked(notice: Notice, *, now: datetime) -> tuple[bool, str | None]:
    """(True, status) when the notice cannot go now: a reply whose thread has not started (or
    whose previous reply is not settled) goes back to the queue (status None); one whose
    thread never will start settles like its parent."""
    parent = db.session.get(Notice, notice.parent_id) if notice.parent_id else None
    before = db.session.get(Notice, notice.after_id) if notice.after_id else None
    if parent is not None and parent.status == "dry_run":
        return True, _finish(notice, "dry_run", now=now, error="Dry-run: its thread's first "
                             "message was not sent either.")
    if parent is not None and parent.status == "failed" and not (
            parent.retryable or parent.outcome_unknown):
        return True, _finish(notice, "failed", now=now, error="Not sent: its thread's first "
                             f"message failed ({parent.error}).")
    waiting = [n for n in (parent, before) if n is not None and n.status not in SETTLED
               and not (n.status == "failed" and not (n.retryable or n.outcome_unknown))]
    if waiting:
        notice.status, notice.lease_until, notice.updated_at = "pending", None, now
        notice.error = "Waiting for the message before it in the thread."
        db.session.commit()
        return True, None
    if parent is not None and notice.payload.get("thread_ts") != parent.external_id:
        notice.payload = {**notice.payload, "thread_ts": parent.external_id}
        db.session.commit()
    return False, None


def _send_label(notice: Notice, *, api: GitLabApi, now: datetime) -> str:
    """Adds labels to the GitLab issue: doing it twice changes nothing, so an unclear answer
    is simply tried again."""
    if not api.configured:
        return _finish(notice, "dry_run", now=now,
                       error="Dry-run: no GITLAB_TOKEN; the label was not added.")
    notice.attempts += 1
    db.session.commit()
    payload = notice.payload
    _, failure = api.add_labels(IssueRef(payload["project"], payload["iid"]),
                                payload["add_labels"])
    if failure is None:
        return _finish(notice, "sent", now=now)
    again = (failure.retryable or failure.outcome_unknown) and notice.attempts < MAX_ATTEMPTS
    return _finish(notice, "failed", now=now, error=failure.error, retryable=again,
                   retry_after=failure.retry_after)


def _outcome(notice: Notice, result: ChannelResult, *, now: datetime) -> str:
    if result.ok:
        notice.external_id = result.external_id
        return _finish(notice, "sent", now=now)
    again = (result.retryable or result.outcome_unknown) and notice.attempts < MAX_ATTEMPTS
    return _finish(notice, "failed", now=now, error=result.error, retryable=again,
                   unknown=result.outcome_unknown, retry_after=result.retry_after)


def _finish(notice: Notice, status: str, *, now: datetime, error: str | None = None,
            retryable: bool = False, unknown: bool = False,
            retry_after: float | None = None) -> str:
    notice.status = status
    notice.error = error
    notice.retryable = retryable
    notice.outcome_unknown = unknown
    notice.lease_until = None
    wait = max(30.0, retry_after or 0.0)
    notice.next_attempt_at = now + timedelta(seconds=wait) if retryable else None
    notice.updated_at = now
    db.session.commit()
    return status
