"""Fake status.io v2: components, incidents with their messages, the `error: yes` envelope."""

from __future__ import annotations

import secrets
from typing import Any

from werkzeug.wrappers import Request, Response

from cmoc.fake_apis.wire import Clock, answer, iso, real_now

STATUSIO_API_ID = "fake-api-id"
STATUSIO_API_KEY = "fake-api-key"
STATUSPAGE_ID = "5b36dc6502d06804c08349f7"
COMPONENTS = [
    ("Website", ["Google Compute Engine"]), ("API", ["Google Compute Engine"]),
    ("Git Operations", ["Google Compute Engine", "Azure"]), ("Container Registry", ["GCP"]),
    ("CI/CD - Hosted runners on Linux", ["GCP"]),
]
REQUIRED_CREATE = ("incident_name", "incident_details", "current_status", "current_state",
                   "infrastructure_affected")


def envelope(result: Any) -> dict:
    return {"status": {"error": "no", "message": "OK"}, "result": result}


def envelope_error(message: str) -> dict:
    return {"status": {"error": "yes", "message": message}}


class FakeStatusIO:
    def __init__(self, lock, clock: Clock = real_now,
                 components: list[tuple[str, list[str]]] | None = None):
        self.lock = lock
        self.clock = clock
        self.components = [
            {"_id": secrets.token_hex(12), "name": name, "position": i,
             "containers": [{"_id": secrets.token_hex(12), "name": c} for c in containers]}
            for i, (name, containers) in enumerate(components or COMPONENTS)]
        self.incidents: dict[str, dict[str, Any]] = {}

    def handle(self, request: Request, path: str, body: Any) -> Response:
        if (request.headers.get("x-api-id") != STATUSIO_API_ID
                or request.headers.get("x-api-key") != STATUSIO_API_KEY):
            return answer(401, envelope_error("Invalid API credentials"))
        route = path.removeprefix("v2/")
        with self.lock:
            if request.method == "GET":
                return self._read(route)
            if request.method != "POST" or not isinstance(body, dict):
                return answer(404, envelope_error("Unknown endpoint"))
            if body.get("statuspage_id") != STATUSPAGE_ID:
                return answer(200, envelope_error("Invalid statuspage_id"))
            if route == "incident/create":
                return self._create(body)
            if route in ("incident/update", "incident/resolve"):
                return self._update(body, resolve=route == "incident/resolve")
        return answer(404, envelope_error("Unknown endpoint"))

    def _read(self, route: str) -> Response:
        if route == f"component/list/{STATUSPAGE_ID}":
            return answer(200, envelope(self.components))
        if route == f"incident/list/{STATUSPAGE_ID}":
            active = [i for i in self.incidents.values() if not i["resolved"]]
            resolved = [i for i in self.incidents.values() if i["resolved"]]
            return answer(200, envelope({"active_incidents": active,
                                         "resolved_incidents": resolved}))
        if route.startswith(f"incident/{STATUSPAGE_ID}/"):
            incident = self.incidents.get(route.rsplit("/", 1)[1])
            if incident is None:
                return answer(200, envelope_error("Incident not found"))
            return answer(200, envelope([incident]))
        return answer(404, envelope_error("Unknown endpoint"))

    def _create(self, body: dict) -> Response:
        missing = [k for k in REQUIRED_CREATE if k not in body]
        if missing:
            return answer(200, envelope_error("Missing: " + ", ".join(missing)))
        incident_id = secrets.token_hex(12)
        self.incidents[incident_id] = {
            "_id": incident_id, "name": body["incident_name"], "resolved": False,
            "statuspage": STATUSPAGE_ID, "datetime_open": iso(self.clock()),
            "infrastructure_affected": body["infrastructure_affected"],
            "messages": [self._message(body, incident_id)]}
        return answer(200, envelope(incident_id))

    def _update(self, body: dict, *, resolve: bool) -> Response:
        incident = self.incidents.get(body.get("incident_id"))
        if incident is None:
            return answer(200, envelope_error("Incident not found"))
        if incident["resolved"]:
            return answer(200, envelope_error("Incident is already resolved"))
        incident["messages"].append(self._message(body, incident["_id"]))
        incident["resolved"] = resolve
        return answer(200, envelope(True))

    def _message(self, body: dict, incident_id: str) -> dict:
        return {"_id": secrets.token_hex(12), "details": body.get("incident_details"),
                "status": body.get("current_status"), "state": body.get("current_state"),
                "social": body.get("social"), "incident": incident_id,
                "statuspage": STATUSPAGE_ID, "datetime": iso(self.clock()),
                "notify": {k: body.get(k) for k in ("notify_email", "notify_sms",
                                                    "notify_webhook")}}
