"""``result.explore()``: pick variants, models, a chart and a quality metric and see the chart and the table
update; click cells to see their outputs side by side with what each cost.

The cells an adaptive comparison stopped are greyed (table rows, chart marks, their buttons), and its
explorer offers the race chart: when each cell was stopped.

The display also carries ``text/html`` (the table and the cost-vs-quality chart as SVG) and ``text/plain``,
so a notebook saved with its outputs still shows the comparison without a kernel.

>>> explorer = result.explore()          # doctest: +SKIP
>>> explorer.select(variants=["terse"]); explorer.pick(("terse", "gpt-4.1"))      # doctest: +SKIP
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

from ..core.money import format_total

if TYPE_CHECKING:
    from ..experiments.result import CompareResult

__all__ = ["CHARTS", "Explorer"]

CHARTS = {
    "cost vs quality": "cost_quality",
    "cost per success": "cost_per_success",
    "latency": "latency",
    "per-input wins": "wins",
    "race": "race",  # adaptive comparisons only
}
QUALITY = {"mean score": ("mean_score", "score"), "success rate": ("success_rate", "success")}
MAX_PICKED = 3
SAMPLE_ROWS = 12


def _cell_label(cell: tuple[str, str]) -> str:
    return f"{cell[0]} · {cell[1]}"


def _count(value: Any) -> int:
    """A row's count of unpriced or estimated calls (none, or NaN in rows built without it: 0)."""
    return int(value) if value is not None and value == value else 0


