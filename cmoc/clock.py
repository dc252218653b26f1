"""The clock process: APScheduler only schedules; each job is an idempotent function that is
also a CLI command. All state lives in the database, so a restart loses nothing."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask

from cmoc.extensions import db
from cmoc.services.aftercare import run_live_checks
from cmoc.services.audit import record_config_change
from cmoc.services.clock_state import ClockLock, beat
from cmoc.services.components import refresh_components
from cmoc.services.delivering import resume_deliveries, statusio_for
from cmoc.services.handover import scheduled_handover
from cmoc.services.metric_counters import fold
from cmoc.services.oncall import follow_oncall, oncall_settings
from cmoc.services.reminders import send_reminders
from cmoc.services.stakeholders import notices_pass
from cmoc.timeutil import utcnow

log = logging.getLogger(__name__)


def send_reminders_job(app: Flask) -> None:
    now = utcnow()
    with app.app_context():
        beat(now=now)
        db.session.remove()
    counts = send_reminders(app, now=now)
    if counts["claimed"] or counts["failed"]:
        log.info("send-reminders: %s", counts)


def resume_deliveries_job(app: Flask) -> None:
    counts = resume_deliveries(app, now=utcnow())
    if any(counts.values()):
        log.info("resume-deliveries: %s", counts)


def send_notices_job(app: Flask) -> None:
    counts = notices_pass(app, now=utcnow())
    if any(counts.values()):
        log.info("send-notices: %s", counts)


def handover_job(app: Flask) -> None:
    """Writes the last ended shift's handover issue once (a no-op until then)."""
    with app.app_context():
        row = scheduled_handover(app.config, now=utcnow())
        if row is not None:
            log.info("handover %s: %s %s", row.title, row.status, row.issue_url or row.error)
        db.session.remove()


def follow_oncall_job(app: Flask) -> None:
    """Who PagerDuty has on call; incidents of an off-call CMOC go to them (no-op unset)."""
    result = follow_oncall(app, now=utcnow())
    if result.get("handed_over") or result.get("error"):
        log.info("follow-oncall: %s", result)


def fold_metrics_job(app: Flask) -> None:
    """Folds the /metrics deltas the triggers appended into the totals, so a scrape reads few
    rows (correct either way: it adds the deltas not folded yet)."""
    with app.app_context():
        fold()
        db.session.remove()


def check_live_pages_job(app: Flask) -> None:
    checked = run_live_checks(app, now=utcnow())
    if checked:
        log.info("check-live-pages: %s incident(s) read back", checked)


def refresh_components_job(app: Flask) -> None:
    with app.app_context():
        statusio = statusio_for(app)
        if statusio.configured:
            count, error = refresh_components(statusio=statusio, now=utcnow())
            if error:
                log.warning("refresh-components failed: %s", error)
        db.session.remove()


def config_paths(app: Flask) -> list[Path]:
    """The files whose change is audited: config and message templates."""
    from cmoc import ROOT

    paths = [ROOT / "config" / "default.toml", ROOT / "templates" / "messages"]
    if app.config.get("CMOC_CONFIG_PATH"):
        paths.append(Path(app.config["CMOC_CONFIG_PATH"]))
    return paths


@dataclass(frozen=True)
class ClockJob:
    name: str
    func: Callable[[Flask], None]
    seconds: int


def jobs(app: Flask) -> tuple[ClockJob, ...]:
    return (
        ClockJob("send-reminders", send_reminders_job,
                 int(app.config.get("REMINDER_INTERVAL_SECONDS", 5))),
        ClockJob("resume-deliveries", resume_deliveries_job,
                 int(app.config.get("PUBLISH_RESUME_SECONDS", 3))),
        ClockJob("send-notices", send_notices_job, 15),
        ClockJob("fold-metrics", fold_metrics_job, 15),
        ClockJob("check-live-pages", check_live_pages_job, 60),
        ClockJob("refresh-components", refresh_components_job, 3600),
        # Shift boundaries are checked every minute: the handover follows within a minute.
        ClockJob("handover", handover_job, 60),
        ClockJob("follow-oncall", follow_oncall_job,
                 oncall_settings(app.config).refresh_seconds),
    )


def build_scheduler(app: Flask, scheduler_class: type[BaseScheduler] = BlockingScheduler
                    ) -> BaseScheduler:
    # Missed runs (the clock was down) still run once when it is back: no grace limit
    # (APScheduler's default of 1 s would drop them), coalesced, never two at once.
    scheduler = scheduler_class(timezone=UTC, job_defaults={
        "coalesce": True, "max_instances": 1, "misfire_grace_time": None})
    start = datetime.now(UTC)
    for job in jobs(app):
        scheduler.add_job(job.func, "interval", args=[app], seconds=job.seconds, id=job.name,
                          name=job.name, next_run_time=start, replace_existing=True)
    return scheduler


def run_clock(app: Flask, *, standby_seconds: float = 10.0) -> None:
    """Blocks until SIGTERM/SIGINT. A second clock waits on the lock instead of running jobs."""
    with app.app_context():
        lock = ClockLock(engine=db.engine, instance_path=app.instance_path)
    stopping = False
    scheduler = build_scheduler(app)

    def stop(signum, frame):
        nonlocal stopping
        stopping = True
        log.info("clock stopping (signal %s)", signum)
        if scheduler.running:
            # Not from the handler itself: it interrupts the scheduler's own loop, which then
            # finds its jobs gone (JobLookupError). Another thread waits for the loop's lock.
            threading.Thread(target=scheduler.shutdown, kwargs={"wait": False},
                             daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    announced = False
    while not stopping and not lock.acquire():
        if not announced:
            log.info("another clock holds the lock; standing by")
            announced = True
        time.sleep(standby_seconds)
    if stopping:
        return
    with app.app_context():
        record_config_change(paths=config_paths(app), now=utcnow())
        db.session.remove()
    try:
        log.info("clock active: %s", ", ".join(f"{j.name} every {j.seconds}s" for j in jobs(app)))
        scheduler.start()
    finally:
        lock.release()
