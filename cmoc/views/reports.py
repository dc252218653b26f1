"""Audit log (admins) and the communication report with charts and CSV exports."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import Response, abort, render_template, request

from cmoc.auth import role_required
from cmoc.csvexport import csv_text
from cmoc.enums import Role
from cmoc.parsing import DB_INT_MAX, BadDay, parse_day, parse_int
from cmoc.services.audit import AuditFilter, audit_csv, query_audit
from cmoc.services.audit_pages import audit_page
from cmoc.services.metrics import report
from cmoc.timeutil import utcnow
from cmoc.views import bp
from cmoc.views.audit_diff import audit_changes


def _date(name: str) -> datetime | None:
    """The day the query argument `name` gives; 400 naming it when it is not a sane day."""
    try:
        return parse_day(request.args.get(name))
    except BadDay as exc:
        abort(400, description=f"“{name}”: {exc}")


def _audit_filter() -> AuditFilter:
    until = _date("until")
    return AuditFilter(action=request.args.get("action", "")[:48],
                       actor=request.args.get("actor", "")[:64],
                       target=request.args.get("target", "")[:100],
                       since=_date("since"),
                       until=until + timedelta(days=1) if until else None)


def _entry_id(name: str) -> int | None:
    return parse_int(request.args.get(name), lo=1, hi=DB_INT_MAX)


@bp.get("/admin/audit")
@role_required(Role.ADMIN)
def audit():
    page = audit_page(_audit_filter(), before=_entry_id("before"), after=_entry_id("after"))
    filters = {k: v for k, v in request.args.items() if k not in ("before", "after") and v}
    return render_template("admin/audit.html", page=page, args=request.args, filters=filters,
                           changes={e.id: audit_changes(e.before, e.after)
                                    for e in page.entries})


@bp.get("/admin/audit.csv")
@role_required(Role.ADMIN)
def audit_export():
    body = audit_csv(query_audit(_audit_filter(), limit=100_000))
    return Response(body, mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=cmoc-audit.csv"})


def _period() -> tuple[datetime, datetime]:
    today = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    since = _date("since") or today - timedelta(days=30)
    until = (_date("until") or today) + timedelta(days=1)
    return since, until


@bp.get("/reports/comms")
def comms_report():
    since, until = _period()
    data = report(since=since, until=until)
    longest = max((c.time_to_first_update or 0 for c in data.incidents), default=0) or 1
    return render_template("reports/comms.html", report=data, longest=longest,
                           since=since, until=until - timedelta(days=1))


@bp.get("/reports/comms.csv")
def comms_export():
    since, until = _period()
    data = report(since=since, until=until)
    body = csv_text(
        ["incident_id", "title", "severity", "declared_at", "first_public_at",
         "time_to_first_update_s", "updates_with_due", "late_updates", "late_minutes_total",
         "reminders", "escalations", "reminders_dry_run", "escalations_dry_run",
         "superseded_deliveries", "not_public_updates", "promises_broken",
         "no_public_post_decisions"],
        ([c.incident_id, c.title, c.severity, c.declared_at.isoformat(),
          c.first_public_at.isoformat() if c.first_public_at else "",
          f"{c.time_to_first_update:.0f}" if c.time_to_first_update is not None else "",
          c.gap_count, c.late_count, f"{c.late_minutes_total:.1f}", c.reminders, c.escalations,
          c.reminders_dry_run, c.escalations_dry_run, c.superseded, c.not_public,
          c.promises_broken, c.no_public_post]
         for c in data.incidents))
    return Response(body, mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=cmoc-comms.csv"})
