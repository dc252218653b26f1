"""Drafting updates: state transitions, template rendering per channel, validation, saving.

A draft is checked per channel: a problem in one channel's text (empty, over 280, an unfilled
[marker]) blocks only that channel, and never stops the draft being saved. A template field is
required only while some selected channel's text is still rendered from the template.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from cmoc import texts as text_rules
from cmoc.cadence import MAX_MINUTES, Cadence
from cmoc.enums import (
    CHANNELS,
    PUBLIC_CHANNELS,
    State,
    Status,
    UpdatePhase,
)
from cmoc.extensions import db
from cmoc.messages import (
    MessageContext,
    MessageTemplate,
    TemplateLibrary,
    clean_variables,
    comment_from_status_page,
    render,
)
from cmoc.models import Incident, Update, User
from cmoc.parsing import parse_int
from cmoc.services import ValidationError
from cmoc.services.audit import record
from cmoc.services.draft_fields import (  # noqa: F401  (allowed_states is used from here)
    allowed_states,
    clean_channels,
    clean_notify,
    clean_status,
    published_in,
)
from cmoc.services.subscribers import default_notify
from cmoc.texts import TEXT_LIMITS  # noqa: F401  (re-exported: where the limits used to live)
from cmoc.tweet import TweetCount, count_tweet


@dataclass
class DraftInput:
    """A draft as typed: raw strings, exactly what the form or API sent."""

    state: str
    status: str = ""
    template: str = ""
    variables: dict[str, str] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    # Channels whose text was edited by hand: their text is kept, not re-rendered.
    edited: set[str] = field(default_factory=set)
    next_update_minutes: str = ""
    # Same key, same update: a resubmitted form or API call never creates a second one.
    idempotency_key: str = ""
    # The channels chosen to publish to (None: all). Fields are required, and problems
    # block, only for these.
    channels: set[str] | None = None
    # status.io subscriber flags {email, sms, webhook}; None: the configured default.
    notify: dict[str, bool] | None = None


@dataclass(frozen=True)
class DraftSettings:
    """What drafting needs from the app: templates, cadence, status page URL, tweet budget."""

    library: TemplateLibrary
    cadence: Cadence
    status_page_url: str
    body_budget: int
    # status.io's subscriber flags when an update does not choose (config STATUSIO_NOTIFY).
    notify_default: dict[str, bool] = field(default_factory=lambda: default_notify(None))

    @classmethod
    def from_app(cls, app) -> DraftSettings:
        config = app.config
        return cls(library=app.extensions["cmoc.templates"], cadence=config["CADENCE_MATRIX"],
                   status_page_url=config["STATUS_PAGE_URL"],
                   body_budget=config["TWEET_BODY_BUDGET"],
                   notify_default=default_notify(config.get("STATUSIO_NOTIFY")))

    @property
    def markers(self) -> dict[str, str]:
        return self.library.marker_labels()


@dataclass
class DraftOutcome:
    state: State | None
    status: Status | None
    template: MessageTemplate | None
    variables: dict[str, str]
    texts: dict[str, str]
    rendered: dict[str, str]
    tweet: TweetCount
    next_update_at: datetime | None
    next_update_minutes: int | None
    errors: dict[str, str]
    # Per channel (all three): why it cannot be sent; blocks only that channel.
    problems: dict[str, str] = field(default_factory=dict)
    # Each text as it would be sent now (the next-update token resolved).
    resolved: dict[str, str] = field(default_factory=dict)
    # Per channel: worth a look, never blocking (a literal, stale next-update time).
    warnings: dict[str, str] = field(default_factory=dict)
    channels: set[str] = field(default_factory=lambda: set(CHANNELS))
    notify: dict[str, bool] = field(default_factory=dict)
    # Slack only: an internal update; the public next-update time stays where it was.
    internal: bool = False
    # Minutes until the next update (override or cadence): what the Monitoring wait follows.
    gap_minutes: int | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def blocked(self) -> dict[str, str]:
        """Problems of the selected channels: these stop a publish that includes them."""
        return {c: p for c, p in self.problems.items() if c in self.channels}


def compose_draft(
    *, incident: Incident, draft: DraftInput, settings: DraftSettings, now: datetime,
) -> DraftOutcome:
    """Validates a draft and renders its texts; never raises for bad input, returns errors."""
    library, cadence = settings.library, settings.cadence
    errors: dict[str, str] = {}
    current = incident.state_enum
    state: State | None = None
    if incident.is_resolved:
        errors["state"] = "This incident is resolved: nothing can be published after Resolved."
    else:
        try:
            state = State(draft.state)
        except ValueError:
            errors["state"] = "Choose the state this update moves the incident to."
        else:
            if state not in allowed_states(current):
                errors["state"] = (f"Cannot go from {current.label} back to {state.label}: "
                                   "states only move forward.")
    status = clean_status(draft.status, state=state, incident=incident, errors=errors)

    template = library.get(draft.template) if draft.template else None
    if template is None and state is not None and not draft.template:
        template = library.default_for(state, follow_up=published_in(incident, state))
    if template is None:
        errors["template"] = "Unknown template."
    elif state is not None and not template.applies_to(state):
        errors["template"] = f"“{template.label}” is not a template for {state.label}."

    minutes = None
    raw_minutes = (draft.next_update_minutes or "").strip()
    if raw_minutes:
        if state is State.RESOLVED:
            errors["next_update_minutes"] = "A resolved incident has no next update."
        elif (minutes := parse_int(raw_minutes, lo=1, hi=MAX_MINUTES)) is None:
            errors["next_update_minutes"] = (
                "Next update must be in 1 to 1440 minutes (24 hours); leave empty for the "
                "cadence.")

    channels = clean_channels(draft.channels, errors)
    internal = not channels & set(PUBLIC_CHANNELS)
    # The gap until the next update: the CMOC's override, else the cadence; none once resolved.
    gap_minutes = None
    if state is not None and state is not State.RESOLVED:
        gap_minutes = minutes or int(
            cadence.interval(state, incident.severity_enum).total_seconds() // 60)
    next_at = now + timedelta(minutes=gap_minutes) if gap_minutes else None
    if internal and next_at is not None:
        # Slack only tells nobody outside: the public next-update time does not move.
        next_at = incident.next_update_due_at

    rendered = {c: "" for c in CHANNELS}
    # A hand-written status page text is what the incident issue's comment carries too.
    derived = {"gitlab"} if "statusio" in draft.edited and "gitlab" not in draft.edited else set()
    if template is not None:
        # Fields are needed only for the selected channels whose text is still rendered.
        needed = template.variables_used_by(channels - set(draft.edited) - derived)
        values, var_errors = clean_variables(template, draft.variables, needed=needed)
        errors.update({f"var_{k}": v for k, v in var_errors.items()})
        context = MessageContext(
            title=incident.title, severity=incident.severity_enum, state=state or current,
            status=status or incident.status_enum, components=tuple(incident.components),
            issue_url=incident.issue_url or "", status_page_url=settings.status_page_url,
            slack_channel=incident.slack_channel, next_update_at=next_at,
            next_update_minutes=gap_minutes,
        )
        rendered = render(template, context=context, values=values)
    else:
        values = {k: str(v) for k, v in draft.variables.items()}

    texts = {}
    for channel in CHANNELS:
        typed = (draft.texts.get(channel) or "").strip()
        texts[channel] = typed if channel in draft.edited else rendered[channel]
    if derived:
        texts["gitlab"] = comment_from_status_page(texts["statusio"],
                                                   severity=incident.severity_enum.value)
        # The form keeps the rendered text beside each box and counts a box that differs from
        # it as edited by hand: the derived comment must not look edited, or it would freeze.
        rendered = {**rendered, "gitlab": texts["gitlab"]}
    if state is State.RESOLVED:
        next_at = None
    markers = settings.markers
    problems = text_rules.problems(texts, next_update_at=next_at, markers=markers)
    resolved = {c: text_rules.resolve(t, next_update_at=next_at) for c, t in texts.items()}
    tweet = count_tweet(resolved["twitter"], body_budget=settings.body_budget)
    return DraftOutcome(
        state=state, status=status, template=template, variables=values, texts=texts,
        rendered=rendered, tweet=tweet, next_update_at=next_at, next_update_minutes=minutes,
        errors=errors, problems=problems, resolved=resolved,
        warnings=text_rules.stale_times(texts, next_update_at=next_at), channels=channels,
        notify=clean_notify(draft.notify, settings.notify_default), internal=internal,
        gap_minutes=gap_minutes,
    )


def save_draft(
    *, incident: Incident, draft: DraftInput, author: User, settings: DraftSettings,
    now: datetime, update: Update | None = None,
) -> Update:
    """Stores a new or changed draft; raises ValidationError and stores nothing on bad input.

    With an idempotency key already used by this incident, that update is changed instead
    (raises AlreadyPublished if it is no longer a draft).
    """
    key = (draft.idempotency_key or "").strip()[:64]
    if update is None and key:
        update = find_by_key(incident=incident, key=key)
    if update is not None and update.phase != UpdatePhase.DRAFT.value:
        raise AlreadyPublished(update)
    outcome = compose_draft(
        incident=incident, draft=draft, settings=settings, now=now,
    )
    if not outcome.ok:
        raise ValidationError(outcome.errors)
    if update is None:
        update = Update(incident_id=incident.id, author_id=author.id, created_at=now,
                        idempotency_key=key or None)
        db.session.add(update)
    update.state = outcome.state.value
    update.status = outcome.status.value
    update.template = outcome.template.slug
    update.variables = outcome.variables
    update.text_statusio = outcome.texts["statusio"]
    update.text_twitter = outcome.texts["twitter"]
    update.text_slack = outcome.texts["slack"]
    update.text_gitlab = outcome.texts["gitlab"]
    update.edited_channels = sorted(set(draft.edited) & set(CHANNELS))
    update.next_update_minutes = outcome.next_update_minutes
    update.statusio_notify = outcome.notify
    update.updated_at = now
    db.session.flush()
    record("draft.save", actor=author, target=update, now=now, after={
        "incident_id": incident.id, "state": update.state, "status": update.status,
        "template": update.template, "texts": {c: update.text_for(c) for c in CHANNELS}})
    try:
        db.session.commit()
    except IntegrityError:
        # A concurrent request with the same key won the insert: use its update.
        db.session.rollback()
        existing = find_by_key(incident=incident, key=key) if key else None
        if existing is None:
            raise
        if existing.phase != UpdatePhase.DRAFT.value:
            raise AlreadyPublished(existing) from None
        return existing
    return update


class AlreadyPublished(Exception):
    """The draft this request refers to was already published."""

    def __init__(self, update: Update):
        super().__init__(f"update {update.id} is already {update.phase}")
        self.update = update


def find_by_key(*, incident: Incident, key: str) -> Update | None:
    found = db.session.scalar(select(Update).where(Update.idempotency_key == key))
    if found is not None and found.incident_id != incident.id:
        raise ValidationError({"idempotency_key": "This key belongs to another incident."})
    return found


def draft_from_update(update: Update) -> DraftInput:
    """The DraftInput that reproduces a saved draft; hand-edited texts stay as saved."""
    return DraftInput(
        state=update.state, status=update.status, template=update.template,
        variables=dict(update.variables or {}),
        texts={c: update.text_for(c) for c in CHANNELS}, edited=set(update.edited_channels or []),
        next_update_minutes=str(update.next_update_minutes or ""),
        notify=dict(update.statusio_notify) if update.statusio_notify else None,
    )
