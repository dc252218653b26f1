"""The real clock process: one active clock, reminders within seconds, takeover on exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
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
            "send-reminders", "resume-deliveries", "send-notices", "check-live-pages",
            "refresh-components", "handover", "follow-oncall", "fold-metrics"}
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


class ClockProcess:
    """`cmoc clock` in its own process; its output lines are collected as they come, so a test
    can wait for a line instead of guessing how long start-up takes on a loaded machine."""

    def __init__(self, env):
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [CMOC, "clock"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, cwd=os.path.dirname(os.path.dirname(__file__)))
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)

    def said(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def stop(self) -> str:
        if self.process.stdout.closed:
            return self.output
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.reader.join(timeout=10)
        self.process.stdout.close()
        return self.output


def test_two_clock_processes_one_reminder_and_takeover(live_app, clock_env, fakes):
    # No heads-up: a clock that starts late (loaded machine) would send it just before due,
    # and this test is about the due reminder going out once.
    incident = make_incident(next_update_due_at=datetime.now(UTC) + timedelta(seconds=2),
                             last_published_at=datetime.now(UTC) - timedelta(minutes=8),
                             heads_up=False)
    first = ClockProcess(clock_env)
    second = None
    try:
        assert wait_for(lambda: first.said("clock active"), timeout=120), first.stop()
        second = ClockProcess(clock_env)
        assert wait_for(lambda: second.said("standing by"), timeout=120), second.stop()
        # The reminder goes out once, after its due time (how soon is measured in bench/).
        assert wait_for(lambda: len(fakes.slack_messages) >= 1, timeout=120), first.stop()
        sent = wait_for(lambda: _reminder(incident.id), timeout=30)
        assert sent.sent_at >= incident.next_update_due_at
        # Three more passes of the active clock (1 s apart) send nothing more.
        beats = _heartbeat()
        assert wait_for(lambda: (_heartbeat() or beats) >= beats + timedelta(seconds=3),
                        timeout=120)
        assert len(fakes.slack_messages) == 1
        assert "Traceback" not in first.stop()
        # The standby clock takes over once the lock is free.
        assert wait_for(lambda: second.said("clock active"), timeout=120), second.output
        before = _heartbeat()
        assert wait_for(lambda: (_heartbeat() or before) > before, timeout=120)
    finally:
        first.stop()
        if second is not None:
            second.stop()
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