class Explorer:
    """An interactive view of a :class:`CompareResult` (ipywidgets), with static fallbacks."""

    def __init__(self, result: CompareResult) -> None:
        self.result = result
        self.all_variants = list(dict.fromkeys(result.rows["variant"]))
        self.all_models = list(dict.fromkeys(result.rows["model"]))
        self.variants, self.models = list(self.all_variants), list(self.all_models)
        self.chart_name = "cost vs quality"
        self.quality = "mean score"
        self.picked: list[tuple[str, str]] = []
        self.charts = [c for c in CHARTS if c != "race" or result.race is not None]
        self._widget: Any = None

    # -- state, usable without widgets ----------------------------------------------------------------
    def view(self) -> CompareResult:
        """The result restricted to the selected variants and models."""
        return self.result.subset(variants=self.variants, models=self.models)

    def select(
        self,
        *,
        variants: list[str] | None = None,
        models: list[str] | None = None,
        chart: str | None = None,
        quality: str | None = None,
    ) -> None:
        if chart is not None and chart not in self.charts:
            raise ValueError(f"unknown chart {chart!r}, allowed values: {', '.join(self.charts)}")
        if quality is not None and quality not in QUALITY:
            raise ValueError(f"unknown quality {quality!r}, allowed values: {', '.join(QUALITY)}")
        self.variants = list(variants) if variants is not None else self.variants
        self.models = list(models) if models is not None else self.models
        self.chart_name, self.quality = chart or self.chart_name, quality or self.quality
        self._refresh()

    def pick(self, cell: tuple[str, str]) -> None:
        """Add a cell to the side-by-side samples (the oldest of more than three drops out)."""
        if cell not in self.result.cells():
            raise KeyError(f"no cell {cell!r}; cells: {', '.join(map(_cell_label, self.result.cells()))}")
        if cell in self.picked:
            self.picked.remove(cell)
        else:
            self.picked = [*self.picked, cell][-MAX_PICKED:]
        self._refresh()

    def chart(self) -> Any:
        view = self.view()
        if view.rows.empty:
            return None
        name = CHARTS[self.chart_name]
        metric, row_metric = QUALITY[self.quality]
        if name == "cost_quality":
            return view.cost_quality_chart(metric)
        if name == "wins":
            from .compare_charts import wins

            return wins(view, row_metric)
        return getattr(view, f"{name}_chart")()

    def samples_html(self) -> str:
        """The picked cells' outputs side by side, one row per input, with score and cost."""
        if not self.picked:
            return "<div><i>Click cells above to see their outputs side by side.</i></div>"
        rows = self.result.rows
        inputs = list(dict.fromkeys(rows["input_id"]))[:SAMPLE_ROWS]
        by_cell = {
            cell: rows[(rows["variant"] == cell[0]) & (rows["model"] == cell[1])]
            .drop_duplicates("input_id")
            .set_index("input_id")
            for cell in self.picked
        }
        head = "<th>input</th><th>expected</th>" + "".join(
            f"<th>{escape(_cell_label(c))}</th>" for c in self.picked
        )
        body = []
        for input_id in inputs:
            expected = next(
                (f.at[input_id, "expected"] for f in by_cell.values() if input_id in f.index), None
            )
            cells = []
            for frame in by_cell.values():
                if input_id not in frame.index:
                    cells.append("<td>–</td>")
                    continue
                row = frame.loc[input_id]
                score = "" if row["score"] != row["score"] else f" · score {row['score']:g}"
                mark = "✓" if row["success"] else "✗"
                text = row["output"] if row["output"] is not None else f"({row['status']})"
                cost = format_total(row["cost"], unpriced=_count(row["unpriced"]),
                                    estimated=_count(row.get("estimated")))
                cells.append(
                    f"<td>{mark} {escape(str(text))[:300]}<br><small>{escape(cost)}{score}</small></td>"
                )
            body.append(
                f"<tr><td>{escape(str(input_id))}</td><td>{escape(str(expected))}</td>{''.join(cells)}</tr>"
            )
        return (
            f'<table class="llmcost-samples"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}'
            "</tbody></table>"
        )

    # -- widget ---------------------------------------------------------------------------------------
    def widget(self) -> Any:
        import ipywidgets as w

        if self._widget is not None:
            return self._widget
        variants = w.SelectMultiple(
            options=self.all_variants,
            value=tuple(self.variants),
            description="variants",
            rows=min(4, len(self.all_variants)),
        )
        models = w.SelectMultiple(
            options=self.all_models,
            value=tuple(self.models),
            description="models",
            rows=min(4, len(self.all_models)),
        )
        chart = w.Dropdown(options=self.charts, value=self.chart_name, description="chart")
        quality = w.Dropdown(options=list(QUALITY), value=self.quality, description="quality")
        self._chart_box, self._table_box, self._samples_box = w.HTML(), w.HTML(), w.HTML()
        self._buttons = w.HBox(layout=w.Layout(flex_flow="row wrap"))

        def changed(_: Any) -> None:
            self.select(
                variants=list(variants.value),
                models=list(models.value),
                chart=chart.value,
                quality=quality.value,
            )

        for control in (variants, models, chart, quality):
            control.observe(changed, names="value")
        self._widget = w.VBox(
            [
                w.HBox([variants, models, w.VBox([chart, quality])]),
                self._chart_box,
                self._table_box,
                w.HTML("<b>Cells</b> (click to compare outputs)"),
                self._buttons,
                self._samples_box,
            ]
        )
        self._refresh()
        return self._widget

    def _refresh(self) -> None:
        if self._widget is None:
            return
        import ipywidgets as w

        from .display import chart_svg

        chart = self.chart()
        self._chart_box.value = chart_svg(chart) if chart is not None else "<i>nothing selected</i>"
        view = self.view()
        self._table_box.value = view._repr_html_()
        buttons = []
        stops = self.result.race.stops if self.result.race is not None else {}
        for cell in view.cells():
            button = w.ToggleButton(
                value=cell in self.picked,
                description=_cell_label(cell) + (" (stopped)" if cell in stops else ""),
                tooltip=stops.get(cell, ""),
                layout=w.Layout(width="auto"),
                style={"text_color": "#999999"} if cell in stops else {},
            )
            button.observe(lambda _, cell=cell: self.pick(cell), names="value")
            buttons.append(button)
        self._buttons.children = buttons
        self._samples_box.value = self.samples_html()

    # -- display --------------------------------------------------------------------------------------
    def _repr_html_(self) -> str:
        from .display import chart_svg

        chart = self.chart()
        svg = chart_svg(chart) if chart is not None else ""
        samples = self.samples_html() if self.picked else ""
        return f'<div class="llmcost-explorer">{self.view()._repr_html_()}{svg}{samples}</div>'

    def __repr__(self) -> str:
        return repr(self.view())

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from .display import widget_bundle

        return widget_bundle(self.widget, self._repr_html_(), repr(self))
