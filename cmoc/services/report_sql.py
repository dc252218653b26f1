"""The communication report computed in the database: one query for the incidents' figures,
two small grouped ones for the CMOCs', on SQLite and PostgreSQL alike.

Same rules as `cmoc.services.metrics` (its `python_report` is the reference this is tested
against): an update is public when a status page or X delivery of it was sent; a gap is a
public update and the due time the previous public update set (LAG over the incident's public
updates in publish order); it is on time up to LATE_TOLERANCE after that.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CTE, Float, Select, and_, case, exists, func, literal, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
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
    return f"CAST(EXTRACT(EPOCH FROM ({later} - {earlier})) AS DOUBLE PRECISION)"


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
    return (select(Incident.id.label("incident_id"))
            .where(Incident.created_at >= since, Incident.created_at < until)
            .order_by(Incident.created_at, Incident.id).limit(limit).cte("scope"))


def incident_scope(incident_id: int) -> CTE:
    return select(literal(incident_id).label("incident_id")).cte("scope")


def _published(scope: CTE) -> CTE:
    """Published updates of the scope, with who published them and whether they are public."""
    public = exists().where(Delivery.update_id == Update.id,
                            Delivery.channel.in_(PUBLIC_CHANNELS),
                            Delivery.status == DeliveryStatus.SENT.value)
    return (select(Update.id, Update.incident_id, Update.published_at, Update.next_due_at,
                   Update.cadence_minutes,
                   # Who published it; the author when that was not recorded.
                   func.coalesce(Update.published_by_id, Update.author_id).label("publisher_id"),
                   case((public, 1), else_=0).label("public"))
            .join(scope, scope.c.incident_id == Update.incident_id)
            .where(Update.published_at.is_not(None)).cte("published"))


def _public(published: CTE) -> CTE:
    """Public updates in publish order, each with its predecessor's promise (LAG)."""
    order = {"partition_by": published.c.incident_id,
             "order_by": (published.c.published_at, published.c.id)}
    return (select(published.c.id, published.c.incident_id, published.c.published_at,
                   published.c.publisher_id,
                   func.lag(published.c.next_due_at, type_=UTCDateTime).over(**order)
                   .label("due_at"),
                   func.lag(published.c.cadence_minutes).over(**order)
                   .label("cadence_minutes"),
                   func.row_number().over(**order).label("n"))
            .where(published.c.public == 1).cte("public"))


def _gaps(public: CTE) -> CTE:
    """One row per public update that had a due time, with how many seconds after it."""
    return (select(public.c.incident_id, public.c.id.label("update_id"),
                   public.c.published_at, public.c.due_at, public.c.cadence_minutes,
                   public.c.publisher_id,
                   seconds_between(public.c.published_at, public.c.due_at).label("after_s"))
            .where(public.c.due_at.is_not(None)).cte("gaps"))


