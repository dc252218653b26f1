"""How each channel runs right now, decided in one place so every page shows the same answer.

A channel is `live` (its credentials are configured: posts go out for real), `sandbox` (no
credentials, and the built-in sandbox is running: posts go to cmoc's simulated status.io, X or
Slack, shown on the Sandbox page) or `dry-run` (no credentials and no sandbox: the payload is
recorded, nothing is sent). The page header renders whatever is returned.
"""

from __future__ import annotations

from typing import Any

from cmoc.channels.registry import configured_channels, sandboxed_channels
from cmoc.enums import CHANNELS

LIVE = "live"
SANDBOX = "sandbox"
DRY_RUN = "dry-run"

# What each mode means, for the header's tooltips and the README.
MODE_HELP = {
    LIVE: "credentials configured: posts go out for real",
    SANDBOX: "no credentials: posts go to cmoc's simulated service (see the Sandbox page)",
    DRY_RUN: "no credentials: the payload is recorded on the update, nothing is sent",
}


def channel_modes(config: dict[str, Any]) -> dict[str, str]:
    """Each channel's mode, in channel order: {"statusio": "live", "twitter": "dry-run", ...}."""
    configured = configured_channels(config)
    sandboxed = sandboxed_channels(config)
    return {name: LIVE if configured[name] else SANDBOX if name in sandboxed else DRY_RUN
            for name in CHANNELS}


def simulated(config: dict[str, Any]) -> list[str]:
    """Channels that do not post for real (sandbox or dry-run)."""
    return [name for name, mode in channel_modes(config).items() if mode != LIVE]
