"""After publishing, the notices that follow from it (planned by the clock, sent as notices,
so the lanes that post updates are untouched):

- stakeholders: for an S1/S2 incident, one message per SLACK_STAKEHOLDER_CHANNELS channel with
  the Incident Notifier fields (summary, severity, production issue, incident Slack channel,
  status page link) once the first update is out — after status.io answered, so the link is
  in it, or after `wait_seconds` without it — then each later update in that thread;
- GitLab: `Incident-Comms::Status-Page` on the incident issue after the first status page
  post that succeeded.

`plan_notices` is idempotent: each notice has a unique (incident, kind, key).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import selectinload

from cmoc.channels.gitlab_api import parse_issue_ref
from cmoc.channels.registry import channel_settings
from cmoc.channels.slack import escape, link
from cmoc.enums import DeliveryStatus, Severity, State, Status
from cmoc.extensions import db
from cmoc.gitlab_settings import gitlab_settings, stakeholder_settings
from cmoc.models import Delivery, Incident, Notice, Update
from cmoc.modes import SANDBOX, channel_modes
from cmoc.services.notices import queue_notice, slack_payload
from cmoc.timeutil import fmt_utc

ROOT, REPLY, LABEL = "stakeholder", "stakeholder_update", "gitlab_label"
# Incidents are followed this long after they resolved (a late resolve post still threads).
RECENT = timedelta(hours=24)
S = DeliveryStatus


def plan_notices(config: dict[str, Any], *, now: datetime) -> dict[str, int]:
    """Queues the stakeholder messages and GitLab labels that published updates call for."""
    counts = {"stakeholder": 0, "label": 0}
    incidents = list(db.session.scalars(select(Incident).where(
        or_(Incident.resolved_at.is_(None), Incident.resolved_at >= now - RECENT),
        Incident.last_published_at.is_not(None))))
    for incident in incidents:
        counts["label"] += _plan_label(incident, config, now=now)
        counts["stakeholder"] += _plan_stakeholders(incident, config, now=now)
    return counts


# -- the GitLab label ---------------------------------------------------------------------------
def _plan_label(incident: Incident, config: dict[str, Any], *, now: datetime) -> int:
    settings = gitlab_settings(config)
    if not (settings.configured and settings.status_page_label):
        return 0
    ref = parse_issue_ref(incident.gitlab_issue or incident.issue_url, base_url=settings.url)
    if ref is None or _has(incident, LABEL, settings.status_page_label):
        return 0
    posted = db.session.scalar(select(exists().where(
        Delivery.update_id == Update.id, Update.incident_id == incident.id,
        Delivery.channel == "statusio", Delivery.status == S.SENT.value)))
    if not posted:
        return 0
    queue_notice(incident_id=incident.id, kind=LABEL, key=settings.status_page_label[:64],
                 channel="gitlab", now=now, payload={
                     "project": ref.project, "iid": ref.iid,
                     "add_labels": [settings.status_page_label]})
    return 1


# -- stakeholders -------------------------------------------------------------------------------
def _plan_stakeholders(incident: Incident, config: dict[str, Any], *, now: datetime) -> int:
    settings = stakeholder_settings(config)
    if not settings.channels or incident.closed_reason:
        return 0
    follows = incident.severity in settings.severities
    roots = {n.key: n for n in db.session.scalars(select(Notice).where(
        Notice.incident_id == incident.id, Notice.kind == ROOT))}
    if not roots and (not follows or incident.is_resolved):
        return 0
    updates = list(db.session.scalars(select(Update).where(
        Update.incident_id == incident.id, Update.publish_seq.is_not(None))
        .options(selectinload(Update.deliveries)).order_by(Update.publish_seq)))
    if not updates:
        return 0
    queued = 0
    for channel in settings.channels:
        root = roots.get(channel[:64])
        if root is None:
            if not follows or not _statuspage_settled(updates[-1], settings.wait_seconds, now):
                continue
            root = queue_notice(
                incident_id=incident.id, kind=ROOT, key=channel[:64], channel="slack", now=now,
                update_id=updates[-1].id, payload=slack_payload(
                    channel=channel, escaped=True,
                    text=root_text(incident, updates[-1], config, settings.mention)))
            queued += 1
            continue
        if not (settings.thread_updates and follows):
            continue
        queued += _plan_replies(incident, root, updates, config, now=now)
    return queued


def _plan_replies(incident: Incident, root: Notice, updates: list[Update],
                  config: dict[str, Any], *, now: datetime) -> int:
    first_seq = next((u.publish_seq for u in updates if u.id == root.update_id), None)
    if first_seq is None:
        return 0
    previous = db.session.scalar(select(Notice).where(
        Notice.parent_id == root.id).order_by(Notice.id.desc()).limit(1)) or root
    queued = 0
    for update in updates:
        key = f"{root.key}:{update.id}"[:64]
        if update.publish_seq <= first_seq or _has(incident, REPLY, key):
            continue
        previous = queue_notice(
            incident_id=incident.id, kind=REPLY, key=key, channel="slack", now=now,
            parent_id=root.id, after_id=previous.id, update_id=update.id,
            payload=slack_payload(channel=root.payload["channel"], escaped=True,
                                  text=reply_text(incident, update, config)))
        queued += 1
    return queued


def _has(incident: Incident, kind: str, key: str) -> bool:
    return db.session.scalar(select(exists().where(
        Notice.incident_id == incident.id, Notice.kind == kind, Notice.key == key[:64])))


def _statuspage_settled(update: Update, wait_seconds: float, now: datetime) -> bool:
    """status.io answered for this update (so its link is known), or we waited long enough."""
    if update.published_at and now - update.published_at >= timedelta(seconds=wait_seconds):
        return True
    delivery = next((d for d in update.deliveries if d.channel == "statusio"), None)
    if delivery is None:
        return True
    return delivery.status_enum.settled and not (
        delivery.status == S.FAILED.value and (delivery.retryable or delivery.outcome_unknown))


def status_page_link(incident: Incident, config: dict[str, Any]) -> str | None:
    if not incident.statusio_incident_id:
        return None
    if channel_modes(config).get("statusio") == SANDBOX:
        return (f"{str(config.get('BASE_URL', '')).rstrip('/')}/sandbox"
                f"#statusio-{incident.statusio_incident_id}")
    page = str(config.get("STATUS_PAGE_URL") or "").rstrip("/")
    page_id = channel_settings(config).get("STATUSIO_STATUSPAGE_ID")
    return f"{page}/pages/incident/{page_id}/{incident.statusio_incident_id}" \
        if page and page_id else None


def _facts(update: Update) -> str:
    return (f"{State(update.state).label} · {Status(update.status).label} · "
            f"{fmt_utc(update.published_at, with_date=False)}")


def root_text(incident: Incident, update: Update, config: dict[str, Any],
              mention: str | None) -> str:
    """The Incident Notifier fields (Slack mrkdwn; typed text escaped)."""
    page = status_page_link(incident, config)
    issue = link(incident.issue_url, incident.gitlab_issue or incident.issue_url) \
        if incident.issue_url else "—"
    lines = [
        (f"{mention} " if mention else "")
        + f":rotating_light: *Incident notice: {escape(incident.title)}*",
        f"*Summary:* {escape(incident.title)}",
        f"*Severity:* {Severity(incident.severity).label}",
        f"*Production issue:* {issue}",
        f"*Incident Slack channel:* {escape(incident.slack_channel or '—')}",
        f"*Status page:* {link(page, page) if page else 'not on the status page yet'}",
        f"*Latest update* ({_facts(update)}): {escape(update.text_statusio)}",
        "Later updates follow in this thread.",
    ]
    return "\n".join(lines)


def reply_text(incident: Incident, update: Update, config: dict[str, Any]) -> str:
    page = status_page_link(incident, config)
    text = f"*{_facts(update)}* — {escape(update.text_statusio)}"
    return text + (f"\nStatus page: {link(page, page)}" if page else "")


def notices_pass(app, *, now: datetime) -> dict[str, int]:
    """The clock's `send-notices` job and `cmoc send-notices`: plan what published updates
    call for, then send every notice that is due."""
    from cmoc.services.notices import send_notices

    with app.app_context():
        planned = plan_notices(app.config, now=now)
        db.session.remove()
    return {**{f"planned_{k}": v for k, v in planned.items()}, **send_notices(app, now=now)}
