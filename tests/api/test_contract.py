"""Contract tests for every API route, role and error."""

from __future__ import annotations

import re

import pytest

from cmoc.extensions import db
from cmoc.models import Incident, Update
from tests.api.conftest import ApiClient
from tests.factories import ISSUE_URL, make_incident

DECLARE = {"title": "Elevated error rates", "severity": "S1", "status": "service_disruption",
           "components": ["Website", "API"], "issue_url": ISSUE_URL,
           "slack_channel": "#incident-1"}


def error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.json["error"]
    assert set(body) == {"code", "message", "fields"} and body["message"]
    if code:
        assert body["code"] == code
    return body


def test_declare_read_list_patch(api):
    created = api.post("/incidents", json=DECLARE)
    assert created.status_code == 201
    incident = created.json
    assert incident["state"] == "investigating" and incident["updates"] == []
    assert incident["next_update_due_at"].endswith("Z")
    assert incident["cmoc"] == "cmoc-user"
    got = api.get(f"/incidents/{incident['id']}")
    assert got.status_code == 200 and got.json["title"] == "Elevated error rates"
    listed = api.get("/incidents").json["incidents"]
    assert [i["id"] for i in listed] == [incident["id"]]
    assert api.get("/incidents?state=resolved").json["incidents"] == []
    assert len(api.get("/incidents?state=all").json["incidents"]) == 1
    patched = api.patch(f"/incidents/{incident['id']}", json={"severity": "S2",
                                                              "title": "Renamed"})
    assert patched.status_code == 200
    assert (patched.json["severity"], patched.json["title"]) == ("S2", "Renamed")
    assert patched.json["components"] == ["Website", "API"]


def test_issue_url_is_optional_in_the_api(api):
    created = api.post("/incidents", json={k: v for k, v in DECLARE.items() if k != "issue_url"})
    assert created.status_code == 201 and created.json["issue_url"] is None
    update = api.post(f"/incidents/{created.json['id']}/updates", json={
        "state": "investigating", "variables": {"symptom": "errors"}})
    assert update.status_code == 201
    # No issue link, no dangling "Details:"; the time is a token until it is published.
    assert update.json["texts"]["twitter"] == (
        "We're seeing errors. We're investigating. Next update by {next_update}.")


def test_draft_renders_texts_and_keeps_given_ones(api):
    incident = api.post("/incidents", json=DECLARE).json
    response = api.post(f"/incidents/{incident['id']}/updates", json={
        "state": "identified", "variables": {"cause": "a bad deploy"},
        "texts": {"twitter": "Our own tweet " + ISSUE_URL}, "next_update_in_minutes": 45})
    assert response.status_code == 201
    update = response.json
    assert update["phase"] == "draft" and update["template"] == "identified"
    assert update["texts"]["statusio"].startswith("We've identified the cause as a bad deploy")
    assert update["texts"]["twitter"] == "Our own tweet " + ISSUE_URL
    assert update["next_update_in_minutes"] == 45 and update["deliveries"] == []
    full = api.get(f"/incidents/{incident['id']}").json
    assert [u["id"] for u in full["updates"]] == [update["id"]]


def test_publish_dry_run_and_idempotency(api):
    incident = api.post("/incidents", json=DECLARE).json
    body = {"state": "investigating", "variables": {"symptom": "errors"}, "publish": True,
            "idempotency_key": "bot-123"}
    first = api.post(f"/incidents/{incident['id']}/updates", json=body)
    assert first.status_code == 201
    assert first.json["phase"] == "published"
    assert {d["channel"]: d["status"] for d in first.json["deliveries"]} == {
        "statusio": "dry_run", "twitter": "dry_run", "slack": "dry_run", "gitlab": "dry_run"}
    again = api.post(f"/incidents/{incident['id']}/updates", json=body)
    assert again.status_code == 200 and again.json["id"] == first.json["id"]
    assert db.session.query(Update).count() == 1
    got = api.get(f"/incidents/{incident['id']}").json
    assert got["last_published_at"] is not None


def test_viewer_reads_but_cannot_write(api, viewer_api):
    incident = api.post("/incidents", json=DECLARE).json
    assert viewer_api.get(f"/incidents/{incident['id']}").status_code == 200
    error(viewer_api.post("/incidents", json=DECLARE), 403, "forbidden")
    error(viewer_api.patch(f"/incidents/{incident['id']}", json={"severity": "S2"}), 403)
    error(viewer_api.post(f"/incidents/{incident['id']}/updates",
                          json={"state": "identified"}), 403)
    error(viewer_api.post(f"/incidents/{incident['id']}/updates/1/retry", json={}), 403)


