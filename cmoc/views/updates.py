"""Drafting updates: the form, its live preview endpoint, and saving drafts."""

from __future__ import annotations

import uuid

from flask import abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from cmoc.auth import role_required
from cmoc.channels.registry import configured_channels
from cmoc.enums import (
    ACTIVE_STATUSES,
    CHANNEL_LABELS,
    CHANNELS,
    OUTWARD_CHANNELS,
    DeliveryStatus,
    Role,
    State,
    Status,
)
from cmoc.extensions import db
from cmoc.models import Delivery, Incident, Update
from cmoc.services import ValidationError
from cmoc.services.components import components_without_ids
from cmoc.services.delivering import start_background
from cmoc.services.drafts import (
    AlreadyPublished,
    DraftInput,
    DraftSettings,
    allowed_states,
    compose_draft,
    draft_from_update,
    save_draft,
)
from cmoc.services.publishing import PublishConflict, retry_deliveries, start_publish
from cmoc.services.subscribers import NOTIFY_FLAGS, NOTIFY_LABELS, notify_summary
from cmoc.texts import NEXT_UPDATE, next_update_text
from cmoc.timeutil import fmt_utc, utcnow
from cmoc.views import bp
from cmoc.views.common import incident_or_404, library


def _normalise(text: str) -> str:
    return (text or "").replace("\r\n", "\n").strip()


def draft_from_form(form) -> DraftInput:
    """Reads the drafting form. A channel counts as hand-edited when its text differs from the
    text last rendered into it, or when it was already marked edited."""
    texts = {c: _normalise(form.get(f"text_{c}", "")) for c in CHANNELS}
    edited = {
        c for c in CHANNELS
        if form.get(f"edited_{c}") == "1"
        or (f"rendered_{c}" in form and texts[c] != _normalise(form.get(f"rendered_{c}", "")))
    }
    variables = {k[4:]: v for k, v in form.items() if k.startswith("var_")}
    # Checkboxes send nothing when unticked: the *_shown fields say the form had them.
    channels = set(form.getlist("channels")) if "channels_shown" in form else None
    notify = ({flag: form.get(f"notify_{flag}") == "1" for flag in NOTIFY_FLAGS}
              if "notify_shown" in form else None)
    return DraftInput(
        state=form.get("state", ""), status=form.get("status", ""),
        template=form.get("template", ""), variables=variables, texts=texts, edited=edited,
        next_update_minutes=form.get("next_update_minutes", ""),
        idempotency_key=form.get("idempotency_key", ""), channels=channels, notify=notify,
    )


def channel_choices(incident: Incident, draft: DraftInput, form=None) -> list[dict]:
    """Checkbox state per channel: all on, except public ones for a security issue."""
    configured = configured_channels(current_app.config)
    security = Status.SECURITY_ISSUE.value in (incident.status, draft.status)
    choices = []
    for channel in CHANNELS:
        if form is not None and "channels_shown" in form:
            checked = channel in form.getlist("channels")
        else:
            checked = not (security and channel in OUTWARD_CHANNELS)
        choices.append({"name": channel, "label": CHANNEL_LABELS[channel], "checked": checked,
                        "configured": configured[channel], "public": channel in OUTWARD_CHANNELS})
    return choices


def compose(incident: Incident, draft: DraftInput):
    return compose_draft(incident=incident, draft=draft,
                         settings=DraftSettings.from_app(current_app), now=utcnow())


def _render_form(incident: Incident, draft: DraftInput, update: Update | None,
                 errors: dict[str, str], form=None, *, saved: bool = False):
    choices = channel_choices(incident, draft, form)
    if draft.channels is None:
        # The boxes as shown decide which fields are needed and which problems block.
        draft.channels = {c["name"] for c in choices if c["checked"]}
    outcome = compose(incident, draft)
    state = outcome.state or incident.state_enum
    if not draft.idempotency_key:
        draft.idempotency_key = uuid.uuid4().hex
    return render_template(
        "updates/draft.html", incident=incident, update=update, draft=draft, outcome=outcome,
        errors=errors, states=allowed_states(incident.state_enum),
        templates=library().for_state(state), statuses=ACTIVE_STATUSES, channels=choices,
        confirm_public=bool(form is not None and form.get("confirm_public")),
        saved_not_published=saved, notify_flags=NOTIFY_FLAGS, notify_labels=NOTIFY_LABELS,
        notify_summary=notify_summary(outcome.notify), token=NEXT_UPDATE,
        next_update_text=next_update_text(outcome.next_update_at),
        missing_ids=components_without_ids(incident.components, current_app.config),
    ), 400 if errors else 200


