"""/metrics totals kept by triggers: metric_counters (folded) + metric_deltas (recent)

Every change to a delivery, reminder, notice, handover (and an update's published_at) appends
its effect on the /metrics figures to metric_deltas, in the same transaction, from a database
trigger: so Core UPDATEs, cascaded deletes and raw SQL are counted too, and no hot row is
locked by concurrent writers (an append never waits and cannot deadlock). The clock folds the
deltas into metric_counters; a scrape reads both, so it costs O(label combinations + changes
since the last fold), not O(history). The figures are of the rows' current state (a delivery
failed then sent counts once, as sent), exactly what the old full-scan queries gave.

On SQLite, a later batch_alter_table of deliveries, reminders, notices, handovers or updates
recreates the table and drops its triggers: such a migration must recreate them
(tests/test_metric_counters.py checks they exist at head).

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-27 16:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

# Frozen copies of cmoc.prometheus's buckets: changing those needs a new migration.
LATENCY_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 30, 60, 300)
LAG_BUCKETS = (1, 2, 5, 10, 30, 60, 300, 900)
TABLES = ("deliveries", "reminders", "notices", "handovers", "updates")


def _seconds(dialect, later, earlier):
    if dialect == "postgresql":
        return f"CAST(EXTRACT(EPOCH FROM ({later} - {earlier})) AS DOUBLE PRECISION)"
    return f"((julianday({later}) - julianday({earlier})) * 86400.0)"


def _bucket(seconds, bounds):
    """The bucket's label, its upper bound (non-cumulative; NULL seconds go to +Inf only,
    as the old query counted them in _count but in no bucket)."""
    whens = " ".join(f"WHEN {seconds} <= {float(b)!r} THEN '{float(b)}'" for b in bounds)
    return f"CASE {whens} ELSE '+Inf' END"


def _insert(select):
    return f"INSERT INTO metric_deltas (metric, label, sublabel, value) {select}"


def _histogram(metric, source, bounds, sign):
    """Deltas of one observation (`source` yields its seconds as x.s, or no row)."""
    return [_insert(f"SELECT '{metric}', {_bucket('x.s', bounds)}, '', {sign} FROM {source}"),
            _insert(f"SELECT '{metric}', 'sum', '', {sign} * COALESCE(x.s, 0) FROM {source}")]


def _delivery(dialect, row, sign):
    seconds = _seconds(dialect, f"{row}.finished_at", "u.published_at")
    source = (f"(SELECT {seconds} AS s FROM updates u WHERE u.id = {row}.update_id "
              f"AND u.published_at IS NOT NULL AND {row}.status = 'sent') x")
    return [_insert(f"SELECT 'deliveries', {row}.channel, {row}.status, {sign}"),
            *_histogram("publish_latency", source, LATENCY_BUCKETS, sign)]


def _reminder(dialect, row, sign):
    seconds = _seconds(dialect, f"{row}.sent_at", f"{row}.slot_at")
    source = (f"(SELECT {seconds} AS s WHERE {row}.status = 'sent' "
              f"AND {row}.sent_at IS NOT NULL) x")
    return _histogram("reminder_lag", source, LAG_BUCKETS, sign)


def _notice(dialect, row, sign):
    return [_insert(f"SELECT 'notices', {row}.kind, {row}.status, {sign}")]


def _handover(dialect, row, sign):
    return [_insert(f"SELECT 'handovers', {row}.status, '', {sign}")]


def _update(dialect, row, sign):
    # An update's published_at is the start of its deliveries' latency. A deleted update's
    # deliveries are deleted by the cascade after it is gone (their own trigger then finds
    # no update): so this runs BEFORE the delete.
    seconds = _seconds(dialect, "d.finished_at", f"{row}.published_at")
    source = (f"(SELECT {seconds} AS s FROM deliveries d WHERE d.update_id = {row}.id "
              f"AND d.status = 'sent' AND {row}.published_at IS NOT NULL) x")
    return _histogram("publish_latency", source, LATENCY_BUCKETS, sign)


# table -> (deltas of a row, columns whose change matters, timing of delete)
SPECS = {
    "deliveries": (_delivery, ("status", "channel", "finished_at", "update_id"), "AFTER"),
    "reminders": (_reminder, ("status", "sent_at", "slot_at"), "AFTER"),
    "notices": (_notice, ("status", "kind"), "AFTER"),
    "handovers": (_handover, ("status",), "AFTER"),
    "updates": (_update, ("published_at",), "BEFORE"),
}


def _events(table):
    spec, columns, delete_timing = SPECS[table]
    events = [("upd", f"AFTER UPDATE OF {', '.join(columns)}", columns, True, True),
              ("del", f"{delete_timing} DELETE", (), True, False)]
    if table != "updates":  # a new update has no deliveries yet
        events.insert(0, ("ins", "AFTER INSERT", (), False, True))
    return spec, events


def _sqlite_triggers(table):
    spec, events = _events(table)
    for suffix, event, columns, old, new in events:
        when = (" WHEN " + " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in columns)
                if columns else "")
        body = [*(spec("sqlite", "OLD", -1) if old else ()),
                *(spec("sqlite", "NEW", 1) if new else ())]
        yield (f"CREATE TRIGGER cmoc_metrics_{table}_{suffix} {event} ON {table} "
               f"FOR EACH ROW{when} BEGIN {'; '.join(body)}; END")


def _postgresql_triggers(table):
    spec, events = _events(table)
    old = "; ".join(spec("postgresql", "OLD", -1))
    new = "; ".join(spec("postgresql", "NEW", 1))
    # RETURN OLD lets a BEFORE DELETE proceed; AFTER triggers ignore the value.
    yield (f"CREATE FUNCTION cmoc_metrics_{table}() RETURNS trigger LANGUAGE plpgsql AS $$ "
           f"BEGIN IF TG_OP <> 'INSERT' THEN {old}; END IF; "
           f"IF TG_OP <> 'DELETE' THEN {new}; END IF; RETURN OLD; END $$")
    for suffix, event, columns, _, _ in events:
        when = (" WHEN (" + " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in columns)
                + ")" if columns else "")
        yield (f"CREATE TRIGGER cmoc_metrics_{table}_{suffix} {event} ON {table} "
               f"FOR EACH ROW{when} EXECUTE FUNCTION cmoc_metrics_{table}()")


def _backfill(dialect):
    """The totals of the rows as they are, as the old scrape computed them."""
    latency = (f"(SELECT {_seconds(dialect, 'd.finished_at', 'u.published_at')} AS s "
               "FROM deliveries d JOIN updates u ON u.id = d.update_id "
               "WHERE d.status = 'sent' AND u.published_at IS NOT NULL) x")
    lag = (f"(SELECT {_seconds(dialect, 'r.sent_at', 'r.slot_at')} AS s FROM reminders r "
           "WHERE r.status = 'sent' AND r.sent_at IS NOT NULL) x")
    into = "INSERT INTO metric_counters (metric, label, sublabel, value) "
    statements = [
        into + "SELECT 'deliveries', channel, status, COUNT(*) FROM deliveries "
               "GROUP BY channel, status",
        into + "SELECT 'notices', kind, status, COUNT(*) FROM notices GROUP BY kind, status",
        into + "SELECT 'handovers', status, '', COUNT(*) FROM handovers GROUP BY status",
    ]
    for metric, source, bounds in (("publish_latency", latency, LATENCY_BUCKETS),
                                   ("reminder_lag", lag, LAG_BUCKETS)):
        statements += [
            into + f"SELECT '{metric}', b, '', COUNT(*) FROM (SELECT {_bucket('x.s', bounds)} "
                   f"AS b FROM {source}) y GROUP BY b",
            into + f"SELECT '{metric}', 'sum', '', COALESCE(SUM(x.s), 0) FROM {source}",
        ]
    return statements


def upgrade():
    id_type = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        'metric_counters',
        sa.Column('metric', sa.String(length=32), nullable=False),
        sa.Column('label', sa.String(length=64), nullable=False),
        sa.Column('sublabel', sa.String(length=32), nullable=False),
        sa.Column('value', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('metric', 'label', 'sublabel', name=op.f('pk_metric_counters')),
    )
    op.create_table(
        'metric_deltas',
        sa.Column('id', id_type, autoincrement=True, nullable=False),
        sa.Column('metric', sa.String(length=32), nullable=False),
        sa.Column('label', sa.String(length=64), nullable=False),
        sa.Column('sublabel', sa.String(length=32), nullable=False),
        sa.Column('value', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_metric_deltas')),
    )
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        # Writers wait until the backfill and the triggers are committed together, so no
        # change falls between the two (on SQLite the migration holds the write lock).
        op.execute(f"LOCK TABLE {', '.join(TABLES)} IN SHARE ROW EXCLUSIVE MODE")
    for statement in _backfill(dialect):
        op.execute(statement)
    make = _postgresql_triggers if dialect == "postgresql" else _sqlite_triggers
    for table in TABLES:
        for statement in make(table):
            op.execute(statement)


def downgrade():
    dialect = op.get_bind().dialect.name
    for table in TABLES:
        for suffix in ("ins", "upd", "del"):
            if dialect == "postgresql":
                op.execute(f"DROP TRIGGER IF EXISTS cmoc_metrics_{table}_{suffix} ON {table}")
            else:
                op.execute(f"DROP TRIGGER IF EXISTS cmoc_metrics_{table}_{suffix}")
        if dialect == "postgresql":
            op.execute(f"DROP FUNCTION IF EXISTS cmoc_metrics_{table}()")
    op.drop_table('metric_deltas')
    op.drop_table('metric_counters')
