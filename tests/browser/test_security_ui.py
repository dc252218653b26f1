"""In a real browser: every page satisfies the Content-Security-Policy, and OIDC sign-in works."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from cmoc.extensions import db
from cmoc.services.tokens import create_token
from cmoc.timeutil import utcnow
from tests.browser.conftest import screenshot
from tests.factories import PASSWORD, make_incident, make_user


@pytest.fixture
def live_config(provider):
    return provider.config()


def csp_problems(page) -> list[str]:
    return [p for p in page.problems if "Content Security Policy" in p or "Refused" in p]


def test_every_page_has_no_csp_violation(live_server, page):
    with live_server.app.app_context():
        admin = make_user("ada", "admin")
        incident_id = make_incident(admin).id
        create_token(username="ada", name="x", now=utcnow())
        db.session.remove()
    page.goto(live_server.url + "/login")
    page.fill("#username", "ada")
    page.fill("#password", PASSWORD)
    page.click("form button[type=submit]")
    expect(page).to_have_url(live_server.url + "/")
    for path in ("/", f"/incidents/{incident_id}", f"/incidents/{incident_id}/updates/new",
                 f"/incidents/{incident_id}/edit", "/incidents/new", "/incidents/resolved",
                 "/admin/users", "/admin/audit", "/reports/comms", "/profile", "/api/v1/docs"):
        response = page.goto(live_server.url + path)
        assert response.status == 200, path
        assert response.headers["content-security-policy"].startswith("default-src 'self'")
        page.wait_for_load_state("networkidle")
        assert csp_problems(page) == [], (path, page.problems)
    screenshot(page, "api-docs.png")
    assert page.problems == []


def test_sign_in_with_the_identity_provider(live_server, page, provider):
    # The redirect URI is built from CMOC_BASE_URL (the address registered at the provider):
    # here, the live server's own.
    live_server.app.config["BASE_URL"] = live_server.url
    page.goto(live_server.url + "/login")
    page.click("#oidc-login")
    expect(page).to_have_url(live_server.url + "/")
    expect(page.locator(".who .user")).to_contain_text("grace")
    expect(page.locator(".who .user")).to_contain_text("cmoc")
    provider.mode = "forged"
    page.click("text=Sign out")
    page.click("#oidc-login")
    expect(page.locator("main")).to_contain_text("could not be verified")
    page.goto(live_server.url + "/")
    expect(page).to_have_url(re.compile(r"/login"))
