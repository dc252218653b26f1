"""Display helpers for the pages: links to what each channel posted, readable JSON and Markdown,
which timeline updates start expanded. Pure functions, registered as Jinja filters/globals."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

from flask import Flask, current_app, url_for
from markdown_it import MarkdownIt
from markupsafe import Markup

from cmoc.enums import DeliveryStatus
from cmoc.models import Delivery, Incident, Update
from cmoc.modes import MODE_HELP, SANDBOX, channel_modes

# Slack ids of channels, private groups and DMs (a name like #advocates cannot be linked).
SLACK_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")
SLACK_TS = re.compile(r"^\d+\.\d+$")
# Descriptions are ours, but raw HTML in them is still shown as text, never as markup.
_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False})


def _http_base(url: str | None) -> str | None:
    """The URL without a trailing slash when it is http(s); anything else is not linked."""
    url = (url or "").strip()
    return url.rstrip("/") if url.startswith(("https://", "http://")) else None


def statusio_incident_url(status_page_url: str | None, page_id: str | None,
                          incident_id: str | None) -> str | None:
    """The public status page's incident: <page>/pages/incident/<page id>/<incident id>."""
    base = _http_base(status_page_url)
    if not (base and page_id and incident_id):
        return None
    return f"{base}/pages/incident/{page_id}/{incident_id}"


def tweet_url(tweet_id: str | None) -> str | None:
    return f"https://x.com/i/web/status/{tweet_id}" if tweet_id and tweet_id.isdigit() else None


def slack_permalink(workspace_url: str | None, channel_id: str | None, ts: str | None,
                    thread_ts: str | None = None) -> str | None:
    """https://<workspace>.slack.com/archives/<channel>/p<ts without the dot>; a reply also
    names its thread so Slack opens it in place. None without a workspace URL."""
    base = _http_base(workspace_url)
    if not (base and channel_id and SLACK_CHANNEL_ID.match(channel_id)
            and ts and SLACK_TS.match(ts)):
        return None
    url = f"{base}/archives/{channel_id}/p{ts.replace('.', '')}"
    if thread_ts and thread_ts != ts and SLACK_TS.match(thread_ts):
        url += f"?thread_ts={thread_ts}&cid={channel_id}"
    return url


def delivery_link(delivery: Delivery, incident: Incident, config: dict[str, Any]) -> str | None:
    """Where a sent delivery can be seen: the status page incident, the tweet, the Slack
    message. None when nothing was posted or the settings to build the link are missing."""
    if delivery.status != DeliveryStatus.SENT.value or not delivery.external_id:
        return None
    if channel_modes(config).get(delivery.channel) == SANDBOX:
        return sandbox_url(delivery.channel, delivery.external_id)
    if delivery.channel == "statusio":
        return statusio_incident_url(config.get("STATUS_PAGE_URL"),
                                     config.get("STATUSIO_STATUSPAGE_ID"), delivery.external_id)
    if delivery.channel == "twitter":
        return tweet_url(delivery.external_id)
    if delivery.channel == "gitlab":
        base = _http_base(incident.issue_url)
        return f"{base}#note_{delivery.external_id}" if base else None
    if delivery.channel == "slack":
        payload = delivery.payload or {}
        channel = payload.get("channel") if isinstance(payload.get("channel"), str) else None
        if not (channel and SLACK_CHANNEL_ID.match(channel)):
            channel = incident.slack_channel_id  # the first post names the channel, not its id
        return slack_permalink(config.get("SLACK_WORKSPACE_URL"), channel, delivery.external_id,
                               payload.get("thread_ts"))
    return None


def thread_links(incident: Incident, config: dict[str, Any]) -> dict[str, str]:
    """The incident's public threads, by channel: status page incident, last tweet, Slack."""
    modes = channel_modes(config)
    ids = {"statusio": incident.statusio_incident_id,
           "twitter": incident.twitter_last_tweet_id, "slack": incident.slack_thread_ts}
    sandboxed = {c: sandbox_url(c, ids[c]) for c, mode in modes.items()
                 if mode == SANDBOX and ids.get(c)}
    links = {
        "statusio": statusio_incident_url(config.get("STATUS_PAGE_URL"),
                                          config.get("STATUSIO_STATUSPAGE_ID"),
                                          incident.statusio_incident_id),
        "twitter": tweet_url(incident.twitter_last_tweet_id),
        "slack": slack_permalink(config.get("SLACK_WORKSPACE_URL"), incident.slack_channel_id,
                                 incident.slack_thread_ts),
    }
    links.update(sandboxed)
    return {channel: url for channel, url in links.items() if url}


def sandbox_url(channel: str, external_id: str) -> str:
    """Where the Sandbox page shows a simulated post (its anchors are `<channel>-<id>`)."""
    return url_for("web.sandbox", _anchor=f"{channel}-{external_id}")


def pretty_json(value: Any) -> str:
    """Indented JSON that keeps quotes, accents and CJK as typed (no \\u escapes). Plain text:
    autoescaping still applies where it is rendered."""
    return json.dumps(value, ensure_ascii=False, indent=2, default=str)


def markdown(text: str | None, inline: bool = False) -> Markup:
    """Markdown (CommonMark) to HTML, as paragraphs or `inline` (no <p>); raw HTML in the
    source is escaped, not passed through."""
    html = (_MARKDOWN.renderInline if inline else _MARKDOWN.render)(text or "")
    return Markup(html)  # noqa: S704 - markdown-it escaped the source (html disabled)


def expanded_updates(updates: list[Update]) -> set[int]:
    """Ids of the updates the timeline opens: the newest, the newest published one, and any
    whose deliveries are failed or still on their way (never hide a problem)."""
    if not updates:
        return set()
    ids = {updates[0].id}
    published = next((u for u in updates if u.published_at is not None), None)
    if published is not None:
        ids.add(published.id)
    for update in updates:
        if any(d.status == DeliveryStatus.FAILED.value or not d.status_enum.settled
               for d in update.deliveries):
            ids.add(update.id)
    return ids


def delivery_digest(deliveries: Iterable[Delivery]) -> list[tuple[str, str, int]]:
    """(status, label, count) per delivery status, worst first: the collapsed line's summary."""
    order = ["failed", "waiting", "pending", "sending", "superseded", "sent", "dry_run",
             "skipped"]
    counts = Counter(d.status for d in deliveries)
    return [(s, DeliveryStatus(s).label, counts[s])
            for s in sorted(counts, key=lambda s: order.index(s) if s in order else len(order))]


def first_line(text: str | None, limit: int = 140) -> str:
    line = (text or "").strip().split("\n", 1)[0]
    return line if len(line) <= limit else line[: limit - 1] + "…"


def register(app: Flask) -> None:
    """Makes the helpers available to every template."""
    app.jinja_env.filters.update(pretty_json=pretty_json, markdown=markdown,
                                 first_line=first_line)
    app.jinja_env.globals.update(
        channel_modes=lambda: channel_modes(current_app.config), MODE_HELP=MODE_HELP,
        delivery_link=lambda d, incident: delivery_link(d, incident, current_app.config),
        delivery_digest=delivery_digest,
    )
