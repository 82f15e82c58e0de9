"""``llmcost report --since 7d`` and ``--since 24h`` on a ledger whose calls sit just inside and just outside
each window, relative to the current UTC time.

The windows (``llmcost report --help``, ``analysis.parse_when``): ``7d`` is the last 7 calendar days in UTC,
today included (from 00:00 UTC six days ago); ``24h`` starts at the top of the hour 23 hours ago. model-x
and model-y cost $1 per million input tokens (set in the ledger), so 10,000 input tokens cost one cent; each
call costs a different power of two of cents, so a total says which calls it holds.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from click.testing import CliRunner

import llmcost_nb
from llmcost_nb.cli.app import main

CENT = 10_000  # input tokens


def stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def windows(now: datetime) -> tuple[datetime, datetime]:
    """The starts of the 7d and the 24h window at ``now`` (written out here, not asked of llmcost_nb)."""
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight - timedelta(days=6), now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=23)


def fill(path, now: datetime) -> None:
    week, day = windows(now)
    tick = timedelta(microseconds=1)
    calls = [  # (model, cents, when)
        ("model-x", 1, now - timedelta(minutes=1)),  # in both windows
        ("model-y", 2, day),  # the 24h window's first microsecond: in both
        ("model-x", 4, day - tick),  # just before the 24h window: in 7d only
        ("model-y", 8, week),  # the 7d window's first microsecond: in 7d only
        ("model-x", 16, week - tick),  # just before the 7d window: in neither
        ("model-y", 32, now - timedelta(days=30)),  # in neither
    ]
    ledger = llmcost_nb.Ledger(path)
    for model in ("model-x", "model-y"):
        ledger.set_price(model, input_mtok="1", output_mtok="0")
    rows = [{"model": model, "input_tokens": cents * CENT, "output_tokens": 0, "ts": stamp(when)}
            for model, cents, when in calls]
    assert llmcost_nb.log_many(rows, ledger=ledger) == 6
    ledger.close()


def report(path, *args: str) -> str:
    result = CliRunner().invoke(main, ["report", "--db", str(path), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def run_reports(path) -> dict[str, tuple[list, list]]:
    """Each window's report as JSON (model, requests, input tokens, exact cost) and as the table's rows."""
    found = {}
    for since in ("7d", "24h", None):
        args = ("--since", since) if since else ()
        data = json.loads(report(path, *args, "--format", "json"))
        table = report(path, *args).splitlines()
        assert table[0].split() == ["model", "requests", "errors", "input_tokens", "cache_read_tokens",
                                    "output_tokens", "cost_usd", "avg_latency_ms", "p95_latency_ms"]
        found[since] = (
            [(r["model"], r["requests"], r["input_tokens"], Decimal(r["cost_usd"])) for r in data],
            [line.split() for line in table[1:]],
        )
    return found


@pytest.fixture
def local_time_14_hours_ahead():
    """A local time zone far from UTC (POSIX TZ, no tz database needed): a window read in local time
    would start 14 hours late."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "XXX-14"
    time.tzset()
    yield
    if old is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = old
    time.tzset()


def test_report_since_7d_and_24h_count_exactly_the_calls_in_each_window(tmp_path, local_time_14_hours_ahead):
    for attempt in range(3):  # the windows move on the hour: if one struck while the test ran, run it again
        now = datetime.now(UTC)
        path = tmp_path / f"since-{attempt}.db"
        fill(path, now)
        found = run_reports(path)
        if windows(datetime.now(UTC)) == windows(now):
            break
    else:
        raise AssertionError("the hour changed during each of three runs")
    assert found["24h"] == (
        [("model-x", 1, 1 * CENT, Decimal("0.01")), ("model-y", 1, 2 * CENT, Decimal("0.02"))],
        [["model-x", "1", "0", "10,000", "0", "0", "$0.0100"],
         ["model-y", "1", "0", "20,000", "0", "0", "$0.0200"]],
    )
    assert found["7d"] == (  # rows in the order of the --by keys
        [("model-x", 2, 5 * CENT, Decimal("0.05")), ("model-y", 2, 10 * CENT, Decimal("0.10"))],
        [["model-x", "2", "0", "50,000", "0", "0", "$0.0500"],
         ["model-y", "2", "0", "100,000", "0", "0", "$0.1000"]],
    )
    assert found[None][0] == [("model-x", 3, 21 * CENT, Decimal("0.21")),
                              ("model-y", 3, 42 * CENT, Decimal("0.42"))]
