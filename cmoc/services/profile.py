"""A user's own settings: where reminders reach them (Slack member id) and the email PagerDuty
knows them by (the on-call CMOC is found by it)."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from cmoc.extensions import db
from cmoc.models import User
from cmoc.services.audit import record

SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{6,20}$")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s.]{2,}$")


def update_profile(*, user: User, slack_user_id: str, email: str) -> dict[str, str]:
    """Validates and saves; returns field errors (nothing saved when there are any)."""
    errors: dict[str, str] = {}
    slack_user_id = slack_user_id.strip().upper()
    email = email.strip()
    if slack_user_id and not SLACK_USER_ID.match(slack_user_id):
        errors["slack_user_id"] = ("A Slack member id looks like U0123ABCD (Profile → ⋮ → "
                                   "Copy member ID).")
    if email and (len(email) > 255 or not EMAIL.match(email)):
        errors["email"] = "Enter an email address like name@example.com."
    elif email and db.session.scalar(select(User.id).where(
            func.lower(User.email) == email.lower(), User.id != user.id,
            User.active.is_(True)).limit(1)):
        # One address, one person: PagerDuty's on-call CMOC is found by it.
        errors["email"] = "Another account has this email address. Ask an admin."
    if errors:
        return errors
    current = {"slack_user_id": user.slack_user_id, "email": user.email}
    wanted = {"slack_user_id": slack_user_id or None, "email": email or None}
    changed = [k for k in wanted if wanted[k] != current[k]]
    if changed:
        # Only what changed goes in the audit entry.
        record("profile.update", actor=user, target=user,
               before={k: current[k] for k in changed}, after={k: wanted[k] for k in changed})
        user.slack_user_id, user.email = wanted["slack_user_id"], wanted["email"]
        db.session.commit()
    return {}
