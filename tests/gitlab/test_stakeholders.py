"""After publishing: the stakeholder notice with the Incident Notifier fields, later S1/S2
updates in its thread, and the Incident-Comms::Status-Page label on the GitLab issue."""

from __future__ import annotations

import tomllib
from datetime import timedelta

import pytest
from sqlalchemy import select

from cmoc import ROOT
from cmoc.extensions import db
from cmoc.fake_apis.gitlab import INCIDENT_PROJECT
from cmoc.fake_apis.slack import channel_id
from cmoc.models import Notice
from cmoc.services.components import refresh_components
from cmoc.services.delivering import statusio_for
from cmoc.services.stakeholders import notices_pass
from cmoc.timeutil import utcnow
from tests.factories import deliveries, login, make_incident, make_user, publish

CHANNELS = "#developer-relations,#customer-success"


@pytest.fixture
def app_with(make_app, fakes):
    """An app on the fakes with these extra settings, and a signed-in CMOC's client."""
    def build(**extra):
        app = make_app(**{**fakes.env(), "PUBLISH_BACKOFF_SECONDS": 0,
                          "PUBLISH_WAIT_SECONDS": 30, "HTTP_READ_TIMEOUT": 1.0,
                          "BASE_URL": "http://cmoc.test", **extra})
        context = app.app_context()
        context.push()
        refresh_components(statusio=statusio_for(app), now=utcnow())
        client = app.test_client()
        login(client, make_user("carol", "cmoc"))
        built.append(context)
        return app, client
    built = []
    yield build
    for context in built:
        db.session.remove()
        context.pop()


def gitlab_incident(fakes, **extra):
    issue = fakes.gitlab_api.open_issue(INCIDENT_PROJECT, title="Errors", labels=["severity::1"])
    incident = make_incident(issue_url=issue["web_url"], slack_channel="#incident-1",
                             gitlab_issue=f"{INCIDENT_PROJECT}#{issue['iid']}",
                             components=["API"], **extra)
    return incident, issue


def messages(fakes, channel: str) -> list[dict]:
    return [m for m in fakes.slack_messages if m["channel"] == channel_id(channel)]


def notices(kind: str) -> list[Notice]:
    db.session.expire_all()
    return list(db.session.scalars(select(Notice).where(Notice.kind == kind)
                                   .order_by(Notice.id)))


def test_stakeholders_get_the_notifier_fields_and_later_updates_in_thread(app_with, fakes):
    app, client = app_with(SLACK_STAKEHOLDER_CHANNELS=CHANNELS)
    incident, issue = gitlab_incident(fakes)
    notices_pass(app, now=utcnow())
    assert notices("stakeholder") == []            # nothing published yet: nothing to tell
    publish(client, incident, symptom="errors on the API", key="1")
    assert deliveries()["statusio"].status == "sent"
    counts = notices_pass(app, now=utcnow())
    assert counts["planned_stakeholder"] == 2 and counts["sent"] >= 2
    db.session.refresh(incident)
    for channel in ("#developer-relations", "#customer-success"):
        [root] = messages(fakes, channel)
        text = root["text"]
        assert "*Summary:* Elevated error rates on GitLab.com" in text
        assert "*Severity:* S1 Critical" in text
        assert f"*Production issue:* <{issue['web_url']}|{INCIDENT_PROJECT}#1>" in text
        assert "*Incident Slack channel:* #incident-1" in text
        page = (f"https://status.gitlab.com/pages/incident/5b36dc6502d06804c08349f7/"
                f"{incident.statusio_incident_id}")
        assert f"*Status page:* <{page}|{page}>" in text
        assert "errors on the API" in text and root["thread_ts"] is None
        assert "<!subteam" not in text
    publish(client, incident, state="identified", cause="a bad deploy", key="2")
    publish(client, incident, state="resolved", resolution="rolled back", key="3")
    notices_pass(app, now=utcnow())
    for channel in ("#developer-relations", "#customer-success"):
        root, *replies = messages(fakes, channel)
        assert [r["thread_ts"] for r in replies] == [root["ts"], root["ts"]]
        assert "*Identified" in replies[0]["text"] and "a bad deploy" in replies[0]["text"]
        assert "*Resolved" in replies[1]["text"]
    assert all(n.status == "sent" for n in notices("stakeholder_update"))
    notices_pass(app, now=utcnow())                 # idempotent: nothing more
    assert len(messages(fakes, "#developer-relations")) == 3


def test_only_s1_s2_and_threads_and_mention_are_configurable(app_with, fakes):
    app, client = app_with(SLACK_STAKEHOLDER_CHANNELS="#customer-success",
                           STAKEHOLDERS={"severities": ["S1", "S2"], "thread_updates": False,
                                         "mention_advocates": True, "wait_seconds": 120})
    minor, _ = gitlab_incident(fakes, severity="S3")
    major, _ = gitlab_incident(fakes)
    publish(client, minor, symptom="slow pages", key="m1")
    publish(client, major, symptom="errors", key="M1")
    notices_pass(app, now=utcnow())
    [root] = messages(fakes, "#customer-success")
    assert root["text"].startswith("&lt;") is False and "<!subteam^S0123ABC>" in root["text"]
    assert "errors" in root["text"]
    publish(client, major, state="identified", cause="x", key="M2")
    notices_pass(app, now=utcnow())
    assert len(messages(fakes, "#customer-success")) == 1          # no thread updates


