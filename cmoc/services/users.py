"""Local accounts: creation, password checks and the first-run admin."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from cmoc.enums import Role
from cmoc.extensions import db
from cmoc.models import SetupDone, User
from cmoc.services import ValidationError
from cmoc.services.audit import record
from cmoc.services.sessions import end_user_sessions

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 256
# A fixed hash to compare against when the user is unknown, so timing does not reveal names.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


def any_user_exists() -> bool:
    return db.session.scalar(select(func.count(User.id))) > 0


def validate_new_user(*, username: str, password: str, role: str, confirm: str | None = None
                      ) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not USERNAME.match(username or ""):
        errors["username"] = ("Username: 2–64 characters, letters, digits, '.', '_' or '-', "
                              "starting with a letter or digit.")
    elif db.session.scalar(select(User.id).where(func.lower(User.username) == username.lower())):
        errors["username"] = f"User {username!r} already exists."
    if not MIN_PASSWORD <= len(password or "") <= MAX_PASSWORD:
        errors["password"] = f"Password must be {MIN_PASSWORD}–{MAX_PASSWORD} characters."
    elif confirm is not None and confirm != password:
        errors["confirm"] = "The two passwords differ."
    if role not in Role.__members__.values():
        errors["role"] = f"Role must be one of: {', '.join(r.value for r in Role)}."
    return errors


def create_user(*, username: str, password: str, role: str, confirm: str | None = None,
                actor: User | None = None, first_run: bool = False) -> User:
    """Creates a local account; raises ValidationError with per-field messages. With
    `first_run`, the setup_done singleton row goes in the same transaction."""
    username = (username or "").strip()
    errors = validate_new_user(username=username, password=password, role=role, confirm=confirm)
    if errors:
        raise ValidationError(errors)
    user = User(username=username, password_hash=generate_password_hash(password), role=role)
    if first_run:
        # Inserted first: a concurrent setup blocks on this row (PostgreSQL) or the write lock
        # (SQLite) and then fails on its primary key, so only one first admin commits.
        db.session.add(SetupDone(id=1))
        db.session.flush()
    db.session.add(user)
    db.session.flush()
    if first_run:
        db.session.get(SetupDone, 1).admin_id = user.id
    record("user.create", actor=actor or user, target=user,
           after={"username": username, "role": role})
    db.session.commit()
    return user


def setup_done() -> bool:
    """True once the first run is over (the singleton row, or any account made otherwise)."""
    return db.session.get(SetupDone, 1) is not None or any_user_exists()


def create_first_admin(*, username: str, password: str, confirm: str) -> User:
    """Creates the first account as admin; refused once setup is done, enforced by the
    database (the setup_done row) when several setups race."""
    done = ValidationError({"username": "Setup is already done; sign in instead."})
    if setup_done():
        raise done
    try:
        return create_user(username=username, password=password, role=Role.ADMIN.value,
                           confirm=confirm, first_run=True)
    except IntegrityError:
        db.session.rollback()
        if setup_done():
            raise done from None
        raise


def authenticate(*, username: str, password: str) -> User | None:
    user = db.session.scalar(
        select(User).where(func.lower(User.username) == (username or "").strip().lower())
    )
    if user is None:
        check_password_hash(_DUMMY_HASH, password or "")
        return None
    if not check_password_hash(user.password_hash, password or "") or not user.active:
        return None
    return user


def set_role(*, user: User, role: str, acting: User, now: datetime) -> None:
    """Changes a user's role; their sessions end (they sign in again under the new role)."""
    if role not in Role.__members__.values():
        raise ValidationError({"role": "Unknown role."})
    if user.id == acting.id and role != Role.ADMIN.value:
        raise ValidationError({"role": "You cannot remove your own admin role."})
    if role == user.role:
        return
    record("user.role", actor=acting, target=user, before={"role": user.role},
           after={"role": role})
    user.role = role
    end_user_sessions(user_id=user.id, now=now, reason="role")
    db.session.commit()


def set_active(*, user: User, active: bool, acting: User, now: datetime) -> None:
    """Deactivates (ending every session) or reactivates an account."""
    if user.id == acting.id and not active:
        raise ValidationError({"active": "You cannot deactivate yourself."})
    record("user.active", actor=acting, target=user, before={"active": user.active},
           after={"active": active})
    user.active = active
    if not active:
        end_user_sessions(user_id=user.id, now=now, reason="deactivated")
    db.session.commit()


def change_password(*, user: User, current: str, password: str, confirm: str,
                    now: datetime) -> None:
    """A user's own password change: checks the current one, then ends every session of the
    user, this one included (the caller starts a fresh one for this browser). Committed by
    the caller, with that new session."""
    errors: dict[str, str] = {}
    if not check_password_hash(user.password_hash, current or ""):
        errors["current"] = "That is not your current password."
    if not MIN_PASSWORD <= len(password or "") <= MAX_PASSWORD:
        errors["password"] = f"Password must be {MIN_PASSWORD}–{MAX_PASSWORD} characters."
    elif confirm != password:
        errors["confirm"] = "The two passwords differ."
    if errors:
        raise ValidationError(errors)
    record("user.password", actor=user, target=user)
    user.password_hash = generate_password_hash(password)
    end_user_sessions(user_id=user.id, now=now, reason="password")
