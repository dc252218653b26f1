"""Slack buttons on reminders and the /cmoc command (issue 15): signed requests only, cmoc
users only, one action per message however many clicks, and the message edited in place."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from cmoc.extensions import db
from cmoc.models import AuditEntry, Delivery, Incident, IncidentEvent, SlackAction, Update
from cmoc.services.reminders import send_reminders
from cmoc.services.slack_interact import wait_for_background
from cmoc.timeutil import utcnow
from tests.factories import fake_issue, issue_notes, login, make_incident, make_user
from tests.slack_requests import SECRET, click_body, command_body, post

MIN = timedelta(minutes=1)
CAROL = "U0CAROL01"


@pytest.fixture
def slack_app(make_app, fakes):
    app = make_app(**fakes.env(), SLACK_SIGNING_SECRET=SECRET,
                   SLACK_REMINDER_CHANNEL="#cmoc-reminders", BASE_URL="https://cmoc.example.com",
                   PUBLISH_BACKOFF_SECONDS=0, HTTP_READ_TIMEOUT=1.0)
    with app.app_context():
        yield app
        wait_for_background(app)
        db.session.remove()


@pytest.fixture
def carol(slack_app):
    return make_user("carol", "cmoc", slack_user_id=CAROL)


def due_incident(fakes, carol, **extra) -> Incident:
    now = utcnow()
    values = {"created_at": now - 30 * MIN, "last_published_at": now - 10 * MIN,
              "next_update_due_at": now - MIN, "cmoc_id": carol.id,
              "issue_url": fake_issue(fakes), **extra}
    return make_incident(carol, **values)


def response_url(fakes) -> str:
    return f"{fakes.url}/slack/response/{'T0001TEAM'}/1234/abcd"


def reminder_in_slack(app, fakes) -> dict:
    """Sends the due reminders and returns the one message posted."""
    assert send_reminders(app, now=utcnow())["sent"] == 1
    return fakes.slack_messages[-1]


def button(message: dict, action_id: str) -> dict:
    actions = next(b for b in message["blocks"] if b["type"] == "actions")
    return next(e for e in actions["elements"] if e["action_id"] == action_id)


def click(client, fakes, message: dict, action_id: str, user: str = CAROL):
    body = click_body(user=user, action_id=action_id, value=button(message, action_id)["value"],
                      response_url=response_url(fakes), channel=message["channel"],
                      ts=message["ts"], text=message["text"])
    return post(client, "/slack/actions", body)


def audit(action: str) -> list[AuditEntry]:
    db.session.expire_all()
    return db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)).all()


def test_reminder_carries_the_four_buttons_and_the_confirmation_texts(slack_app, fakes, carol):
    incident = due_incident(fakes, carol)
    message = reminder_in_slack(slack_app, fakes)
    ids = [e["action_id"] for e in next(b for b in message["blocks"]
                                        if b["type"] == "actions")["elements"]]
    assert ids == ["open_draft", "nmu", "snooze", "take_over"]
    assert button(message, "open_draft")["url"].startswith(
        f"https://cmoc.example.com/incidents/{incident.id}/updates/new?template="
        "no-material-updates")
    confirm = button(message, "nmu")["confirm"]
    assert len(confirm["text"]["text"]) <= 300
    assert "No material updates to report. The team is continuing to investigate." in (
        confirm["text"]["text"])
    assert "Status page, Tweet, Slack and GitLab issue; next update due" in (
        confirm["text"]["text"])
    assert message["blocks"][0]["text"]["verbatim"] is True


def test_click_on_no_material_updates_posts_once_everywhere_and_moves_the_due_time(
        slack_app, fakes, carol):
    incident = due_incident(fakes, carol)
    due_before = incident.next_update_due_at
    message = reminder_in_slack(slack_app, fakes)
    client = slack_app.test_client()
    # Two CMOCs (or one double click) on the same button: one update.
    first = click(client, fakes, message, "nmu")
    second = click(client, fakes, message, "nmu")
    assert (first.status_code, second.status_code) == (200, 200)
    wait_for_background(slack_app)
    db.session.expire_all()
    updates = db.session.scalars(select(Update).where(Update.publish_seq.is_not(None))).all()
    assert [u.template for u in updates] == ["no-material-updates"]
    deliveries = db.session.scalars(select(Delivery).where(
        Delivery.update_id == updates[0].id)).all()
    assert sorted((d.channel, d.status) for d in deliveries) == [
        ("gitlab", "sent"), ("slack", "sent"), ("statusio", "sent"), ("twitter", "sent")]
    assert len(fakes.incidents) == 1 and len(fakes.tweets) == 1
    assert [n["body"].count("No material updates") for n in issue_notes(fakes)] == [1]
    assert len([m for m in fakes.slack_messages
                if "No material updates to report" in (m["text"] or "")]) == 1
    incident = db.session.get(Incident, incident.id)
    # The cadence restarts from the publish (S1 Investigating: every 10 minutes).
    assert incident.next_update_due_at == updates[0].next_due_at
    assert incident.next_update_due_at > due_before + 9 * MIN
    assert incident.promised_at == incident.next_update_due_at
    # The reminder now says who did what, with no buttons left to click.
    edited = next(m for m in fakes.slack_messages if m["ts"] == message["ts"])
    assert edited["edited"] == 1
    assert "carol posted “No material updates” to Status page, Tweet, Slack and GitLab issue" in (
        edited["text"])
    assert not any(b["type"] == "actions" for b in edited["blocks"])
    # The second click is told, only to its clicker, that the first one acts (or acted).
    [told] = fakes.slack_api.responses
    assert told["response_type"] == "ephemeral" and told["replace_original"] is False
    assert told["text"] in ("carol is doing this already (nmu).", "Already done: " + (
        db.session.scalar(select(SlackAction.detail)) or ""))
    assert db.session.scalar(select(SlackAction.status)) == "done"
    # The dashboard shows the last reminder's delivery and the action taken from Slack.
    login(client, carol)
    page = client.get("/").get_data(as_text=True)
    assert "Reminder (due): sent" in page and f"to {CAROL}" in page
    assert "From Slack: carol posted “No material updates” to Status page" in page


def test_parallel_clicks_act_once(slack_app, fakes, carol):
    incident = due_incident(fakes, carol)
    message = reminder_in_slack(slack_app, fakes)
    body = click_body(user=CAROL, action_id="snooze", value=button(message, "snooze")["value"],
                      response_url=response_url(fakes), channel=message["channel"],
                      ts=message["ts"], text=message["text"])
    statuses = []

    def one_click():
        statuses.append(post(slack_app.test_client(), "/slack/actions", body).status_code)

    threads = [threading.Thread(target=one_click) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wait_for_background(slack_app)
    db.session.expire_all()
    assert statuses == [200] * 6
    assert len(db.session.scalars(select(IncidentEvent).where(
        IncidentEvent.incident_id == incident.id, IncidentEvent.kind == "snooze")).all()) == 1
    assert len(fakes.slack_api.responses) == 5


def test_csrf_does_not_apply_to_slack_requests(make_app, fakes):
    app = make_app(**fakes.env(), SLACK_SIGNING_SECRET=SECRET, WTF_CSRF_ENABLED=True)
    with app.app_context():
        make_user("carol", "cmoc", slack_user_id=CAROL)
        body = command_body(user=CAROL, text="status", response_url=response_url(fakes))
        answer = post(app.test_client(), "/slack/commands", body)
        assert answer.status_code == 200
        assert answer.get_json()["text"] == "No active incidents."


def test_snooze_past_the_promise_says_so_and_snoozes_only_when_confirmed(
        slack_app, fakes, carol):
    now = utcnow()
    incident = due_incident(fakes, carol, next_update_due_at=now - MIN, promised_at=now - MIN)
    message = reminder_in_slack(slack_app, fakes)
    client = slack_app.test_client()
    assert click(client, fakes, message, "snooze").status_code == 200
    wait_for_background(slack_app)
    db.session.expire_all()
    assert db.session.get(Incident, incident.id).next_update_due_at == now - MIN
    answer = fakes.slack_api.responses[-1]
    assert "past" in answer["text"] and "promised" in answer["text"]
    anyway = answer["blocks"][1]["elements"][0]
    assert anyway["action_id"] == "snooze_break"
    body = click_body(user=CAROL, action_id="snooze_break", value=anyway["value"],
                      response_url=response_url(fakes), channel=message["channel"],
                      ts=message["ts"], text=message["text"])
    assert post(client, "/slack/actions", body).status_code == 200
    wait_for_background(slack_app)
    db.session.expire_all()
    assert db.session.get(Incident, incident.id).next_update_due_at > now
    event = db.session.scalars(select(IncidentEvent).where(IncidentEvent.kind == "snooze")).one()
    assert event.detail["breaks_promise"] is True
    assert "recorded as a broken promise" in fakes.slack_messages[-1]["text"]


def test_take_over_from_slack(slack_app, fakes, carol):
    incident = due_incident(fakes, carol)
    dave = make_user("dave", "cmoc", slack_user_id="U0DAVE001")
    message = reminder_in_slack(slack_app, fakes)
    assert click(slack_app.test_client(), fakes, message, "take_over",
                 user="U0DAVE001").status_code == 200
    wait_for_background(slack_app)
    db.session.expire_all()
    assert db.session.get(Incident, incident.id).cmoc_id == dave.id
    assert "dave took over as CMOC" in fakes.slack_messages[-1]["text"]


def test_wrong_signature_and_stale_timestamp_are_refused(slack_app, fakes, carol):
    incident = due_incident(fakes, carol)
    message = reminder_in_slack(slack_app, fakes)
    client = slack_app.test_client()
    body = click_body(user=CAROL, action_id="nmu", value=button(message, "nmu")["value"],
                      response_url=response_url(fakes))
    assert post(client, "/slack/actions", body, secret="not-the-secret").status_code == 401
    stale = utcnow().timestamp() - 6 * 60
    assert post(client, "/slack/actions", body, at=stale).status_code == 401
    assert client.post("/slack/actions", data=body,
                       content_type="application/x-www-form-urlencoded").status_code == 401
    command = command_body(user=CAROL, text="status", response_url=response_url(fakes))
    assert post(client, "/slack/commands", command, at=stale).status_code == 401
    wait_for_background(slack_app)
    db.session.expire_all()
    assert db.session.scalars(select(SlackAction)).all() == []
    assert db.session.get(Incident, incident.id).last_published_at < utcnow() - 5 * MIN


def test_unknown_and_viewer_users_are_refused_and_audited(slack_app, fakes, carol):
    due_incident(fakes, carol)
    make_user("victor", "viewer", slack_user_id="U0VIEWER1")
    message = reminder_in_slack(slack_app, fakes)
    client = slack_app.test_client()
    command = command_body(user="U0NOBODY1", text="status", response_url=response_url(fakes))
    answer = post(client, "/slack/commands", command).get_json()
    assert answer["response_type"] == "ephemeral"
    assert "cmoc does not know you" in answer["text"]
    assert click(client, fakes, message, "nmu", user="U0VIEWER1").status_code == 200
    wait_for_background(slack_app)
    assert "role does not allow" in fakes.slack_api.responses[-1]["text"]
    refused = audit("slack.refused")
    assert [(e.actor_name, e.after["reason"]) for e in refused] == [
        ("slack:U0NOBODY1", "unknown_user"), ("victor", "role")]
    db.session.expire_all()
    assert db.session.scalars(select(SlackAction)).all() == []


def test_member_found_by_email_through_users_info(slack_app, fakes, carol):
    due_incident(fakes, carol)
    make_user("erin@example.com", "cmoc")
    fakes.slack_api.members["U0ERIN001"] = "Erin@example.com"
    command = command_body(user="U0ERIN001", text="status", response_url=response_url(fakes))
    answer = post(slack_app.test_client(), "/slack/commands", command).get_json()
    assert "Elevated error rates" in answer["text"] and "overdue" in answer["text"]


def test_slash_command_update_link_and_nmu_flow(slack_app, fakes, carol):
    incident = due_incident(fakes, carol)
    client = slack_app.test_client()
    url = response_url(fakes)
    link = post(client, "/slack/commands",
                command_body(user=CAROL, text=f"update {incident.id}", response_url=url))
    assert (f"<https://cmoc.example.com/incidents/{incident.id}/updates/new?state="
            "investigating|Draft the update>") in link.get_json()["text"]
    nmu = post(client, "/slack/commands", command_body(
        user=CAROL, text=f"nmu {incident.id} We are restarting the Gitaly servers.",
        response_url=url)).get_json()
    assert nmu["response_type"] == "ephemeral"
    assert "No material updates to report. We are restarting the Gitaly servers." in nmu["text"]
    assert "*Tweet*" in nmu["text"] and "*Status page*" in nmu["text"]
    confirm_button = nmu["blocks"][1]["elements"][0]
    assert confirm_button["confirm"]["confirm"]["text"] == "Post now"
    body = click_body(user=CAROL, action_id="nmu", value=confirm_button["value"],
                      response_url=url, ephemeral=True)
    assert post(client, "/slack/actions", body).status_code == 200
    wait_for_background(slack_app)
    tweet = next(iter(fakes.tweets.values()))["text"]
    assert tweet.startswith("No material updates to report. We are restarting the Gitaly")
    replaced = fakes.slack_api.responses[-1]
    assert replaced["replace_original"] is True and "carol posted" in replaced["text"]
    help_text = post(client, "/slack/commands", command_body(
        user=CAROL, text="nmu 99999999999999999999", response_url=url)).get_json()["text"]
    assert "No active incident" in help_text


def test_a_stale_message_acts_on_nothing(slack_app, fakes, carol):
    incident = due_incident(fakes, carol)
    message = reminder_in_slack(slack_app, fakes)
    incident.next_update_due_at = utcnow() + 30 * MIN  # e.g. published from the web meanwhile
    db.session.commit()
    click(slack_app.test_client(), fakes, message, "nmu")
    wait_for_background(slack_app)
    db.session.expire_all()
    assert db.session.scalars(select(Update)).all() == []
    assert "out of date" in fakes.slack_messages[-1]["text"]


def test_answers_go_only_to_slacks_response_url(slack_app, fakes, carol):
    due_incident(fakes, carol)
    body = click_body(user="U0NOBODY1", action_id="nmu",
                      value=json.dumps({"incident": 1, "due": 1}),
                      response_url="http://169.254.169.254/latest/meta-data")
    assert post(slack_app.test_client(), "/slack/actions", body).status_code == 200
    wait_for_background(slack_app)
    assert fakes.calls("slack", "response") == []
    assert fakes.slack_api.responses == []


def test_off_without_a_signing_secret(make_app):
    app = make_app()
    body = command_body(user=CAROL, text="status", response_url="https://hooks.slack.com/x")
    assert post(app.test_client(), "/slack/commands", body).status_code == 404
