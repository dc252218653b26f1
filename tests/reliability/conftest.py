"""The app as it runs in production: gunicorn in its own processes, on loopback."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from cmoc import ROOT
from cmoc.extensions import db
from tests.factories import PASSWORD

GUNICORN = Path(sys.executable).parent / "gunicorn"
CMOC = Path(sys.executable).parent / "cmoc"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, env: dict[str, str]):
        self.env = env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> Server:
        env = {**self.env, "PORT": str(self.port), "HOST": "127.0.0.1"}
        self.log = Path(self.env["CMOC_INSTANCE_PATH"]).parent / f"gunicorn-{self.port}.log"
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [str(GUNICORN), "--config", "config/gunicorn.conf.py", "--access-logfile",
                 "/dev/null", "cmoc:create_app()"], cwd=ROOT, env=env,
                start_new_session=True, stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/healthz", timeout=5).status_code == 200:
                    return self
            except requests.RequestException:  # not listening yet, or still importing
                time.sleep(0.2)
        self.kill()
        raise RuntimeError("gunicorn did not start: " + self.log.read_text()[-2000:])

    def kill(self) -> None:
        """SIGKILL the master and its workers at once: nothing gets to clean up."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def session(self, username: str) -> tuple[requests.Session, str]:
        """A signed-in browser-like session and its CSRF token."""
        session = requests.Session()
        # Generous: fifty of these at once hash fifty passwords on a shared 2-core machine.
        page = session.get(self.url + "/login", timeout=60).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        response = session.post(self.url + "/login", timeout=60, allow_redirects=False,
                                data={"username": username, "password": PASSWORD,
                                      "csrf_token": token})
        assert response.status_code == 302, response.text[:300]
        page = session.get(self.url + "/", timeout=60).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        return session, token


@pytest.fixture
def server_env(live_app, fakes, tmp_path):
    """Environment for app processes sharing the test's database and the fakes."""
    url = live_app.config["SQLALCHEMY_DATABASE_URI"].replace("postgresql+psycopg://",
                                                             "postgresql://")
    return {**os.environ, **fakes.env(), "SECRET_KEY": "reliability", "DATABASE_URL": url,
            "CMOC_INSTANCE_PATH": str(tmp_path / "instance"), "WEB_CONCURRENCY": "2",
            "WEB_THREADS": "8", "CMOC_PUBLISH_BACKOFF_SECONDS": "0"}


@pytest.fixture
def start_server(server_env):
    servers = []

    def start(**extra) -> Server:
        server = Server({**server_env, **extra}).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.kill()
    db.session.remove()
