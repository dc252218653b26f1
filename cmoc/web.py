"""Wires the web layer: view blueprint, template helpers, security headers, error pages."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Flask, current_app, g, jsonify, render_template, request
from flask.json.provider import DefaultJSONProvider
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from cmoc.enums import CHANNEL_LABELS, Role, Severity, State, Status
from cmoc.timeutil import fmt_duration, fmt_utc, utcnow

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; "
       "object-src 'none'")
# Browser features cmoc never uses, off for its pages and anything they could embed.
PERMISSIONS_POLICY = ("accelerometer=(), camera=(), geolocation=(), gyroscope=(), "
                      "magnetometer=(), microphone=(), payment=(), usb=()")


class UTCJSONProvider(DefaultJSONProvider):
    """JSON with ISO-8601 UTC timestamps (2026-11-26T14:30:00Z), not HTTP dates."""

    @staticmethod
    def default(o):
        if isinstance(o, datetime):
            return o.astimezone(UTC).isoformat().replace("+00:00", "Z")
        return DefaultJSONProvider.default(o)


def init_app(app: Flask) -> None:
    from cmoc import input_guard
    from cmoc.views import display, load_views

    # First: the id converter must be in place before any blueprint adds its rules.
    input_guard.init_app(app)
    app.json = UTCJSONProvider(app)
    app.register_blueprint(load_views())
    app.jinja_env.filters["utc"] = fmt_utc
    app.jinja_env.filters["hhmm"] = lambda v: fmt_utc(v, with_date=False)
    app.jinja_env.globals.update(
        Role=Role, State=State, Status=Status, Severity=Severity, CHANNEL_LABELS=CHANNEL_LABELS,
        ago=_ago, until=_until,
    )
    display.register(app)
    app.after_request(_security_headers)
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)


def _ago(value: datetime | None, now: datetime | None = None) -> str:
    if value is None:
        return "never"
    return fmt_duration(((now or utcnow()) - value).total_seconds()) + " ago"


def _until(value: datetime | None, now: datetime | None = None) -> str:
    if value is None:
        return "—"
    seconds = (value - (now or utcnow())).total_seconds()
    return ("in " + fmt_duration(seconds)) if seconds >= 0 else (fmt_duration(seconds) + " overdue")


def _security_headers(response):
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
    if current_app.config.get("SESSION_COOKIE_SECURE"):
        response.headers.setdefault("Strict-Transport-Security",
                                    "max-age=31536000; includeSubDomains")
    if request.endpoint != "static":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _wants_json() -> bool:
    return (request.is_json or request.accept_mimetypes.best == "application/json"
            or request.path.endswith("/preview") or request.path.startswith("/api/"))


def _refusal(action: str, **detail) -> None:
    """Audits a refused request (who, from where, what they tried); see refusals.py for
    clients that are not signed in."""
    from flask_login import current_user

    from cmoc.extensions import db
    from cmoc.services.audit import record_now

    db.session.rollback()
    # A signed-in browser, or an API call whose bearer token was accepted.
    actor = (current_user._get_current_object() if current_user.is_authenticated
             else g.get("api_user"))
    if actor is None:
        # Anyone can send these: counted and summarised, not one permanent row each.
        from cmoc.services.refusals import note_refusal, summary_interval

        note_refusal(kind=action, detail=detail, now=utcnow(),
                     interval=summary_interval(current_app.config))
        return
    record_now(action, actor=actor,
               after={"method": request.method, "path": request.path[:200], **detail})


def _csrf_error(error: CSRFError):
    message = "The form expired or was sent from elsewhere (CSRF check failed). Reload and retry."
    _refusal("security.csrf_refused")
    if _wants_json():
        return jsonify(error={"code": "csrf", "message": message, "fields": {}}), 400
    return render_template("error.html", code=400, message=message), 400


def _http_error(error: HTTPException):
    if error.code and error.code >= 500:
        current_app.logger.error("HTTP %s on %s", error.code, request.path)
    elif error.code in (403, 413):
        _refusal("security.forbidden" if error.code == 403 else "security.too_large")
    message = {
        403: "Your role does not allow this. Ask an admin for the cmoc role.",
        404: "Not found.",
        405: "That action is not allowed here.",
        413: "The request is too large.",
    }.get(error.code, error.description)
    if _wants_json():
        code = (error.name or str(error.code)).lower().replace(" ", "_")
        return jsonify(error={"code": code, "message": message, "fields": {}}), error.code
    return render_template("error.html", code=error.code, message=message), error.code
