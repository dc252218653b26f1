"""Web throughput under gunicorn (config/gunicorn.conf.py: 2 workers x 4 threads) on this
machine: the dashboard, the drafting page and the preview endpoint, side by side in the same
run with a minimal Flask "hello world" under the same settings. Load from wrk (Debian `wrk`).

    .venv/bin/python -m bench.web [--seconds 10] [--clients 10 50]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from flask_migrate import upgrade
from werkzeug.security import generate_password_hash

from bench._fakes import free_port
from cmoc import ROOT, create_app
from cmoc.extensions import db
from cmoc.models import Incident, User
from cmoc.timeutil import utcnow

GUNICORN = str(Path(sys.executable).parent / "gunicorn")


def serve(app_path: str, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [GUNICORN, "--config", "config/gunicorn.conf.py", "--access-logfile", "/dev/null",
         "--error-logfile", "/dev/null", app_path], cwd=ROOT, start_new_session=True,
        env={**env, "PORT": str(port), "HOST": "127.0.0.1"})
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            requests.get(url + "/healthz" if "cmoc" in app_path else url, timeout=2)
            return process, url
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"{app_path} did not start")


def wrk(url: str, clients: int, seconds: int, script: str | None = None) -> dict[str, float]:
    command = ["wrk", "-t2", f"-c{clients}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if script:
        command += ["-s", script]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)

    def pct(p):
        value, unit = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]

    return {"rps": rps, "p50": pct(50), "p99": pct(99),
            "errors": int(errors.group(1)) if errors else 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--clients", type=int, nargs="+", default=[10, 50])
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk (make bench does it)")
    with tempfile.TemporaryDirectory() as workdir:
        env = {**os.environ, "SECRET_KEY": "bench", "DATABASE_URL":
               f"sqlite:///{workdir}/web.db", "CMOC_INSTANCE_PATH": workdir}
        app = create_app({"SECRET_KEY": "bench", "DATABASE_URL": env["DATABASE_URL"],
                          "INSTANCE_PATH": workdir})
        with app.app_context():
            upgrade()
            db.session.add(User(username="bench", role="cmoc",
                                password_hash=generate_password_hash("bench-password")))
            db.session.commit()
            for i in range(20):  # a busy dashboard: twenty active incidents
                db.session.add(Incident(
                    title=f"Incident {i}", severity=f"S{1 + i % 4}", status="service_disruption",
                    components=["API", "Website"], issue_url="https://gitlab.com/x/-/issues/1",
                    declared_by_id=1, created_at=utcnow(), updated_at=utcnow(),
                    next_update_due_at=utcnow()))
            db.session.commit()
        cmoc, cmoc_url = serve("cmoc:create_app()", env)
        hello, hello_url = serve("bench.hello:create_app()", env)
        try:
            session = requests.Session()
            # A session is bound to its browser: wrk presents the same User-Agent (without
            # it every request would end the session and measure a redirect to sign-in).
            session.headers["User-Agent"] = "cmoc-bench/1.0"
            page = session.get(cmoc_url + "/login").text
            token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
            session.post(cmoc_url + "/login", data={"username": "bench", "password":
                                                    "bench-password", "csrf_token": token})
            page = session.get(cmoc_url + "/").text
            token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
            cookie = "; ".join(f"{k}={v}" for k, v in session.cookies.items())
            get_script = Path(workdir) / "get.lua"
            get_script.write_text(f'wrk.headers["Cookie"] = "{cookie}"\n'
                                  'wrk.headers["User-Agent"] = "cmoc-bench/1.0"\n')
            post_script = Path(workdir) / "post.lua"
            post_script.write_text(
                'wrk.method = "POST"\n'
                'wrk.body = "state=investigating&template=investigating&var_symptom=errors'
                '+on+the+API&next_update_minutes=15"\n'
                'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
                f'wrk.headers["X-CSRFToken"] = "{token}"\n'
                f'wrk.headers["Cookie"] = "{cookie}"\n'
                'wrk.headers["User-Agent"] = "cmoc-bench/1.0"\n')
            targets = [
                ("hello world", hello_url + "/", None),
                ("dashboard", cmoc_url + "/", str(get_script)),
                ("drafting page", cmoc_url + "/incidents/1/updates/new", str(get_script)),
                ("preview (POST)", cmoc_url + "/incidents/1/preview", str(post_script)),
            ]
            print(f"web throughput, gunicorn {os.cpu_count()} cores, 2 workers x 4 threads, "
                  f"wrk -t2, {args.seconds}s per cell")
            print(f"{'endpoint':16} {'clients':>7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
                  f"{'vs hello':>8} {'non-2xx':>7}")
            for clients in args.clients:
                base = None
                for name, url, script in targets:
                    result = wrk(url, clients, args.seconds, script)
                    base = base or result["rps"]
                    print(f"{name:16} {clients:>7} {result['rps']:>8.0f} {result['p50']:>8.1f} "
                          f"{result['p99']:>8.1f} {result['rps'] / base:>8.2f} "
                          f"{result['errors']:>7}", flush=True)
        finally:
            for process in (cmoc, hello):
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)


if __name__ == "__main__":
    main()
