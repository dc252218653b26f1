"""The drafting rules through the API, as a ChatOps bot uses it, publishing to the fakes."""

from __future__ import annotations

import pytest

from cmoc.extensions import db
from cmoc.models import Incident
from cmoc.timeutil import fmt_utc
from tests.api.conftest import ApiClient, token_for
from tests.factories import ISSUE_URL

DECLARE = {"title": "Elevated error rates", "severity": "S1", "status": "service_disruption",
           "components": ["Website", "API"], "issue_url": ISSUE_URL}
TEXTS = {"statusio": "Errors on the API. Next update by {next_update}.",
         "twitter": "Errors on the API. Next update by {next_update}. " + ISSUE_URL,
         "slack": "Errors on the API; we're on it. Next update by {next_update}."}


@pytest.fixture
def api(live_client, live_app):
    return ApiClient(live_app.test_client(), token_for("cmoc", "bot"))


def declared(api) -> dict:
    return api.post("/incidents", json=DECLARE).json


def test_texts_given_in_full_need_no_template_fields(api, fakes):
    """Finding 8: the ChatOps case, every channel's final text and no variables."""
    incident = declared(api)
    response = api.post(f"/incidents/{incident['id']}/updates", json={
        "state": "investigating", "texts": TEXTS, "publish": True})
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.json
    assert {d["channel"]: d["status"] for d in body["deliveries"]} == {
        **dict.fromkeys(["statusio", "twitter", "slack"], "sent"), "gitlab": "skipped"}
    # The issue's comment carries the hand-written status page text (here the issue link is
    # not on the configured GitLab, so it is skipped, and says why).
    assert body["texts"]["gitlab"].startswith("**Public update (S1)**\n\nErrors on the API.")
    gitlab = next(d for d in body["deliveries"] if d["channel"] == "gitlab")
    assert "No incident issue on GitLab" in gitlab["error"]
    # The token became the due time the reminder uses, in every channel.
    due = db.session.get(Incident, incident["id"]).next_update_due_at
    promise = f"Next update by {fmt_utc(due, with_date=False)}."
    assert all(promise in text for text in body["texts"].values())
    assert promise in next(iter(fakes.tweets.values()))["text"]


def test_a_field_is_required_while_a_chosen_channel_still_uses_the_template(api):
    incident = declared(api)
    partial = api.post(f"/incidents/{incident['id']}/updates", json={
        "state": "investigating", "texts": {"statusio": TEXTS["statusio"]}})
    assert partial.status_code == 422
    assert partial.json["error"]["fields"] == {"var_symptom": "What are users seeing? is required."}
    # The same texts with only the given channel chosen: nothing else is needed.
    only = api.post(f"/incidents/{incident['id']}/updates", json={
        "state": "investigating", "texts": {"statusio": TEXTS["statusio"]},
        "channels": ["statusio"]})
    assert only.status_code == 201 and only.json["blocked"] != {}  # unused channels: blocked


def test_a_blocked_channel_is_refused_by_name_and_leaving_it_out_publishes_the_others(api, fakes):
    incident = declared(api)
    long_tweet = {"state": "investigating", "variables": {"symptom": "errors"},
                  "texts": {"twitter": "x" * 300}, "publish": True}
    refused = api.post(f"/incidents/{incident['id']}/updates", json=long_tweet)
    assert refused.status_code == 422 and refused.json["error"]["code"] == "cannot_publish"
    fields = refused.json["error"]["fields"]
    assert list(fields) == ["text_twitter"]
    assert fields["text_twitter"].startswith("Tweet is 300 weighted characters, 20 over")
    assert ("Leave Tweet out to publish to Status page, Slack and GitLab issue."
            in fields["text_twitter"])
    assert not fakes.incidents and not fakes.slack_messages
    others = api.post(f"/incidents/{incident['id']}/updates",
                      json={**long_tweet, "channels": ["statusio", "slack"]})
    assert others.status_code == 201
    assert {d["channel"]: d["status"] for d in others.json["deliveries"]} == {
        "statusio": "sent", "twitter": "skipped", "slack": "sent", "gitlab": "skipped"}


def test_an_unfilled_placeholder_is_refused_naming_the_variable(api, fakes):
    incident = declared(api)
    response = api.post(f"/incidents/{incident['id']}/updates", json={
        "state": "monitoring", "variables": {"fix": "A fix was deployed"},
        "texts": {"slack": "[fix]. Watching it."}, "publish": True})
    assert response.status_code == 422
    message = response.json["error"]["fields"]["text_slack"]
    assert "Slack still has the placeholder [fix] (“What changed?”)" in message
    assert not fakes.slack_messages


def test_subscriber_flags_per_update(api, fakes):
    incident = declared(api)
    response = api.post(f"/incidents/{incident['id']}/updates", json={
        "state": "investigating", "variables": {"symptom": "errors"}, "publish": True,
        "notify": {"email": False, "webhook": False}})
    assert response.status_code == 201
    assert response.json["notify"] == {"email": False, "sms": True, "webhook": False}
    message = next(iter(fakes.incidents.values()))["messages"][0]
    assert message["notify"] == {"notify_email": "0", "notify_sms": "1", "notify_webhook": "0"}
    unknown = api.post(f"/incidents/{incident['id']}/updates", json={
        "state": "investigating", "notify": {"pager": True}})
    assert unknown.status_code == 422 and "notify.pager" in unknown.json["error"]["fields"]


def test_slack_only_update_through_the_api_is_internal(api):
    incident = declared(api)
    response = api.post(f"/incidents/{incident['id']}/updates", json={
        "state": "identified", "variables": {"cause": "a bad deploy"}, "publish": True,
        "channels": ["slack"]})
    assert response.status_code == 201
    after = api.get(f"/incidents/{incident['id']}").json
    assert after["state"] == "identified"
    assert after["last_published_at"] is None
    assert after["next_update_due_at"] == incident["next_update_due_at"]
