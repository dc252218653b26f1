"""gunicorn's access log, as configured for production, never holds a token sent in a query
string (issue 13, item 7): cmoc refuses such tokens, and the log redacts them."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import requests

from cmoc import ROOT
from tests.api.conftest import token_for
from tests.reliability.conftest import GUNICORN, free_port


def test_query_string_tokens_never_reach_the_access_log(app, tmp_path):
    """gunicorn as configured for production, its access log in a file."""
    url = app.config["SQLALCHEMY_DATABASE_URI"].replace("postgresql+psycopg://", "postgresql://")
    api_token = token_for("cmoc")
    port, log = free_port(), tmp_path / "access.log"
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "access-log-test",
           "METRICS_TOKEN": "metrics-secret-value", "CMOC_INSTANCE_PATH": str(tmp_path),
           "PORT": str(port), "HOST": "127.0.0.1", "WEB_CONCURRENCY": "1"}
    process = subprocess.Popen(
        [str(GUNICORN), "--config", "config/gunicorn.conf.py", "--access-logfile", str(log),
         "cmoc:create_app()"], cwd=ROOT, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(base + "/healthz", timeout=30).status_code == 200:
                    break
            except requests.RequestException:  # not listening yet, or still importing
                time.sleep(0.2)
        assert requests.get(f"{base}/api/v1/incidents?access_token={api_token}&state=all",
                            timeout=10).status_code == 401
        assert requests.get(f"{base}/metrics?token=metrics-secret-value",
                            timeout=10).status_code == 403
        assert requests.get(f"{base}/metrics?metrics-secret-value", timeout=10,
                            headers={"Referer": f"{base}/x?api_key={api_token}"}
                            ).status_code == 403
        # Written once the response is sent; give the worker a moment.
        deadline = time.monotonic() + 10
        while log.read_text().count("\n") < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    written = log.read_text()
    assert api_token not in written and "metrics-secret-value" not in written, written
    assert "/api/v1/incidents?access_token=[redacted]&state=all" in written
    assert "/metrics?[redacted]" in written and "/x?api_key=[redacted]" in written
