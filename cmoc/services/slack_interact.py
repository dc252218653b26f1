"""Answering Slack: a button click or a `/cmoc` command, within Slack's 3 seconds.

A click is checked (who, which action, which message) and claimed at once; the work (the
publish and its deliveries, a snooze, a handover) runs in a thread after the answer, and then
the reminder is edited in place (chat.update; an ephemeral message through its response_url)
to say who did what.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Flask

from cmoc.channels.http import make_session
from cmoc.channels.registry import channel_settings, http_timeout
from cmoc.channels.slack import Slack, escape
from cmoc.extensions import db
from cmoc.models import Incident, SlackAction
from cmoc.services.delivering import run_deliveries
from cmoc.services.drafts import DraftSettings
from cmoc.services.slack_actions import (
    ACTIONS,
    active_incidents,
    already,
    claim,
    delivery_summary,
    find_user,
    may_act,
    perform,
    refusal,
)
from cmoc.services.slack_blocks import (
    ActionRef,
    button,
    done_blocks,
    nmu_button,
    nmu_preview,
    preview_text,
)
from cmoc.timeutil import fmt_duration, fmt_utc, utcnow

log = logging.getLogger(__name__)
INCIDENT_ID = re.compile(r"^[0-9]{1,10}$")
HELP = ("`/cmoc status` active incidents and when their updates are due · `/cmoc update <id>` "
        "a link to the draft · `/cmoc nmu <id> [what is happening now]` post “No material "
        "updates” after you confirm")


@dataclass(frozen=True)
class Reply:
    """Where the clicked message is, to edit it afterwards."""

    channel: str | None
    ts: str | None
    response_url: str | None
    text: str
    ephemeral: bool


def slack_client(config: dict[str, Any]) -> Slack:
    settings = channel_settings(config)
    return Slack(session=make_session(timeout=http_timeout(config)),
                 base_url=settings["SLACK_API_URL"], token=settings.get("SLACK_BOT_TOKEN"),
                 channel=None, group_id=None)


def _user(app: Flask, slack_user_id: str):
    slack = slack_client(app.config)
    return find_user(slack_user_id=slack_user_id,
                     email_of=lambda uid: slack.user_email(uid) if slack.token else None)


def answer_click(app: Flask, *, slack_user_id: str, action_id: str, value: Any,
                 reply: Reply, now: datetime) -> None:
    """Checks and claims a button click; everything Slack is told goes out after the HTTP
    answer, in a thread."""
    if action_id not in ACTIONS:
        return  # "Open draft" is a link: Slack tells us of the click, there is nothing to do
    ref = ActionRef.parse(value)
    if ref is None:
        return
    user = _user(app, slack_user_id)
    if not may_act(user):
        text = refusal(user=user, slack_user_id=slack_user_id, what=f"button {action_id}",
                       now=now)
        _in_background(app, _respond, app, reply, {"response_type": "ephemeral",
                                                   "replace_original": False, "text": text})
        return
    if db.session.get(Incident, ref.incident_id) is None:
        # A forged or stale value naming no incident: nothing to claim (the claim's foreign
        # key would refuse it, and there would be no earlier claim to point to).
        _in_background(app, _respond, app, reply, {"response_type": "ephemeral",
                                                   "replace_original": False,
                                                   "text": "This incident does not exist."})
        return
    row, won = claim(action=action_id, ref=ref, user=user, slack_user_id=slack_user_id,
                     now=now)
    if row is None:
        return
    if not won:
        _in_background(app, _respond, app, reply, {"response_type": "ephemeral",
                                                   "replace_original": False,
                                                   "text": escape(already(row))})
        return
    _in_background(app, _work, app, row.id, ref, reply)


def _work(app: Flask, row_id: int, ref: ActionRef, reply: Reply) -> None:
    with app.app_context():
        try:
            row = db.session.get(SlackAction, row_id)
            outcome = perform(row=row, ref=ref, settings=DraftSettings.from_app(app),
                              now=utcnow())
        except Exception:
            log.exception("Slack action %s failed", row_id)
            db.session.rollback()
            row = db.session.get(SlackAction, row_id)
            row.status, row.detail, row.finished_at = "failed", "Internal error.", utcnow()
            db.session.commit()
            _respond(app, reply, {"response_type": "ephemeral", "replace_original": False,
                                  "text": "That did not work (an error in cmoc); nothing was "
                                          "posted. Use the web page."})
            return
        finally:
            db.session.remove()
    text = outcome.text
    if outcome.update_id:
        run_deliveries(app, outcome.update_id)
        with app.app_context():
            text += " " + delivery_summary(outcome.update_id)
            db.session.remove()
    if outcome.status in ("done", "stale"):
        _edit(app, reply, text)
    elif outcome.offer_break:
        _respond(app, reply, {"response_type": "ephemeral", "replace_original": False,
                              "text": text, "blocks": [
                                  {"type": "section", "text": {"type": "mrkdwn",
                                                               "text": escape(text)}},
                                  {"type": "actions", "elements": [button(
                                      "Snooze anyway (breaks the promise)", "snooze_break",
                                      value=ref.value, style="danger")]}]})
    else:
        _respond(app, reply, {"response_type": "ephemeral", "replace_original": False,
                              "text": escape(text)})


def _edit(app: Flask, reply: Reply, outcome: str) -> None:
    """The clicked message, edited in place: no more buttons, and who did what."""
    blocks = done_blocks(reply.text, ":white_check_mark: " + escape(outcome))
    text = f"{reply.text}\n{outcome}"
    if reply.ephemeral or not (reply.channel and reply.ts):
        _respond(app, reply, {"replace_original": True, "text": text, "blocks": blocks})
        return
    result = slack_client(app.config).update_message(channel=reply.channel, ts=reply.ts,
                                                     text=text, blocks=blocks)
    if not result.ok:
        log.warning("chat.update of %s/%s failed: %s", reply.channel, reply.ts, result.error)
        _respond(app, reply, {"response_type": "ephemeral", "replace_original": False,
                              "text": escape(outcome)})


def _respond(app: Flask, reply: Reply, body: dict[str, Any]) -> None:
    """Posts to the response_url, only when it is Slack's (a forged URL is never called)."""
    prefix = str(app.config.get("SLACK_RESPONSE_URL_PREFIX") or "https://hooks.slack.com/")
    if not reply.response_url or not reply.response_url.startswith(prefix):
        log.warning("Slack answer dropped: response_url is not under %s", prefix)
        return
    result = slack_client(app.config).respond(reply.response_url, body)
    if not result.ok:
        log.warning("Slack response_url failed: %s", result.error)


