"""The public record under faults (issue 10's findings): order, one status.io incident, one
thread, look-ups before resends, one runner per delivery. Against the loopback fakes."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import select

from cmoc.extensions import db
from cmoc.fake_apis import STATUSPAGE_ID
from cmoc.models import Delivery, Incident, Update
from cmoc.services.delivering import RetryPolicy, resume_deliveries, run_deliveries
from cmoc.services.metrics import incident_comms
from cmoc.services.publishing import retry_deliveries, start_publish
from cmoc.timeutil import utcnow
from tests.factories import deliveries, make_incident, publish

RATE_LIMITED = {"title": "Too Many Requests", "detail": "Too Many Requests",
                "type": "about:blank", "status": 429}
LIST = f"incident/list/{STATUSPAGE_ID}"


def updates() -> list[Update]:
    db.session.expire_all()
    return db.session.scalars(select(Update).order_by(Update.publish_seq)).all()


def lane(channel: str) -> list[Delivery]:
    """One channel's deliveries in publish order."""
    return [next(d for d in u.deliveries if d.channel == channel) for u in updates()]


def publish_three(client, incident):
    publish(client, incident, symptom="errors on the API", key="u1")
    publish(client, incident, state="identified", cause="a bad deploy", key="u2")
    publish(client, incident, state="resolved", resolution="the deploy was rolled back",
            key="u3")


def later(seconds: float):
    return utcnow() + timedelta(seconds=seconds)


# -- finding 1: a stale update after newer ones ---------------------------------------------
def test_rate_limited_tweet_never_goes_out_after_newer_ones(live_app, live_client, fakes):
    incident = make_incident(components=["API"])
    reset = str(int(time.time()) + 120)
    fakes.fail("twitter", "2/tweets", status=429, body=RATE_LIMITED,
               headers={"x-rate-limit-reset": reset, "x-rate-limit-remaining": "0"})
    publish_three(live_client, incident)
    resume_deliveries(live_app, now=later(125), sleep=lambda s: None)
    resume_deliveries(live_app, now=later(400), sleep=lambda s: None)
    texts = [t["text"] for t in fakes.tweets.values()]
    assert len(texts) == 2
    assert texts[0].startswith("We've identified") and "resolved" in texts[1]
    first = lane("twitter")[0]
    assert first.status == "superseded" and "update #" in first.error
    assert all(u.phase == "published" for u in updates())
    # Counted where the CMOC and the monitoring look: the report and /metrics.
    assert incident_comms(db.session.get(Incident, incident.id)).superseded == 1
    metrics = live_client.get("/metrics").get_data(as_text=True)
    assert 'cmoc_deliveries_total{channel="twitter",outcome="superseded"} 1.0' in metrics
    page = live_client.get(f"/incidents/{incident.id}").get_data(as_text=True)
    assert "Superseded" in page and "is newer and replaces it" in page


def test_rate_limited_status_page_create_is_superseded_by_the_newer_update(
        live_app, live_client, fakes):
    incident = make_incident(components=["API"])
    fakes.fail("statusio", "incident/create", status=429, headers={"Retry-After": "120"},
               body={"status": {"error": "yes", "message": "Too many requests"}})
    publish(live_client, incident, symptom="errors on the API", key="u1")
    publish(live_client, incident, state="identified", cause="a bad deploy", key="u2")
    resume_deliveries(live_app, now=later(125), sleep=lambda s: None)
    assert len(fakes.incidents) == 1
    page = next(iter(fakes.incidents.values()))
    # The newer update created the incident; the old Investigating text never appeared.
    assert [m["state"] for m in page["messages"]] == [200]
    assert page["messages"][0]["details"].startswith("We've identified")
    first, second = lane("statusio")
    assert first.status == "superseded" and second.status == "sent"
    assert second.payload["path"] == "incident/create"


