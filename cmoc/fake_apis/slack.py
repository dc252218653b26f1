"""Fake Slack Web API: post (threaded), read history and replies, list channels, open DMs.

Like Slack, it accepts a channel name or id when posting but only ids when reading
(`conversations.history` with a name is `channel_not_found`), answers HTTP 200 with
`ok:false` for logical errors, and returns message metadata only when asked for it.
"""

from __future__ import annotations

import zlib
from typing import Any

from werkzeug.wrappers import Request, Response

from cmoc.fake_apis.wire import Clock, answer, real_now

SLACK_TOKEN = "xoxb-fake-token"
WORKSPACE_URL = "https://fake-workspace.slack.com"
KNOWN_CHANNELS = ("community-advocates", "incident-management", "production",
                  "developer-relations", "customer-success", "cmoc-reminders")


def is_channel_id(value: str) -> bool:
    return value[:1] in ("C", "G", "D") and value.isupper() and value.isalnum()


def channel_id(name: str) -> str:
    """Slack answers with channel ids; a name maps to a stable fake id."""
    if is_channel_id(name):
        return name
    if name[:1] in ("U", "W") and name.isupper() and name.isalnum():
        return "D" + name[1:]  # posting to a member id lands in the app's DM with them
    return "C" + format(zlib.crc32(name.lstrip("#").encode()), "010d")


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1")


