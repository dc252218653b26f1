"""How each channel runs right now, decided in one place so every page shows the same answer.

Today a channel is `live` (its credentials are configured: posts go out for real) or `dry-run`
(no credentials: the payload is recorded, nothing is sent). A further mode only needs a branch
in `channel_modes` and an entry in `MODE_HELP`; the page header renders whatever is returned.
"""

from __future__ import annotations

from typing import Any

from cmoc.channels.registry import configured_channels
from cmoc.enums import CHANNELS

LIVE = "live"
DRY_RUN = "dry-run"

# What each mode means, for the header's tooltips and the README.
MODE_HELP = {
    LIVE: "credentials configured: posts go out for real",
    DRY_RUN: "no credentials: the payload is recorded on the update, nothing is sent",
}


def channel_modes(config: dict[str, Any]) -> dict[str, str]:
    """Each channel's mode, in channel order: {"statusio": "live", "twitter": "dry-run", ...}."""
    configured = configured_channels(config)
    return {name: LIVE if configured[name] else DRY_RUN for name in CHANNELS}
