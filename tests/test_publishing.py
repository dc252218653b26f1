"""Publishing through the real app to the fake APIs: fan-out, threading, failures, recovery."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from cmoc.enums import DeliveryStatus
from cmoc.extensions import db
from cmoc.models import Delivery, Incident, Update
from cmoc.services.components import refresh_components
from cmoc.services.delivering import channels_for, resume_deliveries, run_deliveries
from cmoc.services.publishing import PublishConflict, start_publish
from cmoc.timeutil import utcnow
from tests.factories import (
    deliveries,
    fake_issue,
    issue_notes,
    login,
    make_incident,
    make_user,
    publish,
)

ALL = ["statusio", "twitter", "slack", "gitlab"]


@pytest.fixture
def client(live_client):
    return live_client


def saved_draft(app, user, fakes) -> tuple[Incident, Update]:
    """An incident with one saved (unpublished) draft, components loaded from the fake."""
    incident = make_incident(issue_url=fake_issue(fakes))
    refresh_components(statusio=channels_for(app)["statusio"], now=utcnow())
    client = app.test_client()
    login(client, user)
    client.post(f"/incidents/{incident.id}/updates/new", data={
        "action": "save", "state": "investigating", "template": "investigating",
        "var_symptom": "errors"})
    return incident, db.session.scalar(select(Update))


def test_publish_fans_out_threads_and_resolves(client, fakes):
    incident = make_incident(components=["API", "Git Operations"], issue_url=fake_issue(fakes))
    response = publish(client, incident, symptom="elevated error rates", channels=ALL)
    assert response.status_code == 302
    first = db.session.scalar(select(Update))
    got = deliveries(first.id)
    assert {c: d.status for c, d in got.items()} == dict.fromkeys(ALL, "sent")
    assert first.phase == "published" and first.published_by.username == "carol"

    statusio_incident = next(iter(fakes.incidents.values()))
    assert got["statusio"].external_id == statusio_incident["_id"]
    assert len(statusio_incident["infrastructure_affected"]) == 3  # Git Ops has 2 containers
    assert statusio_incident["messages"][0]["social"] == "0"
    tweet = next(iter(fakes.tweets.values()))
    assert got["twitter"].external_id == tweet["id"] and tweet["in_reply_to"] is None
    message = fakes.slack_messages[0]
    assert message["text"].startswith("<!subteam^S0123ABC> ")

    db.session.refresh(incident)
    assert incident.statusio_incident_id == statusio_incident["_id"]
    assert incident.twitter_last_tweet_id == tweet["id"]
    assert incident.slack_thread_ts == message["ts"]
    assert incident.last_published_at is not None
    assert incident.next_update_due_at == incident.last_published_at + timedelta(minutes=10)

    publish(client, incident, state="monitoring", fix="A fix was deployed",
            monitor_minutes="30", key="second", channels=ALL)
    publish(client, incident, state="resolved", resolution="the change was rolled back",
            key="third", channels=ALL)
    db.session.refresh(incident)
    assert (incident.state, incident.status) == ("resolved", "operational")
    assert incident.resolved_at is not None and incident.next_update_due_at is None
    assert [m["state"] for m in statusio_incident["messages"]] == [100, 300, 300]
    assert statusio_incident["messages"][-1]["status"] == 100 and statusio_incident["resolved"]
    chain = list(fakes.tweets.values())
    assert chain[1]["in_reply_to"] == chain[0]["id"] and chain[2]["in_reply_to"] == chain[1]["id"]
    assert [m["thread_ts"] for m in fakes.slack_messages[1:]] == [message["ts"]] * 2
    assert all("subteam" not in m["text"] for m in fakes.slack_messages[1:])
    # The incident issue got one comment per update, in publish order.
    updates = db.session.scalars(select(Update).order_by(Update.publish_seq)).all()
    assert [n["body"].rsplit("<!-- cmoc:update:", 1)[1] for n in issue_notes(fakes)] == [
        f"{u.id} -->" for u in updates]
    page = client.get(f"/incidents/{incident.id}").get_data(as_text=True)
    assert page.count('class="badge d-sent"') == 12
    # Nothing may be published after Resolved.
    again = publish(client, incident, state="resolved", resolution="x", key="fourth")
    assert again.status_code == 302 and len(fakes.tweets) == 3


def test_same_form_submitted_twice_publishes_once(client, fakes):
    incident = make_incident()
    for _ in range(3):
        publish(client, incident, symptom="errors", key="form-key-1")
    assert db.session.query(Update).count() == 1
    assert len(fakes.tweets) == 1 and len(fakes.slack_messages) == 1
    assert len(fakes.incidents) == 1


def test_publishing_a_published_update_is_refused(live_app, client, cmoc_user, fakes):
    incident = make_incident()
    publish(client, incident, symptom="errors", key="k")
    update = db.session.scalar(select(Update))
    with pytest.raises(PublishConflict):
        start_publish(update=update, channels=set(ALL), confirm_public=False, actor=cmoc_user,
                      cadence=live_app.config["CADENCE_MATRIX"], now=utcnow())


def test_security_issue_needs_explicit_confirmation_for_public_channels(client, fakes):
    incident = make_incident(status="security_issue")
    form = client.get(f"/incidents/{incident.id}/updates/new").get_data(as_text=True)
    assert 'id="channel-statusio" ' in form and 'id="channel-statusio" checked' not in form
    assert 'id="channel-slack" checked' in form
    refused = publish(client, incident, symptom="a security issue", key="s1")
    assert refused.status_code == 400 and b"security issue" in refused.data
    assert [r for r in fakes.requests if r.method == "POST"] == []  # nothing was sent
    ok = client.post(f"/incidents/{incident.id}/updates/new", data={
        "action": "publish", "state": "investigating", "template": "investigating",
        "var_symptom": "a security issue", "channels": ALL, "channels_shown": "1",
        "confirm_public": "1", "idempotency_key": "s1"})
    assert ok.status_code == 302 and len(fakes.tweets) == 1


def test_unselected_channels_are_skipped(client, fakes):
    incident = make_incident()
    publish(client, incident, symptom="errors", channels=["slack"], key="only-slack")
    got = deliveries()
    assert {c: d.status for c, d in got.items()} == {
        "statusio": "skipped", "twitter": "skipped", "slack": "sent", "gitlab": "skipped"}
    assert fakes.tweets == {} and fakes.incidents == {} and issue_notes(fakes) == []


def test_no_channel_chosen_is_an_error(client, fakes):
    incident = make_incident()
    response = publish(client, incident, symptom="errors", channels=[], key="none")
    assert response.status_code == 400 and b"at least one channel" in response.data


def test_permanent_failure_then_manual_retry_touches_only_the_failed_channel(client, fakes):
    incident = make_incident()
    fakes.fail("slack", "chat.postMessage", status=200,
               body={"ok": False, "error": "channel_not_found"})
    publish(client, incident, symptom="errors", key="k")
    got = deliveries()
    assert got["slack"].status == "failed" and got["slack"].attempts == 1
    assert got["slack"].error == "Slack error: channel_not_found"
    assert got["statusio"].status == "sent" and got["twitter"].status == "sent"
    page = client.get(f"/incidents/{incident.id}").get_data(as_text=True)
    assert 'data-retry="slack"' in page and "channel_not_found" in page
    update = db.session.scalar(select(Update))
    before = len(fakes.calls("statusio")) + len(fakes.calls("twitter"))
    retried = client.post(f"/incidents/{incident.id}/updates/{update.id}/retry",
                          data={"channels": ["slack", "twitter", "statusio"]})
    assert retried.status_code == 302
    got = deliveries()
    assert got["slack"].status == "sent" and got["slack"].attempts == 2
    assert len(fakes.calls("statusio")) + len(fakes.calls("twitter")) == before
    assert len(fakes.slack_messages) == 1 and len(fakes.tweets) == 1
    nothing = client.post(f"/incidents/{incident.id}/updates/{update.id}/retry",
                          data={"channels": ["twitter"]})
    assert nothing.status_code == 302 and len(fakes.tweets) == 1


def test_transient_failures_are_retried_inline(client, fakes):
    incident = make_incident()
    fakes.fail("twitter", "2/tweets", status=503, body={"title": "Service Unavailable"})
    fakes.fail("statusio", "incident/create", status=500, body="boom", times=2)
    publish(client, incident, symptom="errors", key="k")
    got = deliveries()
    assert got["twitter"].status == "sent" and got["twitter"].attempts == 2
    assert got["statusio"].status == "sent" and got["statusio"].attempts == 3
    assert len(fakes.incidents) == 1


def test_statusio_failure_is_shown_prominently(client, fakes):
    incident = make_incident()
    fakes.fail("statusio", "incident/create", status=200,
               body={"status": {"error": "yes", "message": "Invalid component"}})
    publish(client, incident, symptom="errors", key="k")
    got = deliveries()
    assert got["statusio"].status == "failed" and not got["statusio"].retryable
    page = client.get(f"/incidents/{incident.id}").get_data(as_text=True)
    assert 'id="statuspage-problem"' in page and "Invalid component" in page


def test_long_rate_limit_is_left_to_the_clock(live_app, client, fakes):
    incident = make_incident()
    fakes.fail("slack", "chat.postMessage", status=429, headers={"Retry-After": "120"},
               body={"ok": False, "error": "ratelimited"})
    publish(client, incident, symptom="errors", key="k")
    slack = deliveries()["slack"]
    assert slack.status == "failed" and slack.retryable and slack.next_attempt_at is not None
    # Before the reset nothing happens; after it the clock's job sends it once.
    resume_deliveries(live_app, now=utcnow() + timedelta(seconds=30), sleep=lambda s: None)
    assert deliveries()["slack"].status == "failed"
    counts = resume_deliveries(live_app, now=utcnow() + timedelta(seconds=125),
                               sleep=lambda s: None)
    assert counts["retries"] == 1 and deliveries()["slack"].status == "sent"
    resume_deliveries(live_app, now=utcnow() + timedelta(seconds=300), sleep=lambda s: None)
    assert len(fakes.slack_messages) == 1


def test_unanswered_create_is_found_not_duplicated(client, fakes):
    """status.io carries out the create but the answer never arrives (read timeout)."""
    incident = make_incident()
    fakes.fail("statusio", "incident/create", apply=True, delay=1.5, status=200,
               body={"status": {"error": "no"}, "result": "late"})
    publish(client, incident, symptom="errors", key="k")
    got = deliveries()
    assert got["statusio"].status == "sent"
    assert len(fakes.incidents) == 1
    assert got["statusio"].external_id == next(iter(fakes.incidents))
    assert len(fakes.calls("statusio", "incident/create")) == 1


def test_crash_mid_publish_resumes_exactly_once(live_app, cmoc_user, fakes):
    """The worker died after status.io and X accepted, before anything was recorded."""
    incident, update = saved_draft(live_app, cmoc_user, fakes)
    past = utcnow() - timedelta(minutes=10)
    start_publish(update=update, channels=set(ALL), confirm_public=False, actor=cmoc_user,
                  cadence=live_app.config["CADENCE_MATRIX"], now=past)
    channels = channels_for(live_app)
    from cmoc.services.delivering import post_context_for

    for name in ALL:
        delivery = deliveries()[name]
        payload = channels[name].build(post_context_for(delivery))
        if name != "slack":  # Slack was never called
            assert channels[name].send(payload).ok
        delivery.payload = payload
        delivery.status = DeliveryStatus.SENDING.value
        delivery.started_at = past
        delivery.attempts = 1
        db.session.commit()
    assert len(fakes.incidents) == 1 and len(fakes.tweets) == 1
    counts = resume_deliveries(live_app, now=utcnow(), sleep=lambda s: None)
    assert counts["stale_sending"] == 4
    got = deliveries()
    assert {c: d.status for c, d in got.items()} == dict.fromkeys(ALL, "sent")
    assert len(fakes.incidents) == 1 and len(fakes.tweets) == 1
    assert len(fakes.slack_messages) == 1 and len(issue_notes(fakes)) == 1
    assert got["statusio"].external_id == next(iter(fakes.incidents))
    db.session.refresh(update)
    assert update.phase == "published"
    # A second pass (or a second clock) finds nothing to do.
    assert resume_deliveries(live_app, now=utcnow(), sleep=lambda s: None)["stale_sending"] == 0
    assert len(fakes.tweets) == 1 and len(fakes.slack_messages) == 1
    assert len(issue_notes(fakes)) == 1


def test_dry_run_records_exact_payload_without_sending(make_app, fakes):
    app = make_app()
    with app.app_context():
        user = make_user("dora", "cmoc")
        client = app.test_client()
        login(client, user)
        incident = make_incident(components=["API"])
        publish(client, incident, symptom="errors", key="dry", channels=ALL)
        got = deliveries()
        assert {c: d.status for c, d in got.items()} == dict.fromkeys(ALL, "dry_run")
        assert got["twitter"].payload["text"].startswith("We're seeing errors")
        assert got["statusio"].payload["path"] == "incident/create"
        assert got["slack"].payload["channel"] == "<SLACK_ADVOCATES_CHANNEL>"
        assert got["gitlab"].payload["iid"] == 12345
        assert fakes.requests == []
        page = client.get(f"/incidents/{incident.id}").get_data(as_text=True)
        assert "Dry-run" in page and "incident/create" in page
        db.session.remove()


def test_concurrent_publishes_of_one_draft_post_once(live_app, cmoc_user, fakes):
    """Twenty requests race to publish the same draft: one wins, one post per channel."""
    import threading

    incident, update = saved_draft(live_app, cmoc_user, fakes)
    update_id = update.id
    user_id, incident_id = cmoc_user.id, incident.id
    barrier = threading.Barrier(20)
    outcomes = []

    def racer():
        with live_app.app_context():
            from cmoc.models import User

            actor = db.session.get(User, user_id)
            update = db.session.get(Update, update_id)
            barrier.wait(timeout=60)
            try:
                start_publish(update=update, channels=set(ALL), confirm_public=False,
                              actor=actor, cadence=live_app.config["CADENCE_MATRIX"],
                              now=utcnow())
            except PublishConflict:
                outcomes.append("conflict")
            else:
                outcomes.append("won")
                run_deliveries(live_app, update_id, sleep=lambda s: None)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=racer) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert outcomes.count("won") == 1 and outcomes.count("conflict") == 19
    assert len(fakes.tweets) == 1 and len(fakes.slack_messages) == 1
    assert len(fakes.incidents) == 1 and len(issue_notes(fakes)) == 1
    assert db.session.query(Delivery).count() == 4
    db.session.expire_all()
    assert db.session.get(Incident, incident_id).statusio_incident_id is not None
