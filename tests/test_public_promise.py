"""Public means public, and the promise each public update makes: Slack-only updates are
internal, "no public post needed" is an audited decision, snoozing past the promised time needs
a confirmation and is recorded, lowering the severity never moves the reminder past it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from cmoc.extensions import db
from cmoc.models import AuditEntry, IncidentEvent, Update
from cmoc.services import ValidationError
from cmoc.services.incidents import IncidentFields, edit_incident
from cmoc.services.metrics import incident_comms
from cmoc.services.promises import PromiseAtStake, decide_no_public_post, snooze
from cmoc.services.reminders import send_reminders
from tests.factories import CHANNELS, ISSUE_URL, deliveries, make_incident, make_user, publish

T = datetime(2026, 11, 26, 7, 43, tzinfo=UTC)
MIN = timedelta(minutes=1)


@pytest.fixture
def client(live_client):
    return live_client


# -- finding 5: Slack-only is internal ---------------------------------------------------------
def test_slack_only_security_update_is_internal_and_keeps_the_reminder_asking(
        live_app, client, fakes):
    live_app.config["SLACK_REMINDER_CHANNEL"] = "#cmoc-reminders"
    incident = make_incident(status="security_issue", severity="S2")
    declared_due = incident.next_update_due_at
    assert publish(client, incident, symptom="a security issue",
                   channels=["slack"]).status_code == 302
    db.session.refresh(incident)
    assert {c: d.status for c, d in deliveries().items()} == {
        "statusio": "skipped", "twitter": "skipped", "slack": "sent", "gitlab": "skipped"}
    # The public was not told: no public update, no restarted cadence, no promise.
    assert incident.last_published_at is None and incident.promised_at is None
    assert incident.next_update_due_at == declared_due
    comms = incident_comms(incident)
    assert comms.first_public_at is None and comms.time_to_first_update is None
    assert comms.not_public == 1
    page = client.get(f"/incidents/{incident.id}").get_data(as_text=True)
    assert '<span class="badge internal"' in page
    assert 'id="first-public">none yet' in page and "0.0 min" not in page
    assert 'id="public-pending"' in page and "went neither to the status page nor to X" in page
    assert "Last public update</dt><dd>none published yet" in page
    # The reminder keeps asking, and says why.
    sent_before = len(fakes.slack_messages)
    send_reminders(live_app, now=declared_due + 6 * MIN)
    reminder = fakes.slack_messages[sent_before]["text"]
    assert "went neither to the status page nor to X: the public has not been told" in reminder
    assert f"/incidents/{incident.id}#no-public-post|No public post needed>" in reminder
    # The audit says it was internal.
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "update.publish"))
    assert entry.after["internal"] is True


def test_a_public_post_after_slack_only_counts_from_then(live_app, client, fakes):
    incident = make_incident()
    publish(client, incident, symptom="errors", channels=["slack"], key="a")
    publish(client, incident, symptom="errors", template="investigating", key="b")
    db.session.refresh(incident)
    internal, public = db.session.scalars(select(Update).order_by(Update.publish_seq)).all()
    comms = incident_comms(incident)
    assert comms.first_public_at == public.published_at and comms.not_public == 1
    assert incident.last_published_at == public.published_at
    assert incident.promised_at == incident.next_update_due_at == public.next_due_at


def test_public_post_that_failed_or_was_dry_run_is_not_a_public_update(make_app):
    app = make_app()   # no credentials: every channel in dry-run
    with app.app_context():
        from tests.factories import login

        user = make_user("carol", "cmoc")
        incident = make_incident(user)
        web = app.test_client()
        login(web, user)
        publish(web, incident, symptom="errors", channels=[*CHANNELS, "gitlab"])
        assert {d.status for d in deliveries().values()} == {"dry_run"}
        comms = incident_comms(incident)
        assert comms.first_public_at is None and comms.not_public == 1
        db.session.remove()


# -- no public post needed: an explicit, audited decision ---------------------------------------
def test_no_public_post_needed_is_recorded_and_restarts_the_cadence(live_app, client, cmoc_user):
    incident = make_incident(severity="S2", status="security_issue")
    with pytest.raises(ValidationError, match="Say why"):
        decide_no_public_post(incident=incident, reason=" ", actor=cmoc_user,
                              cadence=live_app.config["CADENCE_MATRIX"], now=T)
    response = client.post(f"/incidents/{incident.id}/no-public-post",
                           data={"reason": "Security issue: the IM keeps it internal"})
    assert response.status_code == 302
    db.session.refresh(incident)
    assert incident.next_update_due_at > incident.created_at + 14 * MIN
    event = db.session.scalar(select(IncidentEvent).where(IncidentEvent.kind == "no_public_post"))
    assert event.detail["reason"] == "Security issue: the IM keeps it internal"
    entry = db.session.scalar(select(AuditEntry).where(
        AuditEntry.action == "incident.no_public_post"))
    assert entry.actor_name == "carol" and entry.after["reason"].startswith("Security issue")
    page = client.get(f"/incidents/{incident.id}").get_data(as_text=True)
    assert "carol decided no public post is needed: “Security issue" in page
    assert incident_comms(incident).no_public_post == 1


# -- finding 6: snoozing past the promise ---------------------------------------------------------
def promised_incident(**extra):
    # Published at 07:43 (S1 Investigating): the public was promised the next update by 07:53.
    return make_incident(created_at=T - 5 * MIN, last_published_at=T,
                         next_update_due_at=T + 10 * MIN, promised_at=T + 10 * MIN, **extra)


def test_snooze_past_the_promised_time_needs_confirmation_and_is_recorded(cmoc_user):
    incident = promised_incident()
    with pytest.raises(PromiseAtStake) as refused:
        snooze(incident=incident, minutes=10, actor=cmoc_user, now=T + 9 * MIN)
    message = refused.value.errors["break_promise"]
    assert "moves the reminder to 08:03 UTC, past 07:53 UTC" in message
    assert "The public will wait longer than promised" in message
    db.session.refresh(incident)
    assert incident.next_update_due_at == T + 10 * MIN  # nothing changed
    snooze(incident=incident, minutes=10, actor=cmoc_user, now=T + 9 * MIN, break_promise=True)
    assert incident.next_update_due_at == T + 20 * MIN
    event = db.session.scalar(select(IncidentEvent))
    assert event.detail["breaks_promise"] is True and event.detail["promised"].endswith("07:53 UTC")
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "incident.snooze"))
    assert entry.after["breaks_promise"] is True
    assert incident_comms(incident).promises_broken == 1
    # Once broken (and recorded), a further snooze does not ask again.
    snooze(incident=incident, minutes=5, actor=cmoc_user, now=T + 21 * MIN)
    assert incident.next_update_due_at == T + 26 * MIN


def test_snooze_with_nothing_promised_needs_no_confirmation(cmoc_user):
    incident = make_incident(created_at=T, next_update_due_at=T)
    snooze(incident=incident, minutes=5, actor=cmoc_user, now=T)
    assert incident.next_update_due_at == T + 5 * MIN


def test_snooze_page_asks_before_breaking_the_promise(client, cmoc_user):
    incident = promised_incident()
    asked = client.post(f"/incidents/{incident.id}/snooze", data={"minutes": "15", "next": "/"})
    html = asked.get_data(as_text=True)
    assert asked.status_code == 409 and 'id="snooze-confirm"' in html
    assert "past 07:53 UTC" in html and 'name="break_promise" value="1"' in html
    assert "No material updates" in html
    db.session.refresh(incident)
    assert incident.next_update_due_at == T + 10 * MIN
    done = client.post(f"/incidents/{incident.id}/snooze",
                       data={"minutes": "15", "next": "/", "break_promise": "1"})
    assert done.status_code == 302
    page = client.get(f"/incidents/{incident.id}").get_data(as_text=True)
    assert "breaks the public promise of 2026-11-26 07:53 UTC" in page


def test_a_lower_severity_never_moves_the_reminder_past_the_promise(live_app, cmoc_user):
    incident = promised_incident(severity="S1")
    edit_incident(incident=incident, fields=IncidentFields(
        title=incident.title, severity="S3", status=incident.status,
        components=incident.components, issue_url=ISSUE_URL),
        component_names=["Website", "API"], title_max=120,
        cadence=live_app.config["CADENCE_MATRIX"], now=T + MIN, actor=cmoc_user)
    assert incident.next_update_due_at == T + 10 * MIN  # S3 would be 15: the promise holds
