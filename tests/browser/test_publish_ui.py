"""Publishing in a real browser through the real app to the fake status.io, X and Slack."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot
from tests.factories import fake_issue, issue_notes

ISSUE = "https://gitlab.com/gitlab-com/gl-infra/production/-/issues/4242"
PASSWORD = "correct-horse-battery"


@pytest.fixture
def live_config(fakes):
    # The view waits briefly, so a slow channel is seen settling live on the incident page.
    return {**fakes.env(), "PUBLISH_BACKOFF_SECONDS": 0, "PUBLISH_WAIT_SECONDS": 0.3}


def setup_admin(page, base):
    page.goto(base + "/setup")
    page.fill("#username", "admin")
    page.fill("#password", PASSWORD)
    page.fill("#confirm", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(base + "/")


def test_s1_goes_public_in_three_clicks_and_deliveries_show_live(live_server, page, fakes):
    base = live_server.url
    setup_admin(page, base)
    fakes.latency["slack"] = 1.5

    page.click("text=Declare incident")                                   # click 1
    page.fill("#title", "GitLab.com is down")
    page.select_option("#severity", "S1")
    page.check("input[name=components][value='Website']")
    page.fill("#issue_url", fake_issue(fakes, "GitLab.com is down"))
    page.fill("#first_symptom", "errors on every page of GitLab.com")
    page.click("#declare")                                                # click 2
    expect(page.locator("#text_twitter")).to_have_value(
        re.compile(r"^We're seeing errors on every page of GitLab.com"))
    for channel in ("statusio", "twitter", "slack", "gitlab"):
        expect(page.locator(f"#channel-{channel}")).to_be_checked()
    page.click("#publish")                                                # click 3
    expect(page).to_have_url(re.compile(r"/incidents/1#update-1$"))

    rows = page.locator("table.deliveries tbody tr")
    expect(rows).to_have_count(4)
    # Slack is still on its way when the page loads, then turns to Sent without a reload.
    expect(page.locator("tr:has(td:text-is('Slack')) [data-field=status]")).to_have_text(
        "Sent", timeout=15000)
    for label in ("Status page", "Tweet", "GitLab issue"):
        status = page.locator(f"tr:has(td:text-is('{label}')) [data-field=status]")
        expect(status).to_have_text("Sent")
    screenshot(page, "incident-published.png")
    assert len(fakes.tweets) == 1 and len(fakes.slack_messages) == 1
    assert len(issue_notes(fakes)) == 1
    assert len(fakes.incidents) == 1
    assert page.problems == []


def test_failed_channel_is_retried_from_the_ui_on_its_own(live_server, page, fakes):
    base = live_server.url
    setup_admin(page, base)
    page.click("text=Declare incident")
    page.fill("#title", "Slow CI pipelines")
    page.select_option("#severity", "S2")
    page.check("input[name=components][value='API']")
    page.fill("#issue_url", ISSUE)
    page.click("#declare")
    page.fill("#var_symptom", "slow CI pipelines")
    fakes.fail("slack", "chat.postMessage", status=200,
               body={"ok": False, "error": "not_in_channel"})
    page.click("#publish")
    slack = page.locator("tr:has(td:text-is('Slack'))")
    expect(slack.locator("[data-field=status]")).to_have_text("Failed", timeout=15000)
    expect(slack).to_contain_text("not_in_channel")
    # (The "Published with failures" flash needs Slack's answer within the page's 0.3 s wait,
    # which a loaded machine does not always give; the row above is what stays.)
    tweets_before = len(fakes.tweets)
    page.click("button[data-retry=slack]")
    expect(page.locator("tr:has(td:text-is('Slack')) [data-field=status]")).to_have_text(
        "Sent", timeout=15000)
    assert len(fakes.tweets) == tweets_before == 1
    assert len(fakes.slack_messages) == 1
    assert page.problems == []
