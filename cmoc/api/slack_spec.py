"""The Slack endpoints in the OpenAPI document. They are not part of the token API (Slack
calls them, signed with SLACK_SIGNING_SECRET, form-encoded), so spectree does not generate them;
they are described here by hand and added to the served document."""

from __future__ import annotations

from typing import Any

SIGNED = [{"slackSignature": []}]
_HEADERS = [
    {"name": "X-Slack-Request-Timestamp", "in": "header", "required": True,
     "description": "Unix time of the request; refused when older than 5 minutes.",
     "schema": {"type": "string", "pattern": "^[0-9]{1,12}$"}},
]
_REFUSED = {
    "401": {"description": "Signature missing, wrong, or timestamp older than 5 minutes."},
    "400": {"description": "Not a Slack request shape (no valid member id or payload)."},
    "404": {"description": "Slack actions are off (no SLACK_SIGNING_SECRET)."},
}

PATHS: dict[str, Any] = {
    "/slack/actions": {"post": {
        "tags": ["Slack"], "operationId": "slack_actions", "security": SIGNED,
        "summary": "A button clicked on a reminder or a /cmoc answer (Block Kit block_actions).",
        "description": "Answered at once with an empty 200; the action (open draft, post "
                       "\"no material updates\", snooze 10 min, take over) runs after the "
                       "answer, once per message whoever clicks, and the message is updated "
                       "in place. Only active cmoc users with the CMOC role may act (by Slack "
                       "member id on their profile, else by the email Slack has for them).",
        "parameters": _HEADERS,
        "requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {
            "schema": {"type": "object", "required": ["payload"], "properties": {
                "payload": {"type": "string",
                            "description": "Slack's interaction payload, JSON: type "
                                           "block_actions, user.id, actions[0].action_id and "
                                           "value, container, response_url."}}}}}},
        "responses": {"200": {"description": "Acknowledged (the result follows in Slack)."},
                      **_REFUSED}}},
    "/slack/commands": {"post": {
        "tags": ["Slack"], "operationId": "slack_commands", "security": SIGNED,
        "summary": "The /cmoc slash command: status, update <id>, nmu <id> [what is happening].",
        "parameters": _HEADERS,
        "requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {
            "schema": {"type": "object", "required": ["user_id", "command"], "properties": {
                "user_id": {"type": "string", "pattern": "^[UW][A-Z0-9]{2,30}$"},
                "command": {"type": "string", "example": "/cmoc"},
                "text": {"type": "string", "maxLength": 500,
                         "example": "nmu 42 The team is still investigating."},
                "response_url": {"type": "string", "format": "uri"},
                "team_id": {"type": "string"}, "trigger_id": {"type": "string"}}}}}},
        "responses": {"200": {"description": "The ephemeral answer (Slack message JSON).",
                              "content": {"application/json": {"schema": {
                                  "type": "object", "properties": {
                                      "response_type": {"const": "ephemeral"},
                                      "text": {"type": "string"},
                                      "blocks": {"type": "array"}}}}}},
                      **_REFUSED}}},
}

SCHEME = {"type": "apiKey", "in": "header", "name": "X-Slack-Signature",
          "description": "v0=HMAC-SHA256(SLACK_SIGNING_SECRET, 'v0:' + timestamp + ':' + "
                         "raw body), hex; checked with slack_sdk's SignatureVerifier."}


def with_slack(document: dict[str, Any]) -> dict[str, Any]:
    """The API document plus the Slack endpoints (a new dict: spectree's copy is untouched)."""
    components = dict(document.get("components") or {})
    components["securitySchemes"] = {**(components.get("securitySchemes") or {}),
                                     "slackSignature": SCHEME}
    return {**document, "paths": {**document.get("paths", {}), **PATHS},
            "components": components}
