"""Scale on PostgreSQL: 100,000 past incidents and 1,000,000 updates; p50/p99 of the
dashboard, an incident page, the API list and the communication report, and the query plans;
the report computed in SQL next to the Python reference it replaced, in the same run.

    .venv/bin/python -m bench.scale --database-url postgresql://postgres@127.0.0.1:5432/cmoc_bench

The database's public schema is dropped and rebuilt.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from flask_migrate import upgrade
from sqlalchemy import func, select, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ClauseElement, Executable
from werkzeug.security import generate_password_hash

from cmoc import create_app
from cmoc.extensions import db
from cmoc.services import report_sql
from cmoc.services.metrics import python_report, report
from cmoc.services.tokens import create_token
from cmoc.timeutil import utcnow

SEED = """
INSERT INTO users (username, password_hash, role, active, created_at)
SELECT 'cmoc' || g, :hash, 'cmoc', true, now() FROM generate_series(1, 20) g;
INSERT INTO incidents (title, severity, state, status, components, issue_url, declared_by_id,
    cmoc_id, created_at, updated_at, resolved_at, last_published_at, next_update_due_at)
SELECT 'Past incident ' || g, 'S' || (1 + g % 4),
       CASE WHEN g > :n - 10 THEN 'investigating' ELSE 'resolved' END,
       CASE WHEN g > :n - 10 THEN 'service_disruption' ELSE 'operational' END,
       '["API", "Website"]', 'https://gitlab.com/x/-/issues/' || g, 1 + g % 20, 1 + g % 20,
       now() - ((:n - g) * interval '10 minutes') - interval '2 hours',
       now() - ((:n - g) * interval '10 minutes'),
       CASE WHEN g > :n - 10 THEN NULL ELSE now() - ((:n - g) * interval '10 minutes') END,
       now() - ((:n - g) * interval '10 minutes') - interval '1 hour',
       CASE WHEN g > :n - 10 THEN now() + (g % 7) * interval '1 minute' END
FROM generate_series(1, :n) g;
INSERT INTO updates (incident_id, author_id, published_by_id, phase, state, status, template,
    variables, text_statusio, text_twitter, text_slack, edited_channels, created_at, updated_at,
    published_at, severity_at_publish, cadence_minutes, next_due_at)
SELECT i.id, i.declared_by_id, i.declared_by_id, 'published',
       (ARRAY['investigating','identified','monitoring','monitoring','monitoring',
              'monitoring','monitoring','monitoring','monitoring','resolved'])[u],
       'degraded_performance', 'investigating', '{}', 'Status page text ' || u,
       'Tweet ' || i.id || '-' || u, 'Slack text', '[]',
       i.created_at + u * interval '9 minutes', i.created_at + u * interval '9 minutes',
       i.created_at + (u * 9 + (i.id + u) % 4) * interval '1 minute', i.severity, 10,
       i.created_at + (u * 9 + (i.id + u) % 4) * interval '1 minute' + interval '10 minutes'
FROM incidents i CROSS JOIN generate_series(1, :per) u;
-- One post per update so the report has public and non-public updates: mostly a sent tweet,
-- every tenth Slack only, every thirteenth a failed tweet.
INSERT INTO deliveries (update_id, channel, status, attempts, retryable, outcome_unknown,
    maybe_posted, created_at, updated_at, finished_at)
SELECT u.id, CASE WHEN u.id % 10 = 5 THEN 'slack' ELSE 'twitter' END,
       CASE WHEN u.id % 13 = 0 THEN 'failed' ELSE 'sent' END, 1, false, false, false,
       u.published_at, u.published_at, u.published_at
FROM updates u;
INSERT INTO reminders (incident_id, due_at, kind, seq, slot_at, status, attempts,
    outcome_unknown, created_at, updated_at, sent_at)
SELECT i.id, i.created_at + interval '30 minutes', 'due', 0, i.created_at + interval '30 minutes',
       CASE WHEN i.id % 3 = 0 THEN 'dry_run' ELSE 'sent' END, 1, false, i.created_at,
       i.created_at, i.created_at + interval '30 minutes'
