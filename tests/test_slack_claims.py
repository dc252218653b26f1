"""Claiming an action from Slack: once per (action, incident, due time); refused, failed and
abandoned claims may be taken again, a pending or finished one may not."""

from __future__ import annotations

from datetime import timedelta

from cmoc.extensions import db
from cmoc.services.slack_actions import Outcome, claim, finish
from cmoc.services.slack_blocks import ActionRef
from cmoc.timeutil import utcnow
from tests.factories import make_incident, make_user


def test_claims(app):
    now = utcnow()
    carol, dave = make_user("carol", "cmoc"), make_user("dave", "cmoc")
    incident = make_incident(carol, next_update_due_at=now)
    ref = ActionRef.for_incident(incident)
    first, won = claim(action="snooze", ref=ref, user=carol, slack_user_id="U0CAROL01", now=now)
    assert won
    row, won = claim(action="snooze", ref=ref, user=dave, slack_user_id="U0DAVE001", now=now)
    assert (row.id, won) == (first.id, False)
    # Another action, or another due time, is another claim.
    assert claim(action="take_over", ref=ref, user=dave, slack_user_id="U0DAVE001", now=now)[1]
    later = ActionRef(ref.incident_id, ref.due + 600)
    assert claim(action="snooze", ref=later, user=dave, slack_user_id="U0DAVE001", now=now)[1]
    # Left pending by a process that died: taken again after two minutes, not before.
    assert not claim(action="snooze", ref=ref, user=dave, slack_user_id="U0DAVE001",
                     now=now + timedelta(seconds=90))[1]
    row, won = claim(action="snooze", ref=ref, user=dave, slack_user_id="U0DAVE001",
                     now=now + timedelta(minutes=3))
    assert won and row.user_id == dave.id
    # Refused (past the promise) may be tried again; done may not.
    finish(row, Outcome("refused", "past the promise"), now)
    assert claim(action="snooze", ref=ref, user=carol, slack_user_id="U0CAROL01", now=now)[1]
    db.session.expire_all()
    finish(db.session.get(type(row), row.id), Outcome("done", "snoozed"), now)
    assert not claim(action="snooze", ref=ref, user=dave, slack_user_id="U0DAVE001",
                     now=now + timedelta(hours=1))[1]


def test_action_values_round_trip_and_refuse_anything_else():
    ref = ActionRef(12, 1795701600, "We are restarting \x00the servers.")
    assert ActionRef.parse(ref.value) == ActionRef(12, 1795701600,
                                                   "We are restarting the servers.")
    for raw in (None, 12, "", "null", "[]", '{"incident": "12", "due": 1}',
                '{"incident": 12, "due": true}', '{"incident": 2147483648, "due": 1}',
                '{"incident": 12, "due": 1, "detail": 5}', "{" * 3000, "[" * 1999,
                "x" * 3000):
        assert ActionRef.parse(raw) is None, raw
