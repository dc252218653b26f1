"""SIGKILL of the web processes mid-publish: after restart every channel has exactly one post."""

from __future__ import annotations

import subprocess
import time

from sqlalchemy import select

from cmoc.extensions import db
from cmoc.models import Delivery
from cmoc.services.components import refresh_components
from cmoc.services.delivering import channels_for
from cmoc.timeutil import utcnow
from tests.factories import make_incident, make_user
from tests.reliability.conftest import CMOC, ROOT


def states() -> dict[str, str]:
    db.session.expire_all()
    rows = {d.channel: d.status for d in db.session.scalars(select(Delivery))}
    db.session.rollback()
    return rows


def test_killed_mid_publish_completes_exactly_once(live_app, fakes, start_server, server_env):
    make_user("carol", "cmoc")
    incident = make_incident(components=["API"])
    refresh_components(statusio=channels_for(live_app)["statusio"], now=utcnow())
    db.session.commit()
    # A short lease: after the kill, the clock may take the deliveries over within seconds.
    server = start_server(CMOC_PUBLISH_WAIT_SECONDS="0.1", CMOC_PUBLISH_LEASE_SECONDS="3")
    session, token = server.session("carol")
    # status.io answers at once; X and Slack are slow, so the kill lands while they are open.
    fakes.latency.update({"twitter": 4.0, "slack": 4.0})
    response = session.post(f"{server.url}/incidents/{incident.id}/updates/new", timeout=30,
                            allow_redirects=False, data={
                                "csrf_token": token, "action": "publish",
                                "state": "investigating", "template": "investigating",
                                "var_symptom": "errors", "channels": ["statusio", "twitter",
                                                                      "slack"],
                                "channels_shown": "1"})
    assert response.status_code == 302
    deadline = time.monotonic() + 20
    while states().get("statusio") != "sent" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert states() == {"statusio": "sent", "twitter": "sending", "slack": "sending"}
    server.kill()
    time.sleep(4.5)  # the fakes finish what they were asked: the tweet and message exist now
    assert len(fakes.tweets) == 1 and len(fakes.slack_messages) == 1
    assert states() == {"statusio": "sent", "twitter": "sending", "slack": "sending"}

    # After the restart, the clock's job picks the stale deliveries up (once, by looking).
    env = {**server_env, "CMOC_PUBLISH_LEASE_SECONDS": "3"}
    for _ in range(2):   # a second pass (or a second clock) changes nothing
        done = subprocess.run([str(CMOC), "resume-deliveries"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
    assert states() == {"statusio": "sent", "twitter": "sent", "slack": "sent"}
    assert len(fakes.incidents) == 1 and len(fakes.tweets) == 1
    assert len(fakes.slack_messages) == 1


def test_twenty_incidents_published_at_once_all_deliver(live_app, fakes, start_server):
    import threading

    make_user("carol", "cmoc")
    ids = [make_incident(title=f"Concurrent {i}", components=["API"]).id for i in range(20)]
    refresh_components(statusio=channels_for(live_app)["statusio"], now=utcnow())
    db.session.commit()
    server = start_server(CMOC_PUBLISH_WAIT_SECONDS="10")
    sessions = [server.session("carol") for _ in ids]
    barrier = threading.Barrier(len(ids))
    codes = []

    def publish(incident_id, session, token):
        barrier.wait(timeout=120)
        # A new connection: gunicorn closes a kept-alive one after 2 s idle, and a POST on a
        # connection closed under it fails (this is about the test's client, not cmoc).
        session.close()
        codes.append(session.post(
            f"{server.url}/incidents/{incident_id}/updates/new", timeout=60,
            allow_redirects=False, data={
                "csrf_token": token, "action": "publish", "state": "investigating",
                "template": "investigating", "var_symptom": f"errors on {incident_id}",
                "channels": ["statusio", "twitter", "slack"], "channels_shown": "1"}
        ).status_code)

    threads = [threading.Thread(target=publish, args=(i, *s)) for i, s in zip(ids, sessions,
                                                                               strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert codes == [302] * 20
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and list(states().values()).count("sent") < 60:
        time.sleep(0.2)
    db.session.expire_all()
    rows = db.session.scalars(select(Delivery)).all()
    assert len(rows) == 60 and all(d.status == "sent" for d in rows)
    assert len(fakes.incidents) == 20 and len(fakes.tweets) == 20
    assert len(fakes.slack_messages) == 20