def test_retry_button_on_a_replaced_delivery_supersedes_it(live_app, live_client, fakes):
    incident = make_incident(components=["API"])
    fakes.fail("slack", "chat.postMessage", status=200,
               body={"ok": False, "error": "channel_not_found"})
    publish(live_client, incident, symptom="errors on the API", key="u1")
    publish(live_client, incident, state="identified", cause="a bad deploy", key="u2")
    first, second = lane("slack")
    # The newer update went out on Slack, so the older failure is moot: never resent.
    assert second.status == "sent" and first.status == "superseded"
    old = updates()[0]
    live_client.post(f"/incidents/{incident.id}/updates/{old.id}/retry",
                     data={"channels": ["slack"]})
    assert len(fakes.slack_messages) == 1


# -- finding 2: two status.io incidents for one outage ------------------------------------------
def test_unknown_create_blocks_later_status_page_posts_until_looked_up(
        live_app, live_client, fakes):
    incident = make_incident(components=["API"])
    fakes.fail("statusio", "incident/create", apply=True, delay=1.5, status=200,
               body={"status": {"error": "no"}, "result": "late"})
    outage = fakes.fail("statusio", LIST, status=500, body="down", times=100, method="GET")
    publish(live_client, incident, symptom="errors on the API", key="u1")
    publish(live_client, incident, state="identified", cause="a bad deploy", key="u2")
    first, second = lane("statusio")
    assert first.status == "failed" and first.outcome_unknown
    assert second.status == "waiting" and "checks Status page before" in second.error
    assert len(fakes.calls("statusio", "incident/create")) == 1
    # Resolving while the create's outcome is unknown: waits too, creates nothing.
    publish(live_client, incident, state="resolved", resolution="rolled back", key="u3")
    resume_deliveries(live_app, now=later(70), sleep=lambda s: None)
    assert len(fakes.incidents) == 1 and len(fakes.calls("statusio", "incident/create")) == 1
    assert lane("statusio")[2].status == "waiting"
    outage.times = 0                       # status.io answers again
    resume_deliveries(live_app, now=later(140), sleep=lambda s: None)
    assert len(fakes.incidents) == 1
    page = next(iter(fakes.incidents.values()))
    assert page["resolved"]
    first, second, third = lane("statusio")
    assert first.status == "sent" and first.external_id == page["_id"]
    # Update 2 was overtaken by Resolved while it waited: the page goes from the first
    # message straight to the resolution, nothing posted twice or out of order.
    assert second.status == "superseded" and third.status == "sent"
    assert [m["details"][:10] for m in page["messages"]] == ["We're seei", "This incid"]
    db.session.refresh(incident)
    assert incident.statusio_incident_id == page["_id"]


def test_unknown_create_that_never_happened_lets_the_next_update_create(
        live_app, live_client, fakes):
    incident = make_incident(components=["API"])
    fakes.fail("statusio", "incident/create", delay=1.5, status=200,
               body={"status": {"error": "no"}, "result": "late"})
    fakes.fail("statusio", LIST, status=503, body="down", method="GET")
    publish(live_client, incident, symptom="errors on the API", key="u1")
    publish(live_client, incident, state="identified", cause="a bad deploy", key="u2")
    assert [d.status for d in lane("statusio")] == ["failed", "waiting"]
    resume_deliveries(live_app, now=later(70), sleep=lambda s: None)
    first, second = lane("statusio")
    # Certainly not on status.io, and replaced by a newer update: superseded, not resent.
    assert first.status == "superseded" and second.status == "sent"
    assert len(fakes.incidents) == 1
    assert next(iter(fakes.incidents.values()))["messages"][0]["state"] == 200


# -- finding 3: a posted tweet reported as failed, a forked thread ---------------------------
def test_tweet_posted_behind_a_server_error_is_found_and_the_thread_goes_on(
        live_app, live_client, fakes):
    incident = make_incident(components=["API"])
    fakes.fail("twitter", "2/tweets", status=503, apply=True, method="POST",
               body={"title": "Service Unavailable", "status": 503})
    publish(live_client, incident, symptom="errors on the API", key="u1")
    tweet = next(iter(fakes.tweets.values()))
    first = lane("twitter")[0]
    assert first.status == "sent" and first.external_id == tweet["id"]
    assert first.attempts == 1   # found by looking, not by resending
    publish(live_client, incident, state="identified", cause="a bad deploy", key="u2")
    reply = list(fakes.tweets.values())[1]
    assert reply["in_reply_to"] == tweet["id"]
    assert len(fakes.calls("twitter", "2/tweets", method="POST")) == 2


