"""Builds the three channel adapters from configuration."""

from __future__ import annotations

from typing import Any

import requests

from cmoc.channels import Channel
from cmoc.channels.http import make_session
from cmoc.channels.slack import Slack
from cmoc.channels.statusio import StatusIO
from cmoc.channels.twitter import Twitter, make_client


def twitter_configured(config: dict[str, Any]) -> bool:
    return all(config.get(k) for k in ("TWITTER_CONSUMER_KEY", "TWITTER_CONSUMER_SECRET",
                                       "TWITTER_ACCESS_TOKEN", "TWITTER_ACCESS_TOKEN_SECRET"))


def build_channels(config: dict[str, Any], *, components: list[dict[str, Any]],
                   session: requests.Session | None = None) -> dict[str, Channel]:
    """Fresh adapters (one HTTP session each unless one is injected)."""
    timeout = (config.get("HTTP_CONNECT_TIMEOUT", 3.05), config.get("HTTP_READ_TIMEOUT", 10))
    component_ids = {c["name"]: (c.get("id"), list(c.get("containers") or [])) for c in components}
    statusio = StatusIO(
        session=session or make_session(timeout=timeout), base_url=config["STATUSIO_API_URL"],
        api_id=config.get("STATUSIO_API_ID"), api_key=config.get("STATUSIO_API_KEY"),
        statuspage_id=config.get("STATUSIO_STATUSPAGE_ID"), components=component_ids,
        notify=config.get("STATUSIO_NOTIFY"),
    )
    configured = twitter_configured(config)
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
    return {"statusio": statusio, "twitter": twitter, "slack": slack}
