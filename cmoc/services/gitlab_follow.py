"""What a change on the GitLab incident issue does to its cmoc incident: a new S1/S2 issue
becomes an incident (nothing public) and the CMOC is pinged with the prefilled first draft; a
severity change moves the severity and the cadence (audited, on the timeline as from GitLab);
`Incident::Mitigated`/`Resolved` asks the CMOC to publish Monitoring/Resolved.

Pings go where reminders go: the CMOC's Slack member id, else SLACK_REMINDER_CHANNEL.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select
from werkzeug.security import generate_password_hash

from cmoc.cadence import Cadence
from cmoc.channels.registry import channel_settings
from cmoc.channels.slack import escape, link
from cmoc.enums import State
from cmoc.extensions import db
from cmoc.models import Incident, IncidentEvent, Notice, User
from cmoc.services.audit import record
from cmoc.services.gitlab_issues import IssueFacts
from cmoc.services.incidents import refresh_due
from cmoc.services.notices import queue_notice, slack_payload
from cmoc.timeutil import fmt_utc

SYSTEM_USER = "gitlab"
PING = "gitlab_ping"


def system_user() -> User:
    """The account incidents created by the webhook are declared by: inactive, so nobody can
    sign in with it; made on first use."""
    user = db.session.scalar(select(User).where(User.username == SYSTEM_USER))
    if user is None:
        user = User(username=SYSTEM_USER, role="viewer", active=False,
                    password_hash=generate_password_hash(secrets.token_urlsafe(32)))
        db.session.add(user)
        db.session.flush()
    return user


def _audit(action: str, *, target: Incident, now: datetime, before: dict | None,
           after: dict) -> None:
    entry = record(action, actor=None, actor_name=SYSTEM_USER, target=target, before=before,
                   after=after, now=now)
    entry.via = "gitlab"


def create_incident(*, facts: IssueFacts, status: str, title_max: int, by: str | None,
                    now: datetime) -> Incident:
    """A cmoc incident for a new incident issue (added to the session, not committed): in
    Investigating, its first update due at once, nothing public."""
    title = facts.title if len(facts.title) <= title_max else facts.title[:title_max - 1] + "…"
    incident = Incident(
        title=title or f"Incident {facts.ref}", severity=facts.severity, status=status,
        components=facts.components, issue_url=facts.web_url or None,
        slack_channel=facts.slack_channel, state=State.INVESTIGATING.value,
        declared_by_id=system_user().id, cmoc_id=None, created_at=now, updated_at=now,
        next_update_due_at=now, gitlab_issue=str(facts.ref))
    db.session.add(incident)
    db.session.flush()
    _audit("incident.declare", target=incident, now=now, before=None, after={
        "title": incident.title, "severity": incident.severity, "status": status,
        "components": facts.components, "issue_url": incident.issue_url,
        "gitlab_issue": incident.gitlab_issue})
    db.session.add(IncidentEvent(incident_id=incident.id, kind="gitlab_declared",
                                 created_at=now, detail={
                                     "issue": str(facts.ref), "by": by,
                                     "severity": facts.severity, "source": facts.severity_source,
                                     "components": facts.components,
                                     "unknown_components": facts.unknown_components}))
    return incident


def apply_severity(*, incident: Incident, severity: str, source: str, by: str | None,
                   cadence: Cadence, now: datetime) -> None:
    """The issue's severity changed: so does the incident's, and the next due time."""
    before = {"severity": incident.severity, "next_update_due_at": incident.next_update_due_at}
    incident.severity = severity
    incident.updated_at = now
    refresh_due(incident=incident, cadence=cadence)
    after = {"severity": severity, "next_update_due_at": incident.next_update_due_at,
             "source": source}
    _audit("incident.edit", target=incident, now=now, before=before, after=after)
    db.session.add(IncidentEvent(incident_id=incident.id, kind="gitlab_severity",
                                 created_at=now, detail={
                                     "from": before["severity"], "to": severity,
                                     "source": source, "by": by,
                                     "due": fmt_utc(incident.next_update_due_at)}))


def prompt_state(*, incident: Incident, state: str, reason: str, by: str | None,
                 now: datetime) -> IncidentEvent:
    """GitLab says the incident moved on (e.g. Incident::Mitigated): ask for the update."""
    event = IncidentEvent(incident_id=incident.id, kind="gitlab_state", created_at=now,
                          detail={"state": state, "reason": reason, "by": by})
    db.session.add(event)
    return event


def pending_prompts(incidents: list[Incident]) -> dict[int, dict[str, Any]]:
    """Per active incident, the latest state GitLab reached that cmoc has not published yet
    (for the dashboard and the incident page)."""
    active = {i.id: i for i in incidents if not i.is_resolved}
    if not active:
        return {}
    rows = db.session.scalars(select(IncidentEvent).where(
        IncidentEvent.incident_id.in_(active), IncidentEvent.kind == "gitlab_state")
        .order_by(IncidentEvent.created_at, IncidentEvent.id))
    prompts: dict[int, dict[str, Any]] = {}
    for event in rows:
        incident = active[event.incident_id]
        state = State(event.detail["state"])
        if state.order > incident.state_enum.order:
            prompts[incident.id] = {**event.detail, "label": state.label, "at": event.created_at}
        else:
            prompts.pop(incident.id, None)
    return prompts


# -- pings ------------------------------------------------------------------------------------
def ping_target(incident: Incident, config: dict[str, Any]) -> str | None:
    """The reminders' rule: the CMOC's Slack member id, else SLACK_REMINDER_CHANNEL."""
    person = incident.cmoc or incident.declared_by
    if person is not None and person.slack_user_id:
        return person.slack_user_id
    return channel_settings(config).get("SLACK_REMINDER_CHANNEL")


def draft_url(base_url: str, incident: Incident, state: str, **variables: str) -> str:
    query = {"state": state, "template": state,
             **{f"var_{k}": v for k, v in variables.items() if v}}
    return f"{base_url.rstrip('/')}/incidents/{incident.id}/updates/new?{urlencode(query)}"


def symptom_from(title: str) -> str:
    """"Elevated error rates" -> "elevated error rates" (an acronym such as API stays)."""
    if len(title) > 1 and title[0].isupper() and not title[1].isupper():
        return title[0].lower() + title[1:]
    return title


def queue_ping(*, incident: Incident, key: str, text: str, config: dict[str, Any],
               now: datetime) -> Notice:
    target = ping_target(incident, config) or "<SLACK_REMINDER_CHANNEL>"
    return queue_notice(incident_id=incident.id, kind=PING, key=key, channel="slack",
                        payload=slack_payload(channel=target, text=text, escaped=True), now=now)


def _head(incident: Incident, base_url: str) -> str:
    page = f"{base_url.rstrip('/')}/incidents/{incident.id}"
    return f"{link(page, f'#{incident.id}')} *{escape(incident.title)}*"


def created_text(*, incident: Incident, facts: IssueFacts, by: str | None,
                 base_url: str) -> str:
    draft = draft_url(base_url, incident, State.INVESTIGATING.value,
                      symptom=symptom_from(incident.title))
    components = (escape(", ".join(facts.components)) if facts.components else
                  "none from the issue's labels: tick them (Edit incident) before publishing")
    lines = [
        f":rotating_light: New {incident.severity} incident issue on GitLab: "
        f"{link(facts.web_url, str(facts.ref))}"
        + (f", opened by {escape(by)}" if by else "") + ".",
        f"cmoc declared {_head(incident, base_url)} — nothing is public yet. "
        f"Components: {components}.",
        f"Draft the first update now: {link(draft, 'Investigating update (prefilled)')}",
    ]
    return "\n".join(lines)


def severity_text(*, incident: Incident, before: str, source: str, by: str | None,
                  base_url: str) -> str:
    draft = draft_url(base_url, incident, incident.state)
    return (f":warning: Severity changed on GitLab for {_head(incident, base_url)}: "
            f"{before} → *{incident.severity}* ({escape(source)}"
            + (f", by {escape(by)}" if by else "") + "). "
            f"Next update now due {fmt_utc(incident.next_update_due_at, with_date=False)}: "
            f"{link(draft, 'draft it')}")


def state_text(*, incident: Incident, state: str, reason: str, base_url: str) -> str:
    label = State(state).label
    draft = draft_url(base_url, incident, state)
    return (f":white_check_mark: GitLab says {_head(incident, base_url)} is "
            f"{escape(reason)}, cmoc is still {incident.state_enum.label}: publish a "
            f"{label} update: {link(draft, f'{label} update')}")
