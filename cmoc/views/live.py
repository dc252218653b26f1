"""The cheap endpoints live pages poll: a version per page, 304 Not Modified when unchanged."""

from __future__ import annotations

from flask import abort, jsonify, request

from cmoc.services.live import dashboard_version, incident_version
from cmoc.views import bp


def _versioned(version: str):
    etag = f'"{version}"'
    if etag in request.headers.get("If-None-Match", ""):
        response = jsonify()
        response.status_code = 304
        response.set_data(b"")
    else:
        response = jsonify(version=version)
    response.headers["ETag"] = etag
    return response


@bp.get("/live/dashboard")
def live_dashboard():
    return _versioned(dashboard_version())


@bp.get("/incidents/<int:incident_id>/live")
def live_incident(incident_id: int):
    version = incident_version(incident_id)
    if version is None:
        abort(404)
    return _versioned(version)
