"""In a real browser: signing out ends the session for every copy of its cookie (another tab,
another browser profile holding a copy), and the profile ends the other sessions."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from cmoc.extensions import db
from tests.browser.conftest import screenshot
from tests.factories import PASSWORD, make_user


def sign_in(page, url: str, username: str) -> None:
    page.goto(url + "/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("form button[type=submit]")
    expect(page).to_have_url(url + "/")


def test_sign_out_in_one_tab_refuses_the_other_tab_and_a_copied_cookie(live_server, page,
                                                                       browser):
    with live_server.app.app_context():
        make_user("carol", "cmoc")
        db.session.remove()
    url = live_server.url
    sign_in(page, url, "carol")
    second_tab = page.context.new_page()
    second_tab.goto(url + "/incidents/resolved")
    expect(second_tab).to_have_url(url + "/incidents/resolved")
    # Another browser profile given a copy of the cookie (as an attacker would take it).
    other = browser.new_context(viewport={"width": 1440, "height": 1000})
    try:
        other.add_cookies(page.context.cookies())
        copy = other.new_page()
        assert copy.goto(url + "/").status == 200
        expect(copy.locator(".who .user")).to_contain_text("carol")

        page.click("text=Sign out")
        expect(page).to_have_url(re.compile(r"/login"))

        second_tab.goto(url + "/incidents/resolved")
        expect(second_tab).to_have_url(re.compile(r"/login\?next="))
        # The copy still holds the old cookie: the server refuses it all the same.
        assert any(c["name"] == "session" for c in other.cookies())
        copy.goto(url + "/incidents/resolved")
        expect(copy).to_have_url(re.compile(r"/login\?next="))
        expect(copy.locator("main")).to_contain_text("Please sign in")
        api = copy.goto(url + "/api/v1/incidents")
        assert api.status == 401
    finally:
        other.close()
    assert page.problems == []


def test_profile_lists_sessions_and_ends_the_others(live_server, page, browser):
    with live_server.app.app_context():
        make_user("carol", "cmoc")
        db.session.remove()
    url = live_server.url
    other = browser.new_context(viewport={"width": 1440, "height": 1000})
    try:
        elsewhere = other.new_page()
        sign_in(elsewhere, url, "carol")
        sign_in(page, url, "carol")
        page.goto(url + "/profile")
        rows = page.locator("#sessions tbody tr")
        expect(rows).to_have_count(2)
        expect(page.locator("#sessions .this-session")).to_contain_text("this session")
        screenshot(page, "profile-sessions.png")
        page.click("#end-others")
        expect(page.locator("body")).to_contain_text("Ended 1 other session.")
        expect(rows).to_have_count(1)
        elsewhere.goto(url + "/")
        expect(elsewhere).to_have_url(re.compile(r"/login"))
        page.goto(url + "/")
        expect(page).to_have_url(url + "/")
    finally:
        other.close()
    assert page.problems == []
