"""Cleaning the parts of a draft that are not text: state, status, channels, subscriber flags."""

from __future__ import annotations

from cmoc.enums import ACTIVE_STATUSES, CHANNELS, PUBLIC_CHANNELS, DeliveryStatus, State, Status
from cmoc.models import Incident
from cmoc.services.subscribers import NOTIFY_FLAGS


def allowed_states(current: State) -> list[State]:
    """Forward only: same state (a progress update) or later; nothing after Resolved."""
    if current is State.RESOLVED:
        return []
    return [s for s in State if s.order >= current.order]


def clean_channels(raw: set[str] | None, errors: dict[str, str]) -> set[str]:
    if raw is None:
        return set(CHANNELS)
    unknown = set(raw) - set(CHANNELS)
    if unknown:
        errors["channels"] = "Unknown channel: " + ", ".join(sorted(unknown))
    return set(raw) & set(CHANNELS)


def clean_notify(raw: dict[str, bool] | None, default: dict[str, bool]) -> dict[str, bool]:
    if raw is None:
        return dict(default)
    return {flag: bool(raw.get(flag, default[flag])) for flag in NOTIFY_FLAGS}


def published_in(incident: Incident, state: State) -> bool:
    """Whether the incident already told the public something in this state (a follow-up is
    next); a Slack-only update told nobody outside."""
    return any(u.state == state.value and u.published_at is not None
               and any(d.channel in PUBLIC_CHANNELS and d.status != DeliveryStatus.SKIPPED.value
                       for d in u.deliveries)
               for u in incident.updates)


def clean_status(raw: str, *, state: State | None, incident: Incident,
                 errors: dict[str, str]) -> Status | None:
    if state is State.RESOLVED:
        # Resolving always returns every component to Operational (handbook "Resolve").
        return Status.OPERATIONAL
    if not raw:
        return incident.status_enum
    try:
        status = Status(raw)
    except ValueError:
        errors["status"] = "Unknown status."
        return None
    if status not in ACTIVE_STATUSES:
        errors["status"] = "Operational comes with Resolved; keep the status while monitoring."
        return None
    return status
