"""status.io subscriber notifications per update: which of email, SMS and webhook it sends.

The handbook says "Broadcast: all boxes checked", so every flag defaults to on unless the
config (`STATUSIO_NOTIFY`) turns it off; an update may choose otherwise (e.g. a minor
correction that should not e-mail every subscriber again).
"""

from __future__ import annotations

from collections.abc import Mapping

NOTIFY_FLAGS = ("email", "sms", "webhook")
NOTIFY_LABELS = {"email": "email", "sms": "SMS", "webhook": "webhook"}


def default_notify(config_flags: Mapping[str, str] | None) -> dict[str, bool]:
    """The per-update default from status.io's configured flags ("1"/"0", all on by default)."""
    flags = config_flags or {}
    return {flag: str(flags.get(f"notify_{flag}", "1")) != "0" for flag in NOTIFY_FLAGS}


def notify_summary(flags: Mapping[str, bool]) -> str:
    """In words, for the preview: "Subscribers are notified by email, SMS and webhook"."""
    chosen = [NOTIFY_LABELS[f] for f in NOTIFY_FLAGS if flags.get(f)]
    if not chosen:
        return "status.io subscribers are not notified (no email, SMS or webhook)."
    words = chosen[0] if len(chosen) == 1 else ", ".join(chosen[:-1]) + " and " + chosen[-1]
    return f"status.io subscribers are notified by {words}."


def payload_flags(flags: Mapping[str, bool] | None) -> dict[str, str]:
    """The status.io request fields for an update's choice ({} keeps the adapter's own)."""
    if flags is None:
        return {}
    return {f"notify_{flag}": "1" if flags.get(flag, True) else "0" for flag in NOTIFY_FLAGS}
