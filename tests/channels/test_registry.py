"""The config-only check of which channels are configured agrees with the adapters."""

from __future__ import annotations

import pytest

from cmoc.channels.registry import REQUIRED, build_channels, configured_channels
from cmoc.config import CHANNEL_ENV
from cmoc.fake_apis import fake_env

FULL = {**CHANNEL_ENV, **fake_env("http://127.0.0.1:9")}


@pytest.mark.parametrize("missing", [None, *[k for keys in REQUIRED.values() for k in keys]])
def test_configured_flags_match_the_adapters(missing):
    config = {**FULL, **({missing: None} if missing else {})}
    adapters = build_channels(config, components=[])
    flags = configured_channels(config)
    assert flags == {name: adapter.configured for name, adapter in adapters.items()}
    assert all(flags.values()) == (missing is None)
