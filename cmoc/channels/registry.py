"""Builds the three channel adapters from configuration.

A channel with its credentials posts for real. One without them posts to the built-in sandbox
when `SANDBOX_URL` names one (`cmoc sandbox`, started by `make run`), with the sandbox's own
credentials; else it is in dry-run (the payload is recorded, nothing is sent).
"""

from __future__ import annotations

from typing import Any

import requests

from cmoc.channels import Channel
from cmoc.channels.gitlab import GitLab
from cmoc.channels.gitlab_api import GitLabApi
from cmoc.channels.http import make_session
from cmoc.channels.slack import Slack
from cmoc.channels.statusio import StatusIO
from cmoc.channels.twitter import Twitter, make_client
from cmoc.gitlab_settings import gitlab_settings

# The settings each channel needs before it sends anything (else it is in dry-run).
REQUIRED = {
    "statusio": ("STATUSIO_API_ID", "STATUSIO_API_KEY", "STATUSIO_STATUSPAGE_ID"),
    "twitter": ("TWITTER_CONSUMER_KEY", "TWITTER_CONSUMER_SECRET", "TWITTER_ACCESS_TOKEN",
                "TWITTER_ACCESS_TOKEN_SECRET"),
    "slack": ("SLACK_BOT_TOKEN", "SLACK_ADVOCATES_CHANNEL"),
    "gitlab": ("GITLAB_TOKEN",),
}


# The settings the sandbox supplies for a channel without credentials.
SANDBOX_SETTINGS = {
    "statusio": ("STATUSIO_API_URL", "STATUSIO_API_ID", "STATUSIO_API_KEY",
                 "STATUSIO_STATUSPAGE_ID"),
    "twitter": ("TWITTER_API_URL", "TWITTER_CONSUMER_KEY", "TWITTER_CONSUMER_SECRET",
                "TWITTER_ACCESS_TOKEN", "TWITTER_ACCESS_TOKEN_SECRET"),
    "slack": ("SLACK_API_URL", "SLACK_BOT_TOKEN", "SLACK_ADVOCATES_CHANNEL",
              "SLACK_ADVOCATES_GROUP_ID"),
    "gitlab": (),   # cmoc.gitlab_settings overlays the sandbox's GitLab itself
}
SANDBOX_REMINDER_CHANNEL = "#cmoc-reminders"


def configured_channels(config: dict[str, Any]) -> dict[str, bool]:
    """Which channels have credentials, from the config alone (no adapter is built)."""
    return {name: all(config.get(k) for k in keys) for name, keys in REQUIRED.items()}


def sandboxed_channels(config: dict[str, Any]) -> set[str]:
    """Channels without credentials that post to the sandbox (none without SANDBOX_URL)."""
    if not config.get("SANDBOX_URL"):
        return set()
    return {name for name, ok in configured_channels(config).items() if not ok}


def channel_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The configuration the adapters are built from: the sandbox's URL and credentials
    overlaid for each sandboxed channel; everything else as configured."""
    sandboxed = sandboxed_channels(config)
    if not sandboxed:
        return config
    from cmoc.fake_apis import fake_env

    settings = dict(config)
    sandbox = fake_env(str(config["SANDBOX_URL"]).rstrip("/"))
    for name in sandboxed:
        settings.update({key: sandbox[key] for key in SANDBOX_SETTINGS[name] if key in sandbox})
    if "slack" in sandboxed and not settings.get("SLACK_REMINDER_CHANNEL"):
        settings["SLACK_REMINDER_CHANNEL"] = SANDBOX_REMINDER_CHANNEL
    return settings


def http_timeout(config: dict[str, Any]) -> tuple[float, float]:
    return (config.get("HTTP_CONNECT_TIMEOUT", 3.05), config.get("HTTP_READ_TIMEOUT", 10))


def build_statusio(config: dict[str, Any], *, components: list[dict[str, Any]],
                   session: requests.Session | None = None) -> StatusIO:
    config = channel_settings(config)
    component_ids = {c["name"]: (c.get("id"), list(c.get("containers") or [])) for c in components}
    return StatusIO(
        session=session or make_session(timeout=http_timeout(config)),
        base_url=config["STATUSIO_API_URL"], api_id=config.get("STATUSIO_API_ID"),
        api_key=config.get("STATUSIO_API_KEY"),
        statuspage_id=config.get("STATUSIO_STATUSPAGE_ID"), components=component_ids,
        notify=config.get("STATUSIO_NOTIFY"),
    )


def build_channels(config: dict[str, Any], *, components: list[dict[str, Any]],
                   session: requests.Session | None = None) -> dict[str, Channel]:
    """Fresh adapters (one HTTP session each unless one is injected)."""
    config = channel_settings(config)
    timeout = http_timeout(config)
    statusio = build_statusio(config, components=components, session=session)
    configured = configured_channels(config)["twitter"]
    twitter = Twitter(
        client=make_client(
            consumer_key=config.get("TWITTER_CONSUMER_KEY"),
            consumer_secret=config.get("TWITTER_CONSUMER_SECRET"),
            access_token=config.get("TWITTER_ACCESS_TOKEN"),
            access_token_secret=config.get("TWITTER_ACCESS_TOKEN_SECRET"),
            api_url=config["TWITTER_API_URL"], timeout=timeout),
        configured=configured,
    )
    slack = Slack(
        session=session or make_session(timeout=timeout), base_url=config["SLACK_API_URL"],
        token=config.get("SLACK_BOT_TOKEN"), channel=config.get("SLACK_ADVOCATES_CHANNEL"),
        group_id=config.get("SLACK_ADVOCATES_GROUP_ID"),
    )
    return {"statusio": statusio, "twitter": twitter, "slack": slack,
            "gitlab": build_gitlab(config, session=session)}


def build_gitlab_api(config: dict[str, Any], *,
                     session: requests.Session | None = None) -> GitLabApi:
    """python-gitlab behind cmoc's result objects: GITLAB_URL/GITLAB_TOKEN, or the sandbox's
    GitLab when there is no token and the sandbox runs."""
    settings = gitlab_settings(config)
    timeout = http_timeout(config)
    return GitLabApi(session=session or make_session(timeout=timeout), url=settings.url,
                     token=settings.token, timeout=timeout)


def build_gitlab(config: dict[str, Any], *, session: requests.Session | None = None) -> GitLab:
    """The incident issue as a channel: each update a comment (see `cmoc.channels.gitlab`)."""
    return GitLab(api=build_gitlab_api(config, session=session),
                  default_project=gitlab_settings(config).incident_project)
