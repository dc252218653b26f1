"""The lane planner: which delivery of an incident's channel goes next, and which never do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cmoc.services.lanes import LaneRow, plan_lane

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
SEC = timedelta(seconds=1)


def row(seq: int, status: str = "pending", **extra) -> LaneRow:
    return LaneRow(id=seq * 10, update_id=seq, seq=seq, resolves=extra.pop("resolves", False),
                   status=status, **extra)


def plan(*rows: LaneRow, resolved: bool = False, holder: str | None = None):
    return plan_lane(list(rows), channel="twitter", resolved=resolved, now=NOW, holder=holder)


def test_the_only_pending_delivery_is_sent():
    result = plan(row(1))
    assert (result.action, result.row.seq, result.supersede) == ("send", 1, {})


def test_an_older_unsent_delivery_is_superseded_by_a_newer_one():
    result = plan(row(1, "failed", retryable=True, next_attempt_at=NOW + 100 * SEC), row(2))
    assert result.action == "send" and result.row.seq == 2
    assert list(result.supersede) == [10] and "update #2 is newer" in result.supersede[10]


def test_a_failed_delivery_needing_a_person_is_superseded_once_a_newer_one_exists():
    result = plan(row(1, "failed"), row(2, "sent"))
    assert result.action == "idle" and list(result.supersede) == [10]
    assert plan(row(1, "failed")).action == "idle"   # alone, it waits for the Retry button


def test_skipped_newer_updates_do_not_supersede():
    """Update 2 left X out: update 1's tweet is still the newest for X."""
    result = plan(row(1, "failed", retryable=True, next_attempt_at=NOW - SEC), row(2, "skipped"))
    assert result.action == "send" and result.row.seq == 1 and not result.supersede


def test_a_retry_not_yet_due_leaves_the_lane_idle():
    result = plan(row(1, "failed", retryable=True, next_attempt_at=NOW + 5 * SEC))
    assert result.action == "idle" and not result.supersede


def test_resolved_supersedes_everything_but_the_resolving_update():
    result = plan(row(1, "failed", retryable=True, next_attempt_at=NOW - SEC),
                  row(2, "skipped", resolves=True), resolved=True)
    assert result.action == "idle" and "resolved" in result.supersede[10]
    resolving = plan(row(1, "sent"), row(2, resolves=True), resolved=True)
    assert resolving.action == "send" and resolving.row.seq == 2


def test_an_unknown_outcome_is_looked_up_first_and_newer_ones_wait():
    result = plan(row(1, "failed", outcome_unknown=True, next_attempt_at=NOW - SEC),
                  row(2), row(3, "waiting"))
    assert result.action == "look" and result.row.seq == 1 and not result.supersede
    assert set(result.wait) == {20, 30} and "may already be there" in result.wait[20]


def test_a_look_up_not_yet_due_keeps_the_newer_ones_waiting():
    result = plan(row(1, "failed", outcome_unknown=True, next_attempt_at=NOW + 30 * SEC),
                  row(2))
    assert result.action == "idle" and "Next check 09:00 UTC" in result.wait[20]


def test_a_live_lease_makes_the_lane_busy_and_an_expired_one_unknown():
    live = row(1, "sending", lease_until=NOW + 30 * SEC, lease_token="t1")
    busy = plan(live, row(2))
    assert busy.action == "busy" and "being sent" in busy.wait[20]
    dead = plan(row(1, "sending", lease_until=NOW - SEC, lease_token="t1"), row(2))
    assert dead.action == "look" and dead.row.seq == 1


def test_a_runner_keeping_its_lease_across_a_wait_may_go_on():
    kept = row(1, "failed", retryable=True, next_attempt_at=NOW - SEC,
               lease_until=NOW + 60 * SEC, lease_token="mine")
    assert plan(kept).action == "busy"                       # for everyone else
    assert plan(kept, holder="mine").action == "send"        # for its runner
    newer = plan(kept, row(2), holder="mine")                # published during the wait
    assert newer.action == "send" and newer.row.seq == 2 and 10 in newer.supersede


def test_done_deliveries_are_passed_over():
    result = plan(row(1, "sent"), row(2, "superseded"), row(3, "dry_run"), row(4))
    assert result.action == "send" and result.row.seq == 4 and not result.supersede
