"""Fake status.io v2, X API v2, Slack Web API and GitLab REST v4 on loopback, built from the
documented shapes.

Used by the test suite, the benchmarks and `cmoc fake-apis` for local trials. It keeps what each
API would keep (incidents, tweets, messages), enforces the documented rules (status.io error
envelope, X duplicate-text 403, Slack `ok:false` and channel ids where Slack wants ids), and can
inject failures: a canned answer, a slow answer, a dropped connection, each either instead of
carrying the request out or after carrying it out (the remote acted, the caller never heard).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from cmoc.fake_apis.gitlab import GITLAB_TOKEN, HANDOVER_PROJECT, INCIDENT_PROJECT, FakeGitLab
from cmoc.fake_apis.pagerduty import CMOC_SCHEDULE, PAGERDUTY_TOKEN, FakePagerDuty
from cmoc.fake_apis.sandbox import SandboxControl
from cmoc.fake_apis.slack import SLACK_TOKEN, FakeSlack
from cmoc.fake_apis.statusio import (
    COMPONENTS,
    STATUSIO_API_ID,
    STATUSIO_API_KEY,
    STATUSPAGE_ID,
    FakeStatusIO,
)
from cmoc.fake_apis.twitter import FakeX
from cmoc.fake_apis.wire import Clock, answer, dropped, real_now

__all__ = ["COMPONENTS", "SLACK_TOKEN", "STATUSIO_API_ID", "STATUSIO_API_KEY", "STATUSPAGE_ID",
           "FakeApis", "Fault", "Recorded", "fake_env"]


@dataclass
class Fault:
    """A canned answer for the next `times` matching requests."""

    service: str
    path: str                 # suffix of the request path, e.g. "incident/create"
    status: int = 500
    body: Any = None          # dict -> JSON, str -> text
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1
    delay: float = 0.0        # sleep before answering (beyond a client's read timeout = timeout)
    apply: bool = False       # carry out the request first, then answer with the fault
    drop: bool = False        # break the connection mid-answer instead of answering
    method: str | None = None  # only requests with this method (None: any)
    where: dict[str, Any] | None = None  # only requests whose body has these values

    def matches(self, service: str, rest: str, method: str, body: Any) -> bool:
        return (self.service == service and rest.endswith(self.path) and self.times > 0
                and self.method in (None, method)
                and all(isinstance(body, dict) and body.get(k) == v
                        for k, v in (self.where or {}).items()))


@dataclass
class Recorded:
    service: str
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    args: dict[str, str] = field(default_factory=dict)


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:  # one line per request drowns test output
        return None


class FakeApis:
    """The three fake APIs on one loopback port. As the sandbox (`sandbox=True`) it also keeps
    its state in `state_path` and answers the control API (`cmoc.fake_apis.sandbox`)."""

    def __init__(self, port: int = 0, latency: dict[str, float] | None = None, *,
                 components: list[tuple[str, list[str]]] | None = None,
                 sandbox: bool = False, state_path: Path | None = None,
                 keep_requests: int | None = None, tls: bool = False):
        self.lock = threading.RLock()
        self.latency = dict(latency or {})
        self.faults: list[Fault] = []
        self.requests: list[Recorded] = []
        self.keep_requests = keep_requests   # a long-running sandbox keeps only the latest
        self.now: Clock = real_now  # a test may simulate time: the remotes' timestamps follow
        self.statusio_api = FakeStatusIO(self.lock, self._clock, components=components)
        self.x_api = FakeX(self.lock, self._clock)
        self.slack_api = FakeSlack(self.lock, self._clock)
        self.gitlab_api = FakeGitLab(self.lock, self._clock)
        self.pagerduty_api = FakePagerDuty(self.lock, self._clock)
        self.control = SandboxControl(self, state_path) if sandbox else None
        # HTTPS (a throwaway CA from `trustme`, its PEM in `ca_file`) for clients that insist
        # on it, as PagerDuty's does.
        self.ca_file: str | None = None
        self.server = make_server("127.0.0.1", port, self.wsgi, threaded=True,
                                  request_handler=_QuietHandler,
                                  ssl_context=self._tls_context() if tls else None)
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_port}"
        self.gitlab_api.base_url = f"{self.url}/gitlab"   # issues' web_url point here
        self.thread: threading.Thread | None = None

    def _clock(self) -> datetime:
        return self.now()

    def _tls_context(self):
        import ssl
        import tempfile

        import trustme  # a test dependency: only the tests serve HTTPS

        ca = trustme.CA()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        with tempfile.NamedTemporaryFile("wb", suffix=".pem", delete=False) as pem:
            pem.write(ca.cert_pem.bytes())
        self.ca_file = pem.name
        return context

    # What each remote holds (the public record as the world would see it).
    @property
    def components(self) -> list[dict[str, Any]]:
        return self.statusio_api.components

    @property
    def incidents(self) -> dict[str, dict[str, Any]]:
        return self.statusio_api.incidents

    @property
    def tweets(self) -> dict[str, dict[str, Any]]:
        return self.x_api.tweets

    @property
    def slack_messages(self) -> list[dict[str, Any]]:
        return self.slack_api.messages

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> FakeApis:
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        if self.thread:
            self.thread.join(timeout=10)
        self.server.server_close()

    def serve_forever(self) -> None:
        self.server.serve_forever()

    def env(self) -> dict[str, str]:
        """Configuration that points cmoc at this fake with valid credentials."""
        return fake_env(self.url)

    def pagerduty_env(self) -> dict[str, str]:
        return {**pagerduty_env(self.url), "PAGERDUTY_CA_FILE": self.ca_file or ""}

    def fail(self, service: str, path: str, **kwargs) -> Fault:
        fault = Fault(service=service, path=path, **kwargs)
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def calls(self, service: str, path: str = "", method: str | None = None) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.service == service and r.path.endswith(path)
                    and (method is None or r.method == method)]

    # -- dispatch -------------------------------------------------------------------------
    def wsgi(self, environ, start_response):
        request = Request(environ)
        fault, response = self.handle(request)
        if fault is not None and fault.drop:
            return dropped(start_response)
        return response(environ, start_response)

    def handle(self, request: Request) -> tuple[Fault | None, Response]:
        parts = request.path.strip("/").split("/", 1)
        service, rest = parts[0], (parts[1] if len(parts) > 1 else "")
        if service == "_sandbox" and self.control is not None:
            return None, self.control.handle(request, rest)
        body = request.get_json(silent=True) if request.is_json else request.form.to_dict()
        with self.lock:
            self.requests.append(Recorded(service, request.method, request.path,
                                          dict(request.headers), body, request.args.to_dict()))
            if self.keep_requests is not None and len(self.requests) > self.keep_requests:
                del self.requests[:-self.keep_requests]
            fault = next((f for f in self.faults
                          if f.matches(service, rest, request.method, body)), None)
            if fault:
                fault.times -= 1
        time.sleep(self.latency.get(service, 0.0))
        if fault and not fault.apply:
            time.sleep(fault.delay)
            return fault, answer(fault.status, fault.body, fault.headers)
        handler = {"statusio": self.statusio_api.handle, "twitter": self.x_api.handle,
                   "slack": self.slack_api.handle, "gitlab": self.gitlab_api.handle,
                   "pagerduty": self.pagerduty_api.handle}.get(service)
        response = handler(request, rest, body) if handler else answer(404, {"error": "no"})
        if self.control is not None and request.method in ("POST", "PUT"):
            self.control.save()
        if fault:
            time.sleep(fault.delay)
            return fault, answer(fault.status, fault.body, fault.headers)
        return None, response


def pagerduty_env(url: str) -> dict[str, str]:
    """The on-call settings for the fake PagerDuty at `url` (not in `fake_env`: with them the
    clock hands incidents over to whoever is on call)."""
    return {"PAGERDUTY_API_URL": f"{url}/pagerduty", "PAGERDUTY_API_TOKEN": PAGERDUTY_TOKEN,
            "PAGERDUTY_CMOC_SCHEDULE_ID": CMOC_SCHEDULE}


def fake_env(url: str) -> dict[str, str]:
    """Configuration that points cmoc at a fake served at `url`, with valid credentials."""
    return {
        "STATUSIO_API_URL": f"{url}/statusio/v2", "STATUSIO_API_ID": STATUSIO_API_ID,
        "STATUSIO_API_KEY": STATUSIO_API_KEY, "STATUSIO_STATUSPAGE_ID": STATUSPAGE_ID,
        "TWITTER_API_URL": f"{url}/twitter", "TWITTER_CONSUMER_KEY": "ck",
        "TWITTER_CONSUMER_SECRET": "cs", "TWITTER_ACCESS_TOKEN": "at",
        "TWITTER_ACCESS_TOKEN_SECRET": "ats", "SLACK_API_URL": f"{url}/slack/api",
        "SLACK_BOT_TOKEN": SLACK_TOKEN, "SLACK_ADVOCATES_CHANNEL": "#community-advocates",
        "SLACK_RESPONSE_URL_PREFIX": f"{url}/slack/response/",
        "SLACK_ADVOCATES_GROUP_ID": "S0123ABC",
        "GITLAB_URL": f"{url}/gitlab", "GITLAB_TOKEN": GITLAB_TOKEN,
        "GITLAB_INCIDENT_PROJECT": INCIDENT_PROJECT, "GITLAB_HANDOVER_PROJECT": HANDOVER_PROJECT,
    }
