"""Slack's requests: button clicks (Interactivity URL /slack/actions) and the /cmoc slash
command (/slack/commands). Authenticated by Slack's signature, not the session (so public
endpoints, exempt from CSRF); anything unsigned, stale or malformed is refused before it is
read."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs

from flask import Response, abort, current_app, jsonify, request
from slack_sdk.signature import SignatureVerifier

from cmoc.extensions import csrf
from cmoc.services.slack_interact import Reply, answer_click, answer_command
from cmoc.timeutil import utcnow
from cmoc.views import bp

MAX_FIELD = 3000
CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")
MEMBER_ID = re.compile(r"^[UW][A-Z0-9]{2,31}$")


def _signed_form() -> dict[str, str]:
    """The form of a request Slack signed in the last 5 minutes; aborts otherwise.

    `v0=HMAC-SHA256(secret, "v0:<timestamp>:<raw body>")` with slack_sdk's verifier; the
    header values are checked first so odd bytes are a 401, never an exception."""
    secret = current_app.config.get("SLACK_SIGNING_SECRET")
    if not secret:
        abort(404)  # Slack actions are off until the signing secret is set
    raw = request.get_data(cache=False)
    stamp = request.headers.get("X-Slack-Request-Timestamp", "")
    signature = request.headers.get("X-Slack-Signature", "")
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError:
        abort(400)
    if (not (stamp.isascii() and stamp.isdigit() and len(stamp) < 12)
            or not signature.isascii()
            or not SignatureVerifier(secret).is_valid(body=body, timestamp=stamp,
                                                      signature=signature)):
        current_app.logger.warning("Slack request refused: bad or stale signature")
        abort(401)
    try:
        form = parse_qs(body, keep_blank_values=True, max_num_fields=50)
    except ValueError:
        abort(400)
    return {k: v[0] for k, v in form.items() if v}


def _text(value: Any, limit: int = MAX_FIELD) -> str:
    """A string field, cut to `limit`, without control characters (a NUL never reaches the
    database, whatever Slack relays)."""
    if not isinstance(value, str):
        return ""
    return CONTROL.sub("", value[:limit])


@bp.post("/slack/actions")
@csrf.exempt
def slack_actions():
    """A block_actions payload (form field `payload`, JSON). Answered at once with 200."""
    form = _signed_form()
    try:
        payload = json.loads(form.get("payload", ""))
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        abort(400)
    if not isinstance(payload, dict):
        abort(400)
    if payload.get("type") != "block_actions":
        return Response(status=200)  # other interaction types are not used by cmoc
    user = payload.get("user") if isinstance(payload.get("user"), dict) else {}
    actions = payload.get("actions") if isinstance(payload.get("actions"), list) else []
    action = actions[0] if actions and isinstance(actions[0], dict) else {}
    container = payload.get("container") if isinstance(payload.get("container"), dict) else {}
    message = payload.get("message") if isinstance(payload.get("message"), dict) else {}
    slack_user = _text(user.get("id"), 32)
    if not MEMBER_ID.fullmatch(slack_user):
        abort(400)
    reply = Reply(channel=_text(container.get("channel_id"), 32) or None,
                  ts=_text(container.get("message_ts"), 32) or None,
                  response_url=_text(payload.get("response_url"), 500) or None,
                  text=_text(message.get("text")),
                  ephemeral=container.get("is_ephemeral") is True or not message)
    answer_click(current_app._get_current_object(), slack_user_id=slack_user,
                 action_id=_text(action.get("action_id"), 64), value=action.get("value"),
                 reply=reply, now=utcnow())
    return Response(status=200)


@bp.post("/slack/commands")
@csrf.exempt
def slack_commands():
    """`/cmoc <status|update|nmu> ...`: the ephemeral answer is the response body."""
    form = _signed_form()
    slack_user = _text(form.get("user_id"), 32)
    if not MEMBER_ID.fullmatch(slack_user):
        abort(400)
    return jsonify(answer_command(current_app._get_current_object(), slack_user_id=slack_user,
                                  text=_text(form.get("text"), 500), now=utcnow()))
