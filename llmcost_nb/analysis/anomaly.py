"""Anomalies: days (or hours) whose spend jumps over the trailing average, and runaway cells or runs.

>>> ledger.anomalies()                              # doctest: +SKIP
        kind       start  ...  reason
0  cost_spike  2026-09-23  ...  $8.19 is 3.4× the trailing average ($2.41 over 7 earlier weekdays); ...

A *cost spike* is a day whose cost passes ``threshold`` (1.5 = 150%) times the average of the ``window`` days
before it — with ``seasonal=True`` (default) only days of the same kind count (weekdays against weekdays,
weekends against weekends), so a Monday is not an anomaly because the weekend was quiet. With
``freq="hour"``, an hour is compared with the same hour of the ``window`` days before. A spike must also
add at least ``min_cost`` dollars (default: half an average period's spend), so quiet periods raise no
alarm. A *runaway scope* is a cell or ``track`` run whose call count passes ``runaway_factor`` times the
median scope's and at least ``runaway_calls``.

On the PostgreSQL team ledger (``Ledger("postgresql://…")``) the same rows come out: spikes from its
``summary``, scope counts grouped in PostgreSQL, scopes described by the synced ``scopes`` table.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..core.call import from_pusd
from ..core.money import format_total, format_usd
from ..core.times import HOUR_KEY_FORMAT, parse_when
from .summaries import AnalysisError, summary

if TYPE_CHECKING:
    import pandas as pd

    from ..ledger.protocol import LedgerReader

__all__ = ["ANOMALY_COLUMNS", "anomalies"]

ANOMALY_COLUMNS = ("kind", "start", "cost_usd", "baseline_usd", "ratio", "calls", "scope_id", "reason")


def _fmt(value: Decimal) -> str:
    return format_usd(value, places=2)


def _fmt_total(value: Decimal, counts: tuple[int, int]) -> str:
    """A period's or a scope's cost, saying what it leaves out and what it guesses (``$8.19 + 3 unpriced``,
    ``≈$8.19 (2 estimated)``): :func:`~llmcost_nb.core.money.format_total`."""
    unpriced, estimated = counts
    return format_total(value, unpriced=unpriced, estimated=estimated, places=2)


def _spikes(
    ledger: LedgerReader,
    freq: str,
    threshold: float,
    window: int,
    seasonal: bool,
    min_cost: Decimal | None,
    since: Any,
    until: Any,
) -> list[tuple[Any, ...]]:
    by_time = summary(ledger, by=(freq, "model"), since=since, until=until)
    if by_time.empty:
        return []
    per: dict[str, Decimal] = {}
    top: dict[str, tuple[str, Decimal, tuple[int, int]]] = {}
    calls: dict[str, int] = {}
    counts: dict[str, tuple[int, int]] = {}  # per period: (unpriced, estimated) calls, for the reason's words
    for when, model, n, cost, unpriced, estimated in zip(
        by_time[freq], by_time["model"], by_time["requests"], by_time["cost_usd"], by_time["unpriced"],
        by_time["estimated"], strict=True
    ):
        per[when] = per.get(when, Decimal(0)) + cost
        calls[when] = calls.get(when, 0) + int(n)
        was = counts.get(when, (0, 0))
        counts[when] = (was[0] + int(unpriced), was[1] + int(estimated))
        if cost > top.get(when, ("", Decimal(-1)))[1]:
            top[when] = (model or "(unknown)", cost, (int(unpriced), int(estimated)))
    step = timedelta(hours=1) if freq == "hour" else timedelta(days=1)
    parse = (
        (lambda t: datetime.fromisoformat(t.replace("Z", "+00:00")))
        if freq == "hour"
        else (lambda t: datetime.fromisoformat(t).replace(tzinfo=UTC))
    )
    label = (
        (lambda t: t.strftime(HOUR_KEY_FORMAT)) if freq == "hour" else (lambda t: t.strftime("%Y-%m-%d"))
    )
    first, last = parse(min(per)), parse(max(per))
    series: list[tuple[datetime, Decimal]] = []
    t = first
    while t <= last:  # missing periods cost nothing
        series.append((t, per.get(label(t), Decimal(0))))
        t += step
    index = {t: c for t, c in series}
    if min_cost is None:  # default: a spike adds at least half an average period's spend
        min_cost = sum(per.values(), Decimal(0)) / len(series) / 2
    found = []
    for t, cost in series:
        if freq == "hour":
            days = [t - timedelta(days=k) for k in range(1, window + 1)]
            history = [
                index[d]
                for d in days
                if d in index and (not seasonal or (d.weekday() < 5) == (t.weekday() < 5))
            ]
            what = (
                f"the same hour of {len(history)} earlier {'weekdays' if t.weekday() < 5 else 'weekend days'}"
                if seasonal
                else f"the same hour of {len(history)} earlier days"
            )
        else:
            earlier = [
                (d, c)
                for d, c in series
                if d < t and (not seasonal or (d.weekday() < 5) == (t.weekday() < 5))
            ]
            history = [c for _, c in earlier[-window:]]
            kind = "weekdays" if t.weekday() < 5 else "weekend days"
            what = f"{len(history)} earlier {kind}" if seasonal else f"{len(history)} earlier days"
        if len(history) < min(3, window):
            continue
        baseline = sum(history, Decimal(0)) / len(history)
        if cost > baseline * Decimal(str(threshold)) and cost - baseline >= min_cost:
            ratio = float(cost / baseline) if baseline else float("inf")
            model, model_cost, model_counts = top[label(t)]
            times = f"{ratio:.1f}×" if baseline else "infinitely more than"
            reason = (
                f"{_fmt_total(cost, counts[label(t)])} is {times} the trailing average ({_fmt(baseline)} "
                f"over {what}); largest: {model} ({_fmt_total(model_cost, model_counts)})"
            )
            found.append(("cost_spike", label(t), cost, baseline, ratio, calls[label(t)], None, reason))
    return found


def _runaways(
    ledger: LedgerReader, factor: float, min_calls: int, since: str | None, until: str | None
) -> list[tuple[Any, ...]]:
    median, counts = ledger.runaway_scopes(factor, min_calls)
    if median is None:
        return []
    limit = max(min_calls, factor * median)
    found = []
    for scope_id, n, first, last, pusd, info in counts:
        if n < limit or (since and last < since) or (until and first >= until):
            continue
        kind, name, notebook, cell = info or ("scope", None, None, None)
        what = (
            f"cell {cell} of {notebook}"
            if kind == "cell" and notebook
            else f"{kind} {name!r}"
            if name
            else f"{kind} {scope_id[:12]}"
        )
        minutes = (
            datetime.fromisoformat(last[:19]) - datetime.fromisoformat(first[:19])
        ).total_seconds() / 60
        cost = from_pusd(pusd or 0) or Decimal(0)
        own = summary(ledger, by=None, where={"scope_id": scope_id})
        scope_counts = (int(own["unpriced"].sum()), int(own["estimated"].sum()))
        reason = (
            f"{what} made {n:,} calls in {minutes:.0f} min ({_fmt_total(cost, scope_counts)}): "
            f"{n / median:.0f}× the median "
            f"scope ({median:g} call{'s' * (median != 1)}; threshold {limit:g})"
        )
        found.append(("runaway_scope", first[:10], cost, None, n / median, n, scope_id, reason))
    return found


def anomalies(
    ledger: LedgerReader,
    freq: str = "day",
    threshold: float = 1.5,
    window: int = 7,
    *,
    seasonal: bool = True,
    min_cost: Decimal | float | str | None = None,
    runaway_factor: float = 10,
    runaway_calls: int = 100,
    scopes: bool = True,
    since: Any = None,
    until: Any = None,
) -> pd.DataFrame:
    """Cost spikes (``freq`` day or hour) and runaway scopes, one row each with the ``reason`` in words.

    Columns: kind (``cost_spike`` | ``runaway_scope``), start, cost_usd and baseline_usd (exact Decimals),
    ratio, calls, scope_id, reason. ``min_cost``: ignore spikes adding less than this many dollars to their
    baseline (default: half the average day's, or hour's, spend over the range analysed). ``scopes=False``
    skips the runaway check (spikes only).

    >>> ledger.anomalies(threshold=2.0, window=14)        # doctest: +SKIP
    """
    import pandas as pd

    if freq not in ("day", "hour"):
        raise AnalysisError(f"unknown freq {freq!r}, allowed values: day, hour")
    if threshold <= 1 or window < 1:
        raise AnalysisError(
            f"threshold must be > 1 and window >= 1, got threshold={threshold}, window={window}"
        )
    floor = None if min_cost is None else Decimal(str(min_cost))
    rows = _spikes(ledger, freq, threshold, window, seasonal, floor, since, until)
    if scopes:  # from the scope rollup
        rows += _runaways(ledger, runaway_factor, runaway_calls, parse_when(since), parse_when(until))
    frame = pd.DataFrame.from_records(rows, columns=list(ANOMALY_COLUMNS))
    for col in ("cost_usd", "baseline_usd"):
        frame[col] = frame[col].astype(object)
    frame["ratio"] = frame["ratio"].astype("float64")
    frame["calls"] = frame["calls"].astype("int64")
    return frame.sort_values(["start", "kind"], kind="stable").reset_index(drop=True)
