"""Sign in with OpenID Connect (e.g. GitLab) through Authlib; roles from the groups claim.

Authlib fetches the provider's discovery document and JWKS, sends a nonce, and checks the ID
token's signature, issuer, audience, expiry and nonce before we see any claim.
"""

from __future__ import annotations

import re
import secrets

from authlib.common.errors import AuthlibBaseError
from authlib.integrations.flask_client import OAuth
from flask import Blueprint, Flask, current_app, render_template, request, session, url_for
from joserfc.errors import JoseError
from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

from cmoc.enums import Role
from cmoc.extensions import db
from cmoc.models import User
from cmoc.services.audit import record, record_now

bp = Blueprint("oidc", __name__)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    if not app.config.get("OIDC_ISSUER"):
        return
    # One OAuth registry per app: its client caches the provider's metadata and keys.
    oauth = OAuth(app)
    app.extensions["cmoc.oauth"] = oauth
    settings = app.config.get("OIDC") or {}
    issuer = app.config["OIDC_ISSUER"].rstrip("/")
    oauth.register(
        "oidc", client_id=app.config.get("OIDC_CLIENT_ID"),
        client_secret=app.config.get("OIDC_CLIENT_SECRET"),
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": settings.get("scopes", "openid profile email"),
                       "timeout": 10})


def role_for(groups: list[str], settings: dict) -> str | None:
    """The highest role any of the user's groups maps to, else the default (None: refuse)."""
    mapping = settings.get("roles") or {}
    found = [Role(mapping[g]) for g in groups if g in mapping]
    if found:
        return max(found, key=lambda r: r.rank).value
    return settings.get("default_role") or None


def _username(claims: dict) -> str:
    base = claims.get("preferred_username") or claims.get("nickname") or \
        (claims.get("email") or "").split("@")[0] or f"user-{claims['sub']}"
    base = re.sub(r"[^A-Za-z0-9._-]", "-", base)[:56].strip("-.") or "user"
    name, n = base, 1
    while db.session.scalar(select(User.id).where(func.lower(User.username) == name.lower())):
        n += 1
        name = f"{base}-{n}"
    return name


@bp.get("/login/oidc")
def start():
    if not current_app.config.get("OIDC_ISSUER"):
        return render_template("error.html", code=404, message="OIDC sign-in is not set up."), 404
    session["oidc_next"] = request.args.get("next", "")
    client = current_app.extensions["cmoc.oauth"].oidc
    return client.authorize_redirect(url_for("oidc.callback", _external=True))


@bp.get("/login/oidc/callback")
def callback():
    from cmoc.auth import sign_in

    if not current_app.config.get("OIDC_ISSUER"):
        return render_template("error.html", code=404, message="OIDC sign-in is not set up."), 404
    try:
        client = current_app.extensions["cmoc.oauth"].oidc
        token = client.authorize_access_token()
        claims = token["userinfo"]  # present only once the ID token was verified
    except (AuthlibBaseError, JoseError, ValueError, KeyError) as exc:
        record_now("login.failed", actor=None, actor_name="oidc",
                   after={"reason": type(exc).__name__})
        return render_template("error.html", code=401, message=(
            "Sign-in with the identity provider failed: its answer could not be verified "
            f"({type(exc).__name__}).")), 401
    settings = current_app.config.get("OIDC") or {}
    groups = claims.get(settings.get("groups_claim", "groups")) or []
    groups = [g for g in groups if isinstance(g, str)] if isinstance(groups, list) else []
    role = role_for(groups, settings)
    subject = f"{current_app.config['OIDC_ISSUER'].rstrip('/')}|{claims['sub']}"
    user = db.session.scalar(select(User).where(User.oidc_subject == subject))
    if role is None:
        record_now("login.failed", actor=user, actor_name=claims.get("preferred_username"),
                   after={"reason": "no mapped group", "groups": groups[:20]})
        return render_template("error.html", code=403, message=(
            "You signed in, but none of your groups may use cmoc. Ask an admin.")), 403
    if user is None:
        user = User(username=_username(claims), role=role, oidc_subject=subject,
                    # no local password: this account signs in through the provider only
                    password_hash=generate_password_hash(secrets.token_hex(32)))
        db.session.add(user)
        db.session.flush()
        record("user.create", actor=user, target=user,
               after={"username": user.username, "role": role, "via": "oidc"})
    elif not user.active:
        record_now("login.failed", actor=user, after={"reason": "deactivated"})
        return render_template("error.html", code=403, message="This account is deactivated."), 403
    elif user.role != role:
        record("user.role", actor=user, target=user, before={"role": user.role},
               after={"role": role, "via": "oidc groups"})
        user.role = role
    db.session.commit()
    return sign_in(user, method="oidc", next_url=session.pop("oidc_next", None))
