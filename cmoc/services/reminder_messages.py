"""What a reminder says and where it goes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select

from cmoc.channels.slack import escape
from cmoc.enums import PUBLIC_CHANNELS, DeliveryStatus, UpdatePhase
from cmoc.extensions import db
from cmoc.models import Delivery, Incident, IncidentEvent, Update
from cmoc.timeutil import fmt_duration, fmt_utc


def reminder_context(incident: Incident) -> dict[str, Any]:
    """Facts for the message beyond the incident row: the time of the latest update when it
    was internal (Slack only), and the CMOC's saved draft waiting to be published."""
    return reminder_contexts([incident])[incident.id]


def reminder_contexts(incidents: list[Incident]) -> dict[int, dict[str, Any]]:
    """`reminder_context` for many incidents in four queries, whatever their number (a pass
    that sends thousands of reminders must not ask three questions per reminder)."""
    ids = [incident.id for incident in incidents]
    contexts: dict[int, dict[str, Any]] = {
        i: {"internal_at": None, "draft_id": None, "handover": None} for i in ids}
    if not ids:
        return contexts
    newest = (select(Update.incident_id, func.max(Update.publish_seq).label("seq"))
              .where(Update.incident_id.in_(ids), Update.publish_seq.is_not(None))
              .group_by(Update.incident_id).subquery())
    latest = {update_id: (incident_id, published_at)
              for update_id, incident_id, published_at in db.session.execute(
                  select(Update.id, Update.incident_id, Update.published_at).join(
                      newest, and_(Update.incident_id == newest.c.incident_id,
                                   Update.publish_seq == newest.c.seq)))}
    told = set(db.session.scalars(select(Delivery.update_id).where(
        Delivery.update_id.in_(list(latest)), Delivery.channel.in_(PUBLIC_CHANNELS),
        Delivery.status != DeliveryStatus.SKIPPED.value))) if latest else set()
    for update_id, (incident_id, published_at) in latest.items():
        if update_id not in told:
            contexts[incident_id]["internal_at"] = published_at
    drafts = select(Update.incident_id, Update.id, func.row_number().over(
        partition_by=Update.incident_id,
        order_by=(Update.updated_at.desc(), Update.id.desc())).label("rank")).where(
        Update.incident_id.in_(ids), Update.phase == UpdatePhase.DRAFT.value).subquery()
    for incident_id, draft_id in db.session.execute(
            select(drafts.c.incident_id, drafts.c.id).where(drafts.c.rank == 1)):
        contexts[incident_id]["draft_id"] = draft_id
    # A handover to the on-call CMOC since the last public update is said in the reminder
    # (handovers are rare: filtering them here is cheaper than per-incident SQL).
    since = {i.id: i.last_published_at or i.created_at for i in incidents}
    for event in db.session.scalars(
            select(IncidentEvent).where(IncidentEvent.incident_id.in_(ids),
                                        IncidentEvent.kind == "oncall_handover")
            .order_by(IncidentEvent.created_at, IncidentEvent.id)):
        if event.created_at > since[event.incident_id]:
            contexts[event.incident_id]["handover"] = dict(event.detail, at=event.created_at)
    return contexts


def reminder_message(*, incident: Incident, kind: str, now: datetime, base_url: str,
                     mention: str | None, internal_at: datetime | None = None,
                     draft_id: int | None = None, handover: dict | None = None) -> str:
    """The Slack text of a reminder (user text escaped; links straight to the drafting form)."""
    due_at = incident.next_update_due_at
    due = fmt_utc(due_at, with_date=False)
    overdue = fmt_duration((now - due_at).total_seconds())
    last = (f"last public update {fmt_duration((now - incident.last_published_at).total_seconds())}"
            f" ago ({fmt_utc(incident.last_published_at, with_date=False)})"
            if incident.last_published_at else "no public update yet")
    root = f"{base_url.rstrip('/')}/incidents/{incident.id}"
    draft = f"{root}/updates/new"
    state = incident.state_enum
    promised = " as promised" if incident.promised_at and incident.promised_at == due_at else ""
    head = {
        "heads_up": f":hourglass_flowing_sand: Update due in "
                    f"{fmt_duration((due_at - now).total_seconds())} (by {due}{promised})",
        "due": f":alarm_clock: Update due now ({due}{promised})",
        "escalation": f":rotating_light: Update overdue by {overdue} (due {due})",
        "repeat": f":alarm_clock: Still no update, overdue by {overdue} (due {due})",
    }[kind]
    links = (f"<{root}/updates/{draft_id}|Open your saved draft> · " if draft_id else "") + (
        f"Draft now: <{draft}?state={state.value}|{state.label} update> · "
        f"<{draft}?template=no-material-updates&state={state.value}|No material updates>")
    lines = [
        f"{head} for #{incident.id} *{escape(incident.title)}* "
        f"({incident.severity} · {state.label} · {incident.status_enum.label}); {last}.",
        links,
    ]
    if internal_at and (incident.last_published_at is None
                        or internal_at > incident.last_published_at):
        lines.append(
            f"The last update ({fmt_utc(internal_at, with_date=False)}) went neither to the "
            "status page nor to X: "
            "the public has not been told. Post a public update, or record that none is "
            f"needed: <{root}#no-public-post|No public post needed>")
    if handover:
        until = f", on call until {handover['until']}" if handover.get("until") else ""
        before = f" from {escape(handover['from'])}" if handover.get("from") else ""
        lines.append(f"Handed over at shift change ({fmt_utc(handover['at'], with_date=False)})"
                     f"{before} to {escape(handover['to'])} (PagerDuty{until}).")
    if kind == "escalation":
        person = incident.cmoc or incident.declared_by
        who = (f"<@{person.slack_user_id}>" if person and person.slack_user_id
               else escape(person.username) if person else "nobody")
        lines.insert(0, f"{mention + ' ' if mention else ''}the CMOC ({who}) has not posted the "
                        f"update due at {due}.")
    return "\n".join(lines)


def reminder_target(incident: Incident, config: dict[str, Any], kind: str) -> str | None:
    """Where a reminder goes. Reminders: the CMOC's DM, else the reminder channel.
    Escalations: where the people escalated to will see them — SLACK_ESCALATION_CHANNEL, else
    the incident's own Slack channel, else the reminder channel (never the CMOC's DM, where a
    mention of the incident manager notifies nobody)."""
    if kind == "escalation":
        return (config.get("SLACK_ESCALATION_CHANNEL") or incident.slack_channel
                or config.get("SLACK_REMINDER_CHANNEL"))
    person = incident.cmoc or incident.declared_by
    if person is not None and person.slack_user_id:
        return person.slack_user_id
    return config.get("SLACK_REMINDER_CHANNEL")
