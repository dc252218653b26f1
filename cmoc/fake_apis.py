"""Fake status.io v2, X API v2 and Slack Web API on loopback, built from the documented shapes.

Used by the test suite, the benchmarks and `cmoc fake-apis` for local trials. It keeps what each
API would keep (incidents, tweets, messages), enforces the documented rules (status.io error
envelope, X duplicate-text 403, Slack `ok:false`), and can inject failures and latency.
"""

from __future__ import annotations

import itertools
import json
import secrets
import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

STATUSIO_API_ID = "fake-api-id"
STATUSIO_API_KEY = "fake-api-key"
STATUSPAGE_ID = "5b36dc6502d06804c08349f7"
SLACK_TOKEN = "xoxb-fake-token"
COMPONENTS = [
    ("Website", ["Google Compute Engine"]), ("API", ["Google Compute Engine"]),
    ("Git Operations", ["Google Compute Engine", "Azure"]), ("Container Registry", ["GCP"]),
    ("CI/CD - Hosted runners on Linux", ["GCP"]),
]


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


@dataclass
class Recorded:
    service: str
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class FakeApis:
    def __init__(self, port: int = 0, latency: dict[str, float] | None = None):
        self.lock = threading.Lock()
        self.latency = dict(latency or {})
        self.faults: list[Fault] = []
        self.requests: list[Recorded] = []
        self.ids = itertools.count(1)
        self.components = [
            {"_id": secrets.token_hex(12), "name": name, "position": i,
             "containers": [{"_id": secrets.token_hex(12), "name": c} for c in containers]}
            for i, (name, containers) in enumerate(COMPONENTS)]
        self.incidents: dict[str, dict[str, Any]] = {}
        self.tweets: dict[str, dict[str, Any]] = {}
        self.slack_messages: list[dict[str, Any]] = []
        self.server = make_server("127.0.0.1", port, self.wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> FakeApis:
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        if self.thread:
            self.thread.join(timeout=10)

    def serve_forever(self) -> None:
        self.server.serve_forever()

    def env(self) -> dict[str, str]:
        """Configuration that points cmoc at this fake with valid credentials."""
        return fake_env(self.url)

    def fail(self, service: str, path: str, **kwargs) -> Fault:
        fault = Fault(service=service, path=path, **kwargs)
        with self.lock:
            self.faults.append(fault)
        return fault

    def calls(self, service: str, path: str = "") -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.service == service and r.path.endswith(path)]

    # -- dispatch -------------------------------------------------------------------------
    def wsgi(self, environ, start_response):
        request = Request(environ)
        response = self.handle(request)
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:
        parts = request.path.strip("/").split("/", 1)
        service, rest = parts[0], (parts[1] if len(parts) > 1 else "")
        body = request.get_json(silent=True) if request.is_json else request.form.to_dict()
        with self.lock:
            self.requests.append(Recorded(service, request.method, request.path,
                                          dict(request.headers), body))
            fault = next((f for f in self.faults if f.service == service
                          and rest.endswith(f.path) and f.times > 0), None)
            if fault:
                fault.times -= 1
        time.sleep(self.latency.get(service, 0.0))
        if fault and not fault.apply:
            time.sleep(fault.delay)
            return _answer(fault.status, fault.body, fault.headers)
        handler = {"statusio": self.statusio, "twitter": self.twitter,
                   "slack": self.slack}.get(service)
        response = handler(request, rest, body) if handler else _answer(404, {"error": "no"})
        if fault:
            time.sleep(fault.delay)
            return _answer(fault.status, fault.body, fault.headers)
        return response

    # -- status.io ------------------------------------------------------------------------
    def statusio(self, request: Request, path: str, body: Any) -> Response:
        if (request.headers.get("x-api-id") != STATUSIO_API_ID
                or request.headers.get("x-api-key") != STATUSIO_API_KEY):
            return _answer(401, _envelope_error("Invalid API credentials"))
        route = path.removeprefix("v2/")
        with self.lock:
            if route == f"component/list/{STATUSPAGE_ID}":
                return _answer(200, _envelope(self.components))
            if route == f"incident/list/{STATUSPAGE_ID}":
                active = [i for i in self.incidents.values() if not i["resolved"]]
                resolved = [i for i in self.incidents.values() if i["resolved"]]
                return _answer(200, _envelope({"active_incidents": active,
                                               "resolved_incidents": resolved}))
            if route.startswith(f"incident/{STATUSPAGE_ID}/"):
                incident = self.incidents.get(route.rsplit("/", 1)[1])
                if incident is None:
                    return _answer(200, _envelope_error("Incident not found"))
                return _answer(200, _envelope([incident]))
            if request.method != "POST" or not isinstance(body, dict):
                return _answer(404, _envelope_error("Unknown endpoint"))
            if body.get("statuspage_id") != STATUSPAGE_ID:
                return _answer(200, _envelope_error("Invalid statuspage_id"))
            if route == "incident/create":
                missing = [k for k in ("incident_name", "incident_details", "current_status",
                                       "current_state", "infrastructure_affected") if k not in body]
                if missing:
                    return _answer(200, _envelope_error("Missing: " + ", ".join(missing)))
                incident_id = secrets.token_hex(12)
                self.incidents[incident_id] = {
                    "_id": incident_id, "name": body["incident_name"], "resolved": False,
                    "infrastructure_affected": body["infrastructure_affected"],
                    "messages": [self._message(body)]}
                return _answer(200, _envelope(incident_id))
            if route in ("incident/update", "incident/resolve"):
                incident = self.incidents.get(body.get("incident_id"))
                if incident is None:
                    return _answer(200, _envelope_error("Incident not found"))
                if incident["resolved"]:
                    return _answer(200, _envelope_error("Incident is already resolved"))
                incident["messages"].append(self._message(body))
                incident["resolved"] = route == "incident/resolve"
                return _answer(200, _envelope(True))
        return _answer(404, _envelope_error("Unknown endpoint"))

    def _message(self, body: dict) -> dict:
        return {"_id": secrets.token_hex(12), "details": body["incident_details"],
                "status": body["current_status"], "state": body["current_state"],
                "social": body.get("social"), "datetime": time.time()}

    # -- X --------------------------------------------------------------------------------
    def twitter(self, request: Request, path: str, body: Any) -> Response:
        if not request.headers.get("Authorization", "").startswith("OAuth "):
            return _answer(401, {"title": "Unauthorized", "type": "about:blank",
                                 "status": 401, "detail": "Unauthorized"})
        if path != "2/tweets" or request.method != "POST":
            return _answer(404, {"title": "Not Found", "status": 404})
        text = (body or {}).get("text", "")
        if not text:
            return _answer(400, {"title": "Invalid Request", "status": 400,
                                 "detail": "text is required"})
        reply_to = ((body or {}).get("reply") or {}).get("in_reply_to_tweet_id")
        with self.lock:
            if any(t["text"] == text for t in self.tweets.values()):
                return _answer(403, {"detail": "You are not allowed to create a Tweet with "
                                               "duplicate content.", "type": "about:blank",
                                     "title": "Forbidden", "status": 403})
            if reply_to and reply_to not in self.tweets:
                return _answer(400, {"title": "Invalid Request", "status": 400,
                                     "detail": "in_reply_to_tweet_id does not exist"})
            tweet_id = str(1456012973835788293 + next(self.ids))
            self.tweets[tweet_id] = {"id": tweet_id, "text": text, "in_reply_to": reply_to}
        return _answer(201, {"data": {"id": tweet_id, "text": text}},
                       {"location": f"https://api.twitter.com/2/tweets/{tweet_id}"})

    # -- Slack ----------------------------------------------------------------------------
    def slack(self, request: Request, path: str, body: Any) -> Response:
        if request.headers.get("Authorization") != f"Bearer {SLACK_TOKEN}":
            return _answer(200, {"ok": False, "error": "invalid_auth"})
        method = path.removeprefix("api/")
        body = body or {}
        with self.lock:
            if method == "chat.postMessage":
                if not body.get("channel"):
                    return _answer(200, {"ok": False, "error": "channel_not_found"})
                if not body.get("text") and not body.get("blocks"):
                    return _answer(200, {"ok": False, "error": "no_text"})
                channel = _channel_id(body["channel"])
                thread = body.get("thread_ts")
                if thread and not any(m["ts"] == thread for m in self.slack_messages):
                    return _answer(200, {"ok": False, "error": "thread_not_found"})
                ts = f"{time.time():.6f}"
                while any(m["ts"] == ts for m in self.slack_messages):
                    ts = f"{float(ts) + 0.000001:.6f}"
                message = {"ts": ts, "channel": channel, "posted_to": body["channel"],
                           "text": body.get("text"),
                           "thread_ts": thread, "blocks": body.get("blocks"),
                           "metadata": body.get("metadata")}
                self.slack_messages.append(message)
                return _answer(200, {"ok": True, "channel": channel, "ts": ts,
                                     "message": {"text": body.get("text"), "ts": ts}})
            if method in ("conversations.history", "conversations.replies"):
                channel = _channel_id(body.get("channel", ""))
                found = [m for m in self.slack_messages if m["channel"] == channel]
                if method == "conversations.replies":
                    found = [m for m in found if body.get("ts") in (m["ts"], m["thread_ts"])]
                else:
                    found = [m for m in found if not m["thread_ts"]]
                return _answer(200, {"ok": True, "messages": list(reversed(found))})
        return _answer(200, {"ok": False, "error": "unknown_method"})


