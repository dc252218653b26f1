"""Next-update due times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cmoc import create_app
from cmoc.cadence import next_update_due
from cmoc.enums import Severity, State

NOW = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)
CADENCE = create_app({"SECRET_KEY": "k", "DATABASE_URL": "sqlite://"}).config["CADENCE_MATRIX"]


def due(state, severity, last=NOW, override=None):
    return next_update_due(cadence=CADENCE, state=state, severity=severity,
                           last_published_at=last, declared_at=NOW - timedelta(hours=1),
                           override_minutes=override)


def test_cadence_by_state_and_severity():
    assert due(State.INVESTIGATING, Severity.S1) == NOW + timedelta(minutes=10)
    assert due(State.IDENTIFIED, Severity.S2) == NOW + timedelta(minutes=30)
    assert due(State.MONITORING, Severity.S4) == NOW + timedelta(minutes=60)


def test_nothing_published_is_due_at_declaration():
    assert due(State.INVESTIGATING, Severity.S3, last=None) == NOW - timedelta(hours=1)


def test_override_and_resolved():
    assert due(State.MONITORING, Severity.S1, override=45) == NOW + timedelta(minutes=45)
    assert due(State.RESOLVED, Severity.S1) is None