def _count(condition) -> case:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def incident_figures(scope: CTE) -> Select:
    """One row per incident of the scope, oldest first: what an IncidentComms holds."""
    published = _published(scope)
    public = _public(published)
    gaps = _gaps(public)
    updates = (select(published.c.incident_id, func.count().label("all"),
                      func.sum(published.c.public).label("public"))
               .group_by(published.c.incident_id).subquery())
    late = gaps.c.after_s > TOLERANCE_S
    gap_sums = (select(gaps.c.incident_id, func.count().label("gaps"),
                       _count(late).label("late"),
                       func.sum(case((late, gaps.c.after_s), else_=0.0)).label("late_s"))
                .group_by(gaps.c.incident_id).subquery())
    first = select(public).where(public.c.n == 1).subquery()
    first_by = aliased(User)
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
    return (select(Incident.id, Incident.title, Incident.severity, Incident.created_at,
                   first.c.published_at.label("first_public_at"),
                   first_by.username.label("first_publisher"),
                   func.coalesce(gap_sums.c.gaps, 0).label("gaps"),
                   func.coalesce(gap_sums.c.late, 0).label("late"),
                   func.coalesce(gap_sums.c.late_s, 0.0).label("late_s"),
                   func.coalesce(reminders.c.reminders, 0).label("reminders"),
                   func.coalesce(reminders.c.escalations, 0).label("escalations"),
                   func.coalesce(reminders.c.reminders_dry_run, 0)
                   .label("reminders_dry_run"),
                   func.coalesce(reminders.c.escalations_dry_run, 0)
                   .label("escalations_dry_run"),
                   func.coalesce(superseded.c.superseded, 0).label("superseded"),
                   func.coalesce(updates.c.all - updates.c.public, 0).label("not_public"),
                   func.coalesce(events.c.promises_broken, 0).label("promises_broken"),
                   func.coalesce(events.c.no_public_post, 0).label("no_public_post"))
            .join(scope, scope.c.incident_id == Incident.id)
            .outerjoin(first, first.c.incident_id == Incident.id)
            .outerjoin(first_by, first_by.id == first.c.publisher_id)
            .outerjoin(gap_sums, gap_sums.c.incident_id == Incident.id)
            .outerjoin(updates, updates.c.incident_id == Incident.id)
            .outerjoin(reminders, reminders.c.incident_id == Incident.id)
            .outerjoin(superseded, superseded.c.incident_id == Incident.id)
            .outerjoin(events, events.c.incident_id == Incident.id)
            .order_by(Incident.created_at, Incident.id))


def handled_by(scope: CTE) -> Select:
    """(username, incidents) for everyone who published an update in the scope, public or not."""
    published = _published(scope)
    return (select(User.username, func.count(func.distinct(published.c.incident_id)))
            .join(published, published.c.publisher_id == User.id).group_by(User.username))


def gaps_by(scope: CTE) -> Select:
    """(username, updates with a due time, of them on time) per publisher of a gap."""
    gaps = _gaps(_public(_published(scope)))
    return (select(User.username, func.count(), _count(gaps.c.after_s <= TOLERANCE_S))
            .join(gaps, gaps.c.publisher_id == User.id).group_by(User.username))


def gap_list(scope: CTE) -> Select:
    """The gaps themselves, in publish order (for one incident: they are read one by one)."""
    gaps = _gaps(_public(_published(scope)))
    return (select(gaps.c.update_id, gaps.c.published_at, gaps.c.due_at,
                   gaps.c.cadence_minutes, User.username)
            .outerjoin(User, User.id == gaps.c.publisher_id)
            .order_by(gaps.c.incident_id, gaps.c.published_at, gaps.c.update_id))


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
    object per incident (at most `limit`) and per CMOC."""
    scope = period_scope(since, until, limit)
    incidents = [
        ReportComms(incident_id=r.id, title=r.title, severity=r.severity,
                    declared_at=r.created_at, first_public_at=r.first_public_at,
                    first_publisher=r.first_publisher, reminders=r.reminders,
                    escalations=r.escalations, reminders_dry_run=r.reminders_dry_run,
                    escalations_dry_run=r.escalations_dry_run, superseded=r.superseded,
                    not_public=r.not_public, promises_broken=r.promises_broken,
                    no_public_post=r.no_public_post, gap_count=r.gaps, late_count=r.late,
                    late_seconds=float(r.late_s))
        for r in db.session.execute(incident_figures(scope))]
    people: dict[str, CmocRow] = {}
    for name, count in db.session.execute(handled_by(scope)):
        people.setdefault(name, CmocRow(name)).incidents = count
    for name, due, on_time in db.session.execute(gaps_by(scope)):
        row = people.setdefault(name or "?", CmocRow(name or "?"))
        row.updates_with_due, row.on_time = due, on_time
    for comms in incidents:
        if comms.first_publisher:
            people.setdefault(comms.first_publisher, CmocRow(comms.first_publisher)) \
                .first_updates.append(comms.time_to_first_update)
    return Report(since=since, until=until, incidents=incidents,
                  cmocs=sorted(people.values(), key=lambda r: r.username))
