"""The real clock process: one active clock, reminders within seconds, takeover on exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import select

from cmoc.clock import build_scheduler
from cmoc.extensions import db
from cmoc.models import ClockHeartbeat, Reminder
from tests.factories import make_incident

CMOC = os.path.join(os.path.dirname(sys.executable), "cmoc")


def wait_for(predicate, timeout: float = 30.0, step: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


def test_scheduler_never_drops_a_late_run(app):
    scheduler = build_scheduler(app, BackgroundScheduler)
    scheduler.start(paused=True)
    try:
        for job in scheduler.get_jobs():
            assert job.misfire_grace_time is None and job.coalesce and job.max_instances == 1
        assert {j.id for j in scheduler.get_jobs()} == {
            "send-reminders", "resume-deliveries", "refresh-components"}
    finally:
        scheduler.shutdown(wait=False)


@pytest.fixture
def clock_env(live_app, fakes, tmp_path):
    env = {**os.environ, **fakes.env(), "SECRET_KEY": "clock-test",
           "CMOC_INSTANCE_PATH": str(tmp_path / "clock-instance"),
           "DATABASE_URL": live_app.config["SQLALCHEMY_DATABASE_URI"].replace(
               "postgresql+psycopg://", "postgresql://"),
           "CMOC_REMINDER_INTERVAL_SECONDS": "1", "SLACK_REMINDER_CHANNEL": "#cmoc"}
    return env


def start_clock(env):
    return subprocess.Popen([CMOC, "clock"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=os.path.dirname(os.path.dirname(__file__)))


def stop(process) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        output, _ = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return output


def test_two_clock_processes_one_reminder_and_takeover(live_app, clock_env, fakes):
    incident = make_incident(next_update_due_at=datetime.now(UTC) + timedelta(seconds=2),
                             last_published_at=datetime.now(UTC) - timedelta(minutes=8))
    first = start_clock(clock_env)
    try:
        assert wait_for(lambda: _heartbeat() is not None), stop(first)
        second = start_clock(clock_env)
        try:
            # The reminder goes out within a few seconds of its due time, once.
            assert wait_for(lambda: len(fakes.slack_messages) >= 1, timeout=20), stop(first)
            sent = _reminder(incident.id)
            lag = (sent.sent_at - incident.next_update_due_at).total_seconds()
            assert 0 <= lag < 5, lag
            time.sleep(2.5)
            assert len(fakes.slack_messages) == 1
            out_first = stop(first)
            assert "clock active" in out_first
            # The standby clock takes over once the lock is free.
            before = _heartbeat()
            assert wait_for(lambda: (_heartbeat() or before) > before, timeout=30)
        finally:
            out_second = stop(second)
        assert "standing by" in out_second and "clock active" in out_second
    finally:
        stop(first)
    assert len(fakes.slack_messages) == 1


def _heartbeat():
    db.session.expire_all()
    row = db.session.get(ClockHeartbeat, "clock")
    db.session.rollback()
    return row.last_seen if row else None


def _reminder(incident_id):
    db.session.expire_all()
    row = db.session.scalar(select(Reminder).where(Reminder.incident_id == incident_id,
                                                   Reminder.status == "sent"))
    db.session.rollback()
    return row
