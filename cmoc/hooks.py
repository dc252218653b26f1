"""Inbound webhooks: `POST /hooks/gitlab`. Not a browser request: no session, no CSRF token,
no sign-in — GitLab proves itself with the webhook's secret token instead.

A refusal answers 401 and is counted in /metrics, not audited one by one (anyone on the
network can send them; the counter shows a flood without filling the audit log).
"""

from __future__ import annotations

import logging
import threading

from flask import Blueprint, Flask, current_app, jsonify, request

from cmoc.extensions import csrf, db
from cmoc.gitlab_settings import gitlab_settings
from cmoc.services.components import component_catalog
from cmoc.services.gitlab_hooks import count, receive, token_ok
from cmoc.services.notices import send_notices
from cmoc.timeutil import utcnow

log = logging.getLogger(__name__)
bp = Blueprint("hooks", __name__, url_prefix="/hooks")
# An incident issue's description can be long; GitLab sends it whole in every event.
HOOK_MAX_BYTES = 4 * 1024 * 1024


@bp.post("/gitlab")
def gitlab():
    """A GitLab "Issues events" delivery."""
    settings = gitlab_settings(current_app.config)
    if not token_ok(sent=request.headers.get("X-Gitlab-Token"),
                    secret=settings.webhook_secret):
        db.session.rollback()
        count("refused")
        return jsonify(error={"code": "unauthorized", "message": "Bad or missing X-Gitlab-Token.",
                              "fields": {}}), 401
    request.max_content_length = HOOK_MAX_BYTES   # only once the sender is known
    result = receive(headers=dict(request.headers), payload=request.get_json(silent=True),
                     config=current_app.config,
                     component_names=[c["name"] for c in component_catalog(current_app.config)],
                     now=utcnow())
    if result.notice_ids:
        # Answer GitLab now; the Slack pings go out right after (the clock retries them).
        threading.Thread(target=_send, args=(current_app._get_current_object(),
                                             result.notice_ids), daemon=True,
                         name="gitlab-ping").start()
    body = {"outcome": result.outcome, "message": result.message,
            "incident_id": result.incident_id}
    return jsonify(body), result.status


def _send(app: Flask, ids: list[int]) -> None:
    try:
        send_notices(app, only=ids)
    except Exception:   # the clock's send-notices pass picks them up
        log.exception("gitlab ping %s not sent now", ids)


def init_app(app: Flask) -> None:
    csrf.exempt(bp)
    app.register_blueprint(bp)
