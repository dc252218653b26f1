"""status.io adapter on the wire (responses): exact URLs, bodies and headers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import requests
import responses
from responses import matchers
from urllib3.exceptions import ProtocolError

from cmoc.channels import PostContext
from cmoc.channels.http import make_session
from cmoc.channels.statusio import StatusIO
from tests.factories import post_context

BASE = "https://api.status.io/v2"
PAGE = "5b36dc6502d06804c08349f7"
HEADERS = {"x-api-id": "id-1", "x-api-key": "key-1", "Content-Type": "application/json"}
OK = {"status": {"error": "no", "message": "OK"}}


def adapter(**extra) -> StatusIO:
    return StatusIO(session=make_session(), base_url=BASE, api_id="id-1", api_key="key-1",
                    statuspage_id=PAGE,
                    components={"API": ("c-api", ["k-1"]), "Git Operations": ("c-git",
                                                                              ["k-1", "k-2"])},
                    **extra)


def ctx(**extra) -> PostContext:
    return post_context(**{"update_id": 7, "incident_id": 3, "text": "We're seeing",
                           "components": ("API", "Git Operations"), **extra})


@responses.activate
def test_first_update_creates_the_incident_with_codes_components_and_broadcast_flags():
    channel = adapter()
    payload = channel.build(ctx())
    expected = {
        "statuspage_id": PAGE, "incident_name": "Elevated error rates",
        "incident_details": "We're seeing",
        "infrastructure_affected": ["c-api-k-1", "c-git-k-1", "c-git-k-2"],
        "all_infrastructure_affected": "0", "current_status": 500, "current_state": 100,
        "notify_email": "1", "notify_sms": "1", "notify_webhook": "1", "social": "0",
        "irc": "1", "hipchat": "0", "slack": "1", "msteams": "1",
    }
    responses.post(f"{BASE}/incident/create", json={**OK, "result": "inc-123"},
                   match=[matchers.json_params_matcher(expected),
                          matchers.header_matcher(HEADERS)])
    result = channel.send(payload)
    assert result.ok and result.external_id == "inc-123"
    assert result.thread == {"statusio_incident_id": "inc-123"}


@responses.activate
def test_later_updates_and_resolve_use_the_stored_incident_id():
    channel = adapter()
    responses.post(f"{BASE}/incident/update", json={**OK, "result": True}, match=[
        matchers.json_params_matcher({"incident_id": "inc-123", "current_state": 200,
                                      "current_status": 400, "statuspage_id": PAGE,
                                      "incident_details": "Identified"}, strict_match=False)])
    result = channel.send(channel.build(ctx(statusio_incident_id="inc-123", state="identified",
                                            status="partial_service_disruption",
                                            text="Identified")))
    assert result.ok and result.external_id == "inc-123"
    responses.post(f"{BASE}/incident/resolve", json={**OK, "result": True}, match=[
        matchers.json_params_matcher({"incident_id": "inc-123", "current_status": 100,
                                      "current_state": 300}, strict_match=False)])
    resolve = channel.build(ctx(statusio_incident_id="inc-123", state="resolved",
                                status="operational", previous_state="monitoring"))
    assert resolve["path"] == "incident/resolve"
    assert channel.send(resolve).ok


def test_resolve_without_incident_is_skipped_and_social_is_always_off():
    assert "skip" in adapter().build(ctx(state="resolved", status="operational"))
    assert adapter(notify={"social": "1"}).notify["social"] == "0"


@responses.activate
def test_each_update_chooses_its_subscriber_notifications_on_the_wire():
    """Per update: email/SMS/webhook as chosen; the other flags as configured; social "0"."""
    channel = adapter(notify={"irc": "0"})
    quiet = {"email": False, "sms": False, "webhook": True}
    responses.post(f"{BASE}/incident/update", json={**OK, "result": True}, match=[
        matchers.json_params_matcher({"notify_email": "0", "notify_sms": "0",
                                      "notify_webhook": "1", "social": "0", "irc": "0",
                                      "slack": "1"}, strict_match=False)])
    payload = channel.build(ctx(statusio_incident_id="inc-1", statusio_notify=quiet))
    assert channel.send(payload).ok
    # No choice recorded (an older update): the configured flags, i.e. broadcast all.
    default = channel.build(ctx(statusio_incident_id="inc-1"))["body"]
    assert (default["notify_email"], default["notify_sms"], default["social"]) == ("1", "1", "0")


@responses.activate
def test_error_envelope_on_http_200_is_a_permanent_failure():
    responses.post(f"{BASE}/incident/create",
                   json={"status": {"error": "yes", "message": "Invalid statuspage_id"}})
    result = adapter().send(adapter().build(ctx()))
    assert not result.ok and not result.retryable
    assert result.error == "status.io error: Invalid statuspage_id"


@pytest.mark.parametrize(("status", "retryable", "unknown"), [
    (400, False, False), (401, False, False), (403, False, False),
    # A server or gateway error may hide a completed request: looked up, never blindly resent.
    (500, False, True), (502, False, True), (503, False, True), (504, False, True),
])
@responses.activate
def test_http_errors(status, retryable, unknown):
    responses.post(f"{BASE}/incident/create", status=status,
                   json={"status": {"error": "yes", "message": "nope"}})
    result = adapter().send(adapter().build(ctx()))
    assert not result.ok
    assert (result.retryable, result.outcome_unknown) == (retryable, unknown)
    assert f"HTTP {status}" in result.error and "nope" in result.error
    if status == 401:
        assert "STATUSIO_API_ID" in result.error and "key-1" not in result.error


@responses.activate
def test_rate_limit_honours_retry_after():
    responses.post(f"{BASE}/incident/create", status=429, headers={"Retry-After": "7"},
                   json={"status": {"error": "yes", "message": "slow down"}})
    result = adapter().send(adapter().build(ctx()))
    assert result.retryable and result.retry_after == 7.0 and "429" in result.error


@responses.activate
def test_connection_refused_is_safe_to_retry_but_a_dropped_request_is_not():
    responses.post(f"{BASE}/incident/create", body=requests.ConnectionError("refused"))
    refused = adapter().send(adapter().build(ctx()))
    assert refused.retryable and not refused.outcome_unknown
    responses.replace(responses.POST, f"{BASE}/incident/create",
                      body=requests.ConnectionError(ProtocolError("Connection aborted.")))
    dropped = adapter().send(adapter().build(ctx()))
    assert dropped.outcome_unknown and not dropped.retryable
    responses.replace(responses.POST, f"{BASE}/incident/create",
                      body=requests.ReadTimeout("read timed out"))
    timeout = adapter().send(adapter().build(ctx()))
    assert timeout.outcome_unknown and "may have gone out" in timeout.error


@responses.activate
def test_malformed_json_is_an_unknown_outcome():
    responses.post(f"{BASE}/incident/create", body="<html>oops</html>", status=200)
    result = adapter().send(adapter().build(ctx()))
    assert not result.ok and result.outcome_unknown and "not JSON" in result.error


@responses.activate
def test_component_without_ids_is_refused_before_sending():
    channel = adapter()
    payload = channel.build(ctx(components=("API", "Website")))
    assert payload["unknown_components"] == ["Website"]
    result = channel.send(payload)
    assert not result.ok and "Website" in result.error
    assert len(responses.calls) == 0


@responses.activate
def test_find_existing_after_unknown_outcome():
    channel = adapter()
    payload = channel.build(ctx())
    since = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    responses.get(f"{BASE}/incident/list/{PAGE}", json={**OK, "result": {
        "active_incidents": [
            # An older incident with the same name and text (an earlier outage): not ours.
            {"_id": "inc-old", "name": "Elevated error rates",
             "datetime_open": "2026-11-20T09:00:00.000Z",
             "messages": [{"details": "We're seeing", "datetime": "2026-11-20T09:00:00.000Z"}]},
            {"_id": "inc-9", "name": "Elevated error rates",
             "datetime_open": "2026-11-27T09:00:03.120Z",
             "messages": [{"details": "We're seeing", "datetime": "2026-11-27T09:00:03.120Z"}]}],
        "resolved_incidents": []}})
    found = channel.find_existing(payload, since=since)
    assert found.ok and found.external_id == "inc-9"
    assert found.thread == {"statusio_incident_id": "inc-9"}
    update = channel.build(ctx(statusio_incident_id="inc-9", text="Second"))
    responses.get(f"{BASE}/incident/{PAGE}/inc-9", json={**OK, "result": [
        {"_id": "inc-9", "messages": [{"details": "We're seeing"}]}]})
    assert channel.find_existing(update, since=since) is None


@responses.activate
def test_find_existing_matches_a_repeated_text_only_after_the_attempt():
    """"No material updates" may be posted twice with the same words: only a message from
    after this attempt's start counts."""
    channel = adapter()
    update = channel.build(ctx(statusio_incident_id="inc-9", text="No material updates"))
    since = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    message = {"details": "No material updates", "datetime": "2026-11-27T09:30:00.000Z"}
    responses.get(f"{BASE}/incident/{PAGE}/inc-9", json={**OK, "result": [
        {"_id": "inc-9", "messages": [message]}]})
    assert channel.find_existing(update, since=since) is None
    message["datetime"] = "2026-11-27T10:00:01.000Z"
    responses.replace(responses.GET, f"{BASE}/incident/{PAGE}/inc-9", json={**OK, "result": [
        {"_id": "inc-9", "messages": [message]}]})
    assert channel.find_existing(update, since=since).ok


