"""Drafting updates: transitions, templates, validation, live preview, saving."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cmoc.enums import State
from cmoc.extensions import db
from cmoc.models import Update
from cmoc.services.drafts import DraftInput, DraftSettings, allowed_states, compose_draft
from tests.factories import ISSUE_URL, login, make_incident, make_user

NOW = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)


def compose(app, incident, **draft):
    draft.setdefault("state", incident.state)
    return compose_draft(
        incident=incident, draft=DraftInput(**draft), settings=DraftSettings(
            library=app.extensions["cmoc.templates"], cadence=app.config["CADENCE_MATRIX"],
            status_page_url="https://status.gitlab.com", body_budget=220), now=NOW,
    )


def test_states_only_move_forward():
    assert allowed_states(State.INVESTIGATING) == list(State)
    assert allowed_states(State.IDENTIFIED) == [State.IDENTIFIED, State.MONITORING,
                                                State.RESOLVED]
    assert allowed_states(State.MONITORING) == [State.MONITORING, State.RESOLVED]
    assert allowed_states(State.RESOLVED) == []


def test_compose_default_template_and_next_update_time(app):
    incident = make_incident(severity="S2")
    outcome = compose(app, incident, variables={"symptom": "slow pipelines"})
    assert outcome.ok and outcome.template.slug == "investigating"
    assert outcome.next_update_at == NOW + timedelta(minutes=15)
    # The text keeps the token (it follows the publish time); the preview shows it resolved.
    assert "Next update by {next_update}." in outcome.texts["statusio"]
    assert "Next update by 14:15 UTC." in outcome.resolved["statusio"]
    override = compose(app, incident, variables={"symptom": "x"}, next_update_minutes="45")
    assert override.next_update_at == NOW + timedelta(minutes=45)


@pytest.mark.parametrize(("current", "draft", "field", "message"), [
    ("monitoring", {"state": "investigating"}, "state", "back to Investigating"),
    ("identified", {"state": "bogus"}, "state", "Choose the state"),
    ("investigating", {"state": "investigating", "status": "meltdown"}, "status",
     "Unknown status"),
    ("investigating", {"state": "monitoring", "status": "operational"}, "status",
     "Operational comes with Resolved"),
    ("investigating", {"state": "identified", "template": "resolved"}, "template",
     "not a template for Identified"),
    ("investigating", {"state": "investigating", "template": "nope"}, "template",
     "Unknown template"),
    ("investigating", {"state": "investigating", "next_update_minutes": "0"},
     "next_update_minutes", "1 to 1440"),
    ("investigating", {"state": "investigating", "next_update_minutes": "1441"},
     "next_update_minutes", "24 hours"),
    ("investigating", {"state": "resolved", "next_update_minutes": "10"},
     "next_update_minutes", "no next update"),
    ("investigating", {"state": "investigating"}, "var_symptom", "required"),
])
def test_compose_rejects_bad_input(app, current, draft, field, message):
    incident = make_incident(state=current)
    outcome = compose(app, incident, **draft)
    assert message in outcome.errors[field]


def test_resolved_forces_operational_and_nothing_after_resolved(app):
    incident = make_incident()
    outcome = compose(app, incident, state="resolved", variables={"resolution": "fixed"})
    assert outcome.ok and outcome.status.value == "operational" and outcome.next_update_at is None
    done = make_incident(state="resolved", status="operational", resolved_at=NOW)
    assert "nothing can be published after Resolved" in compose(app, done).errors["state"]


def test_hand_edited_text_is_kept_and_checked(app):
    incident = make_incident()
    outcome = compose(app, incident, variables={"symptom": "errors"},
                      texts={"twitter": "My own words " + ISSUE_URL}, edited={"twitter"})
    assert outcome.texts["twitter"] == "My own words " + ISSUE_URL
    assert outcome.rendered["twitter"].startswith("We're seeing errors")
    # A problem in one channel's text blocks that channel only; it never stops saving.
    too_long = compose(app, incident, variables={"symptom": "errors"},
                       texts={"twitter": "日" * 141}, edited={"twitter"})
    assert too_long.ok and set(too_long.problems) == {"twitter"}
    assert "282 weighted characters" in too_long.problems["twitter"]
    empty = compose(app, incident, variables={"symptom": "errors"}, texts={"slack": " "},
                    edited={"slack"})
    assert empty.ok and "Slack text is empty" in empty.problems["slack"]


@pytest.fixture
def cmoc_client(client):
    login(client, make_user("carol", "cmoc"))
    return client


def test_preview_endpoint_returns_texts_and_tweet_count(cmoc_client):
    incident = make_incident()
    data = cmoc_client.post(f"/incidents/{incident.id}/preview", data={
        "state": "investigating", "template": "investigating",
        "var_symptom": "elevated error rates", "text_twitter": "", "rendered_twitter": "",
    }).json
    assert data["texts"]["twitter"].startswith("We're seeing elevated error rates")
    assert data["tweet"]["limit"] == 280
    assert data["tweet"]["weighted_length"] < 280 and data["tweet"]["valid"]
    # A hand-edited tweet is counted as typed: URLs count 23, CJK counts 2.
    data = cmoc_client.post(f"/incidents/{incident.id}/preview", data={
        "state": "investigating", "template": "investigating", "var_symptom": "x",
        "text_twitter": "日本 " + ISSUE_URL, "edited_twitter": "1",
    }).json
    assert data["tweet"]["weighted_length"] == 4 + 1 + 23


def test_save_draft_and_reopen_it(cmoc_client):
    incident = make_incident()
    form = cmoc_client.get(f"/incidents/{incident.id}/updates/new").get_data(as_text=True)
    assert 'value="investigating" selected' in form
    response = cmoc_client.post(f"/incidents/{incident.id}/updates/new", data={
        "action": "save", "state": "investigating", "template": "investigating",
        "status": "partial_service_disruption", "var_symptom": "elevated error rates",
        "text_slack": "Custom slack text", "rendered_slack": "something else",
    })
    assert response.status_code == 302
    update = db.session.query(Update).one()
    assert update.phase == "draft" and update.author.username == "carol"
    assert update.status == "partial_service_disruption"
    assert update.text_slack == "Custom slack text" and update.edited_channels == ["slack"]
    assert update.text_statusio.startswith("We're seeing elevated error rates")
    assert response.headers["Location"] == f"/incidents/{incident.id}/updates/{update.id}"
    reopened = cmoc_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Custom slack text" in reopened and 'value="elevated error rates"' in reopened
    # the incident itself only changes when an update is published
    db.session.refresh(incident)
    assert incident.status == "service_disruption"
    timeline = cmoc_client.get(f"/incidents/{incident.id}").get_data(as_text=True)
    assert "Draft" in timeline and "carol" in timeline and "Custom slack text" in timeline


def test_invalid_draft_is_not_saved_and_keeps_input(cmoc_client):
    incident = make_incident(state="monitoring")
    response = cmoc_client.post(f"/incidents/{incident.id}/updates/new", data={
        "action": "save", "state": "investigating", "template": "investigating",
        "var_symptom": "<b>typed</b>", "text_twitter": "a" * 300, "edited_twitter": "1",
    })
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "states only move forward" in html
    assert "&lt;b&gt;typed&lt;/b&gt;" in html and "a" * 300 in html
    assert db.session.query(Update).count() == 0


def test_switching_template_keeps_typed_values(cmoc_client):
    incident = make_incident()
    response = cmoc_client.post(f"/incidents/{incident.id}/updates/new", data={
        "action": "switch", "state": "investigating", "template": "no-material-updates",
        "var_symptom": "kept", "var_detail": "Still working on it.",
    })
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'name="var_detail"' in html and "Still working on it." in html
    assert "No material updates to report. Still working on it." in html


def test_drafting_on_resolved_incident_is_refused(cmoc_client):
    incident = make_incident(state="resolved", status="operational", resolved_at=NOW)
    response = cmoc_client.get(f"/incidents/{incident.id}/updates/new")
    assert response.status_code == 302
    response = cmoc_client.post(f"/incidents/{incident.id}/updates/new", data={
        "action": "save", "state": "resolved", "template": "resolved", "var_resolution": "x"})
    assert response.status_code == 302 and db.session.query(Update).count() == 0
