"""The result of :func:`llmcost_nb.compare`: per-call rows, a per-cell table, the best cell, bootstrap CIs,
paired comparisons, charts and an explorer. Also rebuilt from the ledger alone by :func:`from_ledger`.

>>> result.table                              # doctest: +SKIP
>>> result.best(by="cost_per_success")        # doctest: +SKIP
>>> result.paired(("terse", "gpt-4.1-mini"), ("steps", "gpt-4.1-mini"))     # doctest: +SKIP
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from decimal import Decimal
from html import escape
from typing import TYPE_CHECKING, Any

from ..core.call import PICO
from ..core.money import format_total, format_usd
from .views import view

if TYPE_CHECKING:
    import altair as alt
    import pandas as pd

    from ..ledger.sqlite import Ledger
    from .plan import GridEstimate
    from .stats import PairedComparison

__all__ = ["CompareResult", "RaceSummary", "from_ledger"]

ROW_COLUMNS = (
    "experiment",
    "variant",
    "model",
    "input_id",
    "repeat",
    "status",
    "output",
    "expected",
    "score",
    "success",
    "cost",
    "judge_cost",
    "unpriced",
    "estimated",
    "input_tokens",
    "output_tokens",
    "latency_ms",
    "attempts",
    "error",
    "call_ids",
)
TABLE_COLUMNS = (
    "variant",
    "model",
    "n",
    "success_rate",
    "mean_score",
    "total_cost",
    "mean_cost",
    "cost_per_success",
    "judge_cost",
    "unpriced",
    "estimated",
    "p50_latency_ms",
    "p95_latency_ms",
    "input_tokens",
    "output_tokens",
    "errors",
    "stopped",
)
# best(by=...): the metric and whether lower is better
BEST_BY = {
    "cost_per_success": True,
    "mean_cost": True,
    "total_cost": True,
    "p50_latency_ms": True,
    "p95_latency_ms": True,
    "success_rate": False,
    "mean_score": False,
}
_COSTS = ("cost_per_success", "mean_cost", "total_cost")
METRICS = ("score", "success", "cost", "latency_ms")
_SHORT_HEADERS = {
    "success_rate": "success",
    "mean_score": "score",
    "total_cost": "total $",
    "mean_cost": "$ / call",
    "cost_per_success": "$ / success",
    "judge_cost": "judge $",
    "p50_latency_ms": "p50 ms",
    "p95_latency_ms": "p95 ms",
    "input_tokens": "in tok",
    "output_tokens": "out tok",
}
_AFTER = re.compile(r"after input (\d+) of (\d+)")


@dataclass(frozen=True)
class RaceSummary:
    """How an adaptive comparison raced: on ``by`` at ``confidence``, over ``units`` inputs (× repeats), and
    why each stopped cell was stopped (``stops``: (variant, model) -> message)."""

    by: str
    confidence: float
    units: int
    stops: dict[tuple[str, str], str] = field(default_factory=dict)
    cells: tuple[tuple[str, str], ...] = ()  # the grid's order for the table (from the ledger: as first seen)


@dataclass
class CompareResult:
    """What a comparison produced. ``rows``: one per call launched; ``table``: one per variant × model."""

    name: str
    rows: pd.DataFrame
    skipped: pd.DataFrame
    stopped: str | None = None  # None, "budget", "interrupted" or "cancelled"
    estimate: GridEstimate | None = None
    threshold: float = 0.5
    scorer: str | None = None
    elapsed_s: float | None = None
    ledger: Ledger | None = None
    race: RaceSummary | None = None  # an adaptive comparison's race, None for a full grid
    _table: pd.DataFrame | None = field(default=None, repr=False)

    @classmethod
    def build(
        cls, name: str, rows: list[dict[str, Any]], *, skipped: list[dict[str, Any]], **kwargs: Any
    ) -> CompareResult:
        import pandas as pd

        frame = pd.DataFrame(rows, columns=list(ROW_COLUMNS))
        for column in ("cost", "judge_cost"):
            frame[column] = pd.Series(list(frame[column]), index=frame.index, dtype=object)
        frame["score"] = frame["score"].astype("float64")
        frame["latency_ms"] = frame["latency_ms"].astype("float64")
        skipped_frame = pd.DataFrame(skipped, columns=["variant", "model", "input_id", "repeat", "reason"])
        return cls(name, frame, skipped_frame, **kwargs)

    # -- totals ---------------------------------------------------------------------------------------
    @property
    def candidate_cost(self) -> Decimal:
        """Exact cost of the compared calls (retries included, judge excluded)."""
        return sum(self.rows["cost"], Decimal(0))

    @property
    def judge_cost(self) -> Decimal:
        """Exact cost of the LLM judge's calls (tag ``role=judge``)."""
        return sum(self.rows["judge_cost"], Decimal(0))

    @property
    def total_cost(self) -> Decimal:
        """Everything the experiment spent: equals the ledger's total for ``tags={"experiment": name}``."""
        return self.candidate_cost + self.judge_cost

    @property
    def saved(self) -> Decimal:
        """What racing saved, estimated: for each stopped cell, its mean cost per input so far (judge
        included) × the inputs it did not run. 0 for a full grid."""
        if self.race is None:
            return Decimal(0)
        saved = Decimal(0)
        for variant, model in self.race.stops:
            rows = self.rows[(self.rows["variant"] == variant) & (self.rows["model"] == model)]
            if len(rows):
                spent = sum(rows["cost"], Decimal(0)) + sum(rows["judge_cost"], Decimal(0))
                saved += (spent * (self.race.units - len(rows)) / len(rows)).quantize(PICO)
        return saved

    @property
    def live_cells(self) -> list[tuple[str, str]]:
        """The cells a race did not stop (every cell for a full grid)."""
        stops = self.race.stops if self.race is not None else {}
        return [cell for cell in self.cells() if cell not in stops]

    # -- per cell -------------------------------------------------------------------------------------
    @property
    def table(self) -> pd.DataFrame:
        """Per variant × model: n, success rate, mean score, total / mean cost, cost per success (Decimal,
        failures' cost included; over the priced calls), judge cost, ``unpriced`` calls (billed, no known
        price: not in the costs) and ``estimated`` calls (tokens counted by llmcost_nb), p50 / p95 latency,
        tokens, errors."""
        if self._table is None:
            self._table = _table(self.rows, self.race)
        return self._table

    def cells(self) -> list[tuple[str, str]]:
        """The (variant, model) cells, in the table's order."""
        return list(zip(self.table["variant"], self.table["model"], strict=True))

    def subset(self, *, variants: list[str] | None = None, models: list[str] | None = None) -> CompareResult:
        """The same result restricted to some variants and/or models."""
        keep = self.rows["variant"].isin(variants if variants is not None else self.rows["variant"]) & (
            self.rows["model"].isin(models if models is not None else self.rows["model"])
        )
        return replace(self, rows=self.rows[keep].reset_index(drop=True), _table=None)

    def best(self, by: str = "cost_per_success") -> pd.Series:
        """The best cell by ``by`` (cost and latency: lowest; success rate and score: highest); ties go to
        the cheaper cell. Cells with no value (e.g. no success) are left out, and so are the cells a race
        stopped (their figures cover fewer inputs). On a cost, a cell with unpriced calls is left out too: its
        cost is unknown, not the smaller sum of its priced calls (``set_price`` makes it comparable)."""
        if by not in BEST_BY:
            raise ValueError(f"unknown metric {by!r}, allowed values: {', '.join(BEST_BY)}")
        keep = self.table[by].notna() & self.table["stopped"].isna()
        if by in _COSTS:
            keep &= self.table["unpriced"] == 0
        table = self.table[keep]
        if table.empty:
            unpriced = sorted(set(self.table.loc[self.table["unpriced"] > 0, "model"]))
            if by in _COSTS and unpriced:
                raise ValueError(f"no cell has a known {by}: no price for {', '.join(unpriced)} "
                                 "(llmcost_nb.set_price(model, input_mtok=..., output_mtok=...))")
            raise ValueError(f"no cell has a {by} (no successful call?)")
        keyed = sorted(
            table.index,
            # a tie goes to the cheaper cell, and never to one whose cost is unknown
            key=lambda i: (table.at[i, by] if BEST_BY[by] else -table.at[i, by], table.at[i, "unpriced"] > 0,
                           table.at[i, "mean_cost"]),
        )
        return table.loc[keyed[0]]

    def _values(self, cell: tuple[str, str], metric: str) -> pd.DataFrame:
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}, allowed values: {', '.join(METRICS)}")
        variant, model = cell
        rows = self.rows[(self.rows["variant"] == variant) & (self.rows["model"] == model)]
        if rows.empty:
            raise KeyError(f"no cell {cell!r}; cells: {', '.join(map(str, self.cells()))}")
        values = {
            "score": rows["score"],
            "success": rows["success"].astype(float),
            "cost": rows["cost"].map(float),
            "latency_ms": rows["latency_ms"],
        }[metric]
        frame = rows[["input_id", "repeat"]].assign(value=values.astype(float))
        return frame.dropna(subset=["value"])

    def ci(
        self, metric: str = "score", *, level: float = 0.95, n_resamples: int = 2000, seed: int | None = 0
    ) -> pd.DataFrame:
        """Bootstrap CIs of the mean ``metric`` (score, success, cost, latency_ms) per cell."""
        import pandas as pd

        from .stats import bootstrap_ci

        out = []
        for cell in self.cells():
            values = self._values(cell, metric)["value"]
            low, high = bootstrap_ci(list(values), level=level, n_resamples=n_resamples, seed=seed)
            out.append(
                {
                    "variant": cell[0],
                    "model": cell[1],
                    "metric": metric,
                    "n": len(values),
                    "mean": float(values.mean()) if len(values) else float("nan"),
                    "low": low,
                    "high": high,
                }
            )
        return pd.DataFrame(out, columns=["variant", "model", "metric", "n", "mean", "low", "high"])

    def paired(
        self,
        a: tuple[str, str],
        b: tuple[str, str],
        metric: str = "score",
        *,
        level: float = 0.95,
        n_resamples: int = 2000,
        seed: int | None = 0,
    ) -> PairedComparison:
        """Cell ``b`` against cell ``a`` (each ``(variant, model)``) on the inputs both answered: the mean
        difference b − a with a paired bootstrap CI; ``.significant`` when it excludes 0."""
        from .stats import paired_bootstrap

        joined = self._values(a, metric).merge(self._values(b, metric), on=["input_id", "repeat"])
        return paired_bootstrap(
            list(joined["value_x"]),
            list(joined["value_y"]),
            level=level,
            n_resamples=n_resamples,
            seed=seed,
            names=(" · ".join(a), " · ".join(b)),
            metric=metric,
        )

    # -- charts and explorer (notebook views, registered by name: experiments.views) ------------------
    def cost_quality_chart(self, quality: str = "mean_score", **ci: Any) -> alt.LayerChart:
        """Mean cost vs quality per cell, with CIs as error bars and the Pareto frontier."""
        return view("cost_quality")(self, quality, **ci)

    def cost_per_success_chart(self) -> alt.LayerChart:
        """Cost per success per cell, cheapest first."""
        return view("cost_per_success")(self)

    def latency_chart(self) -> alt.LayerChart:
        """Latency distribution per cell (5/25/50/75/95th percentiles)."""
        return view("latency")(self)

    def wins_chart(self, metric: str = "score", max_inputs: int = 60) -> alt.LayerChart:
        """Per input × cell heatmap of ``metric`` (score or success), ★ on each input's best cells."""
        return view("wins")(self, metric, max_inputs)

    def race_chart(self) -> alt.LayerChart:
        """An adaptive comparison's race: how many inputs each cell ran, and why it was stopped."""
        return view("race")(self)

    def explore(self) -> Any:
        """An explorer widget: pick cells and a metric, see charts and table; click a cell for samples."""
        return view("explore")(self)

    # -- display --------------------------------------------------------------------------------------
    def summary(self) -> str:
        ok = int((self.rows["status"] == "ok").sum())
        judge = f" (judge {format_usd(self.judge_cost)})" if self.judge_cost else ""
        cost = format_total(self.total_cost, unpriced=_count(self.rows["unpriced"]),
                            estimated=_count(self.rows["estimated"]))
        text = f"experiment {self.name}: {len(self.rows):,} calls ({ok:,} ok) · {cost}{judge}"
        if self.stopped:
            text += f" · stopped ({self.stopped}): {len(self.skipped):,} calls skipped"
        if self.estimate is not None and self.estimate.max_cost is not None:
            text += f" · estimate was ≤ {format_usd(self.estimate.max_cost)}"
        if self.race is not None:
            text += "\n" + self.race_verdict()
        return text

    def race_verdict(self) -> str:
        """One line on an adaptive comparison: the winner at the race's confidence, or that there is none."""
        if self.race is None:
            return "a full grid: no race"
        race, live = self.race, self.live_cells
        head = (
            f"raced on {race.by} at {race.confidence:.0%}: {len(race.stops)} of {len(self.cells())} cells "
            f"stopped, saved an estimated {format_usd(self.saved)}"
        )
        if self.stopped is not None:  # budget, interrupt: the cells left did not all run every input
            return f"{head}; the race did not finish ({self.stopped}): no verdict"
        if len(live) == 1:
            return f"{head}; winner: {' · '.join(live[0])}"
        return (
            f"{head}; no clear winner at {race.confidence:.0%}: {len(live)} cells still in the race "
            f"({', '.join(' · '.join(c) for c in live)}), best() picks among them on their figures"
        )

    def _display_table(self) -> pd.DataFrame:
        """The table for people: money as dollars (``≈`` when tokens were estimated, ``+ N unpriced`` for
        calls of unknown price: :func:`~llmcost_nb.core.money.format_total`), rates as percents, short
        headers."""
        table = self.table.copy()
        if not any(table["judge_cost"]):
            table = table.drop(columns=["judge_cost"])
        if self.race is None:
            table = table.drop(columns=["stopped"])
        else:
            table["stopped"] = [_short_stop(v) for v in table["stopped"]]
        for column in ("total_cost", "mean_cost", "cost_per_success"):
            table[column] = [
                format_total(v, unpriced=u, estimated=e) if v is not None else "–"
                for v, u, e in zip(table[column], table["unpriced"], table["estimated"], strict=True)
            ]
        if "judge_cost" in table:
            table["judge_cost"] = [format_usd(v) for v in table["judge_cost"]]
        table = table.drop(columns=["unpriced", "estimated"])
        table["success_rate"] = [f"{v:.0%}" for v in table["success_rate"]]
        table["mean_score"] = [f"{v:.3f}" if v == v else "–" for v in table["mean_score"]]
        for column in ("p50_latency_ms", "p95_latency_ms"):
            table[column] = [f"{v:,.0f}" if v == v else "–" for v in table[column]]
        return table.rename(columns=_SHORT_HEADERS)

    def __repr__(self) -> str:
        return self.summary() + "\n" + self._display_table().to_string(index=False)

    def _repr_html_(self) -> str:
        table = self._display_table().to_html(index=False, classes="llmcost-compare", border=0)
        if self.race is not None:  # the stopped cells' rows greyed
            head, _, body = table.partition("<tbody>")
            first, *rows = body.split("<tr>")
            grey = '<tr class="llmcost-stopped" style="color:#999">'
            table = head + "<tbody>" + first + "".join(
                (grey if stopped is not None else "<tr>") + row
                for row, stopped in zip(rows, self.table["stopped"], strict=True)
            )
        summary = "<br>".join(escape(line) for line in self.summary().splitlines())
        return f"<div><b>{summary}</b></div>{table}"


