"""The communication report computed in the database, on SQLite and PostgreSQL alike: one
statement gives every incident's figures and each CMOC's share of them; Python only assembles
one object per incident.

Same rules as `cmoc.services.metrics` (its `python_report` is the reference this is tested
against): an update is public when a status page or X delivery of it was sent; a gap is a
public update and the due time the previous public update set (LAG over the incident's public
updates in publish order); it is on time up to LATE_TOLERANCE after that.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CTE, ColumnElement, Float, Select, and_, case, exists, func, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql.expression import bindparam, literal
from sqlalchemy.sql.functions import FunctionElement

from cmoc.enums import PUBLIC_CHANNELS, DeliveryStatus
from cmoc.extensions import db
from cmoc.models import Delivery, Incident, IncidentEvent, Reminder, Update, User
from cmoc.services.metrics import LATE_TOLERANCE, CmocRow, Gap, IncidentComms, Report
from cmoc.timeutil import UTCDateTime

TOLERANCE_S = LATE_TOLERANCE.total_seconds()


class seconds_between(FunctionElement):  # noqa: N801 (an SQL function's name)
    """`later - earlier` in seconds, exact to the microsecond like Python's timedelta (the
    report's figures must equal the Python reference's, so no julianday() rounding)."""

    type = Float()
    inherit_cache = True


@compiles(seconds_between)
def _seconds_pg(element, compiler, **kw):
    later, earlier = (compiler.process(c, **kw) for c in element.clauses)
    # date_part() is double precision already (EXTRACT is numeric since PostgreSQL 14: slower).
    return f"date_part('epoch', {later} - {earlier})"


@compiles(seconds_between, "sqlite")
def _seconds_sqlite(element, compiler, **kw):
    # SQLAlchemy stores "YYYY-MM-DD HH:MM:SS.ffffff": whole seconds from strftime('%s'), the
    # microseconds from characters 21-26 (absent → 0).
    later, earlier = (compiler.process(c, **kw) for c in element.clauses)
    whole = (f"(CAST(strftime('%s', {later}) AS INTEGER) "
             f"- CAST(strftime('%s', {earlier}) AS INTEGER))")
    micro = (f"(CAST(substr({later}, 21, 6) AS INTEGER) "
             f"- CAST(substr({earlier}, 21, 6) AS INTEGER))")
    return f"({whole} + {micro} / 1000000.0)"


def period_scope(since: datetime, until: datetime, limit: int) -> CTE:
    """The incidents a report covers: declared in [since, until), the first `limit`."""
    return (select(Incident.id.label("incident_id"), Incident.title, Incident.severity,
                   Incident.created_at)
            .where(Incident.created_at >= since, Incident.created_at < until)
            .order_by(Incident.created_at, Incident.id).limit(limit).cte("scope"))


def incident_scope(incident_id: int) -> CTE:
    """One incident, for reading its gaps."""
    return select(Incident.id.label("incident_id")).where(Incident.id == incident_id) \
        .cte("scope")


def _updates(scope: CTE) -> CTE:
    """Published updates of the scope: who published them, whether they are public and, for
    a public one, the due time and cadence the previous public update set and its place among
    them (windows partitioned by incident and publicness, so LAG skips non-public ones)."""
    # Constants written into the SQL (not bound) so both databases can match the condition to
    # the partial index ix_deliveries_public_sent, also in a prepared statement.
    public = exists().where(
        Delivery.update_id == Update.id,
        Delivery.status == literal(DeliveryStatus.SENT.value, literal_execute=True),
        Delivery.channel.in_(bindparam("public", PUBLIC_CHANNELS, expanding=True,
                                       literal_execute=True)))
    rows = (select(Update.id, Update.incident_id, Update.published_at, Update.next_due_at,
                   Update.cadence_minutes,
                   # Who published it; the author when that was not recorded.
                   func.coalesce(Update.published_by_id, Update.author_id).label("publisher_id"),
                   case((public, 1), else_=0).label("public"))
            .join(scope, scope.c.incident_id == Update.incident_id)
            .where(Update.published_at.is_not(None)).subquery())
    order = {"partition_by": (rows.c.incident_id, rows.c.public),
             "order_by": (rows.c.published_at, rows.c.id)}
    return select(rows.c.id, rows.c.incident_id, rows.c.published_at, rows.c.publisher_id,
                  rows.c.public,
                  func.lag(rows.c.next_due_at, type_=UTCDateTime).over(**order).label("due_at"),
                  func.lag(rows.c.cadence_minutes).over(**order).label("cadence_minutes"),
                  func.row_number().over(**order).label("n")).cte("published")


def _gap(updates: CTE) -> ColumnElement[bool]:
    """A public update with a due time set by the previous public one: one gap."""
    return and_(updates.c.public == 1, updates.c.due_at.is_not(None))


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def figures(scope: CTE) -> Select:
    """One row per incident of the scope and person who published in it (one row without a
    person when nobody did), oldest incident first. Each row has its incident's figures
    (window sums over the incident's rows) and that person's: one statement, so the updates
    are read once for the incidents' and the CMOCs' figures."""
    updates = _updates(scope)
    gap = _gap(updates)
    after = seconds_between(updates.c.published_at, updates.c.due_at)
    late = and_(gap, after > TOLERANCE_S)
    person = (select(updates.c.incident_id, updates.c.publisher_id,
                     func.count().label("published"), func.sum(updates.c.public)
                     .label("public"), _count(gap).label("gaps"), _count(late).label("late"),
                     func.sum(case((late, after), else_=0.0)).label("late_s"))
              .group_by(updates.c.incident_id, updates.c.publisher_id).subquery())
    first = (select(updates.c.incident_id, updates.c.published_at, updates.c.publisher_id)
             .where(updates.c.public == 1, updates.c.n == 1).subquery())
    first_by, person_is = aliased(User), aliased(User)
    happened = Reminder.status.in_(("sent", "dry_run"))
    escalation, dry = Reminder.kind == "escalation", Reminder.status == "dry_run"
    reminders = (select(Reminder.incident_id,
                        _count(~escalation).label("reminders"),
                        _count(escalation).label("escalations"),
                        _count(and_(dry, ~escalation)).label("reminders_dry_run"),
                        _count(and_(dry, escalation)).label("escalations_dry_run"))
                 .join(scope, scope.c.incident_id == Reminder.incident_id)
                 .where(happened).group_by(Reminder.incident_id).subquery())
    superseded = (select(Update.incident_id, func.count(Delivery.id).label("superseded"))
                  .join(scope, scope.c.incident_id == Update.incident_id)
                  .join(Delivery, Delivery.update_id == Update.id)
                  .where(Delivery.status == DeliveryStatus.SUPERSEDED.value)
                  .group_by(Update.incident_id).subquery())
    snooze = IncidentEvent.kind == "snooze"
    events = (select(IncidentEvent.incident_id,
                     _count(and_(snooze, IncidentEvent.detail["breaks_promise"].as_boolean()))
                     .label("promises_broken"),
                     _count(IncidentEvent.kind == "no_public_post").label("no_public_post"))
              .join(scope, scope.c.incident_id == IncidentEvent.incident_id)
              .where(or_(snooze, IncidentEvent.kind == "no_public_post"))
              .group_by(IncidentEvent.incident_id).subquery())

    def incident_total(column, name):
        return func.coalesce(func.sum(column).over(partition_by=scope.c.incident_id), 0) \
            .label(name)

    return (select(scope.c.incident_id, scope.c.title, scope.c.severity, scope.c.created_at,
                   first.c.published_at.label("first_public_at"),
                   first_by.username.label("first_publisher"),
                   incident_total(person.c.gaps, "gaps"), incident_total(person.c.late, "late"),
                   incident_total(person.c.late_s, "late_s"),
                   incident_total(person.c.published - person.c.public, "not_public"),
                   *(func.coalesce(column, 0).label(column.name) for column in (
                       reminders.c.reminders, reminders.c.escalations,
                       reminders.c.reminders_dry_run, reminders.c.escalations_dry_run,
                       superseded.c.superseded, events.c.promises_broken,
                       events.c.no_public_post)),
                   person_is.username.label("publisher"),
                   person.c.gaps.label("publisher_gaps"),
                   (person.c.gaps - person.c.late).label("publisher_on_time"))
            .outerjoin(first, first.c.incident_id == scope.c.incident_id)
            .outerjoin(first_by, first_by.id == first.c.publisher_id)
            .outerjoin(person, person.c.incident_id == scope.c.incident_id)
            .outerjoin(person_is, person_is.id == person.c.publisher_id)
            .outerjoin(reminders, reminders.c.incident_id == scope.c.incident_id)
            .outerjoin(superseded, superseded.c.incident_id == scope.c.incident_id)
            .outerjoin(events, events.c.incident_id == scope.c.incident_id)
            .order_by(scope.c.created_at, scope.c.incident_id, person_is.username))


def gap_list(scope: CTE) -> Select:
    """The gaps themselves, in publish order (for one incident: they are read one by one)."""
    updates = _updates(scope)
    return (select(updates.c.id, updates.c.published_at, updates.c.due_at,
                   updates.c.cadence_minutes, User.username)
            .outerjoin(User, User.id == updates.c.publisher_id).where(_gap(updates))
            .order_by(updates.c.incident_id, updates.c.published_at, updates.c.id))


class ReportComms(IncidentComms):
    """A report row: its gap figures come from SQL; the gaps themselves are loaded (one query)
    only when read, since the report page and CSV show the figures alone."""

    def __init__(self, *, gap_count: int, late_count: int, late_seconds: float, **fields):
        super().__init__(**fields)
        self._gaps: list[Gap] | None = None  # not loaded (the dataclass __init__ set [])
        self._figures = (gap_count, late_count, late_seconds)

    @property
    def gaps(self) -> list[Gap]:
        if self._gaps is None:
            self._gaps = [Gap(update_id=u, published_at=at, due_at=due, cadence_minutes=c,
                              publisher=name) for u, at, due, c, name in db.session.execute(
                                  gap_list(incident_scope(self.incident_id)))]
        return self._gaps

    @gaps.setter
    def gaps(self, value: list[Gap]) -> None:
        self._gaps = value

    @property
    def gap_count(self) -> int:
        return self._figures[0]

    @property
    def late_count(self) -> int:
        return self._figures[1]

    @property
    def late_minutes_total(self) -> float:
        return self._figures[2] / 60


def sql_report(*, since: datetime, until: datetime, limit: int = 2000) -> Report:
    """The report with every figure aggregated by the database; Python only assembles one
    object per incident (at most `limit`) and adds up each CMOC's rows (a few per incident)."""
    if db.session.get_bind().dialect.name == "postgresql":
        # The planner prices ~10 index probes per update (deliveries, updates) well above
        # jit_above_cost, and compiling the plan then takes longer (~130 ms at 2,000
        # incidents) than running it; off for this transaction only.
        db.session.execute(select(func.set_config("jit", "off", True)))
    incidents: list[ReportComms] = []
    people: dict[str, CmocRow] = {}
    # Unpacked in `figures`' column order: reading a Row's attributes by name cost ~40x
    # more (17 ms at 2,000 rows).
    for (incident_id, title, severity, declared_at, first_public_at, first_publisher, gaps,
         late, late_s, not_public, reminders, escalations, reminders_dry_run,
         escalations_dry_run, superseded, promises_broken, no_public_post, publisher,
         publisher_gaps, publisher_on_time) in db.session.execute(
            figures(period_scope(since, until, limit))):
        if not incidents or incidents[-1].incident_id != incident_id:
            incidents.append(ReportComms(
                incident_id=incident_id, title=title, severity=severity,
                declared_at=declared_at, first_public_at=first_public_at,
                first_publisher=first_publisher, reminders=reminders, escalations=escalations,
                reminders_dry_run=reminders_dry_run, escalations_dry_run=escalations_dry_run,
                superseded=superseded, not_public=not_public, promises_broken=promises_broken,
                no_public_post=no_public_post, gap_count=gaps, late_count=late,
                late_seconds=float(late_s)))
            if first_publisher:
                people.setdefault(first_publisher, CmocRow(first_publisher)) \
                    .first_updates.append(incidents[-1].time_to_first_update)
        if publisher is not None:  # published at least one update of this incident
            row = people.setdefault(publisher, CmocRow(publisher))
            row.incidents += 1
            row.updates_with_due += publisher_gaps
            row.on_time += publisher_on_time
    return Report(since=since, until=until, incidents=incidents,
                  cmocs=sorted(people.values(), key=lambda r: r.username))
