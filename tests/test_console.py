"""The console pages without a browser: dashboard order and markers (in a fixed number of
queries), the incident page's links and readable payloads, counters, declare form, docs."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import event

from cmoc.extensions import db
from cmoc.models import Delivery, Incident, Reminder, Update
from cmoc.services.incidents import list_incidents, waiting_drafts
from cmoc.services.metrics import compute_comms
from cmoc.timeutil import utcnow
from tests.factories import ISSUE_URL, login, make_incident, make_user

PAGE = "5b36dc6502d06804c08349f7"


def incident_at(user, title, severity, due_in_minutes, **extra) -> Incident:
    return make_incident(user, title=title, severity=severity, cmoc_id=user.id,
                         next_update_due_at=utcnow() + timedelta(minutes=due_in_minutes),
                         **extra)


def test_dashboard_order_overdue_then_severity_then_due(app):
    carol = make_user("carol", "cmoc")
    s3_late = incident_at(carol, "S3 late", "S3", -2)
    s1_later = incident_at(carol, "S1 later", "S1", 25)
    s1_late = incident_at(carol, "S1 late", "S1", -1)
    s2_soon = incident_at(carol, "S2 soon", "S2", 3)
    s1_soon = incident_at(carol, "S1 soon", "S1", 5)
    s1_late_older = incident_at(carol, "S1 later late", "S1", -9)
    got = [i.title for i in list_incidents(active=True, now=utcnow())]
    assert got == [s1_late_older.title, s1_late.title, s3_late.title,
                   s1_soon.title, s1_later.title, s2_soon.title]
    # Without `now` (the API), the order stays by due time.
    assert [i.id for i in list_incidents(active=True)][:3] == [
        s1_late_older.id, s3_late.id, s1_late.id]


def draft(incident: Incident, author, minutes_ago: int = 0) -> Update:
    row = Update(incident_id=incident.id, author_id=author.id, phase="draft",
                 state="investigating", status=incident.status, template="investigating",
                 text_statusio="Draft text", updated_at=utcnow() - timedelta(minutes=minutes_ago))
    db.session.add(row)
    db.session.commit()
    return row


def test_waiting_drafts_picks_the_newest_draft(app):
    carol = make_user("carol", "cmoc")
    one, two = incident_at(carol, "One", "S2", 5), incident_at(carol, "Two", "S2", 5)
    draft(one, carol, minutes_ago=9)
    newest = draft(one, carol, minutes_ago=1)
    assert waiting_drafts([one.id, two.id]) == {one.id: newest}
    assert waiting_drafts([]) == {}


def test_dashboard_rows_owner_draft_marker_and_take_over(app, client):
    carol, dave = make_user("carol", "cmoc"), make_user("dave", "cmoc")
    mine = incident_at(carol, "Mine with a draft", "S2", 5)
    theirs = incident_at(dave, "Theirs", "S1", 5)
    saved = draft(mine, dave)
    login(client, carol)
    html = client.get("/").get_data(as_text=True)
    row = html[html.index(f'data-incident="{mine.id}"'):]
    row = row[:row.index("</tr>")]
    assert "carol" in row and "(you)" in row
    assert f'data-draft="{saved.id}"' in row and "Draft waiting · dave" in row
    assert f"/incidents/{mine.id}/updates/{saved.id}" in row and "Open draft" in row
    assert "data-take-over" not in row  # already mine
    other = html[html.index(f'data-incident="{theirs.id}"'):]
    other = other[:other.index("</tr>")]
    assert "dave" in other and f'data-take-over="{theirs.id}"' in other
    assert client.post(f"/incidents/{theirs.id}/take-over").status_code == 302
    assert db.session.get(Incident, theirs.id).cmoc_id == carol.id


def count_queries(client, path: str) -> int:
    statements = []

    def note(*args):
        statements.append(args[2])

    event.listen(db.engine, "before_cursor_execute", note)
    try:
        assert client.get(path).status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", note)
    return len(statements)


def test_dashboard_queries_do_not_grow_with_incidents(app, client):
    carol = make_user("carol", "cmoc")
    login(client, carol)
    owners = [make_user(f"cmoc{n}", "cmoc") for n in range(3)]
    for n in range(2):
        incident = incident_at(owners[n], f"Incident {n}", "S2", n)
        draft(incident, owners[n])
    few = count_queries(client, "/")
    for n in range(10):
        incident = incident_at(owners[n % 3], f"More {n}", "S3", n)
        draft(incident, owners[(n + 1) % 3])
    assert count_queries(client, "/") == few


def test_incident_page_links_readable_payloads_and_delivery_reasons(make_app):
    app = make_app(STATUSIO_STATUSPAGE_ID=PAGE, SLACK_WORKSPACE_URL="https://gitlab.slack.com")
    with app.app_context():
        carol = make_user("carol", "cmoc")
        incident = make_incident(carol, cmoc_id=carol.id, statusio_incident_id="inc9",
                                 slack_channel_id="C0ADVOCATE",
                                 slack_thread_ts="1795770464.091751")
        older = Update(incident_id=incident.id, author_id=carol.id, phase="published",
                       state="investigating", status="service_disruption",
                       template="investigating", text_statusio="Older update text",
                       created_at=utcnow() - timedelta(minutes=20),
                       published_at=utcnow() - timedelta(minutes=20))
        newer = Update(incident_id=incident.id, author_id=carol.id, phase="published",
                       state="identified", status="service_disruption", template="identified",
                       text_statusio="We're on it", created_at=utcnow(), published_at=utcnow())
        db.session.add_all([older, newer])
        db.session.flush()
        db.session.add_all([
            Delivery(update_id=newer.id, channel="statusio", status="sent",
                     external_id="inc9", payload={"message": "We're on it — 障害"}),
            Delivery(update_id=newer.id, channel="twitter", status="sent", external_id="42"),
            Delivery(update_id=newer.id, channel="slack", status="sent",
                     external_id="1795770500.000200",
                     payload={"channel": "C0ADVOCATE", "thread_ts": "1795770464.091751"}),
            Delivery(update_id=older.id, channel="twitter", status="superseded",
                     error="Not sent: a newer update went out on X first."),
            Delivery(update_id=older.id, channel="slack", status="waiting",
                     error="Waits for the previous Slack post to settle."),
        ])
        db.session.commit()
        client = app.test_client()
        login(client, carol)
        html = client.get(f"/incidents/{incident.id}").get_data(as_text=True)
    assert 'id="incident-bar"' in html and 'id="next-due"' in html and "CMOC <strong>carol" in html
    assert f'href="https://status.gitlab.com/pages/incident/{PAGE}/inc9"' in html
    assert 'href="https://x.com/i/web/status/42"' in html
    assert ('href="https://gitlab.slack.com/archives/C0ADVOCATE/p1795770500000200'
            '?thread_ts=1795770464.091751&amp;cid=C0ADVOCATE"') in html
    assert "We&#39;re on it — 障害" in html and "\\u0027" not in html and "\\u" not in html
    assert 'class="badge d-superseded"' in html and "a newer update went out on X" in html
    assert 'class="badge d-waiting"' in html and "Waits for the previous Slack post" in html
    # The newer update is open; the older one is one line, but open too: it has a waiting post.
    opened = re.findall(r'<li class="update[^"]*" id="update-(\d+)">\s*<details class="'
                        r'update-details" (open)?', html)
    assert dict(opened) == {str(newer.id): "open", str(older.id): "open"}


def test_reminder_counter_counts_dry_run_ones():
    now = utcnow()
    incident = Incident(id=1, title="x", severity="S1", created_at=now)
    rows = [Reminder(kind=k, status=s) for k, s in (
        ("due", "sent"), ("repeat", "dry_run"), ("escalation", "dry_run"),
        ("escalation", "superseded"), ("due", "failed"), ("due", "sending"))]
    comms = compute_comms(incident, [], rows)
    assert (comms.reminders, comms.escalations) == (2, 1)
    assert (comms.reminders_dry_run, comms.escalations_dry_run) == (1, 1)


def test_declare_form_keeps_typing_across_refresh_and_asks_for_severity(live_app):
    client = live_app.test_client()
    login(client, make_user("carol", "cmoc"))
    page = client.get("/incidents/new").get_data(as_text=True)
    assert re.search(r'<option value="" selected>Choose a severity', page)
    assert "autofocus" in page[page.index('id="title"'):page.index('id="title"') + 300]
    typed = {"title": "Pages are slow", "severity": "S2", "status": "degraded_performance",
             "components": ["API"], "issue_url": ISSUE_URL, "slack_channel": "#incident-7",
             "first_symptom": "slow pages", "action": "refresh_components"}
    refreshed = client.post("/incidents/new", data=typed)
    html = refreshed.get_data(as_text=True)
    assert refreshed.status_code == 200 and "Loaded 5 components from status.io" in html
    assert 'value="Pages are slow"' in html and 'value="slow pages"' in html
    assert 'value="#incident-7"' in html and '<option value="S2" selected>' in html
    assert re.search(r'value="API"\s+checked', html)
    assert db.session.query(Incident).count() == 0
    missing = client.post("/incidents/new", data={**typed, "severity": "", "action": "save"})
    assert missing.status_code == 400 and "Choose a severity" in missing.get_data(as_text=True)


def test_first_run_page_has_no_sign_in_prompt(client):
    landing = client.get("/", follow_redirects=True)
    html = landing.get_data(as_text=True)
    assert landing.request.path == "/setup" and "No account exists yet" in html
    assert "Please sign in" not in html


def test_channel_modes_in_every_page_header(make_app):
    app = make_app(SLACK_BOT_TOKEN="xoxb-1", SLACK_ADVOCATES_CHANNEL="#advocates")
    with app.app_context():
        admin = make_user("ada", "admin")
        client = app.test_client()
        login(client, admin)
        for path in ("/", "/incidents/resolved", "/reports/comms", "/admin/users", "/profile"):
            html = client.get(path).get_data(as_text=True)
            assert 'data-channel="statusio" data-mode="dry-run"' in html, path
            assert 'data-channel="slack" data-mode="live"' in html, path


def test_api_docs_render_markdown_and_each_routes_errors(app, client):
    login(client, make_user("vera", "viewer"))
    html = client.get("/api/v1/docs").get_data(as_text=True)
    assert "with <code>publish</code>, send it" in html and "`publish`" not in html
    sections = dict(re.findall(r'<section class="card api-op" id="([^"]+)">(.*?)</section>',
                               html, re.S))
    statuses = {op: set(re.findall(r'data-status="(\d+)"', body))
                for op, body in sections.items()}
    base = "_api_v1_incidents"
    assert statuses[f"get_{base}"] == {"200", "401", "422"}
    assert statuses[f"get_{base}_{{incident_id}}"] == {"200", "401", "404"}
    assert statuses[f"post_{base}"] == {"201", "400", "401", "403", "413", "422"}
    writes = {"400", "401", "403", "404", "409", "413", "422"}
    assert statuses[f"patch_{base}_{{incident_id}}"] == {"200"} | writes
    assert statuses[f"post_{base}_{{incident_id}}_updates"] == {"200", "201"} | writes
    assert statuses[f"post_{base}_{{incident_id}}_updates_{{update_id}}_retry"] == {"200"} | writes
