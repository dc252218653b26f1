"""Regression tests for issue 13's hostile inputs (finding 5) and smaller fixes (finding 7):
no input reaches a 500, and what is refused names its field."""

from __future__ import annotations

import json

import pytest
from werkzeug.routing import IntegerConverter

from cmoc.extensions import db
from cmoc.input_guard import IdConverter
from cmoc.models import AuditEntry, Incident, Update, User
from cmoc.services.tokens import create_token
from cmoc.timeutil import utcnow
from tests.api.conftest import ApiClient, token_for
from tests.api.test_contract import DECLARE, error
from tests.factories import PASSWORD, login, make_incident, make_user


@pytest.fixture
def admin_client(app):
    client = app.test_client()
    login(client, make_user("ada", "admin"))
    return client


@pytest.fixture
def api(app):
    return ApiClient(app.test_client(), token_for("cmoc"))


@pytest.fixture
def viewer_api(app):
    return ApiClient(app.test_client(), token_for("viewer"))


def _count(model) -> int:
    return db.session.query(model).count()


# JSON depth -----------------------------------------------------------------------------------

@pytest.mark.parametrize("body", ["[" * 100_000 + "]" * 100_000,
                                  '{"a":' * 20_000 + "1" + "}" * 20_000])
def test_deeply_nested_json_is_a_400_not_a_recursion_error(api, body):
    response = api.client.post("/api/v1/incidents", data=body,
                               headers={"Authorization": f"Bearer {api.token}",
                                        "Content-Type": "application/json"})
    assert error(response, 400, "too_deep")["message"]
    assert _count(Incident) == 0


def test_moderately_nested_json_is_refused_before_the_schema(api):
    nested: object = "x"
    for _ in range(40):
        nested = {"k": nested}
    response = api.post("/incidents", json={**DECLARE, "title": nested})
    error(response, 400, "too_deep")


# Integers -------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["²", "١٢", "99999999999999999999", "5.0", "-3"])
def test_next_update_minutes_in_the_form_is_parsed_strictly(admin_client, value):
    incident = make_incident()
    response = admin_client.post(f"/incidents/{incident.id}/updates/new", data={
        "state": "investigating", "var_symptom": "errors", "next_update_minutes": value})
    assert response.status_code == 400, response.get_data(as_text=True)[-500:]
    assert "Next update must be in 1 to 1440 minutes" in response.get_data(as_text=True)
    assert _count(Update) == 0


@pytest.mark.parametrize("value", ["²", "٣"])
def test_preview_with_unicode_digits_names_the_field(admin_client, value):
    incident = make_incident()
    response = admin_client.post(f"/incidents/{incident.id}/preview", data={
        "state": "monitoring", "var_fix": "a fix", "var_monitor_minutes": value,
        "next_update_minutes": value})
    assert response.status_code == 200, response.get_data(as_text=True)[-500:]
    errors = response.json["errors"]
    assert "next_update_minutes" in errors and "var_monitor_minutes" in errors, errors


def test_monitor_minutes_with_unicode_digits_is_a_form_error(admin_client):
    incident = make_incident()
    response = admin_client.post(f"/incidents/{incident.id}/updates/new", data={
        "state": "monitoring", "var_fix": "a fix", "var_monitor_minutes": "²"})
    assert response.status_code == 400
    assert "whole number of minutes" in response.get_data(as_text=True)


@pytest.mark.parametrize("value", ["²", "1²", "99999999999999999999"])
def test_snooze_minutes_with_unicode_digits_is_refused(admin_client, value):
    incident = make_incident()
    due = incident.next_update_due_at
    response = admin_client.post(f"/incidents/{incident.id}/snooze", data={"minutes": value})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Incident, incident.id).next_update_due_at == due


# Ids ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/incidents/99999999999999999999", "/incidents/2147483648",
                                  "/incidents/9223372036854775808/live",
                                  "/incidents/2147483648/updates/1"])
def test_ids_outside_the_column_are_404(app, path):
    client = app.test_client()
    login(client, make_user("vera", "viewer"))
    assert client.get(path).status_code == 404


def test_api_ids_outside_the_column_are_404_in_the_error_shape(viewer_api):
    for incident_id in ("99999999999999999999", "2147483648"):
        error(viewer_api.get(f"/incidents/{incident_id}"), 404)


def test_unicode_digits_are_not_ids(app):
    client = app.test_client()
    user = make_user("vera", "viewer")
    login(client, user)
    incident = make_incident(user)
    assert incident.id == 1
    assert client.get("/incidents/١").status_code == 404


# Dates ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/reports/comms?until=9999-12-31",
                                  "/reports/comms.csv?until=9999-12-31",
                                  "/reports/comms?since=0001-01-01",
                                  "/admin/audit?until=9999-12-31",
                                  "/admin/audit.csv?since=0001-01-01&until=9999-12-31"])
def test_dates_outside_a_sane_range_are_400(admin_client, path):
    response = admin_client.get(path)
    assert response.status_code == 400, response.get_data(as_text=True)[-300:]
    field = "until" if "until" in path else "since"
    assert field in response.get_data(as_text=True)


def test_dates_in_range_still_work(admin_client):
    assert admin_client.get("/reports/comms?since=2026-01-01&until=2026-12-31").status_code == 200
    assert admin_client.get("/admin/audit?until=2026-12-31").status_code == 200


# Control characters ---------------------------------------------------------------------------

