"""The sandbox: the fake APIs as cmoc's own simulated status.io, X and Slack.

`cmoc sandbox` serves them for channels without credentials, so the whole flow really happens
(create → update → resolve, threads, failures) without touching a real service. On top of the
fakes it keeps its state in a file (a restart loses nothing) and answers a small control API,
used by cmoc's Sandbox page:

    GET    /_sandbox/state    what the public and the advocates would see, and pending faults
    POST   /_sandbox/faults   {"channel": "twitter", "kind": "rate_limit", "times": 1}
    DELETE /_sandbox/faults   clear pending faults
    POST   /_sandbox/reset    forget every incident, tweet and message
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from werkzeug.wrappers import Request, Response

from cmoc.fake_apis.wire import answer

SERVICES = ("statusio", "twitter", "slack", "gitlab")
# The send path of each channel: a fault applies to the next post there.
SEND_PATHS = {"statusio": "", "twitter": "2/tweets", "slack": "chat.postMessage",
              "gitlab": "notes"}
# What can go wrong, as the Sandbox page offers it: label and the fake's answer.
FAULT_KINDS: dict[str, tuple[str, dict[str, Any]]] = {
    "server_error": ("Server error (HTTP 503), nothing posted", {"status": 503,
                                                                 "body": "unavailable"}),
    "server_error_after": ("Server error (HTTP 502) after posting", {"status": 502,
                                                                     "body": "bad gateway",
                                                                     "apply": True}),
    "rate_limit": ("Rate limited (HTTP 429), retry in 60 s", {"status": 429}),
    "timeout_after": ("No answer (timeout) after posting", {"status": 200, "apply": True,
                                                            "delay": 15.0}),
    "dropped": ("Connection dropped, nothing posted", {"status": 200, "drop": True}),
    "refused": ("Refused (HTTP 403 / error)", {"status": 403}),
}


def fault_for(channel: str, kind: str) -> dict[str, Any]:
    """The Fault arguments for a kind of failure on a channel's next post."""
    if channel not in SERVICES or kind not in FAULT_KINDS:
        raise ValueError(f"unknown channel or fault: {channel} {kind}")
    spec = dict(FAULT_KINDS[kind][1])
    if kind == "rate_limit":
        spec["headers"] = ({"x-rate-limit-reset": str(int(time.time()) + 60)}
                           if channel == "twitter" else {"Retry-After": "60"})
        spec["body"] = ({"ok": False, "error": "ratelimited"} if channel == "slack"
                        else {"title": "Too Many Requests", "status": 429})
    if kind == "refused":
        spec["body"] = {"statusio": {"status": {"error": "yes", "message": "Refused by the "
                                                                            "sandbox"}},
                        "twitter": {"title": "Forbidden", "detail": "Refused by the sandbox",
                                    "status": 403},
                        "slack": {"ok": False, "error": "restricted_action"},
                        "gitlab": {"message": "403 Forbidden - refused by the sandbox"},
                        }[channel]
        spec["status"] = 200 if channel in ("statusio", "slack") else 403
    if kind == "timeout_after":
        spec["body"] = {"ok": True}
    return spec


class SandboxControl:
    """State persistence and the control API of a FakeApis used as the sandbox."""

    def __init__(self, fakes, state_path: Path | None):
        from cmoc.fake_apis.gitlab import GitLabSandbox

        self.fakes = fakes
        self.gitlab = GitLabSandbox(fakes.gitlab_api)
        self.state_path = state_path
        if state_path and state_path.exists():
            self.load(json.loads(state_path.read_text(encoding="utf-8")))

    # -- state ----------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        fakes = self.fakes
        with fakes.lock:
            return {
                "components": fakes.statusio_api.components,
                "incidents": list(fakes.statusio_api.incidents.values()),
                "tweets": list(fakes.x_api.tweets.values()),
                "slack_messages": list(fakes.slack_api.messages),
                "slack_channels": fakes.slack_api.channels,
                "gitlab": self.gitlab.snapshot(),
                "faults": [{"channel": f.service, "path": f.path, "status": f.status,
                            "times": f.times, "apply": f.apply, "drop": f.drop}
                           for f in fakes.faults if f.times > 0],
            }

    def load(self, state: dict[str, Any]) -> None:
        fakes = self.fakes
        with fakes.lock:
            if state.get("components"):
                fakes.statusio_api.components = state["components"]
            fakes.statusio_api.incidents = {i["_id"]: i for i in state.get("incidents", [])}
            fakes.x_api.tweets = {t["id"]: t for t in state.get("tweets", [])}
            fakes.x_api.resume_ids(len(fakes.x_api.tweets))
            fakes.slack_api.messages = list(state.get("slack_messages", []))
            fakes.slack_api.channels.update(state.get("slack_channels", {}))
            self.gitlab.load(state.get("gitlab"))

    def save(self) -> None:
        """Written atomically after every change, so a restart of the sandbox loses nothing."""
        if not self.state_path:
            return
        state = self.snapshot()
        state.pop("faults")
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=self.state_path.parent, suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(state, out)
        os.replace(tmp, self.state_path)

    # -- control API ----------------------------------------------------------------------
    def handle(self, request: Request, path: str) -> Response:
        if path.startswith("gitlab"):
            response = self.gitlab.handle(request, path)
            if request.method == "POST" and response.status_code < 300:
                self.save()
            return response
        if path == "state" and request.method == "GET":
            return answer(200, self.snapshot())
        if path == "faults" and request.method == "POST":
            body = request.get_json(silent=True) or {}
            try:
                spec = fault_for(str(body.get("channel")), str(body.get("kind")))
                times = int(body.get("times", 1))
            except (TypeError, ValueError) as exc:
                return answer(400, {"error": str(exc)})
            if not 1 <= times <= 10:
                return answer(400, {"error": "times must be 1 to 10"})
            channel = body["channel"]
            self.fakes.fail(channel, SEND_PATHS[channel], method="POST", times=times, **spec)
            return answer(201, {"ok": True})
        if path == "faults" and request.method == "DELETE":
            self.fakes.clear_faults()
            return answer(200, {"ok": True})
        if path == "reset" and request.method == "POST":
            self.load({"components": self.fakes.statusio_api.components})
            self.fakes.clear_faults()
            self.save()
            return answer(200, {"ok": True})
        return answer(404, {"error": "unknown sandbox endpoint"})
