"""The end-of-shift handover issue: shifts, the content on a scripted shift, "nothing
happened", one issue per shift (button, CLI, clock, an attempt that got no answer)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import select

from cmoc.extensions import db
from cmoc.fake_apis.gitlab import HANDOVER_PROJECT
from cmoc.models import AuditEntry, Delivery, Handover, Reminder, Update
from cmoc.services.handover import (
    previous_shift,
    scheduled_handover,
    shift_at,
    write_handover,
)
from tests.factories import login, make_incident, make_user

T = datetime(2026, 11, 26, tzinfo=UTC)
STARTS = (time(0), time(8), time(16))
SHIFT = (T + timedelta(hours=8), T + timedelta(hours=16))
END_OF_SHIFT = SHIFT[1] + timedelta(seconds=30)


def at(hours: float) -> datetime:
    return T + timedelta(hours=hours)


def handover_issues(fakes) -> list[dict]:
    return [i for (p, _), i in fakes.gitlab_api.issues.items() if p == 2]


def test_shifts_follow_the_configured_utc_starts():
    assert shift_at(at(7.99), STARTS) == (at(0), at(8))
    assert shift_at(at(8), STARTS) == (at(8), at(16))
    assert shift_at(at(23), STARTS) == (at(16), at(24))
    assert previous_shift(at(0.5), STARTS) == (at(-8), at(0))
    assert shift_at(at(3), (time(6, 30),)) == (at(-17.5), at(6.5))


def scripted_shift():
    """Four incidents around the 08:00–16:00 shift: two belong in its handover."""
    carol, dan = make_user("carol", "cmoc"), make_user("dan", "cmoc")
    make_incident(carol, now=at(1), title="Before the shift", state="resolved",
                  resolved_at=at(3))
    resolved = make_incident(carol, now=at(9), title="Registry errors", severity="S2",
                             state="resolved", status="operational", resolved_at=at(11),
                             last_published_at=at(10.9), next_update_due_at=None,
                             cmoc_id=carol.id, slack_channel="#incident-101")
    active = make_incident(dan, now=at(14), title="Slow Git pushes", severity="S1",
                           state="identified", last_published_at=at(14.1),
                           next_update_due_at=at(14.1) + timedelta(minutes=10),
                           cmoc_id=dan.id, statusio_incident_id="abc123")
    make_incident(carol, now=at(17), title="After the shift")
    for incident, published, who in ((resolved, at(10.9), carol), (active, at(14.1), dan)):
        update = Update(incident_id=incident.id, author_id=who.id, published_by_id=who.id,
                        phase="published", state=incident.state, status=incident.status,
                        template=incident.state, published_at=published, created_at=published,
                        updated_at=published, publish_seq=1)
        db.session.add(update)
        db.session.flush()
        db.session.add(Delivery(update_id=update.id, channel="twitter",
                                status="failed" if incident is active else "sent",
                                error="X rate limit (HTTP 429)" if incident is active else None,
                                created_at=published, updated_at=published))
    db.session.add(Reminder(incident_id=active.id, due_at=active.next_update_due_at,
                            kind="due", seq=0, slot_at=active.next_update_due_at,
                            status="undeliverable", error="Nobody to remind",
                            created_at=at(14.3), updated_at=at(14.3)))
    db.session.commit()
    return resolved, active


def test_the_handover_issue_of_a_scripted_shift(gitlab_app, fakes):
    resolved, active = scripted_shift()
    row = write_handover(config=gitlab_app.config, start=SHIFT[0], end=SHIFT[1],
                         now=END_OF_SHIFT)
    assert row.status == "sent", row.error
    [issue] = handover_issues(fakes)
    assert issue["title"] == "CMOC handover 2026-11-26 08:00–16:00 UTC"
    assert issue["labels"] == ["CMOC Handover"]
    assert row.issue_url == issue["web_url"] and row.issue_iid == issue["iid"]
    body = issue["description"]
    assert body == row.body
    assert "CMOC on duty: carol, dan" in body
    assert "Before the shift" not in body and "After the shift" not in body
    attention = body.split("### Needs attention")[1].split("### Incidents handled")[0]
    assert f"**#{active.id} Slow Git pushes** — **update overdue** since 2026-11-26 14:16 UTC" \
        in attention
    assert "update #" in attention and "failed on twitter: X rate limit (HTTP 429)" in attention
    assert "reminder for 14:16 UTC undeliverable: Nobody to remind" in attention
    assert "Registry errors" not in attention
    handled = body.split("### Incidents handled in this shift")[1]
    assert f"#### #{resolved.id} Registry errors" in handled
    assert "- S2 · Resolved · Operational · resolved 2026-11-26 11:00 UTC" in handled
    assert "- Last update: 2026-11-26 10:54 UTC (1 in this shift)" in handled
    assert "- Next update due: none (resolved)" in handled
    assert f"[cmoc](http://cmoc.test/incidents/{resolved.id})" in handled
    assert "· Slack #incident-101" in handled
    assert "- S1 · Identified · Service disruption" in handled
    assert "- Next update due: 2026-11-26 14:16 UTC" in handled
    assert ("[status page](https://status.gitlab.com/pages/incident/5b36dc6502d06804c08349f7/"
            "abc123)") in handled
    assert body.rstrip().endswith("<!-- cmoc-handover:2026-11-26T08:00Z -->")
    audit = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "handover.write"))
    assert audit.after["issue"] == issue["web_url"] and audit.after["incidents"] == 2


def test_a_quiet_shift_says_nothing_happened(gitlab_app, fakes):
    row = write_handover(config=gitlab_app.config, start=SHIFT[0], end=SHIFT[1],
                         now=END_OF_SHIFT)
    assert row.status == "sent"
    body = handover_issues(fakes)[0]["description"]
    assert "### Nothing happened" in body and "No incident was active" in body
    assert "Needs attention" not in body


def test_one_issue_per_shift_however_often_it_is_written(gitlab_app, fakes):
    first = write_handover(config=gitlab_app.config, start=SHIFT[0], end=SHIFT[1],
                           now=END_OF_SHIFT)
    again = write_handover(config=gitlab_app.config, start=SHIFT[0], end=SHIFT[1],
                           now=END_OF_SHIFT + timedelta(minutes=5), via="cli")
    assert again.issue_url == first.issue_url and len(handover_issues(fakes)) == 1
    # Even a cmoc that lost its row (another instance, a restored database) finds the issue.
    db.session.delete(db.session.get(Handover, first.id))
    db.session.commit()
    third = write_handover(config=gitlab_app.config, start=SHIFT[0], end=SHIFT[1],
                           now=END_OF_SHIFT + timedelta(minutes=9))
    assert third.issue_url == first.issue_url and len(handover_issues(fakes)) == 1
    assert third.attempts == 0


@pytest.mark.parametrize(("fault", "unknown"), [
    (dict(status=502, apply=True, body="bad gateway"), True),   # made, answer lost
    (dict(status=503, body="unavailable"), True),               # not made, 5xx: unknown
    (dict(status=429, headers={"Retry-After": "5"}), False),    # not made, safe
])
def test_an_unclear_create_is_looked_up_before_writing_again(gitlab_app, fakes, fault,
                                                             unknown):
    fakes.fail("gitlab", "issues", method="POST", **fault)
    failed = write_handover(config=gitlab_app.config, start=SHIFT[0], end=SHIFT[1],
                            now=END_OF_SHIFT)
    assert failed.status == "failed" and failed.outcome_unknown == unknown
    made = len(handover_issues(fakes))
    retried = scheduled_handover(gitlab_app.config, now=SHIFT[1] + timedelta(minutes=2))
    assert retried.status == "sent" and len(handover_issues(fakes)) == 1
    assert retried.attempts == (1 if made else 2)


def test_without_a_handover_project_the_text_is_kept_to_copy(make_app):
    app = make_app(BASE_URL="http://cmoc.test")
    with app.app_context():
        row = write_handover(config=app.config, start=SHIFT[0], end=SHIFT[1],
                             now=END_OF_SHIFT)
        assert row.status == "dry_run" and "GITLAB_HANDOVER_PROJECT" in row.error
        assert "### Nothing happened" in row.body
        assert scheduled_handover(app.config, now=END_OF_SHIFT) is None   # clock: no-op


def test_the_clock_writes_the_shift_that_ended_once(gitlab_app, fakes):
    row = scheduled_handover(gitlab_app.config, now=SHIFT[1] + timedelta(seconds=40))
    assert row.status == "sent" and row.via == "clock" and row.shift_start == SHIFT[0]
    assert scheduled_handover(gitlab_app.config, now=SHIFT[1] + timedelta(minutes=1)) is None
    assert len(handover_issues(fakes)) == 1


def test_the_button_writes_the_current_or_previous_shift(gitlab_app, fakes):
    client = gitlab_app.test_client()
    login(client, make_user("carol", "cmoc"))
    page = client.get("/handover").get_data(as_text=True)
    assert "This shift so far" in page and 'id="handover-preview"' in page
    done = client.post("/handover", data={"shift": "previous"}, follow_redirects=True)
    html = done.get_data(as_text=True)
    [issue] = handover_issues(fakes)
    assert issue["web_url"] in html and 'class="badge d-sent"' in html
    client.post("/handover", data={"shift": "previous"})
    assert len(handover_issues(fakes)) == 1
    row = db.session.scalar(select(Handover))
    assert row.via == "web" and row.actor.username == "carol"
    viewer = gitlab_app.test_client()
    login(viewer, make_user("vera", "viewer"))
    assert viewer.post("/handover", data={"shift": "current"}).status_code == 403
    assert 'id="write-handover"' not in viewer.get("/handover").get_data(as_text=True)


def test_cmoc_handover_command(gitlab_app, fakes):
    result = gitlab_app.test_cli_runner().invoke(args=["handover", "--at",
                                                       "2026-11-26T09:30:00Z"])
    assert result.exit_code == 0, result.output
    [issue] = handover_issues(fakes)
    assert re.search(r"CMOC handover 2026-11-26 08:00–16:00 UTC: sent http://\S+/"
                     + re.escape(HANDOVER_PROJECT) + r"/-/issues/1", result.output)
    again = gitlab_app.test_cli_runner().invoke(args=["handover", "--at",
                                                      "2026-11-26T15:00:00Z"])
    assert again.exit_code == 0 and len(handover_issues(fakes)) == 1
