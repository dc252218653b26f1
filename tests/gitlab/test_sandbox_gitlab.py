"""A deployment without GITLAB_TOKEN practises with the sandbox's GitLab: the Sandbox page
opens an incident issue, its webhook (signed with a secret derived from SECRET_KEY) reaches
cmoc, and the issue's state survives a sandbox restart."""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import select

from cmoc.extensions import db
from cmoc.fake_apis import FakeApis
from cmoc.fake_apis.gitlab import INCIDENT_PROJECT
from cmoc.gitlab_settings import gitlab_settings, sandbox_webhook_secret
from cmoc.models import Incident
from tests.factories import login, make_user
from tests.gitlab.conftest import serve, wait_for


@pytest.fixture
def sandbox_app(make_app, sandbox):
    app = make_app(SANDBOX_URL=sandbox.url, BASE_URL="http://cmoc.test",
                   SLACK_REMINDER_CHANNEL="#cmoc-reminders")
    with app.app_context():
        yield app
        db.session.remove()


def test_without_a_token_gitlab_is_the_sandboxs(sandbox_app, sandbox):
    settings = gitlab_settings(sandbox_app.config)
    assert settings.sandboxed and settings.url == f"{sandbox.url}/gitlab"
    assert settings.incident_project == INCIDENT_PROJECT
    assert settings.webhook_secret == sandbox_webhook_secret("test-secret-key")
    assert not gitlab_settings({"GITLAB_TOKEN": "real", "SANDBOX_URL": sandbox.url}).sandboxed


def test_the_sandbox_page_opens_an_incident_issue_that_becomes_an_incident(sandbox_app,
                                                                          sandbox):
    with serve(sandbox_app) as url:
        sandbox.gitlab_api.hooks.add(INCIDENT_PROJECT, url=f"{url}/hooks/gitlab",
                                     token=sandbox_webhook_secret("test-secret-key"))
        client = sandbox_app.test_client()
        login(client, make_user("trainee", "cmoc"))
        done = client.post("/sandbox/gitlab/issues", data={"title": "Practice: API errors",
                                                           "severity": "1"},
                           follow_redirects=True)
        assert "opened incident issue #1" in done.get_data(as_text=True)
        sandbox.gitlab_api.hooks.wait()

        def declared():
            db.session.expire_all()
            return db.session.scalar(select(Incident))
        incident = wait_for(declared)
        assert incident.title == "Practice: API errors" and incident.severity == "S1"
        assert wait_for(lambda: [m for m in sandbox.slack_messages
                                 if "Practice: API errors" in (m["text"] or "")])
        client.post("/sandbox/gitlab/labels", data={"iid": "1",
                                                    "label": "Incident::Mitigated"})
        sandbox.gitlab_api.hooks.wait()
        assert wait_for(lambda: "Incident::Mitigated on GitLab"
                        in client.get("/").get_data(as_text=True))
        page = client.get("/sandbox").get_data(as_text=True)
        assert 'id="gitlab-issue-1"' in page and "Incident::Mitigated" in page
    # The sandbox keeps its GitLab across a restart.
    state = sandbox.control.state_path
    again = FakeApis(sandbox=True, state_path=state).start()
    try:
        view = requests.get(f"{again.url}/_sandbox/gitlab", timeout=10).json()
        assert [i["title"] for i in view["issues"]] == ["Practice: API errors"]
        assert again.gitlab_api.open_issue(INCIDENT_PROJECT, title="next")["iid"] == 2
    finally:
        again.stop()


def test_the_sandbox_refuses_bad_requests(sandbox):
    assert requests.post(f"{sandbox.url}/_sandbox/gitlab/issues", json={"title": "x"},
                         timeout=10).status_code == 400
    assert requests.post(f"{sandbox.url}/_sandbox/gitlab/labels", json={"iid": 9,
                                                                        "add": "x"},
                         timeout=10).status_code == 400


def test_done_when_an_s1_issue_reaches_every_channel_and_is_labelled(make_app, sandbox):
    """Issue 14's "done when", with the sandbox: an issue labelled severity::1 becomes an
    incident and a Slack ping; its first update reaches the status page, X, Slack, the
    stakeholder channels and the issue itself, and the issue gets the status page label."""
    from cmoc.services.stakeholders import notices_pass
    from cmoc.timeutil import utcnow
    from tests.factories import CHANNELS, deliveries, publish

    app = make_app(SANDBOX_URL=sandbox.url, BASE_URL="http://cmoc.test",
                   SLACK_REMINDER_CHANNEL="#cmoc-reminders", PUBLISH_BACKOFF_SECONDS=0,
                   SLACK_STAKEHOLDER_CHANNELS="#developer-relations,#customer-success")
    with app.app_context(), serve(app) as url:
        sandbox.gitlab_api.hooks.add(INCIDENT_PROJECT, url=f"{url}/hooks/gitlab",
                                     token=sandbox_webhook_secret("test-secret-key"))
        issue = sandbox.gitlab_api.open_issue(INCIDENT_PROJECT, title="Web UI returns 500s",
                                              labels=["severity::1"])
        sandbox.gitlab_api.hooks.wait()

        def declared():
            db.session.expire_all()
            return db.session.scalar(select(Incident))
        incident = wait_for(declared)
        assert incident.severity == "S1" and incident.issue_url == issue["web_url"]
        assert wait_for(lambda: [m for m in sandbox.slack_messages
                                 if "Web UI returns 500s" in (m["text"] or "")])
        client = app.test_client()
        login(client, make_user("carol", "cmoc"))
        publish(client, incident, symptom="errors on every page", channels=[*CHANNELS, "gitlab"])
        assert {d.status for d in deliveries().values()} == {"sent"}
        notices_pass(app, now=utcnow())
        notes = sandbox.gitlab_api.notes[(issue["project_id"], issue["iid"])]
        assert len(notes) == 1 and "errors on every page" in notes[0]["body"]
        channels = {m["channel"] for m in sandbox.slack_messages}
        assert {"#developer-relations", "#customer-success"} <= {
            f"#{sandbox.slack_api.channels.get(c, c).lstrip('#')}" for c in channels}
        labelled = requests.get(
            f"{sandbox.url}/_sandbox/gitlab", timeout=10).json()["issues"][0]["labels"]
        assert "Incident-Comms::Status-Page" in labelled
        assert len(sandbox.incidents) == 1 and len(sandbox.tweets) == 1
