"""GitLab, stakeholder-notice and handover settings: the `[gitlab]`, `[stakeholders]` and
`[handover]` tables of the config plus the GITLAB_* and SLACK_STAKEHOLDER_CHANNELS variables,
checked at start and read through one function each.

Without GITLAB_TOKEN, a deployment whose sandbox runs (`SANDBOX_URL`) talks to the sandbox's
GitLab instead, like the other channels.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import time
from typing import Any

from cmoc.cadence import ConfigError
from cmoc.enums import ACTIVE_STATUSES, Severity, State

SEVERITY_LABEL = re.compile(r"^severity::([1-4])$", re.IGNORECASE)
SHIFT_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class GitlabSettings:
    url: str
    token: str | None
    incident_project: str | None
    handover_project: str | None
    webhook_secret: str | None
    incident_labels: frozenset[str]          # lower case
    follow_severities: frozenset[str]
    slack_channel: str                       # e.g. "#incident-{iid}"
    state_labels: dict[str, str]             # label (lower case) -> state
    status_page_label: str
    severity_field: dict[str, str]           # GitLab severity (upper case) -> S1..S4
    status_by_severity: dict[str, str]
    components: dict[str, str]               # label (lower case) -> component name
    sandboxed: bool = False

    @property
    def configured(self) -> bool:
        """GitLab can be called (a token, real or the sandbox's)."""
        return bool(self.token)


@dataclass(frozen=True)
class StakeholderSettings:
    channels: tuple[str, ...]
    severities: frozenset[str]
    thread_updates: bool
    mention: str | None                      # "<!subteam^S…>" or None
    wait_seconds: float


@dataclass(frozen=True)
class HandoverSettings:
    shift_starts: tuple[time, ...]           # sorted, UTC
    scheduled: bool
    labels: tuple[str, ...]


def sandbox_webhook_secret(secret_key: str) -> str:
    """The secret the sandbox's GitLab signs its webhooks with: derived from SECRET_KEY, which
    the app and `cmoc sandbox` share (.env), so nobody else can forge them."""
    return hmac.new(secret_key.encode(), b"cmoc-sandbox-gitlab-webhook",
                    hashlib.sha256).hexdigest()


def gitlab_settings(config: dict[str, Any]) -> GitlabSettings:
    table = config.get("GITLAB") or {}
    url, token = config.get("GITLAB_URL") or "https://gitlab.com", config.get("GITLAB_TOKEN")
    incident = config.get("GITLAB_INCIDENT_PROJECT")
    handover = config.get("GITLAB_HANDOVER_PROJECT")
    secret, sandboxed = config.get("GITLAB_WEBHOOK_SECRET"), False
    if not token and config.get("SANDBOX_URL"):
        from cmoc.fake_apis import fake_env

        fake = fake_env(str(config["SANDBOX_URL"]).rstrip("/"))
        url, token, sandboxed = fake["GITLAB_URL"], fake["GITLAB_TOKEN"], True
        incident = incident or fake["GITLAB_INCIDENT_PROJECT"]
        handover = handover or fake["GITLAB_HANDOVER_PROJECT"]
        secret = secret or sandbox_webhook_secret(str(config.get("SECRET_KEY") or ""))
    return GitlabSettings(
        url=str(url).rstrip("/"), token=token, incident_project=incident,
        handover_project=handover, webhook_secret=secret,
        incident_labels=frozenset(str(x).lower() for x in table.get("incident_labels", [])),
        follow_severities=frozenset(table.get("follow_severities", ["S1", "S2"])),
        slack_channel=str(table.get("slack_channel", "")),
        state_labels={str(k).lower(): str(v) for k, v in
                      (table.get("state_labels") or {}).items()},
        status_page_label=str(table.get("status_page_label", "")),
        severity_field={str(k).upper(): str(v) for k, v in
                        (table.get("severity_field") or {}).items()},
        status_by_severity=dict(table.get("status_by_severity") or {}),
        components={str(k).lower(): str(v) for k, v in
                    (table.get("components") or {}).items()},
        sandboxed=sandboxed,
    )


def stakeholder_settings(config: dict[str, Any]) -> StakeholderSettings:
    table = config.get("STAKEHOLDERS") or {}
    raw = config.get("SLACK_STAKEHOLDER_CHANNELS") or ""
    channels = raw if isinstance(raw, list | tuple) else str(raw).split(",")
    group = config.get("SLACK_ADVOCATES_GROUP_ID")
    return StakeholderSettings(
        channels=tuple(dict.fromkeys(c.strip() for c in channels if c.strip())),
        severities=frozenset(table.get("severities", ["S1", "S2"])),
        thread_updates=bool(table.get("thread_updates", True)),
        mention=f"<!subteam^{group}>" if table.get("mention_advocates") and group else None,
        wait_seconds=float(table.get("wait_seconds", 120)),
    )


def handover_settings(config: dict[str, Any]) -> HandoverSettings:
    table = config.get("HANDOVER") or {}
    starts = sorted({_shift_time(s) for s in table.get("shift_starts", ["00:00"])})
    return HandoverSettings(shift_starts=tuple(starts), scheduled=bool(table.get("scheduled")),
                            labels=tuple(str(x) for x in table.get("labels", [])))


def _shift_time(value: str) -> time:
    match = SHIFT_TIME.match(str(value))
    if not match:
        raise ConfigError(f"config: handover.shift_starts: {value!r} is not a UTC time HH:MM")
    return time(int(match.group(1)), int(match.group(2)))


def check_gitlab_config(config: dict[str, Any]) -> None:
    """Stops the app at start with a message naming the bad setting."""
    settings = gitlab_settings(config)
    severities = {s.value for s in Severity}
    for name, value in settings.severity_field.items():
        if value not in severities:
            raise ConfigError(f"config: gitlab.severity_field.{name} = {value!r} is not one of "
                              "S1, S2, S3, S4")
    for name in settings.follow_severities | stakeholder_settings(config).severities:
        if name not in severities:
            raise ConfigError(f"config: severity {name!r} (gitlab.follow_severities or "
                              "stakeholders.severities) is not one of S1, S2, S3, S4")
    statuses = {s.value for s in ACTIVE_STATUSES}
    for name in severities:
        if settings.status_by_severity.get(name) not in statuses:
            raise ConfigError(f"config: gitlab.status_by_severity.{name} must be one of "
                              + ", ".join(sorted(statuses)))
    later = {State.IDENTIFIED.value, State.MONITORING.value, State.RESOLVED.value}
    for label, state in settings.state_labels.items():
        if state not in later:
            raise ConfigError(f"config: gitlab.state_labels.{label!r} = {state!r} must be "
                              "identified, monitoring or resolved")
    if settings.slack_channel and "{iid}" not in settings.slack_channel:
        raise ConfigError("config: gitlab.slack_channel must contain {iid} (or be empty)")
    handover = handover_settings(config)
    if not handover.shift_starts:
        raise ConfigError("config: handover.shift_starts needs at least one UTC time")
