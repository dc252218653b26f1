"""Slack Web API chat.postMessage: first message notifies @advocates; later ones thread."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import requests

from cmoc.channels import ChannelResult, PostContext
from cmoc.channels.http import describe_network_error
from cmoc.channels.statusio import retry_after_seconds
from cmoc.enums import State, Status

EVENT_TYPE = "cmoc_update"
# Slack's words for "not done, try again" (nothing was posted) ...
RETRYABLE_ERRORS = {"ratelimited", "rate_limited", "service_unavailable", "request_timeout"}
# ... and for "it may have partly happened" (its docs: "some aspect of the operation succeeded").
UNKNOWN_ERRORS = {"internal_error", "fatal_error"}
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
MEMBER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
# Look for a message from a little before our first attempt (clock skew between us and Slack).
LOOKUP_WINDOW = timedelta(minutes=2)


def escape(text: str) -> str:
    """Slack mrkdwn control characters; user text is escaped before any mention is added."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def link(url: str, label: str) -> str:
    return f"<{escape(url).replace('|', '%7C')}|{escape(label)}>"


class Slack:
    name = "slack"

    def __init__(self, *, session: requests.Session, base_url: str, token: str | None,
                 channel: str | None, group_id: str | None):
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.channel = channel
        self.group_id = group_id
        self.channel_ids: dict[str, str] = {}  # names and member ids -> channel ids, for reads

    @property
    def configured(self) -> bool:
        return bool(self.token and self.channel)

    def build(self, ctx: PostContext) -> dict[str, Any]:
        body = escape(ctx.text)
        first = ctx.slack_thread_ts is None
        if first and self.group_id:
            # The real mention syntax: plain "@advocates" notifies nobody.
            body = f"<!subteam^{self.group_id}> {body}"
        facts = " · ".join([
            f"*{ctx.severity}*", State(ctx.state).label, Status(ctx.status).label,
            *([link(ctx.issue_url, "Incident issue")] if ctx.issue_url else []),
            link(ctx.status_page_url, "Status page"),
        ])
        payload: dict[str, Any] = {
            "channel": (ctx.slack_channel_id if not first else None) or self.channel
            or "<SLACK_ADVOCATES_CHANNEL>",
            "text": body,
            "blocks": [
                # verbatim: Slack must not turn a typed "@here" or "#channel" into a mention.
                {"type": "section", "text": {"type": "mrkdwn", "text": body, "verbatim": True}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": facts}]},
            ],
            "unfurl_links": False,
            "unfurl_media": False,
            "metadata": {"event_type": EVENT_TYPE,
                         "event_payload": {"update_id": ctx.update_id,
                                           "incident_id": ctx.incident_id}},
        }
        if not first:
            payload["thread_ts"] = ctx.slack_thread_ts
        return payload

    def _post(self, method: str, **kwargs) -> tuple[dict | None, ChannelResult | None]:
        try:
            response = self.session.post(f"{self.base_url}/{method}",
                                         headers={"Authorization": f"Bearer {self.token}"},
                                         **kwargs)
        except requests.RequestException as exc:
            message, safe = describe_network_error(exc, "Slack")
            return None, ChannelResult.failed(message, retryable=safe, outcome_unknown=not safe)
        if response.status_code == 429:
            return None, ChannelResult.failed("Slack rate limit (HTTP 429)", retryable=True,
                                              retry_after=retry_after_seconds(response))
        if response.status_code >= 500:
            # A gateway error may come after the message was stored: look before resending.
            return None, ChannelResult.failed(
                f"Slack server error (HTTP {response.status_code})", outcome_unknown=True,
                retry_after=retry_after_seconds(response))
        try:
            data = response.json()
        except ValueError:
            return None, ChannelResult.failed(
                f"Slack answered HTTP {response.status_code} with a body that is not JSON",
                outcome_unknown=response.status_code < 400)
        if not isinstance(data, dict) or not data.get("ok"):
            error = data.get("error") if isinstance(data, dict) else None
            error = error or f"HTTP {response.status_code}"
            hint = (" — check SLACK_BOT_TOKEN" if error in ("invalid_auth", "not_authed",
                                                           "account_inactive") else "")
            return None, ChannelResult.failed(f"Slack error: {error}{hint}",
                                              retryable=error in RETRYABLE_ERRORS,
                                              outcome_unknown=error in UNKNOWN_ERRORS)
        return data, None

    def send(self, payload: dict[str, Any]) -> ChannelResult:
        data, failure = self._post("chat.postMessage", json=payload)
        if failure:
            return failure
        ts = data.get("ts")
        if not ts:
            return ChannelResult.failed("Slack accepted the message but returned no ts",
                                        outcome_unknown=True)
        thread = {"slack_channel_id": data.get("channel") or payload["channel"]}
        if "thread_ts" not in payload:
            thread["slack_thread_ts"] = ts
        return ChannelResult.sent(ts, **thread)

    def find_existing(self, payload: dict[str, Any], *,
                      since: datetime | None = None) -> ChannelResult | None:
        """Finds an earlier post of this payload by its message metadata.

        Slack reads history by channel id only, so a channel name (or a member id, for a DM) is
        first turned into its id. None means "certainly not there"; a failed result means Slack
        could not be asked.
        """
        channel, failure = self.channel_id(payload["channel"])
        if failure:
            return failure
        params: dict[str, Any] = {"channel": channel, "limit": 200,
                                  "include_all_metadata": "true"}
        if since is not None:
            params["oldest"] = f"{(since - LOOKUP_WINDOW).timestamp():.6f}"
        method = "conversations.history"
        if payload.get("thread_ts"):
            method, params["ts"] = "conversations.replies", payload["thread_ts"]
        data, failure = self._post(method, data=params)
        if failure:
            return failure
        wanted = payload["metadata"]
        for message in data.get("messages") or []:
            meta = message.get("metadata") or {}
            if (meta.get("event_type") == wanted["event_type"]
                    and meta.get("event_payload") == wanted["event_payload"]):
                thread = {"slack_channel_id": channel}
                if "thread_ts" not in payload:
                    thread["slack_thread_ts"] = message["ts"]
                return ChannelResult.sent(message["ts"], **thread)
        return None

    def channel_id(self, target: str) -> tuple[str | None, ChannelResult | None]:
        """(channel id, None) for a channel id, name or member id, else (None, failure)."""
        if CHANNEL_ID.match(target):
            return target, None
        if target in self.channel_ids:
            return self.channel_ids[target], None
        if MEMBER_ID.match(target):
            data, failure = self._post("conversations.open", data={"users": target})
            if failure:
                return None, failure
            found = (data.get("channel") or {}).get("id")
        else:
            found, failure = self._find_channel(target.lstrip("#"))
            if failure:
                return None, failure
        if not found:
            return None, ChannelResult.failed(f"Slack has no channel {target} that cmoc can see")
        self.channel_ids[target] = found
        return found, None

    def _find_channel(self, name: str) -> tuple[str | None, ChannelResult | None]:
        cursor = ""
        for _ in range(50):  # 50 pages of 200: far more channels than a workspace has
            data, failure = self._post("conversations.list", data={
                "types": "public_channel,private_channel", "exclude_archived": "true",
                "limit": 200, **({"cursor": cursor} if cursor else {})})
            if failure:
                return None, failure
            for channel in data.get("channels") or []:
                if channel.get("name") == name:
                    return channel.get("id"), None
            cursor = (data.get("response_metadata") or {}).get("next_cursor") or ""
            if not cursor:
                break
        return None, None

    # -- interactivity (issue 15): editing a reminder in place, answering a click -----------
    def update_message(self, *, channel: str, ts: str, text: str,
                       blocks: list[dict[str, Any]] | None = None) -> ChannelResult:
        """chat.update: replaces a message the app posted (the reminder after an action)."""
        body: dict[str, Any] = {"channel": channel, "ts": ts, "text": text}
        if blocks is not None:
            body["blocks"] = blocks
        data, failure = self._post("chat.update", json=body)
        return failure or ChannelResult.sent(data.get("ts") or ts)

    def respond(self, response_url: str, body: dict[str, Any]) -> ChannelResult:
        """Posts to an interaction's response_url (ephemeral answers, replacing an ephemeral
        message). The URL carries its own authority: no token is sent."""
        try:
            response = self.session.post(response_url, json=body)
        except requests.RequestException as exc:
            return ChannelResult.failed(describe_network_error(exc, "Slack")[0])
        if response.status_code >= 400:
            return ChannelResult.failed(f"Slack response_url answered HTTP "
                                        f"{response.status_code}")
        return ChannelResult.sent("")

    def user_email(self, user_id: str) -> str | None:
        """users.info: the member's email (needs users:read.email), or None."""
        data, failure = self._post("users.info", data={"user": user_id})
        if failure:
            return None
        email = ((data.get("user") or {}).get("profile") or {}).get("email")
        return email if isinstance(email, str) and email else None
