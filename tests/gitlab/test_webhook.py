"""POST /hooks/gitlab: forgery, replay, a new S1/S2 incident issue, severity changes, state
labels, and what /metrics counts — with payloads from GitLab's documented example."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import func, select

from cmoc.extensions import db
from cmoc.models import AuditEntry, GitlabEvent, Incident, IncidentEvent, Notice, WebhookCounter
from tests.factories import login, make_incident, make_user
from tests.gitlab.conftest import SECRET, wait_for
from tests.gitlab.payloads import ISSUE_URL, hook_headers, issue_hook


def post(client, payload, headers):
    return client.post("/hooks/gitlab", json=payload, headers=headers)


def counters() -> dict[str, int]:
    db.session.expire_all()
    return {r.outcome: r.count for r in db.session.scalars(select(WebhookCounter))}


def incidents() -> list[Incident]:
    db.session.expire_all()
    return list(db.session.scalars(select(Incident).order_by(Incident.id)))


def test_forged_or_unsigned_deliveries_are_refused_and_change_nothing(gitlab_app):
    client = gitlab_app.test_client()
    audit_before = db.session.scalar(select(func.count(AuditEntry.id)))
    for headers in (hook_headers("wrong-secret"), hook_headers(None),
                    hook_headers(SECRET[:-1]), hook_headers(SECRET + "x")):
        response = post(client, issue_hook(), headers)
        assert response.status_code == 401
        assert response.get_json()["error"]["code"] == "unauthorized"
    assert incidents() == []
    assert db.session.scalar(select(func.count(GitlabEvent.id))) == 0
    assert db.session.scalar(select(func.count(Notice.id))) == 0
    assert counters() == {"refused": 4}
    # Counted, not audited one by one: anyone on the network can send these.
    assert db.session.scalar(select(func.count(AuditEntry.id))) == audit_before


def test_without_a_configured_secret_everything_is_refused(make_app, fakes):
    app = make_app(**fakes.env())
    with app.app_context():
        response = post(app.test_client(), issue_hook(), hook_headers(""))
        assert response.status_code == 401
        assert post(app.test_client(), issue_hook(), hook_headers("anything")).status_code == 401


def test_a_new_s1_incident_issue_declares_an_incident_and_pings_the_cmoc(gitlab_app, fakes):
    response = post(gitlab_app.test_client(), issue_hook(labels=["severity::1", "Service::API",
                                                                 "Service::Git"]),
                    hook_headers(SECRET))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["outcome"] == "created"
    [incident] = incidents()
    assert (incident.title, incident.severity, incident.state, incident.status) == (
        "Elevated error rates on GitLab.com", "S1", "investigating", "service_disruption")
    assert incident.components == ["API", "Git Operations"]
    assert incident.issue_url == ISSUE_URL and incident.slack_channel == "#incident-23"
    assert incident.gitlab_issue == "gitlab-com/gl-infra/production#23"
    assert incident.declared_by.username == "gitlab" and not incident.declared_by.active
    assert incident.last_published_at is None and incident.statusio_incident_id is None
    assert fakes.incidents == {} and fakes.tweets == {}       # nothing public
    audit = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "incident.declare"))
    assert audit.via == "gitlab" and audit.actor_name == "gitlab"
    # The ping goes out after the answer, to the reminder channel (no CMOC Slack id yet).
    ping = wait_for(lambda: [m for m in fakes.slack_messages if "New S1" in (m["text"] or "")])
    assert ping and ping[0]["posted_to"] == "#cmoc-reminders"
    text = ping[0]["text"]
    assert "gitlab-com/gl-infra/production#23" in text and "nothing is public yet" in text
    assert (f"http://cmoc.test/incidents/{incident.id}/updates/new?state=investigating&amp;"
            "template=investigating&amp;var_symptom=elevated+error+rates+on+GitLab.com") in text


def test_the_prefilled_first_draft_link_opens_the_investigating_template(gitlab_app):
    post(gitlab_app.test_client(), issue_hook(), hook_headers(SECRET))
    [incident] = incidents()
    client = gitlab_app.test_client()
    login(client, make_user("carol", "cmoc"))
    page = client.get(f"/incidents/{incident.id}/updates/new?state=investigating&"
                      "template=investigating&var_symptom=elevated+error+rates+on+GitLab.com")
    assert page.status_code == 200
    assert "elevated error rates on GitLab.com" in page.get_data(as_text=True)


def test_the_same_event_twice_changes_things_once(gitlab_app, fakes):
    client = gitlab_app.test_client()
    headers = hook_headers(SECRET, key="5f2c3d7e-0000-4000-8000-000000000001")
    first = post(client, issue_hook(), headers)
    again = post(client, issue_hook(), {**headers, "X-Gitlab-Event-UUID": "another"})
    assert first.get_json()["outcome"] == "created"
    assert again.status_code == 200 and again.get_json()["outcome"] == "duplicate"
    assert len(incidents()) == 1
    assert counters() == {"created": 1, "duplicate": 1}
    wait_for(lambda: db.session.scalar(select(Notice.status)) == "sent"
             or db.session.expire_all())
    assert len([m for m in fakes.slack_messages if "New S1" in (m["text"] or "")]) == 1


def test_without_idempotency_headers_the_issue_updated_at_deduplicates(gitlab_app):
    client = gitlab_app.test_client()
    bare = {"X-Gitlab-Token": SECRET, "X-Gitlab-Event": "Issue Hook"}
    assert post(client, issue_hook(), bare).get_json()["outcome"] == "created"
    assert post(client, issue_hook(), bare).get_json()["outcome"] == "duplicate"
    later = issue_hook(labels=["severity::2"], previous=["severity::1"], action="update",
                       updated_at="2013-12-03T17:20:00Z")
    assert post(client, later, bare).get_json()["outcome"] == "severity_changed"
    assert post(client, later, bare).get_json()["outcome"] == "duplicate"


def test_two_deliveries_of_one_new_issue_at_once_make_one_incident(gitlab_app):
    results = []

    def deliver():
        with gitlab_app.app_context():
            results.append(post(gitlab_app.test_client(), issue_hook(),
                                hook_headers(SECRET)).get_json()["outcome"])

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(results).count("created") == 1 and len(results) == 4
    assert len(incidents()) == 1


def test_issues_cmoc_does_not_follow_are_ignored(gitlab_app):
    client = gitlab_app.test_client()
    cases = [
        issue_hook(labels=["severity::3", "Service::API"]),                    # S3
        issue_hook(labels=["severity::1"], type="Issue"),                       # not incident
        {**issue_hook(), "project": {"path_with_namespace": "someone/else"}},   # other project
        issue_hook(labels=["severity::1"], state="closed", action="close"),     # closed
    ]
    for payload in cases:
        response = post(client, payload, hook_headers(SECRET))
        assert response.status_code == 200 and response.get_json()["outcome"] == "ignored"
    assert incidents() == []
    assert post(client, {"object_kind": "push"}, hook_headers(SECRET)).status_code == 400
    assert counters() == {"ignored": 4, "invalid": 1}


def test_an_incident_label_without_the_type_counts_and_the_severity_field_maps(gitlab_app):
    payload = issue_hook(labels=["incident", "Service::Web"], type="Issue", severity="high")
    response = post(gitlab_app.test_client(), payload, hook_headers(SECRET))
    assert response.get_json()["outcome"] == "created"
    [incident] = incidents()
    assert incident.severity == "S2" and incident.status == "partial_service_disruption"
    assert incident.components == ["Website"]


def test_a_severity_label_change_recomputes_the_due_time_audited_from_gitlab(gitlab_app,
                                                                             fakes):
    cadence = gitlab_app.config["CADENCE_MATRIX"]
    user = make_user("carol", "cmoc", slack_user_id="U0CAROL")
    incident = make_incident(user, severity="S2", cmoc_id=user.id, issue_url=ISSUE_URL,
                             gitlab_issue="gitlab-com/gl-infra/production#23")
    published = incident.created_at - timedelta(minutes=3)
    incident.last_published_at, incident.state = published, "identified"
    incident.next_update_due_at = published + timedelta(minutes=30)      # S2 identified
    db.session.commit()
    change = issue_hook(labels=["severity::1", "Service::API"],
                        previous=["severity::2", "Service::API"], action="update")
    response = post(gitlab_app.test_client(), change, hook_headers(SECRET))
    assert response.get_json()["outcome"] == "severity_changed"
    db.session.expire_all()
    incident = db.session.get(Incident, incident.id)
    assert incident.severity == "S1"
    assert incident.next_update_due_at == published + cadence.interval(
        incident.state_enum, incident.severity_enum) == published + timedelta(minutes=10)
    audit = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "incident.edit"))
    assert audit.via == "gitlab" and audit.before["severity"] == "S2"
    assert audit.after["severity"] == "S1" and audit.after["source"] == "label severity::1"
    event = db.session.scalar(select(IncidentEvent).where(
        IncidentEvent.kind == "gitlab_severity"))
    assert event.detail["from"] == "S2" and event.detail["to"] == "S1"
    client = gitlab_app.test_client()
    login(client, user)
    page = client.get(f"/incidents/{incident.id}").get_data(as_text=True)
    assert "Severity S2 → S1 from GitLab (label severity::1, root)" in page
    # The CMOC hears of it in their DM.
    dm = wait_for(lambda: [m for m in fakes.slack_messages if m["posted_to"] == "U0CAROL"])
    assert "S2 → *S1*" in dm[0]["text"]
    # A change that leaves the severity alone leaves the CMOC's own edits alone.
    incident.severity = "S2"
    db.session.commit()
    other = issue_hook(labels=["severity::1", "Service::API", "Service::Git"],
                       previous=["severity::1", "Service::API"], action="update")
    assert post(client, other, hook_headers(SECRET)).get_json()["outcome"] == "ignored"
    assert db.session.get(Incident, incident.id).severity == "S2"


def test_mitigated_and_resolved_labels_ask_the_cmoc_to_publish(gitlab_app, fakes):
    user = make_user("carol", "cmoc")
    incident = make_incident(user, cmoc_id=user.id, issue_url=ISSUE_URL)   # linked by URL
    client = gitlab_app.test_client()
    mitigated = issue_hook(labels=["severity::1", "Incident::Mitigated"],
                           previous=["severity::1", "Incident::Active"], action="update")
    assert post(client, mitigated, hook_headers(SECRET)).get_json()["outcome"] == \
        "state_prompted"
    login(client, user)
    dashboard = client.get("/").get_data(as_text=True)
    assert 'id="gitlab-prompts"' in dashboard and "Incident::Mitigated on GitLab" in dashboard
    assert (f"/incidents/{incident.id}/updates/new?state=monitoring&amp;template=monitoring"
            in dashboard)
    detail = client.get(f"/incidents/{incident.id}").get_data(as_text=True)
    assert 'id="gitlab-prompt"' in detail and "Publish Monitoring" in detail
    ping = wait_for(lambda: [m for m in fakes.slack_messages if "GitLab says" in m["text"]])
    assert "publish a Monitoring update" in ping[0]["text"]
    # Closing the issue asks for Resolved; once cmoc is there, the prompt is gone.
    closed = issue_hook(labels=["severity::1", "Incident::Mitigated"], state="closed",
                        action="close", updated_at="2013-12-03T18:00:00Z")
    assert post(client, closed, hook_headers(SECRET)).get_json()["outcome"] == "state_prompted"
    assert "is closed on GitLab" in client.get("/").get_data(as_text=True)
    incident = db.session.get(Incident, incident.id)
    incident.state = "resolved"
    incident.resolved_at = incident.created_at
    db.session.commit()
    assert 'id="gitlab-prompts"' not in client.get("/").get_data(as_text=True)
    again = issue_hook(labels=["severity::1", "Incident::Resolved"],
                       previous=["severity::1", "Incident::Mitigated"], action="update")
    assert post(client, again, hook_headers(SECRET)).get_json()["outcome"] == "ignored"


def test_metrics_count_webhook_events_by_outcome(gitlab_app):
    client = gitlab_app.test_client()
    post(client, issue_hook(), hook_headers(SECRET, key="k1"))
    post(client, issue_hook(), hook_headers(SECRET, key="k1"))
    post(client, issue_hook(), hook_headers("nope"))
    text = client.get("/metrics").get_data(as_text=True)
    assert 'cmoc_webhook_events_total{outcome="created",source="gitlab"} 1.0' in text
    assert 'cmoc_webhook_events_total{outcome="duplicate",source="gitlab"} 1.0' in text
    assert 'cmoc_webhook_events_total{outcome="refused",source="gitlab"} 1.0' in text


def test_a_new_issue_in_the_fake_gitlab_becomes_an_incident_and_a_ping(served, gitlab_app,
                                                                        fakes):
    """Over the wire: the fake GitLab opens an incident issue and sends its webhook."""
    issue = fakes.gitlab_api.open_issue(
        gitlab_app.config["GITLAB_INCIDENT_PROJECT"], title="Git over SSH failing",
        labels=["severity::1", "Service::Git"], severity="critical")
    [delivery] = fakes.gitlab_api.hooks.deliveries
    assert delivery.payload["object_attributes"]["type"] == "Incident"
    assert wait_for(lambda: delivery.status) == 200
    incident = wait_for(lambda: incidents())[0]
    assert incident.title == "Git over SSH failing" and incident.severity == "S1"
    assert incident.issue_url == issue["web_url"]
    assert wait_for(lambda: [m for m in fakes.slack_messages if "Git over SSH" in m["text"]])
    # GitLab retries the same delivery (same Idempotency-Key): nothing more happens.
    fakes.gitlab_api.hooks.send(delivery)
    fakes.gitlab_api.hooks.wait()
    assert delivery.status == 200 and len(incidents()) == 1
    # The incident manager raises the label: severity and cadence follow.
    fakes.gitlab_api.change_labels(gitlab_app.config["GITLAB_INCIDENT_PROJECT"], issue["iid"],
                                   add=["severity::2"])
    assert wait_for(lambda: incidents()[0].severity == "S2")
