"""X adapter: tweepy on the wire through responses, routed by TWITTER_API_URL."""

from __future__ import annotations

from datetime import UTC, datetime

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


@pytest.mark.parametrize(("status", "retryable", "unknown", "text"), [
    (400, False, False, "HTTP 400"), (401, False, False, "credentials"),
    (404, False, False, "HTTP 404"),
    # X may have stored the tweet before failing: looked up before any resend.
    (500, False, True, "server error"), (503, False, True, "server error"),
])
@responses.activate
def test_http_errors(status, retryable, unknown, text):
    responses.post(URL, status=status, json={"title": "Problem", "detail": "went wrong",
                                             "status": status})
    result = adapter().send({"text": "x"})
    assert not result.ok and result.retryable == retryable and text in result.error
    assert result.outcome_unknown == unknown


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


ME = "https://api.twitter.com/2/users/me"
TIMELINE = "https://api.twitter.com/2/users/42/tweets"


@responses.activate
def test_find_existing_reads_the_accounts_recent_tweets():
    """X stores URLs as t.co links and escapes &: the text is compared with URLs masked."""
    responses.get(ME, json={"data": {"id": "42", "name": "GitLab Status",
                                     "username": "gitlabstatus"}})
    responses.get(TIMELINE, json={"data": [
        {"id": "900", "text": "Checks &amp; fixes https://t.co/abc",
         "referenced_tweets": [{"type": "replied_to", "id": "111"}],
         "edit_history_tweet_ids": ["900"]},
        {"id": "899", "text": "Checks &amp; fixes https://t.co/abc",
         "edit_history_tweet_ids": ["899"]}], "meta": {"result_count": 2}},
        match=[matchers.query_param_matcher({
            "max_results": "100", "start_time": "2026-11-27T08:58:00Z",
            "tweet.fields": "created_at,referenced_tweets"})])
    channel = adapter()
    since = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    payload = {"text": "Checks & fixes https://gitlab.com/i/1", "in_reply_to_tweet_id": "111"}
    found = channel.find_existing(payload, since=since)
    assert found.ok and found.external_id == "900"
    assert found.thread == {"twitter_last_tweet_id": "900"}
    # The same words as a thread root are a different tweet (899), never the reply (900).
    root = channel.find_existing({"text": payload["text"]}, since=since)
    assert root.external_id == "899"
    assert len([c for c in responses.calls if c.request.url == ME]) == 1  # id read once
    assert channel.find_existing({"text": "other"}, since=since) is None


@responses.activate
def test_find_existing_with_no_tweets_and_when_x_cannot_be_asked():
    responses.get(ME, json={"data": {"id": "42", "name": "n", "username": "u"}})
    responses.get(TIMELINE, json={"meta": {"result_count": 0}})
    assert adapter().find_existing({"text": "x"}) is None
    responses.replace(responses.GET, TIMELINE, status=503, json={"title": "Unavailable"})
    failed = adapter().find_existing({"text": "x"})
    assert failed is not None and not failed.ok and "503" in failed.error
    responses.replace(responses.GET, TIMELINE, status=429, json={"title": "Too Many"})
    assert not adapter().find_existing({"text": "x"}).ok