def test_unauthenticated_login_with_a_nul_is_a_clear_400(app):
    make_user("bob", "viewer")
    client = app.test_client()
    audit_rows = _count(AuditEntry)
    response = client.post("/login", data={"username": "bob\x00", "password": PASSWORD})
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert "username" in body and "control character" in body
    assert _count(AuditEntry) == audit_rows


def test_setup_with_control_characters_creates_nobody(app):
    response = app.test_client().post("/setup", data={
        "username": "root\x1b[2J", "password": PASSWORD, "confirm": PASSWORD})
    assert response.status_code == 400 and "username" in response.get_data(as_text=True)
    assert _count(User) == 0


@pytest.mark.parametrize("value", ["outage\x00", "out\x07age", "line\nbreak"])
def test_declare_form_refuses_control_characters_in_the_title(admin_client, value):
    response = admin_client.post("/incidents/new", data={
        "title": value, "severity": "S2", "status": "degraded_performance",
        "components": "API", "issue_url": "https://gitlab.com/x/-/issues/1"})
    assert response.status_code == 400
    assert "title" in response.get_data(as_text=True)
    assert _count(Incident) == 0


def test_multi_line_text_keeps_newlines_and_tabs(admin_client):
    incident = make_incident()
    response = admin_client.post(f"/incidents/{incident.id}/no-public-post",
                                 data={"reason": "internal only\n\tno customer impact\r\n"})
    assert response.status_code == 302


def test_nul_in_a_query_argument_is_refused(admin_client):
    response = admin_client.get("/admin/audit?actor=bob%00")
    assert response.status_code == 400 and "actor" in response.get_data(as_text=True)


def test_api_names_the_field_with_a_control_character(api):
    response = api.post("/incidents", json={**DECLARE, "title": "bad\x00title"})
    assert error(response, 422, "control_character")["fields"] == {
        "title": "Control characters are not allowed here."}
    incident = api.post("/incidents", json=DECLARE).json
    response = api.post(f"/incidents/{incident['id']}/updates", json={
        "state": "investigating", "variables": {"symptom": "a\x1bb"}})
    assert "variables.symptom" in error(response, 422, "control_character")["fields"]
    assert _count(Update) == 0


def test_api_keeps_newlines_in_texts(api):
    incident = api.post("/incidents", json=DECLARE).json
    response = api.post(f"/incidents/{incident['id']}/updates", json={
        "state": "investigating", "variables": {"symptom": "errors"},
        "texts": {"slack": "line one\nline two\twith a tab"}})
    assert response.status_code == 201, response.json
    assert response.json["texts"]["slack"] == "line one\nline two\twith a tab"


# Strict API types -----------------------------------------------------------------------------

@pytest.mark.parametrize("field,value", [("next_update_in_minutes", True),
                                         ("next_update_in_minutes", "5"),
                                         ("next_update_in_minutes", 5.0),
                                         ("publish", "true"), ("publish", 1),
                                         ("confirm_public", "yes")])
def test_api_types_are_strict(api, field, value):
    incident = api.post("/incidents", json=DECLARE).json
    response = api.post(f"/incidents/{incident['id']}/updates", json={
        "state": "investigating", "variables": {"symptom": "errors"}, field: value})
    assert field in error(response, 422, "validation_error")["fields"]
    assert _count(Update) == 0


# Item 7: headers and tokens in query strings --------------------------------------------------

def test_hsts_includes_subdomains_and_a_permissions_policy_is_sent(make_app):
    app = make_app(BASE_URL="https://cmoc.example.com", SANDBOX=True)
    with app.app_context():
        page = app.test_client().get("/login", base_url="https://cmoc.example.com")
        assert page.headers["Strict-Transport-Security"] == (
            "max-age=31536000; includeSubDomains")
        policy = page.headers["Permissions-Policy"]
        for feature in ("camera=()", "microphone=()", "geolocation=()", "payment=()"):
            assert feature in policy
        db.session.remove()


def test_permissions_policy_on_every_response(client):
    assert "camera=()" in client.get("/healthz").headers["Permissions-Policy"]


def test_tokens_in_a_query_string_are_refused(make_app):
    app = make_app(METRICS_TOKEN="metrics-secret-value")
    with app.app_context():
        make_user("carol", "cmoc")
        token = create_token(username="carol", name="t", now=utcnow())[1]
        client = app.test_client()
        for param in ("access_token", "token"):
            response = client.get(f"/api/v1/incidents?{param}={token}")
            assert response.status_code == 401 and token not in response.get_data(as_text=True)
        assert client.get("/metrics?token=metrics-secret-value").status_code == 403
        api = ApiClient(client, token)
        assert api.get("/incidents").status_code == 200  # the header still works
        db.session.remove()


def test_viewer_token_reaches_no_500_with_hostile_ids(app):
    api = ApiClient(app.test_client(), token_for("viewer"))
    for path in ("/incidents/00000000000000000000000000001", "/incidents/1e9",
                 "/incidents/-1", "/incidents/１"):
        response = api.get(path)
        assert response.status_code == 404, (path, response.status_code)
        assert json.loads(response.get_data())["error"]["code"] == "not_found"
    assert error(api.get("/incidents/1%00"), 400, "control_character")["fields"] == {
        "path": "Control characters are not allowed here."}


def test_every_id_in_a_route_goes_through_the_bounded_converter(app):
    ids = [(rule.rule, converter) for rule in app.url_map.iter_rules()
           for name, converter in rule._converters.items()
           if isinstance(converter, IntegerConverter)]
    assert len(ids) >= 20
    for rule, converter in ids:
        assert isinstance(converter, IdConverter) and converter.max == 2**31 - 1, rule
