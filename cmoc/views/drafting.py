"""The drafting form's live side: the preview it asks for on every change (and every 20 s,
so the next-update time stays true while the form is open) and its heartbeat."""

from __future__ import annotations

from flask import jsonify, request
from flask_login import current_user

from cmoc.auth import role_required
from cmoc.enums import Role
from cmoc.services.presence import heartbeat
from cmoc.services.subscribers import notify_summary
from cmoc.texts import next_update_text
from cmoc.timeutil import fmt_utc, utcnow
from cmoc.views import bp
from cmoc.views.common import incident_or_404
from cmoc.views.updates import compose, draft_from_form


@bp.post("/incidents/<int:incident_id>/preview")
@role_required(Role.CMOC)
def preview(incident_id: int):
    """Live preview, as JSON: every channel's text (with the token) and as it would be sent
    now, the tweet's weighted count, each channel's problem and warning, the next-update
    time, the subscriber choice in words, and the field errors."""
    incident = incident_or_404(incident_id)
    outcome = compose(incident, draft_from_form(request.form))
    return jsonify(
        texts=outcome.texts,
        rendered=outcome.rendered,
        resolved=outcome.resolved,
        tweet=outcome.tweet.as_dict(),
        next_update_at=fmt_utc(outcome.next_update_at) if outcome.next_update_at else None,
        next_update_text=next_update_text(outcome.next_update_at),
        problems=outcome.problems,
        blocked=outcome.blocked,
        warnings=outcome.warnings,
        channels=sorted(outcome.channels),
        internal=outcome.internal,
        notify=outcome.notify,
        notify_summary=notify_summary(outcome.notify),
        errors=outcome.errors,
    )


@bp.post("/incidents/<int:incident_id>/drafting")
@role_required(Role.CMOC)
def drafting_heartbeat(incident_id: int):
    """The drafting page's heartbeat (every 20 s; `gone` when the page is left): while the
    incident's CMOC is writing, no heads-up interrupts them."""
    incident = incident_or_404(incident_id)
    heartbeat(incident=incident, user=current_user, now=utcnow(),
              gone=request.form.get("gone") == "1")
    return jsonify(ok=True)
