"""Every channel x every fault: the others deliver, the failure is recorded with the remote's
error, it is retried only when that cannot double-post, and a manual retry completes it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from cmoc.extensions import db
from cmoc.models import Delivery, Update
from cmoc.services.components import refresh_components
from cmoc.services.delivering import channels_for
from cmoc.timeutil import utcnow
from tests.factories import fake_issue, issue_notes, login, make_incident, make_user

PATHS = {"statusio": "incident/create", "twitter": "2/tweets", "slack": "chat.postMessage",
         "gitlab": "notes"}
# The requests that post (the GitLab look-up reads the same path with GET).
METHODS = {"gitlab": "POST"}
URL_KEYS = {"statusio": "STATUSIO_API_URL", "twitter": "TWITTER_API_URL",
            "slack": "SLACK_API_URL", "gitlab": "GITLAB_URL"}
ERROR_BODY = {
    "statusio": {"status": {"error": "yes", "message": "boom"}},
    "twitter": {"title": "Problem", "detail": "boom", "status": 500},
    "slack": {"ok": False, "error": "internal_error"},
    "gitlab": {"message": "500 Internal Server Error: boom"},
}
# fault -> (fault kwargs, retried automatically?, final status after the publish)
FAULTS = {
    "timeout": (dict(delay=2.0, status=200), True, "sent"),
    # The remote carried the request out but its answer never arrived: looked up, not re-sent.
    "timeout_after_posting": (dict(delay=2.0, status=200, apply=True), True, "sent"),
    "500": (dict(status=500), True, "sent"),
    "503": (dict(status=503), True, "sent"),
    "429": (dict(status=429), True, "sent"),
    "401": (dict(status=401), False, "failed"),
    "malformed_json": (dict(status=200, body="<html>not json</html>"), True, "sent"),
    "connection_refused": (None, True, "sent"),
    "statusio_error_yes": (dict(status=200), False, "failed"),
}
CASES = [(c, f) for c in PATHS for f in FAULTS if f != "statusio_error_yes" or c == "statusio"]


@pytest.fixture
def matrix_app(make_app, fakes):
    app = make_app(**fakes.env(), PUBLISH_BACKOFF_SECONDS=0, PUBLISH_WAIT_SECONDS=30,
                   HTTP_READ_TIMEOUT=0.5, PUBLISH_MAX_INLINE_WAIT=5)
    with app.app_context():
        refresh_components(statusio=channels_for(app)["statusio"], now=utcnow())
        yield app
        db.session.remove()


def inject(fakes, app, channel: str, fault: str) -> None:
    spec, _, _ = FAULTS[fault]
    if fault == "connection_refused":
        # Nothing listens on port 9 of loopback: the first attempt is refused, then the URL
        # is pointed back (as when a service comes back).
        key = URL_KEYS[channel]
        fakes.refused = (key, app.config[key])
        app.config[key] = "http://127.0.0.1:9/x"
        return
    body = spec.get("body", ERROR_BODY[channel])
    headers = {}
    if fault == "429":
        headers = ({"x-rate-limit-reset": "0"} if channel == "twitter" else {"Retry-After": "0"})
        body = ({"ok": False, "error": "ratelimited"} if channel == "slack" else body)
    if fault == "401" and channel == "slack":
        body = {"ok": False, "error": "invalid_auth"}
    if fault == "401" and channel == "gitlab":
        body = {"message": "401 Unauthorized"}
    if fault == "malformed_json" and channel == "twitter":
        spec = dict(status=201, body="not json")
        body = spec["body"]
    fakes.fail(channel, PATHS[channel], status=spec["status"], body=body, headers=headers,
               delay=spec.get("delay", 0.0), apply=spec.get("apply", False), times=1,
               method=METHODS.get(channel))


@pytest.mark.parametrize(("channel", "fault"), CASES)
def test_fault(matrix_app, fakes, channel, fault):
    app = matrix_app
    user = make_user("carol", "cmoc")
    issue_url = fake_issue(fakes)
    if channel == "gitlab" and fault == "connection_refused":
        # The short form (project#iid) names the issue whatever GITLAB_URL is moved to.
        project, iid = issue_url.split("/gitlab/", 1)[1].split("/-/issues/")
        issue_url = f"{project}#{iid}"
    incident = make_incident(components=["API"], issue_url=issue_url)
    client = app.test_client()
    login(client, user)
    inject(fakes, app, channel, fault)
    client.post(f"/incidents/{incident.id}/updates/new", data={
        "action": "publish", "state": "investigating", "template": "investigating",
        "var_symptom": "errors", "channels": list(PATHS), "channels_shown": "1"})
    db.session.expire_all()
    rows = {d.channel: d for d in db.session.scalars(select(Delivery))}
    others = [c for c in PATHS if c != channel]
    assert all(rows[c].status == "sent" for c in others), {c: rows[c].error for c in others}
    failed = rows[channel]
    _, automatic, expected = FAULTS[fault]
    if fault == "connection_refused":
        key, url = fakes.refused
        assert failed.status == "failed" and "could not connect" in failed.error
        # Safe to retry (nothing was sent): retried, then left to the clock. The service is
        # back for the manual retry below.
        assert failed.retryable and failed.attempts == 3
        app.config[key] = url
    elif fault == "timeout_after_posting":
        # found by looking (status.io, Slack) or by X's duplicate refusal: never posted twice
        assert failed.status == "sent", failed.error
        if channel != "twitter":  # X only says "duplicate", without the earlier tweet's id
            assert failed.external_id is not None
    elif expected == "sent":
        assert failed.status == "sent" and failed.attempts >= 2, failed.error
    else:
        assert failed.status == "failed" and not failed.retryable and failed.attempts == 1
        assert any(word in failed.error for word in ("boom", "401", "invalid_auth"))
    # Whatever happened, a manual retry completes it and touches nothing that was sent.
    before = {c: len(fakes.calls(c, PATHS[c], METHODS.get(c))) for c in PATHS}
    update = db.session.scalar(select(Update))
    if rows[channel].status == "failed":
        client.post(f"/incidents/{incident.id}/updates/{update.id}/retry",
                    data={"channels": list(PATHS)})
    db.session.expire_all()
    rows = {d.channel: d for d in db.session.scalars(select(Delivery))}
    assert all(d.status == "sent" for d in rows.values()), {c: d.error for c, d in rows.items()}
    for c in others:
        assert len(fakes.calls(c, PATHS[c], METHODS.get(c))) == before[c]
    # Exactly one post on every channel.
    assert len(fakes.incidents) == 1 and len(fakes.tweets) == 1
    assert len(fakes.slack_messages) == 1 and len(issue_notes(fakes)) == 1
