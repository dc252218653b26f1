"""UTC helpers: everything is stored and shown in UTC."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator

# How far this process's clock is moved on: zero, except in tests that must let minutes pass
# (a drafting form left open) without sleeping through them. Every "now" comes from utcnow.
_offset = timedelta(0)


def utcnow() -> datetime:
    return datetime.now(UTC) + _offset


@contextmanager
def clock_moved() -> Iterator[Callable[[timedelta], None]]:
    """Yields `advance(delta)`, which moves this process's clock on; put back on exit."""
    global _offset
    saved = _offset

    def advance(delta: timedelta) -> None:
        global _offset
        _offset += delta

    try:
        yield advance
    finally:
        _offset = saved


class UTCDateTime(TypeDecorator):
    """Stores naive UTC, returns aware UTC, on SQLite and PostgreSQL alike."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; pass an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect):
        return None if value is None else value.replace(tzinfo=UTC)


def fmt_utc(value: datetime | None, with_date: bool = True) -> str:
    if value is None:
        return "—"
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M UTC" if with_date else "%H:%M UTC")


def fmt_duration(seconds: float) -> str:
    """Compact duration: 45s, 12m, 1h 05m, 2d 3h."""
    seconds = int(abs(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"