def fake_env(url: str) -> dict[str, str]:
    """Configuration that points cmoc at a fake served at `url`, with valid credentials."""
    return {
        "STATUSIO_API_URL": f"{url}/statusio/v2", "STATUSIO_API_ID": STATUSIO_API_ID,
        "STATUSIO_API_KEY": STATUSIO_API_KEY, "STATUSIO_STATUSPAGE_ID": STATUSPAGE_ID,
        "TWITTER_API_URL": f"{url}/twitter", "TWITTER_CONSUMER_KEY": "ck",
        "TWITTER_CONSUMER_SECRET": "cs", "TWITTER_ACCESS_TOKEN": "at",
        "TWITTER_ACCESS_TOKEN_SECRET": "ats", "SLACK_API_URL": f"{url}/slack/api",
        "SLACK_BOT_TOKEN": SLACK_TOKEN, "SLACK_ADVOCATES_CHANNEL": "#community-advocates",
        "SLACK_ADVOCATES_GROUP_ID": "S0123ABC",
    }


def _channel_id(name: str) -> str:
    """Slack answers with channel ids; a name maps to a stable fake id."""
    if name[:1] in ("C", "G", "D") and name.isupper() and name.isalnum():
        return name
    if name[:1] in ("U", "W") and name.isupper() and name.isalnum():
        return "D" + name[1:]  # posting to a member id lands in the app's DM with them
    return "C" + format(zlib.crc32(name.lstrip("#").encode()), "010d")


def _envelope(result: Any) -> dict:
    return {"status": {"error": "no", "message": "OK"}, "result": result}


def _envelope_error(message: str) -> dict:
    return {"status": {"error": "yes", "message": message}}


def _answer(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    if isinstance(body, dict | list):
        return Response(json.dumps(body), status=status, headers=headers,
                        content_type="application/json")
    return Response(body or "", status=status, headers=headers, content_type="text/plain")
