"""Sign in with OpenID Connect (e.g. GitLab) through Authlib; roles from the groups claim.

Authlib fetches the provider's discovery document and JWKS, sends a nonce, and checks the ID
token's signature, issuer, audience, expiry and nonce before we see any claim. GitLab puts
`groups` only in the userinfo answer (the ID token carries `groups_direct`), so after the code
exchange the userinfo endpoint is asked and its claims win, the ID token's are the fallback.
A role mapping entry covers its subgroups (`gitlab-com/gl-infra` covers `gitlab-com/gl-infra/x`).
"""

from __future__ import annotations

import logging
import re
import secrets
from typing import Any

import requests
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
from cmoc.services.sessions import end_user_sessions
from cmoc.timeutil import utcnow

log = logging.getLogger(__name__)
bp = Blueprint("oidc", __name__)
# Profile claims taken from userinfo over the ID token (GitLab's userinfo is the fuller one).
PROFILE_CLAIMS = ("preferred_username", "nickname", "name", "email")


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


def _covers(mapped: str, group: str) -> bool:
    mapped, group = mapped.strip("/").lower(), group.strip("/").lower()
    return group == mapped or group.startswith(mapped + "/")


def role_for(groups: list[str], settings: dict) -> str | None:
    """The highest role any of the user's groups (or a parent group of one) maps to, else the
    default (None: refuse)."""
    mapping = settings.get("roles") or {}
    found = [Role(role) for mapped, role in mapping.items()
             if any(_covers(mapped, g) for g in groups)]
    if found:
        return max(found, key=lambda r: r.rank).value
    return settings.get("default_role") or None


def groups_from(userinfo: dict | None, id_claims: dict, settings: dict) -> list[str]:
    """Groups from userinfo's groups claim, else the ID token's, else its `groups_direct`."""
    name = settings.get("groups_claim", "groups")
    for source, claim in ((userinfo or {}, name), (id_claims, name),
                          (id_claims, "groups_direct")):
        value = source.get(claim)
        if isinstance(value, list) and value:
            return [g for g in value if isinstance(g, str)]
    return []


def _clean_name(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "-", value)[:56].strip("-.")


def _named(claims: dict) -> str:
    """The name the claims give, '' when they give none."""
    return _clean_name(claims.get("preferred_username") or claims.get("nickname")
                       or (claims.get("email") or "").split("@")[0] or "")


def _fallback(claims: dict) -> str:
    return _clean_name(f"user-{claims['sub']}") or "user"


def _free(base: str, *, keep: User | None = None) -> str:
    name, n = base, 1
    while True:
        taken = db.session.scalar(select(User).where(func.lower(User.username) == name.lower()))
        if taken is None or taken is keep:
            return name
        n += 1
        name = f"{base}-{n}"


def _username(claims: dict) -> str:
    return _free(_named(claims) or _fallback(claims))


def _redirect_uri() -> str:
    """From CMOC_BASE_URL (the address registered at the provider), not the request's host."""
    base = str(current_app.config.get("BASE_URL") or "").rstrip("/")
    path = url_for("oidc.callback")
    return f"{base}{path}" if base else url_for("oidc.callback", _external=True)


def _page(code: int, message: str):
    return render_template("error.html", code=code, message=message, sign_in_link=True,
                           local_login=current_app.config.get("LOCAL_LOGIN", True)), code


def _label() -> str:
    return (current_app.config.get("OIDC") or {}).get("label", "GitLab")


def _unavailable(stage: str, exc: Exception):
    """The provider could not be reached (or answered with a server error)."""
    reason = f"{type(exc).__name__} at {stage}"
    log.warning("OIDC provider unavailable: %s", reason)
    record_now("login.failed", actor=None, actor_name="oidc",
               after={"reason": "provider unavailable", "stage": stage,
                      "error": type(exc).__name__})
    return _page(503, f"{_label()} sign-in is unavailable right now (the provider did not "
                      "answer). Try again in a minute, or sign in with a local account.")


@bp.get("/login/oidc")
def start():
    if not current_app.config.get("OIDC_ISSUER"):
        return render_template("error.html", code=404, message="OIDC sign-in is not set up."), 404
    session["oidc_next"] = request.args.get("next", "")
    client = current_app.extensions["cmoc.oauth"].oidc
    try:
        return client.authorize_redirect(_redirect_uri())
    except (requests.RequestException, ValueError) as exc:   # discovery document unreachable
        return _unavailable("discovery", exc)


