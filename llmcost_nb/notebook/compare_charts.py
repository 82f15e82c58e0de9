"""Charts of a :class:`~llmcost_nb.experiments.result.CompareResult`, in the dashboard's ``llmcost`` theme,
each built from a small per-cell (or per input × cell) frame. Display with :func:`llmcost_nb.charts.show`
for an SVG that every viewer shows. The cells an adaptive comparison stopped are drawn grey (their figures
cover fewer inputs); :func:`race` shows when each was stopped.

>>> from llmcost_nb.charts import show
>>> show(cost_quality(result))        # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.money import format_total
from .charts import register_theme, usd_formats

if TYPE_CHECKING:
    import altair as alt
    import pandas as pd

    from ..experiments.result import CompareResult

__all__ = ["cost_per_success", "cost_quality", "latency", "pareto_front", "race", "wins"]

_USD_SMALL = "$,.6f"  # experiment costs are often fractions of a cent
STOPPED_GREY = "#b8b8b8"  # a cell a race stopped
_QUALITY = {"mean_score": ("score", "mean score"), "success_rate": ("success", "success rate")}
_HONEST = ("unpriced", "estimated")  # per cell: calls of unknown price (not in the costs), estimated calls


def _label(frame: pd.DataFrame) -> list[str]:
    return [f"{v} · {m}" for v, m in zip(frame["variant"], frame["model"], strict=True)]


def _stopped(result: CompareResult, frame: pd.DataFrame) -> list[bool]:
    stops = result.race.stops if result.race is not None else {}
    return [(v, m) in stops for v, m in zip(frame["variant"], frame["model"], strict=True)]


def _model_color(title: str = "model") -> alt.Color | alt.ValueChannelMixin:
    """The model's color, grey for a cell a race stopped (a ``live`` field in the chart's data)."""
    import altair as alt

    return alt.condition(alt.datum.live, alt.Color("model:N", title=title), alt.value(STOPPED_GREY))


def _honest_tips() -> list[alt.Tooltip]:
    """Tooltips for a cell's unpriced and estimated calls (the table's counts)."""
    import altair as alt

    return [alt.Tooltip(f"{c}:Q", title=f"{c} calls", format=",") for c in _HONEST]


def pareto_front(cost: list[float], quality: list[float]) -> list[bool]:
    """Which points no other point beats: none is at most as costly and strictly better, or cheaper and as
    good.

    >>> pareto_front([1, 2, 3, 2], [0.5, 0.9, 0.9, 0.4])
    [True, True, False, False]
    """
    return [
        not any((c2 <= c and q2 > q) or (c2 < c and q2 >= q) for c2, q2 in zip(cost, quality, strict=True))
        for c, q in zip(cost, quality, strict=True)
    ]


def cost_quality(
    result: CompareResult,
    quality: str = "mean_score",
    *,
    level: float = 0.95,
    n_resamples: int = 2000,
    seed: int | None = 0,
) -> alt.LayerChart:
    """Mean cost per call (x, log scale) against quality (y) per cell, bootstrap CIs as error bars on
    both axes, and the Pareto frontier (cells no other cell beats on both) as a line."""
    import altair as alt

    if quality not in _QUALITY:
        raise ValueError(f"unknown quality {quality!r}, allowed values: {', '.join(_QUALITY)}")
    register_theme()
    metric, title = _QUALITY[quality]
    cost_ci = result.ci("cost", level=level, n_resamples=n_resamples, seed=seed)
    quality_ci = result.ci(metric, level=level, n_resamples=n_resamples, seed=seed)
    frame = cost_ci[["variant", "model"]].copy()
    frame["cell"] = _label(frame)
    frame["cost"], frame["cost_low"], frame["cost_high"] = cost_ci["mean"], cost_ci["low"], cost_ci["high"]
    frame["quality"], frame["q_low"], frame["q_high"] = (
        quality_ci["mean"],
        quality_ci["low"],
        quality_ci["high"],
    )
    frame["live"] = [not s for s in _stopped(result, frame)]
    frame = frame.merge(result.table[["variant", "model", *_HONEST]], on=["variant", "model"], how="left")
    frame = frame.dropna(subset=["cost", "quality"])
    frame["pareto"] = pareto_front(list(frame["cost"]), list(frame["quality"]))
    grey = ", grey: stopped by the race" if not frame["live"].all() else ""
    base = alt.Chart(frame, title=f"Cost vs {title} ({level:.0%} bootstrap CIs; line: Pareto frontier{grey})")
    x = alt.X(
        "cost:Q",
        title="mean cost per call (USD, log)",
        scale=alt.Scale(type="log", zero=False),
        axis=alt.Axis(format=usd_formats(float(frame["cost_high"].max()) if len(frame) else 0.0)[0]),
    )
    tooltip = [
        alt.Tooltip("cell:N"),
        alt.Tooltip("cost:Q", title="mean cost", format=_USD_SMALL),
        alt.Tooltip("quality:Q", title=title, format=".3f"),
        alt.Tooltip("q_low:Q", title="CI low", format=".3f"),
        alt.Tooltip("q_high:Q", title="CI high", format=".3f"),
        *_honest_tips(),
    ]
    points = base.mark_point(filled=True, size=120).encode(
        x=x,
        y=alt.Y("quality:Q", title=title, scale=alt.Scale(zero=False, padding=12)),
        color=_model_color(),
        shape=alt.Shape("variant:N", title="variant"),
        tooltip=tooltip,
    )
    y_bars = base.mark_rule(strokeWidth=1.5).encode(x=x, y="q_low:Q", y2="q_high:Q", color=_model_color())
    x_bars = base.mark_rule(strokeWidth=1.5).encode(
        x=alt.X("cost_low:Q", scale=alt.Scale(type="log")), x2="cost_high:Q", y="quality:Q",
        color=_model_color()
    )
    front = (
        base.transform_filter(alt.datum.pareto)
        .mark_line(color="#555", strokeDash=[4, 3])
        .encode(x=x, y="quality:Q", order="cost:Q")
    )
    labels = base.mark_text(align="left", dx=8, dy=-8, fontSize=10, color="#333").encode(
        x=x, y="quality:Q", text="cell:N"
    )
    return alt.layer(front, y_bars, x_bars, points, labels)


def cost_per_success(result: CompareResult) -> alt.LayerChart:
    """Cost per success per cell (failed calls' cost included), cheapest first; cells with no success are
    listed with a note instead of a bar."""
    import altair as alt

    register_theme()
    table = result.table.copy()
    table["cell"] = _label(table)
    table["value"] = [float(v) if v is not None else None for v in table["cost_per_success"]]
    table["label"] = [
        format_total(v, unpriced=u, estimated=e) if v is not None else "no success"
        for v, u, e in zip(table["cost_per_success"], table["unpriced"], table["estimated"], strict=True)
    ]
    table["plot"] = table["value"].fillna(0.0)  # a cell with no success: no bar, its note at 0
    table["success_rate"] = table["success_rate"].astype(float)
    table["live"] = [not s for s in _stopped(result, table)]
    table["label"] = [
        label if live else f"{label} (stopped after {n})"
        for label, live, n in zip(table["label"], table["live"], table["n"], strict=True)
    ]
    table = table[["cell", "model", "value", "plot", "label", "success_rate", "n", "live", *_HONEST]]
    grey = "; grey: stopped by the race, figures so far" if not table["live"].all() else ""
    bars = (
        alt.Chart(table, title=f"Cost per success (failures' cost included{grey})")
        .mark_bar()
        .encode(
            y=alt.Y("cell:N", sort=alt.EncodingSortField("plot", order="ascending"), title=None),
            x=alt.X("plot:Q", title="cost per success (USD)",
                    axis=alt.Axis(format=usd_formats(float(table["plot"].max()) if len(table) else 0.0)[0])),
            color=_model_color(),
            tooltip=[
                alt.Tooltip("cell:N"),
                alt.Tooltip("value:Q", title="cost per success", format=_USD_SMALL),
                alt.Tooltip("success_rate:Q", title="success rate", format=".0%"),
                alt.Tooltip("n:Q"),
                *_honest_tips(),
            ],
        )
    )
    text = bars.mark_text(align="left", dx=4, fontSize=10, color="#333").encode(text="label:N")
    return alt.layer(bars, text)


def latency(result: CompareResult) -> alt.LayerChart:
    """Latency distribution per cell (successful calls): 5–95% whisker, 25–75% box, median tick."""
    import altair as alt
    import numpy as np
    import pandas as pd

    register_theme()
    rows = result.rows[result.rows["status"] == "ok"]
    stops = result.race.stops if result.race is not None else {}
    out = []
    for (variant, model), group in rows.groupby(["variant", "model"], sort=False):
        values = group["latency_ms"].dropna().to_numpy()
        if values.size:
            p5, p25, p50, p75, p95 = np.percentile(values, [5, 25, 50, 75, 95])
            out.append(
                {
                    "cell": f"{variant} · {model}",
                    "model": model,
                    "live": (variant, model) not in stops,
                    "p5": p5,
                    "p25": p25,
                    "p50": p50,
                    "p75": p75,
                    "p95": p95,
                    "n": int(values.size),
                }
            )
    frame = pd.DataFrame(out, columns=["cell", "model", "live", "p5", "p25", "p50", "p75", "p95", "n"])
    grey = "; grey: stopped by the race" if not frame["live"].all() else ""
    base = alt.Chart(frame, title=f"Latency per cell (ms): 5–95% whiskers, 25–75% box, median{grey}")
    y = alt.Y("cell:N", title=None, sort=None)
    tooltip = [
        alt.Tooltip("cell:N"),
        *(alt.Tooltip(f"{p}:Q", format=",.0f") for p in ("p5", "p25", "p50", "p75", "p95")),
        alt.Tooltip("n:Q"),
    ]
    whisker = base.mark_rule(color="#888").encode(
        y=y, x=alt.X("p5:Q", title="latency (ms)"), x2="p95:Q", tooltip=tooltip
    )
    box = base.mark_bar(size=14).encode(y=y, x="p25:Q", x2="p75:Q", color=_model_color(), tooltip=tooltip)
    median = base.mark_tick(color="black", thickness=2, size=16).encode(y=y, x="p50:Q", tooltip=tooltip)
    return alt.layer(whisker, box, median)


def wins(result: CompareResult, metric: str = "score", max_inputs: int = 60) -> alt.LayerChart:
    """Per input × cell: the mean score (color), ★ where a cell has the input's best score (and not every
    cell ties). The first ``max_inputs`` inputs."""
    import altair as alt

    if metric not in ("score", "success"):
        raise ValueError(f"unknown metric {metric!r}, allowed values: score, success")
    register_theme()
    rows = result.rows.assign(cell=_label(result.rows), value=result.rows[metric].astype(float))
    inputs = list(dict.fromkeys(rows["input_id"]))[:max_inputs]
    rows = rows[rows["input_id"].isin(inputs)]
    frame = rows.groupby(["input_id", "cell"], sort=False, as_index=False).agg(
        value=("value", "mean"), cost=("cost", lambda c: float(sum(c)))
    )
    best = frame.groupby("input_id")["value"].transform("max")
    worst = frame.groupby("input_id")["value"].transform("min")
    frame["win"] = [
        "★" if v == b and b != w else "" for v, b, w in zip(frame["value"], best, worst, strict=True)
    ]
    title = f"Per-input {metric} (★ best for that input)" + (
        f", first {max_inputs} inputs" if len(dict.fromkeys(result.rows["input_id"])) > max_inputs else ""
    )
    base = alt.Chart(frame, title=title).encode(
        x=alt.X("cell:N", title=None, sort=list(dict.fromkeys(rows["cell"])), axis=alt.Axis(labelAngle=-30)),
        y=alt.Y("input_id:N", title="input", sort=inputs),
    )
    heat = base.mark_rect().encode(
        color=alt.Color("value:Q", title=metric, scale=alt.Scale(scheme="blues", domain=[0, 1])),
        tooltip=[
            alt.Tooltip("input_id:N"),
            alt.Tooltip("cell:N"),
            alt.Tooltip("value:Q", title=metric, format=".2f"),
            alt.Tooltip("cost:Q", format=_USD_SMALL),
        ],
    )
    stars = base.mark_text(fontSize=12, color="#f58518").encode(text="win:N")
    cells = frame["cell"].nunique()
    return alt.layer(heat, stars).properties(width=max(320, 56 * cells), height=16 * len(inputs))


def race(result: CompareResult) -> alt.LayerChart:
    """When each cell of an adaptive comparison was stopped: a bar per cell to the number of inputs it ran
    (grey: stopped, with the reason), against the full grid's inputs (the dashed line)."""
    import altair as alt

    if result.race is None:
        raise ValueError("a full grid has no race: run compare(..., adaptive=True)")
    register_theme()
    table = result.table.copy()
    table["cell"] = _label(table)
    table["live"] = [not s for s in _stopped(result, table)]
    table["n"] = table["n"].astype(int)
    table["reason"] = [
        "ran every input" if stop is None else stop.split(": ", 1)[1] for stop in table["stopped"]
    ]
    table["label"] = [
        f"{n} · " + (("ran every input" if n == result.race.units else "in the race") if live else
                     "stopped: " + reason.split(" on ")[0])  # "dominated by ('a', 'm')"
        for n, live, reason in zip(table["n"], table["live"], table["reason"], strict=True)
    ]
    table = table[["cell", "model", "n", "live", "reason", "label"]]
    units = result.race.units
    title = (
        f"When each cell was stopped (racing on {result.race.by} at {result.race.confidence:.0%}; "
        f"{units} inputs in the full grid)"
    )
    base = alt.Chart(table, title=title)
    y = alt.Y("cell:N", title=None, sort=None)
    bars = base.mark_bar().encode(
        y=y,
        x=alt.X("n:Q", title="inputs run", scale=alt.Scale(domain=[0, units])),
        color=_model_color(),
        tooltip=[alt.Tooltip("cell:N"), alt.Tooltip("n:Q", title="inputs run"), alt.Tooltip("reason:N")],
    )
    text = base.mark_text(align="left", dx=4, fontSize=10, color="#333").encode(y=y, x="n:Q", text="label:N")
    full = alt.Chart(alt.Data(values=[{"units": units}])).mark_rule(color="#555", strokeDash=[4, 3]).encode(
        x="units:Q"
    )
    return alt.layer(bars, text, full)
