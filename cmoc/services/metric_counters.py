"""The /metrics totals kept by database triggers (migration 0020).

Triggers on deliveries, reminders, notices, handovers and updates append each change's effect
to metric_deltas in the changing transaction; `fold` moves them into metric_counters (the
clock, every few seconds) and `totals` reads both. A scrape therefore costs O(label
combinations + changes since the last fold) whatever the history. The totals describe the
rows' current state (a delivery failed then sent counts as sent, once), as the old full-scan
queries did.
"""

from __future__ import annotations

from sqlalchemy import text

from cmoc.extensions import db

Key = tuple[str, str, str]

# Sums the deltas into the counters. PostgreSQL: those deleted by the same statement (a
# data-modifying WITH runs to completion even though the outer query does not read it).
_FOLD_POSTGRESQL = """
WITH moved AS (DELETE FROM metric_deltas RETURNING metric, label, sublabel, value),
folded AS (
    INSERT INTO metric_counters (metric, label, sublabel, value)
    SELECT metric, label, sublabel, SUM(value) FROM moved
    GROUP BY metric, label, sublabel ORDER BY metric, label, sublabel
    ON CONFLICT (metric, label, sublabel)
    DO UPDATE SET value = metric_counters.value + excluded.value)
SELECT COUNT(*) FROM moved"""
# SQLite: `WHERE true` tells its parser the ON CONFLICT is the upsert, not a join's ON.
_FOLD_SQLITE = """
INSERT INTO metric_counters (metric, label, sublabel, value)
SELECT metric, label, sublabel, SUM(value) FROM metric_deltas WHERE true
GROUP BY metric, label, sublabel ORDER BY metric, label, sublabel
ON CONFLICT (metric, label, sublabel)
DO UPDATE SET value = metric_counters.value + excluded.value"""


def fold() -> int:
    """Moves the deltas into the counters, each exactly once; returns how many moved."""
    if db.engine.dialect.name == "postgresql":
        # Two folds never run at once (the second skips). The key is the table's oid, so
        # databases in other schemas of the same server (test runs) do not share it.
        if not db.session.scalar(text(
                "SELECT pg_try_advisory_xact_lock('metric_deltas'::regclass::oid::bigint)")):
            db.session.rollback()
            return 0
        # One statement: the rows summed are exactly the rows deleted (a delta committed
        # meanwhile is not in this snapshot, so it stays for the next fold).
        moved = db.session.execute(text(_FOLD_POSTGRESQL)).scalar_one()
        db.session.commit()
        if moved:
            # The deleted deltas stay in the table as dead rows until a vacuum, and a scrape
            # reads the table: without this it would slow down with every delta ever folded.
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM metric_deltas"))
        return moved
    # SQLite: the INSERT takes the write lock first, so no delta can be added between it and
    # the DELETE (and deleted rows free their pages: nothing to vacuum).
    db.session.execute(text(_FOLD_SQLITE))
    moved = db.session.execute(text("DELETE FROM metric_deltas")).rowcount
    db.session.commit()
    return moved


def totals() -> dict[Key, float]:
    """(metric, label, sublabel) -> value: the counters plus the deltas not yet folded, read
    in one statement so a concurrent fold is seen entirely or not at all."""
    rows = db.session.execute(text(
        "SELECT metric, label, sublabel, SUM(value) FROM ("
        "SELECT metric, label, sublabel, value FROM metric_counters UNION ALL "
        "SELECT metric, label, sublabel, value FROM metric_deltas) t "
        "GROUP BY metric, label, sublabel"))
    return {(metric, label, sublabel): value for metric, label, sublabel, value in rows}
