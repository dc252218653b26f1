"""Slack adapter on the wire: chat.postMessage with the @advocates mention and threads."""

from __future__ import annotations

import pytest
import requests
import responses
from responses import matchers

from cmoc.channels import PostContext
from cmoc.channels.http import make_session
from cmoc.channels.slack import Slack, escape
from tests.factories import post_context

URL = "https://slack.com/api/chat.postMessage"
AUTH = {"Authorization": "Bearer xoxb-1"}


def adapter(group_id="S0123ABC") -> Slack:
    return Slack(session=make_session(), base_url="https://slack.com/api", token="xoxb-1",
                 channel="#community-advocates", group_id=group_id)


def ctx(**extra) -> PostContext:
    return post_context(**{"update_id": 4, "incident_id": 2,
                           "text": "Errors on <b>API</b> & Git",
                           "issue_url": "https://gitlab.com/i/1?a=1&b=2", **extra})


def test_escape_only_control_characters():
    assert escape("a & <b> 'q'") == "a &amp; &lt;b&gt; 'q'"


@responses.activate
def test_first_message_mentions_the_user_group_and_escapes_user_text():
    payload = adapter().build(ctx())
    assert payload["channel"] == "#community-advocates" and "thread_ts" not in payload
    assert payload["text"] == "<!subteam^S0123ABC> Errors on &lt;b&gt;API&lt;/b&gt; &amp; Git"
    facts = payload["blocks"][1]["elements"][0]["text"]
    assert "*S1*" in facts and "Investigating" in facts and "Service Disruption" in facts
    assert "<https://gitlab.com/i/1?a=1&amp;b=2|Incident issue>" in facts
    assert "<https://status.gitlab.com|Status page>" in facts
    responses.post(URL, json={"ok": True, "channel": "C123", "ts": "1503435956.000247"},
                   match=[matchers.json_params_matcher(payload), matchers.header_matcher(AUTH)])
    result = adapter().send(payload)
    assert result.ok and result.external_id == "1503435956.000247"
    assert result.thread == {"slack_channel_id": "C123", "slack_thread_ts": "1503435956.000247"}


@responses.activate
def test_later_messages_go_in_the_thread_without_mention():
    payload = adapter().build(ctx(slack_channel_id="C123", slack_thread_ts="1.2"))
    assert payload["channel"] == "C123" and payload["thread_ts"] == "1.2"
    assert "subteam" not in payload["text"]
    responses.post(URL, json={"ok": True, "channel": "C123", "ts": "1.3"})
    result = adapter().send(payload)
    assert result.ok and result.thread == {"slack_channel_id": "C123"}


@pytest.mark.parametrize(("error", "retryable", "unknown"), [
    ("channel_not_found", False, False), ("invalid_auth", False, False),
    ("msg_too_long", False, False), ("ratelimited", True, False),
    ("service_unavailable", True, False),
    # Slack's docs: "it's possible some aspect of the operation succeeded".
    ("internal_error", False, True), ("fatal_error", False, True),
])
@responses.activate
def test_ok_false_errors(error, retryable, unknown):
    responses.post(URL, json={"ok": False, "error": error})
    result = adapter().send(adapter().build(ctx()))
    assert not result.ok and result.retryable == retryable and error in result.error
    assert result.outcome_unknown == unknown
    if error == "invalid_auth":
        assert "SLACK_BOT_TOKEN" in result.error and "xoxb-1" not in result.error


@responses.activate
def test_rate_limit_429_with_retry_after():
    responses.post(URL, status=429, headers={"Retry-After": "3"},
                   json={"ok": False, "error": "ratelimited"})
    result = adapter().send(adapter().build(ctx()))
    assert result.retryable and result.retry_after == 3.0


@responses.activate
def test_server_error_is_unknown_and_connection_refused_is_retryable():
    responses.post(URL, status=503, body="upstream")
    unclear = adapter().send(adapter().build(ctx()))
    assert unclear.outcome_unknown and not unclear.retryable
    responses.replace(responses.POST, URL, body=requests.ConnectionError("refused"))
    refused = adapter().send(adapter().build(ctx()))
    assert refused.retryable and "could not connect" in refused.error


def test_section_text_is_verbatim():
    """A typed "@here" or "#channel" must stay text, never become a mention."""
    payload = adapter().build(ctx(text="@here deploy in #production"))
    assert payload["blocks"][0]["text"]["verbatim"] is True


@responses.activate
def test_find_existing_by_metadata_resolves_a_channel_name_to_its_id():
    """conversations.history takes channel ids only: the configured name is looked up."""
    payload = adapter().build(ctx())
    assert payload["channel"] == "#community-advocates"
    responses.post("https://slack.com/api/conversations.list", json={
        "ok": True, "channels": [{"id": "C0RANDOM", "name": "random"}],
        "response_metadata": {"next_cursor": "page2"}})
    responses.post("https://slack.com/api/conversations.list", json={
        "ok": True, "channels": [{"id": "C0ADVOC", "name": "community-advocates"}],
        "response_metadata": {"next_cursor": ""}},
        match=[matchers.urlencoded_params_matcher({"cursor": "page2"}, allow_blank=True,
                                                  strict_match=False)])
    history = responses.post("https://slack.com/api/conversations.history", json={
        "ok": True, "messages": [
            {"ts": "9.1", "metadata": {"event_type": "cmoc_update",
                                       "event_payload": {"update_id": 3, "incident_id": 2}}},
            {"ts": "9.2", "metadata": {"event_type": "cmoc_update",
                                       "event_payload": {"update_id": 4, "incident_id": 2}}}]},
        match=[matchers.urlencoded_params_matcher(
            {"channel": "C0ADVOC", "include_all_metadata": "true"}, strict_match=False)])
    channel = adapter()
    found = channel.find_existing(payload)
    assert found.ok and found.external_id == "9.2"
    assert found.thread == {"slack_channel_id": "C0ADVOC", "slack_thread_ts": "9.2"}
    assert history.call_count == 1
    channel.find_existing(payload)  # the id is remembered: no second channel listing
    assert len([c for c in responses.calls if "conversations.list" in c.request.url]) == 2


@responses.activate
def test_find_existing_in_a_dm_opens_the_conversation_first():
    payload = {"channel": "U0CMOC", "text": "reminder",
               "metadata": {"event_type": "cmoc_reminder", "event_payload": {"reminder_id": 5}}}
    responses.post("https://slack.com/api/conversations.open",
                   json={"ok": True, "channel": {"id": "D0CMOC"}},
                   match=[matchers.urlencoded_params_matcher({"users": "U0CMOC"})])
    responses.post("https://slack.com/api/conversations.history", json={"ok": True,
                                                                        "messages": []})
    assert adapter().find_existing(payload) is None


@responses.activate
def test_find_existing_that_cannot_ask_is_a_failure():
    responses.post("https://slack.com/api/conversations.list", status=500)
    result = adapter().find_existing(adapter().build(ctx()))
    assert result is not None and not result.ok
    responses.post("https://slack.com/api/conversations.list", json={
        "ok": True, "channels": [], "response_metadata": {"next_cursor": ""}})
    missing = adapter().find_existing(adapter().build(ctx()))
    assert not missing.ok and "no channel" in missing.error