def test_duplicate_answer_recovers_the_earlier_tweet(live_app, live_client, fakes):
    """The first answer was lost and X's timeline did not show the tweet yet: the resend
    gets "duplicate", and the thread still continues from the tweet that is there."""
    incident = make_incident(components=["API"])
    fakes.fail("twitter", "2/tweets", status=200, apply=True, drop=True, method="POST")
    fakes.fail("twitter", "tweets", status=200, method="GET", body={"meta": {"result_count": 0}})
    publish(live_client, incident, symptom="errors on the API", key="u1")
    tweet = next(iter(fakes.tweets.values()))
    assert len(fakes.tweets) == 1
    twitter = lane("twitter")[0]
    assert twitter.status == "sent" and twitter.external_id == tweet["id"]
    assert twitter.attempts == 2   # the resend that X refused as a duplicate
    db.session.refresh(incident)
    assert incident.twitter_last_tweet_id == tweet["id"]
    publish(live_client, incident, state="identified", cause="a bad deploy", key="u2")
    assert list(fakes.tweets.values())[1]["in_reply_to"] == tweet["id"]


def test_duplicate_of_an_older_tweet_is_a_clear_failure(live_app, live_client, fakes):
    incident = make_incident(components=["API"])
    publish(live_client, incident, channels=["twitter"], symptom="errors", key="u1")
    other = make_incident(components=["API"])
    publish(live_client, other, channels=["twitter"], symptom="errors", key="u2")
    failed = deliveries()["twitter"]
    assert failed.status == "failed" and not failed.retryable
    assert "already on the account's timeline" in failed.error


def test_slack_and_statusio_gateway_errors_are_looked_up_not_resent(
        live_app, live_client, fakes):
    incident = make_incident(components=["API"])
    fakes.fail("slack", "chat.postMessage", status=502, apply=True, body="Bad Gateway")
    fakes.fail("statusio", "incident/create", status=503, apply=True, body="unavailable")
    publish(live_client, incident, symptom="errors on the API", key="u1")
    assert len(fakes.slack_messages) == 1 and len(fakes.incidents) == 1
    got = deliveries()
    assert got["slack"].status == "sent" and got["statusio"].status == "sent"
    assert got["slack"].attempts == 1 and got["statusio"].attempts == 1


# -- finding 4: Slack look-up by channel name -------------------------------------------------
def test_first_slack_post_is_found_by_channel_id_after_a_lost_answer(
        live_app, live_client, fakes):
    incident = make_incident(components=["API"])
    fakes.fail("slack", "chat.postMessage", status=200, apply=True, delay=1.5,
               body={"ok": True})
    publish(live_client, incident, symptom="errors on the API", key="u1")
    assert len(fakes.slack_messages) == 1
    message = fakes.slack_messages[0]
    slack = deliveries()["slack"]
    assert slack.status == "sent" and slack.external_id == message["ts"]
    history = fakes.calls("slack", "conversations.history")
    assert history and history[-1].body["channel"] == message["channel"]
    db.session.refresh(incident)
    assert incident.slack_thread_ts == message["ts"]


# -- finding 5: a slow delivery run twice -------------------------------------------------------
def test_a_runner_that_is_still_working_is_never_doubled(live_app, live_client, cmoc_user,
                                                           fakes):
    """The lease is renewed on every attempt and kept across inline waits: clock passes while
    a slow, retrying runner is alive (minutes after it started) leave the delivery alone."""
    live_app.config.update(PUBLISH_INLINE_ATTEMPTS=6, PUBLISH_MAX_INLINE_WAIT=50)
    incident = make_incident(components=["API"])
    live_client.post(f"/incidents/{incident.id}/updates/new", data={
        "action": "save", "state": "investigating", "template": "investigating",
        "var_symptom": "errors"})
    update = db.session.scalar(select(Update))
    fakes.fail("statusio", "incident/create", status=429, headers={"Retry-After": "40"},
               body={"status": {"error": "yes", "message": "slow down"}}, times=4)
    fake_now = [utcnow()]
    passes = []

    def sleep(seconds):
        # The clock runs while the runner waits; four waits of 40 s outlast any fixed bound.
        passes.append(resume_deliveries(live_app, now=fake_now[0] + timedelta(seconds=39),
                                        sleep=lambda s: None))
        fake_now[0] += timedelta(seconds=seconds)

    start_publish(update=update, channels={"statusio"}, confirm_public=False, actor=cmoc_user,
                  cadence=live_app.config["CADENCE_MATRIX"], now=fake_now[0])
    run_deliveries(live_app, update.id, sleep=sleep, clock=lambda: fake_now[0])
    assert len(passes) == 4 and not any(any(p.values()) for p in passes)
    assert len(fakes.calls("statusio", "incident/create")) == 5
    assert len(fakes.incidents) == 1 and deliveries()["statusio"].status == "sent"


