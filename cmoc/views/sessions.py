"""The profile's session controls: end one of your sessions, end all the others, and change
your password (which ends every session but the new one on this browser)."""

from __future__ import annotations

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_login import current_user

from cmoc.auth import begin_session
from cmoc.extensions import db
from cmoc.services import ValidationError
from cmoc.services.sessions import Limits, end_other_sessions, end_user_session, live_sessions
from cmoc.services.users import change_password
from cmoc.timeutil import utcnow
from cmoc.views import bp


def sessions_context() -> dict:
    """The profile template's sessions table: the user's live sessions and which is this one."""
    rows = live_sessions(user_id=current_user.id, now=utcnow(),
                         limits=Limits.from_config(current_app.config))
    return {"sessions": rows, "this_session": g.get("user_session_id"), "now": utcnow()}


@bp.post("/profile/sessions/<int:session_id>/end")
def end_session_view(session_id: int):
    """Ends one of the signed-in user's sessions (another user's session id is a 404)."""
    user = current_user._get_current_object()
    if not end_user_session(user=user, session_id=session_id, now=utcnow()):
        abort(404)
    db.session.commit()
    flash("Session ended: that browser must sign in again.", "success")
    return redirect(url_for("web.profile"))


@bp.post("/profile/sessions/end-others")
def end_other_sessions_view():
    """Ends every session of the user but this one."""
    count = end_other_sessions(user=current_user._get_current_object(),
                               keep_id=g.get("user_session_id"), now=utcnow())
    db.session.commit()
    flash(f"Ended {count} other session{'' if count == 1 else 's'}.", "success")
    return redirect(url_for("web.profile"))


@bp.post("/profile/password")
def change_password_view():
    """Changes the user's own password; every session ends and this browser gets a new one."""
    user = current_user._get_current_object()
    form = request.form
    try:
        change_password(user=user, current=form.get("current", ""),
                        password=form.get("password", ""), confirm=form.get("confirm", ""),
                        now=utcnow())
    except ValidationError as exc:
        return render_template("profile.html", errors={}, value=user.slack_user_id or "",
                               password_errors=exc.errors, **sessions_context()), 400
    begin_session(user)
    db.session.commit()
    flash("Password changed. Every other session is ended.", "success")
    return redirect(url_for("web.profile"))