def _in_background(app: Flask, target, *args) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True, name="slack-action")
    threads: list[threading.Thread] = app.extensions.setdefault("cmoc.slack_threads", [])
    threads[:] = [t for t in threads if t.is_alive()]
    threads.append(thread)
    thread.start()
    return thread


def wait_for_background(app: Flask, timeout: float = 30.0) -> None:
    """Waits for the work started after answering Slack (tests, and a clean shutdown)."""
    for thread in list(app.extensions.get("cmoc.slack_threads", [])):
        thread.join(timeout)


def answer_command(app: Flask, *, slack_user_id: str, text: str,
                   now: datetime) -> dict[str, Any]:
    """The ephemeral answer to `/cmoc ...` (all of it fits in Slack's 3 seconds)."""
    words = text.split(maxsplit=2)
    sub = words[0].lower() if words else "help"
    user = _user(app, slack_user_id)
    if not may_act(user):
        return _ephemeral(refusal(user=user, slack_user_id=slack_user_id,
                                  what=f"/cmoc {text}", now=now))
    if sub == "status":
        return _ephemeral(_status(now))
    if sub not in ("update", "nmu") or len(words) < 2:
        return _ephemeral(HELP)
    incident = _incident(words[1])
    if incident is None:
        return _ephemeral(f"No active incident #{escape(words[1][:20])}. `/cmoc status` "
                          "lists them.")
    root = f"{str(app.config['BASE_URL']).rstrip('/')}/incidents/{incident.id}"
    if sub == "update":
        from cmoc.services.reminder_messages import reminder_context

        draft_id = reminder_context(incident)["draft_id"]
        url = (f"{root}/updates/{draft_id}" if draft_id
               else f"{root}/updates/new?state={incident.state}")
        label = "Open your saved draft" if draft_id else "Draft the update"
        return _ephemeral(f"#{incident.id} *{escape(incident.title)}*: <{url}|{label}>")
    detail = words[2] if len(words) > 2 else ""
    preview = nmu_preview(incident=incident, settings=DraftSettings.from_app(app), now=now,
                          detail=detail)
    body = preview_text(incident, preview)
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {
        "type": "mrkdwn", "text": body[:3000], "verbatim": True}}]
    if preview.channels and not preview.errors:
        blocks.append({"type": "actions", "elements": [
            nmu_button(preview, ActionRef.for_incident(incident, preview.detail))]})
    return {**_ephemeral(body), "blocks": blocks}


def _ephemeral(text: str) -> dict[str, Any]:
    return {"response_type": "ephemeral", "text": text}


def _incident(raw: str):
    from cmoc.models import Incident

    raw = raw.lstrip("#")
    if not INCIDENT_ID.match(raw) or int(raw) >= 2**31:
        return None
    incident = db.session.get(Incident, int(raw))
    return incident if incident is not None and not incident.is_resolved else None


def _status(now: datetime) -> str:
    incidents = active_incidents()
    if not incidents:
        return "No active incidents."
    lines = []
    for i in incidents:
        due = i.next_update_due_at
        when = "no update due" if due is None else (
            f"next update due {fmt_utc(due, with_date=False)} ("
            + (f"in {fmt_duration((due - now).total_seconds())})" if due >= now
               else f"{fmt_duration((now - due).total_seconds())} overdue)"))
        cmoc = i.cmoc.username if i.cmoc else "no CMOC"
        lines.append(f"#{i.id} *{escape(i.title)}* ({i.severity} · {i.state_enum.label} · "
                     f"{escape(cmoc)}): {when}")
    return "\n".join(lines)

