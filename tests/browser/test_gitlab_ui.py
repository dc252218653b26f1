"""GitLab in a real browser: declaring from a pasted issue URL fills the form (and keeps what
was typed); the handover button writes the shift's issue once."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from cmoc.fake_apis.gitlab import HANDOVER_PROJECT, INCIDENT_PROJECT
from tests.browser.conftest import screenshot
from tests.browser.test_publish_ui import setup_admin


@pytest.fixture
def live_config(fakes):
    return {**fakes.env(), "PUBLISH_BACKOFF_SECONDS": 0}


def test_declare_from_a_pasted_issue_url_fills_the_form(live_server, page, fakes):
    base = live_server.url
    issue = fakes.gitlab_api.open_issue(
        INCIDENT_PROJECT, title="Container registry pulls failing",
        labels=["severity::2", "Service::Container Registry", "Incident::Active"])
    setup_admin(page, base)
    page.click("text=Declare incident")
    page.click("#refresh-components")            # the fake status page's components
    page.fill("#first_symptom", "failed image pulls")   # typed before reading: kept
    page.fill("#issue_url", issue["web_url"])
    page.click("#read-gitlab")
    expect(page.locator(".flash-success")).to_contain_text(
        f"Read {INCIDENT_PROJECT}#{issue['iid']} from GitLab")
    expect(page.locator("#title")).to_have_value("Container registry pulls failing")
    expect(page.locator("#severity")).to_have_value("S2")
    expect(page.locator("input[name=components][value='Container Registry']")).to_be_checked()
    expect(page.locator("input[name=components][value='API']")).not_to_be_checked()
    expect(page.locator("#slack_channel")).to_have_value(f"#incident-{issue['iid']}")
    expect(page.locator("#first_symptom")).to_have_value("failed image pulls")
    screenshot(page, "declare-from-gitlab-1366.png")
    page.click("#declare")
    expect(page).to_have_url(re.compile(r"/incidents/1/updates/new"))
    page.goto(f"{base}/incidents/1")
    expect(page.locator("#gitlab")).to_contain_text(f"{INCIDENT_PROJECT}#{issue['iid']}")
    assert page.problems == []


def test_a_typed_title_is_kept_and_a_bad_reference_is_explained(live_server, page, fakes):
    base = live_server.url
    issue = fakes.gitlab_api.open_issue(INCIDENT_PROJECT, title="From GitLab",
                                        labels=["severity::1"])
    setup_admin(page, base)
    page.goto(f"{base}/incidents/new")
    page.fill("#title", "My wording")
    page.fill("#issue_url", "not a reference")
    page.click("#read-gitlab")
    expect(page.locator("#error-issue_url")).to_contain_text("Paste the incident issue")
    expect(page.locator("#title")).to_have_value("My wording")
    page.fill("#issue_url", f"#{issue['iid']}")
    page.click("#read-gitlab")
    expect(page.locator("#title")).to_have_value("My wording")
    expect(page.locator("#severity")).to_have_value("S1")
    expect(page.locator("#issue_url")).to_have_value(issue["web_url"])
    expect(page.locator(".flash-success")).to_contain_text("Kept what you typed: title")


def test_the_handover_button_writes_the_shift_issue_once(live_server, page, fakes):
    base = live_server.url
    setup_admin(page, base)
    page.click("nav >> text=Handover")
    expect(page.locator("#handover-preview")).to_contain_text("Nothing happened")
    page.select_option("#handover-shift", "current")
    page.click("#write-handover")
    expect(page.locator(".flash-success")).to_contain_text(f"{HANDOVER_PROJECT}/-/issues/1")
    row = page.locator("#handovers tbody tr").first
    expect(row.locator("[data-field=status]")).to_have_text("sent")
    expect(row.locator("[data-field=issue]")).to_have_text("#1")
    screenshot(page, "handover-1366.png")
    page.select_option("#handover-shift", "current")
    page.click("#write-handover")
    expect(page.locator(".flash-success")).to_contain_text(f"{HANDOVER_PROJECT}/-/issues/1")
    expect(page.locator("#handovers tbody tr")).to_have_count(1)
    assert len([k for k in fakes.gitlab_api.issues if k[0] == 2]) == 1
    assert page.problems == []
