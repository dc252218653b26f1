"""End to end through the API: declare, publish to the fake status.io/X/Slack/GitLab, read
back."""

from __future__ import annotations

from cmoc.fake_apis.gitlab import INCIDENT_PROJECT
from cmoc.services.tokens import create_token
from cmoc.timeutil import utcnow
from tests.api.conftest import ApiClient
from tests.factories import make_user

EVERY = ("statusio", "twitter", "slack", "gitlab")


def test_declare_and_publish_through_the_api(live_app, fakes):
    make_user("bot", "cmoc")
    api = ApiClient(live_app.test_client(),
                    create_token(username="bot", name="chatops", now=utcnow())[1])
    issue = fakes.gitlab_api.open_issue(INCIDENT_PROJECT, title="Git over SSH failing")
    notes = fakes.gitlab_api.notes.setdefault((issue["project_id"], issue["iid"]), [])
    incident = api.post("/incidents", json={
        "title": "Git over SSH failing", "severity": "S1", "status": "partial_service_disruption",
        "components": ["Git Operations"], "issue_url": issue["web_url"]}).json
    first = api.post(f"/incidents/{incident['id']}/updates", json={
        "state": "investigating", "variables": {"symptom": "failed git pushes over SSH"},
        "publish": True, "idempotency_key": "chatops-1"})
    assert first.status_code == 201, first.json
    deliveries = {d["channel"]: d for d in first.json["deliveries"]}
    assert {c: d["status"] for c, d in deliveries.items()} == dict.fromkeys(EVERY, "sent")
    assert [n["id"] for n in notes] == [int(deliveries["gitlab"]["external_id"])]
    assert notes[0]["body"].startswith("**Public update (S1)**\n\nWe're seeing failed git")
    statusio_incident = fakes.incidents[deliveries["statusio"]["external_id"]]
    assert len(statusio_incident["infrastructure_affected"]) == 2  # two containers
    assert fakes.tweets[deliveries["twitter"]["external_id"]]["text"].startswith(
        "We're seeing failed git pushes over SSH")
    # A retried call (same key) returns the same update and sends nothing.
    again = api.post(f"/incidents/{incident['id']}/updates", json={
        "state": "investigating", "variables": {"symptom": "failed git pushes over SSH"},
        "publish": True, "idempotency_key": "chatops-1"})
    assert again.status_code == 200 and again.json["id"] == first.json["id"]
    assert len(fakes.tweets) == 1 and len(fakes.slack_messages) == 1 and len(notes) == 1

    fakes.fail("slack", "chat.postMessage", status=200, body={"ok": False,
                                                              "error": "not_in_channel"})
    second = api.post(f"/incidents/{incident['id']}/updates", json={
        "state": "resolved", "variables": {"resolution": "the SSH proxy was restarted"},
        "publish": True}).json
    assert {d["channel"]: d["status"] for d in second["deliveries"]}["slack"] == "failed"
    retried = api.post(f"/incidents/{incident['id']}/updates/{second['id']}/retry",
                       json={"channels": ["slack"]})
    assert retried.status_code == 200
    assert {d["channel"]: d["status"] for d in retried.json["deliveries"]} == dict.fromkeys(
        EVERY, "sent")
    state = api.get(f"/incidents/{incident['id']}").json
    assert (state["state"], state["status"]) == ("resolved", "operational")
    assert state["statusio_incident_id"] == statusio_incident["_id"]
    assert statusio_incident["resolved"] and len(fakes.tweets) == 2
    assert len(fakes.slack_messages) == 2 and len(notes) == 2
