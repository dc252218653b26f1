"""The CMOC's path in a real browser: first run, declare, draft with live preview, save, reload."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.conftest import screenshot

ISSUE = "https://gitlab.com/gitlab-com/gl-infra/production/-/issues/12345"
PASSWORD = "correct-horse-battery"


def tweet_count(page) -> int:
    return int(page.locator("#tweet-count").inner_text().split("/")[0])


def first_run_and_declare(page, base: str) -> None:
    page.goto(base + "/")
    expect(page).to_have_url(base + "/setup")
    page.fill("#username", "admin")
    page.fill("#password", PASSWORD)
    page.fill("#confirm", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(base + "/")
    expect(page.locator("text=No active incidents")).to_be_visible()

    page.click("text=Declare incident")
    page.fill("#title", "Elevated error rates on GitLab.com")
    page.select_option("#severity", "S1")
    page.select_option("#status", "service_disruption")
    page.check("input[name=components][value='Website']")
    page.check("input[name=components][value='API']")
    page.fill("#issue_url", ISSUE)
    page.fill("#slack_channel", "#incident-12345")
    page.click("button[type=submit].primary")
    expect(page).to_have_url(re.compile(r"/incidents/\d+/updates/new$"))


def test_draft_with_live_tweet_counter_over_limit_block_and_reload(live_server, page):
    base = live_server.url
    first_run_and_declare(page, base)

    # The default template for the current state is preselected.
    expect(page.locator("#template")).to_have_value("investigating")
    expect(page.locator("#state")).to_have_value("investigating")
    start = tweet_count(page)

    # Typing a variable updates every channel's preview and the tweet counter.
    page.locator("#var_symptom").press_sequentially("elevated error rates", delay=5)
    expect(page.locator("#text_statusio")).to_have_value(
        re.compile(r"^We're seeing elevated error rates\. Affected: Website and API\."))
    expect(page.locator("#text_slack")).to_have_value(re.compile(r"Elevated error rates on GitLab"))
    expect(page.locator("#tweet-count")).not_to_have_text(f"{start} / 280")
    typed = tweet_count(page)
    assert typed > start

    # Past the limit the counter turns red and the tweet (only) is blocked; saving still works.
    page.fill("#var_symptom", "slow " * 60)
    expect(page.locator("#tweet-count")).to_have_class(re.compile(r"\bover\b"))
    expect(page.locator("#problem-twitter")).to_contain_text("over the 280 limit")
    expect(page.locator("#publish")).to_be_disabled()
    expect(page.locator("#save-draft")).to_be_enabled()
    screenshot(page, "drafting-over-limit.png")

    # Back under the limit; hand-edit the tweet, and the counter follows the typed text.
    page.fill("#var_symptom", "elevated error rates on GitLab.com")
    expect(page.locator("#publish")).to_be_enabled()
    page.fill("#text_twitter", "")
    page.locator("#text_twitter").press_sequentially("日本語 " + ISSUE, delay=2)
    expect(page.locator("#tweet-count")).to_have_text("30 / 280")
    # a hand-edited text is no longer overwritten by variable changes
    page.fill("#var_symptom", "elevated error rates on the API")
    expect(page.locator("#text_statusio")).to_have_value(re.compile("on the API"))
    expect(page.locator("#text_twitter")).to_have_value("日本語 " + ISSUE)
    screenshot(page, "drafting.png")

    page.click("#save-draft")
    expect(page.locator(".flash-success")).to_contain_text("Draft saved")
    draft_url = page.url
    assert re.search(r"/incidents/\d+/updates/\d+$", draft_url)

    page.reload()
    expect(page.locator("#var_symptom")).to_have_value("elevated error rates on the API")
    expect(page.locator("#text_twitter")).to_have_value("日本語 " + ISSUE)
    expect(page.locator("#tweet-count")).to_have_text("30 / 280")

    # The timeline lists the draft with its author.
    page.click("text=#1 Elevated error rates on GitLab.com")
    expect(page.locator(".timeline .update")).to_have_count(1)
    expect(page.locator(".timeline .update")).to_contain_text("Draft")
    expect(page.locator(".timeline .update")).to_contain_text("by admin")
    assert page.problems == []


def test_switching_state_offers_that_states_templates(live_server, page):
    base = live_server.url
    first_run_and_declare(page, base)
    page.fill("#var_symptom", "errors")
    page.select_option("#state", "identified")
    expect(page.locator("#template")).to_have_value("identified")
    expect(page.locator("#var_cause")).to_be_visible()
    page.select_option("#template", "no-material-updates")
    expect(page.locator("#var_detail")).to_be_visible()
    page.fill("#var_detail", "We're still rolling back.")
    expect(page.locator("#text_twitter")).to_have_value(
        re.compile(r"^No material updates to report\. We're still rolling back\."))
    page.select_option("#state", "resolved")
    expect(page.locator("#status")).to_contain_text("Operational")
    expect(page.locator("#next_update_minutes")).to_have_count(0)
    assert page.problems == []
