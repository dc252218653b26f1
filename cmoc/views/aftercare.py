"""After Resolved: the incident review link, reading the status page back, and closing an
incident declared by mistake."""

from __future__ import annotations

import threading

from flask import current_app, flash, redirect, request, url_for
from flask_login import current_user

from cmoc.auth import role_required
from cmoc.enums import Role
from cmoc.services import ValidationError
from cmoc.services.aftercare import add_postmortem, check_live_page, close_without_posting
from cmoc.services.delivering import statusio_for
from cmoc.services.notices import send_notices
from cmoc.timeutil import utcnow
from cmoc.views import bp
from cmoc.views.common import incident_or_404


def _back(incident_id: int, anchor: str = "after-resolved"):
    return redirect(url_for("web.incident_detail", incident_id=incident_id, _anchor=anchor))


@bp.post("/incidents/<int:incident_id>/postmortem")
@role_required(Role.CMOC)
def postmortem(incident_id: int):
    incident = incident_or_404(incident_id)
    try:
        add_postmortem(incident=incident, url=request.form.get("postmortem_url", ""),
                       actor=current_user, config=current_app.config, now=utcnow())
    except ValidationError as exc:
        flash(" ".join(exc.errors.values()), "error")
        return _back(incident_id)
    # Sent in the background (looked up before any resend); the clock retries if needed.
    thread = threading.Thread(target=send_notices, args=(current_app._get_current_object(),),
                              daemon=True)
    thread.start()
    thread.join(current_app.config.get("PUBLISH_WAIT_SECONDS", 8))
    flash("Incident review link saved and posted to the Slack thread. Add it to the status.io "
          "incident too (status.io has no API for it).", "success")
    return _back(incident_id)


@bp.post("/incidents/<int:incident_id>/live-check")
@role_required(Role.CMOC)
def live_check(incident_id: int):
    incident = incident_or_404(incident_id)
    statusio = statusio_for(current_app)
    if not incident.statusio_incident_id or not statusio.configured:
        flash("Nothing to read back: this incident is not on a status page cmoc can read.",
              "error")
        return _back(incident_id)
    event = check_live_page(incident=incident, statusio=statusio, now=utcnow())
    flash(event.detail["summary"], "success" if event.detail.get("ok") else "error")
    return _back(incident_id)


@bp.post("/incidents/<int:incident_id>/close")
@role_required(Role.CMOC)
def close_incident(incident_id: int):
    incident = incident_or_404(incident_id)
    try:
        close_without_posting(incident=incident, reason=request.form.get("reason", ""),
                              actor=current_user, now=utcnow())
    except ValidationError as exc:
        flash(" ".join(exc.errors.values()), "error")
        return _back(incident_id, anchor="close")
    flash(f"Incident #{incident.id} closed without any public post.", "success")
    return redirect(url_for("web.incident_detail", incident_id=incident.id))
