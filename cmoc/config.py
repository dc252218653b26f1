"""Loads configuration: config/default.toml -> CMOC_CONFIG file -> environment -> overrides."""

from __future__ import annotations

import os
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask

from cmoc.cadence import ConfigError, parse_cadence
from cmoc.enums import Role
from cmoc.gitlab_settings import check_gitlab_config

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"

# Channel settings read verbatim from the environment (README "Configuration").
CHANNEL_ENV = {
    "STATUSIO_API_URL": "https://api.status.io/v2",
    "STATUSIO_API_ID": None,
    "STATUSIO_API_KEY": None,
    "STATUSIO_STATUSPAGE_ID": None,
    "TWITTER_API_URL": "https://api.twitter.com",
    "TWITTER_CONSUMER_KEY": None,
    "TWITTER_CONSUMER_SECRET": None,
    "TWITTER_ACCESS_TOKEN": None,
    "TWITTER_ACCESS_TOKEN_SECRET": None,
    "SLACK_API_URL": "https://slack.com/api",
    "SLACK_BOT_TOKEN": None,
    "SLACK_ADVOCATES_CHANNEL": None,
    "SLACK_ADVOCATES_GROUP_ID": None,
    "SLACK_REMINDER_CHANNEL": None,
    "SLACK_ESCALATION_MENTION": None,
    "SLACK_ESCALATION_CHANNEL": None,
    # Slack buttons and /cmoc (issue 15): requests are checked with the app's signing secret.
    "SLACK_SIGNING_SECRET": None,
    "OIDC_ISSUER": None,
    "OIDC_CLIENT_ID": None,
    "OIDC_CLIENT_SECRET": None,
    "METRICS_TOKEN": None,
    # GitLab: the incident issue as source, the handover tracker, the webhook (issue 14).
    "GITLAB_URL": "https://gitlab.com",
    "GITLAB_TOKEN": None,
    "GITLAB_INCIDENT_PROJECT": None,
    "GITLAB_HANDOVER_PROJECT": None,
    "GITLAB_WEBHOOK_SECRET": None,
    # Comma-separated internal channels told of S1/S2 incidents (Incident Notifier fields).
    "SLACK_STAKEHOLDER_CHANNELS": None,
    # Reminders follow the on-call CMOC (issue 15): PagerDuty's CMOC schedule.
    "PAGERDUTY_API_URL": "https://api.pagerduty.com",
    "PAGERDUTY_API_TOKEN": None,
    "PAGERDUTY_CMOC_SCHEDULE_ID": None,
    "PAGERDUTY_CA_FILE": None,
}

# Keys whose values are secrets: never rendered, logged or put in error text.
SECRET_KEYS = frozenset({
    "SECRET_KEY", "STATUSIO_API_KEY", "TWITTER_CONSUMER_SECRET", "TWITTER_ACCESS_TOKEN",
    "TWITTER_ACCESS_TOKEN_SECRET", "SLACK_BOT_TOKEN", "OIDC_CLIENT_SECRET", "METRICS_TOKEN",
    "GITLAB_TOKEN", "GITLAB_WEBHOOK_SECRET", "PAGERDUTY_API_TOKEN", "SLACK_SIGNING_SECRET",
})


