"""Local accounts: creation, password checks and the first-run admin."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from cmoc.enums import Role
from cmoc.extensions import db
from cmoc.models import User
from cmoc.services import ValidationError
from cmoc.services.audit import record

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
                actor: User | None = None) -> User:
    """Creates a local account; raises ValidationError with per-field messages."""
    username = (username or "").strip()
    errors = validate_new_user(username=username, password=password, role=role, confirm=confirm)
    if errors:
        raise ValidationError(errors)
    user = User(username=username, password_hash=generate_password_hash(password), role=role)
    db.session.add(user)
    db.session.flush()
    record("user.create", actor=actor or user, target=user,
           after={"username": username, "role": role})
    db.session.commit()
    return user


def create_first_admin(*, username: str, password: str, confirm: str) -> User:
    """Creates the first account as admin; refused once any account exists."""
    if any_user_exists():
        raise ValidationError({"username": "Setup is already done; sign in instead."})
    return create_user(username=username, password=password, role=Role.ADMIN.value,
                       confirm=confirm)


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


def set_role(*, user: User, role: str, acting: User) -> None:
    if role not in Role.__members__.values():
        raise ValidationError({"role": "Unknown role."})
    if user.id == acting.id and role != Role.ADMIN.value:
        raise ValidationError({"role": "You cannot remove your own admin role."})
    record("user.role", actor=acting, target=user, before={"role": user.role},
           after={"role": role})
    user.role = role
    db.session.commit()


def set_active(*, user: User, active: bool, acting: User) -> None:
    if user.id == acting.id and not active:
        raise ValidationError({"active": "You cannot deactivate yourself."})
    record("user.active", actor=acting, target=user, before={"active": user.active},
           after={"active": active})
    user.active = active
    db.session.commit()
