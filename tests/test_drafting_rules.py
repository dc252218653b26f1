"""Drafting rules through the real form and preview, publishing to the loopback fakes:
per-channel blocking, fields only where used, placeholders, true next-update times,
subscriber flags, the component warning."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from cmoc.extensions import db
from cmoc.models import Incident, StatusioComponent, Update
from cmoc.texts import NEXT_UPDATE
from cmoc.timeutil import fmt_utc
from tests.factories import ISSUE_URL, deliveries, make_incident

ALL = ["statusio", "twitter", "slack"]
LONG_TWEET = "We're seeing errors on every page of the site. " * 7  # well over 280


@pytest.fixture
def client(live_client):
    return live_client


def form(state="investigating", template=None, channels=ALL, texts=None, key="k", **values):
    """The drafting form as the browser sends it; `texts` are typed by hand (edited)."""
    data = {"state": state, "template": template or state, "channels": channels,
            "channels_shown": "1", "idempotency_key": key,
            **{f"var_{k}": v for k, v in values.items()}}
    for channel, text in (texts or {}).items():
        data[f"text_{channel}"] = text
        data[f"edited_{channel}"] = "1"
    return data


def post(client, incident, action="publish", **kwargs):
    return client.post(f"/incidents/{incident.id}/updates/new",
                       data={"action": action, **form(**kwargs)})


def preview(client, incident, **kwargs):
    return client.post(f"/incidents/{incident.id}/preview", data=form(**kwargs)).json


# -- finding 1: an over-long tweet blocks only the tweet ------------------------------------
def test_long_tweet_unticked_lets_status_page_and_slack_publish(client, fakes):
    incident = make_incident()
    response = post(client, incident, channels=["statusio", "slack"], symptom="errors",
                    texts={"twitter": LONG_TWEET})
    assert response.status_code == 302
    got = deliveries()
    assert {c: d.status for c, d in got.items()} == {
        "statusio": "sent", "twitter": "skipped", "slack": "sent", "gitlab": "skipped"}
    assert len(fakes.incidents) == 1 and len(fakes.slack_messages) == 1 and not fakes.tweets


def test_long_tweet_ticked_is_refused_naming_the_tweet_and_the_others_can_go(client, fakes):
    incident = make_incident()
    refused = post(client, incident, symptom="errors", texts={"twitter": LONG_TWEET})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert "Saved as a draft, not published" in html
    assert re.search(r'id="problem-twitter"[^>]*>Tweet is \d+ weighted characters, \d+ over', html)
    assert "Leave Tweet out to publish to Status page and Slack." in html
    # The form offers to publish the others, and keeps Publish now disabled.
    assert re.search(r'id="publish" class="publish"\s+disabled', html)
    assert 'id="publish-others"' in html and "Publish to <span" in html
    assert [r for r in fakes.requests if r.method == "POST"] == []
    draft = db.session.scalar(select(Update))
    assert draft.phase == "draft"
    # "Publish to Status page and Slack": the blocked tweet is left out, and says why.
    others = post(client, incident, action="publish_others", symptom="errors",
                  texts={"twitter": LONG_TWEET})
    assert others.status_code == 302
    got = deliveries()
    assert got["statusio"].status == "sent" and got["slack"].status == "sent"
    assert got["twitter"].status == "skipped"
    assert got["twitter"].error.startswith("Left out: Tweet is")
    assert db.session.query(Update).count() == 1  # the same draft, published


def test_a_draft_with_a_blocked_channel_can_still_be_saved(client, fakes):
    incident = make_incident()
    saved = post(client, incident, action="save", symptom="errors",
                 texts={"twitter": LONG_TWEET})
    assert saved.status_code == 302
    reopened = client.get(saved.headers["Location"]).get_data(as_text=True)
    assert 'id="blocked-twitter"' in reopened and "over the 280 limit" in reopened


# -- finding 2: unfilled placeholders -------------------------------------------------------
def test_placeholder_left_in_a_hand_edited_text_blocks_that_channel(client, fakes):
    incident = make_incident(state="identified")
    typed = "[fix]. We're monitoring for 60 minutes before resolving. " + ISSUE_URL
    data = preview(client, incident, state="monitoring", fix="A fix was deployed",
                   texts={"twitter": typed})
    assert data["blocked"] == {"twitter": data["problems"]["twitter"]}
    assert "placeholder [fix] (“What changed?”)" in data["problems"]["twitter"]
    refused = post(client, incident, state="monitoring", fix="A fix was deployed",
                   texts={"twitter": typed})
    assert refused.status_code == 400
    assert "placeholder [fix]" in refused.get_data(as_text=True)
    assert not fakes.tweets and not fakes.incidents


def test_empty_field_shows_its_marker_and_blocks_the_channels_it_fills(client, fakes):
    incident = make_incident()
    data = preview(client, incident, symptom="")
    assert "[symptom]" in data["texts"]["statusio"]
    assert data["errors"]["var_symptom"] == "What are users seeing? is required."
    assert set(data["blocked"]) == set(ALL)


# -- finding 8 (form side): texts given in full need no template field ------------------------
def test_texts_written_in_full_need_no_template_field(client, fakes):
    incident = make_incident()
    texts = {"statusio": f"Our own words. Next update by {NEXT_UPDATE}.",
             "twitter": "Our own tweet. " + ISSUE_URL, "slack": "Our own Slack note."}
    data = preview(client, incident, symptom="", texts=texts)
    assert data["errors"] == {} and data["blocked"] == {}
    # Only the chosen channels count: Slack alone still rendered from the template needs it.
    partial = preview(client, incident, symptom="", channels=["statusio", "slack"],
                      texts={"statusio": texts["statusio"]})
    assert set(partial["errors"]) == {"var_symptom"}
    assert post(client, incident, symptom="", texts=texts).status_code == 302
    assert {c: d.status for c, d in deliveries().items()} == {
        **dict.fromkeys(ALL, "sent"), "gitlab": "skipped"}


# -- finding 3: the next-update time is the one the reminder uses -----------------------------
def test_every_channel_publishes_the_due_time_of_the_reminder(live_app, client, fakes):
    incident = make_incident(severity="S2")
    # A hand-edited tweet keeps the token, so it cannot go stale while the form is open.
    tweet = f"Errors on GitLab.com. Next update by {NEXT_UPDATE}. {ISSUE_URL}"
    assert post(client, incident, symptom="errors", texts={"twitter": tweet}).status_code == 302
    db.session.refresh(incident)
    due = incident.next_update_due_at
    assert due == incident.last_published_at + timedelta(minutes=15)
    assert incident.promised_at == due
    promise = f"Next update by {fmt_utc(due, with_date=False)}."
    update = db.session.scalar(select(Update))
    for channel in ALL:
        assert promise in update.text_for(channel) and NEXT_UPDATE not in update.text_for(channel)
    statusio = next(iter(fakes.incidents.values()))["messages"][0]["details"]
    assert promise in statusio
    assert promise in next(iter(fakes.tweets.values()))["text"]
    assert promise in fakes.slack_messages[0]["text"]


def test_preview_shows_the_resolved_time_and_warns_about_a_typed_one(client, fakes):
    incident = make_incident()
    data = preview(client, incident, symptom="errors",
                   texts={"twitter": "Errors. Next update by 03:00 UTC."})
    assert NEXT_UPDATE in data["texts"]["statusio"]
    assert f"Next update by {data['next_update_text']}." in data["resolved"]["statusio"]
    assert "promises the next update at 03:00" in data["warnings"]["twitter"]
    assert data["tweet"]["weighted_length"] == len(data["resolved"]["twitter"])


def test_resolved_update_cannot_promise_a_next_update(client, fakes):
    incident = make_incident()
    data = preview(client, incident, state="resolved", resolution="fixed",
                   texts={"slack": f"Fixed. Next update by {NEXT_UPDATE}."})
    assert "has no next update" in data["problems"]["slack"]


# -- finding 4: the Monitoring wait follows the next-update time --------------------------------
def test_monitoring_wait_follows_the_cadence_and_the_override(client, fakes):
    incident = make_incident(severity="S2", state="identified")
    data = preview(client, incident, state="monitoring", fix="Fixed")
    assert "no recurrences in the next 60 minutes" in data["texts"]["statusio"]
    override = form(state="monitoring", fix="Fixed")
    override["next_update_minutes"] = "45"
    data = client.post(f"/incidents/{incident.id}/preview", data=override).json
    assert "in the next 45 minutes" in data["texts"]["statusio"]
    chosen = preview(client, incident, state="monitoring", fix="Fixed", monitor_minutes="20")
    assert "in the next 20 minutes" in chosen["texts"]["statusio"]
    page = client.get(f"/incidents/{incident.id}/updates/new?state=monitoring")
    assert 'placeholder="60"' in page.get_data(as_text=True)


def test_later_investigating_updates_preselect_the_follow_up(client, fakes):
    incident = make_incident()
    first = client.get(f"/incidents/{incident.id}/updates/new").get_data(as_text=True)
    assert 'value="investigating" selected' in first
    # A Slack-only update told the public nothing: the first public update is still next.
    assert post(client, incident, symptom="errors", channels=["slack"],
                key="internal").status_code == 302
    internal = client.get(f"/incidents/{incident.id}/updates/new").get_data(as_text=True)
    assert 'value="investigating" selected' in internal
    assert post(client, incident, template="investigating", symptom="errors").status_code == 302
    later = client.get(f"/incidents/{incident.id}/updates/new").get_data(as_text=True)
    assert 'value="investigating-follow-up" selected' in later
    assert 'name="var_progress"' in later


# -- subscribers -------------------------------------------------------------------------------
def test_subscriber_flags_per_update_reach_status_io(client, fakes):
    incident = make_incident()
    page = client.get(f"/incidents/{incident.id}/updates/new").get_data(as_text=True)
    assert 'id="notify_sms" checked' in page  # the handbook: broadcast all
    assert "notified by email, SMS and webhook" in page
    data = form(symptom="errors")
    data.update({"notify_shown": "1", "notify_email": "1", "notify_webhook": "1",
                 "action": "publish"})
    shown = client.post(f"/incidents/{incident.id}/preview", data=data).json
    assert shown["notify"] == {"email": True, "sms": False, "webhook": True}
    assert shown["notify_summary"] == "status.io subscribers are notified by email and webhook."
    assert client.post(f"/incidents/{incident.id}/updates/new", data=data).status_code == 302
    message = next(iter(fakes.incidents.values()))["messages"][0]
    assert message["notify"] == {"notify_email": "1", "notify_sms": "0", "notify_webhook": "1"}
    assert message["social"] == "0"
    assert db.session.scalar(select(Update)).statusio_notify == {
        "email": True, "sms": False, "webhook": True}


# -- components without a status.io id ---------------------------------------------------------
def test_component_without_status_io_id_is_a_warning_on_draft_and_declare(live_app, client):
    db.session.add(StatusioComponent(id="", name="Legacy CDN", position=99, containers=[]))
    db.session.commit()
    incident = make_incident(components=["API", "Legacy CDN"])
    page = client.get(f"/incidents/{incident.id}/updates/new").get_data(as_text=True)
    assert 'id="component-warning"' in page
    assert "No status.io id for Legacy CDN" in page and "refuse to create" in page
    declare = client.get("/incidents/new").get_data(as_text=True)
    assert re.search(r'value="Legacy CDN"\s+data-no-statusio-id', declare)
    assert "no status.io id</span>" in declare
    refused = client.post("/incidents/new", data={"title": "x", "components": ["Legacy CDN"]})
    assert re.search(r'id="component-warning" role="alert"\s*>No status.io id for '
                     r'<span id="component-warning-list">Legacy CDN', refused.get_data(
                         as_text=True))
    # Without status.io configured (dry-run) nothing can be refused: no warning.
    live_app.config["STATUSIO_API_KEY"] = None
    assert 'id="component-warning"' not in client.get(
        f"/incidents/{incident.id}/updates/new").get_data(as_text=True)
    assert db.session.get(Incident, incident.id) is not None


# -- the incident issue's comment follows a hand-written status page text --------------------
def test_the_gitlab_comment_follows_the_status_page_text_as_it_is_typed(client):
    """Review finding: the derived comment must not be taken for a hand edit and freeze."""
    incident = make_incident()
    first = preview(client, incident, symptom="errors", texts={"statusio": "First words"})
    assert first["texts"]["gitlab"] == "**Public update (S1)**\n\nFirst words"
    assert first["rendered"]["gitlab"] == first["texts"]["gitlab"]
    # What the browser sends next: the comment box as shown, beside its rendered twin.
    data = form(symptom="errors", texts={"statusio": "First words, and then a lot more"})
    data.update(text_gitlab=first["texts"]["gitlab"], rendered_gitlab=first["rendered"]["gitlab"],
                edited_gitlab="0")
    second = client.post(f"/incidents/{incident.id}/preview", data=data).json
    assert second["texts"]["gitlab"] == ("**Public update (S1)**\n\n"
                                         "First words, and then a lot more")
