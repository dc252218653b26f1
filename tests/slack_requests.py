"""Requests as Slack sends them (signed), for the Slack actions tests.

Shapes from Slack's docs: a block_actions interaction is form-encoded as `payload=<json>`;
a slash command is form fields (team_id, user_id, command, text, response_url, trigger_id...).
Signature: `v0=` + HMAC-SHA256(signing secret, "v0:<timestamp>:<raw body>").
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlencode

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TEAM = "T0001TEAM"


def signed(body: str | bytes, *, secret: str = SECRET, at: float | None = None) -> dict:
    """Headers Slack would send with `body`."""
    stamp = str(int(time.time() if at is None else at))
    raw = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    digest = hmac.new(secret.encode(), f"v0:{stamp}:{raw}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}",
            "Content-Type": "application/x-www-form-urlencoded"}


def click_body(*, user: str, action_id: str, value: str | None, response_url: str,
               channel: str = "D0CAROL01", ts: str = "1795701600.000100",
               text: str = "reminder", ephemeral: bool = False) -> str:
    """A block_actions payload for one button click, form-encoded."""
    action: dict[str, Any] = {
        "action_id": action_id, "block_id": "cmoc_reminder_1", "type": "button",
        "text": {"type": "plain_text", "text": "Button", "emoji": True},
        "action_ts": f"{time.time():.6f}"}
    if value is not None:
        action["value"] = value
    payload = {
        "type": "block_actions", "team": {"id": TEAM, "domain": "example"},
        "user": {"id": user, "username": "someone", "name": "someone", "team_id": TEAM},
        "api_app_id": "A0001APP", "token": "legacy-verification-token",
        "container": {"type": "message", "message_ts": ts, "channel_id": channel,
                      "is_ephemeral": ephemeral},
        "trigger_id": "12345.98765.abcd2358fdea", "channel": {"id": channel,
                                                             "name": "directmessage"},
        "response_url": response_url, "actions": [action],
    }
    if not ephemeral:
        payload["message"] = {"type": "message", "user": "U0BOT", "ts": ts, "text": text,
                              "bot_id": "B0001"}
    return urlencode({"payload": json.dumps(payload)})


def command_body(*, user: str, text: str, response_url: str) -> str:
    """A /cmoc slash command, form-encoded."""
    return urlencode({
        "token": "legacy-verification-token", "team_id": TEAM, "team_domain": "example",
        "channel_id": "C0INCIDENT", "channel_name": "incident-management", "user_id": user,
        "user_name": "someone", "command": "/cmoc", "text": text, "api_app_id": "A0001APP",
        "is_enterprise_install": "false", "response_url": response_url,
        "trigger_id": "13345224609.738474920.8088930838d88f008e0"})


def post(client, path: str, body: str, **sign) -> Any:
    return client.post(path, data=body, headers=signed(body, **sign))
