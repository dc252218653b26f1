"""Drafting updates: the form, its live preview endpoint, and saving drafts."""

from __future__ import annotations

from flask import abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user

from cmoc.auth import role_required
from cmoc.enums import ACTIVE_STATUSES, CHANNELS, Role, State
from cmoc.extensions import db
from cmoc.models import Incident, Update
from cmoc.services import ValidationError
from cmoc.services.drafts import (
    DraftInput,
    allowed_states,
    compose_draft,
    draft_from_update,
    save_draft,
)
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
    return DraftInput(
        state=form.get("state", ""), status=form.get("status", ""),
        template=form.get("template", ""), variables=variables, texts=texts, edited=edited,
        next_update_minutes=form.get("next_update_minutes", ""),
    )


def _compose(incident: Incident, draft: DraftInput):
    config = current_app.config
    return compose_draft(
        incident=incident, draft=draft, library=library(), cadence=config["CADENCE_MATRIX"],
        status_page_url=config["STATUS_PAGE_URL"], body_budget=config["TWEET_BODY_BUDGET"],
        now=utcnow(),
    )


def _render_form(incident: Incident, draft: DraftInput, update: Update | None,
                 errors: dict[str, str]):
    outcome = _compose(incident, draft)
    state = outcome.state or incident.state_enum
    return render_template(
        "updates/draft.html", incident=incident, update=update, draft=draft, outcome=outcome,
        errors=errors, states=allowed_states(incident.state_enum),
        templates=library().for_state(state), statuses=ACTIVE_STATUSES,
    ), 400 if errors else 200


def _handle(incident: Incident, update: Update | None):
    if incident.is_resolved:
        flash("This incident is resolved: no further updates.", "error")
        return redirect(url_for("web.incident_detail", incident_id=incident.id))
    if request.method == "GET":
        if update is not None:
            draft = draft_from_update(update)
        else:
            state = request.args.get("state") or incident.state
            draft = DraftInput(state=state, template=request.args.get("template", ""))
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
        return _render_form(incident, draft, update, {})
    try:
        saved = save_draft(
            incident=incident, draft=draft, author=current_user, library=library(),
            cadence=current_app.config["CADENCE_MATRIX"],
            status_page_url=current_app.config["STATUS_PAGE_URL"],
            body_budget=current_app.config["TWEET_BODY_BUDGET"], now=utcnow(), update=update,
        )
    except ValidationError as exc:
        return _render_form(incident, draft, update, exc.errors)
    flash(f"Draft saved at {fmt_utc(saved.updated_at, with_date=False)}.", "success")
    return redirect(url_for("web.edit_update", incident_id=incident.id, update_id=saved.id))


@bp.route("/incidents/<int:incident_id>/updates/new", methods=["GET", "POST"])
@role_required(Role.CMOC)
def new_update(incident_id: int):
    return _handle(incident_or_404(incident_id), None)


@bp.route("/incidents/<int:incident_id>/updates/<int:update_id>", methods=["GET", "POST"])
@role_required(Role.CMOC)
def edit_update(incident_id: int, update_id: int):
    incident = incident_or_404(incident_id)
    update = db.session.get(Update, update_id)
    if update is None or update.incident_id != incident.id:
        abort(404)
    if not update.is_draft:
        return redirect(url_for("web.incident_detail", incident_id=incident.id,
                                _anchor=f"update-{update.id}"))
    return _handle(incident, update)


@bp.post("/incidents/<int:incident_id>/preview")
@role_required(Role.CMOC)
def preview(incident_id: int):
    """Live preview: every channel's text and the tweet's weighted count, as JSON."""
    incident = incident_or_404(incident_id)
    outcome = _compose(incident, draft_from_form(request.form))
    return jsonify(
        texts=outcome.texts,
        rendered=outcome.rendered,
        tweet=outcome.tweet.as_dict(),
        next_update_at=fmt_utc(outcome.next_update_at) if outcome.next_update_at else None,
        errors=outcome.errors,
    )
