"""Dashboard, health check, declaring, viewing and editing incidents."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from cmoc.auth import role_required
from cmoc.enums import ACTIVE_STATUSES, Role
from cmoc.gitlab_settings import gitlab_settings
from cmoc.services import ValidationError
from cmoc.services.aftercare import after_resolved
from cmoc.services.clock_state import clock_is_healthy, clock_last_seen
from cmoc.services.components import (
    components_fetched_at,
    components_without_ids,
    ensure_components,
    refresh_components,
)
from cmoc.services.delivering import statusio_for
from cmoc.services.gitlab_issues import fill_form, gitlab_read_summary, gitlab_ref, read_issue
from cmoc.services.incidents import (
    IncidentResolved,
    declare_incident,
    edit_incident,
    list_incidents,
    statuspage_problem,
    timeline,
    timeline_entries,
    waiting_drafts,
)
from cmoc.services.live import dashboard_version, incident_version
from cmoc.services.metrics import incident_comms
from cmoc.services.oncall import oncall_summary
from cmoc.services.reminder_messages import reminder_context
from cmoc.services.reminders import reminder_problems
from cmoc.services.slack_actions import last_actions, last_reminders
from cmoc.timeutil import utcnow
from cmoc.views import bp
from cmoc.views.common import component_names, incident_fields_from, incident_or_404
from cmoc.views.display import expanded_updates, thread_links


@bp.get("/healthz")
def healthz():
    return {"status": "ok"}


@bp.get("/")
def dashboard():
    version = dashboard_version()  # before the data: a change meanwhile still shows
    now = utcnow()
    active = list_incidents(active=True, now=now)
    overdue = [i for i in active if i.next_update_due_at and i.next_update_due_at <= now]
    return render_template("dashboard.html", active=active, overdue=overdue,
                           reminder_problems=reminder_problems([i.id for i in active]),
                           last_reminders=last_reminders([i.id for i in active]),
                           slack_actions=last_actions([i.id for i in active]),
                           live_version=version,
                           drafts=waiting_drafts([i.id for i in active]),
                           resolved=list_incidents(active=False, limit=10), now=now,
                           clock_last_seen=clock_last_seen(),
                           clock_ok=clock_is_healthy(now=now),
                           oncall=oncall_summary(current_app.config, now=now))


@bp.get("/incidents/resolved")
def resolved():
    return render_template("resolved.html", incidents=list_incidents(active=False), now=utcnow())


@bp.route("/incidents/new", methods=["GET", "POST"])
@role_required(Role.CMOC)
def declare():
    errors: dict[str, str] = {}
    if request.method == "GET":
        # First visit with status.io configured: show the real page's components.
        ensure_components(statusio=statusio_for(current_app), now=utcnow())
    elif request.form.get("action") == "refresh_components":
        _refresh_components()
    elif request.form.get("action") == "read_gitlab":
        form, errors = _read_gitlab(request.form)
        return _declare_form(form, errors)
    else:
        try:
            incident = declare_incident(
                fields=incident_fields_from(request.form), author=current_user,
                component_names=component_names(),
                title_max=current_app.config["TITLE_MAX_LENGTH"], now=utcnow(),
                gitlab_issue=gitlab_ref(request.form.get("issue_url"), current_app.config),
                opening_draft=True,
            )
        except ValidationError as exc:
            errors = exc.errors
        else:
            flash(f"Incident #{incident.id} declared. Check the preview and publish the first "
                  "update.", "success")
            symptom = request.form.get("first_symptom", "").strip()
            args = {"template": "investigating", "var_symptom": symptom} if symptom else {}
            return redirect(url_for("web.new_update", incident_id=incident.id, **args))
    return _declare_form({**request.form.to_dict(),
                          "components": request.form.getlist("components")}, errors)


def _declare_form(form: dict, errors: dict[str, str]):
    return render_template(
        "incidents/form.html", errors=errors, form=form, incident=None,
        selected_components=form.get("components") or [],
        components=component_names(), statuses=ACTIVE_STATUSES,
        fetched_at=components_fetched_at(), gitlab=gitlab_settings(current_app.config),
        no_ids=_no_ids(),
    ), 400 if errors else 200


def _read_gitlab(raw) -> tuple[dict, dict[str, str]]:
    """"Read from GitLab": fills the fields left empty from the incident issue named in the
    issue field; everything typed stays."""
    form = {**raw.to_dict(), "components": raw.getlist("components")}
    try:
        facts = read_issue(text=raw.get("issue_url", ""), config=current_app.config,
                           component_names=component_names())
    except ValidationError as exc:
        return form, exc.errors
    form, filled, kept = fill_form(form, facts)
    flash(gitlab_read_summary(facts, filled, kept), "success")
    return form, {}


def _no_ids() -> set[str]:
    """Components status.io has no id for (only while status.io is configured)."""
    return set(components_without_ids(component_names(), current_app.config))


def _refresh_components() -> None:
    """Reloads the component list from status.io; the form is then shown again as typed."""
    count, error = refresh_components(statusio=statusio_for(current_app), now=utcnow(),
                                      actor=current_user)
    if error:
        flash(f"Components not refreshed: {error}", "error")
    else:
        flash(f"Loaded {count} components from status.io. Everything you typed is kept.",
              "success")


@bp.get("/incidents/<int:incident_id>")
def incident_detail(incident_id: int):
    incident = incident_or_404(incident_id)
    version = incident_version(incident.id)  # before the data: a change meanwhile still shows
    updates = timeline(incident=incident)
    deliveries = [d for u in updates for d in u.deliveries]
    return render_template(
        "incidents/detail.html", incident=incident, updates=updates, now=utcnow(),
        entries=timeline_entries(incident=incident, updates=updates),
        live=any(not d.status_enum.settled for d in deliveries),
        statuspage_problem=statuspage_problem(updates), comms=incident_comms(incident),
        expanded=expanded_updates(updates), threads=thread_links(incident, current_app.config),
        draft=next((u for u in updates if u.is_draft), None),
        after=after_resolved(incident), live_version=version,
        internal_at=reminder_context(incident)["internal_at"],
        heads_up_minutes=current_app.config.get("REMINDER_HEADS_UP_MINUTES", 2),
    )


@bp.route("/incidents/<int:incident_id>/edit", methods=["GET", "POST"])
@role_required(Role.CMOC)
def edit(incident_id: int):
    incident = incident_or_404(incident_id)
    errors: dict[str, str] = {}
    form = request.form
    if request.method == "POST" and form.get("action") == "refresh_components":
        _refresh_components()
    elif request.method == "POST":
        try:
            edit_incident(
                incident=incident, fields=incident_fields_from(form),
                component_names=component_names(),
                title_max=current_app.config["TITLE_MAX_LENGTH"],
                cadence=current_app.config["CADENCE_MATRIX"], now=utcnow(), actor=current_user,
            )
        except ValidationError as exc:
            errors = exc.errors
        except IncidentResolved as exc:
            flash(str(exc), "error")
            return redirect(url_for("web.incident_detail", incident_id=incident.id))
        else:
            flash("Incident updated.", "success")
            return redirect(url_for("web.incident_detail", incident_id=incident.id))
    else:
        form = {
            "title": incident.title, "severity": incident.severity, "status": incident.status,
            "issue_url": incident.issue_url, "slack_channel": incident.slack_channel or "",
        }
    return render_template(
        "incidents/form.html", errors=errors, form=form, incident=incident,
        selected_components=(request.form.getlist("components") if request.method == "POST"
                             else incident.components),
        components=component_names(), statuses=ACTIVE_STATUSES,
        fetched_at=components_fetched_at(), no_ids=_no_ids(),
    ), 400 if errors else 200