FROM incidents i WHERE i.id % 2 = 0;
"""

PLANS = {
    "dashboard: active incidents by due time":
        "SELECT * FROM incidents WHERE resolved_at IS NULL ORDER BY next_update_due_at LIMIT 200",
    "resolved list: newest first":
        "SELECT * FROM incidents WHERE resolved_at IS NOT NULL ORDER BY resolved_at DESC "
        "LIMIT 200",
    "incident page: its updates":
        "SELECT * FROM updates WHERE incident_id = 4242 ORDER BY created_at DESC, id DESC",
    "report: incidents declared in 30 days":
        "SELECT * FROM incidents WHERE created_at >= now() - interval '30 days' "
        "ORDER BY created_at LIMIT 2000",
}


def database_cpu_ms(engine) -> float:
    """CPU time used so far by the PostgreSQL backends of this database (a local server), in
    ms: on a shared machine wall time varies 2-3x between runs, CPU time much less."""
    with engine.connect() as conn:
        pids = conn.scalars(text("SELECT pid FROM pg_stat_activity "
                                 "WHERE datname = current_database()")).all()
    ticks = 0
    for pid in pids:
        try:  # utime and stime: fields 14 and 15 of /proc/<pid>/stat
            ticks += sum(int(f) for f in
                         Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[11:13])
        except OSError:
            continue
    return ticks * 1000 / os.sysconf("SC_CLK_TCK")


def cpu_now(engine) -> float:
    """This process's CPU time plus the database's, in ms."""
    return time.process_time() * 1000 + database_cpu_ms(engine)


def timed(client, path, n, headers=None, engine=None) -> tuple[float, float, float]:
    """p50 and p99 wall ms of n requests, and their mean CPU ms (app + database)."""
    samples = []
    cpu = cpu_now(engine)
    for _ in range(n):
        started = time.perf_counter()
        response = client.get(path() if callable(path) else path, headers=headers or {})
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (response.status_code, path)
    cpu = (cpu_now(engine) - cpu) / n
    samples.sort()
    return statistics.median(samples), samples[int(0.99 * (len(samples) - 1))], cpu


class Explain(Executable, ClauseElement):
    """EXPLAIN ANALYZE of a SQLAlchemy statement, its parameters bound as the app binds them."""

    inherit_cache = False

    def __init__(self, statement):
        self.statement = statement


@compiles(Explain)
def _explain(element, compiler, **kw):
    return "EXPLAIN (ANALYZE, BUFFERS) " + compiler.process(element.statement, **kw)


def report_side_by_side(sql_rounds: int, python_rounds: int) -> None:
    """The report function alone (no page rendering): SQL and the Python reference it
    replaced, same period as the page (30 days to the end of today), same run."""
    today = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    since, until = today - timedelta(days=30), today + timedelta(days=1)

    def sample(fn, rounds):
        samples = []
        cpu = cpu_now(db.engine)
        for _ in range(rounds):
            db.session.remove()
            started = time.perf_counter()
            result = fn(since=since, until=until)
            samples.append((time.perf_counter() - started) * 1000)
        db.session.remove()
        return result, sorted(samples), (cpu_now(db.engine) - cpu) / rounds

    fast, sql, sql_cpu = sample(report, sql_rounds)
    slow, python, python_cpu = sample(python_report, python_rounds)
    same = ([(c.incident_id, c.first_public_at, c.gap_count, c.late_count, c.not_public,
              c.reminders, round(c.late_minutes_total, 6)) for c in fast.incidents]
            == [(c.incident_id, c.first_public_at, c.gap_count, c.late_count, c.not_public,
                 c.reminders, round(c.late_minutes_total, 6)) for c in slow.incidents]
            and [(r.username, r.incidents, r.updates_with_due, r.on_time, r.median_time_to_first)
                 for r in fast.cmocs]
            == [(r.username, r.incidents, r.updates_with_due, r.on_time, r.median_time_to_first)
                for r in slow.cmocs])
    print(f"\nreport() over 30 days: {len(fast.incidents):,} incidents, "
          f"{sum(c.gap_count for c in fast.incidents):,} gaps, same figures: {same}")
    print(f"{'':24} {'p50 ms':>8} {'max ms':>8} {'CPU ms':>8}   rounds")
    for name, samples, cpu in (("SQL (window functions)", sql, sql_cpu),
                               ("Python (before)", python, python_cpu)):
        print(f"{name:24} {statistics.median(samples):>8.1f} {samples[-1]:>8.1f} {cpu:>8.1f}   "
              f"{len(samples)}")
    print(f"{'ratio SQL / Python':24} {statistics.median(sql) / statistics.median(python):>8.3f}"
          f" {'':8} {sql_cpu / python_cpu:>8.3f}")
    db.session.remove()
    db.session.execute(select(func.set_config("jit", "off", True)))  # as report() runs it
    plan = [r[0] for r in db.session.execute(Explain(report_sql.figures(
        report_sql.period_scope(since, until, 2000))))]
    print("\nreport's incident query, EXPLAIN ANALYZE:")
    for line in plan:
        if any(n in line for n in ("Scan", "WindowAgg", "Join", "Loop", "Execution Time")):
            print(f"  {line.strip()[:110]}")
    db.session.remove()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--updates-per-incident", type=int, default=10)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--report-rounds", type=int, default=21,
                        help="rounds of the SQL report() (the Python one: a third as many)")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the database seeded by a previous run (no reseeding)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        app = create_app({"SECRET_KEY": "bench", "DATABASE_URL": args.database_url,
                          "INSTANCE_PATH": workdir, "WTF_CSRF_ENABLED": False})
        with app.app_context():
            if not args.reuse:
                db.session.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
                db.session.commit()
            upgrade()
            started = time.perf_counter()
            for statement in SEED.split(";\n") if not args.reuse else []:
                if statement.strip():
                    db.session.execute(text(statement), {
                        "hash": generate_password_hash("bench-password"), "n": args.incidents,
                        "per": args.updates_per_incident})
            db.session.commit()
            if not args.reuse:
                # As autovacuum would have by now: statistics, and the visibility map that lets
                # index-only scans skip the table.
                with db.engine.connect().execution_options(
                        isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(text("VACUUM ANALYZE"))
            counts = {t: db.session.scalar(
                select(func.count()).select_from(db.metadata.tables[t]))
                      for t in ("incidents", "updates", "deliveries")}
            print(f"seeded {counts['incidents']:,} incidents, {counts['updates']:,} updates and "
                  f"{counts['deliveries']:,} deliveries in {time.perf_counter() - started:.0f}s "
                  "(PostgreSQL)")
            token = create_token(username="cmoc1", name="bench", now=utcnow())[1]
            print("\nquery plans:")
            for name, sql in PLANS.items():
                plan = "\n".join(r[0] for r in db.session.execute(text("EXPLAIN " + sql)))
                nodes = [n for n in ("Index Only Scan", "Index Scan", "Bitmap Index Scan",
                                     "Seq Scan") if n in plan]
                print(f"  {name:42} {', '.join(nodes)}")
                first = plan.splitlines()[0].strip()
                print(f"      {first[:110]}")
            engine = db.engine
            db.session.remove()
        client = app.test_client()
        assert client.post("/login", data={"username": "cmoc1",
                                           "password": "bench-password"}).status_code == 302
        high = args.incidents
        pages = [
            ("dashboard", "/", None),
            ("incident page", lambda: f"/incidents/{random.randint(1, high)}", None),
            ("API list (all, 100)", "/api/v1/incidents?state=all&limit=100",
             {"Authorization": f"Bearer {token}"}),
            ("resolved list", "/incidents/resolved", None),
            ("comms report (30 days)", "/reports/comms", None),
        ]
        print(f"\n{'page':24} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms':>8}   ({args.requests} "
              "requests each, in-process client; CPU: mean, app + PostgreSQL)")
        for name, path, headers in pages:
            p50, p99, cpu = timed(client, path, args.requests, headers, engine)
            print(f"{name:24} {p50:>8.1f} {p99:>8.1f} {cpu:>8.1f}", flush=True)
        with app.app_context():
            report_side_by_side(args.report_rounds, max(3, args.report_rounds // 3))


if __name__ == "__main__":
    main()