def _exchange() -> tuple[dict, dict | None, bool]:
    """The code exchange (ID token verified), then userinfo: (ID token claims, userinfo or
    None, whether userinfo was there to ask but failed). Raises what the callers sort."""
    client = current_app.extensions["cmoc.oauth"].oidc
    token = client.authorize_access_token()
    id_claims = dict(token["userinfo"])  # present only once the ID token was verified
    userinfo, failed = None, False
    if (client.load_server_metadata() or {}).get("userinfo_endpoint"):
        try:
            userinfo = dict(client.userinfo(token=token))
        except (requests.RequestException, ValueError, AuthlibBaseError) as exc:
            # The ID token alone still identifies them; its groups may be fewer.
            log.warning("OIDC userinfo failed (%s): using the ID token's claims",
                        type(exc).__name__)
            failed = True
        else:
            if str(userinfo.get("sub")) != str(id_claims.get("sub")):
                raise ValueError("userinfo is about another subject than the ID token")
    return id_claims, userinfo, failed


@bp.get("/login/oidc/callback")
def callback():
    from cmoc.auth import sign_in

    if not current_app.config.get("OIDC_ISSUER"):
        return render_template("error.html", code=404, message="OIDC sign-in is not set up."), 404
    error = request.args.get("error")
    if error and not session.get(f"_state_oidc_{request.args.get('state', '')}"):
        # Not the answer to a sign-in this browser started: nothing to show or audit.
        return _page(400, "This sign-in link is not one this browser started. Sign in again.")
    if error:
        # The provider said no (the user denied access, a misconfigured client…): say which.
        description = (request.args.get("error_description") or "")[:200]
        log.warning("OIDC provider refused the sign-in: %s %s", error[:64], description)
        record_now("login.failed", actor=None, actor_name="oidc",
                   after={"reason": "provider error", "error": error[:64],
                          "description": description})
        return _page(401, f"{_label()} did not sign you in: {error[:64]}"
                          + (f" ({description})" if description else "") + ".")
    try:
        id_claims, userinfo, userinfo_failed = _exchange()
    except requests.RequestException as exc:
        return _unavailable("token", exc)
    except (AuthlibBaseError, JoseError, ValueError, KeyError) as exc:
        code = getattr(exc, "error", None) or type(exc).__name__
        log.warning("OIDC sign-in could not be verified: %s", code)
        record_now("login.failed", actor=None, actor_name="oidc",
                   after={"reason": "not verified", "error": str(code)[:64]})
        return _page(401, "Sign-in with the identity provider failed: its answer could not be "
                          f"verified ({str(code)[:64]}).")
    return _finish(id_claims, userinfo, sign_in, userinfo_failed=userinfo_failed)


def _finish(id_claims: dict, userinfo: dict | None, sign_in, *, userinfo_failed: bool = False):
    settings = current_app.config.get("OIDC") or {}
    claims: dict[str, Any] = {**id_claims, **{k: userinfo[k] for k in PROFILE_CLAIMS
                                             if userinfo and userinfo.get(k)}}
    groups = groups_from(userinfo, id_claims, settings)
    role = role_for(groups, settings)
    subject = f"{current_app.config['OIDC_ISSUER'].rstrip('/')}|{claims['sub']}"
    user = db.session.scalar(select(User).where(User.oidc_subject == subject))
    if userinfo_failed and user is not None and user.active and (
            role is None or Role(role).rank < user.role_enum.rank):
        # The ID token's groups are only the direct ones: a userinfo hiccup (GitLab in
        # trouble, when an incident needs its CMOC) never demotes or locks out a known user.
        log.warning("OIDC: userinfo unavailable, %s keeps the role %s", user.username,
                    user.role)
        role = user.role
    if role is None:
        record_now("login.failed", actor=user, actor_name=claims.get("preferred_username"),
                   after={"reason": "no mapped group", "groups": groups[:20]})
        return _page(403, "You signed in, but none of your groups may use cmoc. Ask an admin.")
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
    else:
        _correct_username(user, claims)
        if user.role != role:
            record("user.role", actor=user, target=user, before={"role": user.role},
                   after={"role": role, "via": "oidc groups"})
            user.role = role
            # As for a role changed by an admin: sessions under the old role end.
            end_user_sessions(user_id=user.id, now=utcnow(), reason="role")
    # The address PagerDuty finds the on-call CMOC by: only one the provider says it verified
    # (the address and its flag from the same answer).
    source = userinfo if userinfo and userinfo.get("email") else id_claims
    email = source.get("email")
    if isinstance(email, str) and email and source.get("email_verified") is True:
        user.email = email[:255]
    db.session.commit()
    return sign_in(user, method="oidc", next_url=session.pop("oidc_next", None))


def _correct_username(user: User, claims: dict) -> None:
    """A name made up at first sign-in (`user-<sub>`, the claim was missing) becomes the real
    one once the provider gives it."""
    named = _named(claims)
    made_up = re.fullmatch(re.escape(_fallback(claims)) + r"(-\d+)?", user.username)
    if not named or not made_up:
        return
    new = _free(named, keep=user)
    if new != user.username:
        record("user.rename", actor=user, target=user, before={"username": user.username},
               after={"username": new, "via": "oidc"})
        user.username = new
