"""The Sandbox page's data: what the simulated status page, X account and Slack workspace
hold, shaped the way the public and the advocates would see them; fault injection and reset.

The sandbox itself runs in its own process (`cmoc sandbox`); this talks to its control API.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests
from markupsafe import Markup, escape

from cmoc.fake_apis.sandbox import FAULT_KINDS

STATE_LABELS = {100: "Investigating", 200: "Identified", 300: "Monitoring"}
STATUS_LABELS = {100: "Operational", 300: "Degraded Performance",
                 400: "Partial Service Disruption", 500: "Service Disruption",
                 600: "Security Issue"}
TIMEOUT = (2, 5)


class SandboxUnavailable(Exception):
    """The sandbox is not configured or does not answer."""


@dataclass
class PageIncident:
    id: str
    name: str
    resolved: bool
    opened: datetime | None
    components: list[str]
    messages: list[dict[str, Any]]     # newest first: state, status, details, at


@dataclass
class Thread:
    root_id: str
    posts: list[dict[str, Any]]        # oldest first


@dataclass
class SandboxView:
    incidents: list[PageIncident] = field(default_factory=list)
    overall: str = "All Systems Operational"
    tweets: list[Thread] = field(default_factory=list)
    slack: list[Thread] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)


def _url(config: dict[str, Any], path: str) -> str:
    base = str(config.get("SANDBOX_URL") or "").rstrip("/")
    if not base:
        raise SandboxUnavailable("The sandbox is off: no SANDBOX_URL (make run starts one).")
    return f"{base}/_sandbox/{path}"


def _call(config: dict[str, Any], method: str, path: str, **kwargs) -> dict[str, Any]:
    try:
        response = requests.request(method, _url(config, path), timeout=TIMEOUT, **kwargs)
    except requests.RequestException as exc:
        raise SandboxUnavailable("The sandbox does not answer at "
                                 f"{config.get('SANDBOX_URL')}: is `cmoc sandbox` running? "
                                 f"({type(exc).__name__})") from None
    if response.status_code >= 400:
        raise SandboxUnavailable(f"The sandbox refused it (HTTP {response.status_code}): "
                                 f"{response.text[:200]}")
    return response.json()


def sandbox_view(config: dict[str, Any]) -> SandboxView:
    return shape(_call(config, "GET", "state"))


def inject_fault(config: dict[str, Any], *, channel: str, kind: str, times: int) -> None:
    if kind not in FAULT_KINDS:
        raise ValueError(f"Unknown fault: {kind}")
    _call(config, "POST", "faults", json={"channel": channel, "kind": kind, "times": times})


def clear_faults(config: dict[str, Any]) -> None:
    _call(config, "DELETE", "faults")


def reset(config: dict[str, Any]) -> None:
    _call(config, "POST", "reset")


# -- shaping (pure) -------------------------------------------------------------------------
def shape(state: dict[str, Any]) -> SandboxView:
    """The sandbox's raw state as pages: the status page, tweet threads, Slack threads."""
    names = {f"{c['_id']}-{k['_id']}": c["name"] for c in state.get("components", [])
             for k in c.get("containers", [])}
    view = SandboxView(faults=state.get("faults", []))
    worst = 100
    for raw in sorted(state.get("incidents", []), key=lambda i: i.get("datetime_open") or "",
                      reverse=True):
        messages = [{"state": "Resolved" if raw["resolved"] and i == len(raw["messages"]) - 1
                     else STATE_LABELS.get(m.get("state"), str(m.get("state"))),
                     "status": STATUS_LABELS.get(m.get("status"), str(m.get("status"))),
                     "details": m.get("details") or "", "at": _time(m.get("datetime"))}
                    for i, m in enumerate(raw.get("messages", []))]
        view.incidents.append(PageIncident(
            id=raw["_id"], name=raw["name"], resolved=raw["resolved"],
            opened=_time(raw.get("datetime_open")),
            components=sorted({names.get(p, p) for p in raw.get("infrastructure_affected", [])}),
            messages=list(reversed(messages))))
        if not raw["resolved"] and raw.get("messages"):
            worst = max(worst, int(raw["messages"][-1].get("status") or 100))
    view.overall = ("All Systems Operational" if worst == 100
                    else STATUS_LABELS.get(worst, "Disrupted"))
    tweets = [{**t, "at": _time(t.get("created_at"))} for t in state.get("tweets", [])]
    view.tweets = _threads(tweets, parent="in_reply_to")
    channels = state.get("slack_channels", {})
    messages = [{**m, "channel_name": "#" + channels.get(m.get("channel"), m.get("channel") or "")
                 if not str(m.get("channel", "")).startswith("D") else "direct message",
                 "at": _time(float(m["ts"])) if m.get("ts") else None}
                for m in state.get("slack_messages", [])]
    view.slack = _threads(messages, parent="thread_ts", key="ts")
    return view


def _threads(posts: list[dict[str, Any]], *, parent: str, key: str = "id") -> list[Thread]:
    """Posts grouped by thread (a reply's parent leads back to the root), newest thread first."""
    by_id = {p[key]: p for p in posts}
    threads: dict[str, Thread] = {}
    for post in posts:
        root = post
        seen = set()
        while root.get(parent) and root[parent] in by_id and root[key] not in seen:
            seen.add(root[key])
            root = by_id[root[parent]]
        threads.setdefault(root[key], Thread(root_id=root[key], posts=[])).posts.append(post)
    return list(reversed(threads.values()))


def _time(value: Any) -> datetime | None:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


_SLACK_BOLD = re.compile(r"\*([^*\n]+)\*")
_SLACK_LINK = re.compile(r"&lt;(!subteam\^[A-Z0-9]+|https?://[^|\s]+?)(?:\|(.*?))?&gt;")


def slack_markup(text: str | None) -> Markup:
    """Slack mrkdwn as a reader sees it: `<!subteam^ID>` as a mention, `<url|label>` as a
    link, everything else as text (escaped: typed text never becomes markup)."""
    # Slack text arrives with &, <, > escaped by cmoc; unescape those three, then escape all.
    plain = (text or "").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    escaped = str(escape(plain))

    def link(match: re.Match) -> str:
        target, label = match.group(1), match.group(2)
        if target.startswith("!subteam^"):
            return f'<span class="mention">@{label or "user-group " + target[9:]}</span>'
        return f'<a href="{target}" rel="noopener noreferrer">{label or target}</a>'

    linked = _SLACK_LINK.sub(link, escaped)
    # Safe: built from the escaped text; only our own tags were added.
    return Markup(_SLACK_BOLD.sub(r"<strong>\1</strong>", linked))  # noqa: S704
