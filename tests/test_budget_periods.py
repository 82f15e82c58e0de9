"""Day and month budgets are calendar periods in UTC: what counts against them starts over at 00:00 UTC (and
on the 1st of the month), whatever the machine's local time zone.

The clock is the one thing not real here: ``llmcost_nb.core.times.now_iso`` (the time every call, budget check
and ``spent()`` reads) gets a ``time`` whose ``time_ns`` the test sets, so it can stand just before and just
after midnight. The process runs 14 hours ahead of UTC or 12 behind (POSIX ``TZ``, no tz database needed):
there the local calendar does not turn at 00:00 UTC, so a budget that read local time (or the real clock)
would count the wrong calls. model-x costs exactly $1 per million input tokens and model-y $1 per million
output tokens (set in the ledger), so an n-token call costs n µ$.
"""

from __future__ import annotations

import calendar
import os
import time
from datetime import datetime
from decimal import Decimal

import httpx
import pytest

import llmcost_nb
from llmcost_nb.budget import limits as budget
from llmcost_nb.core import call as _call
from llmcost_nb.core import times as _times


def usd(micro: int) -> Decimal:
    return Decimal(micro) / 1_000_000


class Clock:
    """The ``time`` module as ``now_iso`` sees it, with ``time_ns`` answering a time the test sets."""

    def __init__(self) -> None:
        self.ns = 0

    def set(self, iso: str) -> None:
        when = datetime.fromisoformat(iso.replace("Z", "+00:00"))
        self.ns = (calendar.timegm(when.utctimetuple()) * 1_000_000 + when.microsecond) * 1000

    def time_ns(self) -> int:
        return self.ns

    def __getattr__(self, name: str):
        return getattr(time, name)


@pytest.fixture(params=["XXX-14", "XXX+12"], ids=["utc+14", "utc-12"])
def far_from_utc(request):
    """The process's local time zone 14 hours ahead of UTC, or 12 behind."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = request.param
    time.tzset()
    yield
    if old is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = old
    time.tzset()


@pytest.fixture
def clock(monkeypatch, far_from_utc):
    fake = Clock()
    monkeypatch.setattr(_times, "time", fake)  # the module that reads the clock
    return fake


@pytest.fixture
def priced(ledger):
    llmcost_nb.get_session().use_ledger(ledger)
    ledger.set_price("model-x", input_mtok="1", output_mtok="0")
    ledger.set_price("model-y", input_mtok="0", output_mtok="1")
    return ledger


def stamps(ledger) -> list[str]:
    """The calls' timestamps as stored."""
    return [ts for (ts,) in ledger.connection.execute("SELECT ts FROM calls ORDER BY id")]


def spend(micro: int) -> None:
    llmcost_nb.log(model="model-x", input_tokens=micro, output_tokens=0)


def local_day(clock: Clock, iso: str) -> str:
    clock.set(iso)
    return time.strftime("%Y-%m-%d", time.localtime(clock.ns // 1_000_000_000))


def test_the_clock_drives_ledger_time_and_the_local_calendar_does_not_turn_at_utc_midnight(clock):
    clock.set("2026-11-30T23:59:59.500000Z")
    assert _call.now_iso() == "2026-11-30T23:59:59.500000Z"
    # local time is 14 hours ahead (both instants on 1 December) or 12 behind (both on 30 November)
    assert local_day(clock, "2026-11-30T23:59:59.500000Z") == local_day(clock, "2026-12-01T00:00:00.000000Z")


def test_day_and_month_budgets_start_over_at_the_utc_boundary(clock, priced):
    # in the ledger before this process: last month's final microsecond, and earlier on the 30th
    llmcost_nb.log_many([
        {"model": "model-x", "input_tokens": 7, "output_tokens": 0, "ts": "2026-10-31T23:59:59.999999Z"},
        {"model": "model-x", "input_tokens": 5, "output_tokens": 0, "ts": "2026-11-30T00:00:00.000000Z"},
        {"model": "model-x", "input_tokens": 20, "output_tokens": 0, "ts": "2026-11-29T23:59:59.999999Z"},
    ])
    alerts = []
    budget.on_alert(alerts.append)
    clock.set("2026-11-30T23:59:59.500000Z")
    budget.set_budget(usd(18), scope="day", thresholds=["1"])
    budget.set_budget(usd(40), scope="month", thresholds=["1"])
    assert (budget.spent("day"), budget.spent("month")) == (usd(5), usd(25))
    spend(10)  # 2026-11-30T23:59:59.5Z: day 15 of 18, month 35 of 40
    assert (budget.spent("day"), budget.spent("month")) == (usd(15), usd(35))
    assert alerts == []

    clock.set("2026-12-01T00:00:00.000000Z")  # midnight UTC, and a new month
    assert (budget.spent("day"), budget.spent("month")) == (0, 0)
    spend(6)  # would pass both limits had the periods not started over
    assert (budget.spent("day"), budget.spent("month")) == (usd(6), usd(6))
    assert alerts == []
    assert stamps(priced)[-2:] == ["2026-11-30T23:59:59.500000Z", "2026-12-01T00:00:00.000000Z"]

    budget.refresh(priced)  # read back from the ledger, as the next process would
    assert (budget.spent("day"), budget.spent("month")) == (usd(6), usd(6))
    clock.set("2026-12-01T23:59:59.999999Z")
    spend(12)  # day 18 of 18: its alert, on the 1st's spending only
    assert [(a.budget.scope, a.spent) for a in alerts] == [("day", usd(18))]
    clock.set("2026-12-02T00:00:00.000000Z")  # a new day in the same month
    assert (budget.spent("day"), budget.spent("month")) == (0, usd(18))
    budget.refresh(priced)
    assert (budget.spent("day"), budget.spent("month")) == (0, usd(18))


def test_a_hard_day_budget_refuses_before_midnight_utc_and_sends_after(clock, priced, fake):
    """model-y with max_tokens=5 can cost at most 5 µ$; the day's limit is 12 µ$ and 10 are spent."""
    body = {"model": "model-y", "messages": [{"role": "user", "content": "hello there world"}],
            "max_tokens": 5}
    url = f"{fake.openai_base_url}/chat/completions"
    clock.set("2026-11-30T23:59:59.999999Z")
    spend(10)
    budget.set_budget(usd(12), scope="day", hard=True)
    with pytest.raises(llmcost_nb.BudgetExceeded) as info:
        httpx.post(url, json=body)
    assert (info.value.spent, info.value.request_cost) == (usd(10), usd(5))
    assert fake.request_count == 0

    clock.set("2026-12-01T00:00:00.000000Z")
    assert httpx.post(url, json=body).status_code == 200
    assert fake.request_count == 1
    last = priced.calls().iloc[-1]
    assert (last.model, last.output_tokens, last.cost_usd) == ("model-y", 5, usd(5))
    assert stamps(priced)[-1] == "2026-12-01T00:00:00.000000Z"
    assert budget.spent("day") == usd(5)
