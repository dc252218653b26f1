"""A thousand watchers: signed-in viewers keeping the dashboard or an incident page live while
a CMOC publishes, on gunicorn (config/gunicorn.conf.py) against fakes in their own process.

    .venv/bin/python -m bench.watchers [--watchers 1000] [--seconds 30]

Side by side in one run (bench/_watchers_client.py simulates the watchers, one keep-alive
connection each, arriving over the first 5 s; figures after a 10 s warm-up):
- reload: every watcher reloads its whole page every 5 s (the pages before live polling);
- live: every watcher polls its page's version every 5 s with If-None-Match (304 while
  nothing changed), as live.js does, and reloads the page after each change.
Half watch the dashboard, half the incident being published. Meanwhile a CMOC publishes an
update to that incident every few seconds; click-to-settled is the publish request (the page
waits for the deliveries) against fakes answering in 0.3 / 0.5 / 0.8 s. CPU per watcher is the
gunicorn processes' CPU time over the run divided by watchers and seconds.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from flask_migrate import upgrade
from werkzeug.security import generate_password_hash

from bench._fakes import fake_apis_process, free_port, wait_until_up
from bench._watchers_client import USER_AGENT, watch
from cmoc import ROOT, create_app
from cmoc.extensions import db
from cmoc.fake_apis import fake_env
from cmoc.models import Incident, User
from cmoc.services.components import refresh_components
from cmoc.services.delivering import channels_for
from cmoc.timeutil import utcnow

GUNICORN = str(Path(sys.executable).parent / "gunicorn")
LATENCY = {"statusio": 0.3, "twitter": 0.5, "slack": 0.8}
def gunicorn_cpu(pid: int) -> float:
    """CPU seconds of the gunicorn master and its workers (from /proc)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if entry.name == str(pid) or stat[1] == str(pid):   # the master or its child
            total += (int(stat[11]) + int(stat[12])) / tick
    return total


def sign_in(url: str) -> tuple[requests.Session, str]:
    session = requests.Session()
    # A session is bound to its browser: the watchers present the same User-Agent.
    session.headers["User-Agent"] = USER_AGENT
    page = session.get(url + "/login", timeout=30).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    session.post(url + "/login", timeout=30, data={"username": "bench", "csrf_token": token,
                                                   "password": "bench-password"})
    page = session.get(url + "/", timeout=30).text
    return session, re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def cmoc_publishing(url: str, stop: threading.Event, clicks: list[float]) -> None:
    """A CMOC publishing to incident 1 every few seconds; records click-to-settled times."""
    session, token = sign_in(url)
    n = 0
    while not stop.is_set():
        n += 1
        started = time.perf_counter()
        response = session.post(f"{url}/incidents/1/updates/new", timeout=60,
                                allow_redirects=False, data={
                                    "csrf_token": token, "action": "publish",
                                    "state": "investigating", "template": "investigating",
                                    "var_symptom": f"errors on the API, round {n}",
                                    "channels": ["statusio", "twitter", "slack"],
                                    "channels_shown": "1",
                                    "idempotency_key": f"b-{n}-{time.time()}"})
        if response.status_code == 302:
            clicks.append(time.perf_counter() - started)
        stop.wait(4.0)


WARM_UP = 10.0   # seconds: watchers arrive over the first 5; figures are kept after this


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000


