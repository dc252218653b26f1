"""Model rows -> API dicts (validated against the response schemas by spectree)."""

from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from cmoc import texts as text_rules
from cmoc.enums import CHANNELS
from cmoc.extensions import db
from cmoc.models import Incident, Update
from cmoc.services.subscribers import default_notify
from cmoc.timeutil import utcnow


def incident_summary(incident: Incident) -> dict[str, Any]:
    return {
        "id": incident.id, "title": incident.title, "severity": incident.severity,
        "state": incident.state, "status": incident.status,
        "components": list(incident.components), "issue_url": incident.issue_url,
        "slack_channel": incident.slack_channel,
        "statusio_incident_id": incident.statusio_incident_id,
        "gitlab_issue": incident.gitlab_issue,
        "cmoc": incident.cmoc.username if incident.cmoc else None,
        "created_at": incident.created_at, "resolved_at": incident.resolved_at,
        "last_published_at": incident.last_published_at,
        "next_update_due_at": incident.next_update_due_at,
    }


def update_out(update: Update) -> dict[str, Any]:
    return {
        "id": update.id, "incident_id": update.incident_id, "phase": update.phase,
        "state": update.state, "status": update.status, "template": update.template,
        "texts": {"statusio": update.text_statusio, "twitter": update.text_twitter,
                  "slack": update.text_slack, "gitlab": update.text_gitlab},
        "next_update_in_minutes": update.next_update_minutes,
        "notify": update.statusio_notify or default_notify(
            current_app.config.get("STATUSIO_NOTIFY")),
        "blocked": _blocked(update),
        "author": update.author.username, "created_at": update.created_at,
        "published_at": update.published_at,
        "deliveries": [{
            "channel": d.channel, "status": d.status, "external_id": d.external_id,
            "attempts": d.attempts, "error": d.error, "updated_at": d.updated_at,
        } for d in update.deliveries],
    }


def _blocked(update: Update) -> dict[str, str]:
    """A draft's channels that could not be sent as they are (any next-update time will do:
    only whether there is one matters)."""
    if not update.is_draft:
        return {}
    upcoming = None if update.state == "resolved" else utcnow()
    return text_rules.problems({c: update.text_for(c) for c in CHANNELS},
                               next_update_at=upcoming,
                               markers=current_app.extensions["cmoc.templates"].marker_labels())


def incident_out(incident: Incident) -> dict[str, Any]:
    updates = db.session.scalars(
        select(Update).where(Update.incident_id == incident.id)
        .options(selectinload(Update.author), selectinload(Update.deliveries))
        .order_by(Update.created_at.asc(), Update.id.asc())).all()
    return {**incident_summary(incident), "updates": [update_out(u) for u in updates]}
