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


@pytest.mark.parametrize(("error", "retryable"), [
    ("channel_not_found", False), ("invalid_auth", False), ("msg_too_long", False),
    ("ratelimited", True),
])
@responses.activate
def test_ok_false_errors(error, retryable):
    responses.post(URL, json={"ok": False, "error": error})
    result = adapter().send(adapter().build(ctx()))
    assert not result.ok and result.retryable == retryable and error in result.error
    if error == "invalid_auth":
        assert "SLACK_BOT_TOKEN" in result.error and "xoxb-1" not in result.error


@responses.activate
def test_rate_limit_429_with_retry_after():
    responses.post(URL, status=429, headers={"Retry-After": "3"},
                   json={"ok": False, "error": "ratelimited"})
    result = adapter().send(adapter().build(ctx()))
    assert result.retryable and result.retry_after == 3.0


@responses.activate
def test_server_error_and_connection_error_are_retryable():
    responses.post(URL, status=503, body="upstream")
    assert adapter().send(adapter().build(ctx())).retryable
    responses.replace(responses.POST, URL, body=requests.ConnectionError("refused"))
    refused = adapter().send(adapter().build(ctx()))
    assert refused.retryable and "could not connect" in refused.error


@responses.activate
def test_find_existing_by_metadata():
    payload = adapter().build(ctx())
    responses.post("https://slack.com/api/conversations.history", json={"ok": True, "messages": [
        {"ts": "9.1", "metadata": {"event_type": "cmoc_update",
                                   "event_payload": {"update_id": 3, "incident_id": 2}}},
        {"ts": "9.2", "metadata": {"event_type": "cmoc_update",
                                   "event_payload": {"update_id": 4, "incident_id": 2}}}]})
    found = adapter().find_existing(payload)
    assert found.ok and found.external_id == "9.2"
    assert found.thread["slack_thread_ts"] == "9.2"
