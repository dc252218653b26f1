"""Publish fan-out: one click to all three deliveries settled, against fakes that answer in
300 ms (status.io), 500 ms (X) and 800 ms (Slack); compared in the same run with sending the
same three deliveries one after another.

    .venv/bin/python -m bench.fanout [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from flask_migrate import upgrade
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from bench._fakes import fake_apis_process
from cmoc import create_app
from cmoc.enums import CHANNELS
from cmoc.extensions import db
from cmoc.fake_apis import fake_env
from cmoc.models import Delivery, Incident, Update, User
from cmoc.services.components import refresh_components
from cmoc.services.delivering import RetryPolicy, channels_for, run_lane, settle_updates
from cmoc.services.publishing import start_publish
from cmoc.timeutil import utcnow

LATENCY = {"statusio": 0.3, "twitter": 0.5, "slack": 0.8}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with fake_apis_process(LATENCY) as url, tempfile.TemporaryDirectory() as workdir:
        app = create_app({"SECRET_KEY": "bench", "DATABASE_URL": f"sqlite:///{workdir}/b.db",
                          "INSTANCE_PATH": workdir, "WTF_CSRF_ENABLED": False,
                          "PUBLISH_WAIT_SECONDS": 30, **fake_env(url)})
        with app.app_context():
            upgrade()
            user = User(username="bench", role="cmoc",
                        password_hash=generate_password_hash("bench-password"))
            db.session.add(user)
            db.session.commit()
            refresh_components(statusio=channels_for(app)["statusio"], now=utcnow())
            client = app.test_client()
            signed_in = client.post("/login", data={"username": "bench",
                                                    "password": "bench-password"})
            assert signed_in.status_code == 302
            concurrent, sequential = [], []
            for round_ in range(args.rounds):
                concurrent.append(click_publish(app, client, round_))
                sequential.append(one_by_one(app, user, round_))
    slowest, total = max(LATENCY.values()), sum(LATENCY.values())
    c, s = statistics.median(concurrent), statistics.median(sequential)
    print(f"publish fan-out, fakes at {LATENCY} s, median of {args.rounds} rounds")
    print(f"  one click, channels concurrent : {c:.3f} s  = {c / slowest:.2f} x slowest "
          f"channel ({slowest} s), {c / total:.2f} x sequential sum ({total} s)")
    print(f"  same work, channels one by one : {s:.3f} s  = {s / slowest:.2f} x slowest")
    print(f"  speed-up from concurrency      : {s / c:.2f} x")


def _incident(user: User, n: int) -> Incident:
    incident = Incident(title=f"Bench {n}", severity="S1", status="service_disruption",
                        components=["API"], issue_url="https://gitlab.com/x/-/issues/1",
                        declared_by_id=user.id, created_at=utcnow(), updated_at=utcnow())
    db.session.add(incident)
    db.session.commit()
    return incident


def click_publish(app, client, n: int) -> float:
    """The web request a CMOC's click sends; it returns once every delivery has settled."""
    incident = _incident(db.session.get(User, 1), n)
    started = time.perf_counter()
    response = client.post(f"/incidents/{incident.id}/updates/new", data={
        "action": "publish", "state": "investigating", "template": "investigating",
        "var_symptom": f"errors in round {n}", "channels": list(CHANNELS),
        "channels_shown": "1"})
    elapsed = time.perf_counter() - started
    assert response.status_code == 302
    db.session.expire_all()
    rows = db.session.scalars(select(Delivery).join(Update, Update.id == Delivery.update_id)
                              .where(Update.incident_id == incident.id)).all()
    assert sorted(d.status for d in rows) == ["sent"] * 3, [d.error for d in rows]
    return elapsed


def one_by_one(app, user: User, n: int) -> float:
    """The same publish with the three deliveries sent sequentially, for comparison."""
    incident = _incident(user, 1000 + n)
    update = Update(incident_id=incident.id, author_id=user.id, state="investigating",
                    status="service_disruption", template="investigating", created_at=utcnow(),
                    text_statusio=f"Sequential {n}", text_twitter=f"Sequential tweet {n}",
                    text_slack=f"Sequential {n}")
    db.session.add(update)
    db.session.commit()
    started = time.perf_counter()
    start_publish(update=update, channels=set(CHANNELS), confirm_public=False, actor=user,
                  cadence=app.config["CADENCE_MATRIX"], now=utcnow())
    channels = channels_for(app)
    policy = RetryPolicy.from_config(app.config)
    for name in CHANNELS:
        run_lane(incident_id=incident.id, channel=channels[name], policy=policy)
    settle_updates(incident.id)
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
