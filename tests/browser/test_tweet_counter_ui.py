"""The tweet counter counts in the browser (twitter-text from npm) at each keystroke; the
server's preview is asked only once typing pauses, and agrees with the count."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from cmoc.texts import NEXT_UPDATE
from cmoc.tweet import count_tweet
from tests.browser.test_drafting_rules_ui import declare, sign_in

WAIT = 20_000


@pytest.fixture
def live_config(fakes):
    return {**fakes.env(), "PUBLISH_BACKOFF_SECONDS": 0}


def test_counter_follows_each_keystroke_without_asking_the_server(live_server, page):
    sign_in(page, live_server)
    declare(page, live_server, symptom="errors on every page")
    previews = []
    page.on("request", lambda r: previews.append(r.url) if r.url.endswith("/preview") else None)
    assert page.evaluate("typeof window.twitterText.parseTweet") == "function"
    box = page.locator("#text_twitter")
    box.fill("")
    counter = page.locator("#tweet-count")
    expect(counter).to_have_text("0 / 280")
    previews.clear()
    # Typed one key at a time: the counter is right after every key, with no request.
    for typed in ("日本", " ok", " https://example.com/a/very/long/path/that/counts/as/23"):
        box.press_sequentially(typed)
        text = box.input_value()
        expect(counter).to_have_text(f"{count_tweet(text).weighted_length} / 280", timeout=1000)
        assert previews == [], previews
    # CJK weighs 2 and a URL 23 (t.co), as in the server's count: 4 + 3 + 1 + 23.
    assert counter.inner_text() == "31 / 280"
    # The server's check comes once the typing pauses, and does not move the counter.
    page.wait_for_timeout(1500)
    assert 1 <= len(previews) <= 2, previews
    expect(counter).to_have_text("31 / 280")


def test_the_token_counts_as_the_time_it_becomes_and_warnings_are_instant(live_server, page):
    sign_in(page, live_server)
    declare(page, live_server, symptom="errors on every page")
    box = page.locator("#text_twitter")
    next_text = page.locator("#token-value").inner_text().strip()
    box.fill("")
    box.press_sequentially(f"Next update by {NEXT_UPDATE}.")
    resolved = f"Next update by {next_text}."
    expect(page.locator("#tweet-count")).to_have_text(
        f"{count_tweet(resolved).weighted_length} / 280")
    # Past the handbook's 220 (body before the link) and past 280: shown at once.
    box.fill("x" * 230)
    box.press_sequentially("y")
    expect(page.locator("#tweet-count")).to_have_class("counter warn")
    expect(page.locator("#tweet-warning")).to_contain_text("within 220")
    box.press_sequentially("z" * 60)
    expect(page.locator("#tweet-count")).to_have_class("counter over")
    # The server's verdict (the blocked Publish) follows when typing pauses.
    expect(page.locator("#problem-twitter")).to_contain_text("over the 280 limit", timeout=WAIT)
    expect(page.locator("#publish")).to_be_disabled()
    assert page.problems == []
