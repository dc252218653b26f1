"""One-off Slack notices that are not updates (the post-mortem link in the incident's thread).

The same rules as every post: recorded before it is sent, claimed with a lease so one runner
sends it, an unclear answer looked up in Slack (by the metadata cmoc attaches) before any
resend, retried by the clock when that cannot double it.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError

from cmoc.channels.http import make_session
from cmoc.channels.registry import channel_settings, configured_channels, http_timeout
from cmoc.channels.slack import Slack, escape
from cmoc.extensions import db
from cmoc.models import Incident, Notice
from cmoc.timeutil import utcnow

log = logging.getLogger(__name__)
EVENT_TYPE = "cmoc_notice"
LEASE = timedelta(seconds=60)
MAX_ATTEMPTS = 5


def notice_key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:64]


def queue_slack_notice(*, incident: Incident, kind: str, text: str, config: dict[str, Any],
                       actor_id: int | None, now: datetime) -> Notice:
    """Records a Slack notice in the incident's thread (or the advocates channel when there is
    no thread yet). The same text of the same kind is one notice, however often it is asked."""
    settings = channel_settings(config)
    body = escape(text)
    payload: dict[str, Any] = {
        "channel": incident.slack_channel_id or settings.get("SLACK_ADVOCATES_CHANNEL")
        or "<SLACK_ADVOCATES_CHANNEL>",
        "text": body,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": body,
                                                "verbatim": True}}],
        "unfurl_links": False,
    }
    if incident.slack_thread_ts:
        payload["thread_ts"] = incident.slack_thread_ts
    notice = Notice(incident_id=incident.id, kind=kind, key=notice_key(text), channel="slack",
                    status="pending", payload=payload, actor_id=actor_id, created_at=now,
                    updated_at=now)
    db.session.add(notice)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        return db.session.scalar(select(Notice).where(
            Notice.incident_id == incident.id, Notice.kind == kind,
            Notice.key == notice_key(text)))
    # The metadata carries the row's id: the look-up after an unclear answer finds this post.
    notice.payload = {**payload, "metadata": {"event_type": EVENT_TYPE,
                                              "event_payload": {"notice_id": notice.id}}}
    db.session.commit()
    return notice


def send_notices(app: Flask, *, now: datetime | None = None) -> dict[str, int]:
    """Sends every notice that is queued, due for a retry, or whose sender died. The clock's
    job, and run right after a notice is queued."""
    now = now or utcnow()
    counts = {"sent": 0, "failed": 0, "dry_run": 0}
    with app.app_context():
        ids = list(db.session.scalars(select(Notice.id).where(or_(
            Notice.status == "pending",
            and_(Notice.status == "failed", Notice.next_attempt_at <= now,
                 or_(Notice.retryable.is_(True), Notice.outcome_unknown.is_(True))),
            and_(Notice.status == "sending", Notice.lease_until <= now)))))
        settings = channel_settings(app.config)
        slack = Slack(session=make_session(timeout=http_timeout(app.config)),
                      base_url=settings["SLACK_API_URL"], token=settings.get("SLACK_BOT_TOKEN"),
                      channel=None, group_id=None)
        live = configured_channels(settings)["slack"]
        for notice_id in ids:
            status = _send_one(notice_id, slack=slack, live=live, now=now)
            if status:
                counts[status] = counts.get(status, 0) + 1
        db.session.remove()
    return counts


def _send_one(notice_id: int, *, slack: Slack, live: bool, now: datetime) -> str | None:
    claimed = db.session.execute(update(Notice).where(
        Notice.id == notice_id,
        or_(Notice.status.in_(["pending", "failed"]),
            and_(Notice.status == "sending", Notice.lease_until <= now)))
        .values(status="sending", lease_until=now + LEASE, updated_at=now)).rowcount == 1
    db.session.commit()
    if not claimed:
        return None
    notice = db.session.get(Notice, notice_id)
    if not live:
        return _finish(notice, "dry_run", now=now,
                       error="Dry-run: no Slack credentials; nothing was sent.")
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
    result = slack.send(notice.payload)
    if result.ok:
        notice.external_id = result.external_id
        return _finish(notice, "sent", now=now)
    again = (result.retryable or result.outcome_unknown) and notice.attempts < MAX_ATTEMPTS
    return _finish(notice, "failed", now=now, error=result.error, retryable=again,
                   unknown=result.outcome_unknown)


def _finish(notice: Notice, status: str, *, now: datetime, error: str | None = None,
            retryable: bool = False, unknown: bool = False) -> str:
    notice.status = status
    notice.error = error
    notice.retryable = retryable
    notice.outcome_unknown = unknown
    notice.lease_until = None
    notice.next_attempt_at = now + timedelta(seconds=30) if retryable else None
    notice.updated_at = now
    db.session.commit()
    return status
