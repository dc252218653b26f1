"""A new CMOC practises in the sandbox: declare, three updates, resolve — and sees what the
public and the advocates would have seen, without any credentials."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from cmoc.fake_apis.gitlab import INCIDENT_PROJECT
from tests.browser.conftest import screenshot
from tests.browser.test_publish_ui import ISSUE, setup_admin


@pytest.fixture
def live_config(sandbox):
    return {"SANDBOX_URL": sandbox.url, "PUBLISH_BACKOFF_SECONDS": 0}


def publish_update(page, base, state: str, field: str, text: str) -> None:
    page.goto(f"{base}/incidents/1/updates/new?state={state}")
    page.fill(f"#var_{field}", text)
    page.click("#publish")
    expect(page).to_have_url(re.compile(r"/incidents/1#update-\d+$"))
    latest = page.locator("li.update").first
    expect(latest.locator("[data-field=status]")).to_have_text(["Sent"] * 4, timeout=20000)


def test_sandbox_flow_from_declare_to_resolved(live_server, page, sandbox):
    base = live_server.url
    setup_admin(page, base)
    expect(page.locator("#sandbox-banner")).to_contain_text("Status page, Tweet, Slack")
    page.click("text=Declare incident")
    page.fill("#title", "Practice: GitLab.com is slow")
    page.select_option("#severity", "S1")
    page.check("input[name=components][value='API']")
    issue = sandbox.gitlab_api.open_issue(INCIDENT_PROJECT, title="Practice: GitLab.com is slow")
    page.fill("#issue_url", issue["web_url"])
    page.fill("#first_symptom", "slow responses on GitLab.com")
    page.click("#declare")
    page.click("#publish")
    expect(page.locator("li.update").first.locator("[data-field=status]")).to_have_text(
        ["Sent"] * 4, timeout=20000)
    publish_update(page, base, "identified", "cause", "an overloaded database")
    publish_update(page, base, "monitoring", "fix", "A fix was deployed and pages load fast")
    publish_update(page, base, "resolved", "resolution", "the database load is back to normal")

    # After Resolved: the review link goes to the Slack thread; the live page is read back.
    page.fill("#postmortem_url", "https://gitlab.com/gitlab-com/gl-infra/production/-/issues/9")
    page.click("#add-postmortem")
    expect(page.locator("#postmortem-slack")).to_contain_text("sent", timeout=20000)
    expect(page.locator("#postmortem-statusio")).to_contain_text("status.io")
    page.click("#check-live")
    expect(page.locator("#live-check")).to_contain_text("agrees: resolved, operational")
    screenshot(page, "after-resolved-1366.png")

    page.click("#channel-modes a[href='/sandbox']")
    expect(page.locator(".status-incident")).to_have_count(1)
    expect(page.locator(".status-incident .status-messages li")).to_have_count(4)
    expect(page.locator(".status-incident")).to_contain_text("Resolved")
    expect(page.locator("#status-overall")).to_have_text("All Systems Operational")
    expect(page.locator(".tweet-thread")).to_have_count(1)
    expect(page.locator(".tweet-thread .tweet")).to_have_count(4)
    expect(page.locator(".slack-thread")).to_have_count(1)
    expect(page.locator(".slack-thread .slack-message")).to_have_count(5)   # + the review
    expect(page.locator(".slack-thread .mention")).to_have_count(1)   # only the first notifies
    expect(page.locator(f"#gitlab-issue-{issue['iid']} .gitlab-notes li")).to_have_count(4)
    screenshot(page, "sandbox-1366.png")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, "sandbox-390.png")
    assert len(sandbox.incidents) == 1 and len(sandbox.tweets) == 4
    assert page.problems == []


def test_a_failure_injected_in_the_sandbox_shows_on_the_incident(live_server, page, sandbox):
    base = live_server.url
    setup_admin(page, base)
    page.goto(base + "/sandbox")
    page.select_option("#fault-channel", "twitter")
    page.select_option("#fault-kind", "refused")
    page.click("#inject-fault")
    expect(page.locator("#pending-faults")).to_contain_text("Tweet")
    page.click("text=Declare incident")
    page.fill("#title", "Practice: failing X")
    page.select_option("#severity", "S2")
    page.check("input[name=components][value='API']")
    page.fill("#issue_url", ISSUE)
    page.fill("#first_symptom", "errors when pushing")
    page.click("#declare")
    page.click("#publish")
    tweet = page.locator("tr:has(td:text-is('Tweet'))")
    expect(tweet.locator("[data-field=status]")).to_have_text("Failed", timeout=20000)
    expect(tweet).to_contain_text("Refused by the sandbox")
    screenshot(page, "sandbox-failure.png")
    assert page.problems == []


def test_an_incident_declared_by_mistake_is_closed_without_posting(live_server, page, sandbox):
    base = live_server.url
    setup_admin(page, base)
    page.click("text=Declare incident")
    page.fill("#title", "Practice: false alarm")
    page.select_option("#severity", "S3")
    page.check("input[name=components][value='API']")
    page.fill("#issue_url", ISSUE)
    page.click("#declare")
    page.goto(base + "/incidents/1")
    page.click("#close summary")
    page.fill("#close-reason", "a test alert, not an incident")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#close-incident")
    expect(page.locator("#after-resolved")).to_contain_text("a test alert, not an incident")
    screenshot(page, "closed-without-posting.png")
    assert sandbox.incidents == {} and sandbox.tweets == {} and sandbox.slack_messages == []
    assert page.problems == []
