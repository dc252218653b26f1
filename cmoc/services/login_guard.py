"""Sign-in throttling, decided before any password is checked.

Every attempt first writes its row to `login_failures` and commits it, then counts the rows
(its own included): of N parallel attempts, the k-th to commit sees at least k rows, so at most
the limit ever get to a password check. A row stays (as a failure) unless the password was
right; a refused attempt's row is removed, so being refused does not extend a lock.

Limits: per account *and* address (`lock_after` in `lock_minutes`, so a stranger cannot lock
a user out from their own address); per address across accounts (`ip_limit`); and, once an
account has `account_limit` failures from everywhere in `account_window_minutes`, a slower
account-wide back-off of one attempt per `account_backoff_seconds`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select

from cmoc.extensions import db
from cmoc.models import LoginFailure, User
from cmoc.services.users import authenticate


@dataclass(frozen=True)
class LoginPolicy:
    lock_after: int = 5
    lock_minutes: int = 15
    ip_limit: int = 20
    ip_window_minutes: int = 10
    account_limit: int = 50
    account_window_minutes: int = 60
    account_backoff_seconds: int = 30

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LoginPolicy:
        return cls(lock_after=int(config.get("LOGIN_LOCK_AFTER", 5)),
                   lock_minutes=int(config.get("LOGIN_LOCK_MINUTES", 15)),
                   ip_limit=int(config.get("LOGIN_IP_LIMIT", 20)),
                   ip_window_minutes=int(config.get("LOGIN_IP_WINDOW_MINUTES", 10)),
                   account_limit=int(config.get("LOGIN_ACCOUNT_LIMIT", 50)),
                   account_window_minutes=int(config.get("LOGIN_ACCOUNT_WINDOW_MINUTES", 60)),
                   account_backoff_seconds=int(config.get("LOGIN_ACCOUNT_BACKOFF_SECONDS", 30)))


@dataclass(frozen=True)
class Outcome:
    """A sign-in attempt's result: `user` when signed in, else `refused` (429, not checked)
    or a wrong password / unknown user (401)."""

    user: User | None = None
    refused: str | None = None


def normalise(username: str) -> str:
    return username.strip().lower()[:64]


def try_password(*, username: str, password: str, ip: str, policy: LoginPolicy,
                 now: datetime) -> Outcome:
    """Records the attempt, refuses it past a limit, else checks the password."""
    name = normalise(username)
    row = LoginFailure(username=name, ip=ip[:64], at=now)
    db.session.add(row)
    db.session.commit()
    reason = _refusal(name=name, ip=row.ip, policy=policy, now=now)
    if reason:
        db.session.execute(delete(LoginFailure).where(LoginFailure.id == row.id))
        db.session.commit()
        return Outcome(refused=reason)
    user = authenticate(username=username, password=password)
    if user is None:
        return Outcome()    # the row stays: it is this failure
    # The right password clears this address's failures for the account (earlier typos);
    # other addresses' failures still count towards the account-wide back-off.
    db.session.execute(delete(LoginFailure).where(
        LoginFailure.username == name, LoginFailure.ip == row.ip, LoginFailure.id <= row.id))
    db.session.commit()
    return Outcome(user=user)


def _count(*where) -> int:
    return db.session.scalar(select(func.count(LoginFailure.id)).where(*where)) or 0


def _refusal(*, name: str, ip: str, policy: LoginPolicy, now: datetime) -> str | None:
    """Why the attempt just recorded (and counted here) is over a limit, or None."""
    lock_since = now - timedelta(minutes=policy.lock_minutes)
    if _count(LoginFailure.username == name, LoginFailure.ip == ip,
              LoginFailure.at >= lock_since) > policy.lock_after:
        return (f"Too many failed sign-ins for this account from your address: it is locked "
                f"for {policy.lock_minutes} minutes here (an admin can unlock it).")
    if _count(LoginFailure.ip == ip,
              LoginFailure.at >= now - timedelta(minutes=policy.ip_window_minutes)
              ) > policy.ip_limit:
        return "Too many failed sign-ins from your address; try again in a few minutes."
    window = now - timedelta(minutes=policy.account_window_minutes)
    if _count(LoginFailure.username == name, LoginFailure.at >= window) > policy.account_limit:
        recent = now - timedelta(seconds=policy.account_backoff_seconds)
        if _count(LoginFailure.username == name, LoginFailure.at > recent) > 1:
            return (f"This account is getting many failed sign-ins; try again in "
                    f"{policy.account_backoff_seconds} seconds.")
    return None


@dataclass(frozen=True)
class LockStatus:
    failures: int           # within the account window, all addresses
    locked_addresses: int   # addresses at the per-address limit
    backing_off: bool       # past the account-wide limit


def lock_status(*, policy: LoginPolicy, now: datetime) -> dict[str, LockStatus]:
    """Accounts with recent failures, by normalised name (for the admin users page)."""
    lock_since = now - timedelta(minutes=policy.lock_minutes)
    locked: dict[str, int] = {}
    for name, _ip in db.session.execute(
            select(LoginFailure.username, LoginFailure.ip).where(LoginFailure.at >= lock_since)
            .group_by(LoginFailure.username, LoginFailure.ip)
            .having(func.count(LoginFailure.id) >= policy.lock_after)):
        locked[name] = locked.get(name, 0) + 1
    window = now - timedelta(minutes=policy.account_window_minutes)
    return {name: LockStatus(failures=count, locked_addresses=locked.get(name, 0),
                             backing_off=count >= policy.account_limit)
            for name, count in db.session.execute(
                select(LoginFailure.username, func.count(LoginFailure.id))
                .where(LoginFailure.at >= min(window, lock_since))
                .group_by(LoginFailure.username))}


def unlock(*, user: User, actor: User, now: datetime) -> int:
    """Clears every recorded failure of `user`'s account (all addresses); audited."""
    from cmoc.services.audit import record

    name = normalise(user.username)
    cleared = db.session.execute(delete(LoginFailure).where(
        LoginFailure.username == name)).rowcount or 0
    record("user.unlock", actor=actor, target=user, after={"cleared_failures": cleared}, now=now)
    db.session.commit()
    return cleared
