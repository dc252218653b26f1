"""The rules a channel's text must pass before it is sent, and the token resolved when it is.

Pure functions, shared by the drafting form, its live preview, the API and publishing, so
each says the same thing about the same text. A problem blocks only its own channel.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime

from cmoc.enums import CHANNEL_LABELS, CHANNELS
from cmoc.timeutil import fmt_utc
from cmoc.tweet import TWEET_LIMIT, weighted_length

# Written where the next-update time goes; replaced at publish time by the time the
# reminder uses, so a draft left open (or edited by hand) never promises a stale time.
NEXT_UPDATE = "{next_update}"
TOKENS = frozenset({"next_update"})
# Upper bounds per channel: Slack section text is capped at 3,000 characters.
TEXT_LIMITS = {"statusio": 5000, "twitter": 1000, "slack": 3000, "gitlab": 10000}

_MARKER = re.compile(r"\[([a-z][a-z0-9_]{0,63})\]")
_TOKEN = re.compile(r"\{([a-z][a-z0-9_]{0,63})\}")
_TEMPLATE_SYNTAX = re.compile(r"\{\{|\}\}|\{%|%\}")
# "Next update by 07:43 UTC" typed as a literal time instead of the token.
_LITERAL_PROMISE = re.compile(r"next update\s+(?:by|at|around|before|expected)?\s*"
                              r"(\d{1,2}:\d{2})", re.IGNORECASE)


def next_update_text(at: datetime | None) -> str:
    """The next-update time as it appears in a published text: 07:44 UTC."""
    return fmt_utc(at, with_date=False) if at else ""


def resolve(text: str, *, next_update_at: datetime | None) -> str:
    """The text as it is sent: the token becomes the next-update time. Without a next
    update (Resolved) the token is left in place, and `problem` refuses the text."""
    if next_update_at is None:
        return text
    return text.replace(NEXT_UPDATE, next_update_text(next_update_at))


def markers_in(text: str, *, markers: Mapping[str, str] | None) -> list[str]:
    """Unfilled variable markers ([fix]) in a text: the names of `markers` (a template
    variable's name → its label), or any [lowercase_name] when no names are given."""
    found = _MARKER.findall(text or "")
    if markers is not None:
        found = [name for name in found if name in markers]
    return list(dict.fromkeys(found))


def problem(channel: str, text: str, *, next_update_at: datetime | None,
            markers: Mapping[str, str] | None = None) -> str | None:
    """Why this channel's text cannot be sent, in words for the CMOC; None when it can."""
    label = CHANNEL_LABELS[channel]
    body = (text or "").strip()
    if not body:
        return f"{label} text is empty."
    if len(body) > TEXT_LIMITS[channel]:
        return (f"{label} text is too long ({len(body)} characters, at most "
                f"{TEXT_LIMITS[channel]}).")
    found = markers_in(body, markers=markers)
    if found:
        named = ", ".join(f"[{name}]" + (f" (“{markers[name]}”)" if markers else "")
                          for name in found)
        return (f"{label} still has the placeholder {named}: fill in that field, or edit "
                "the text.")
    if _TEMPLATE_SYNTAX.search(body):
        return f"{label} text contains template syntax ({{{{ … }}}}): remove it."
    unknown = [t for t in _TOKEN.findall(body) if t not in TOKENS]
    if unknown:
        return (f"{label} text has an unknown token {{{unknown[0]}}}: the only token is "
                f"{NEXT_UPDATE}.")
    if NEXT_UPDATE in body and next_update_at is None:
        return (f"{label} text says {NEXT_UPDATE}, but a resolved incident has no next "
                "update: remove it.")
    if channel == "twitter":
        length = weighted_length(resolve(body, next_update_at=next_update_at))
        if length > TWEET_LIMIT:
            return (f"Tweet is {length} weighted characters, {length - TWEET_LIMIT} over the "
                    f"{TWEET_LIMIT} limit: shorten it, or publish without it.")
    return None


def problems(texts: Mapping[str, str], *, next_update_at: datetime | None,
             markers: Mapping[str, str] | None = None,
             channels: set[str] | None = None) -> dict[str, str]:
    """{channel: why it cannot be sent} for `channels` (default all)."""
    found = {}
    for channel in CHANNELS:
        if channels is not None and channel not in channels:
            continue
        reason = problem(channel, texts.get(channel, ""), next_update_at=next_update_at,
                         markers=markers)
        if reason:
            found[channel] = reason
    return found


def stale_times(texts: Mapping[str, str], *, next_update_at: datetime | None
                ) -> dict[str, str]:
    """Warnings for texts that promise a literal next-update time other than the real one
    (typed by hand, so it does not follow the publish time)."""
    if next_update_at is None:
        return {}
    real = next_update_text(next_update_at)
    warnings = {}
    for channel in CHANNELS:
        for typed in _LITERAL_PROMISE.findall(texts.get(channel, "")):
            if typed.zfill(5) != real[:5]:
                warnings[channel] = (
                    f"{CHANNEL_LABELS[channel]} promises the next update at {typed}, but it "
                    f"will be due at {real}: write {NEXT_UPDATE} instead of a time.")
                break
    return warnings