def _short_stop(message: str | None) -> str:
    """"after input 12 of 80 (q7): dominated by ('a', 'm') on …" -> "after 12: by a · m" for the table."""
    if message is None:
        return "–"
    match = re.search(r"after input (\d+) of \d+.*dominated by \('(.*)', '(.*)'\) on", message)
    return f"after {match.group(1)}: by {match.group(2)} · {match.group(3)}" if match else message


def _table(rows: pd.DataFrame, race: RaceSummary | None = None) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    out = []
    for (variant, model), group in rows.groupby(["variant", "model"], sort=False):
        n, successes = len(group), int(group["success"].sum())
        total = sum(group["cost"], Decimal(0))
        latency = group.loc[group["status"] == "ok", "latency_ms"].dropna().to_numpy()
        scores = group["score"].dropna()
        out.append(
            {
                "variant": variant,
                "model": model,
                "n": n,
                "success_rate": successes / n,
                "mean_score": float(scores.mean()) if len(scores) else float("nan"),
                "total_cost": total,
                "mean_cost": (total / n).quantize(PICO).normalize(),
                "cost_per_success": (total / successes).quantize(PICO).normalize() if successes else None,
                "judge_cost": sum(group["judge_cost"], Decimal(0)),
                "unpriced": _count(group["unpriced"]),
                "estimated": _count(group["estimated"]),
                "p50_latency_ms": float(np.percentile(latency, 50)) if latency.size else float("nan"),
                "p95_latency_ms": float(np.percentile(latency, 95)) if latency.size else float("nan"),
                "input_tokens": int(group["input_tokens"].sum()),
                "output_tokens": int(group["output_tokens"].sum()),
                "errors": int((group["status"] != "ok").sum()),
                "stopped": race.stops.get((variant, model)) if race is not None else None,
            }
        )
    if race is not None:  # the grid's order, whatever inputs a stopped cell missed
        order = list(race.cells) or list(dict.fromkeys(zip(rows["variant"], rows["model"], strict=True)))
        out.sort(key=lambda r: order.index((r["variant"], r["model"])) if (r["variant"], r["model"]) in order
                 else len(order))
    table = pd.DataFrame(out, columns=list(TABLE_COLUMNS))
    for column in ("total_cost", "mean_cost", "cost_per_success", "judge_cost"):
        table[column] = pd.Series(list(table[column]), index=table.index, dtype=object)
    # object, so a cell not stopped holds None (pandas would make a text column's missing values NaN)
    table["stopped"] = pd.Series([row["stopped"] for row in out], index=table.index, dtype=object)
    return table


