"""Reports built on :func:`llmcost_nb.analysis.summary`: the daily report, chargeback and the forecast.

>>> print(ledger.daily_report("2026-11-20", budget=5))      # doctest: +SKIP
Daily summary (2026-11-20)
==========================
gpt-4.1: 50 requests, $2.45
gpt-4.1-mini: 200 requests, $0.80
Total: $3.25
Alert: 65% of the daily budget ($5.00) used

A model whose calls had no known price says so instead of $0 (``my-ft: 2 requests, 2 unpriced``), and an
amount that counts estimated tokens is marked (``≈$0.0042 (1 estimated)``); the total says both
(``Total: ≈$3.25 (1 estimated) + 2 unpriced``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from html import escape
from typing import TYPE_CHECKING, Any, NamedTuple

from ..core.money import format_total, format_usd, not_counting, parse_usd
from .summaries import AnalysisError, summary

if TYPE_CHECKING:
    import pandas as pd

    from ..ledger.protocol import LedgerReader

__all__ = ["DailyReport", "Forecast", "ModelSpend", "chargeback", "daily_report", "forecast", "usd"]

_PERIODS = ("day", "week", "month")
_Z80 = 1.2816  # two-sided 80% interval of a normal distribution


def usd(value: Decimal | float | None, *, places: int = 2) -> str:
    """Dollars for reports: ``$2.45``, ``$1,234.50``; amounts under a cent keep 4 significant decimals
    (:func:`llmcost_nb.core.money.format_usd` with fixed ``places``)."""
    return format_usd(value, places=places)


def _to_decimal(value: Decimal | float | str | int) -> Decimal:
    rule = "a positive amount of USD"
    try:
        return parse_usd(value, "a budget", rule=rule, invalid=rule, positive=True)
    except ValueError as exc:
        raise AnalysisError(str(exc)) from None


def _day(value: date | datetime | str | None) -> date:
    if value is None:
        return datetime.now(UTC).date()
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise AnalysisError(f"cannot read {value!r} as a date: use YYYY-MM-DD") from None


class ModelSpend(NamedTuple):
    """One model's line of the daily report: ``cost`` is exact over its priced calls; ``unpriced`` billed
    calls had no known price (not in ``cost``); ``estimated`` calls' tokens were counted by llmcost_nb."""

    model: str
    requests: int
    cost: Decimal
    unpriced: int = 0
    estimated: int = 0

    @property
    def shown(self) -> str:
        """The cost as the report shows it: ``$2.45``, ``≈$0.0042 (1 estimated)``, ``2 unpriced``."""
        return format_total(self.cost, unpriced=self.unpriced, estimated=self.estimated, places=2)


@dataclass
class DailyReport:
    """One day's spend per model, its total and the share of a daily budget; ``str()`` gives the text."""

    day: date
    models: list[ModelSpend]  # most expensive first
    total: Decimal  # exact, over the priced calls
    requests: int
    budget: Decimal | None = None
    unpriced: int = 0  # billed calls with no known price: not in ``total``
    estimated: int = 0  # calls whose tokens were estimated: in ``total``, not exact

    @property
    def shown_total(self) -> str:
        """The total as the report shows it: ``≈$3.25 (1 estimated) + 2 unpriced``."""
        return format_total(self.total, unpriced=self.unpriced, estimated=self.estimated, places=2)

    @property
    def budget_used(self) -> Decimal | None:
        """Share of the budget used (``Decimal('0.65')`` for 65%)."""
        return None if self.budget is None else self.total / self.budget

    def __str__(self) -> str:
        title = f"Daily summary ({self.day.isoformat()})"
        lines = [title, "=" * len(title)]
        lines += [f"{m.model}: {m.requests:,} request{'s' * (m.requests != 1)}, {m.shown}"
                  for m in self.models]
        if not self.models:
            lines.append("no calls")
        lines.append(f"Total: {self.shown_total}")
        if self.budget is not None:
            share = self.budget_used or Decimal(0)
            pct = f"{share * 100:.0f}% of the daily budget ({usd(self.budget)}) used"
            if self.unpriced:
                pct += f", {not_counting(self.unpriced)}"
            lines.append(
                ("Over budget: " if share > 1 else "Alert: " if share >= Decimal("0.5") else "") + pct
            )
        return "\n".join(lines)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{escape(m.model)}</td><td style='text-align:right'>{m.requests:,}</td>"
            f"<td style='text-align:right'>{escape(m.shown)}</td></tr>"
            for m in self.models
        )
        foot = (
            f"<tr><th>Total</th><th style='text-align:right'>{self.requests:,}</th>"
            f"<th style='text-align:right'>{escape(self.shown_total)}</th></tr>"
        )
        budget = "" if self.budget is None else f"<p>{escape(str(self).splitlines()[-1])}</p>"
        return (
            f"<div class='mathjax_ignore tex2jax_ignore'>"
            f"<strong>Daily summary ({self.day.isoformat()})</strong>"
            f"<table><tr><th>model</th><th>requests</th><th>cost</th></tr>{rows}{foot}</table>{budget}</div>"
        )


