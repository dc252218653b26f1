"""Block Kit for reminders and the /cmoc answers: the action buttons, their values, and the
"no material updates" texts shown before anything is posted.

A button's value names the incident and the due time the message is about
(`{"incident": 12, "due": 1795701600}`): an action is keyed by it, so two clicks on the same
message act once, and a click on a message whose due time has passed acts on nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from cmoc.channels.slack import escape
from cmoc.enums import CHANNEL_LABELS, CHANNELS, OUTWARD_CHANNELS, State, Status, UpdatePhase
from cmoc.extensions import db
from cmoc.messages import join_names
from cmoc.models import Incident, Update
from cmoc.services.drafts import DraftInput, DraftSettings, compose_draft
from cmoc.timeutil import fmt_utc

NMU_TEMPLATE = "no-material-updates"
SNOOZE_MINUTES = 10
# The template's required "what is happening now" when the CMOC has not written one (a saved
# "no material updates" draft, or text after `/cmoc nmu <id>`): plain, true in that state.
DEFAULT_DETAIL = {
    State.INVESTIGATING: "The team is continuing to investigate.",
    State.IDENTIFIED: "The team is working on a fix.",
    State.MONITORING: "The team is continuing to monitor the fix.",
}
DETAIL_MAX = 160
# Slack's limits: section text 3000, confirm dialog text 300, button value 2000.
SECTION_MAX, CONFIRM_MAX = 3000, 300


@dataclass(frozen=True)
class ActionRef:
    """What a button acts on: the incident, the due time its message was about, and (for
    "no material updates" from the slash command) the detail typed there."""

    incident_id: int
    due: int  # epoch seconds of the due time; 0 when the incident had none
    detail: str = ""

    @property
    def value(self) -> str:
        return json.dumps({"incident": self.incident_id, "due": self.due,
                           **({"detail": self.detail} if self.detail else {})},
                          separators=(",", ":"))

    @classmethod
    def for_incident(cls, incident: Incident, detail: str = "") -> ActionRef:
        due = incident.next_update_due_at
        return cls(incident.id, int(due.timestamp()) if due else 0, detail)

    @classmethod
    def parse(cls, raw: Any) -> ActionRef | None:
        """The value back from Slack; None for anything not built by `value`."""
        try:
            data = json.loads(raw) if isinstance(raw, str) and len(raw) <= 2000 else None
        except (ValueError, RecursionError):
            return None
        if not isinstance(data, dict):
            return None
        incident, due, detail = data.get("incident"), data.get("due"), data.get("detail", "")
        if (type(incident) is not int or type(due) is not int or not isinstance(detail, str)
                or not 0 < incident < 2**31 or not 0 <= due < 2**40):
            return None
        return cls(incident, due, "".join(c for c in detail[:DETAIL_MAX] if c.isprintable()))

    def matches(self, incident: Incident) -> bool:
        """Whether the incident is still due at the time the message was about."""
        return ActionRef.for_incident(incident).due == self.due

    @property
    def due_at(self) -> datetime | None:
        return datetime.fromtimestamp(self.due, UTC) if self.due else None


@dataclass
class NmuPreview:
    """The "no material updates" update as it would be published now."""

    texts: dict[str, str]          # channel -> text as sent (next-update time resolved)
    channels: list[str]
    next_update_at: datetime | None
    detail: str
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        when = fmt_utc(self.next_update_at, with_date=False) if self.next_update_at else "—"
        return (f"Posts to {join_names([CHANNEL_LABELS[c] for c in self.channels])}; "
                f"next update due {when}.")


def usual_channels(incident: Incident) -> set[str]:
    """The channels the drafting form preselects: all, but nothing outward for a security
    issue (that needs the form's explicit confirmation)."""
    if incident.status == Status.SECURITY_ISSUE.value:
        return set(CHANNELS) - set(OUTWARD_CHANNELS)
    return set(CHANNELS)


def saved_detail(incident: Incident) -> str:
    """The detail of the newest saved "no material updates" draft of this incident, if any."""
    return saved_details([incident.id]).get(incident.id, "")


def saved_details(incident_ids: list[int]) -> dict[int, str]:
    """`saved_detail` for many incidents in one query (a reminder pass renders thousands)."""
    if not incident_ids:
        return {}
    newest = select(Update.incident_id, Update.variables, func.row_number().over(
        partition_by=Update.incident_id,
        order_by=(Update.updated_at.desc(), Update.id.desc())).label("rank")).where(
        Update.incident_id.in_(incident_ids), Update.phase == UpdatePhase.DRAFT.value,
        Update.template == NMU_TEMPLATE).subquery()
    return {incident_id: str((variables or {}).get("detail") or "")
            for incident_id, variables in db.session.execute(
                select(newest.c.incident_id, newest.c.variables).where(newest.c.rank == 1))}


def nmu_draft(incident: Incident, detail: str = "", *, saved: str | None = None) -> DraftInput:
    """The draft the button publishes: the template, the incident's state, the usual
    channels; the detail typed, else the saved draft's (`saved`, when already read), else a
    plain default."""
    detail = "".join(c for c in detail if c.isprintable() or c.isspace())
    detail = (" ".join(detail.split())
              or (saved_detail(incident) if saved is None else saved)
              or DEFAULT_DETAIL.get(incident.state_enum, ""))[:DETAIL_MAX]
    return DraftInput(state=incident.state, template=NMU_TEMPLATE,
                      variables={"detail": detail}, channels=usual_channels(incident))


def nmu_preview(*, incident: Incident, settings: DraftSettings, now: datetime,
                detail: str = "", saved: str | None = None) -> NmuPreview:
    """Renders the update now (never raises): the texts and where they would go. A channel
    whose text is blocked is left out and named in `errors`."""
    draft = nmu_draft(incident, detail, saved=saved)
    outcome = compose_draft(incident=incident, draft=draft, settings=settings, now=now)
    errors = dict(outcome.errors)
    errors.update({f"text_{c}": p for c, p in outcome.blocked.items()})
    channels = [c for c in CHANNELS if c in outcome.channels and c not in outcome.blocked]
    if not channels and not outcome.errors:
        errors["channels"] = "Every channel's text is blocked."
    return NmuPreview(texts={c: outcome.resolved[c] for c in channels}, channels=channels,
                      next_update_at=outcome.next_update_at,
                      detail=draft.variables["detail"], errors=errors)


def button(text: str, action_id: str, *, value: str | None = None, url: str | None = None,
            style: str | None = None, confirm: dict | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {"type": "button", "action_id": action_id,
                              "text": {"type": "plain_text", "text": text, "emoji": True}}
    if value is not None:
        button["value"] = value
    if url is not None:
        button["url"] = url
    if style:
        button["style"] = style
    if confirm:
        button["confirm"] = confirm
    return button


def nmu_confirm(preview: NmuPreview) -> dict[str, Any]:
    """Slack's confirmation dialog: where it goes, the next-update time and the exact status
    page text (cut to Slack's 300 characters; the message after posting shows every text)."""
    lead = preview.summary + "\n"
    main = preview.texts.get("statusio") or next(iter(preview.texts.values()), "")
    room = CONFIRM_MAX - len(lead) - 2
    quoted = main if len(main) <= room else main[:max(room - 1, 0)] + "…"
    return {"title": {"type": "plain_text", "text": "Post “No material updates”?"},
            "text": {"type": "plain_text", "text": f"{lead}“{quoted}”"[:CONFIRM_MAX]},
            "confirm": {"type": "plain_text", "text": "Post now"},
            "deny": {"type": "plain_text", "text": "Cancel"}}


def nmu_button(preview: NmuPreview, ref: ActionRef) -> dict[str, Any]:
    return button("Post “no material updates”", "nmu", value=ref.value, style="primary",
                   confirm=nmu_confirm(preview))


def reminder_blocks(*, incident: Incident, text: str, base_url: str, draft_id: int | None,
                    preview: NmuPreview | None) -> list[dict[str, Any]]:
    """The reminder as blocks: its text, then Open draft · Post "no material updates" ·
    Snooze 10 min · Take over. Without a usable preview (a resolved incident, a state the
    template does not fit) the no-material-updates button is left out."""
    root = f"{base_url.rstrip('/')}/incidents/{incident.id}"
    draft_url = (f"{root}/updates/{draft_id}" if draft_id
                 else f"{root}/updates/new?template={NMU_TEMPLATE}&state={incident.state}")
    ref = ActionRef.for_incident(incident)
    buttons = [button("Open draft", "open_draft", url=draft_url)]
    if preview is not None and preview.channels and not any(
            k in preview.errors for k in ("state", "template", "var_detail", "channels")):
        buttons.append(nmu_button(preview, ref))
    buttons += [button(f"Snooze {SNOOZE_MINUTES} min", "snooze", value=ref.value),
                button("Take over", "take_over", value=ref.value)]
    return [{"type": "section", "text": {"type": "mrkdwn", "text": text[:SECTION_MAX],
                                         "verbatim": True}},
            {"type": "actions", "block_id": f"cmoc_reminder_{incident.id}",
             "elements": buttons}]


def done_blocks(text: str, outcome: str) -> list[dict[str, Any]]:
    """The reminder after an action: its text, no buttons, and who did what."""
    return [{"type": "section", "text": {"type": "mrkdwn", "text": text[:SECTION_MAX],
                                         "verbatim": True}},
            {"type": "context", "elements": [{"type": "mrkdwn",
                                              "text": outcome[:SECTION_MAX]}]}]


def preview_text(incident: Incident, preview: NmuPreview) -> str:
    """The /cmoc nmu answer: every text exactly as it would be posted."""
    lines = [f"*No material updates* for #{incident.id} *{escape(incident.title)}*",
             preview.summary]
    for channel in preview.channels:
        body = escape(preview.texts[channel]).replace("\n", "\n>")
        lines.append(f"*{CHANNEL_LABELS[channel]}*\n>{body}")
    lines += [f":warning: {escape(v)}" for v in preview.errors.values()]
    return "\n".join(lines)
