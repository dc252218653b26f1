"""The GitLab webhook (project → Settings → Webhooks, "Issues events"): verify, deduplicate,
follow the incident issue.

- Verified with `X-Gitlab-Token` == GITLAB_WEBHOOK_SECRET, compared in constant time; anything
  else is refused and counted (not audited row by row: anyone on the network can send them).
- Idempotent: the event's `Idempotency-Key` (the same on GitLab's retries), else its
  `X-Gitlab-Event-UUID`, else the issue's `updated_at` + action, is unique in `gitlab_events`;
  a second delivery changes nothing. The event row and what it changed commit together.
- Fast: only database work here; the Slack pings are sent after the answer.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError

from cmoc.cadence import Cadence
from cmoc.channels.gitlab_api import IssueRef
from cmoc.enums import State
from cmoc.extensions import db
from cmoc.gitlab_settings import gitlab_settings
from cmoc.models import GitlabEvent, Incident, WebhookCounter
from cmoc.services import gitlab_follow as follow
from cmoc.services.gitlab_issues import facts_from, is_incident, severity_from

SOURCE = "gitlab"


@dataclass
class HookResult:
    status: int
    outcome: str
    message: str
    incident_id: int | None = None
    notice_ids: list[int] = field(default_factory=list)


def token_ok(*, sent: str | None, secret: str | None) -> bool:
    """Constant-time comparison; no secret configured refuses everything."""
    if not secret or sent is None:
        return False
    return hmac.compare_digest(sent.encode(), secret.encode())


def count(outcome: str, *, source: str = SOURCE) -> None:
    """Adds one to a webhook outcome counter (committed)."""
    for _ in range(3):
        bumped = db.session.execute(update(WebhookCounter).where(
            WebhookCounter.source == source, WebhookCounter.outcome == outcome)
            .values(count=WebhookCounter.count + 1)).rowcount
        if bumped:
            db.session.commit()
            return
        db.session.add(WebhookCounter(source=source, outcome=outcome, count=1))
        try:
            db.session.commit()
            return
        except IntegrityError:   # another request made the row first: bump it instead
            db.session.rollback()


def event_key(headers: dict[str, str], payload: dict[str, Any]) -> str:
    key = headers.get("Idempotency-Key") or headers.get("X-Gitlab-Event-UUID")
    if key:
        return key.strip()[:160]
    attrs = payload.get("object_attributes") or {}
    project = (payload.get("project") or {}).get("path_with_namespace", "?")
    return (f"{project}#{attrs.get('iid')}@{attrs.get('updated_at')}:"
            f"{attrs.get('action')}")[:160]


def _label_names(items: Any) -> list[str]:
    return [str(x.get("title") if isinstance(x, dict) else x) for x in items or []]


def receive(*, headers: dict[str, str], payload: Any, config: dict[str, Any],
            component_names: list[str], now: datetime) -> HookResult:
    """Handles one verified delivery; records it and counts its outcome."""
    if not isinstance(payload, dict) or not isinstance(payload.get("object_attributes"), dict):
        count("invalid")
        return HookResult(400, "invalid", "Not an issue event payload.")
    if payload.get("object_kind") not in ("issue", "work_item"):
        count("ignored")
        return HookResult(200, "ignored", f"Not an issue event ({payload.get('object_kind')}).")
    key = event_key(headers, payload)
    if db.session.scalar(select(GitlabEvent.id).where(GitlabEvent.event_key == key)):
        count("duplicate")
        return HookResult(200, "duplicate", "Already handled (same event delivered again).")
    try:
        result = _follow(key=key, payload=payload, config=config,
                         component_names=component_names, now=now)
        db.session.commit()
    except IntegrityError:
        # The same event, or another creating this issue's incident, got in first.
        db.session.rollback()
        count("duplicate")
        return HookResult(200, "duplicate", "Already handled (delivered twice at once).")
    for outcome in result.outcome.split("+"):
        count(outcome)
    return result


def _follow(*, key: str, payload: dict, config: dict[str, Any], component_names: list[str],
            now: datetime) -> HookResult:
    settings = gitlab_settings(config)
    attrs = payload["object_attributes"]
    project = (payload.get("project") or {}).get("path_with_namespace") or ""
    ref = IssueRef(project, int(attrs.get("iid") or 0))
    action = str(attrs.get("action") or "")
    by = (payload.get("user") or {}).get("username")
    event = GitlabEvent(event_key=key, received_at=now, issue=str(ref), action=action[:32],
                        outcome="ignored", detail={})
    db.session.add(event)
    db.session.flush()     # a concurrent delivery of the same event fails here

    def done(outcome: str, message: str, incident: Incident | None = None,
             notices: list[int] | None = None) -> HookResult:
        event.outcome, event.detail = outcome, {"message": message}
        event.incident_id = incident.id if incident else None
        return HookResult(200, outcome, message, event.incident_id, notices or [])

    if settings.incident_project and project.lower() != settings.incident_project.lower():
        return done("ignored", f"Not the incident project ({project}).")
    labels = _label_names(attrs.get("labels") or payload.get("labels"))
    if not is_incident(work_type=attrs.get("type") or attrs.get("issue_type"), labels=labels,
                       settings=settings):
        return done("ignored", f"{ref} is not an incident issue.")
    changes = payload.get("changes") or {}
    previous = (_label_names(changes["labels"].get("previous"))
                if isinstance(changes.get("labels"), dict) else None)
    severity, source = severity_from(labels, attrs.get("severity"), settings)
    # Declared from the issue, by the webhook or by a CMOC who linked it.
    incident = db.session.scalar(select(Incident).where(or_(
        Incident.gitlab_issue == str(ref),
        and_(Incident.gitlab_issue.is_(None), Incident.issue_url == attrs.get("url"))))
        .order_by(Incident.id.desc()).limit(1))
    base_url = str(config.get("BASE_URL", ""))
    if incident is None:
        if attrs.get("state") != "opened" or severity not in settings.follow_severities:
            return done("ignored", f"{ref}: severity {severity or 'unknown'}, cmoc follows "
                        + ", ".join(sorted(settings.follow_severities)) + " only.")
        facts = facts_from(ref=ref, title=attrs.get("title", ""), web_url=attrs.get("url", ""),
                           labels=labels, severity_field=attrs.get("severity"),
                           work_type=attrs.get("type"), state="opened", settings=settings,
                           component_names=component_names)
        incident = follow.create_incident(
            facts=facts, status=settings.status_by_severity[severity],
            title_max=int(config.get("TITLE_MAX_LENGTH", 120)), by=by, now=now)
        event.created_for = str(ref)
        db.session.flush()
        ping = follow.queue_ping(incident=incident, key="created", config=config, now=now,
                                 text=follow.created_text(incident=incident, facts=facts, by=by,
                                                          base_url=base_url))
        return done("created", f"Incident #{incident.id} declared from {ref}.", incident,
                    [ping.id])
    if incident.is_resolved:
        return done("ignored", f"Incident #{incident.id} is resolved already.", incident)
    outcomes, notices = [], []
    before_severity = severity_from(previous, None, settings)[0] if previous is not None \
        else None
    field_change = changes.get("severity") if isinstance(changes.get("severity"), dict) else None
    changed = (previous is not None and before_severity != severity) or field_change is not None
    cadence: Cadence = config["CADENCE_MATRIX"]
    if severity and changed and severity != incident.severity:
        old = incident.severity
        follow.apply_severity(incident=incident, severity=severity, source=source, by=by,
                              cadence=cadence, now=now)
        notices.append(follow.queue_ping(
            incident=incident, key=f"severity:{event.id}", config=config, now=now,
            text=follow.severity_text(incident=incident, before=old, source=source, by=by,
                                      base_url=base_url)).id)
        outcomes.append("severity_changed")
    added = [x for x in labels if previous is None or x not in previous]
    reasons = [(settings.state_labels[x.lower()], x) for x in added
               if x.lower() in settings.state_labels]
    if action == "close":
        reasons.append((State.RESOLVED.value, "closed"))
    if reasons:
        state, reason = max(reasons, key=lambda r: State(r[0]).order)
        if State(state).order > incident.state_enum.order:
            follow.prompt_state(incident=incident, state=state, reason=reason, by=by, now=now)
            notices.append(follow.queue_ping(
                incident=incident, key=f"state:{state}", config=config, now=now,
                text=follow.state_text(incident=incident, state=state, reason=reason,
                                       base_url=base_url)).id)
            outcomes.append("state_prompted")
    if not outcomes:
        return done("ignored", f"Nothing for cmoc in this change of {ref}.", incident)
    return done("+".join(outcomes), f"Incident #{incident.id}: " + ", ".join(outcomes),
                incident, notices)
