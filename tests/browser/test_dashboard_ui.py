"""The dashboard in a real browser: live countdowns, overdue count in the tab title, snooze."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from playwright.sync_api import expect

from cmoc.extensions import db
from tests.browser.conftest import screenshot
from tests.factories import PASSWORD, make_incident, make_user


def test_overdue_count_in_title_countdown_and_snooze(live_server, page):
    now = datetime.now(UTC)
    with live_server.app.app_context():
        user = make_user("carol", "cmoc")
        make_incident(user, title="Late one", next_update_due_at=now - timedelta(minutes=3),
                      last_published_at=now - timedelta(minutes=13))
        make_incident(user, title="Fine one", severity="S3",
                      next_update_due_at=now + timedelta(minutes=20),
                      last_published_at=now - timedelta(minutes=10))
        db.session.remove()
    page.goto(live_server.url + "/login")
    page.fill("#username", "carol")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_title("(1 overdue) Dashboard · cmoc")
    late = page.locator("tr:has-text('Late one')")
    expect(late).to_have_class(re.compile(r"\boverdue\b"))
    countdown = page.locator("tr:has-text('Fine one') .countdown")
    first = countdown.inner_text()
    expect(countdown).not_to_have_text(first, timeout=3000)   # it ticks
    assert re.match(r"\(in 19m \d\ds\)", countdown.inner_text())
    screenshot(page, "dashboard.png")
    late.locator("button[data-snooze='15']").click()
    expect(page.locator(".flash-success")).to_contain_text("Snoozed")
    expect(page).to_have_title("Dashboard · cmoc")
    expect(page.locator("tr:has-text('Late one')")).not_to_have_class(re.compile(r"\boverdue\b"))
    assert page.problems == []
