"""The spend dashboard: filters, KPI tiles, charts and a top-N table, as ipywidgets.

>>> import llmcost_nb
>>> llmcost_nb.dashboard()                       # doctest: +SKIP
>>> llmcost_nb.dashboard(ledger, budget=500)     # doctest: +SKIP

A refresh runs a handful of rollup queries (milliseconds, see :mod:`llmcost_nb.analysis`) and renders only the
chart tab in view as SVG (vl-convert, offline); other tabs render when opened. Saved with its outputs, the
dashboard still shows: its display also carries ``text/html`` (KPIs, top-N table, the visible chart) and
``text/plain``.

It runs no SQL of its own: filters come from the ledger's read protocol (``time_span``, ``distinct``,
``tag_keys``, ``tag_values``), figures from the ledger's analysis methods, so it works the same on a local
ledger and on the PostgreSQL team ledger
(``dashboard("postgresql://…")``).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from html import escape
from typing import TYPE_CHECKING, Any

from ..core.money import format_total, format_usd
from .widgets import NO_MATH

if TYPE_CHECKING:
    import pandas as pd

    from ..ledger.protocol import LedgerReader

__all__ = ["Dashboard", "dashboard"]

_ALL = "(all)"
_TABS = ("Spend over time", "Budget & forecast", "Cost by tag", "Token mix", "Latency")
_TILE = (
    "<div style='display:inline-block;min-width:130px;margin:4px 8px 4px 0;padding:8px 12px;"
    "border:1px solid #ddd;border-radius:6px;background:#fafafa'><div style='font-size:11px;color:#666'>"
    "{label}</div><div style='font-size:20px;font-weight:600'>{value}</div></div>"
)


def _usd(value: Decimal | float) -> str:
    return format_usd(value, places=2)


def _spent(cost: Decimal, unpriced: int, estimated: int) -> str:
    """Spend as every view shows it: ``≈$1.20 (1 estimated) + 2 unpriced`` (unknown is never $0)."""
    return format_total(cost, unpriced=unpriced, estimated=estimated, places=2)


class Dashboard:
    """The widget and its state; ``refresh()`` recomputes everything for the current filters."""

    def __init__(self, ledger: LedgerReader, *, budget: Decimal | float | str | None = None, top: int = 10
                 ) -> None:
        import ipywidgets as w

        self.ledger, self.top = ledger, top
        self.budget = None if budget is None else Decimal(str(budget))
        first, last = ledger.time_span()  # both from the ts index
        last_day = date.fromisoformat(last[:10]) if last else date.today()
        first_day = max(date.fromisoformat(first[:10]), last_day - timedelta(days=89)) if first else last_day
        self._quiet = True  # no refresh while the controls are being set up
        self.providers = ledger.distinct("provider")
        self.models = ledger.distinct("model")
        keys = ledger.tag_keys()
        style = {"description_width": "initial"}
        self.since = w.DatePicker(description="From", value=first_day, style=style)
        self.until = w.DatePicker(description="to", value=last_day, style=style)
        self.provider = w.Dropdown(description="Provider", options=[_ALL, *self.providers], style=style)
        self.model = w.Dropdown(description="Model", options=[_ALL, *self.models], style=style)
        self.tag_key = w.Dropdown(
            description="Tag",
            options=keys or ["(none)"],
            value="team" if "team" in keys else (keys[0] if keys else "(none)"),
            style=style,
        )
        self.tag_value = w.Dropdown(description="=", options=[_ALL], style=style)
        self.group = w.Dropdown(
            description="Stack by",
            options=["model", "provider", "status"] + [f"tag:{k}" for k in keys],
            value="model",
            style=style,
        )
        self.kpis = w.HTML()
        self.table = w.HTML()
        self.outputs = [w.Output() for _ in _TABS]
        self.tabs = w.Tab(children=self.outputs, titles=_TABS)
        self._dirty = set(range(len(_TABS)))
        self._frames: dict[str, Any] = {}
        self._update_tag_values()
        filters = w.HBox(
            [self.since, self.until, self.provider, self.model, self.tag_key, self.tag_value, self.group],
            layout=w.Layout(flex_flow="row wrap"),
        )
        self.widget = w.VBox([filters, self.kpis, self.tabs, self.table])
        for control in (self.since, self.until, self.provider, self.model, self.tag_value, self.group):
            control.observe(lambda _: self.refresh(), names="value")
        self.tag_key.observe(self._on_tag_key, names="value")
        self.tabs.observe(lambda _: self._render_visible(), names="selected_index")
        self._quiet = False
        self.refresh()

    def _on_tag_key(self, _: Any) -> None:
        self._update_tag_values()
        self.refresh()

    def _update_tag_values(self) -> None:
        values = self.ledger.tag_values(self.tag_key.value)
        quiet, self._quiet = self._quiet, True
        try:
            self.tag_value.options = [_ALL, *values]
            self.tag_value.value = _ALL
        finally:
            self._quiet = quiet

    # -- state --------------------------------------------------------------------------------------------
    @property
    def where(self) -> dict[str, Any]:
        """The filters as a ``where`` for :func:`llmcost_nb.analysis.summary`."""
        where: dict[str, Any] = {}
        if self.provider.value != _ALL:
            where["provider"] = self.provider.value
        if self.model.value != _ALL:
            where["model"] = self.model.value
        if self.tag_value.value not in (_ALL, None):
            where[f"tag:{self.tag_key.value}"] = self.tag_value.value
        return where

    def _span(self) -> tuple[date | None, date | None]:
        until = self.until.value + timedelta(days=1) if self.until.value else None
        return self.since.value, until

    def refresh(self) -> None:
        """Re-run the queries for the current filters; update the tiles, the table and the visible chart."""
        if self._quiet:
            return
        since, until = self._span()
        where = self.where
        led = self.ledger
        dim = self.group.value
        tag_dim = f"tag:{self.tag_key.value}" if self.tag_key.value != "(none)" else "model"
        self._frames = {
            "total": led.summary(by=(), since=since, until=until, where=where),
            "time": led.summary(by=("day", dim), since=since, until=until, where=where),
            "tag": led.summary(by=tag_dim, since=since, until=until, where=where),
            "model": led.summary(by="model", since=since, until=until, where=where),
        }
        as_of = min(until, date.today() + timedelta(days=1)) - timedelta(days=1) if until else None
        self._frames["forecast"] = led.forecast("month", as_of, budget=self.budget, where=where or None)
        self.kpis.value = self._kpi_html()
        self.table.value = self._table_html()
        self._dirty = set(range(len(_TABS)))
        self._render_visible()

    # -- rendering ----------------------------------------------------------------------------------------
    def chart(self, index: int) -> Any:
        """The chart of tab ``index`` for the current filters (an Altair chart)."""
        from . import charts

        since, until = self._span()
        f = self._frames
        if index == 0:
            return charts.spend_over_time(self.ledger, by=self.group.value, frame=f["time"])
        if index == 1:
            fc = f["forecast"]
            spikes = self.ledger.anomalies(
                since=fc.period_start - timedelta(days=28), until=fc.period_end, scopes=False
            )
            return charts.cumulative_spend(self.ledger, forecast=fc, anomalies=spikes)
        if index == 2:
            return charts.cost_by_tag(self.ledger, f["tag"].columns[0], frame=f["tag"])
        if index == 3:
            return charts.token_mix(self.ledger, frame=f["model"])
        return charts.latency_distribution(self.ledger, since=since, until=until, where=self.where)

    def _render_visible(self) -> None:
        from .display import chart_svg

        index = self.tabs.selected_index or 0
        if index not in self._dirty:
            return
        try:  # set the output directly: works with or without a kernel, and no XML re-parsing
            svg = chart_svg(self.chart(index))
            shown: dict[str, Any] = {
                "output_type": "display_data",
                "metadata": {},
                "data": {"image/svg+xml": svg, "text/plain": f"<chart: {_TABS[index]}>"},
            }
        except Exception as exc:  # a chart failing must not break the dashboard
            shown = {"output_type": "stream", "name": "stderr", "text": f"chart unavailable: {exc}\n"}
        self.outputs[index].outputs = (shown,)
        self._dirty.discard(index)

    def kpis_dict(self) -> dict[str, Any]:
        """The tiles' values: spend (exact, over the priced calls), calls, ``unpriced`` (billed calls with no
        known price: not in spend) and ``estimated`` calls (tokens counted by llmcost_nb), tokens, forecast,
        budget used (None without a budget)."""
        total = self._frames["total"]
        row = total.iloc[0] if len(total) else None
        fc = self._frames["forecast"]
        return {
            "spend": row["cost_usd"] if row is not None else Decimal(0),
            "calls": int(row["requests"]) if row is not None else 0,
            "unpriced": int(row["unpriced"]) if row is not None else 0,
            "estimated": int(row["estimated"]) if row is not None else 0,
            "tokens": int(row["input_tokens"] + row["output_tokens"]) if row is not None else 0,
            "forecast": fc.projected,
            "budget_used": None if not fc.budget else fc.spent / fc.budget,
        }

    def _kpi_html(self) -> str:
        k = self._frames and self.kpis_dict()
        fc = self._frames["forecast"]
        tiles = [
            ("Spend", _spent(k["spend"], k["unpriced"], k["estimated"])),
            ("Calls", f"{k['calls']:,}"),
            ("Tokens", f"{k['tokens']:,}"),
            (f"Forecast {fc.period_start:%b %Y}", _usd(k["forecast"])),
            ("Budget used", f"{k['budget_used']:.0%}" if k["budget_used"] is not None else "no budget"),
        ]
        return "".join(_TILE.format(label=escape(a), value=escape(b)) for a, b in tiles)

    def top_frame(self) -> pd.DataFrame:
        """The top-N rows of the current grouping by cost (with their unpriced and estimated calls)."""
        frame = self._frames["time"]
        col = frame.columns[1]
        grouped = (
            frame.assign(**{col: frame[col].fillna("(none)")})
            .groupby(col, as_index=False)
            .agg(requests=("requests", "sum"), cost_usd=("cost_usd", lambda s: sum(s, Decimal(0))),
                 unpriced=("unpriced", "sum"), estimated=("estimated", "sum"))
        )
        return grouped.sort_values("cost_usd", ascending=False).head(self.top).reset_index(drop=True)

    def _table_html(self) -> str:
        top = self.top_frame()
        col = top.columns[0]
        rows = "".join(
            f"<tr><td>{escape(str(r[col]))}</td><td style='text-align:right'>{r['requests']:,}</td>"
            f"<td style='text-align:right'>"
            f"{escape(_spent(r['cost_usd'], r['unpriced'], r['estimated']))}</td></tr>"
            for _, r in top.iterrows()
        )
        return (
            f"<table><caption style='text-align:left'><b>Top {self.top} by cost: {escape(col)}</b></caption>"
            f"<tr><th>{escape(col)}</th><th>requests</th><th>cost</th></tr>{rows}</table>"
        )

    def __str__(self) -> str:
        k = self.kpis_dict()
        used = f"{k['budget_used']:.0%}" if k["budget_used"] is not None else "no budget"
        return (
            f"llmcost dashboard {self.since.value} to {self.until.value}: "
            f"{_spent(k['spend'], k['unpriced'], k['estimated'])} · "
            f"{k['calls']:,} calls · {k['tokens']:,} tokens · forecast {_usd(k['forecast'])} · budget {used}"
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from .display import chart_svg

        bundle = dict(self.widget._repr_mimebundle_(include=include, exclude=exclude) or {})
        try:
            svg = chart_svg(self.chart(self.tabs.selected_index or 0))
        except Exception:  # the static view is best effort
            svg = ""
        bundle["text/plain"] = str(self)
        bundle["text/html"] = f'<div class="{NO_MATH}">{self.kpis.value}{svg}{self.table.value}</div>'
        return bundle


def dashboard(
    ledger: LedgerReader | str | None = None, *, budget: Decimal | float | str | None = None, top: int = 10
) -> Dashboard:
    """The dashboard of ``ledger`` (default: this session's ledger; a path, or a ``postgresql://`` URL for
    the team ledger). ``budget``: a monthly budget in USD.

    >>> dashboard("costs.db", budget=500)      # doctest: +SKIP
    """
    from ..tracking.resolve import resolve_ledger

    # a file, the team ledger's URL (a PostgresLedger), or this session's ledger
    return Dashboard(resolve_ledger(ledger), budget=budget, top=top)