def _handle(incident: Incident, update: Update | None):
    if incident.is_resolved:
        flash("This incident is resolved: no further updates.", "error")
        return redirect(url_for("web.incident_detail", incident_id=incident.id))
    if request.method == "GET":
        if update is not None:
            draft = draft_from_update(update)
        else:
            # Links (dashboard, reminders, declare form) may preselect state, template, values.
            state = request.args.get("state") or incident.state
            variables = {k[4:]: v for k, v in request.args.items() if k.startswith("var_")}
            draft = DraftInput(state=state, template=request.args.get("template", ""),
                               variables=variables)
        return _render_form(incident, draft, update, {})
    draft = draft_from_form(request.form)
    if request.form.get("action") == "switch":
        # State or template changed: re-render the form, keeping everything typed.
        if draft.template and (tpl := library().get(draft.template)) is not None:
            try:
                if not tpl.applies_to(State(draft.state)):
                    draft.template = ""
            except ValueError:
                draft.template = ""
        return _render_form(incident, draft, update, {}, request.form)
    try:
        saved = save_draft(
            incident=incident, draft=draft, author=current_user,
            settings=DraftSettings.from_app(current_app), now=utcnow(), update=update,
        )
    except ValidationError as exc:
        return _render_form(incident, draft, update, exc.errors, request.form)
    except AlreadyPublished as exc:
        flash("That update was already published; nothing was sent twice.", "info")
        return _to_update(incident, exc.update)
    action = request.form.get("action")
    if action not in ("publish", "publish_others"):
        flash(f"Draft saved at {fmt_utc(saved.updated_at, with_date=False)}.", "success")
        return redirect(url_for("web.edit_update", incident_id=incident.id, update_id=saved.id))
    settings = DraftSettings.from_app(current_app)
    try:
        # "Publish the others": the selected channels whose text is blocked are left out.
        start_publish(
            update=saved, channels=set(request.form.getlist("channels")),
            confirm_public=request.form.get("confirm_public") == "1", actor=current_user,
            cadence=settings.cadence, now=utcnow(), markers=settings.markers,
            skip_blocked=action == "publish_others",
        )
    except ValidationError as exc:
        draft.idempotency_key = saved.idempotency_key or ""
        return _render_form(incident, draft, saved, exc.errors, request.form, saved=True)
    except PublishConflict as exc:
        flash(str(exc), "error")
        return _to_update(incident, saved)
    _send_and_report(saved)
    return _to_update(incident, saved)


def _to_update(incident: Incident, update: Update):
    return redirect(url_for("web.incident_detail", incident_id=incident.id,
                            _anchor=f"update-{update.id}"))


def _send_and_report(update: Update) -> None:
    """Sends in the background; waits a little so the common case shows final results."""
    settled = start_background(current_app._get_current_object(), update.id,
                               wait_seconds=current_app.config.get("PUBLISH_WAIT_SECONDS", 8))
    db.session.expire_all()
    deliveries = db.session.scalars(select(Delivery).where(Delivery.update_id == update.id)).all()
    failed = [d for d in deliveries if d.status == DeliveryStatus.FAILED.value]
    dry = [d for d in deliveries if d.status == DeliveryStatus.DRY_RUN.value]
    if not settled:
        flash("Publishing… the deliveries below update live.", "info")
    elif failed:
        flash("Published with failures: " + ", ".join(
            f"{CHANNEL_LABELS[d.channel]} ({d.error})" for d in failed), "error")
    else:
        flash("Published." + (" Dry-run (no credentials): " + ", ".join(
            CHANNEL_LABELS[d.channel] for d in dry) if dry else ""), "success")


def _update_or_404(incident_id: int, update_id: int) -> tuple[Incident, Update]:
    incident = incident_or_404(incident_id)
    update = db.session.get(Update, update_id)
    if update is None or update.incident_id != incident.id:
        abort(404)
    return incident, update


@bp.route("/incidents/<int:incident_id>/updates/new", methods=["GET", "POST"])
@role_required(Role.CMOC)
def new_update(incident_id: int):
    return _handle(incident_or_404(incident_id), None)


@bp.route("/incidents/<int:incident_id>/updates/<int:update_id>", methods=["GET", "POST"])
@role_required(Role.CMOC)
def edit_update(incident_id: int, update_id: int):
    incident, update = _update_or_404(incident_id, update_id)
    if not update.is_draft:
        return redirect(url_for("web.incident_detail", incident_id=incident.id,
                                _anchor=f"update-{update.id}"))
    return _handle(incident, update)


@bp.post("/incidents/<int:incident_id>/updates/<int:update_id>/retry")
@role_required(Role.CMOC)
def retry_update(incident_id: int, update_id: int):
    incident, update = _update_or_404(incident_id, update_id)
    try:
        retry_deliveries(update=update, channels=set(request.form.getlist("channels")),
                         now=utcnow(), actor=current_user)
    except ValidationError as exc:
        flash(" ".join(exc.errors.values()), "error")
        return _to_update(incident, update)
    except PublishConflict as exc:
        flash(str(exc), "error")
        return _to_update(incident, update)
    _send_and_report(update)
    return _to_update(incident, update)


@bp.get("/incidents/<int:incident_id>/deliveries.json")
def deliveries_json(incident_id: int):
    """Delivery states of the incident's updates, for the live view on the incident page."""
    incident = incident_or_404(incident_id)
    rows = db.session.scalars(
        select(Delivery).join(Update).where(Update.incident_id == incident.id)
        .order_by(Delivery.id)).all()
    return jsonify(deliveries=[{
        "id": d.id, "update_id": d.update_id, "channel": d.channel, "status": d.status,
        "label": d.status_enum.label, "external_id": d.external_id, "attempts": d.attempts,
        "error": d.error, "settled": d.status_enum.settled,
    } for d in rows])
