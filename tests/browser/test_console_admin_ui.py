"""The console with no credentials (every channel in dry-run) in Chromium: the header says so,
first run, the audit log, API tokens, deactivating users and the API docs."""

from __future__ import annotations

from datetime import timedelta

from playwright.sync_api import expect

from cmoc.extensions import db
from cmoc.models import AuditEntry
from cmoc.timeutil import utcnow
from tests.browser.conftest import screenshot
from tests.factories import PASSWORD, make_incident, make_user

WAIT = 20_000
SIZES = {"1366": {"width": 1366, "height": 768}, "390": {"width": 390, "height": 800}}


def sign_in_admin(page, server) -> None:
    with server.app.app_context():
        make_user("ada", "admin")
        make_user("dave", "cmoc")
        db.session.remove()
    page.set_default_timeout(WAIT)
    page.goto(server.url + "/login")
    page.fill("#username", "ada")
    page.fill("#password", PASSWORD)
    page.click("main button[type=submit]")
    expect(page).to_have_url(server.url + "/", timeout=WAIT)


def at_both_sizes(page, name: str) -> None:
    for label, size in SIZES.items():
        page.set_viewport_size(size)
        scroll, inner = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
        assert scroll <= inner, (name, label, scroll, inner)
        screenshot(page, f"console-{name}-{label}.png")
    page.set_viewport_size(SIZES["1366"])


def test_first_run_page_welcomes_without_a_sign_in_prompt(live_server, page):
    page.goto(live_server.url + "/")
    expect(page).to_have_url(live_server.url + "/setup")
    expect(page.locator("main")).to_contain_text("No account exists yet")
    expect(page.locator(".flash")).to_have_count(0)
    expect(page.locator("main")).not_to_contain_text("Please sign in")
    expect(page.locator("#username")).to_be_focused()
    at_both_sizes(page, "setup")
    assert page.problems == []


def test_header_shows_every_channel_in_dry_run(live_server, page):
    sign_in_admin(page, live_server)
    with live_server.app.app_context():
        incident_id = make_incident(cmoc_id=None).id
        db.session.remove()
    for path in ("/", f"/incidents/{incident_id}", f"/incidents/{incident_id}/updates/new",
                 "/admin/users"):
        page.goto(live_server.url + path)
        modes = page.locator("#channel-modes")
        expect(modes).to_be_visible()
        expect(modes.locator("[data-mode='dry-run']")).to_have_count(4)
        expect(modes).to_contain_text("nothing is sent")
    expect(page.locator("#channel-modes [data-channel=slack]")).to_have_text("Slack · dry-run")
    at_both_sizes(page, "users")
    assert page.problems == []


def test_audit_log_lists_changed_fields_readably_and_pages(live_server, page):
    sign_in_admin(page, live_server)
    with live_server.app.app_context():
        start = utcnow() - timedelta(hours=1)
        for n in range(60):
            db.session.add(AuditEntry(
                at=start + timedelta(seconds=n), actor_name="ada", action="incident.edit",
                target_type="incident", target_id="7", via="web",
                before={"title": f"Errors {n}", "components": ["API"]},
                after={"title": f"“障害” on GitLab.com {n}", "components": ["API", "Website"]}))
        db.session.commit()
        db.session.remove()
    page.goto(live_server.url + "/admin/audit?action=incident.edit")
    expect(page.locator("input[name=action]")).to_be_focused()
    rows = page.locator("table.audit tbody tr")
    expect(rows).to_have_count(50)
    newest = rows.first
    expect(newest.locator("li[data-field=title] del")).to_have_text("Errors 59")
    expect(newest.locator("li[data-field=title] ins")).to_have_text("“障害” on GitLab.com 59")
    expect(newest.locator("li[data-field=components] ins")).to_have_text("API, Website")
    text = page.locator("table.audit").inner_text()
    assert "\\u" not in text and "{" not in text
    at_both_sizes(page, "audit")
    page.click("#audit-older")
    expect(rows).to_have_count(10)
    expect(rows.last.locator("li[data-field=title] ins")).to_have_text("“障害” on GitLab.com 0")
    expect(page.locator("#audit-older")).to_have_count(0)
    page.click("#audit-newer")
    expect(rows).to_have_count(50)
    expect(rows.first.locator("li[data-field=title] ins")).to_have_text("“障害” on GitLab.com 59")
    assert page.problems == []


def test_new_api_token_has_a_copy_button_and_fits(live_server, page):
    sign_in_admin(page, live_server)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"],
                                   origin=live_server.url)
    page.goto(live_server.url + "/admin/users")
    page.select_option("select[name=username]", "dave")
    page.fill("input[name=name]", "slack-bot")
    page.click("form.token-form button[type=submit]")
    token = page.locator("#new-token")
    expect(token).to_be_visible()
    value = token.inner_text().strip()
    assert len(value) > 30
    page.click("#copy-token")
    expect(page.locator("#copy-note")).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == value
    for size in SIZES.values():
        page.set_viewport_size(size)
        box = page.locator(".token-box")
        overflow = box.evaluate("el => [el.scrollWidth, el.clientWidth]")
        assert overflow[0] <= overflow[1], overflow
    at_both_sizes(page, "token-created")
    assert page.problems == []


def test_deactivating_a_user_asks_first(live_server, page):
    sign_in_admin(page, live_server)
    page.goto(live_server.url + "/admin/users")
    dave = page.locator("tr:has(td:text-is('dave'))")
    asked: list[str] = []

    def dismiss(dialog):
        asked.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    dave.locator("button:text-is('Deactivate')").click()
    expect(dave).to_contain_text("active")
    assert asked and "Deactivate dave?" in asked[0]
    expect(dave.locator("button:text-is('Deactivate')")).to_be_visible()

    page.once("dialog", lambda dialog: dialog.accept())
    dave.locator("button:text-is('Deactivate')").click()
    expect(page.locator(".flash-success")).to_contain_text("dave: cmoc, deactivated")
    expect(page.locator("tr:has(td:text-is('dave'))")).to_contain_text("deactivated")
    assert page.problems == []


def test_api_docs_render_markdown(live_server, page):
    sign_in_admin(page, live_server)
    page.goto(live_server.url + "/api/v1/docs")
    updates = page.locator("section.api-op:has(h2:has-text('/updates'))").first
    expect(updates.locator(".md code").first).to_have_text("publish")
    assert "`" not in page.locator("main").inner_text()
    get_one = page.locator("section[id='get__api_v1_incidents_{incident_id}']")
    statuses = get_one.locator(".responses li").evaluate_all(
        "items => items.map(li => li.dataset.status)")
    assert statuses == ["200", "401", "404"]
    at_both_sizes(page, "api-docs")
    assert page.problems == []
