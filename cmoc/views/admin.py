"""Admin pages: local user accounts and their roles."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from cmoc.auth import role_required
from cmoc.enums import Role
from cmoc.extensions import db
from cmoc.models import User
from cmoc.services import ValidationError
from cmoc.services.login_guard import LoginPolicy, lock_status, normalise, unlock
from cmoc.services.tokens import create_token, list_tokens, revoke_token
from cmoc.services.users import create_user, set_active, set_role
from cmoc.timeutil import utcnow
from cmoc.views import bp


@bp.route("/admin/users", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def users():
    errors: dict[str, str] = {}
    if request.method == "POST":
        try:
            user = create_user(username=request.form.get("username", ""),
                               password=request.form.get("password", ""),
                               role=request.form.get("role", ""), actor=current_user)
        except ValidationError as exc:
            errors = exc.errors
        else:
            flash(f"User {user.username} created as {user.role}.", "success")
            return redirect(url_for("web.users"))
    people = db.session.scalars(select(User).order_by(User.username)).all()
    locks = lock_status(policy=LoginPolicy.from_config(current_app.config), now=utcnow())
    return render_template("admin/users.html", users=people, errors=errors, form=request.form,
                           roles=list(Role), tokens=list_tokens(), locks=locks,
                           normalise=normalise), 400 if errors else 200


@bp.post("/admin/users/<int:user_id>/unlock")
@role_required(Role.ADMIN)
def unlock_user(user_id: int):
    """Clears the account's failed sign-ins from every address (audited `user.unlock`)."""
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    cleared = unlock(user=user, actor=current_user, now=utcnow())
    flash(f"{user.username} unlocked ({cleared} failed sign-ins cleared).", "success")
    return redirect(url_for("web.users"))


@bp.post("/admin/users/<int:user_id>")
@role_required(Role.ADMIN)
def change_user(user_id: int):
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    try:
        if "role" in request.form:
            set_role(user=user, role=request.form["role"], acting=current_user, now=utcnow())
        if "active" in request.form:
            set_active(user=user, active=request.form["active"] == "1", acting=current_user,
                       now=utcnow())
    except ValidationError as exc:
        for message in exc.errors.values():
            flash(message, "error")
    else:
        flash(f"{user.username}: {user.role}, {'active' if user.active else 'deactivated'}.",
              "success")
    return redirect(url_for("web.users"))


@bp.post("/admin/tokens")
@role_required(Role.ADMIN)
def create_token_view():
    """Creates an API token and shows it once, on this response only (never in a cookie)."""
    try:
        row, token = create_token(username=request.form.get("username", ""),
                                  name=request.form.get("name", ""), now=utcnow(),
                                  actor=current_user)
    except ValidationError as exc:
        for message in exc.errors.values():
            flash(message, "error")
        return redirect(url_for("web.users"))
    return render_template("admin/token_created.html", row=row, token=token)


@bp.post("/admin/tokens/<int:token_id>/revoke")
@role_required(Role.ADMIN)
def revoke_token_view(token_id: int):
    try:
        row = revoke_token(token_id=token_id, now=utcnow(), actor=current_user)
    except ValidationError as exc:
        flash(exc.errors["token"], "error")
    else:
        flash(f"Token {row.prefix}… revoked.", "success")
    return redirect(url_for("web.users"))
