"""Small helpers shared by the view modules."""

from __future__ import annotations

from flask import abort, current_app

from cmoc.messages import TemplateLibrary
from cmoc.models import Incident
from cmoc.services.components import component_catalog
from cmoc.services.incidents import IncidentFields, get_incident


def library() -> TemplateLibrary:
    return current_app.extensions["cmoc.templates"]


def component_names() -> list[str]:
    return [c["name"] for c in component_catalog(current_app.config)]


def incident_or_404(incident_id: int) -> Incident:
    incident = get_incident(incident_id)
    if incident is None:
        abort(404)
    return incident


def incident_fields_from(form) -> IncidentFields:
    return IncidentFields(
        title=form.get("title", ""),
        severity=form.get("severity", ""),
        status=form.get("status", ""),
        components=form.getlist("components"),
        issue_url=form.get("issue_url", ""),
        slack_channel=form.get("slack_channel", ""),
    )
