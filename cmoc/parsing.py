"""Strict parsing of numbers and dates typed by people: what Python would accept is wider than
what the database and the date arithmetic can hold, so the range is part of the check."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

# The smallest integer column of both backends (PostgreSQL INTEGER, 4 bytes): an id beyond it
# cannot exist, and PostgreSQL refuses to compare with it ("integer out of range").
DB_INT_MAX = 2**31 - 1
# ASCII digits only: str.isdigit() also accepts "²" and "١", which int() then refuses or reads.
ASCII_DIGITS = re.compile(r"[0-9]{1,18}")
ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Days a filter may name: wide enough for any real incident, narrow enough that a day added for
# "until the end of that day" never overflows.
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(2100, 12, 31)


def parse_int(raw: object, *, lo: int, hi: int) -> int | None:
    """The integer `raw` spells in ASCII digits (surrounding spaces allowed) within lo..hi, or
    None: no signs, no "5.0", no "²", no 20-digit numbers."""
    text = str(raw or "").strip()
    if not ASCII_DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if lo <= value <= hi else None


class BadDay(ValueError):
    """A date filter that is not a YYYY-MM-DD day within FIRST_DAY..LAST_DAY."""


def parse_day(raw: str | None) -> datetime | None:
    """Midnight UTC of a YYYY-MM-DD day, None when empty; BadDay when not a day in range."""
    text = (raw or "").strip()
    if not text:
        return None
    if not ISO_DAY.fullmatch(text):
        raise BadDay("Use a date as YYYY-MM-DD.")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise BadDay("Use a date as YYYY-MM-DD.") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise BadDay(f"Choose a date between {FIRST_DAY} and {LAST_DAY}.")
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