def run_mode(url: str, pid: int, cookie: str, live: bool, watchers: int,
             seconds: int) -> dict:
    stop, clicks = threading.Event(), []
    publisher = threading.Thread(target=cmoc_publishing, args=(url, stop, clicks))
    publisher.start()
    cpu0, wall0 = gunicorn_cpu(pid), time.perf_counter()
    tally = watch(url, cookie=cookie, live=live, seconds=seconds, warm_up=WARM_UP, watchers={
        ("dashboard", "/", "/live/dashboard"): watchers // 2,
        ("incident", "/incidents/1", "/incidents/1/live"): watchers - watchers // 2})
    cpu, wall = gunicorn_cpu(pid) - cpu0, time.perf_counter() - wall0
    stop.set()
    publisher.join(timeout=120)
    every = [v for values in tally.latencies.values() for v in values]
    return {"kinds": {kind: {"n": len(v), "rps": len(v) / seconds, "p50": pct(v, 0.5),
                             "p99": pct(v, 0.99)} for kind, v in sorted(tally.latencies.items())},
            "all": {"n": len(every), "rps": len(every) / seconds, "p50": pct(every, 0.5),
                    "p99": pct(every, 0.99)},
            "errors": tally.errors, "bad": sum(n for s, n in tally.statuses.items()
                                               if s not in (200, 304)),
            "clicks": len(clicks), "click_p50": statistics.median(clicks) if clicks
            else float("nan"), "cpu_share": cpu / wall,
            "cpu_ms_per_watcher_s": cpu * 1000 / (watchers * wall)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watchers", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=30)
    args = parser.parse_args()
    with fake_apis_process(LATENCY) as fakes_url, tempfile.TemporaryDirectory() as workdir:
        env = {**os.environ, **fake_env(fakes_url), "SECRET_KEY": "bench",
               "DATABASE_URL": f"sqlite:///{workdir}/watchers.db", "CMOC_INSTANCE_PATH": workdir,
               "CMOC_PUBLISH_WAIT_SECONDS": "30", "CMOC_LOGIN_IP_LIMIT": "100000"}
        app = create_app({"SECRET_KEY": "bench", "DATABASE_URL": env["DATABASE_URL"],
                          "INSTANCE_PATH": workdir, **fake_env(fakes_url)})
        with app.app_context():
            upgrade()
            db.session.add(User(username="bench", role="cmoc",
                                password_hash=generate_password_hash("bench-password")))
            db.session.commit()
            for i in range(20):  # a busy day: twenty active incidents on the dashboard
                db.session.add(Incident(
                    title=f"Incident {i}", severity=f"S{1 + i % 4}", status="service_disruption",
                    components=["API", "Website"], issue_url="https://gitlab.com/x/-/issues/1",
                    declared_by_id=1, created_at=utcnow(), updated_at=utcnow(),
                    next_update_due_at=utcnow()))
            db.session.commit()
            refresh_components(statusio=channels_for(app)["statusio"], now=utcnow())
            db.engine.dispose()
        port = free_port()
        gunicorn = subprocess.Popen(
            [GUNICORN, "--config", "config/gunicorn.conf.py", "--access-logfile", "/dev/null",
             "--error-logfile", "/dev/null", "--keep-alive", "10", "cmoc:create_app()"],
            cwd=ROOT, start_new_session=True, env={**env, "PORT": str(port), "HOST": "127.0.0.1"})
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(url)
            session, _ = sign_in(url)
            cookie = "; ".join(f"{k}={v}" for k, v in session.cookies.items())
            print(f"{args.watchers} watchers (half dashboard, half incident page), a request "
                  f"every 5 s each, {args.seconds} s per mode, a CMOC publishing meanwhile; "
                  f"fakes {LATENCY} s; gunicorn 2 workers x 4 threads on {os.cpu_count()} cores")
            print(f"{'mode':7} {'requests':18} {'req/s':>6} {'p50 ms':>7} {'p99 ms':>8}")
            p99 = {}
            for live in (False, True):
                mode = "live" if live else "reload"
                r = run_mode(url, gunicorn.pid, cookie, live, args.watchers, args.seconds)
                p99[mode] = r["all"]["p99"]
                for kind, m in {**r["kinds"], "all": r["all"]}.items():
                    print(f"{mode:7} {kind:18} {m['rps']:>6.0f} {m['p50']:>7.1f} "
                          f"{m['p99']:>8.1f}")
                assert not r["bad"], f"answers other than 200/304: {r['bad']}"
                print(f"{mode:7} not 200/304: {r['bad']}, connection errors {r['errors']}; "
                      f"{r['clicks']} publishes, click-to-settled p50 {r['click_p50']:.2f} s = "
                      f"{r['click_p50'] / max(LATENCY.values()):.2f} x the slowest channel; "
                      f"gunicorn CPU {r['cpu_share'] * 100:.0f}% of a core, "
                      f"{r['cpu_ms_per_watcher_s']:.3f} ms per watcher-second", flush=True)
            print(f"p99 live / reload = {p99['live'] / p99['reload']:.2f}; target p99 <= 100 ms: "
                  f"{'met' if p99['live'] <= 100 else 'NOT met'} "
                  f"({p99['live'] / 100:.1f} x the target)")
        finally:
            os.killpg(gunicorn.pid, 15)
            gunicorn.wait(timeout=30)


if __name__ == "__main__":
    main()
