"""Slack targets (a channel or a DM) that answered 429: left alone for their Retry-After.

Kept on the app, so the clock's next passes honour a hold too; timed on the passes' clock (a
pass's `now` moved on by its duration), so tests with a simulated clock see the same.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from flask import Flask

# A Retry-After longer than this (a proxy's hours) would silence escalations: capped.
MAX_HOLD_SECONDS = 120.0


class HoldOff:
    """Targets Slack asked us to leave alone (429 with Retry-After), on the passes' clock (a
    pass's `now`), kept on the app so the clock's next passes honour it too."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._until: dict[str, datetime] = {}

    def left(self, target: str, now: datetime) -> float:
        with self._lock:
            until = self._until.get(target)
        return max(0.0, (until - now).total_seconds()) if until else 0.0

    def hold(self, target: str, now: datetime, seconds: float) -> None:
        with self._lock:
            until = now + timedelta(seconds=min(seconds, MAX_HOLD_SECONDS))
            self._until = {t: u for t, u in self._until.items() if u > now}
            self._until[target] = max(until, self._until.get(target, until))


def holds(app: Flask) -> HoldOff:
    """The app's holds (one per process: the clock's passes share them)."""
    return app.extensions.setdefault("cmoc_reminder_holds", HoldOff())