def normalise_database_url(url: str) -> str:
    """Accepts Heroku's postgres:// and plain postgresql://, and selects the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _read_toml(path: Path) -> tuple[dict[str, Any], str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from exc
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_config(app: Flask, overrides: dict[str, Any] | None = None) -> None:
    """Fills app.config from the layered sources and validates it; raises ConfigError."""
    overrides = dict(overrides or {})
    settings, source = _read_toml(CONFIG_DIR / "default.toml")
    origin = "config/default.toml"
    extra_path = overrides.pop("CMOC_CONFIG", None) or os.environ.get("CMOC_CONFIG")
    if extra_path:
        app.config["CMOC_CONFIG_PATH"] = str(extra_path)
        extra, extra_source = _read_toml(Path(extra_path))
        settings = _merge(settings, extra)
        if "cadence" in extra:
            source, origin = extra_source, str(extra_path)
    for key, value in settings.items():
        if key.upper() in SECRET_KEYS:
            raise ConfigError(f"{key} is a secret: set it in the environment, not in a config file")
        app.config[key.upper()] = value

    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///" + os.path.join(
        app.instance_path, "cmoc.sqlite3"
    )
    for key, default in CHANNEL_ENV.items():
        app.config[key] = os.environ.get(key) or default
    if os.environ.get("DATABASE_URL"):
        app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
    if os.environ.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = os.environ["SECRET_KEY"]
    # CMOC_FOO=... sets FOO (values parsed as JSON where they are JSON).
    app.config.from_prefixed_env("CMOC")

    app.config.update(overrides)
    if "DATABASE_URL" in overrides:
        app.config["SQLALCHEMY_DATABASE_URI"] = overrides["DATABASE_URL"]
    app.config["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(
        app.config["SQLALCHEMY_DATABASE_URI"]
    )

    if not app.config.get("SECRET_KEY"):
        raise ConfigError("SECRET_KEY is not set: export SECRET_KEY (make run writes one to .env)")
    app.config["CADENCE_MATRIX"] = parse_cadence(
        app.config.get("CADENCE"), source=source, origin=origin
    )
    _check_components(app.config.get("COMPONENTS"))
    _check_trusted_proxies(app.config.get("TRUSTED_PROXIES", 0))
    _check_simulated(app.config)
    _check_oidc(app.config.get("OIDC") or {})
    check_gitlab_config(app.config)
    # Publishing runs each channel in its own thread, each with a connection of its own.
    if app.config["SQLALCHEMY_DATABASE_URI"] not in ("sqlite://", "sqlite:///:memory:"):
        app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {
            "pool_size": 5, "max_overflow": 25, "pool_timeout": 30, "pool_pre_ping": True})
    for key in ("SESSION_HOURS", "SESSION_IDLE_MINUTES"):
        value = app.config.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(f"{key.lower()} must be a positive number")
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=float(app.config["SESSION_HOURS"]))
    # The cookie is only re-sent when its content changes: its expiry marks the session's
    # lifetime from sign-in, which the server enforces anyway (services/sessions.py).
    app.config["SESSION_REFRESH_EACH_REQUEST"] = False
    # Our defaults for settings Flask already defaults to an empty value (so setdefault would
    # not apply): a 413 past 256 KiB, Secure cookies when served over https, SameSite=Lax.
    _default_unset(app, "MAX_CONTENT_LENGTH", 256 * 1024)
    _default_unset(app, "SESSION_COOKIE_SECURE",
                   str(app.config.get("BASE_URL", "")).startswith("https://"))
    _default_unset(app, "SESSION_COOKIE_SAMESITE", "Lax")


def _default_unset(app: Flask, key: str, value: Any) -> None:
    if not app.config.get(key):
        app.config[key] = value


def _check_trusted_proxies(value: object) -> None:
    """A hop count: a wrong value would trust a forged X-Forwarded-For, so it stops the app."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"config: trusted_proxies = {value!r} must be the number of reverse "
                          "proxies in front of cmoc (0 when clients connect directly)")


def _check_simulated(config: dict[str, Any]) -> None:
    """A public deployment (https) must not quietly run a channel that posts nowhere real."""
    from cmoc.modes import channel_modes, simulated

    if not str(config.get("BASE_URL", "")).startswith("https://") or config.get("SANDBOX"):
        return
    fake = simulated(config)
    if fake:
        modes = channel_modes(config)
        raise ConfigError(
            "BASE_URL is https (a real deployment) but these channels do not post for real: "
            + ", ".join(f"{name} ({modes[name]})" for name in fake)
            + ". Set their credentials, or set CMOC_SANDBOX=1 to run them simulated on purpose.")


def _check_oidc(oidc: dict) -> None:
    roles = {r.value for r in Role}
    for group, role in (oidc.get("roles") or {}).items():
        if role not in roles:
            raise ConfigError(f"config: oidc.roles.{group!r} = {role!r} is not a role "
                              f"({', '.join(sorted(roles))})")
    default = oidc.get("default_role", "")
    if default and default not in roles:
        raise ConfigError(f"config: oidc.default_role = {default!r} is not a role")


def _check_components(components: object) -> None:
    if not isinstance(components, list) or not components:
        raise ConfigError("config: `components` must be a non-empty list of {name = ...} tables")
    seen = set()
    for item in components:
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"config: component {item!r} has no name")
        if name in seen:
            raise ConfigError(f"config: component {name!r} is listed twice")
        seen.add(name)
