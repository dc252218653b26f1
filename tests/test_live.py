"""Live pages poll a version: 304 while nothing changed, a new version when the page would."""

from __future__ import annotations

from datetime import timedelta

from cmoc.extensions import db
from cmoc.services.promises import snooze
from cmoc.timeutil import utcnow
from tests.factories import login, make_incident, make_user, publish


def etag(response) -> str:
    return response.headers["ETag"]


def test_dashboard_version_answers_304_until_something_changes(live_app, live_client, fakes,
                                                                cmoc_user):
    first = live_client.get("/live/dashboard")
    assert first.status_code == 200 and first.json["version"]
    same = live_client.get("/live/dashboard", headers={"If-None-Match": etag(first)})
    assert same.status_code == 304 and same.data == b"" and etag(same) == etag(first)
    incident = make_incident(components=["API"])           # a new incident
    changed = live_client.get("/live/dashboard", headers={"If-None-Match": etag(first)})
    assert changed.status_code == 200
    after_new = etag(changed)
    snooze(incident=incident, minutes=5, actor=cmoc_user, now=utcnow())   # a snooze
    assert live_client.get("/live/dashboard",
                           headers={"If-None-Match": after_new}).status_code == 200
    page = live_client.get("/").get_data(as_text=True)
    assert f'data-live-version="{live_client.get("/live/dashboard").json["version"]}"' in page


def test_incident_version_follows_publishes_and_deliveries(live_app, live_client, fakes):
    incident = make_incident(components=["API"])
    before = live_client.get(f"/incidents/{incident.id}/live")
    assert before.status_code == 200
    assert live_client.get(f"/incidents/{incident.id}/live", headers={
        "If-None-Match": etag(before)}).status_code == 304
    publish(live_client, incident, symptom="errors", key="1")
    after = live_client.get(f"/incidents/{incident.id}/live", headers={
        "If-None-Match": etag(before)})
    assert after.status_code == 200 and etag(after) != etag(before)
    page = live_client.get(f"/incidents/{incident.id}").get_data(as_text=True)
    assert f'data-live-version="{after.json["version"]}"' in page
    assert live_client.get("/incidents/999999/live").status_code == 404


def test_live_endpoints_need_a_signed_in_user(make_app):
    app = make_app()
    with app.app_context():
        client = app.test_client()
        assert client.get("/live/dashboard").status_code == 302
        viewer = make_user("viewer", "viewer")
        login(client, viewer)
        assert client.get("/live/dashboard").status_code == 200
        incident = make_incident(next_update_due_at=utcnow() + timedelta(minutes=5))
        assert client.get(f"/incidents/{incident.id}/live").status_code == 200
        db.session.remove()
