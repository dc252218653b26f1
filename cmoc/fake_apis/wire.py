"""Answers of the fake APIs: JSON or text bodies, and a connection that breaks mid-answer."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from werkzeug.wrappers import Response

# The fakes' sense of time: real time, or a test's simulated clock.
Clock = Callable[[], datetime]


def answer(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    if isinstance(body, dict | list):
        return Response(json.dumps(body), status=status, headers=headers,
                        content_type="application/json")
    return Response(body or "", status=status, headers=headers, content_type="text/plain")


def dropped(start_response):
    """Promises more bytes than it sends: the client sees the connection break mid-answer."""
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "4096")])
    return [b'{"ok": tr']


def real_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds and Z, as status.io and X write timestamps."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
