"""HTTP API v1: JSON in and out, bearer tokens, OpenAPI 3.1 generated from the schemas."""

from __future__ import annotations

import json

from flask import Flask, g, jsonify, request
from flask_login import current_user
from pydantic import ValidationError as PydanticError
from spectree import SecurityScheme, SpecTree
from spectree.models import SecureType, SecuritySchemeData

from cmoc.enums import Role
from cmoc.timeutil import utcnow

API_PREFIX = "/api/v1"


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str,
                 fields: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields or {}


def _validation_hook(req, resp, req_validation_error, instance, model_adapter) -> None:
    """Turns spectree's request validation failure into our error shape (422, per field)."""
    if isinstance(req_validation_error, PydanticError):
        fields = {}
        for err in req_validation_error.errors():
            where = ".".join(str(p) for p in err["loc"]) or "body"
            fields.setdefault(where, err["msg"])
        raise ApiError(422, "validation_error", "The request has invalid fields.", fields)
    if req_validation_error is not None:
        raise ApiError(422, "validation_error", str(req_validation_error))


spec = SpecTree(
    # spectree skips routes under its own doc path, so it serves its copy at /apidoc and the
    # API serves the same document at /api/v1/openapi.json.
    "flask", title="cmoc API", version="1.0.0", path="apidoc", filename="openapi.json",
    mode="strict", page_templates={}, before=_validation_hook,
    # Plain schema names (IncidentOut, not IncidentOut.<hash>): ours are unique.
    naming_strategy=lambda model: model.__name__,
    nested_naming_strategy=lambda parent, child: child,
    description="Declare incidents, draft and publish updates, read incident state.",
    security_schemes=[SecurityScheme(name="bearer", data=SecuritySchemeData(
        type=SecureType.HTTP, scheme="bearer",
        description="An API token from `cmoc tokens create USERNAME`."))],
    security={"bearer": []},
)


def init_app(app: Flask) -> None:
    from cmoc.api import routes
    from cmoc.extensions import csrf

    csrf.exempt(routes.bp)
    app.register_blueprint(routes.bp)
    spec.register(app)
    app.before_request(_authenticate)
    app.register_error_handler(ApiError, _api_error)


def _authenticate():
    """Every /api/v1 call needs a bearer token (a signed-in browser may read, not write)."""
    if not request.path.startswith(API_PREFIX + "/"):
        return None
    from cmoc.services.tokens import authenticate_token

    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        user = authenticate_token(header[7:].strip(), now=utcnow())
        if user is None:
            raise ApiError(401, "unauthorized", "The bearer token is invalid or revoked.")
    elif current_user.is_authenticated and request.method in ("GET", "HEAD"):
        user = current_user._get_current_object()
    else:
        raise ApiError(401, "unauthorized", "Send Authorization: Bearer <token>.")
    g.api_user = user
    if request.method not in ("GET", "HEAD") and not user.can(Role.CMOC):
        raise ApiError(403, "forbidden", f"Role {user.role!r} can read but not write.")
    if request.method in ("POST", "PATCH", "PUT") and request.content_length != 0:
        if request.mimetype != "application/json":
            raise ApiError(400, "bad_request", "Send a JSON body (Content-Type: application/json).")
        try:
            json.loads(request.get_data(cache=True) or b"{}")
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, "malformed_json", f"The body is not valid JSON: {exc}") from None
    return None


def _api_error(error: ApiError):
    return jsonify(error={"code": error.code, "message": error.message,
                          "fields": error.fields}), error.status
