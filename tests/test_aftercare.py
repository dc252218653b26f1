"""After Resolved: the incident review link in the Slack thread, the public page read back,
and closing an incident declared by mistake without any post."""

from __future__ import annotations

from sqlalchemy import select

from cmoc.extensions import db
from cmoc.models import AuditEntry, Incident, Notice
from cmoc.services.aftercare import live_checks_due, run_live_checks
from cmoc.services.notices import send_notices
from cmoc.services.reminders import send_reminders
from cmoc.timeutil import utcnow
from tests.factories import deliveries, make_incident, publish

REVIEW = "https://gitlab.com/gitlab-com/gl-infra/production/-/issues/999"


def resolved_incident(client):
    incident = make_incident(components=["API"])
    publish(client, incident, symptom="errors", key="1")
    publish(client, incident, state="resolved", resolution="rolled back", key="2")
    db.session.refresh(incident)
    return incident


def test_review_link_goes_to_the_slack_thread_once(live_app, live_client, fakes):
    incident = make_incident(components=["API"])
    publish(live_client, incident, symptom="errors", key="1")
    early = live_client.post(f"/incidents/{incident.id}/postmortem",
                             data={"postmortem_url": REVIEW}, follow_redirects=True)
    assert b"after Resolved" in early.data
    publish(live_client, incident, state="resolved", resolution="rolled back", key="2")
    bad = live_client.post(f"/incidents/{incident.id}/postmortem",
                           data={"postmortem_url": "javascript:alert(1)"}, follow_redirects=True)
    assert b"full http(s) link" in bad.data
    for _ in range(2):   # a double submit posts once
        live_client.post(f"/incidents/{incident.id}/postmortem", data={"postmortem_url": REVIEW})
    db.session.refresh(incident)
    review = [m for m in fakes.slack_messages if REVIEW in m["text"]]
    assert len(review) == 1 and review[0]["thread_ts"] == incident.slack_thread_ts
    notice = db.session.scalar(select(Notice))
    assert notice.status == "sent" and notice.external_id == review[0]["ts"]
    page = live_client.get(f"/incidents/{incident.id}").get_data(as_text=True)
    assert 'id="postmortem"' in page and REVIEW in page and 'id="postmortem-statusio"' in page
    assert db.session.scalar(select(AuditEntry).where(
        AuditEntry.action == "incident.postmortem")) is not None


def test_review_link_whose_answer_was_lost_is_looked_up(live_app, live_client, fakes):
    incident = resolved_incident(live_client)
    fakes.fail("slack", "chat.postMessage", status=502, apply=True, body="bad gateway")
    live_client.post(f"/incidents/{incident.id}/postmortem", data={"postmortem_url": REVIEW})
    notice = db.session.scalar(select(Notice))
    db.session.refresh(notice)
    assert notice.status == "failed" and notice.outcome_unknown
    send_notices(live_app, now=notice.next_attempt_at)   # the clock's next pass
    db.session.refresh(notice)
    assert notice.status == "sent", notice.error
    assert len([m for m in fakes.slack_messages if REVIEW in m["text"]]) == 1


def test_the_public_page_is_read_back_after_resolved(live_app, live_client, fakes):
    incident = resolved_incident(live_client)
    assert live_checks_due(now=utcnow()) == [incident.id]
    assert run_live_checks(live_app, now=utcnow()) == 1
    assert live_checks_due(now=utcnow()) == []
    page = live_client.get(f"/incidents/{incident.id}").get_data(as_text=True)
    assert 'class="live-check live-ok"' in page and "agrees: resolved, operational" in page
    # Someone reopened it on status.io by hand: the next read-back is a red warning.
    fakes.incidents[incident.statusio_incident_id]["resolved"] = False
    response = live_client.post(f"/incidents/{incident.id}/live-check", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert 'class="live-check live-bad"' in page
    assert "still shows the incident as active" in page


def test_an_incident_declared_by_mistake_closes_without_posting(live_app, live_client, fakes):
    incident = make_incident(components=["API"])
    refused = live_client.post(f"/incidents/{incident.id}/close", data={"reason": "x"},
                               follow_redirects=True)
    assert b"Say why" in refused.data
    page = live_client.get(f"/incidents/{incident.id}").get_data(as_text=True)
    assert 'id="close"' in page
    live_client.post(f"/incidents/{incident.id}/close",
                     data={"reason": "a test alert, not a real incident"})
    db.session.expire_all()
    closed = db.session.get(Incident, incident.id)
    assert closed.is_resolved and closed.closed_reason.startswith("a test alert")
    assert closed.next_update_due_at is None
    assert send_reminders(live_app, now=utcnow())["claimed"] == 0
    assert fakes.requests == [r for r in fakes.requests if r.method == "GET"]  # nothing posted
    entry = db.session.scalar(select(AuditEntry).where(
        AuditEntry.action == "incident.close_without_posting"))
    assert entry.after["reason"] == "a test alert, not a real incident"
    page = live_client.get(f"/incidents/{incident.id}").get_data(as_text=True)
    assert "Closed without posting" in page


def test_closing_unposted_is_refused_once_something_went_public(live_app, live_client, fakes):
    incident = make_incident(components=["API"])
    publish(live_client, incident, channels=["twitter"], symptom="errors", key="1")
    assert deliveries()["twitter"].status == "sent"
    response = live_client.post(f"/incidents/{incident.id}/close",
                                data={"reason": "declared by mistake"}, follow_redirects=True)
    assert b"publish a Resolved update instead" in response.data
    assert not db.session.get(Incident, incident.id).is_resolved
