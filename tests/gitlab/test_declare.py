"""Declaring from the GitLab incident issue: the form's "Read from GitLab" step and the API's
`issue` field."""

from __future__ import annotations

import re

import pytest

from cmoc.extensions import db
from cmoc.fake_apis.gitlab import INCIDENT_PROJECT
from cmoc.models import Incident
from cmoc.services.components import refresh_components
from cmoc.services.delivering import statusio_for
from cmoc.services.tokens import create_token
from cmoc.timeutil import utcnow
from tests.factories import login, make_user


@pytest.fixture
def cmoc_client(gitlab_app):
    refresh_components(statusio=statusio_for(gitlab_app), now=utcnow())
    client = gitlab_app.test_client()
    login(client, make_user("carol", "cmoc"))
    return client


def opened(fakes, **extra):
    values = dict(title="Git over SSH failing", severity="UNKNOWN",
                  labels=["severity::2", "Service::Git", "Service::API", "Incident::Active"])
    return fakes.gitlab_api.open_issue(INCIDENT_PROJECT, **{**values, **extra})


def field(html: str, name: str) -> str:
    return re.search(rf'id="{name}" name="{name}"[^>]*value="([^"]*)"', html).group(1)


def test_read_from_gitlab_fills_the_empty_fields(cmoc_client, fakes):
    issue = opened(fakes)
    page = cmoc_client.post("/incidents/new", data={
        "action": "read_gitlab", "issue_url": issue["web_url"], "status": "service_disruption"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert field(html, "title") == "Git over SSH failing"
    assert '<option value="S2" selected' in html
    assert re.findall(r'value="([^"]+)" checked', html) == ["API", "Git Operations"]
    assert field(html, "slack_channel") == f"#incident-{issue['iid']}"
    assert field(html, "issue_url") == issue["web_url"]
    assert '<option value="service_disruption" selected' in html       # status: the CMOC's
    assert "Severity S2 from the label severity::2" in html
    # Declaring links the incident to its issue.
    declared = cmoc_client.post("/incidents/new", data={
        "action": "save", "title": "Git over SSH failing", "severity": "S2",
        "status": "service_disruption", "components": ["API", "Git Operations"],
        "issue_url": issue["web_url"], "slack_channel": f"#incident-{issue['iid']}"})
    assert declared.status_code == 302
    incident = db.session.query(Incident).one()
    assert incident.gitlab_issue == f"{INCIDENT_PROJECT}#{issue['iid']}"


def test_read_from_gitlab_keeps_what_was_typed(cmoc_client, fakes):
    issue = opened(fakes)
    page = cmoc_client.post("/incidents/new", data={
        "action": "read_gitlab", "issue_url": f"#{issue['iid']}", "title": "My own words",
        "severity": "S1", "components": ["Website"], "slack_channel": "#my-channel",
        "first_symptom": "slow pushes"})
    html = page.get_data(as_text=True)
    assert field(html, "title") == "My own words"
    assert '<option value="S1" selected' in html
    assert re.findall(r'value="([^"]+)" checked', html) == ["Website"]
    assert field(html, "slack_channel") == "#my-channel"
    assert field(html, "first_symptom") == "slow pushes"
    assert field(html, "issue_url") == issue["web_url"]           # the short form, resolved
    assert "Kept what you typed: title, severity, components, Slack channel." in html


def test_severity_falls_back_to_the_incident_severity_field(cmoc_client, fakes):
    issue = opened(fakes, labels=["Service::Pages"], severity="CRITICAL")
    html = cmoc_client.post("/incidents/new", data={
        "action": "read_gitlab", "issue_url": f"{INCIDENT_PROJECT}#{issue['iid']}"}
    ).get_data(as_text=True)
    assert '<option value="S1" selected' in html
    assert "from the severity field CRITICAL" in html
    # GitLab Pages is mapped but this status page has no such component: said, not ticked.
    assert "Not on the status page: GitLab Pages." in html
    assert re.findall(r'value="([^"]+)" checked', html) == []


@pytest.mark.parametrize(("text", "message"), [
    ("not an issue", "Paste the incident issue"),
    ("gitlab-com/gl-infra/production#999", "Could not read gitlab-com/gl-infra/production#999:"
                                           " GitLab: not found (HTTP 404"),
])
def test_read_errors_are_shown_on_the_field_and_nothing_is_lost(cmoc_client, text, message):
    page = cmoc_client.post("/incidents/new", data={"action": "read_gitlab", "issue_url": text,
                                                    "title": "typed"})
    html = page.get_data(as_text=True)
    assert page.status_code == 400
    assert 'id="error-issue_url"' in html and message in html
    assert field(html, "title") == "typed"


def test_gitlab_down_or_refusing_is_a_field_error(cmoc_client, fakes):
    issue = opened(fakes)
    fakes.fail("gitlab", f"issues/{issue['iid']}", status=503, body="down")
    html = cmoc_client.post("/incidents/new", data={
        "action": "read_gitlab", "issue_url": issue["web_url"]}).get_data(as_text=True)
    assert "GitLab server error (HTTP 503" in html


def test_without_gitlab_the_button_is_off(make_app):
    app = make_app()
    with app.app_context():
        client = app.test_client()
        login(client, make_user("carol", "cmoc"))
        html = client.get("/incidents/new").get_data(as_text=True)
        assert re.search(r'id="read-gitlab"[^>]*disabled', html)
        page = client.post("/incidents/new", data={"action": "read_gitlab",
                                                   "issue_url": "g/p#1"})
        assert "GitLab is not configured" in page.get_data(as_text=True)


def test_the_api_reads_missing_fields_from_the_issue(gitlab_app, fakes):
    refresh_components(statusio=statusio_for(gitlab_app), now=utcnow())
    make_user("api", "cmoc")
    _, token = create_token(username="api", name="t", now=utcnow())
    client = gitlab_app.test_client()
    auth = {"Authorization": f"Bearer {token}"}
    issue = opened(fakes)
    created = client.post("/api/v1/incidents", headers=auth,
                          json={"issue": issue["web_url"], "title": "Given title"})
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["title"] == "Given title" and body["severity"] == "S2"
    assert body["status"] == "partial_service_disruption"
    assert body["components"] == ["API", "Git Operations"]
    assert body["issue_url"] == issue["web_url"]
    assert body["slack_channel"] == f"#incident-{issue['iid']}"
    assert body["gitlab_issue"] == f"{INCIDENT_PROJECT}#{issue['iid']}"
    missing = client.post("/api/v1/incidents", headers=auth, json={"title": "No issue"})
    assert missing.status_code == 422
    assert set(missing.get_json()["error"]["fields"]) == {"severity", "status", "components"}
    unknown = client.post("/api/v1/incidents", headers=auth, json={"issue": "#4242"})
    assert unknown.status_code == 422
    assert "not found" in unknown.get_json()["error"]["fields"]["issue"]
    spec = client.get("/api/v1/openapi.json", headers=auth).get_json()["components"]["schemas"]
    assert "issue" in spec["IncidentCreate"]["properties"]
    assert "gitlab_issue" in spec["IncidentSummary"]["properties"]
