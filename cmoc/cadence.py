"""The reminder cadence: minutes until the next update, by incident state and severity."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from cmoc.enums import Severity, State

CADENCE_STATES = (State.INVESTIGATING, State.IDENTIFIED, State.MONITORING)
MAX_MINUTES = 24 * 60


class ConfigError(Exception):
    """A configuration value is missing or invalid; the message names the file and line."""


@dataclass(frozen=True)
class Cadence:
    minutes: dict[tuple[State, Severity], int]

    def interval(self, state: State, severity: Severity) -> timedelta | None:
        """Returns the gap until the next update, or None once resolved."""
        if state is State.RESOLVED:
            return None
        return timedelta(minutes=self.minutes[(state, severity)])


def _line_of(source: str, state: str, severity: str | None) -> int | None:
    """Best-effort line number of cadence.<state>[.<severity>] in TOML text."""
    table = None
    fallback = None
    for number, line in enumerate(source.splitlines(), start=1):
        stripped = line.strip()
        header = re.match(r"^\[\s*([^\]]+?)\s*\]$", stripped)
        if header:
            table = header.group(1).replace(" ", "")
            if table == f"cadence.{state}":
                fallback = number
            continue
        key = stripped.split("=", 1)[0].strip() if "=" in stripped else None
        if table == f"cadence.{state}" and severity and key == severity:
            return number
        if table == "cadence" and key == state:
            return number
    return fallback


def parse_cadence(raw: object, *, source: str = "", origin: str = "config") -> Cadence:
    """Validates the [cadence] table and returns it; raises ConfigError naming the bad line."""

    def fail(message: str, state: str, severity: str | None = None) -> ConfigError:
        line = _line_of(source, state, severity)
        where = f"{origin} line {line}" if line else origin
        return ConfigError(f"{where}: {message}")

    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: [cadence] table is missing")
    known = {s.value for s in CADENCE_STATES}
    for key in raw:
        if key not in known:
            raise fail(
                f"unknown state 'cadence.{key}' (expected one of: {', '.join(sorted(known))})",
                key,
            )
    minutes: dict[tuple[State, Severity], int] = {}
    for state in CADENCE_STATES:
        row = raw.get(state.value)
        if not isinstance(row, dict):
            raise ConfigError(f"{origin}: cadence.{state.value} is missing")
        for key in row:
            if key not in Severity.__members__:
                raise fail(f"unknown severity 'cadence.{state.value}.{key}'", state.value, key)
        for severity in Severity:
            value = row.get(severity.value)
            name = f"cadence.{state.value}.{severity.value}"
            if value is None:
                raise fail(f"{name} is missing", state.value)
            if isinstance(value, bool) or not isinstance(value, int):
                raise fail(f"{name} must be a whole number of minutes (got {value!r})",
                           state.value, severity.value)
            if value <= 0 or value > MAX_MINUTES:
                raise fail(f"{name} must be between 1 and {MAX_MINUTES} minutes (got {value})",
                           state.value, severity.value)
            minutes[(state, severity)] = value
    return Cadence(minutes=minutes)


def next_update_due(
    *,
    cadence: Cadence,
    state: State,
    severity: Severity,
    last_published_at: datetime | None,
    declared_at: datetime,
    override_minutes: int | None = None,
) -> datetime | None:
    """When the next public update is due; immediately if nothing was published yet."""
    if state is State.RESOLVED:
        return None
    if last_published_at is None:
        return declared_at
    if override_minutes:
        return last_published_at + timedelta(minutes=override_minutes)
    return last_published_at + cadence.interval(state, severity)
