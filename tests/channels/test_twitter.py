"""X adapter: tweepy on the wire through responses, routed by TWITTER_API_URL."""

from __future__ import annotations

import pytest
import requests
import responses
from responses import matchers

from cmoc.channels import PostContext
from cmoc.channels.twitter import Twitter, make_client
from tests.factories import post_context

URL = "https://api.twitter.com/2/tweets"


def adapter(api_url="https://api.twitter.com", clock=lambda: 1_000.0) -> Twitter:
    client = make_client(consumer_key="ck", consumer_secret="cs", access_token="at",
                         access_token_secret="ats", api_url=api_url)
    return Twitter(client=client, configured=True, clock=clock)


def ctx(**extra) -> PostContext:
    return post_context(**extra)


@responses.activate
def test_first_tweet_then_reply_in_thread():
    responses.post(URL, status=201, json={"data": {"id": "111", "text": "x"}},
                   match=[matchers.json_params_matcher({"text": "We're seeing errors"})])
    first = adapter().send(adapter().build(ctx()))
    assert first.ok and first.external_id == "111"
    assert first.thread == {"twitter_last_tweet_id": "111"}
    assert responses.calls[0].request.headers["Authorization"].startswith("OAuth ")
    responses.post(URL, status=201, json={"data": {"id": "112", "text": "y"}},
                   match=[matchers.json_params_matcher(
                       {"text": "Update", "reply": {"in_reply_to_tweet_id": "111"}})])
    reply = adapter().send(adapter().build(ctx(text="Update", twitter_last_tweet_id="111")))
    assert reply.ok and reply.external_id == "112"


@responses.activate
def test_api_url_routes_tweepy_elsewhere():
    responses.post("http://127.0.0.1:9999/x/2/tweets", status=201,
                   json={"data": {"id": "5", "text": "x"}})
    result = adapter(api_url="http://127.0.0.1:9999/x").send({"text": "hi"})
    assert result.ok and responses.calls[0].request.url == "http://127.0.0.1:9999/x/2/tweets"


@responses.activate
def test_duplicate_is_a_permanent_403_flagged_duplicate():
    responses.post(URL, status=403, json={
        "detail": "You are not allowed to create a Tweet with duplicate content.",
        "type": "about:blank", "title": "Forbidden", "status": 403})
    result = adapter().send({"text": "same"})
    assert not result.ok and result.duplicate and not result.retryable
    assert "duplicate content" in result.error


@pytest.mark.parametrize(("status", "retryable", "text"), [
    (400, False, "HTTP 400"), (401, False, "credentials"), (404, False, "HTTP 404"),
    (500, True, "server error"), (503, True, "server error"),
])
@responses.activate
def test_http_errors(status, retryable, text):
    responses.post(URL, status=status, json={"title": "Problem", "detail": "went wrong",
                                             "status": status})
    result = adapter().send({"text": "x"})
    assert not result.ok and result.retryable == retryable and text in result.error


@responses.activate
def test_rate_limit_uses_x_rate_limit_reset():
    responses.post(URL, status=429, headers={"x-rate-limit-reset": "1030",
                                             "x-rate-limit-remaining": "0"},
                   json={"title": "Too Many Requests", "detail": "Too Many Requests",
                         "type": "about:blank", "status": 429})
    result = adapter(clock=lambda: 1_000.0).send({"text": "x"})
    assert result.retryable and result.retry_after == 30.0 and "429" in result.error


@responses.activate
def test_connection_errors_and_timeouts():
    responses.post(URL, body=requests.ConnectionError("refused"))
    refused = adapter().send({"text": "x"})
    assert refused.retryable and not refused.outcome_unknown
    responses.replace(responses.POST, URL, body=requests.ReadTimeout("slow"))
    slow = adapter().send({"text": "x"})
    assert slow.outcome_unknown and not slow.retryable


@responses.activate
def test_malformed_json_is_an_unknown_outcome():
    responses.post(URL, status=201, body="not json")
    result = adapter().send({"text": "x"})
    assert not result.ok and result.outcome_unknown
