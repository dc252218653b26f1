"""The clock's single-instance lock and heartbeat."""

from __future__ import annotations

import fcntl
import os
import socket
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, text

from cmoc.extensions import db
from cmoc.models import ClockHeartbeat

LOCK_KEY = 0x636D6F63  # "cmoc": the PostgreSQL advisory lock id
HEARTBEAT_STALE = timedelta(seconds=60)


class ClockLock:
    """Only one clock is active: a PostgreSQL advisory lock held on its own connection, or on
    SQLite (one machine) an exclusive lock on a file in the instance folder."""

    def __init__(self, *, engine: Engine, instance_path: str):
        self.engine = engine
        self.instance_path = instance_path
        self._connection = None
        self._file: int | None = None

    def acquire(self) -> bool:
        if self.engine.dialect.name == "postgresql":
            if self._connection is None:
                self._connection = self.engine.connect()
            got = self._connection.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": LOCK_KEY}).scalar()
            self._connection.commit()
            return bool(got)
        Path(self.instance_path).mkdir(parents=True, exist_ok=True)
        if self._file is None:
            self._file = os.open(os.path.join(self.instance_path, "clock.lock"),
                                 os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def release(self) -> None:
        if self._connection is not None:
            self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
            self._connection.close()
            self._connection = None
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            os.close(self._file)
            self._file = None


def beat(*, name: str = "clock", now: datetime) -> None:
    row = db.session.get(ClockHeartbeat, name)
    if row is None:
        row = ClockHeartbeat(name=name, last_seen=now, pid=os.getpid(), host=socket.gethostname())
        db.session.add(row)
    row.last_seen, row.pid, row.host = now, os.getpid(), socket.gethostname()
    db.session.commit()


def clock_last_seen(name: str = "clock") -> datetime | None:
    row = db.session.get(ClockHeartbeat, name)
    return row.last_seen if row else None


def clock_is_healthy(*, now: datetime) -> bool:
    last = clock_last_seen()
    return last is not None and now - last <= HEARTBEAT_STALE
