"""Sign-in throttling: lock an account after repeated failures, limit failures per address."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select

from cmoc.extensions import db
from cmoc.models import LoginFailure


@dataclass(frozen=True)
class LoginPolicy:
    lock_after: int = 5
    lock_minutes: int = 15
    ip_limit: int = 20
    ip_window_minutes: int = 10

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LoginPolicy:
        return cls(lock_after=int(config.get("LOGIN_LOCK_AFTER", 5)),
                   lock_minutes=int(config.get("LOGIN_LOCK_MINUTES", 15)),
                   ip_limit=int(config.get("LOGIN_IP_LIMIT", 20)),
                   ip_window_minutes=int(config.get("LOGIN_IP_WINDOW_MINUTES", 10)))


def refusal(*, username: str, ip: str, policy: LoginPolicy, now: datetime) -> str | None:
    """Why a sign-in attempt is refused before checking the password, or None."""
    name = username.strip().lower()[:64]
    since = now - timedelta(minutes=policy.lock_minutes)
    failures = db.session.scalar(select(func.count(LoginFailure.id)).where(
        LoginFailure.username == name, LoginFailure.at >= since))
    if failures >= policy.lock_after:
        return (f"Too many failed sign-ins for this account: it is locked for "
                f"{policy.lock_minutes} minutes.")
    window = now - timedelta(minutes=policy.ip_window_minutes)
    from_ip = db.session.scalar(select(func.count(LoginFailure.id)).where(
        LoginFailure.ip == ip, LoginFailure.at >= window))
    if from_ip >= policy.ip_limit:
        return "Too many failed sign-ins from your address; try again in a few minutes."
    return None


def note_failure(*, username: str, ip: str, now: datetime) -> None:
    db.session.add(LoginFailure(username=username.strip().lower()[:64], ip=ip, at=now))
    db.session.commit()


def clear_failures(*, username: str) -> None:
    db.session.execute(delete(LoginFailure).where(
        LoginFailure.username == username.strip().lower()))
    db.session.commit()
