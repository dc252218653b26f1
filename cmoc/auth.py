"""Sign-in, first-run setup, sign-out, and the login/role guards every page goes through."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
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
from cmoc.services.users import any_user_exists, authenticate, create_first_admin

bp = Blueprint("auth", __name__)

# Endpoints reachable without signing in.
PUBLIC_ENDPOINTS = frozenset({"auth.login", "auth.setup", "web.healthz", "static"})


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
    if any_user_exists():
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
            flash(f"Welcome, {user.username}. You are the admin; add your team under Users.",
                  "success")
            return redirect(url_for("web.dashboard"))
    return render_template("auth/setup.html", errors=errors, form=form), 400 if errors else 200


@bp.route("/login", methods=["GET", "POST"])
def login():
    if not any_user_exists():
        return redirect(url_for("auth.setup"))
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")))
    error = None
    if request.method == "POST":
        user = authenticate(username=request.form.get("username", ""),
                            password=request.form.get("password", ""))
        if user is None:
            error = "Unknown username or wrong password."
        else:
            session.clear()
            login_user(user)
            return redirect(safe_next(request.args.get("next")))
    return (render_template("auth/login.html", error=error,
                            username=request.form.get("username", "")),
            401 if error else 200)


@bp.route("/logout", methods=["POST"])
def logout():
    logout_user()
    session.clear()
    flash("Signed out.", "info")
    return redirect(url_for("auth.login"))
