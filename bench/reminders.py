"""Reminder lag (due -> sent) and clock CPU per pass at 1, 100 and 10,000 active incidents,
the batched sender side by side with the one-by-one sender it replaced.

    .venv/bin/python -m bench.reminders [--database-url URL] [--sizes 1 100 10000]

Each size gets a fresh database with N active incidents whose next update falls due ~8 s after
the start, a fake Slack on loopback (its own process, no rate limit), and the clock's job run
every --interval seconds (as the clock process does). Lag is measured from the due time to the
moment Slack answered.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta

from flask_migrate import upgrade
from sqlalchemy import insert, select, text

from bench._fakes import fake_apis_process
from bench._reminders_before import send_one_by_one
from cmoc import create_app
from cmoc.extensions import db
from cmoc.fake_apis import fake_env
from cmoc.models import Incident, Reminder, User
from cmoc.services import reminders
from cmoc.services.reminders import send_reminders

SENDERS = {"batched": reminders.send_claimed, "one by one (before)": send_one_by_one}


def make_app(database_url: str | None, workdir: str, fakes_url: str):
    url = database_url or f"sqlite:///{workdir}/bench.sqlite3"
    app = create_app({"SECRET_KEY": "bench", "DATABASE_URL": url, "INSTANCE_PATH": workdir,
                      **fake_env(fakes_url), "SLACK_REMINDER_CHANNEL": "#bench",
                      "REMINDER_HEADS_UP_MINUTES": 0})
    with app.app_context():
        if database_url:
            db.session.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            db.session.commit()
        upgrade()
    return app


def seed(app, n: int, due: datetime) -> None:
    with app.app_context():
        db.session.add(User(username="bench", password_hash="x", role="cmoc"))
        db.session.commit()
        rows = [{"title": f"Incident {i}", "severity": "S1", "state": "investigating",
                 "status": "degraded_performance", "components": ["API"],
                 "issue_url": "https://gitlab.com/x/-/issues/1", "declared_by_id": 1,
                 "created_at": due - timedelta(minutes=30), "updated_at": due,
                 "last_published_at": due - timedelta(minutes=10), "next_update_due_at": due}
                for i in range(n)]
        for start in range(0, n, 2000):
            db.session.execute(insert(Incident), rows[start:start + 2000])
        db.session.commit()


def run(size: int, database_url: str | None, interval: float, sender: str) -> dict:
    # The pass (claims, retries) is today's; only the sending differs between the two.
    reminders.send_claimed = SENDERS[sender]
    with fake_apis_process() as fakes_url, tempfile.TemporaryDirectory() as workdir:
        app = make_app(database_url, workdir, fakes_url)
        due = datetime.now(UTC) + timedelta(seconds=8)
        seed(app, size, due)
        # An idle pass (nothing due yet): what the clock costs every few seconds. The first
        # pass of a process compiles its statements; the median of the next five is the cost.
        send_reminders(app, now=datetime.now(UTC))
        idle = []
        for _ in range(5):
            cpu0, wall0 = time.process_time(), time.perf_counter()
            send_reminders(app, now=datetime.now(UTC))
            idle.append((time.process_time() - cpu0, time.perf_counter() - wall0))
        idle_cpu = statistics.median(c for c, _ in idle)
        idle_wall = statistics.median(w for _, w in idle)
        busy_cpu = 0.0
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            start = time.perf_counter()
            cpu = time.process_time()
            counts = send_reminders(app, now=datetime.now(UTC))
            if counts["claimed"]:
                busy_cpu += time.process_time() - cpu
            with app.app_context():
                done = db.session.scalar(select(db.func.count(Reminder.id)).where(
                    Reminder.status == "sent"))
                db.session.remove()
            if done >= size:
                break
            time.sleep(max(0.0, interval - (time.perf_counter() - start)))
        with app.app_context():
            sent = db.session.scalars(select(Reminder).where(Reminder.status == "sent")).all()
            lags = sorted((r.sent_at - r.due_at).total_seconds() for r in sent)
            messages = len({r.external_id for r in sent})
            db.session.remove()
            db.engine.dispose()
    assert len(lags) == size, f"sent {len(lags)} of {size}"
    return {
        "size": size, "sender": sender, "p50": statistics.median(lags),
        "p95": lags[int(0.95 * (len(lags) - 1))], "p99": lags[int(0.99 * (len(lags) - 1))],
        "max": lags[-1],
        "idle_cpu_ms": idle_cpu * 1000, "idle_wall_ms": idle_wall * 1000,
        "send_cpu_ms_per_reminder": busy_cpu * 1000 / size,
        "messages": messages,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="PostgreSQL URL (its public schema is reset)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 100, 10_000])
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between passes")
    parser.add_argument("--senders", nargs="+", choices=list(SENDERS), default=list(SENDERS))
    args = parser.parse_args()
    backend = "postgresql" if args.database_url else "sqlite"
    print(f"reminder lag, {backend}, pass every {args.interval:g}s")
    print(f"{'sender':>20} {'incidents':>9} {'lag p50':>8} {'lag p95':>8} {'lag p99':>8} "
          f"{'lag max':>8} {'idle pass cpu':>13} {'idle pass wall':>14} {'cpu/reminder':>12}")
    for size in args.sizes:
        p99 = {}
        for sender in args.senders:
            r = run(size, args.database_url, args.interval, sender)
            p99[sender] = r["p99"]
            assert r["messages"] == size
            print(f"{sender:>20} {r['size']:>9} {r['p50']:>7.2f}s {r['p95']:>7.2f}s "
                  f"{r['p99']:>7.2f}s {r['max']:>7.2f}s "
                  f"{r['idle_cpu_ms']:>11.1f}ms {r['idle_wall_ms']:>12.1f}ms "
                  f"{r['send_cpu_ms_per_reminder']:>10.2f}ms", flush=True)
        if len(p99) == 2:
            batched, before = p99.values()
            print(f"{'':>20} {size:>9} lag p99 batched / before = {batched / before:.2f}; "
                  f"target p99 <= 2 s: {'met' if batched <= 2 else 'NOT met'} "
                  f"({batched / 2:.1f} x the target)", flush=True)


if __name__ == "__main__":
    main()