def test_a_living_runner_keeps_its_short_lease_through_a_slow_call(live_app, live_client,
                                                                     fakes):
    """The lease (3 s here) is shorter than X's answer (6 s): the keeper renews it while the
    runner waits, so a clock pass after the lease would have run out leaves it alone."""
    assert RetryPolicy.from_config(live_app.config).lease == timedelta(seconds=8)
    live_app.config.update(PUBLISH_LEASE_SECONDS=3, PUBLISH_WAIT_SECONDS=0.1, HTTP_READ_TIMEOUT=30)
    fakes.latency["twitter"] = 6.0
    incident = make_incident(components=["API"])
    publish(live_client, incident, channels=["twitter"], symptom="errors", key="1")
    deadline = time.monotonic() + 60
    while not fakes.calls("twitter", "2/tweets") and time.monotonic() < deadline:
        time.sleep(0.05)
    started = time.monotonic()
    time.sleep(4.0)                     # past the 3 s lease, before X answers
    if time.monotonic() - started < 5.5:   # X has not answered yet: the runner is mid-call
        assert resume_deliveries(live_app, now=utcnow(),
                                 sleep=lambda s: None)["stale_sending"] == 0
    while deliveries()["twitter"].status != "sent" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert deliveries()["twitter"].status == "sent"
    assert len(fakes.calls("twitter", "2/tweets")) == 1 and len(fakes.tweets) == 1


def test_crashed_runner_resumes_once_after_its_lease(live_app, live_client, fakes):
    """A runner died mid-call (its delivery stays `sending` with a lease): before the lease
    ends nothing happens; after it, exactly one look-up finds the post."""
    incident = make_incident(components=["API"])
    fakes.fail("slack", "chat.postMessage", status=200, apply=True, delay=1.5,
               body={"ok": True})
    fakes.fail("slack", "conversations.history", status=500, body="down", times=1)
    publish(live_client, incident, channels=["slack"], symptom="errors", key="u1")
    slack = deliveries()["slack"]
    assert slack.status == "failed" and slack.outcome_unknown
    # Simulate the runner that is looking again dying with the lease held.
    slack.status, slack.lease_token, slack.lease_until = "sending", "dead", later(60)
    db.session.commit()
    assert resume_deliveries(live_app, now=later(30), sleep=lambda s: None)["stale_sending"] == 0
    assert deliveries()["slack"].status == "sending"
    assert resume_deliveries(live_app, now=later(61), sleep=lambda s: None)["stale_sending"] == 1
    assert deliveries()["slack"].status == "sent" and len(fakes.slack_messages) == 1


def test_retry_of_an_unknown_outcome_looks_before_resending(live_app, live_client, fakes):
    incident = make_incident(components=["API"])
    fakes.fail("slack", "chat.postMessage", status=200, apply=True, delay=1.5,
               body={"ok": True})
    fakes.fail("slack", "conversations.history", status=500, body="down", times=10)
    publish(live_client, incident, channels=["slack"], symptom="errors", key="u1")
    assert deliveries()["slack"].outcome_unknown
    fakes.clear_faults()
    update = updates()[0]
    retry_deliveries(update=update, channels={"slack"}, now=utcnow())
    run_deliveries(live_app, update.id, sleep=lambda s: None)
    assert deliveries()["slack"].status == "sent" and len(fakes.slack_messages) == 1
    assert db.session.get(Incident, incident.id).slack_thread_ts == fakes.slack_messages[0]["ts"]