def daily_report(
    ledger: LedgerReader, day: date | str | None = None, budget: Decimal | float | str | None = None
) -> DailyReport:
    """The report for ``day`` (default today, UTC): per model ``gpt-4.1: 50 requests, $2.45``, the total and,
    with a ``budget`` (USD; default: the ledger's daily budget if one is set), the share of it used (of
    the priced calls' total). Unpriced and estimated calls are marked, never shown as exact or as $0."""
    day = _day(day)
    frame = summary(ledger, by="model", since=day, until=day + timedelta(days=1))
    columns = (frame["model"], frame["requests"], frame["cost_usd"], frame["unpriced"], frame["estimated"])
    models = sorted(
        (ModelSpend(m or "(unknown)", int(n), c, int(u), int(e))
         for m, n, c, u, e in zip(*columns, strict=True)),
        key=lambda row: (-row.cost, -row.unpriced, row.model),
    )
    total = sum((m.cost for m in models), Decimal(0))
    budget_value = _to_decimal(budget) if budget is not None else ledger.stored_budget("day")
    return DailyReport(day, models, total, int(frame["requests"].sum()), budget_value,
                       sum(m.unpriced for m in models), sum(m.estimated for m in models))


def chargeback(
    ledger: LedgerReader,
    by: str = "tag:team",
    period: str | None = "month",
    since: Any = None,
    until: Any = None,
) -> pd.DataFrame:
    """Showback per cost center (a tag, ``user``, ``model`` or ``provider``) and ``period`` (day, week, month,
    or ``None`` for the whole range): requests, tokens, exact cost (of the priced calls), ``unpriced`` and
    ``estimated`` calls, and ``share`` of the period's total. Calls without the tag are shown as
    ``(untagged)``.

    >>> chargeback(ledger, by="tag:team", period="month")     # doctest: +SKIP
    """
    if period is not None and period not in _PERIODS:
        raise AnalysisError(f"unknown period {period!r}, allowed values: {', '.join(_PERIODS)} or None")
    dims = [period] if period else []
    frame = summary(ledger, by=[*dims, by], since=since, until=until)
    center = frame.columns[len(dims)]
    frame[center] = frame[center].fillna("(untagged)")
    keep = [*dims, center, "requests", "input_tokens", "output_tokens", "cost_usd", "unpriced", "estimated"]
    frame = frame[keep].copy()
    if period:
        totals = frame.groupby(period)["cost_usd"].transform(lambda s: sum(s, Decimal(0)))
    else:
        totals = [sum(frame["cost_usd"], Decimal(0))] * len(frame)
    frame["share"] = [float(c / t) if t else 0.0 for c, t in zip(frame["cost_usd"], totals, strict=True)]
    frame = frame.sort_values([*dims, "cost_usd"], ascending=[*([True] * len(dims)), False], kind="stable")
    return frame.reset_index(drop=True)


@dataclass
class Forecast:
    """A period's projected spend: what was spent by ``as_of`` plus the recent daily run-rate for the rest,
    with
    an 80% interval from the day-to-day spread (``low``..``high``)."""

    period_start: date
    period_end: date  # exclusive
    as_of: datetime
    spent: Decimal
    run_rate: Decimal  # USD per day over the lookback
    projected: Decimal
    low: Decimal
    high: Decimal
    lookback_days: int
    budget: Decimal | None = None
    daily: list[tuple[date, Decimal]] = field(default_factory=list)  # spend per day of the period so far
    daily_sigma: float = 0.0  # standard deviation of the daily spend over the lookback (USD)

    @property
    def budget_share(self) -> float | None:
        return None if not self.budget else float(self.projected / self.budget)

    def __str__(self) -> str:
        text = (
            f"{self.period_start:%B %Y}: {usd(self.spent)} spent by {self.as_of:%Y-%m-%d %H:%M} UTC; "
            f"projected {usd(self.projected)} ({usd(self.low)}–{usd(self.high)}, 80%) "
            f"at {usd(self.run_rate)}/day"
        )
        if self.budget:
            text += f"; {self.budget_share:.0%} of the {usd(self.budget)} budget"
        return text

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))

    def frame(self) -> pd.DataFrame:
        """Per day of the period: actual cumulative spend (days so far), then the projection with its
        interval."""
        import pandas as pd

        rows, cumulative = [], Decimal(0)
        for day, cost in self.daily:
            cumulative += cost
            rows.append((day, float(cumulative), None, None, None))
        elapsed = (self.as_of - datetime.combine(self.period_start, time(), UTC)).total_seconds() / 86400
        for k in range(max(0, len(self.daily) - 1), (self.period_end - self.period_start).days):
            ahead = max(0.0, k + 1 - elapsed)  # days from as_of to the end of day k
            mid = float(self.spent) + float(self.run_rate) * ahead
            spread = self.daily_sigma * math.sqrt(ahead) * _Z80
            rows.append(
                (
                    self.period_start + timedelta(days=k),
                    None,
                    mid,
                    max(float(self.spent), mid - spread),
                    mid + spread,
                )
            )
        frame = pd.DataFrame(rows, columns=["day", "actual", "forecast", "low", "high"])
        frame["day"] = pd.to_datetime(frame["day"])
        return frame


