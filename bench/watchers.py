"""A thousand watchers: signed-in viewers keeping the dashboard or an incident page live while
a CMOC publishes, on gunicorn (config/gunicorn.conf.py) against fakes in their own process.

    .venv/bin/python -m bench.watchers [--watchers 1000] [--seconds 30]

Side by side in one run, each watcher being one connection of wrk that waits 5 s between
requests (what the page's own JavaScript does):
- reload: every watcher fetches its whole page every 5 s (the pages before live polling);
- live: every watcher polls its page's version every 5 s with If-None-Match (304 while
  nothing changed), as live.js does.
Half watch the dashboard, half the incident being published. Meanwhile a CMOC publishes an
update to that incident every few seconds; click-to-settled is the publish request (the page
waits for the deliveries) against fakes answering in 0.3 / 0.5 / 0.8 s. CPU per watcher is the
gunicorn processes' CPU time over the run divided by watchers and seconds.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
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
from cmoc import ROOT, create_app
from cmoc.extensions import db
from cmoc.fake_apis import fake_env
from cmoc.models import Incident, User
from cmoc.services.components import refresh_components
from cmoc.services.delivering import channels_for
from cmoc.timeutil import utcnow

GUNICORN = str(Path(sys.executable).parent / "gunicorn")
LATENCY = {"statusio": 0.3, "twitter": 0.5, "slack": 0.8}
# One wrk connection = one watcher on one page, a request every 5 s; live watchers send back
# the ETag they last got (wrk runs one script per page, so one ETag per script).
WATCHER_LUA = """
local etag = nil
local live = {live}
request = function()
  local headers = {{Cookie = "{cookie}"}}
  if live and etag then headers["If-None-Match"] = etag end
  return wrk.format("GET", "{path}", headers)
end
response = function(status, headers, body)
  if headers["ETag"] then etag = headers["ETag"] end
end
delay = function() return {delay_ms} end
"""


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


def wrk(url: str, script: Path, watchers: int, seconds: int) -> subprocess.Popen:
    def more_files():
        resource.setrlimit(resource.RLIMIT_NOFILE, (8192, 8192))

    return subprocess.Popen(["wrk", "-t1", f"-c{watchers}", f"-d{seconds}s", "--latency",
                             "--timeout", "10s", "-s", str(script), url],
                            stdout=subprocess.PIPE, text=True, preexec_fn=more_files)


def wrk_result(process: subprocess.Popen) -> dict[str, float]:
    out, _ = process.communicate(timeout=600)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def pct(p):
        value, unit = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "p50": pct(50), "p99": pct(99),
            "non2xx": int(errors.group(1)) if errors else 0,
            "socket_errors": sockets.group(1) if sockets else ""}


def sign_in(url: str) -> tuple[requests.Session, str]:
    session = requests.Session()
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


def run_mode(url: str, pid: int, workdir: str, cookie: str, live: bool, watchers: int,
             seconds: int) -> dict[str, dict[str, float]]:
    pages = ({"dashboard": "/live/dashboard", "incident": "/incidents/1/live"} if live
             else {"dashboard": "/", "incident": "/incidents/1"})
    stop, clicks = threading.Event(), []
    publisher = threading.Thread(target=cmoc_publishing, args=(url, stop, clicks))
    cpu0, wall0 = gunicorn_cpu(pid), time.perf_counter()
    publisher.start()
    runs = {}
    for name, path in pages.items():
        script = Path(workdir) / f"watch-{name}-{live}.lua"
        script.write_text(WATCHER_LUA.format(path=path, cookie=cookie, delay_ms=5000,
                                             live="true" if live else "false"))
        runs[name] = wrk(url, script, watchers // 2, seconds)
    results = {name: wrk_result(process) for name, process in runs.items()}
    stop.set()
    publisher.join(timeout=120)
    cpu, wall = gunicorn_cpu(pid) - cpu0, time.perf_counter() - wall0
    results["all"] = {"clicks": len(clicks),
                      "click_p50": statistics.median(clicks) if clicks else float("nan"),
                      "cpu_share": cpu / wall, "cpu_ms_per_watcher_s": cpu * 1000 / (
                          watchers * wall)}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watchers", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=30)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk (make bench does it)")
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
            print(f"{'mode':7} {'page':10} {'req/s':>6} {'p50 ms':>7} {'p99 ms':>8} "
                  f"{'4xx/5xx':>7}   {'publishes':>9} {'click p50':>9} {'x slowest':>9} "
                  f"{'gunicorn cpu':>12} {'cpu/watcher':>12}")
            for live in (False, True):
                r = run_mode(url, gunicorn.pid, workdir, cookie, live, args.watchers,
                             args.seconds)
                total = r.pop("all")
                for page, m in r.items():
                    print(f"{'live' if live else 'reload':7} {page:10} {m['rps']:>6.0f} "
                          f"{m['p50']:>7.1f} {m['p99']:>8.1f} {m['non2xx']:>7}", end="")
                    if page == "incident":
                        print(f"   {total['clicks']:>9} {total['click_p50']:>8.2f}s "
                              f"{total['click_p50'] / max(LATENCY.values()):>9.2f} "
                              f"{total['cpu_share'] * 100:>11.0f}% "
                              f"{total['cpu_ms_per_watcher_s']:>8.3f} ms/s", flush=True)
                    else:
                        print(flush=True)
                    if m["socket_errors"]:
                        print(f"        socket errors: {m['socket_errors']}")
        finally:
            os.killpg(gunicorn.pid, 15)
            gunicorn.wait(timeout=30)


if __name__ == "__main__":
    main()
