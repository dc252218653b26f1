"""Crash recovery: gunicorn is SIGKILLed mid-publish; how long until the clock has resumed and
settled the interrupted deliveries, and is every post still made exactly once?

    .venv/bin/python -m bench.crash [--baseline]

The fakes (their own process) answer status.io at once and X and Slack after 4 s, so the kill
lands while two deliveries are in flight. A `cmoc clock` process runs beside gunicorn. Measured:
from the kill to every delivery settled. `--baseline` also runs the settings that stand for the
old recovery (a 90 s bound before a delivery counts as dead, a pass every 15 s) in the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from flask_migrate import upgrade
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from bench._fakes import free_port, wait_until_up
from cmoc import ROOT, create_app
from cmoc.extensions import db
from cmoc.fake_apis import fake_env
from cmoc.models import Delivery, Incident, User
from cmoc.services.components import refresh_components
from cmoc.services.delivering import channels_for
from cmoc.timeutil import utcnow

BIN = Path(sys.executable).parent


def start(command: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def statuses(app) -> dict[str, str]:
    with app.app_context():
        rows = {d.channel: d.status for d in db.session.scalars(select(Delivery))}
        db.session.remove()
    return rows


def run(lease: int, resume: int) -> dict[str, float]:
    fakes_port = free_port()
    fakes = start([sys.executable, "-c",
                   "from cmoc.fake_apis import FakeApis; "
                   f"FakeApis(port={fakes_port}, latency={{'twitter': 4.0, 'slack': 4.0}}, "
                   "sandbox=True).serve_forever()"], dict(os.environ))
    fakes_url = f"http://127.0.0.1:{fakes_port}"
    with tempfile.TemporaryDirectory() as workdir:
        env = {**os.environ, **fake_env(fakes_url), "SECRET_KEY": "bench",
               "DATABASE_URL": f"sqlite:///{workdir}/crash.db", "CMOC_INSTANCE_PATH": workdir,
               "CMOC_PUBLISH_LEASE_SECONDS": str(lease),
               "CMOC_PUBLISH_RESUME_SECONDS": str(resume),
               "CMOC_PUBLISH_WAIT_SECONDS": "0.1", "CMOC_HTTP_READ_TIMEOUT": "30"}
        app = create_app({"SECRET_KEY": "bench", "DATABASE_URL": env["DATABASE_URL"],
                          "INSTANCE_PATH": workdir, **fake_env(fakes_url)})
        for _ in range(100):
            try:
                requests.get(fakes_url + "/_sandbox/state", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.1)
        with app.app_context():
            upgrade()
            db.session.add(User(username="bench", role="cmoc",
                                password_hash=generate_password_hash("bench-password")))
            db.session.add(Incident(title="Crash", severity="S1", status="service_disruption",
                                    components=["API"], declared_by_id=1, created_at=utcnow(),
                                    updated_at=utcnow(), next_update_due_at=utcnow()))
            db.session.commit()
            refresh_components(statusio=channels_for(app)["statusio"], now=utcnow())
            db.session.remove()
        port = free_port()
        web = start([str(BIN / "gunicorn"), "--config", "config/gunicorn.conf.py",
                     "--access-logfile", "/dev/null", "cmoc:create_app()"],
                    {**env, "PORT": str(port), "HOST": "127.0.0.1"})
        clock = start([str(BIN / "cmoc"), "clock"], env)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(url)
            session = requests.Session()
            token = re.search(r'name="csrf_token" value="([^"]+)"',
                              session.get(url + "/login", timeout=30).text).group(1)
            session.post(url + "/login", timeout=30, data={
                "username": "bench", "password": "bench-password", "csrf_token": token})
            token = re.search(r'name="csrf_token" value="([^"]+)"',
                              session.get(url + "/", timeout=30).text).group(1)
            session.post(f"{url}/incidents/1/updates/new", timeout=60, data={
                "csrf_token": token, "action": "publish", "state": "investigating",
                "template": "investigating", "var_symptom": "errors",
                "channels": ["statusio", "twitter", "slack"], "channels_shown": "1"})
            deadline = time.monotonic() + 60
            while statuses(app).get("statusio") != "sent" and time.monotonic() < deadline:
                time.sleep(0.05)
            in_flight = statuses(app)
            os.killpg(web.pid, signal.SIGKILL)
            killed = time.monotonic()
            while time.monotonic() < killed + 600:
                if all(s in ("sent", "failed", "skipped") for s in statuses(app).values()):
                    break
                time.sleep(0.1)
            recovered = time.monotonic() - killed
            state = requests.get(fakes_url + "/_sandbox/state", timeout=10).json()
            return {"recovery": recovered, "in_flight": in_flight, "final": statuses(app),
                    "posts": (len(state["incidents"]), len(state["tweets"]),
                              len(state["slack_messages"]))}
        finally:
            for process in (web, clock, fakes):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", action="store_true",
                        help="also run with a 90 s bound and a 15 s pass (the old recovery)")
    args = parser.parse_args()
    cases = [("lease 8 s, pass 3 s (now)", 8, 3)]
    if args.baseline:
        cases.append(("90 s bound, pass 15 s (before)", 90, 15))
    print("crash recovery: SIGKILL of gunicorn while X and Slack are in flight (4 s answers)")
    print(f"{'settings':32} {'kill -> settled':>15} {'target':>7} {'posts (page, X, Slack)':>24}")
    for name, lease, resume in cases:
        r = run(lease, resume)
        assert r["posts"] == (1, 1, 1), r
        print(f"{name:32} {r['recovery']:>14.1f}s {'20 s':>7} {str(r['posts']):>24}   "
              f"in flight at the kill: {r['in_flight']}", flush=True)


if __name__ == "__main__":
    main()