def test_the_notice_waits_for_status_io_to_answer_then_goes_without_the_link(app_with, fakes):
    app, client = app_with(SLACK_STAKEHOLDER_CHANNELS="#customer-success")
    incident, _ = gitlab_incident(fakes)
    # status.io asks to come back in 10 minutes: its delivery waits for the clock.
    fakes.fail("statusio", "incident/create", status=429, headers={"Retry-After": "600"},
               body={"status": {"error": "yes", "message": "Too many requests"}})
    publish(client, incident, symptom="errors", key="1")
    assert deliveries()["statusio"].retryable
    notices_pass(app, now=utcnow())
    assert notices("stakeholder") == []             # status.io has not answered yet
    later = utcnow() + timedelta(seconds=121)
    notices_pass(app, now=later)
    [root] = messages(fakes, "#customer-success")
    assert "*Status page:* not on the status page yet" in root["text"]


def test_a_reply_waits_for_its_thread_and_keeps_order(app_with, fakes):
    app, client = app_with(SLACK_STAKEHOLDER_CHANNELS="#customer-success")
    incident, _ = gitlab_incident(fakes)
    publish(client, incident, symptom="errors", key="1")
    fakes.fail("slack", "chat.postMessage", status=429, body={"ok": False,
                                                              "error": "ratelimited"})
    notices_pass(app, now=utcnow())
    [root] = notices("stakeholder")
    assert root.status == "failed" and root.retryable
    publish(client, incident, state="identified", cause="x", key="2")
    notices_pass(app, now=utcnow())
    [reply] = notices("stakeholder_update")
    assert reply.status == "pending" and "Waiting for the message before it" in reply.error
    notices_pass(app, now=utcnow() + timedelta(minutes=1))
    root_msg, reply_msg = messages(fakes, "#customer-success")
    assert reply_msg["thread_ts"] == root_msg["ts"]


def test_dry_run_without_slack_credentials(app_with, fakes):
    app, client = app_with(SLACK_STAKEHOLDER_CHANNELS="#customer-success", SLACK_BOT_TOKEN="")
    incident, _ = gitlab_incident(fakes)
    publish(client, incident, symptom="errors", key="1")
    notices_pass(app, now=utcnow())
    [root] = notices("stakeholder")
    assert root.status == "dry_run" and messages(fakes, "#customer-success") == []
    detail = client.get(f"/incidents/{incident.id}").get_data(as_text=True)
    assert 'data-stakeholder="#customer-success"' in detail and "dry-run" in detail


def test_the_status_page_label_is_added_once_after_the_first_status_page_post(app_with, fakes):
    app, client = app_with()
    incident, issue = gitlab_incident(fakes)
    fakes.fail("statusio", "incident/create", status=401, body={"status": {
        "error": "yes", "message": "Invalid API credentials"}})
    publish(client, incident, symptom="errors", key="1")
    notices_pass(app, now=utcnow())
    assert notices("gitlab_label") == []            # no status page post yet
    publish(client, incident, state="identified", cause="x", key="2")
    assert deliveries()["statusio"].status == "sent"
    fakes.fail("gitlab", f"issues/{issue['iid']}", method="PUT", status=502, apply=False)
    notices_pass(app, now=utcnow())
    [label] = notices("gitlab_label")
    assert label.status == "failed" and label.retryable     # 5xx: adding again is harmless
    notices_pass(app, now=utcnow() + timedelta(minutes=1))
    assert notices("gitlab_label")[0].status == "sent"
    assert fakes.gitlab_api.issues[(1, issue["iid"])]["labels"] == [
        "severity::1", "Incident-Comms::Status-Page"]
    notices_pass(app, now=utcnow() + timedelta(minutes=2))
    assert len(fakes.calls("gitlab", f"issues/{issue['iid']}", method="PUT")) == 2
    detail = client.get(f"/incidents/{incident.id}").get_data(as_text=True)
    assert 'id="gitlab-label"' in detail and "Incident-Comms::Status-Page" in detail


def test_no_label_for_an_issue_elsewhere_or_when_switched_off(app_with, fakes):
    defaults = tomllib.loads((ROOT / "config" / "default.toml").read_text())["gitlab"]
    app, client = app_with(GITLAB={**defaults, "status_page_label": ""})
    incident, _ = gitlab_incident(fakes)
    other = make_incident(issue_url="https://example.com/tickets/9", components=["API"])
    publish(client, incident, symptom="errors", key="1")
    publish(client, other, symptom="errors", key="2")
    notices_pass(app, now=utcnow())
    assert notices("gitlab_label") == []
