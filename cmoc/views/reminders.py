"""Snooze, CMOC handover and the profile where a CMOC sets their Slack user id."""

from __future__ import annotations

import re

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user

from cmoc.auth import role_required, safe_next
from cmoc.enums import Role
from cmoc.extensions import db
from cmoc.services import ValidationError
from cmoc.services.audit import record
from cmoc.services.reminders import snooze, take_over
from cmoc.timeutil import fmt_utc, utcnow
from cmoc.views import bp
from cmoc.views.common import incident_or_404

SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{6,20}$")


@bp.post("/incidents/<int:incident_id>/snooze")
@role_required(Role.CMOC)
def snooze_incident(incident_id: int):
    incident = incident_or_404(incident_id)
    raw = request.form.get("minutes", "")
    try:
        snooze(incident=incident, minutes=int(raw) if raw.isdigit() else 0, actor=current_user,
               now=utcnow())
    except ValidationError as exc:
        flash(" ".join(exc.errors.values()), "error")
    else:
        flash(f"Snoozed: next update due {fmt_utc(incident.next_update_due_at)}.", "success")
    return redirect(safe_next(request.form.get("next")))


@bp.post("/incidents/<int:incident_id>/take-over")
@role_required(Role.CMOC)
def take_over_incident(incident_id: int):
    incident = incident_or_404(incident_id)
    take_over(incident=incident, actor=current_user, now=utcnow())
    flash(f"You are now the CMOC for #{incident.id}; reminders come to you.", "success")
    return redirect(url_for("web.incident_detail", incident_id=incident.id))


@bp.route("/profile", methods=["GET", "POST"])
def profile():
    errors: dict[str, str] = {}
    value = current_user.slack_user_id or ""
    if request.method == "POST":
        value = request.form.get("slack_user_id", "").strip().upper()
        if value and not SLACK_USER_ID.match(value):
            errors["slack_user_id"] = ("A Slack member id looks like U0123ABCD (Profile → ⋮ → "
                                       "Copy member ID).")
        else:
            record("profile.update", actor=current_user, target=current_user,
                   before={"slack_user_id": current_user.slack_user_id},
                   after={"slack_user_id": value or None})
            current_user.slack_user_id = value or None
            db.session.commit()
            flash("Saved. Reminders will come to you by direct message." if value else
                  "Saved. Reminders go to the reminder channel.", "success")
            return redirect(url_for("web.profile"))
    return render_template("profile.html", errors=errors, value=value), 400 if errors else 200
