"""Snooze (with the public promise), "no public post needed", the heads-up switch, CMOC handover
and the profile where a CMOC sets their Slack user id."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from cmoc.auth import role_required, safe_next
from cmoc.enums import Role
from cmoc.parsing import parse_int
from cmoc.services import ValidationError
from cmoc.services.profile import update_profile
from cmoc.services.promises import (
    PromiseAtStake,
    decide_no_public_post,
    set_heads_up,
    snooze,
)
from cmoc.services.reminders import take_over
from cmoc.timeutil import fmt_utc, utcnow
from cmoc.views import bp
from cmoc.views.common import incident_or_404
from cmoc.views.sessions import sessions_context


@bp.post("/incidents/<int:incident_id>/snooze")
@role_required(Role.CMOC)
def snooze_incident(incident_id: int):
    incident = incident_or_404(incident_id)
    # 0 (refused by the service with its own message) for anything not 1..60 in ASCII digits.
    minutes = parse_int(request.form.get("minutes"), lo=1, hi=60) or 0
    try:
        snooze(incident=incident, minutes=minutes, actor=current_user, now=utcnow(),
               break_promise=request.form.get("break_promise") == "1")
    except PromiseAtStake as exc:
        # Past the promised time only with an explicit confirmation, on a page of its own.
        return render_template("incidents/snooze_confirm.html", incident=incident,
                               minutes=minutes, message=exc.errors["break_promise"],
                               next=safe_next(request.form.get("next"))), 409
    except ValidationError as exc:
        flash(" ".join(exc.errors.values()), "error")
    else:
        flash(f"Snoozed: next update due {fmt_utc(incident.next_update_due_at)}.", "success")
    return redirect(safe_next(request.form.get("next")))


@bp.post("/incidents/<int:incident_id>/no-public-post")
@role_required(Role.CMOC)
def no_public_post(incident_id: int):
    incident = incident_or_404(incident_id)
    try:
        decide_no_public_post(incident=incident, reason=request.form.get("reason", "")[:2000],
                              actor=current_user, cadence=current_app.config["CADENCE_MATRIX"],
                              now=utcnow())
    except ValidationError as exc:
        flash(" ".join(exc.errors.values()), "error")
    else:
        flash("Recorded: no public post needed. Next reminder at "
              f"{fmt_utc(incident.next_update_due_at, with_date=False)}.", "success")
    return redirect(url_for("web.incident_detail", incident_id=incident.id))


@bp.post("/incidents/<int:incident_id>/heads-up")
@role_required(Role.CMOC)
def heads_up(incident_id: int):
    incident = incident_or_404(incident_id)
    on = request.form.get("on") == "1"
    set_heads_up(incident=incident, on=on, actor=current_user, now=utcnow())
    flash("Heads-up before due is on." if on else "Heads-up before due is off for this "
          "incident; the due reminder still comes.", "success")
    return redirect(url_for("web.incident_detail", incident_id=incident.id))


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
    email = current_user.email or ""
    if request.method == "POST":
        value = request.form.get("slack_user_id", "")
        email = request.form.get("email", "")
        errors = update_profile(user=current_user, slack_user_id=value, email=email)
        if not errors:
            flash("Saved. Reminders will come to you by direct message."
                  if current_user.slack_user_id else
                  "Saved. Reminders go to the reminder channel.", "success")
            return redirect(url_for("web.profile"))
    return (render_template("profile.html", errors=errors, value=value, email=email,
                            password_errors={}, **sessions_context()), 400 if errors else 200)