@pytest.mark.parametrize("answer", [
    {"status": 500, "json": {"status": {"error": "yes", "message": "down"}}},
    {"status": 429, "json": {"status": {"error": "yes", "message": "slow"}}},
    {"status": 200, "body": "<html>"},
    {"status": 200, "json": {"status": {"error": "yes", "message": "Invalid statuspage_id"}}},
    {"body": requests.ConnectionError("refused")},
])
@responses.activate
def test_find_existing_that_cannot_ask_is_a_failure_not_a_miss(answer):
    responses.get(f"{BASE}/incident/list/{PAGE}", **answer)
    result = adapter().find_existing(adapter().build(ctx()))
    assert result is not None and not result.ok


@responses.activate
def test_list_components():
    responses.get(f"{BASE}/component/list/{PAGE}", json={**OK, "result": [
        {"_id": "c1", "name": "Website", "position": 1,
         "containers": [{"_id": "k1", "name": "GCE"}]},
        {"_id": "c2", "name": "API", "containers": []}]},
        match=[matchers.header_matcher({"x-api-id": "id-1", "x-api-key": "key-1"})])
    components, error = adapter().list_components()
    assert error is None
    assert components[0] == {"id": "c1", "name": "Website", "position": 1,
                             "containers": [{"id": "k1", "name": "GCE"}]}
