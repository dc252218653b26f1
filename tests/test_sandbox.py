"""The sandbox: channels without credentials post to cmoc's simulated services; the Sandbox
page shows what the public and the advocates would see; failures can be injected."""

from __future__ import annotations

import pytest
import requests
from markupsafe import Markup

from cmoc import create_app
from cmoc.cadence import ConfigError
from cmoc.channels.registry import channel_settings, sandboxed_channels
from cmoc.extensions import db
from cmoc.fake_apis import FakeApis, fake_env
from cmoc.fake_apis.gitlab import INCIDENT_PROJECT
from cmoc.fake_apis.sandbox import fault_for
from cmoc.modes import channel_modes
from cmoc.services.sandbox import shape, slack_markup
from tests.factories import CHANNELS, deliveries, login, make_incident, make_user, publish


@pytest.fixture
def sandbox_app(make_app, sandbox):
    app = make_app(SANDBOX_URL=sandbox.url, PUBLISH_BACKOFF_SECONDS=0)
    with app.app_context():
        yield app
        db.session.remove()


def test_channels_without_credentials_post_to_the_sandbox():
    config = {"SANDBOX_URL": "http://127.0.0.1:5050/", **{
        k: v for k, v in fake_env("https://real").items() if k.startswith("TWITTER")}}
    assert sandboxed_channels(config) == {"statusio", "slack", "gitlab"}
    assert channel_modes(config) == {"statusio": "sandbox", "twitter": "live",
                                     "slack": "sandbox", "gitlab": "sandbox"}
    settings = channel_settings(config)
    assert settings["STATUSIO_API_URL"] == "http://127.0.0.1:5050/statusio/v2"
    assert settings["TWITTER_API_URL"] == "https://real/twitter"      # live stays live
    assert settings["SLACK_REMINDER_CHANNEL"] == "#cmoc-reminders"
    assert channel_modes({}) == dict.fromkeys(["statusio", "twitter", "slack", "gitlab"],
                                             "dry-run")


def test_an_https_deployment_refuses_simulated_channels_unless_told(tmp_path):
    base = {"SECRET_KEY": "x", "DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
            "INSTANCE_PATH": str(tmp_path), "BASE_URL": "https://cmoc.example.com"}
    with pytest.raises(ConfigError, match="statusio \\(dry-run\\).*CMOC_SANDBOX=1"):
        create_app(base)
    with pytest.raises(ConfigError, match="sandbox"):
        create_app({**base, "SANDBOX_URL": "http://127.0.0.1:5050"})
    assert create_app({**base, "SANDBOX": True}).config["SANDBOX"]
    assert create_app({**base, **fake_env("https://real")})  # every channel live


def test_whole_flow_happens_in_the_sandbox_and_the_page_shows_it(sandbox_app, sandbox):
    user = make_user("trainee", "cmoc")
    client = sandbox_app.test_client()
    login(client, user)
    issue = sandbox.gitlab_api.open_issue(INCIDENT_PROJECT, title="API errors",
                                          labels=["severity::1"])
    incident = make_incident(components=["API"], issue_url=issue["web_url"])
    every = [*CHANNELS, "gitlab"]
    publish(client, incident, symptom="errors on the API", key="1", channels=every)
    publish(client, incident, state="identified", cause="a bad deploy", key="2", channels=every)
    publish(client, incident, state="resolved", resolution="it was rolled back", key="3",
            channels=every)
    assert {d.status for d in deliveries().values()} == {"sent"}
    # Each update is a comment on the incident issue, marked with its update id.
    notes = sandbox.gitlab_api.notes[(issue["project_id"], issue["iid"])]
    assert len(notes) == 3 and all("<!-- cmoc:update:" in n["body"] for n in notes)
    assert notes[0]["body"].startswith("**Public update (S1)**")
    assert len(sandbox.incidents) == 1 and next(iter(sandbox.incidents.values()))["resolved"]
    assert len(sandbox.tweets) == 3 and len(sandbox.slack_messages) == 3
    page = client.get("/sandbox").get_data(as_text=True)
    assert page.count('class="card status-incident"') == 1
    assert page.count('class="tweet"') == 3 and page.count('class="card tweet-thread"') == 1
    assert page.count('class="card slack-thread"') == 1
    assert "All Systems Operational" in page and "@user-group S0123ABC" in page
    header = client.get("/").get_data(as_text=True)
    assert 'id="sandbox-banner"' in header and 'data-mode="sandbox"' in header
    # The incident page links each post to where the Sandbox page shows it.
    detail = client.get(f"/incidents/{incident.id}").get_data(as_text=True)
    tweet = next(iter(sandbox.tweets))
    assert f'href="/sandbox#twitter-{tweet}"' in detail
    assert f'href="/sandbox#gitlab-{notes[-1]["id"]}"' in detail