@pytest.mark.parametrize("header", [None, "Bearer nope", "Bearer cmoc_notatoken", "Basic abc"])
def test_missing_or_bad_token_is_401(app, header):
    client = ApiClient(app.test_client(), None)
    headers = {"Authorization": header} if header else {}
    error(client.get("/incidents", headers=headers), 401, "unauthorized")
    error(client.get("/openapi.json", headers=headers), 401)


def test_revoked_token_is_refused(app, runner):
    from cmoc.services.tokens import revoke_token
    from cmoc.timeutil import utcnow
    from tests.api.conftest import token_for

    token = token_for("cmoc", "revokee")
    client = ApiClient(app.test_client(), token)
    assert client.get("/incidents").status_code == 200
    revoke_token(token_id=1, now=utcnow())
    error(client.get("/incidents"), 401)


@pytest.mark.parametrize(("body", "field"), [
    ({**DECLARE, "severity": "S9"}, "severity"),
    ({**DECLARE, "status": "meltdown"}, "status"),
    ({**DECLARE, "title": 42}, "title"),
    ({**DECLARE, "title": ""}, "title"),
    ({**DECLARE, "components": []}, "components"),
    ({**DECLARE, "components": "Website"}, "components"),
    ({**DECLARE, "surprise": 1}, "surprise"),
    ({k: v for k, v in DECLARE.items() if k != "title"}, "title"),
])
def test_schema_errors_name_the_field(api, body, field):
    body_error = error(api.post("/incidents", json=body), 422, "validation_error")
    assert field in body_error["fields"]
    assert db.session.query(Incident).count() == 0


@pytest.mark.parametrize(("body", "field"), [
    ({**DECLARE, "components": ["Mainframe"]}, "components"),
    ({**DECLARE, "status": "operational"}, "status"),
    ({**DECLARE, "issue_url": "not a url"}, "issue_url"),
    ({**DECLARE, "title": "x" * 121}, "title"),
    ({**DECLARE, "slack_channel": "#Bad Name"}, "slack_channel"),
])
def test_domain_errors_name_the_field(api, body, field):
    assert field in error(api.post("/incidents", json=body), 422)["fields"]


