"""API v1 routes: each parses its validated body, calls one service, serialises the result."""

from __future__ import annotations

from flask import Blueprint, current_app, g, render_template, request
from spectree import Response
from sqlalchemy import select

from cmoc.api import ApiError, spec
from cmoc.api.schemas import (
    ErrorOut,
    IncidentCreate,
    IncidentList,
    IncidentOut,
    IncidentPatch,
    IncidentQuery,
    RetryRequest,
    UpdateCreate,
    UpdateOut,
)
from cmoc.api.serialize import incident_out, incident_summary, update_out
from cmoc.api.slack_spec import with_slack
from cmoc.enums import CHANNELS
from cmoc.extensions import db
from cmoc.models import Incident, Update
from cmoc.services import ValidationError
from cmoc.services.components import component_catalog
from cmoc.services.delivering import start_background
from cmoc.services.drafts import (
    AlreadyPublished,
    DraftInput,
    DraftSettings,
    find_by_key,
    save_draft,
)
from cmoc.services.gitlab_issues import api_fields_from_issue
from cmoc.services.incidents import (
    IncidentFields,
    IncidentResolved,
    declare_incident,
    edit_incident,
    list_incidents,
)
from cmoc.services.publishing import PublishConflict, retry_deliveries, start_publish
from cmoc.timeutil import utcnow

bp = Blueprint("api", __name__, url_prefix="/api/v1")
# What each error status means; every error body is an ErrorOut. Each route lists only the
# statuses it can return, so the document (and /api/v1/docs) does not promise others.
ERROR_MEANINGS = {
    400: "The body is not JSON (`Content-Type: application/json`) or not valid JSON.",
    401: "No bearer token, or the token is invalid or revoked.",
    403: "The token's role may read but not write (a `viewer`).",
    404: "No such incident, or no such update on it.",
    409: "The incident is resolved, the state change is not allowed, or a publish is in "
         "progress.",
    413: "The body is over 256 KiB.",
    422: "Invalid fields: `fields` names each one.",
}


def errors(*codes: int, conflict: str | None = None) -> dict[str, tuple[type, str]]:
    """spectree responses for these error statuses, with what they mean for this route."""
    meanings = {**ERROR_MEANINGS, **({409: conflict} if conflict else {})}
    return {f"HTTP_{code}": (ErrorOut, meanings[code]) for code in codes}


WRITE_ERRORS = (400, 401, 403, 404, 409, 413, 422)


def _incident(incident_id: int) -> Incident:
    incident = db.session.get(Incident, incident_id)
    if incident is None:
        raise ApiError(404, "not_found", f"No incident {incident_id}.")
    return incident


def _components() -> list[str]:
    return [c["name"] for c in component_catalog(current_app.config)]


def _invalid(exc: ValidationError) -> ApiError:
    return ApiError(422, "validation_error", "The request has invalid fields.", exc.errors)


@bp.post("/incidents")
@spec.validate(json=IncidentCreate,
               resp=Response(HTTP_201=IncidentOut, **errors(400, 401, 403, 413, 422)),
               tags=["incidents"])
def create_incident():
    """Declare an incident (state Investigating; its first update is due at once).

    With `issue`, the fields not given are read from the GitLab incident issue."""
    body: IncidentCreate = request.context.json
    try:
        fields = api_fields_from_issue(body.model_dump(), config=current_app.config,
                                       component_names=_components())
        incident = declare_incident(
            fields=IncidentFields(title=fields["title"], severity=fields["severity"],
                                  status=fields["status"], components=fields["components"],
                                  issue_url=fields["issue_url"] or "",
                                  slack_channel=fields["slack_channel"] or ""),
            author=g.api_user, component_names=_components(),
            title_max=current_app.config["TITLE_MAX_LENGTH"], now=utcnow(),
            require_issue_url=False, gitlab_issue=fields["gitlab_issue"])
    except ValidationError as exc:
        raise _invalid(exc) from None
    return incident_out(incident), 201


@bp.get("/incidents")
@spec.validate(query=IncidentQuery, resp=Response(HTTP_200=IncidentList, **errors(401, 422)),
               tags=["incidents"])
def get_incidents():
    """List incidents: active (most urgent first), resolved (newest first) or all."""
    query: IncidentQuery = request.context.query
    rows = []
    if query.state in ("active", "all"):
        rows += list_incidents(active=True, limit=query.limit)
    if query.state in ("resolved", "all"):
        rows += list_incidents(active=False, limit=query.limit)
    return {"incidents": [incident_summary(i) for i in rows[:query.limit]]}


@bp.get("/incidents/<int:incident_id>")
# Nothing to validate here, so no 422: point spectree's own validation status at the 404.
@spec.validate(resp=Response(HTTP_200=IncidentOut, **errors(401, 404)), tags=["incidents"],
               validation_error_status=404)
def get_incident(incident_id: int):
    """One incident with every update (drafts included) and each update's deliveries."""
    return incident_out(_incident(incident_id))


@bp.patch("/incidents/<int:incident_id>")
@spec.validate(json=IncidentPatch, resp=Response(
    HTTP_200=IncidentOut, **errors(*WRITE_ERRORS, conflict="The incident is resolved.")),
               tags=["incidents"])
