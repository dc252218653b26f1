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
from cmoc.services.login_guard import LoginPolicy, clear_failures, note_failure, refusal
from cmoc.services.users import any_user_exists, authenticate, create_first_admin
from cmoc.timeutil import utcnow

bp = Blueprint("auth", __name__)

# Endpoints reachable without signing in.
PUBLIC_ENDPOINTS = frozenset({"auth.login", "auth.setup", "web.healthz", "static", "oidc.start",
                              "oidc.callback", "web.metrics",
                              # Webhooks carry their own proof (a shared secret, checked there).
                              "hooks.gitlab", "web.slack_actions", "web.slack_commands"})


def init_app(app: Flask) -> None:
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to continue."
    login_manager.session_protection = "strong"
    app.register_blueprint(bp)
    app.before_request(_require_login)


@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    user = db.session.get(User, int(user_id)) if user_id.isdigit() else None
    return user if user is not None and user.active else None


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
            session.clear()
            login_user(user)
            session.permanent = True
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
        ip = request.remote_addr or "-"
        now = utcnow()
        policy = LoginPolicy.from_config(current_app.config)
        error = refusal(username=username, ip=ip, policy=policy, now=now)
        if error:
            status = 429
            record_now("login.refused", actor=None, actor_name=username or "-",
                       after={"reason": error})
        else:
            user = authenticate(username=username, password=request.form.get("password", ""))
            if user is None:
                error, status = "Unknown username or wrong password.", 401
                note_failure(username=username, ip=ip, now=now)
                record_now("login.failed", actor=None, actor_name=username or "-")
            else:
                clear_failures(username=username)
                return sign_in(user, method="password")
    return (render_template("auth/login.html", error=error, local=local,
                            oidc=bool(current_app.config.get("OIDC_ISSUER")),
                            username=request.form.get("username", "")), status)


def sign_in(user: User, *, method: str, next_url: str | None = None):
    """Starts a fresh session for `user` (expires after PERMANENT_SESSION_LIFETIME)."""
    session.clear()
    login_user(user)
    session.permanent = True
    record_now("login", actor=user, target=user, after={"method": method})
    return redirect(safe_next(next_url or request.args.get("next")))


@bp.route("/logout", methods=["POST"])
def logout():
    if current_user.is_authenticated:
        record_now("logout", actor=current_user, target=current_user)
    logout_user()
    session.clear()
    flash("Signed out.", "info")
    return redirect(url_for("auth.login"))
