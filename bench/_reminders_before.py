"""The reminder sender as it was before batching (commit 41de9ae), kept as the benchmark's
baseline: one reminder per task on 8 threads, each with its own session, three queries for the
message's facts, the button preview's own query, and a commit per reminder."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from flask import Flask

from cmoc.channels.registry import channel_settings
from cmoc.channels.slack import Slack
from cmoc.extensions import db
from cmoc.models import Incident, Reminder
from cmoc.services.reminder_messages import reminder_context, reminder_message, reminder_target
from cmoc.services.reminder_sending import REMINDER_EVENT, reminder_slack
from cmoc.timeutil import utcnow

SEND_WORKERS = 8


def send_one_by_one(app: Flask, reminder_ids: list[int], *, look_first: set[int],
                    now: datetime, build_blocks) -> Counter:
    counts: Counter = Counter()
    if not reminder_ids:
        return counts
    workers = min(SEND_WORKERS, len(reminder_ids))
    slack = reminder_slack(app, workers=workers)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for status in pool.map(lambda rid: _send_one(app, slack, rid, now, build_blocks),
                               reminder_ids):
            counts[status] += 1
    return counts


def _send_one(app: Flask, slack: Slack, reminder_id: int, now: datetime, build_blocks) -> str:
    with app.app_context():
        try:
            reminder = db.session.get(Reminder, reminder_id)
            incident = db.session.get(Incident, reminder.incident_id)
            config = channel_settings(app.config)
            target = reminder_target(incident, config, reminder.kind)
            context = reminder_context(incident)
            text = reminder_message(incident=incident, kind=reminder.kind, now=now,
                                    base_url=config["BASE_URL"],
                                    mention=config.get("SLACK_ESCALATION_MENTION"), **context)
            reminder.payload = {
                "channel": target, "text": text,
                # None: the preview reads the saved detail itself, as it did.
                "blocks": build_blocks(incident, text, context["draft_id"], None),
                "unfurl_links": False,
                "metadata": {"event_type": REMINDER_EVENT,
                             "event_payload": {"reminder_id": reminder.id}}}
            reminder.target = target
            reminder.attempts += 1
            result = slack.send(reminder.payload)
            reminder.status = "sent" if result.ok else "failed"
            reminder.external_id = result.external_id
            reminder.updated_at = now
            if result.ok:
                reminder.sent_at = utcnow()
            db.session.commit()
            return reminder.status
        finally:
            db.session.remove()
