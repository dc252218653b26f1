"""GitLab pages: the shift handover (preview, the button, past handovers) and the GitLab facts
the dashboard and incident page show (prompts from the issue, stakeholder notices)."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from cmoc.auth import role_required
from cmoc.enums import Role
from cmoc.extensions import db
from cmoc.gitlab_settings import gitlab_settings, handover_settings, stakeholder_settings
from cmoc.models import Incident, Notice
from cmoc.services.gitlab_follow import pending_prompts
from cmoc.services.handover import (
    previous_shift,
    recent_handovers,
    render_body,
    shift_at,
    shift_report,
    title_for,
    write_handover,
)
from cmoc.services.sandbox import SandboxUnavailable
from cmoc.services.sandbox_gitlab import STATE_LABELS, add_label, gitlab_view, open_incident_issue
from cmoc.timeutil import utcnow
from cmoc.views import bp


def _shifts(now):
    starts = handover_settings(current_app.config).shift_starts
    return {"current": shift_at(now, starts), "previous": previous_shift(now, starts)}


@bp.get("/handover")
def handover():
    now = utcnow()
    shifts = _shifts(now)
    start, end = shifts["current"]
    preview = render_body(shift_report(start=start, end=end, now=now,
                                       config=current_app.config))
    return render_template("handover.html", now=now, shifts=shifts, preview=preview,
                           preview_title=title_for(start, end), handovers=recent_handovers(),
                           gitlab=gitlab_settings(current_app.config),
                           schedule=handover_settings(current_app.config))


@bp.post("/handover")
@role_required(Role.CMOC)
def write_handover_now():
    now = utcnow()
    which = request.form.get("shift", "current")
    if which not in ("current", "previous"):
        flash("Choose the current or the previous shift.", "error")
        return redirect(url_for("web.handover"))
    start, end = _shifts(now)[which]
    row = write_handover(config=current_app.config, start=start, end=end, now=now,
                         actor=current_user, via="web")
    if row.status == "sent":
        flash(f"{row.title}: {row.issue_url}", "success")
    elif row.status == "dry_run":
        flash(f"{row.title} was not written: {row.error}", "error")
    elif row.status == "sending":
        flash(f"{row.title} is being written right now (by {row.via}); reload in a moment.",
              "success")
    else:
        flash(f"{row.title} was not written: {row.error} Try again.", "error")
    return redirect(url_for("web.handover", _anchor=f"handover-{row.id}"))


@bp.app_template_global()
def gitlab_prompts(incidents: list[Incident]) -> dict:
    """The states GitLab reached that cmoc has not published yet, per incident."""
    return pending_prompts(incidents)


@bp.app_template_global()
def gitlab_panel(incident: Incident) -> dict:
    """What the incident page shows about GitLab and the stakeholders."""
    notices = list(db.session.scalars(select(Notice).where(
        Notice.incident_id == incident.id,
        Notice.kind.in_(["stakeholder", "stakeholder_update", "gitlab_label", "gitlab_ping"]))
        .order_by(Notice.id)))
    return {"settings": gitlab_settings(current_app.config),
            "stakeholders": stakeholder_settings(current_app.config),
            "prompt": pending_prompts([incident]).get(incident.id),
            "roots": [n for n in notices if n.kind == "stakeholder"],
            "replies": [n for n in notices if n.kind == "stakeholder_update"],
            "labels": [n for n in notices if n.kind == "gitlab_label"],
            "pings": [n for n in notices if n.kind == "gitlab_ping"]}


# -- the sandbox's GitLab (Sandbox page) ------------------------------------------------------
@bp.app_template_global()
def sandbox_gitlab() -> dict | None:
    view = gitlab_view(current_app.config)
    return {**view, "labels": STATE_LABELS} if view is not None else None


@bp.post("/sandbox/gitlab/issues")
@role_required(Role.CMOC)
def sandbox_gitlab_issue():
    title, severity = request.form.get("title", "").strip(), request.form.get("severity", "")
    if not title or severity not in ("1", "2", "3", "4"):
        flash("Give the incident issue a title and a severity.", "error")
        return redirect(url_for("web.sandbox", _anchor="gitlab"))
    try:
        issue = open_incident_issue(current_app.config, title=title, severity=severity)
    except SandboxUnavailable as exc:
        flash(str(exc), "error")
    else:
        flash(f"The sandbox's GitLab opened incident issue #{issue['iid']} (severity::{severity}"
              "); its webhook tells cmoc.", "success")
    return redirect(url_for("web.sandbox", _anchor="gitlab"))


@bp.post("/sandbox/gitlab/labels")
@role_required(Role.CMOC)
def sandbox_gitlab_label():
    try:
        add_label(current_app.config, iid=int(request.form.get("iid", "0")),
                  label=request.form.get("label", ""))
    except (SandboxUnavailable, ValueError) as exc:
        flash(str(exc), "error")
    else:
        flash(f"Labelled #{request.form.get('iid')} {request.form.get('label')} on the "
              "sandbox's GitLab.", "success")
    return redirect(url_for("web.sandbox", _anchor="gitlab"))
