"""GitLab fixtures: an app wired to the fakes (GitLab included) with a webhook secret, and the
same app served on loopback so the fake GitLab's webhooks reach it over HTTP."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import pytest
from werkzeug.serving import make_server

from cmoc.extensions import db

SECRET = "hook-secret-1"


def wait_for(predicate, timeout: float = 60.0, step: float = 0.1):
    """Polls until `predicate()` is truthy (generous: the machine is shared and loaded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


@pytest.fixture
def gitlab_app(make_app, fakes):
    app = make_app(**fakes.env(), GITLAB_WEBHOOK_SECRET=SECRET,
                   SLACK_REMINDER_CHANNEL="#cmoc-reminders", PUBLISH_BACKOFF_SECONDS=0,
                   PUBLISH_WAIT_SECONDS=30, HTTP_READ_TIMEOUT=1.0,
                   BASE_URL="http://cmoc.test")
    with app.app_context():
        yield app
        db.session.remove()


@contextmanager
def serve(app):
    """`app` on loopback (threaded), for the fake GitLab's webhooks; yields its URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture
def served(gitlab_app, fakes):
    """The app on loopback; the fake GitLab's incident project sends its webhooks there."""
    with serve(gitlab_app) as url:
        fakes.gitlab_api.hooks.add(gitlab_app.config["GITLAB_INCIDENT_PROJECT"],
                                   url=f"{url}/hooks/gitlab", token=SECRET)
        yield url
        fakes.gitlab_api.hooks.wait()
