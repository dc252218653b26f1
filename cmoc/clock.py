"""The clock process: APScheduler only schedules; each job is an idempotent function that is
also a CLI command. All state lives in the database, so a restart loses nothing."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask

from cmoc.services.components import refresh_components
from cmoc.services.publishing import channels_for, resume_deliveries
from cmoc.timeutil import utcnow

log = logging.getLogger(__name__)


def resume_deliveries_job(app: Flask) -> None:
    counts = resume_deliveries(app, now=utcnow())
    if any(counts.values()):
        log.info("resume-deliveries: %s", counts)


def refresh_components_job(app: Flask) -> None:
    with app.app_context():
        statusio = channels_for(app)["statusio"]
        if not statusio.configured:
            return
        count, error = refresh_components(statusio=statusio, now=utcnow())
        if error:
            log.warning("refresh-components failed: %s", error)
        else:
            log.info("refresh-components: %d components", count)


@dataclass(frozen=True)
class ClockJob:
    name: str
    func: Callable[[Flask], None]
    seconds: int


JOBS = (
    ClockJob("resume-deliveries", resume_deliveries_job, 15),
    ClockJob("refresh-components", refresh_components_job, 3600),
)


def build_scheduler(app: Flask) -> BlockingScheduler:
    # Missed runs (the clock was down) still run once when it is back: no grace limit,
    # coalesced, never two copies of a job at once.
    scheduler = BlockingScheduler(timezone=UTC, job_defaults={
        "coalesce": True, "max_instances": 1, "misfire_grace_time": None})
    start = datetime.now(UTC)
    for job in JOBS:
        scheduler.add_job(job.func, "interval", args=[app], seconds=job.seconds, id=job.name,
                          name=job.name, next_run_time=start, replace_existing=True)
    return scheduler


def run_clock(app: Flask) -> None:
    """Blocks, running the jobs until SIGTERM/SIGINT."""
    scheduler = build_scheduler(app)

    def stop(signum, frame):
        log.info("clock stopping (signal %s)", signum)
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("clock started: %s", ", ".join(f"{j.name} every {j.seconds}s" for j in JOBS))
    scheduler.start()
