"""Declaring, listing and editing incidents through the web pages."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cmoc.extensions import db
from cmoc.models import Incident
from cmoc.timeutil import utcnow
from tests.factories import ISSUE_URL, login, make_incident, make_user

VALID = {
    "title": "Elevated error rates on GitLab.com", "severity": "S1",
    "status": "service_disruption", "components": ["Website", "API"], "issue_url": ISSUE_URL,
    "slack_channel": "#incident-12345",
}


@pytest.fixture
def cmoc_client(client):
    login(client, make_user("carol", "cmoc"))
    return client


def test_declare_incident_then_draft(cmoc_client):
    page = cmoc_client.get("/incidents/new")
    assert b"Git Operations" in page.data
    assert b"<title>Declare incident \xc2\xb7 cmoc</title>" in page.data
    assert b"Refresh components from status.io" in page.data
    response = cmoc_client.post("/incidents/new", data=VALID)
    assert response.status_code == 302
    incident = db.session.query(Incident).one()
    assert response.headers["Location"] == f"/incidents/{incident.id}/updates/new"
    assert (incident.title, incident.severity, incident.state, incident.status) == (
        VALID["title"], "S1", "investigating", "service_disruption")
    assert incident.components == ["Website", "API"]
    assert incident.slack_channel == "#incident-12345"
    assert incident.next_update_due_at is not None  # first update is due at once
    dashboard = cmoc_client.get("/").get_data(as_text=True)
    assert VALID["title"] in dashboard and "Website, API" in dashboard
    assert "overdue" in dashboard and "none published" in dashboard


@pytest.mark.parametrize(("field", "value", "message"), [
    ("title", "", "Title is required"),
    ("title", "x" * 121, "Title is too long"),
    ("severity", "S5", "Choose a severity"),
    ("status", "operational", "Choose a status"),
    ("status", "meltdown", "Choose a status"),
    ("components", ["Website", "Mainframe"], "Unknown component: Mainframe"),
    ("components", [], "at least one affected component"),
    ("issue_url", "", "Link the incident issue"),
    ("issue_url", "gitlab.com/issues/1", "full http(s) URL"),
    ("issue_url", "javascript:alert(1)", "full http(s) URL"),
    ("issue_url", "https://exa mple.com/x", "full http(s) URL"),
    ("slack_channel", "#Bad Channel!", "Slack channel must look like"),
])
def test_declare_validation_keeps_what_was_typed(cmoc_client, field, value, message):
    data = {**VALID, field: value}
    response = cmoc_client.post("/incidents/new", data=data)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in html
    assert 'id="error-' + field + '"' in html
    if field != "title":
        assert VALID["title"] in html  # nothing typed is lost
    assert db.session.query(Incident).count() == 0


def test_html_in_fields_is_escaped_everywhere(cmoc_client):
    title = '<script>alert("x")</script>'
    cmoc_client.post("/incidents/new", data={**VALID, "title": title})
    incident = db.session.query(Incident).one()
    for url in ("/", f"/incidents/{incident.id}", f"/incidents/{incident.id}/updates/new",
                f"/incidents/{incident.id}/edit"):
        html = cmoc_client.get(url).get_data(as_text=True)
        assert title not in html
        assert "&lt;script&gt;" in html


def test_dashboard_orders_by_due_and_marks_overdue(cmoc_client):
    now = utcnow()
    later = make_incident(title="Later one", next_update_due_at=now + timedelta(minutes=20),
                          last_published_at=now - timedelta(minutes=10))
    overdue = make_incident(title="Late one", next_update_due_at=now - timedelta(minutes=3),
                            last_published_at=now - timedelta(minutes=13))
    make_incident(title="Old resolved", state="resolved", status="operational",
                  resolved_at=now, next_update_due_at=None)
    html = cmoc_client.get("/").get_data(as_text=True)
    assert html.index("Late one") < html.index("Later one")
    assert "(1 overdue)" in html
    assert f'class="overdue" data-incident="{overdue.id}"' in html
    assert f'data-incident="{later.id}"' in html
    assert "13m ago" in html and "3m overdue" in html
    assert "Recently resolved" in html
    assert "Old resolved" in cmoc_client.get("/incidents/resolved").get_data(as_text=True)


def test_edit_incident_and_severity_change_moves_due_time(cmoc_client):
    published = utcnow() - timedelta(minutes=5)
    incident = make_incident(severity="S2", state="identified", last_published_at=published,
                             next_update_due_at=published + timedelta(minutes=30))
    response = cmoc_client.post(f"/incidents/{incident.id}/edit",
                                data={**VALID, "severity": "S1", "title": "Renamed"})
    assert response.status_code == 302
    db.session.refresh(incident)
    assert incident.title == "Renamed" and incident.severity == "S1"
    assert incident.next_update_due_at == published + timedelta(minutes=10)
    bad = cmoc_client.post(f"/incidents/{incident.id}/edit", data={**VALID, "severity": "S0"})
    assert bad.status_code == 400


def test_unknown_incident_is_404(cmoc_client):
    assert cmoc_client.get("/incidents/999").status_code == 404
    assert cmoc_client.get("/incidents/999/updates/new").status_code == 404