def test_malformed_json_wrong_type_and_oversized_bodies(api):
    bad = api.post("/incidents", data="{not json", headers={"Content-Type": "application/json"})
    error(bad, 400, "malformed_json")
    form = api.post("/incidents", data="title=x",
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    error(form, 400, "bad_request")
    listy = api.post("/incidents", json=[1, 2])
    error(listy, 422)
    huge = api.post("/incidents", json={**DECLARE, "title": "x" * 300_000})
    error(huge, 413)
    assert db.session.query(Incident).count() == 0


def test_update_errors(api):
    incident = api.post("/incidents", json=DECLARE).json
    base = f"/incidents/{incident['id']}/updates"
    assert "state" in error(api.post(base, json={"state": "later"}), 422)["fields"]
    assert "variables.symptom" in error(api.post(base, json={
        "state": "investigating", "variables": {"symptom": "x" * 2001}}), 422)["fields"]
    assert "var_symptom" in error(api.post(base, json={"state": "investigating"}), 422)["fields"]
    # An over-long tweet is saved as a draft (blocked), and refused when it is to be published.
    long_tweet = {"state": "investigating", "variables": {"symptom": "x"},
                  "texts": {"twitter": "日" * 141}}
    draft = api.post(base, json=long_tweet)
    assert draft.status_code == 201 and "282 weighted" in draft.json["blocked"]["twitter"]
    over = error(api.post(base, json={**long_tweet, "publish": True}), 422, "cannot_publish")
    assert "282 weighted characters" in over["fields"]["text_twitter"]
    assert "next_update_in_minutes" in error(api.post(base, json={
        "state": "investigating", "next_update_in_minutes": 0}), 422)["fields"]
    assert "channels.0" in error(api.post(base, json={
        "state": "investigating", "channels": ["fax"]}), 422)["fields"]
    # monitoring, then back to investigating is an illegal transition
    api.post(base, json={"state": "monitoring", "variables": {"fix": "Fixed"}, "publish": True})
    error(api.post(base, json={"state": "investigating", "variables": {"symptom": "x"}}), 409,
          "illegal_transition")
    assert db.session.query(Update).filter(Update.published_at.is_not(None)).count() == 1


def test_update_on_resolved_incident_is_409(api):
    incident = api.post("/incidents", json=DECLARE).json
    base = f"/incidents/{incident['id']}/updates"
    done = api.post(base, json={"state": "resolved", "variables": {"resolution": "fixed"},
                                "publish": True})
    assert done.status_code == 201
    assert api.get(f"/incidents/{incident['id']}").json["state"] == "resolved"
    error(api.post(base, json={"state": "resolved", "variables": {"resolution": "x"}}), 409,
          "incident_resolved")
    error(api.patch(f"/incidents/{incident['id']}", json={"severity": "S2"}), 409)


def test_security_issue_needs_confirm_public(api):
    incident = api.post("/incidents", json={**DECLARE, "status": "security_issue"}).json
    base = f"/incidents/{incident['id']}/updates"
    refused = error(api.post(base, json={"state": "investigating",
                                         "variables": {"symptom": "x"}, "publish": True}), 422,
                    "cannot_publish")
    assert "confirm_public" in refused["fields"]
    slack_only = api.post(base, json={"state": "investigating", "variables": {"symptom": "y"},
                                      "publish": True, "channels": ["slack"]})
    assert slack_only.status_code == 201


def test_not_found_and_retry_errors(api):
    error(api.get("/incidents/999"), 404, "not_found")
    error(api.patch("/incidents/999", json={}), 404)
    error(api.post("/incidents/999/updates", json={"state": "identified"}), 404)
    incident = api.post("/incidents", json=DECLARE).json
    error(api.post(f"/incidents/{incident['id']}/updates/999/retry", json={}), 404)
    update = api.post(f"/incidents/{incident['id']}/updates", json={
        "state": "investigating", "variables": {"symptom": "x"}, "publish": True}).json
    error(api.post(f"/incidents/{incident['id']}/updates/{update['id']}/retry", json={}), 409,
          "nothing_to_retry")


def test_openapi_document_covers_every_route_and_schema(app, api):
    spec = api.get("/openapi.json").json
    assert spec["openapi"].startswith("3.1")
    routes = {(rule.rule, method) for rule in app.url_map.iter_rules()
              if rule.rule.startswith("/api/v1/") and rule.endpoint.startswith("api.")
              and rule.rule not in ("/api/v1/docs", "/api/v1/openapi.json")
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(path.replace("{incident_id}", "<int:incident_id>")
                   .replace("{update_id}", "<int:update_id>"), method.upper())
                  for path, methods in spec["paths"].items() for method in methods
                  if path.startswith("/api/v1/")}
    assert routes == documented
    # The Slack endpoints are in it too, with their own security (Slack's signature).
    slack = {rule.rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/slack/")}
    assert slack == {p for p in spec["paths"] if p.startswith("/slack/")} == {
        "/slack/actions", "/slack/commands"}
    assert spec["paths"]["/slack/actions"]["post"]["security"] == [{"slackSignature": []}]
    assert spec["components"]["securitySchemes"]["slackSignature"]["name"] == \
        "X-Slack-Signature"
    schemas = set(spec["components"]["schemas"])
    for name in ("IncidentCreate", "IncidentPatch", "UpdateCreate", "RetryRequest",
                 "IncidentOut", "IncidentList", "UpdateOut", "ErrorOut"):
        assert any(s.startswith(name) for s in schemas), (name, schemas)
    create = spec["paths"]["/api/v1/incidents"]["post"]
    assert {"201", "401", "403", "422"} <= set(create["responses"])
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_docs_page_for_humans(app, api):
    page = api.get("/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "/api/v1/incidents/{incident_id}/updates" in html
    # Only our own static files: no CDN, no inline script (the CSP holds).
    scripts = re.findall(r"<script[^>]*>", html)
    assert scripts and all(re.search(r'src="/static/[a-z]+\.js"', s) for s in scripts)


def test_timestamps_are_iso_utc(api):
    incident = make_incident()
    got = api.get(f"/incidents/{incident.id}").json
    assert got["created_at"].endswith("Z")