class FakeSlack:
    def __init__(self, lock, clock: Clock = real_now):
        self.lock = lock
        self.clock = clock
        self.messages: list[dict[str, Any]] = []
        self.channels: dict[str, str] = {channel_id(n): n for n in KNOWN_CHANNELS}
        # Workspace members users.info knows: {member id: email}.
        self.members: dict[str, str] = {}
        # What the app posted to interactions' response_url, oldest first.
        self.responses: list[dict[str, Any]] = []

    def handle(self, request: Request, path: str, body: Any) -> Response:
        if path.startswith("response/"):
            # An interaction's response_url (hooks.slack.com/actions/...): no token, its path
            # is the authority. Slack answers "ok"; a JSON body is what it takes.
            if not isinstance(body, dict) or not (body.get("text") or body.get("blocks")):
                return answer(400, {"ok": False, "error": "no_text"})
            with self.lock:
                self.responses.append({"url": path, **body})
            return answer(200, {"ok": True})
        if request.headers.get("Authorization") != f"Bearer {SLACK_TOKEN}":
            return answer(200, {"ok": False, "error": "invalid_auth"})
        method = path.removeprefix("api/")
        body = {**request.args.to_dict(), **(body or {})}
        handler = {
            "chat.postMessage": self._post, "conversations.history": self._history,
            "conversations.replies": self._history, "conversations.list": self._list,
            "conversations.open": self._open, "chat.getPermalink": self._permalink,
            "chat.update": self._update, "users.info": self._user_info,
        }.get(method)
        if handler is None:
            return answer(200, {"ok": False, "error": "unknown_method"})
        with self.lock:
            return handler(method, body)

    def _post(self, method: str, body: dict) -> Response:
        if not body.get("channel"):
            return answer(200, {"ok": False, "error": "channel_not_found"})
        if not body.get("text") and not body.get("blocks"):
            return answer(200, {"ok": False, "error": "no_text"})
        channel = channel_id(body["channel"])
        if channel.startswith("C"):
            self.channels.setdefault(channel, body["channel"].lstrip("#"))
        thread = body.get("thread_ts")
        if thread and not any(m["ts"] == thread and m["channel"] == channel
                              for m in self.messages):
            return answer(200, {"ok": False, "error": "thread_not_found"})
        ts = f"{self.clock().timestamp():.6f}"
        while any(m["ts"] == ts for m in self.messages):
            ts = f"{float(ts) + 0.000001:.6f}"
        self.messages.append({"ts": ts, "channel": channel, "posted_to": body["channel"],
                              "text": body.get("text"), "thread_ts": thread,
                              "blocks": body.get("blocks"), "metadata": body.get("metadata")})
        return answer(200, {"ok": True, "channel": channel, "ts": ts,
                            "message": {"text": body.get("text"), "ts": ts}})

    def _history(self, method: str, body: dict) -> Response:
        channel = body.get("channel", "")
        if not is_channel_id(channel):
            return answer(200, {"ok": False, "error": "channel_not_found"})
        found = [m for m in self.messages if m["channel"] == channel]
        if method == "conversations.replies":
            if not body.get("ts"):
                return answer(200, {"ok": False, "error": "thread_not_found"})
            found = [m for m in found if body["ts"] in (m["ts"], m["thread_ts"])]
        else:
            found = [m for m in found if not m["thread_ts"]]
        if body.get("oldest"):
            found = [m for m in found if float(m["ts"]) >= float(body["oldest"])]
        with_meta = _truthy(body.get("include_all_metadata"))
        messages = [{"type": "message", "ts": m["ts"], "text": m["text"],
                     **({"thread_ts": m["thread_ts"]} if m["thread_ts"] else {}),
                     **({"metadata": m["metadata"]} if with_meta and m["metadata"] else {})}
                    for m in reversed(found)]
        limit = int(body.get("limit") or 100)
        return answer(200, {"ok": True, "messages": messages[:limit],
                            "has_more": len(messages) > limit})

    def _list(self, method: str, body: dict) -> Response:
        rows = sorted(self.channels.items(), key=lambda item: item[1])
        start = int(body.get("cursor") or 0)
        limit = max(1, min(int(body.get("limit") or 100), 1000))
        page = rows[start:start + limit]
        cursor = str(start + limit) if start + limit < len(rows) else ""
        return answer(200, {"ok": True, "channels": [
            {"id": cid, "name": name, "is_channel": True, "is_archived": False}
            for cid, name in page], "response_metadata": {"next_cursor": cursor}})

    def _open(self, method: str, body: dict) -> Response:
        users = str(body.get("users") or "")
        if not users or users[:1] not in ("U", "W"):
            return answer(200, {"ok": False, "error": "user_not_found"})
        return answer(200, {"ok": True, "channel": {"id": channel_id(users.split(",")[0])}})

    def _permalink(self, method: str, body: dict) -> Response:
        channel, ts = body.get("channel", ""), body.get("message_ts", "")
        if not any(m["channel"] == channel and m["ts"] == ts for m in self.messages):
            return answer(200, {"ok": False, "error": "message_not_found"})
        return answer(200, {"ok": True, "channel": channel,
                            "permalink": f"{WORKSPACE_URL}/archives/{channel}/p"
                                         + ts.replace(".", "")})

    def _update(self, method: str, body: dict) -> Response:
        """chat.update: only by channel id and ts of a message the app posted."""
        channel, ts = str(body.get("channel") or ""), str(body.get("ts") or "")
        if not is_channel_id(channel):
            return answer(200, {"ok": False, "error": "channel_not_found"})
        if not body.get("text") and not body.get("blocks"):
            return answer(200, {"ok": False, "error": "no_text"})
        found = next((m for m in self.messages if m["channel"] == channel and m["ts"] == ts),
                     None)
        if found is None:
            return answer(200, {"ok": False, "error": "message_not_found"})
        found["text"] = body.get("text")
        found["blocks"] = body.get("blocks")
        found["edited"] = found.get("edited", 0) + 1
        return answer(200, {"ok": True, "channel": channel, "ts": ts, "text": body.get("text"),
                            "message": {"text": body.get("text"), "ts": ts}})

    def _user_info(self, method: str, body: dict) -> Response:
        user = str(body.get("user") or "")
        if user not in self.members:
            return answer(200, {"ok": False, "error": "user_not_found"})
        return answer(200, {"ok": True, "user": {
            "id": user, "name": self.members[user].split("@")[0], "deleted": False,
            "profile": {"email": self.members[user]}}})
