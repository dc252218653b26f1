"""Sign-in, first-run setup, sign-out, and the login/role guards every page goes through."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_user, logout_user

from cmoc.enums import Role
from cmoc.extensions import db, login_manager
from cmoc.models import User
from cmoc.services import ValidationError
from cmoc.services.audit import record_now
from cmoc.services.login_guard import LoginPolicy, try_password
from cmoc.services.refusals import note_refusal, summary_interval
from cmoc.services.sessions import Limits, check_session, end_session, start_session
from cmoc.services.users import any_user_exists, create_first_admin
from cmoc.timeutil import utcnow

bp = Blueprint("auth", __name__)
# The cookie's key for the server-side session id (see services/sessions.py).
SESSION_ID = "sid"

# Endpoints reachable without signing in.
PUBLIC_ENDPOINTS = frozenset({"auth.login", "auth.setup", "web.healthz", "static", "oidc.start",
                              "oidc.callback", "web.metrics",
                              # Webhooks carry their own proof (a shared secret, checked there).
                              "hooks.gitlab", "web.slack_actions", "web.slack_commands"})


def init_app(app: Flask) -> None:
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to continue."
    # Flask-Login's IP/User-Agent check does nothing for permanent sessions; the server-side
    # session (checked in _load_user) is what ends them, and refuses another browser's copy.
    login_manager.session_protection = None
    app.register_blueprint(bp)
    app.before_request(_require_login)


@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    """The signed-in user, only while the server-side session behind the cookie is live (on
    pages and on /api/v1 alike: both go through current_user)."""
    user = db.session.get(User, int(user_id)) if user_id.isdigit() else None
    if user is None or not user.active:
        return None
    row = check_session(token=session.get(SESSION_ID), user_id=user.id,
                        user_agent=request.user_agent.string,
                        limits=Limits.from_config(current_app.config), now=utcnow())
    if row is None:
        session.clear()  # a dead session's cookie is dropped, not re-sent
        return None
    g.user_session_id = row.id
    return user


def begin_session(user: User) -> None:
    """Signs `user` in on this browser with a new server-side session (committed by the
    caller): a fresh cookie, nothing kept from before."""
    session.clear()
    login_user(user)
    session.permanent = True
    session[SESSION_ID] = start_session(user_id=user.id, user_agent=request.user_agent.string,
                                        ip=request.remote_addr, now=utcnow())


def _require_login():
    if request.endpoint in PUBLIC_ENDPOINTS or request.endpoint is None:
        return None
    if request.path.startswith("/api/"):
        return None  # the API authenticates every call with its own bearer tokens
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    return None


def role_required(role: Role) -> Callable:
    """Refuses (403) a signed-in user whose role is below `role`."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not current_user.can(role):
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def safe_next(target: str | None) -> str:
    """Only same-site relative paths are followed after sign-in (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return url_for("web.dashboard")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return url_for("web.dashboard")
    return target


@bp.route("/setup", methods=["GET", "POST"])
def setup():
    if any_user_exists() or not current_app.config.get("LOCAL_LOGIN", True):
        return redirect(url_for("auth.login"))
    errors: dict[str, str] = {}
    form = request.form
    if request.method == "POST":
        try:
            user = create_first_admin(username=form.get("username", ""),
                                      password=form.get("password", ""),
                                      confirm=form.get("confirm", ""))
        except ValidationError as exc:
            errors = exc.errors
        else:
            begin_session(user)
            db.session.commit()
            flash(f"Welcome, {user.username}. You are the admin; add your team under Users.",
                  "success")
            return redirect(url_for("web.dashboard"))
    return render_template("auth/setup.html", errors=errors, form=form), 400 if errors else 200


@bp.route("/login", methods=["GET", "POST"])
def login():
    if not any_user_exists() and not current_app.config.get("OIDC_ISSUER"):
        return redirect(url_for("auth.setup"))
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")))
    error, status = None, 200
    local = current_app.config.get("LOCAL_LOGIN", True)
    if request.method == "POST":
        if not local:
            abort(403)
        username = request.form.get("username", "")[:64]
        # The real client's address: ProxyFix resolved it for CMOC_TRUSTED_PROXIES hops.
        outcome = try_password(username=username, password=request.form.get("password", ""),
                               ip=request.remote_addr or "-",
                               policy=LoginPolicy.from_config(current_app.config),
                               now=utcnow())
        if outcome.refused:
            error, status = outcome.refused, 429
            # Anyone can send these: counted and summarised, not one audit row each.
            note_refusal(kind="login.refused", detail={"username": username, "reason": error},
                         now=utcnow(), interval=summary_interval(current_app.config))
        elif outcome.user is None:
            error, status = "Unknown username or wrong password.", 401
            record_now("login.failed", actor=None, actor_name=username or "-")
        else:
            return sign_in(outcome.user, method="password")
    return (render_template("auth/login.html", error=error, local=local,
                            oidc=bool(current_app.config.get("OIDC_ISSUER")),
                            username=request.form.get("username", "")), status)


def sign_in(user: User, *, method: str, next_url: str | None = None):
    """Starts a fresh session for `user` (ends session_hours after sign-in, or earlier)."""
    begin_session(user)
    record_now("login", actor=user, target=user, after={"method": method})
    return redirect(safe_next(next_url or request.args.get("next")))


@bp.route("/logout", methods=["POST"])
def logout():
    if current_user.is_authenticated:
        record_now("logout", actor=current_user, target=current_user)
    # Ends the session itself, so a copy of this cookie kept elsewhere is refused too.
    end_session(token=session.get(SESSION_ID), now=utcnow())
    db.session.commit()
    logout_user()
    session.clear()
    flash("Signed out.", "info")
    return redirect(url_for("auth.login"))
