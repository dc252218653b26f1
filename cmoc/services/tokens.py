"""API tokens: created once (shown once), stored hashed, revocable."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime

from sqlalchemy import func, select

from cmoc.extensions import db
from cmoc.models import ApiToken, User
from cmoc.services import ValidationError
from cmoc.services.audit import record

PREFIX = "cmoc_"
LABEL = re.compile(r"^[\w .:@/-]{1,64}$")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(*, username: str, name: str, now: datetime,
                 actor: User | None = None) -> tuple[ApiToken, str]:
    """Returns (row, token); the plain token exists only in this return value."""
    user = db.session.scalar(select(User).where(func.lower(User.username) == username.lower()))
    if user is None:
        raise ValidationError({"username": f"No user {username!r}."})
    if not user.active:
        raise ValidationError({"username": f"User {username!r} is deactivated."})
    name = (name or "api").strip()
    if not LABEL.match(name):
        raise ValidationError({"name": "Label: 1–64 letters, digits, spaces or . : @ / - _"})
    token = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, name=name, token_hash=hash_token(token),
                   prefix=token[:12], created_at=now)
    db.session.add(row)
    db.session.flush()
    record("token.create", actor=actor, actor_name=None if actor else "cli", target=row,
           now=now, after={"user": user.username, "name": name, "prefix": row.prefix})
    db.session.commit()
    return row, token


def authenticate_token(token: str, *, now: datetime) -> User | None:
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    row = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if row is None or row.revoked_at is not None or not row.user.active:
        return None
    row.last_used_at = now
    db.session.commit()
    return row.user


def revoke_token(*, token_id: int, now: datetime, actor: User | None = None) -> ApiToken:
    row = db.session.get(ApiToken, token_id)
    if row is None:
        raise ValidationError({"token": f"No token #{token_id}."})
    if row.revoked_at is None:
        record("token.revoke", actor=actor, actor_name=None if actor else "cli", target=row,
               now=now, before={"revoked_at": None}, after={"revoked_at": now})
        row.revoked_at = now
        db.session.commit()
    return row


def list_tokens() -> list[ApiToken]:
    return list(db.session.scalars(select(ApiToken).order_by(ApiToken.id)))