def _count(values: pd.Series) -> int:
    """A column of per-row counts, summed (rows built before a count existed have none: 0)."""
    return int(values.fillna(0).sum())


def from_ledger(name: str, ledger: Ledger, threshold: float = 0.5) -> CompareResult:
    """A :class:`CompareResult` from the ledger's rows tagged ``experiment=name`` (no output texts)."""
    calls = ledger.calls(tags={"experiment": name})
    if calls.empty:
        raise KeyError(f"no calls tagged experiment={name!r} in {ledger.path}")
    cells: dict[tuple[str, str, str, int], dict[str, Any]] = {}
    scored, race_tag, stops = False, None, {}
    for call in calls.itertuples(index=False):
        tags = call.tags
        race_tag = race_tag or tags.get("race")
        if "stopped" in tags:
            stops[tags.get("variant"), tags.get("model")] = tags["stopped"]
        key = (tags.get("variant"), tags.get("model"), tags.get("input_id"), int(tags.get("repeat", 0)))
        cell = cells.setdefault(key, {"candidate": [], "judge": []})
        cell["judge" if tags.get("role") == "judge" else "candidate"].append(call)
        scored = scored or "score" in tags or tags.get("role") == "judge"
    rows = []
    for (variant, model, input_id, repeat), cell in cells.items():
        candidate = cell["candidate"]
        ok = [c for c in candidate if c.status == "ok" and c.billed]
        error = next((c.error for c in reversed(candidate) if c.error), None)
        status = "ok" if ok else "cancelled" if error and error.startswith("CancelledError") else "error"
        score_tag = next((c.tags["score"] for c in ok if "score" in c.tags), None)
        score = float(score_tag) if score_tag is not None else None
        rows.append(
            {
                "experiment": name,
                "variant": variant,
                "model": model,
                "input_id": input_id,
                "repeat": repeat,
                "status": status,
                "output": None,
                "expected": None,
                "score": score,
                "success": status == "ok" and (not scored or (score is not None and score >= threshold)),
                "cost": sum((c.cost_usd for c in candidate if c.cost_usd is not None), Decimal(0)),
                "judge_cost": sum((c.cost_usd for c in cell["judge"] if c.cost_usd is not None), Decimal(0)),
                "unpriced": sum(1 for c in candidate if c.billed and c.cost_usd is None),
                "estimated": sum(1 for c in candidate if c.usage_source == "estimated"),
                "input_tokens": sum(int(c.input_tokens) for c in candidate),
                "output_tokens": sum(int(c.output_tokens) for c in candidate),
                "latency_ms": round(
                    sum(float(c.latency_ms) for c in candidate if c.latency_ms == c.latency_ms), 3
                ),
                "attempts": len(candidate),
                "error": None if ok else error,
                "call_ids": [int(c.id) for c in candidate + cell["judge"]],
            }
        )
    race = None
    if race_tag is not None:
        by, _, confidence = race_tag.rpartition("@")
        units = max(
            [len({(r["input_id"], r["repeat"]) for r in rows})]
            + [int(_AFTER.search(m).group(2)) for m in stops.values() if _AFTER.search(m)]
        )
        race = RaceSummary(by, float(confidence), units, stops)
    return CompareResult.build(
        name,
        rows,
        skipped=[],
        threshold=threshold,
        scorer="(from ledger)" if scored else None,
        ledger=ledger,
        race=race,
    )