def _period(as_of: datetime, period: str) -> tuple[date, date]:
    day = as_of.date()
    if period == "month":
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
    elif period == "week":
        start = day - timedelta(days=day.weekday())
        end = start + timedelta(days=7)
    else:
        raise AnalysisError(f"unknown period {period!r}, allowed values: month, week")
    return start, end


def forecast(
    ledger: LedgerReader,
    period: str = "month",
    as_of: date | datetime | str | None = None,
    lookback_days: int = 14,
    budget: Decimal | float | str | None = None,
    where: Any = None,
) -> Forecast:
    """Project this ``period``'s (month or week) spend: spent by ``as_of`` (default now; a date means the end
    of that day) plus the mean daily spend of the ``lookback_days`` whole days before it, times the days left.
    ``where`` filters the calls as in :func:`~llmcost_nb.analysis.summary`.

    >>> forecast(ledger, as_of="2026-11-20", budget=1000).projected     # doctest: +SKIP
    """
    if isinstance(as_of, str) and len(as_of) == 10:
        as_of = date.fromisoformat(as_of)
    if as_of is None:
        moment = datetime.now(UTC)
    elif isinstance(as_of, datetime):
        moment = as_of.astimezone(UTC) if as_of.tzinfo else as_of.replace(tzinfo=UTC)
    elif isinstance(as_of, date):
        moment = datetime.combine(as_of + timedelta(days=1), time(), UTC)
    else:
        moment = datetime.fromisoformat(str(as_of).replace("Z", "+00:00"))
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if lookback_days < 2:
        raise AnalysisError(f"lookback_days must be at least 2, got {lookback_days}")
    # the day as_of falls in (a date's end belongs to that date); the lookback takes whole days only
    today = moment.date() if moment.time() != time() else moment.date() - timedelta(days=1)
    last_whole = moment.date() - timedelta(days=1)
    start, end = _period(datetime.combine(today, time(), UTC), period)
    first = last_whole - timedelta(days=lookback_days - 1)
    # as_of "now": no upper bound, so the query stays on the daily rollups
    frame = summary(
        ledger, by="day", since=min(first, start), until=None if as_of is None else moment, where=where
    )
    per_day = {date.fromisoformat(d): c for d, c in zip(frame["day"], frame["cost_usd"], strict=True)}
    window = [per_day.get(first + timedelta(days=i), Decimal(0)) for i in range(lookback_days)]
    run_rate = sum(window, Decimal(0)) / lookback_days
    spent = sum((c for d, c in per_day.items() if d >= start), Decimal(0))
    remaining = Decimal(str((datetime.combine(end, time(), UTC) - moment).total_seconds())) / 86400
    projected = (spent + run_rate * remaining).quantize(Decimal("1e-12"))
    mean = float(run_rate)
    sigma = math.sqrt(sum((float(c) - mean) ** 2 for c in window) / (lookback_days - 1))
    spread = Decimal(str(round(_Z80 * sigma * math.sqrt(float(remaining)), 12)))
    daily = [
        (start + timedelta(days=i), per_day.get(start + timedelta(days=i), Decimal(0)))
        for i in range((today - start).days + 1)
    ]
    budget_value = _to_decimal(budget) if budget is not None else ledger.stored_budget("month")
    result = Forecast(
        start,
        end,
        moment,
        spent,
        run_rate,
        projected,
        max(spent, projected - spread),
        projected + spread,
        lookback_days,
        budget_value,
        daily,
        sigma,
    )
    return result