def patch_incident(incident_id: int):
    """Change title, severity, status or components; a severity change moves the due time."""
    incident = _incident(incident_id)
    body: IncidentPatch = request.context.json
    try:
        edit_incident(
            incident=incident,
            fields=IncidentFields(
                title=body.title if body.title is not None else incident.title,
                severity=body.severity or incident.severity,
                status=body.status or incident.status,
                components=body.components if body.components is not None
                else incident.components,
                issue_url=incident.issue_url or "", slack_channel=incident.slack_channel or ""),
            component_names=_components(), title_max=current_app.config["TITLE_MAX_LENGTH"],
            cadence=current_app.config["CADENCE_MATRIX"], now=utcnow(), require_issue_url=False,
            actor=g.api_user)
    except IncidentResolved as exc:
        raise ApiError(409, "incident_resolved", str(exc)) from None
    except ValidationError as exc:
        raise _invalid(exc) from None
    return incident_out(incident)


@bp.post("/incidents/<int:incident_id>/updates")
@spec.validate(json=UpdateCreate,
               resp=Response(HTTP_200=UpdateOut, HTTP_201=UpdateOut, **errors(
                   *WRITE_ERRORS, conflict="The incident is resolved, the state change is "
                   "not allowed, the `idempotency_key` belongs to another incident, or a "
                   "publish is in progress.")),
               tags=["updates"])
def create_update(incident_id: int):
    """Draft an update and, with `publish`, send it to the chosen channels (all by default).

    Texts not given are rendered from the template. The same `idempotency_key` returns the same
    update and sends nothing again."""
    incident = _incident(incident_id)
    body: UpdateCreate = request.context.json
    if body.idempotency_key:
        try:
            existing = find_by_key(incident=incident, key=body.idempotency_key)
        except ValidationError as exc:
            raise ApiError(409, "idempotency_conflict", exc.errors["idempotency_key"]) from None
        if existing is not None and not existing.is_draft:
            return update_out(existing), 200
    if incident.is_resolved:
        raise ApiError(409, "incident_resolved",
                       "This incident is resolved: nothing can be published after Resolved.")
    texts = body.texts.model_dump(exclude_none=True) if body.texts else {}
    channels = set(body.channels or CHANNELS)
    notify = body.notify.model_dump(exclude_none=True) if body.notify else None
    draft = DraftInput(
        state=body.state, status=body.status or "", template=body.template or "",
        variables=dict(body.variables), texts=texts, edited=set(texts),
        next_update_minutes=str(body.next_update_in_minutes or ""),
        idempotency_key=body.idempotency_key or "", channels=channels, notify=notify)
    settings = DraftSettings.from_app(current_app)
    try:
        update = save_draft(incident=incident, draft=draft, author=g.api_user,
                            settings=settings, now=utcnow())
    except AlreadyPublished as exc:
        return update_out(exc.update), 200
    except ValidationError as exc:
        if "state" in exc.errors:
            raise ApiError(409, "illegal_transition", exc.errors["state"], exc.errors) from None
        raise _invalid(exc) from None
    if body.publish:
        _publish(update, channels, body.confirm_public, settings)
    return update_out(update), 201


def _publish(update: Update, channels: set[str], confirm_public: bool,
             settings: DraftSettings) -> None:
    try:
        start_publish(update=update, channels=channels, confirm_public=confirm_public,
                      actor=g.api_user, cadence=settings.cadence, now=utcnow(),
                      markers=settings.markers)
    except ValidationError as exc:
        raise ApiError(422, "cannot_publish", "The update was saved as a draft but not "
                       "published.", exc.errors) from None
    except PublishConflict as exc:
        raise ApiError(409, "publish_conflict", str(exc)) from None
    start_background(current_app._get_current_object(), update.id,
                     wait_seconds=current_app.config.get("PUBLISH_WAIT_SECONDS", 8))
    db.session.expire_all()


@bp.post("/incidents/<int:incident_id>/updates/<int:update_id>/retry")
@spec.validate(json=RetryRequest, resp=Response(HTTP_200=UpdateOut, **errors(
    *WRITE_ERRORS, conflict="Nothing to retry (no failed channel), or a publish is in "
    "progress.")),
               tags=["updates"])
def retry_update(incident_id: int, update_id: int):
    """Send the failed channels of an update again; channels already sent are never touched."""
    incident = _incident(incident_id)
    update = db.session.scalar(select(Update).where(Update.id == update_id,
                                                    Update.incident_id == incident.id))
    if update is None:
        raise ApiError(404, "not_found", f"No update {update_id} on incident {incident_id}.")
    body: RetryRequest = request.context.json
    try:
        retry_deliveries(update=update, channels=set(body.channels or []), now=utcnow(),
                         actor=g.api_user)
    except ValidationError as exc:
        raise ApiError(409, "nothing_to_retry", " ".join(exc.errors.values())) from None
    except PublishConflict as exc:
        raise ApiError(409, "publish_conflict", str(exc)) from None
    start_background(current_app._get_current_object(), update.id,
                     wait_seconds=current_app.config.get("PUBLISH_WAIT_SECONDS", 8))
    db.session.expire_all()
    return update_out(update)


@bp.get("/openapi.json")
def openapi_document():
    """The OpenAPI 3.1 document, generated from the route decorators and schemas, plus the
    Slack endpoints (signed by Slack, not token-authenticated)."""
    return with_slack(spec.spec)


@bp.get("/docs")
def docs():
    """A readable page of the OpenAPI document (no external scripts)."""
    return render_template("api_docs.html", spec=with_slack(spec.spec))
