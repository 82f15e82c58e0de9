"""One ``since``/``until`` parser (``llmcost_nb.core.times.parse_when``) behind every API that takes them:
``Ledger.calls / count / total_cost`` agree with ``summary`` on the same window, for the SQLite ledger and the
PostgreSQL team ledger. Before, the ledger compared ``"7d"`` as text (``ts >= '7d'``): no row matched.

Three calls, each a different power of two of cents, so a total says which calls it holds: one a minute ago,
one three days ago, one ten days ago.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest

from llmcost_nb import Call, Ledger
from llmcost_nb.analysis import AnalysisError
from llmcost_nb.core.times import TS_FORMAT, format_ts, parse_when
from llmcost_nb.team import sync

CENT = Decimal("0.01")


def _calls(now: datetime) -> list[Call]:
    ages = [(1, timedelta(minutes=1)), (2, timedelta(days=3)), (4, timedelta(days=10))]
    return [Call(model="m", input_tokens=1, cost=cents * CENT, ts=format_ts(now - age))
            for cents, age in ages]  # fmt: skip


def _offset_calls() -> list[Call]:
    """03:30 and 02:30 UTC on 1 November: 05:00+02:00 is 03:00 UTC, so only the first is from then on."""
    return [Call(model="m", input_tokens=1, cost=CENT, ts="2026-11-01T03:30:00.000000Z"),
            Call(model="m", input_tokens=1, cost=2 * CENT, ts="2026-11-01T02:30:00.000000Z")]  # fmt: skip


def _window(led, **bounds) -> tuple[int, int, Decimal]:
    return len(led.calls(**bounds)), led.count(**bounds), led.total_cost(**bounds)


def _summary(led, **bounds) -> tuple[int, Decimal]:
    frame = led.summary(by=(), **bounds)
    return int(frame["requests"].sum()), sum(frame["cost_usd"], Decimal(0))


def _check_windows(led) -> None:
    assert _window(led, since="7d") == (2, 2, 3 * CENT)
    assert _summary(led, since="7d") == (2, 3 * CENT)
    assert _window(led, until="7d") == (1, 1, 4 * CENT)
    assert _summary(led, until="7d") == (1, 4 * CENT)
    assert _window(led, since="24h") == (1, 1, CENT)
    week_ago = datetime.now(UTC) - timedelta(days=7)
    assert _window(led, since=week_ago) == _window(led, since=week_ago.isoformat()) == (2, 2, 3 * CENT)
    with pytest.raises(AnalysisError, match="cannot read 'yesterday' as a time: use YYYY-MM-DD"):
        led.calls(since="yesterday")
    with pytest.raises(AnalysisError, match="cannot read 'yesterday' as a time: use YYYY-MM-DD"):
        led.count(until="yesterday")


def test_the_sqlite_ledger_reads_since_and_until_as_summary_does(ledger):
    ledger.write_many(_calls(datetime.now(UTC)))
    _check_windows(ledger)


def test_iso_text_with_an_offset_is_converted_to_utc(ledger):
    ledger.write_many(_offset_calls())
    assert _window(ledger, since="2026-11-01T05:00:00+02:00") == (1, 1, CENT)
    assert _window(ledger, until="2026-11-01T05:00:00+02:00") == (1, 1, 2 * CENT)
    assert _window(ledger, since=date(2026, 11, 1), until="2026-11-02") == (2, 2, 3 * CENT)


def test_the_postgresql_ledger_reads_since_and_until_as_summary_does(ledger):
    from pg_server import PgServer

    ledger.write_many(_calls(datetime.now(UTC)))
    with PgServer() as server:
        dsn = server.dsn.rsplit("/", 1)[0] + "/since_until"
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute("CREATE DATABASE since_until")
        sync(dsn, ledger=ledger)
        team = Ledger(dsn)
        try:
            _check_windows(team)
        finally:
            team.close()


def test_parse_when_gives_ledger_timestamp_text():
    now = datetime(2026, 11, 30, 15, 42, 7, tzinfo=UTC)
    assert parse_when(None) is None
    assert parse_when("7d", now=now) == "2026-11-24"
    assert parse_when("1d", now=now) == "2026-11-30"
    assert parse_when("24h", now=now) == "2026-11-29T16:00:00.000000Z"
    assert parse_when(date(2026, 11, 1)) == parse_when("2026-11-01") == "2026-11-01"
    assert parse_when(datetime(2026, 11, 1)) == "2026-11-01"  # naive means UTC; midnight is the date
    assert parse_when("2026-11-01T05:00:00+02:00") == "2026-11-01T03:00:00.000000Z"
    assert parse_when("2026-11-01T05:00:00.25Z") == "2026-11-01T05:00:00.250000Z"
    with pytest.raises(AnalysisError, match="cannot read '2026-13-01' as a time"):
        parse_when("2026-13-01")


def test_one_timestamp_format():
    when = datetime(2026, 11, 22, 7, 41, 22, 123456, tzinfo=UTC)
    assert TS_FORMAT == "%Y-%m-%dT%H:%M:%S.%fZ"
    assert format_ts(when) == "2026-11-22T07:41:22.123456Z"
    assert format_ts(when.astimezone(datetime.now().astimezone().tzinfo)) == "2026-11-22T07:41:22.123456Z"
    assert format_ts(when.replace(tzinfo=None)) == "2026-11-22T07:41:22.123456Z"  # naive means UTC
