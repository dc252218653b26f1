"""Display helpers: links to what each channel posted, readable JSON and Markdown, channel
modes, and which timeline updates start open. Pure functions, no database."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

from markupsafe import Markup

from cmoc.models import Delivery, Update
from cmoc.modes import DRY_RUN, LIVE, MODE_HELP, channel_modes
from cmoc.views.display import (
    delivery_digest,
    delivery_link,
    expanded_updates,
    first_line,
    markdown,
    pretty_json,
    slack_permalink,
    statusio_incident_url,
    thread_links,
    tweet_url,
)

PAGE = "5b36dc6502d06804c08349f7"
CONFIG = {"STATUS_PAGE_URL": "https://status.gitlab.com/", "STATUSIO_STATUSPAGE_ID": PAGE,
          "SLACK_WORKSPACE_URL": "https://gitlab.slack.com"}
T = datetime(2026, 11, 26, 14, 30, tzinfo=UTC)


def delivery(name: str, status: str = "sent", external_id: str | None = "1", **payload):
    return Delivery(channel=name, status=status, external_id=external_id,
                    payload=payload or None)


def incident(**extra):
    values = {"slack_channel_id": None, "statusio_incident_id": None,
              "twitter_last_tweet_id": None, "slack_thread_ts": None}
    return SimpleNamespace(**{**values, **extra})


def test_status_page_incident_url():
    assert statusio_incident_url("https://status.gitlab.com/", PAGE, "abc123") == (
        f"https://status.gitlab.com/pages/incident/{PAGE}/abc123")
    assert statusio_incident_url("https://status.gitlab.com", None, "abc123") is None
    assert statusio_incident_url("javascript:alert(1)//", PAGE, "abc123") is None
    assert statusio_incident_url("https://status.gitlab.com", PAGE, None) is None


def test_tweet_url_only_for_numeric_ids():
    assert tweet_url("1456012973835788296") == "https://x.com/i/web/status/1456012973835788296"
    assert tweet_url("dry-run") is None and tweet_url(None) is None


def test_slack_permalink_needs_a_workspace_and_a_channel_id():
    assert slack_permalink("https://gitlab.slack.com/", "C0123ABCD", "1795770464.091751") == (
        "https://gitlab.slack.com/archives/C0123ABCD/p1795770464091751")
    # A reply names its thread so Slack opens it in place.
    assert slack_permalink("https://gitlab.slack.com", "C0123ABCD", "1795770500.000200",
                           "1795770464.091751") == (
        "https://gitlab.slack.com/archives/C0123ABCD/p1795770500000200"
        "?thread_ts=1795770464.091751&cid=C0123ABCD")
    assert slack_permalink("", "C0123ABCD", "1795770464.091751") is None
    assert slack_permalink("https://gitlab.slack.com", "#advocates", "1795770464.091751") is None
    assert slack_permalink("https://gitlab.slack.com", "C0123ABCD", "not-a-ts") is None


def test_delivery_links_per_channel():
    owner = incident(slack_channel_id="C0ADVOCATE")
    assert delivery_link(delivery("statusio", external_id="inc1"), owner, CONFIG) == (
        f"https://status.gitlab.com/pages/incident/{PAGE}/inc1")
    assert delivery_link(delivery("twitter", external_id="42"), owner, CONFIG) == (
        "https://x.com/i/web/status/42")
    # The first Slack post names the channel (#advocates): the id comes from the incident.
    first = delivery("slack", external_id="1795770464.091751", channel="#advocates")
    assert delivery_link(first, owner, CONFIG) == (
        "https://gitlab.slack.com/archives/C0ADVOCATE/p1795770464091751")
    reply = delivery("slack", external_id="1795770500.000200", channel="C0ADVOCATE",
                     thread_ts="1795770464.091751")
    assert delivery_link(reply, owner, CONFIG).endswith(
        "/archives/C0ADVOCATE/p1795770500000200?thread_ts=1795770464.091751&cid=C0ADVOCATE")
    assert delivery_link(first, owner, {**CONFIG, "SLACK_WORKSPACE_URL": ""}) is None


def test_nothing_is_linked_unless_it_was_sent():
    owner = incident(slack_channel_id="C0ADVOCATE")
    for status in ("dry_run", "failed", "waiting", "superseded", "pending", "skipped"):
        assert delivery_link(delivery("twitter", status, "42"), owner, CONFIG) is None
    assert delivery_link(delivery("twitter", "sent", None), owner, CONFIG) is None


def test_thread_links_of_an_incident():
    owner = incident(statusio_incident_id="inc1", twitter_last_tweet_id="42",
                     slack_channel_id="C0ADVOCATE", slack_thread_ts="1795770464.091751")
    assert thread_links(owner, CONFIG) == {
        "statusio": f"https://status.gitlab.com/pages/incident/{PAGE}/inc1",
        "twitter": "https://x.com/i/web/status/42",
        "slack": "https://gitlab.slack.com/archives/C0ADVOCATE/p1795770464091751"}
    assert thread_links(incident(), CONFIG) == {}


def test_pretty_json_keeps_text_as_typed():
    text = pretty_json({"message": "We're seeing \"errors\" — 障害が発生しています 🚧", "n": [1]})
    assert "We're" in text and "障害が発生しています" in text and "🚧" in text
    assert "\\u" not in text
    assert text.splitlines()[1].startswith('  "message"')  # indented
    assert not isinstance(text, Markup)  # plain text: autoescaped where it is rendered


def test_markdown_renders_code_and_escapes_html():
    html = markdown("The same `idempotency_key` returns **the same** update. <b>x</b>")
    assert "<code>idempotency_key</code>" in html and "<strong>the same</strong>" in html
    assert "<b>" not in html and "&lt;b&gt;" in html
    assert markdown("`fields` names each one", inline=True) == (
        "<code>fields</code> names each one")


def test_channel_modes_follow_the_credentials():
    assert channel_modes({}) == {"statusio": DRY_RUN, "twitter": DRY_RUN, "slack": DRY_RUN,
                                 "gitlab": DRY_RUN}
    slack = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_ADVOCATES_CHANNEL": "#advocates"}
    assert channel_modes(slack) == {"statusio": DRY_RUN, "twitter": DRY_RUN, "slack": LIVE,
                                    "gitlab": DRY_RUN}
    gitlab = {"GITLAB_TOKEN": "glpat-1"}
    assert channel_modes(gitlab)["gitlab"] == LIVE
    assert set(MODE_HELP) >= set(channel_modes(slack).values())


def update(uid: int, *statuses: str, published: bool = True) -> Update:
    u = Update(id=uid, published_at=T if published else None, phase="published")
    u.deliveries = [Delivery(channel=c, status=s) for c, s in
                    zip(("statusio", "twitter", "slack"), statuses, strict=False)]
    return u


def test_the_newest_update_is_open_and_problems_never_hidden():
    assert expanded_updates([]) == set()
    newest_first = [update(4, "sent", "sent"), update(3, "sent", "failed"),
                    update(2, "sent", "waiting"), update(1, "sent", "superseded")]
    assert expanded_updates(newest_first) == {4, 3, 2}
    # A draft on top: the draft and the newest published update are both open.
    assert expanded_updates([update(5, published=False), *newest_first[:1]]) == {5, 4}


def test_delivery_digest_puts_problems_first():
    digest = delivery_digest(update(1, "sent", "failed", "sent").deliveries)
    assert digest == [("failed", "Failed", 1), ("sent", "Sent", 2)]
    assert delivery_digest([]) == []


def test_first_line_is_short():
    assert first_line("First line\nsecond") == "First line"
    assert first_line("x" * 200, limit=10) == "x" * 9 + "…"
    assert first_line(None) == ""
