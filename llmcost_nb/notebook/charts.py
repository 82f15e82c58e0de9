"""Altair charts of a ledger, each built from a small aggregated frame (never raw rows: no MaxRowsError).

>>> from llmcost_nb.notebook import charts
>>> charts.spend_over_time(ledger, by="model")          # doctest: +SKIP
>>> charts.show(charts.cost_by_tag(ledger, "team"))     # SVG everywhere, interactive where possible

Every function takes a :class:`~llmcost_nb.Ledger` and the usual filters (``since``, ``until``, ``where``) and
returns an ``alt.Chart`` (or layer) for you to compose or display. The ``llmcost`` theme is registered on
first use, and enabled if no other theme was chosen. Dollar axes and tooltips are formatted as currency.
Costs are those of the priced calls: tooltips give the ``unpriced calls`` (billed, no known price: not in
the cost) and ``estimated calls`` (tokens counted by llmcost_nb) of each bar, and a bar's label says them as
every view does (``≈$0.004200 (1 estimated)``, ``2 unpriced``), never $0 for calls of unknown price.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ..core.money import format_total
from .display import show

if TYPE_CHECKING:
    import altair as alt
    import pandas as pd

    from ..analysis.reports import Forecast
    from ..ledger.sqlite import Ledger

__all__ = [
    "cost_by_tag",
    "cumulative_spend",
    "latency_distribution",
    "register_theme",
    "show",
    "spend_over_time",
    "token_mix",
]

USD_AXIS = "$,.2f"
USD_TIP = "$,.4f"


def usd_formats(largest: float) -> tuple[str, str]:
    """d3 formats (axis and labels, tooltips) for dollar amounts up to ``largest``: cents for dollars, more
    decimals for fractions of a cent (a notebook's calls cost $0.0002, which "$,.2f" shows as $0.00).

    >>> usd_formats(1234.5), usd_formats(0.000166)
    (('$,.2f', '$,.4f'), ('$,.5f', '$,.7f'))
    """
    if not largest or largest >= 1 or largest != largest:  # 0, dollars, NaN
        return USD_AXIS, USD_TIP
    decimals = max(2, math.ceil(-math.log10(largest)) + 1)
    return f"$,.{decimals}f", f"$,.{decimals + 2}f"
_PALETTE = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#eeca3b", "#9d755d", "#bab0ac"]


def register_theme() -> None:
    """Register the ``llmcost`` Altair theme; enable it unless the user enabled another one."""
    import altair as alt

    if "llmcost" not in alt.theme.names():

        def llmcost_theme() -> alt.theme.ThemeConfig:
            return {
                "config": {
                    "view": {"continuousWidth": 560, "continuousHeight": 260, "stroke": None},
                    "font": "Inter, Helvetica, Arial, sans-serif",
                    "title": {"fontSize": 14, "anchor": "start", "fontWeight": 600},
                    "axis": {
                        "labelFontSize": 11,
                        "titleFontSize": 12,
                        "gridColor": "#eeeeee",
                        "domainColor": "#888",
                    },
                    "legend": {
                        "labelFontSize": 11,
                        "titleFontSize": 12,
                        "orient": "right",
                        "labelLimit": 280,
                    },
                    "range": {"category": _PALETTE},
                    "background": "white",
                    # room on the right: a viewer whose fallback font is wider than vl-convert's would
                    # otherwise cut the legend's longest labels at the picture's edge
                    "padding": {"left": 5, "top": 5, "right": 40, "bottom": 5},
                }
            }

        alt.theme.register("llmcost", enable=False)(llmcost_theme)
    if alt.theme.active == "default":
        alt.theme.enable("llmcost")


def _top(frame: pd.DataFrame, dim: str, top: int) -> pd.DataFrame:
    """Keep the ``top`` most expensive values of ``dim``; the rest become ``other``."""
    frame = frame.copy()
    frame[dim] = frame[dim].fillna("(none)").astype(str)
    totals = frame.groupby(dim)["cost"].sum().sort_values(ascending=False)
    keep = set(totals.index[:top])
    if len(totals) > top:
        frame[dim] = frame[dim].where(frame[dim].isin(keep), "other")
    return frame


_HONEST = ("unpriced", "estimated")  # a summary's counts of calls whose cost is unknown / estimated


def _with_cost(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["cost"] = [float(c) for c in frame["cost_usd"]]
    counts = zip(frame["cost_usd"], frame["unpriced"], frame["estimated"], strict=True)
    frame["shown"] = [format_total(c, unpriced=u, estimated=e) for c, u, e in counts]
    return frame.drop(columns=["cost_usd"])


def _honest_tips(aggregate: bool = False) -> list[alt.Tooltip]:
    """Tooltips for the unpriced and estimated calls behind a bar."""
    import altair as alt

    return [alt.Tooltip(f"sum({c}):Q" if aggregate else f"{c}:Q", title=f"{c} calls", format=",")
            for c in _HONEST]


def spend_over_time(
    ledger: Ledger,
    by: str = "model",
    freq: str = "day",
    top: int = 8,
    *,
    since: Any = None,
    until: Any = None,
    where: Any = None,
    frame: pd.DataFrame | None = None,
) -> alt.Chart:
    """Spend per day (or week, month, hour) stacked by ``by`` (model, provider, status, user, ``tag:<key>``);
    only the ``top`` most expensive values get their own color.

    >>> spend_over_time(ledger, by="tag:team", freq="week")     # doctest: +SKIP
    """
    import altair as alt

    register_theme()
    if frame is None:
        frame = ledger.summary(by=(freq, by), since=since, until=until, where=where)
    frame = _with_cost(frame)
    dim = frame.columns[1]
    frame = _top(frame, dim, top)
    frame = frame.groupby([freq, dim], as_index=False)[["cost", "requests", *_HONEST]].sum()
    rank = {
        value: i
        for i, value in enumerate(frame.groupby(dim)["cost"].sum().sort_values(ascending=False).index)
    }
    frame["rank"] = frame[dim].map(rank)  # the same stacking order in every bar: most expensive at the bottom
    usd_axis, usd_tip = usd_formats(float(frame.groupby(freq)["cost"].sum().max()) if len(frame) else 0.0)
    if freq in ("week", "month"):  # few, wide bars: an ordinal axis labeled by the period
        x = alt.X(f"{freq}:O", title=None, axis=alt.Axis(labelAngle=-40 if freq == "week" else 0))
        when = alt.Tooltip(f"{freq}:O", title=freq)
    else:
        time_type = "utcyearmonthdatehours" if freq == "hour" else "utcyearmonthdate"
        x = alt.X(f"{time_type}({freq}):T", title=None)
        when = alt.Tooltip(f"{time_type}({freq}):T", title=freq)
    return (
        alt.Chart(frame, title=f"Spend per {freq} by {dim}", width=560)
        .mark_bar()
        .encode(
            x=x,
            y=alt.Y("sum(cost):Q", title="cost (USD)", axis=alt.Axis(format=usd_axis)),
            color=alt.Color(f"{dim}:N", title=dim, sort=list(rank)),
            order=alt.Order("rank:Q", sort="ascending"),
            tooltip=[
                when,
                alt.Tooltip(f"{dim}:N"),
                alt.Tooltip("sum(cost):Q", title="cost", format=usd_tip),
                alt.Tooltip("sum(requests):Q", title="requests", format=","),
                *_honest_tips(aggregate=True),
            ],
        )
    )


def cumulative_spend(
    ledger: Ledger,
    period: str = "month",
    as_of: Any = None,
    budget: Any = None,
    *,
    forecast: Forecast | None = None,
    anomalies: pd.DataFrame | None = None,
) -> alt.LayerChart:
    """Cumulative spend this month (or week) against the budget: actual line, forecast with its 80% band,
    the budget as a rule and anomalous days as red points (tooltip: the reason).

    >>> cumulative_spend(ledger, as_of="2026-11-20", budget=1000)     # doctest: +SKIP
    """
    import altair as alt
    import pandas as pd

    register_theme()
    fc = forecast or ledger.forecast(period, as_of, budget=budget)
    frame = fc.frame()
    title = (
        f"Cumulative spend, {fc.period_start:%B %Y}" if period == "month" else "Cumulative spend this week"
    )
    base = alt.Chart(frame, title=title).encode(x=alt.X("utcyearmonthdate(day):T", title=None))
    peak = [float(v) for v in frame[["high", "actual", "forecast"]].max() if v == v]  # NaN: no data yet
    peak.append(float(fc.budget or 0))
    usd_axis, usd_tip = usd_formats(max(peak))
    usd_y = alt.Axis(format=usd_axis)
    band = base.mark_area(opacity=0.18, color="#f58518").encode(
        y=alt.Y("low:Q", title="cumulative cost (USD)", axis=usd_y),
        y2="high:Q",
        tooltip=[
            alt.Tooltip("utcyearmonthdate(day):T", title="day"),
            alt.Tooltip("low:Q", format=usd_tip),
            alt.Tooltip("high:Q", format=usd_tip),
        ],
    )
    projected = base.mark_line(strokeDash=[5, 4], color="#f58518").encode(
        y="forecast:Q", tooltip=[alt.Tooltip("forecast:Q", title="projected", format=usd_tip)]
    )
    actual = base.mark_line(point=True, color="#4c78a8").encode(
        y="actual:Q",
        tooltip=[
            alt.Tooltip("utcyearmonthdate(day):T", title="day"),
            alt.Tooltip("actual:Q", title="spent", format=usd_tip),
        ],
    )
    layers = [band, projected, actual]
    if fc.budget is not None:
        rule = pd.DataFrame({"budget": [float(fc.budget)], "label": [f"budget ${float(fc.budget):,.2f}"]})
        layers.append(
            alt.Chart(rule)
            .mark_rule(color="#e45756", strokeDash=[2, 2])
            .encode(y="budget:Q", tooltip=[alt.Tooltip("budget:Q", format=usd_tip)])
        )
    found = (
        anomalies
        if anomalies is not None
        else ledger.anomalies(  # with four weeks of history before
            since=fc.period_start - timedelta(days=28), until=fc.period_end, scopes=False
        )
    )
    spikes = found[found["kind"] == "cost_spike"] if len(found) else found
    if len(spikes):
        known = frame.dropna(subset=["actual"])
        actual_by_day = dict(zip(known["day"].dt.strftime("%Y-%m-%d"), known["actual"], strict=True))
        starts = [s[:10] for s in spikes["start"]]
        marks = pd.DataFrame(
            {
                "day": pd.to_datetime(starts),
                "actual": [actual_by_day.get(d) for d in starts],
                "reason": list(spikes["reason"]),
            }
        ).dropna(subset=["actual"])
        layers.append(
            alt.Chart(marks)
            .mark_point(color="#e45756", size=140, filled=True, shape="diamond")
            .encode(
                x="utcyearmonthdate(day):T", y="actual:Q", tooltip=[alt.Tooltip("reason:N", title="anomaly")]
            )
        )
    return alt.layer(*layers)


def cost_by_tag(
    ledger: Ledger,
    key: str = "team",
    *,
    since: Any = None,
    until: Any = None,
    where: Any = None,
    top: int = 15,
    frame: pd.DataFrame | None = None,
) -> alt.Chart:
    """Total cost per value of a tag (``team``, ``user``, ... or ``tag:team``), largest first, with share.

    >>> cost_by_tag(ledger, "project")     # doctest: +SKIP
    """
    import altair as alt

    register_theme()
    dim = key if key.startswith("tag:") or key in ("model", "provider", "status", "user") else f"tag:{key}"
    if frame is None:
        frame = ledger.summary(by=dim, since=since, until=until, where=where)
    frame = _with_cost(frame)
    col = frame.columns[0]
    frame[col] = frame[col].fillna("(untagged)").astype(str)
    total = frame["cost"].sum() or 1.0
    frame["share"] = frame["cost"] / total
    frame = frame.sort_values("cost", ascending=False).head(top)
    usd_axis, usd_tip = usd_formats(float(frame["cost"].max()) if len(frame) else 0.0)
    bars = (
        alt.Chart(frame, title=f"Cost by {col}")
        .mark_bar(color=_PALETTE[0])
        .encode(
            y=alt.Y(f"{col}:N", sort="-x", title=None),
            x=alt.X("cost:Q", title="cost (USD)", axis=alt.Axis(format=usd_axis)),
            tooltip=[
                alt.Tooltip(f"{col}:N"),
                alt.Tooltip("cost:Q", format=usd_tip),
                alt.Tooltip("share:Q", format=".1%"),
                alt.Tooltip("requests:Q", format=","),
                *_honest_tips(),
            ],
        )
    )
    labels = bars.mark_text(align="left", dx=4, fontSize=11, color="#333").encode(text="shown:N")
    return alt.layer(bars, labels)


def token_mix(
    ledger: Ledger,
    by: str = "model",
    *,
    since: Any = None,
    until: Any = None,
    where: Any = None,
    frame: pd.DataFrame | None = None,
) -> alt.Chart:
    """Tokens per ``by`` split into uncached input, cached input, cache writes, output and reasoning.

    >>> token_mix(ledger, by="provider")     # doctest: +SKIP
    """
    import altair as alt
    import pandas as pd

    register_theme()
    if frame is None:
        frame = ledger.summary(by=by, since=since, until=until, where=where)
    col = frame.columns[0]
    parts = {
        "input (uncached)": frame["input_tokens"] - frame["cache_read_tokens"] - frame["cache_write_tokens"],
        "input (cached)": frame["cache_read_tokens"],
        "cache write": frame["cache_write_tokens"],
        "output": frame["output_tokens"] - frame["reasoning_tokens"],
        "reasoning": frame["reasoning_tokens"],
    }
    long = pd.concat(
        [
            pd.DataFrame(
                {col: frame[col].fillna("(none)").astype(str), "kind": kind, "tokens": values.clip(lower=0)}
            )
            for kind, values in parts.items()
        ]
    )
    order = {kind: i for i, kind in enumerate(parts)}
    long["order"] = long["kind"].map(order)
    return (
        alt.Chart(long, title=f"Token mix by {col}")
        .mark_bar()
        .encode(
            y=alt.Y(f"{col}:N", sort="-x", title=None),
            x=alt.X("sum(tokens):Q", title="tokens", axis=alt.Axis(format="~s")),
            color=alt.Color(
                "kind:N",
                title=None,
                sort=list(parts),
                scale=alt.Scale(
                    domain=list(parts), range=["#4c78a8", "#9ecae9", "#72b7b2", "#f58518", "#e45756"]
                ),
            ),
            order=alt.Order("order:Q"),
            tooltip=[
                alt.Tooltip(f"{col}:N"),
                alt.Tooltip("kind:N"),
                alt.Tooltip("sum(tokens):Q", format=","),
            ],
        )
    )


def latency_distribution(
    ledger: Ledger,
    by: str = "model",
    top: int = 6,
    *,
    since: Any = None,
    until: Any = None,
    where: Any = None,
) -> alt.Chart:
    """Latency histogram per ``by`` (log-spaced buckets a factor √2 wide, from the rollups): share of calls
    per bucket, one line per group.

    >>> latency_distribution(ledger, by="provider")     # doctest: +SKIP
    """
    import altair as alt

    from ..analysis.summaries import latency_histogram

    register_theme()
    frame = latency_histogram(ledger, by=by, since=since, until=until, where=where)
    col = frame.columns[0]
    frame[col] = frame[col].fillna("(none)").astype(str)
    busiest = frame.groupby(col)["calls"].sum().sort_values(ascending=False).index[:top]
    frame = frame[frame[col].isin(busiest)].copy()
    frame["share"] = frame["calls"] / frame.groupby(col)["calls"].transform("sum")
    frame["mid_s"] = [
        ((lo * hi) ** 0.5 if hi != float("inf") else lo * 1.2) / 1000 if lo else hi / 2000
        for lo, hi in zip(frame["low_ms"], frame["high_ms"], strict=True)
    ]
    frame["high_ms"] = frame["high_ms"].replace(float("inf"), None)
    return (
        alt.Chart(frame, title=f"Latency distribution by {col}")
        .mark_line(point=True, interpolate="monotone")
        .encode(
            x=alt.X("mid_s:Q", title="latency (s, log scale)", scale=alt.Scale(type="log")),
            y=alt.Y("share:Q", title="share of calls", axis=alt.Axis(format=".0%")),
            color=alt.Color(f"{col}:N", title=col),
            tooltip=[
                alt.Tooltip(f"{col}:N"),
                alt.Tooltip("low_ms:Q", title="from ms", format=",.0f"),
                alt.Tooltip("high_ms:Q", title="to ms", format=",.0f"),
                alt.Tooltip("calls:Q", format=","),
                alt.Tooltip("share:Q", format=".1%"),
            ],
        )
    )