def test_failures_injected_from_the_page_reach_the_next_post(sandbox_app, sandbox):
    user = make_user("trainee", "cmoc")
    client = sandbox_app.test_client()
    login(client, user)
    response = client.post("/sandbox/faults", data={"channel": "slack", "kind": "refused",
                                                    "times": "1"}, follow_redirects=True)
    assert b"restricted" not in response.data and b"will answer the next 1 post" in response.data
    assert b'id="pending-faults"' in response.data
    incident = make_incident(components=["API"])
    publish(client, incident, symptom="errors", key="1")
    slack = deliveries()["slack"]
    assert slack.status == "failed" and "restricted_action" in slack.error
    bad = client.post("/sandbox/faults", data={"channel": "slack", "kind": "nope"},
                      follow_redirects=True)
    assert b"Choose a channel" in bad.data
    viewer = make_user("watcher", "viewer")
    other = sandbox_app.test_client()
    login(other, viewer)
    assert other.post("/sandbox/faults", data={"channel": "slack", "kind": "refused"}
                      ).status_code == 403
    assert other.post("/sandbox/reset").status_code == 403


def test_sandbox_keeps_its_state_across_a_restart(tmp_path):
    path = tmp_path / "state.json"
    first = FakeApis(sandbox=True, state_path=path).start()
    try:
        env = fake_env(first.url)
        headers = {"Authorization": f"Bearer {env['SLACK_BOT_TOKEN']}"}
        requests.post(f"{first.url}/slack/api/chat.postMessage", headers=headers, timeout=10,
                      json={"channel": "#community-advocates", "text": "hello"})
    finally:
        first.stop()
    second = FakeApis(sandbox=True, state_path=path).start()
    try:
        state = requests.get(f"{second.url}/_sandbox/state", timeout=10).json()
        assert [m["text"] for m in state["slack_messages"]] == ["hello"]
        assert requests.post(f"{second.url}/_sandbox/reset", timeout=10).ok
        assert requests.get(f"{second.url}/_sandbox/state", timeout=10).json()[
            "slack_messages"] == []
        assert requests.post(f"{second.url}/_sandbox/faults", timeout=10,
                             json={"channel": "x", "kind": "refused"}).status_code == 400
    finally:
        second.stop()


def test_page_says_when_the_sandbox_is_down(make_app):
    app = make_app(SANDBOX_URL="http://127.0.0.1:9")
    with app.app_context():
        client = app.test_client()
        login(client, make_user("trainee", "cmoc"))
        page = client.get("/sandbox").get_data(as_text=True)
        assert 'id="sandbox-problem"' in page and "cmoc sandbox" in page
        db.session.remove()


def test_shape_groups_threads_and_labels_the_status_page():
    state = {
        "components": [{"_id": "c1", "name": "API", "containers": [{"_id": "k1"}]}],
        "incidents": [{"_id": "i1", "name": "Errors", "resolved": False,
                       "datetime_open": "2026-11-27T09:00:00.000Z",
                       "infrastructure_affected": ["c1-k1"],
                       "messages": [{"details": "Looking", "state": 100, "status": 500,
                                     "datetime": "2026-11-27T09:00:00.000Z"},
                                    {"details": "Found it", "state": 200, "status": 400,
                                     "datetime": "2026-11-27T09:10:00.000Z"}]}],
        "tweets": [{"id": "1", "text": "a", "in_reply_to": None},
                   {"id": "2", "text": "b", "in_reply_to": "1"},
                   {"id": "3", "text": "c", "in_reply_to": "2"},
                   {"id": "9", "text": "other", "in_reply_to": None}],
        "slack_messages": [{"ts": "1.0", "text": "root", "thread_ts": None},
                           {"ts": "2.0", "text": "reply", "thread_ts": "1.0"}],
    }
    view = shape(state)
    assert view.overall == "Partial Service Disruption"
    incident = view.incidents[0]
    assert incident.components == ["API"]
    assert [m["state"] for m in incident.messages] == ["Identified", "Investigating"]
    assert [[p["id"] for p in t.posts] for t in view.tweets] == [["9"], ["1", "2", "3"]]
    assert [[p["ts"] for p in t.posts] for t in view.slack] == [["1.0", "2.0"]]


def test_slack_markup_links_mentions_and_escapes_everything_else():
    html = slack_markup("<!subteam^S0ADV> Errors on &lt;b&gt;API&lt;/b&gt; &amp; "
                        "<https://gitlab.com/i?a=1&amp;b=2|Incident issue> <script>")
    assert isinstance(html, Markup)
    assert '<span class="mention">@user-group S0ADV</span>' in html
    assert '<a href="https://gitlab.com/i?a=1&amp;b=2" rel="noopener noreferrer">' in html
    assert "&lt;b&gt;API" in html and "<script>" not in html
    assert "href" not in slack_markup("<javascript:alert(1)|x>")  # shown as text, never a link
    assert fault_for("twitter", "rate_limit")["headers"]["x-rate-limit-reset"].isdigit()
    with pytest.raises(ValueError):
        fault_for("twitter", "meteor")
