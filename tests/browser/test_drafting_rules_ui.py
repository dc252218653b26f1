"""Issue 11 in Chromium: each finding reproduced as a CMOC would meet it, and shown fixed.
Publishing goes to the loopback fakes of status.io, X and Slack."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from cmoc.extensions import db
from cmoc.models import DraftPresence, Incident, Reminder, Update
from cmoc.services.reminders import send_reminders
from cmoc.timeutil import clock_moved, fmt_utc, utcnow
from tests.browser.conftest import screenshot
from tests.factories import make_user

ISSUE = "https://gitlab.com/gitlab-com/gl-infra/production/-/issues/4242"
PASSWORD = "correct-horse-battery"
WAIT = 20_000  # generous: the machine is shared


@pytest.fixture
def live_config(fakes):
    return {**fakes.env(), "PUBLISH_BACKOFF_SECONDS": 0, "PUBLISH_WAIT_SECONDS": 5,
            "SLACK_REMINDER_CHANNEL": "#cmoc-reminders"}


def sign_in(page, live_server) -> None:
    with live_server.app.app_context():
        make_user("carol", "cmoc")
        db.session.remove()
    page.goto(live_server.url + "/login")
    page.fill("#username", "carol")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(live_server.url + "/")


def declare(page, live_server, *, severity="S1", status="service_disruption",
            symptom="") -> None:
    page.click("text=Declare incident")
    page.fill("#title", "Elevated error rates on GitLab.com")
    page.select_option("#severity", severity)
    page.select_option("#status", status)
    page.check("input[name=components][value='Website']")
    page.fill("#issue_url", ISSUE)
    if symptom:
        page.fill("#first_symptom", symptom)
    page.click("#declare")
    expect(page).to_have_url(re.compile(r"/incidents/\d+/updates/new"))


def incident_row(live_server) -> Incident:
    with live_server.app.app_context():
        incident = db.session.scalar(select(Incident).order_by(Incident.id.desc()))
        db.session.expunge(incident)
        db.session.remove()
    return incident


def status_of(page, label: str):
    return page.locator(f"tr:has(td:text-is('{label}')) [data-field=status]")


def test_finding1_long_tweet_blocks_only_the_tweet(live_server, page, fakes):
    sign_in(page, live_server)
    declare(page, live_server, symptom="errors on every page")
    page.fill("#text_twitter", "We're seeing errors on every page of GitLab.com. " * 7)
    expect(page.locator("#tweet-count")).to_have_class(re.compile(r"\bover\b"))
    expect(page.locator("#problem-twitter")).to_contain_text("over the 280 limit")
    expect(page.locator("#blocked-twitter")).to_be_visible()
    # Before: Publish was disabled for every channel. Now it waits only while Tweet is ticked,
    # and offers to publish the others.
    expect(page.locator("#publish")).to_be_disabled()
    expect(page.locator("#publish-others")).to_have_text(
        "Publish to Status page, Slack and GitLab issue")
    expect(page.locator("#save-draft")).to_be_enabled()
    screenshot(page, "drafting-tweet-blocked.png")
    page.uncheck("#channel-twitter")
    expect(page.locator("#publish")).to_be_enabled()
    expect(page.locator("#publish-others")).to_be_hidden()
    page.click("#publish")
    expect(page).to_have_url(re.compile(r"/incidents/\d+#update-\d+$"), timeout=WAIT)
    expect(status_of(page, "Status page")).to_have_text("Sent", timeout=WAIT)
    expect(status_of(page, "Slack")).to_have_text("Sent", timeout=WAIT)
    expect(status_of(page, "Tweet")).to_have_text("Skipped")
    assert len(fakes.incidents) == 1 and len(fakes.slack_messages) == 1 and not fakes.tweets
    assert page.problems == []


def test_finding1_publish_the_others_without_unticking(live_server, page, fakes):
    sign_in(page, live_server)
    declare(page, live_server, symptom="errors on every page")
    page.fill("#text_twitter", "x" * 290)
    page.click("#publish-others")
    expect(status_of(page, "Status page")).to_have_text("Sent", timeout=WAIT)
    expect(page.locator("tr:has(td:text-is('Tweet'))")).to_contain_text("Left out: Tweet is 290")
    assert not fakes.tweets and len(fakes.slack_messages) == 1


def test_finding2_unfilled_placeholder_blocks_its_channel(live_server, page, fakes):
    sign_in(page, live_server)
    declare(page, live_server, symptom="errors")
    page.select_option("#state", "monitoring")
    expect(page.locator("#var_fix")).to_be_visible()
    # Before the fix is typed the tweet is edited by hand, so "[fix]" stays in it.
    expect(page.locator("#text_twitter")).to_have_value(re.compile(r"^\[fix\]\."))
    page.locator("#text_twitter").press("Control+End")
    page.locator("#text_twitter").press_sequentially(" Thanks!", delay=5)
    page.fill("#var_fix", "A fix was deployed and error rates are back to normal.")
    expect(page.locator("#text_statusio")).to_have_value(re.compile(r"^A fix was deployed"))
    expect(page.locator("#problem-twitter")).to_contain_text(
        "Tweet still has the placeholder [fix] (“What changed?”)")
    expect(page.locator("#publish")).to_be_disabled()
    screenshot(page, "drafting-placeholder-blocked.png")
    # A forced submit is refused and sends nothing.
    page.evaluate("document.getElementById('publish').disabled = false")
    page.click("#publish")
    expect(page.locator("#form-errors")).to_contain_text("Saved as a draft, not published")
    expect(page.locator("#problem-twitter")).to_contain_text("[fix]")
    assert not fakes.tweets and not fakes.incidents and not fakes.slack_messages


def test_finding3_draft_open_two_minutes_publishes_the_true_time(live_server, page, fakes):
    """The server's clock is moved on two minutes and the page's timers run two minutes, instead
    of sleeping: the preview follows, and every channel and the reminder agree."""
    sign_in(page, live_server)
    page.clock.install()
    declare(page, live_server, symptom="errors on every page")
    page.locator("#text_twitter").press("Home")
    page.locator("#text_twitter").press_sequentially("Update: ", delay=5)   # hand-edited
    before = page.locator("#next-update-at").inner_text()
    expect(page.locator("#sent-as-text-twitter")).to_contain_text(before[-9:])
    with clock_moved() as advance:
        advance(timedelta(minutes=2))
        page.clock.run_for(120_000)   # the page's 20-s refresh and heartbeat run meanwhile
        # The refresh ran on the server a moment ago: this minute, or the next one.
        soon = utcnow() + timedelta(minutes=10)
        either = [fmt_utc(soon), fmt_utc(soon + timedelta(seconds=30))]
        pattern = re.compile("|".join(re.escape(t) for t in either))
        expect(page.locator("#next-update-at")).to_have_text(pattern, timeout=WAIT)
        moved = page.locator("#next-update-at").inner_text()
        expect(page.locator("#sent-as-text-twitter")).to_contain_text(
            f"Next update by {moved[-9:]}.")
        assert moved != before
        screenshot(page, "drafting-time-refreshed.png")
        page.click("#publish")
        expect(status_of(page, "Tweet")).to_have_text("Sent", timeout=WAIT)
        incident = incident_row(live_server)
        promise = f"Next update by {fmt_utc(incident.next_update_due_at, with_date=False)}."
        with live_server.app.app_context():
            update = db.session.scalar(select(Update))
            assert all(promise in update.text_for(c) for c in ("statusio", "twitter", "slack"))
            db.session.remove()
        assert next(iter(fakes.tweets.values()))["text"].startswith("Update: We're seeing")
        assert promise in next(iter(fakes.tweets.values()))["text"]
        assert promise in next(iter(fakes.incidents.values()))["messages"][0]["details"]
        assert promise in fakes.slack_messages[0]["text"]
        send_reminders(live_server.app, now=incident.next_update_due_at)
    reminder = fakes.slack_messages[-1]["text"]
    assert reminder.startswith(
        f":alarm_clock: Update due now ({promise[15:-1]} as promised)"), reminder


def test_finding4_and_9_monitoring_wording_follows_the_cadence_and_status(live_server, page):
    sign_in(page, live_server)
    declare(page, live_server, severity="S2", status="degraded_performance")
    page.select_option("#state", "monitoring")
    page.fill("#var_fix", "Error rates are back to normal.")
    statusio = page.locator("#text_statusio")
    expect(statusio).to_have_value(re.compile(r"^Error rates are back to normal\. Out of"))
    expect(statusio).to_have_value(re.compile(r"no recurrences in the next 60 minutes"))
    expect(statusio).to_have_value(re.compile(r"marked as Degraded Performance while"))
    expect(page.locator("#var_monitor_minutes")).to_have_attribute("placeholder", "60")
    assert "normal.." not in statusio.input_value()
    assert "fully operational" not in statusio.input_value()
    page.fill("#next_update_minutes", "45")
    expect(statusio).to_have_value(re.compile(r"in the next 45 minutes"))
    assert page.problems == []


def test_finding5_slack_only_is_internal_until_a_decision_is_recorded(live_server, page, fakes):
    sign_in(page, live_server)
    declare(page, live_server, status="security_issue", symptom="a security issue")
    expect(page.locator("#channel-statusio")).not_to_be_checked()
    expect(page.locator("#internal-note")).to_be_visible()
    page.click("#publish")
    expect(status_of(page, "Slack")).to_have_text("Sent", timeout=WAIT)
    expect(page.locator(".timeline .badge.internal")).to_have_count(1)
    expect(page.locator("#first-public")).to_have_text("none yet")
    expect(page.locator("#public-pending")).to_contain_text(
        "went neither to the status page nor to X")
    expect(page.locator("#comms")).not_to_contain_text("0.0 min")
    screenshot(page, "incident-internal-update.png")
    page.fill("#reason", "Security issue: the IM keeps it internal until the fix ships")
    page.click("#record-no-public-post")
    expect(page.locator(".flash-success")).to_contain_text("no public post needed")
    expect(page.locator(".timeline")).to_contain_text(
        "carol decided no public post is needed: “Security issue")
    assert not fakes.tweets and not fakes.incidents


def test_finding6_snooze_past_the_promise_asks_and_is_recorded(live_server, page):
    sign_in(page, live_server)
    declare(page, live_server, symptom="errors")
    page.click("#publish")
    expect(status_of(page, "Tweet")).to_have_text("Sent", timeout=WAIT)
    promised = incident_row(live_server).promised_at
    page.click("button[data-snooze='10']")
    expect(page.locator("#snooze-confirm")).to_be_visible()
    expect(page.locator("#promise-message")).to_contain_text(
        f"past {fmt_utc(promised, with_date=False)}: the time the last public update promised")
    screenshot(page, "snooze-confirm.png")
    page.click("#confirm-break")
    page.goto(live_server.url + f"/incidents/{incident_row(live_server).id}")
    expect(page.locator(".timeline .event-snooze")).to_contain_text(
        f"breaks the public promise of {fmt_utc(promised)}")
    assert incident_row(live_server).next_update_due_at == promised + timedelta(minutes=10)


def test_finding7_no_reminder_while_drafting_then_heads_up_before_due(live_server, page, fakes):
    sign_in(page, live_server)
    declare(page, live_server, symptom="errors")
    incident = incident_row(live_server)
    app = live_server.app

    def presence():
        with app.app_context():
            row = db.session.scalar(select(DraftPresence))
            db.session.remove()
        return row
    # The page beats; seconds after declaring, no reminder interrupts the CMOC.
    expect(page.locator("#publish")).to_be_enabled()
    assert presence() is not None
    assert send_reminders(app, now=utcnow())["claimed"] == 0
    # Leaving the page without publishing: the first-update reminder comes at once.
    page.click("text=Cancel")
    expect(page.locator("#incident-bar")).to_be_visible()
    deadline = utcnow() + timedelta(seconds=20)
    while presence() is not None and utcnow() < deadline:
        page.wait_for_timeout(200)
    assert presence() is None
    assert send_reminders(app, now=utcnow())["sent"] == 1
    assert fakes.slack_messages[-1]["text"].startswith(":alarm_clock: Update due now")
    # After a publish, a heads-up comes two minutes before the promised time.
    page.click("text=Draft update")
    page.fill("#var_symptom", "errors")
    page.click("#publish")
    expect(status_of(page, "Tweet")).to_have_text("Sent", timeout=WAIT)
    incident = incident_row(live_server)
    expect(page.locator("#heads-up")).to_contain_text("Heads-up 2 min before due: on")
    send_reminders(app, now=incident.next_update_due_at - timedelta(minutes=2))
    assert fakes.slack_messages[-1]["text"].startswith(":hourglass_flowing_sand: Update due in 2m")
    with app.app_context():
        kinds = [r.kind for r in db.session.scalars(select(Reminder).order_by(Reminder.id))]
        db.session.remove()
    assert kinds == ["due", "heads_up"]
    page.click("#heads-up-toggle")
    expect(page.locator("#heads-up")).to_contain_text("off")


def test_finding8_texts_written_in_full_need_no_field(live_server, page, fakes):
    sign_in(page, live_server)
    declare(page, live_server)
    page.fill("#var_symptom", "")
    for channel in ("statusio", "twitter", "slack"):
        page.fill(f"#text_{channel}", f"Our own words for {channel}. " + ISSUE)
    expect(page.locator("#problem-statusio")).to_be_hidden()
    expect(page.locator("#publish")).to_be_enabled()
    page.click("#publish")
    expect(status_of(page, "Status page")).to_have_text("Sent", timeout=WAIT)
    expect(status_of(page, "Tweet")).to_have_text("Sent")
    assert next(iter(fakes.tweets.values()))["text"].startswith("Our own words for twitter.")
