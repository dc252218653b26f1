"""Bad input from Slack never gives a 500: Hypothesis over both endpoints, unsigned and signed
(so the payload parsing behind the signature is reached too), with hostile values."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cmoc.extensions import db
from cmoc.services.slack_interact import wait_for_background
from tests.factories import make_incident, make_user
from tests.slack_requests import SECRET, click_body, post

FUZZ = settings(max_examples=60, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
HOSTILE = st.sampled_from(["\x00", "²", "١٢", "99999999999999999999", "2147483648", "-1",
                           "[" * 5000, "{\"a\":" * 3000, "x" * 70_000, "<!channel>",
                           "U0CAROL01\n", "9999-12-31", "\ud800".encode("utf-8", "surrogatepass")
                           .decode("utf-8", "replace")])
TEXT = st.one_of(st.text(max_size=200), HOSTILE)
JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
                       lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(TEXT, inner, max_size=4), max_leaves=20)


def header(value: str) -> str:
    """Any bytes a client can put in a header (HTTP has no line breaks in one)."""
    return value.encode("utf-8", "replace").decode("latin-1")[:200].replace(
        "\r", "").replace("\n", "")


@pytest.fixture
def fuzz_app(make_app, fakes):
    app = make_app(**fakes.env(), SLACK_SIGNING_SECRET=SECRET)
    with app.app_context():
        carol = make_user("carol", "cmoc", slack_user_id="U0CAROL01")
        make_incident(carol)
        yield app
        wait_for_background(app)
        db.session.remove()


def payload_of(action: dict, user: object) -> str:
    return urlencode({"payload": json.dumps({"type": "block_actions", "user": user,
                                             "actions": [action],
                                             "response_url": "http://127.0.0.1:9/x"})})


def test_random_bodies_and_headers_never_500(fuzz_app):
    client = fuzz_app.test_client()

    @FUZZ
    @given(path=st.sampled_from(["/slack/actions", "/slack/commands"]),
           body=st.one_of(st.binary(max_size=300), TEXT.map(str.encode)),
           stamp=TEXT, signature=TEXT)
    def unsigned(path, body, stamp, signature):
        headers = {"X-Slack-Request-Timestamp": header(stamp), "X-Slack-Signature":
                   header(signature)}
        response = client.post(path, data=body, headers=headers,
                               content_type="application/x-www-form-urlencoded")
        assert response.status_code in (400, 401, 413), response.status_code

    unsigned()


def test_signed_hostile_payloads_and_commands_never_500(fuzz_app, fakes):
    client = fuzz_app.test_client()
    answer_to = f"{fakes.url}/slack/response/T/1/x"  # answers go to the fake, never to Slack

    @FUZZ
    @given(action_id=st.one_of(st.sampled_from(["nmu", "snooze", "snooze_break", "take_over",
                                                "open_draft"]), TEXT),
           value=st.one_of(JSONISH.map(json.dumps), TEXT,
                           st.builds(lambda i, d, t: json.dumps(
                               {"incident": i, "due": d, "detail": t}),
                               st.one_of(st.integers(), TEXT), st.one_of(st.integers(), TEXT),
                               TEXT)),
           user=st.one_of(st.just("U0CAROL01"), TEXT))
    def click(action_id, value, user):
        body = click_body(user=user, action_id=action_id, value=value,
                          response_url=answer_to)
        response = post(client, "/slack/actions", body)
        assert response.status_code in (200, 400, 413), response.status_code
        wait_for_background(fuzz_app)
        db.session.rollback()

    @FUZZ
    @given(text=st.one_of(TEXT, st.tuples(st.sampled_from(["status", "update", "nmu", "NMU"]),
                                          TEXT).map(" ".join)),
           user=st.one_of(st.just("U0CAROL01"), TEXT))
    def command(text, user):
        body = urlencode({"team_id": "T1", "user_id": user, "command": "/cmoc", "text": text,
                          "response_url": answer_to,
                          "trigger_id": "1.2.3"})
        response = post(client, "/slack/commands", body)
        assert response.status_code in (200, 400, 413), response.status_code
        if response.status_code == 200:
            assert response.get_json()["response_type"] == "ephemeral"
        db.session.rollback()

    @FUZZ
    @given(raw=st.one_of(JSONISH.map(json.dumps), TEXT), user=JSONISH, action=JSONISH)
    def odd_payload(raw, user, action):
        for body in (urlencode({"payload": raw}),
                     payload_of(action if isinstance(action, dict) else {"x": action}, user)):
            assert post(client, "/slack/actions", body).status_code in (200, 400, 413)
        wait_for_background(fuzz_app)
        db.session.rollback()

    click()
    command()
    odd_payload()


def test_a_click_naming_no_incident_is_told_not_a_500(fuzz_app, fakes):
    """Found by the fuzz above on a loaded machine: a signed click whose value names an
    incident that does not exist made the claim's insert fail on the foreign key, and the
    "already claimed" path then read a claim that was never there."""
    client = fuzz_app.test_client()
    body = click_body(user="U0CAROL01", action_id="snooze",
                      value='{"incident":999999,"due":0}',
                      response_url=f"{fakes.url}/slack/response/1")
    assert post(client, "/slack/actions", body).status_code == 200
    wait_for_background(fuzz_app)
    assert any("does not exist" in (r.get("text") or "")
               for r in fakes.slack_api.responses), fakes.slack_api.responses
