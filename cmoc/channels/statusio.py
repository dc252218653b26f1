"""status.io API v2: create, update and resolve the public incident; list components."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from cmoc.channels import ChannelResult, PostContext
from cmoc.channels.http import describe_network_error
from cmoc.services.subscribers import payload_flags

STATUS_CODES = {
    "operational": 100, "degraded_performance": 300, "partial_service_disruption": 400,
    "service_disruption": 500, "security_issue": 600,
}
# status.io has no Resolved state: resolving is its own endpoint.
STATE_CODES = {"investigating": 100, "identified": 200, "monitoring": 300}
# Broadcast flags (handbook: all boxes checked). `social` stays "0": cmoc tweets itself, and X
# rejects the same text twice (403 duplicate).
DEFAULT_NOTIFY = {"notify_email": "1", "notify_sms": "1", "notify_webhook": "1", "social": "0",
                  "irc": "1", "hipchat": "0", "slack": "1", "msteams": "1"}


# Our clock and status.io's may disagree a little: a post is "after our first attempt" within it.
LOOKUP_SKEW = timedelta(minutes=2)


def retry_after_seconds(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class StatusIO:
    name = "statusio"

    def __init__(self, *, session: requests.Session, base_url: str, api_id: str | None,
                 api_key: str | None, statuspage_id: str | None,
                 components: dict[str, tuple[str | None, list[str]]],
                 notify: dict[str, str] | None = None):
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.api_id = api_id
        self.api_key = api_key
        self.statuspage_id = statuspage_id
        self.components = components
        self.notify = {**DEFAULT_NOTIFY, **(notify or {}), "social": "0"}

    @property
    def configured(self) -> bool:
        return bool(self.api_id and self.api_key and self.statuspage_id)

    # -- payloads -------------------------------------------------------------------------
    def infrastructure(self, names: tuple[str, ...]) -> tuple[list[str], list[str]]:
        """("<component_id>-<container_id>" for every container of each component, unknown)."""
        pairs, unknown = [], []
        for name in names:
            component_id, containers = self.components.get(name, (None, []))
            if not component_id or not containers:
                unknown.append(name)
                continue
            pairs.extend(f"{component_id}-{container}" for container in containers)
        return pairs, unknown

    def flags(self, ctx: PostContext) -> dict[str, str]:
        """Broadcast flags: the configured ones, this update's subscriber choice over them;
        `social` always "0"."""
        return {**self.notify, **payload_flags(ctx.statusio_notify), "social": "0"}

    def build(self, ctx: PostContext) -> dict[str, Any]:
        page = self.statuspage_id or "<STATUSIO_STATUSPAGE_ID>"
        notify = self.flags(ctx)
        if ctx.statusio_incident_id is None:
            if ctx.state == "resolved":
                return {"skip": "Nothing to resolve on status.io: this incident was never "
                                "posted there."}
            pairs, unknown = self.infrastructure(ctx.components)
            body = {
                "statuspage_id": page, "incident_name": ctx.title,
                "incident_details": ctx.text, "infrastructure_affected": pairs,
                "all_infrastructure_affected": "0",
                "current_status": STATUS_CODES[ctx.status],
                "current_state": STATE_CODES[ctx.state], **notify,
            }
            payload = {"path": "incident/create", "body": body}
            if unknown:
                payload["unknown_components"] = unknown
            return payload
        body = {
            "statuspage_id": page, "incident_id": ctx.statusio_incident_id,
            "incident_details": ctx.text, "current_status": STATUS_CODES[ctx.status],
            "current_state": STATE_CODES.get(ctx.state)
            or STATE_CODES.get(ctx.previous_state or "", 300),
            **notify,
        }
        path = "incident/resolve" if ctx.state == "resolved" else "incident/update"
        return {"path": path, "body": body}

    # -- wire -----------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        return {"x-api-id": self.api_id or "", "x-api-key": self.api_key or "",
                "Content-Type": "application/json"}

    def _call(self, method: str, path: str, body: dict | None = None
              ) -> tuple[Any, ChannelResult | None]:
        """(result, None) on success, else (None, failed result)."""
        try:
            response = self.session.request(method, f"{self.base_url}/{path}", json=body,
                                            headers=self._headers())
        except requests.RequestException as exc:
            message, safe = describe_network_error(exc, "status.io")
            return None, ChannelResult.failed(message, retryable=safe, outcome_unknown=not safe)
        code = response.status_code
        envelope_message = _envelope_message(response)
        if code == 429:
            return None, ChannelResult.failed(
                f"status.io rate limit (HTTP 429){envelope_message}", retryable=True,
                retry_after=retry_after_seconds(response))
        if code >= 500:
            # Any server or gateway error may hide a request that was carried out: unknown.
            return None, ChannelResult.failed(
                f"status.io server error (HTTP {code}){envelope_message}",
                outcome_unknown=True, retry_after=retry_after_seconds(response))
        if code >= 400:
            hint = " — check STATUSIO_API_ID/STATUSIO_API_KEY" if code in (401, 403) else ""
            return None, ChannelResult.failed(
                f"status.io refused the request (HTTP {code}){envelope_message}{hint}")
        try:
            data = response.json()
        except ValueError:
            return None, ChannelResult.failed(
                f"status.io answered HTTP {code} with a body that is not JSON",
                outcome_unknown=True)
        status = data.get("status") if isinstance(data, dict) else None
        if not isinstance(status, dict) or status.get("error") != "no":
            message = status.get("message") if isinstance(status, dict) else None
            return None, ChannelResult.failed(
                f"status.io error: {message or 'error envelope without a message'}")
        return data.get("result"), None

    def send(self, payload: dict[str, Any]) -> ChannelResult:
        if payload.get("unknown_components"):
            return ChannelResult.failed(
                "No status.io component id for: " + ", ".join(payload["unknown_components"])
                + ". Refresh components from status.io or set ids in the config.")
        result, failure = self._call("POST", payload["path"], payload["body"])
        if failure:
            return failure
        if payload["path"] == "incident/create":
            if not isinstance(result, str) or not result:
                return ChannelResult.failed("status.io created the incident but returned no id",
                                            outcome_unknown=True)
            return ChannelResult.sent(result, statusio_incident_id=result)
        if result is not True:
            return ChannelResult.failed(f"status.io answered {result!r} instead of true",
                                        outcome_unknown=True)
        return ChannelResult.sent(payload["body"]["incident_id"])

    def find_existing(self, payload: dict[str, Any], *,
                      since: datetime | None = None) -> ChannelResult | None:
        """The incident or message an earlier, unanswered attempt created, if status.io has it.

        A create is matched on the incident's name, a message with our exact text, and an
        opening time after our first attempt (less a clock-skew margin); an update or resolve on
        a message with our text posted after it. None means "certainly not there"; a failed
        result means status.io could not be asked.
        """
        body = payload["body"]
        details = body["incident_details"]
        after = since - LOOKUP_SKEW if since else None
        if payload["path"] == "incident/create":
            result, failure = self._call("GET", f"incident/list/{self.statuspage_id}")
            if failure:
                return failure
            if not isinstance(result, dict):
                return ChannelResult.failed("status.io incident list has an unexpected shape")
            incidents = (result.get("active_incidents") or []) + \
                (result.get("resolved_incidents") or [])
            for incident in incidents:
                if (isinstance(incident, dict) and incident.get("_id")
                        and incident.get("name") == body["incident_name"]
                        and _not_before(incident.get("datetime_open"), after)
                        and _has_message(incident, details, after)):
                    return ChannelResult.sent(incident["_id"],
                                              statusio_incident_id=incident["_id"])
            return None
        incident_id = body["incident_id"]
        result, failure = self._call("GET", f"incident/{self.statuspage_id}/{incident_id}")
        if failure:
            return failure
        incidents = result if isinstance(result, list) else [result]
        if any(isinstance(i, dict) and _has_message(i, details, after) for i in incidents):
            return ChannelResult.sent(incident_id)
        return None

    def read_incident(self, incident_id: str) -> tuple[dict[str, Any] | None, str | None]:
        """The incident as the public page has it: ({found, resolved, status, state,
        messages}, None), or (None, why it could not be read)."""
        result, failure = self._call("GET", f"incident/list/{self.statuspage_id}")
        if failure:
            return None, failure.error
        if not isinstance(result, dict):
            return None, "status.io incident list has an unexpected shape"
        for key, resolved in (("active_incidents", False), ("resolved_incidents", True)):
            for incident in result.get(key) or []:
                if isinstance(incident, dict) and incident.get("_id") == incident_id:
                    messages = [m for m in incident.get("messages") or [] if isinstance(m, dict)]
                    last = messages[-1] if messages else {}
                    return {"found": True, "resolved": resolved, "status": last.get("status"),
                            "state": last.get("state"), "messages": len(messages)}, None
        return {"found": False, "resolved": False, "status": None, "state": None,
                "messages": 0}, None

    def list_components(self) -> tuple[list[dict[str, Any]] | None, str | None]:
        """([{id, name, position, containers:[{id, name}]}], None) or (None, error)."""
        result, failure = self._call("GET", f"component/list/{self.statuspage_id}")
        if failure:
            return None, failure.error
        if not isinstance(result, list):
            return None, "status.io component list has an unexpected shape"
        components = []
        for item in result:
            if not isinstance(item, dict) or not item.get("_id") or not item.get("name"):
                continue
            containers = [{"id": c["_id"], "name": c.get("name", "")}
                          for c in item.get("containers") or [] if isinstance(c, dict)
                          and c.get("_id")]
            components.append({"id": item["_id"], "name": item["name"],
                               "position": int(item.get("position") or 0),
                               "containers": containers})
        return components, None


def _has_message(incident: dict, details: str, after: datetime | None) -> bool:
    return any(isinstance(m, dict) and m.get("details") == details
               and _not_before(m.get("datetime"), after)
               for m in incident.get("messages") or [])


def _not_before(value: Any, after: datetime | None) -> bool:
    """True when `value` (ISO-8601 text or epoch seconds) is at or after `after`, or either
    is missing or unreadable (then the text alone decides)."""
    if after is None or value is None:
        return True
    try:
        if isinstance(value, int | float):
            moment = datetime.fromtimestamp(value, UTC)
        else:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        return True
    return moment >= after


def _envelope_message(response: requests.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return ""
    if isinstance(data, dict) and isinstance(data.get("status"), dict):
        message = data["status"].get("message")
        return f": {message}" if message else ""
    return ""
