"""Time as the ledger stores it: UTC text ``2026-11-22T07:41:22.123456Z`` (one format, sortable as text), and
the one parser of ``since``/``until`` bounds that every API taking them uses.

>>> format_ts(datetime(2026, 11, 22, 7, 41, 22, 123456, tzinfo=UTC))
'2026-11-22T07:41:22.123456Z'
>>> parse_when("2026-11-01T05:00:00+02:00")
'2026-11-01T03:00:00.000000Z'
"""

from __future__ import annotations

import re
import time
from datetime import UTC, date, datetime, timedelta

from ..errors import AnalysisError

__all__ = [
    "HOUR_KEY_FORMAT",
    "PG_TS_FORMAT",
    "TS_FORMAT",
    "format_ts",
    "iso_of_ns",
    "now_iso",
    "now_ns",
    "parse_iso",
    "parse_when",
]

TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # the ledger's timestamp text (strftime)
PG_TS_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'  # the same text from PostgreSQL's to_char
HOUR_KEY_FORMAT = "%Y-%m-%dT%H:00:00Z"  # an hour's label in summaries and anomalies (the rollup key)
_HOUR_START_FORMAT = "%Y-%m-%dT%H:00:00.000000Z"  # the first microsecond of an hour, as ledger text


_second: tuple[int, str] = (-1, "")  # the last whole second formatted (strftime is most of the cost)


def now_iso() -> str:
    """The current UTC time as stored in the ledger: ``2026-11-22T07:41:22.123456Z``."""
    return iso_of_ns(time.time_ns())


def now_ns() -> int:
    """The current time in nanoseconds since the epoch, from the clock :func:`now_iso` reads (what capture
    tapes, formatted by :func:`iso_of_ns` when the row is made)."""
    return time.time_ns()


def iso_of_ns(ns: int) -> str:
    """A ``time.time_ns()`` reading as ledger text (what capture tapes is formatted later, off the call).

    >>> iso_of_ns(1_764_979_282_123_456_789)
    '2025-12-06T00:01:22.123456Z'
    """
    global _second
    second, micros = divmod(ns // 1000, 1_000_000)
    cached = _second
    if cached[0] != second:
        cached = _second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{cached[1]}.{micros:06d}Z"


def parse_iso(ts: str) -> datetime:
    """Ledger timestamp text (or any ISO text, ``Z`` allowed) as a datetime."""
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def format_ts(dt: datetime) -> str:
    """``dt`` as ledger timestamp text, in UTC (a naive datetime is taken as UTC)."""
    dt = dt.astimezone(UTC) if dt.tzinfo else dt.replace(tzinfo=UTC)
    return dt.strftime(TS_FORMAT)


def parse_when(value: date | datetime | str | None, *, now: datetime | None = None) -> str | None:
    """A ``since``/``until`` bound as ledger timestamp text: a date, a datetime, ISO text, or relative
    ``"7d"`` (the last 7 calendar days, today included, UTC) / ``"24h"`` (from the start of the hour 23 hours
    ago). ``None`` stays ``None``. A datetime at midnight UTC gives the date, so the same window is one text.
    Both ``since`` (``ts >= bound``) and ``until`` (``ts < bound``) use this text as is.

    >>> parse_when("2026-11-01")
    '2026-11-01'
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        text = format_ts(value)
        return text[:10] if text.endswith("T00:00:00.000000Z") else text
    if isinstance(value, date):
        return value.isoformat()
    text = str(value).strip()
    if m := re.fullmatch(r"(\d+)([dh])", text):
        now = now or datetime.now(UTC)
        amount, unit = int(m.group(1)), m.group(2)
        if unit == "d":
            return (now.date() - timedelta(days=max(amount - 1, 0))).isoformat()
        start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=max(amount - 1, 0))
        return start.strftime(_HOUR_START_FORMAT)
    try:
        return parse_when(parse_iso(text) if "T" in text or " " in text else date.fromisoformat(text))
    except ValueError:
        raise AnalysisError(
            f"cannot read {value!r} as a time: use YYYY-MM-DD, an ISO timestamp, or 7d / 24h"
        ) from None
