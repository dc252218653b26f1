"""Server-side sessions: each sign-in is a row, and a cookie is only good while its row is.

The cookie carries a random id; the table holds its SHA-256, the user, when it started and was
last used, and when and why it ended. A session ends on sign-out, after its absolute lifetime
(from sign-in, never renewed), after an idle gap, when it shows up in another browser, and for
every session of a user whose password, role or active state changes.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from cmoc.extensions import db
from cmoc.models import User, UserSession
from cmoc.services.audit import record

# last_seen_at is only written when older than this, so most requests write nothing.
TOUCH_EVERY = timedelta(minutes=1)

_BROWSERS = (("Edge", r"Edg(e|A|iOS)?/"), ("Opera", r"OPR/"), ("Firefox", r"Firefox/|FxiOS/"),
             ("Chrome", r"Chrome/|CriOS/|Chromium/"), ("Safari", r"Safari/"), ("curl", r"^curl/"),
             ("Python", r"python-|Python-urllib"), ("Werkzeug", r"^Werkzeug/"))
_SYSTEMS = (("Android", r"Android"), ("iOS", r"iPhone|iPad|iPod"), ("Windows", r"Windows"),
            ("ChromeOS", r"CrOS"), ("macOS", r"Mac OS X|Macintosh"), ("Linux", r"Linux|X11"))


@dataclass(frozen=True)
class Limits:
    """How long a session may live from sign-in, and how long it may sit unused."""

    lifetime: timedelta
    idle: timedelta

    @classmethod
    def from_config(cls, config: dict) -> Limits:
        return cls(lifetime=timedelta(hours=float(config["SESSION_HOURS"])),
                   idle=timedelta(minutes=float(config["SESSION_IDLE_MINUTES"])))


def summarize_user_agent(user_agent: str | None) -> str:
    """'Firefox on Linux': the browser family and system, without versions (so an update of
    the browser does not end its sessions)."""
    ua = user_agent or ""
    browser = next((name for name, pattern in _BROWSERS if re.search(pattern, ua)), "Other")
    system = next((name for name, pattern in _SYSTEMS if re.search(pattern, ua)), None)
    return f"{browser} on {system}" if system else browser


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(*, user_id: int, user_agent: str | None, ip: str | None,
                  now: datetime) -> str:
    """Adds a session row (committed by the caller) and returns the id for the cookie."""
    token = secrets.token_urlsafe(32)
    db.session.add(UserSession(token_hash=_digest(token), user_id=user_id, created_at=now,
                               last_seen_at=now, user_agent=summarize_user_agent(user_agent),
                               ip=(ip or "")[:64] or None))
    return token


def _refusal(row: UserSession, *, user_agent: str | None, limits: Limits,
             now: datetime) -> str | None:
    if now >= row.created_at + limits.lifetime:
        return "expired"
    if now >= row.last_seen_at + limits.idle:
        return "idle"
    if summarize_user_agent(user_agent) != row.user_agent:
        return "browser changed"
    return None


def check_session(*, token: str | None, user_id: int, user_agent: str | None, limits: Limits,
                  now: datetime) -> UserSession | None:
    """The live session behind a cookie, else None (a session found dead is ended here, for
    good). Commits only when it writes: an ending, or last_seen_at at most once a minute."""
    if not token:
        return None
    row = db.session.scalar(select(UserSession).where(UserSession.token_hash == _digest(token)))
    if row is None or row.user_id != user_id or row.ended_at is not None:
        return None
    reason = _refusal(row, user_agent=user_agent, limits=limits, now=now)
    if reason:
        row.ended_at, row.end_reason = now, reason
        db.session.commit()
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
        db.session.commit()
    return row


def end_session(*, token: str | None, now: datetime, reason: str = "logout") -> None:
    """Ends the session behind a cookie (every copy of it). Committed by the caller."""
    if token:
        db.session.execute(update(UserSession)
                           .where(UserSession.token_hash == _digest(token),
                                  UserSession.ended_at.is_(None))
                           .values(ended_at=now, end_reason=reason))


def end_user_session(*, user: User, session_id: int, now: datetime) -> bool:
    """Ends one of the user's own sessions (audited); False when they have no such live
    session. Committed by the caller."""
    result = db.session.execute(update(UserSession)
                                .where(UserSession.id == session_id,
                                       UserSession.user_id == user.id,
                                       UserSession.ended_at.is_(None))
                                .values(ended_at=now, end_reason="ended"))
    if result.rowcount != 1:
        return False
    record("session.end", actor=user, target=user, after={"session": session_id}, now=now)
    return True


def end_other_sessions(*, user: User, keep_id: int | None, now: datetime) -> int:
    """Ends every session of the user but `keep_id` (audited); returns how many. Committed by
    the caller."""
    count = end_user_sessions(user_id=user.id, now=now, reason="ended", keep_id=keep_id)
    record("session.end_others", actor=user, target=user, after={"ended": count}, now=now)
    return count


def end_user_sessions(*, user_id: int, now: datetime, reason: str,
                      keep_id: int | None = None) -> int:
    """Ends every live session of a user (but `keep_id`); returns how many. Committed by the
    caller, with the change that calls for it."""
    query = update(UserSession).where(UserSession.user_id == user_id,
                                      UserSession.ended_at.is_(None))
    if keep_id is not None:
        query = query.where(UserSession.id != keep_id)
    return db.session.execute(query.values(ended_at=now, end_reason=reason)).rowcount


def live_sessions(*, user_id: int, limits: Limits, now: datetime) -> list[UserSession]:
    """The user's sessions still within their lifetime and idle limit, most recent first."""
    rows = db.session.scalars(select(UserSession)
                              .where(UserSession.user_id == user_id,
                                     UserSession.ended_at.is_(None),
                                     UserSession.created_at > now - limits.lifetime,
                                     UserSession.last_seen_at > now - limits.idle)
                              .order_by(UserSession.last_seen_at.desc(), UserSession.id.desc()))
    return list(rows)
