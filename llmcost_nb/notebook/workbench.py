"""``llmcost_nb.workbench(...)``: a prompt workbench in one widget — edit variants, see what the grid will
cost before you run it, run it within a budget, and compare every run with what it cost.

>>> wb = llmcost_nb.workbench(questions, models=["gpt-4.1", "gpt-4.1-mini"], client=client, scorer="exact",
...                           budget="0.50", variants={"terse": "Q: {question}"})   # doctest: +SKIP
>>> wb                                         # the widget (last expression of a cell)   # doctest: +SKIP
>>> wb.set_variant("guided", "Answer in one word. {question}"); wb.estimate               # doctest: +SKIP
Decimal('0.0415')
>>> result = wb.run(); wb.history               # a CompareResult; one row per run         # doctest: +SKIP

The widget: one text area per variant (add / duplicate / remove; a field the inputs lack is flagged as you
type), the grid (model checkboxes, how many inputs — a sample drawn with the same seed every run —, repeats,
max_tokens, adaptive racing), a live estimate (``≤ $0.0410 · 120 calls · 3,660 input tokens``: tiktoken
counts, nothing sent, red and Run disabled over the budget; recomputed :data:`DEBOUNCE_S` after the last
keystroke),
Run / Stop with a progress bar and the running cost, the last run's explorer, the history of runs and two runs
side by side. Everything but the widgets lives in :mod:`llmcost_nb.experiments.workbench` (``wb.bench``).

Shown as the last expression of a cell, the workbench displays with a display id and updates that output
after each run, so the output saved in the notebook carries, besides the widget view, a ``text/html``
fallback with the last results and the history (and ``text/plain``): a notebook reopened without a kernel,
or shared with ``llmcost share``, shows them.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal
from html import escape
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Any

from ..core.money import format_total, format_usd
from ..experiments.workbench import (
    NO_MATH,
    Bench,
    Quote,
    RunComparison,
    VariantCheck,
    history_html,
    history_text,
)

if TYPE_CHECKING:
    import pandas as pd

    from ..experiments.result import CompareResult
    from ..ledger.sqlite import Ledger

__all__ = ["DEBOUNCE_S", "Workbench", "workbench"]

DEBOUNCE_S = 0.05  # the estimate is recomputed this long after the last keystroke
_RED, _GREY = "#c62828", "#616161"


class Workbench:
    """The widget over a :class:`~llmcost_nb.experiments.workbench.Bench`; its methods are the programmatic
    seams (``set_variant``, ``remove_variant``, ``estimate``, ``run``, ``history``, ``variants``)."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.result: CompareResult | None = None  # the last run's
        self.error: str | None = None  # why the last run failed, if it did
        self.quote: Quote = bench.quote()
        self.progress: tuple[int, int, Decimal] = (0, 0, Decimal(0))  # done, total, spent
        self.progress_counts: tuple[int, int] = (0, 0)  # calls spent leaves out (unpriced) and guesses
        self._widget: Any = None
        self._rows: dict[str, tuple[Any, Any, Any]] = {}  # variant -> (row box, text area, flag)
        self._syncing = False  # widgets being set from the model: their observers do nothing
        self._timer: threading.Timer | None = None
        self._timer_lock = threading.Lock()
        self._stop: threading.Event | None = None
        self._thread: threading.Thread | None = None
        self._busy = False
        self._results_html: str | None = None  # the last run's table and chart, rendered once
        self.timings: dict[str, float] = {}  # the last run's seconds: "run" (compare and history), "results"
        self._display_id = f"llmcost-workbench-{uuid.uuid4().hex}"
        self._displayed = False

    # -- the programmatic seams ---------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.bench.name

    @property
    def variants(self) -> dict[str, str]:
        """Each variant's text, by name (a copy)."""
        return self.bench.variants

    @property
    def estimate(self) -> Decimal | None:
        """The grid's worst case in USD, what the label shows (``None``: a model has no price); raises
        ``ValueError`` when the grid cannot run as it stands."""
        return self.bench.estimate

    @property
    def history(self) -> pd.DataFrame:
        """One row per run: variants and what changed, grid, estimate, cost, winner, its success rate."""
        return self.bench.history

    @property
    def running(self) -> bool:
        return self._busy

    def set_variant(self, name: str, text: Any) -> VariantCheck:
        """Add or replace a variant (template string, or chat messages as a list or JSON text)."""
        check = self.bench.set_variant(name, text)
        self._sync_variants()
        self.refresh_estimate()
        return check

    def remove_variant(self, name: str) -> None:
        self.bench.remove_variant(name)
        self._sync_variants()
        self.refresh_estimate()

    def duplicate_variant(self, name: str, new: str | None = None) -> str:
        new = self.bench.duplicate_variant(name, new)
        self._sync_variants()
        self.refresh_estimate()
        return new

    def set_grid(self, **grid: Any) -> None:
        """``models=[…]``, ``inputs=N`` (sample size), ``repeats=``, ``max_tokens=``, ``adaptive=``."""
        self.bench.set_grid(**grid)
        self._sync_grid()
        self.refresh_estimate()

    def refresh_estimate(self) -> Quote:
        """Recompute the estimate now (typing schedules this :data:`DEBOUNCE_S` after the last keystroke)."""
        with self._timer_lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        self.quote = self.bench.quote()
        self._show_quote()
        return self.quote

    def run(self, *, progress: Any = None) -> CompareResult:
        """Run the grid now (blocking) and return its :class:`CompareResult`; the widget's Stop stops it.
        ``progress``: compare()'s (default: the widget's bar when the widget is shown, else a tqdm bar)."""
        if progress is None:
            progress = self._progress if self._widget is not None else True
        return self._run_grid(progress, self._claim())

    def start(self) -> threading.Thread:
        """Run in a background thread (what the Run button does: the kernel stays free for Stop); the result
        is ``wait()``'s, or ``.result``; a failure's message is ``.error``."""
        stop = self._claim()

        def work() -> None:
            with contextlib.suppress(Exception):  # shown in the status line (self.error)
                self._run_grid(self._progress, stop)

        self._thread = threading.Thread(target=work, name=f"llmcost-workbench-{self.name}", daemon=True)
        self._thread.start()
        return self._thread

    def _claim(self) -> threading.Event:
        with self._timer_lock:
            if self._busy:
                raise RuntimeError(f"workbench {self.name} is running already: stop() it or wait() for it")
            self._busy, self._stop, self.error = True, threading.Event(), None
            self.progress, self.progress_counts = (0, 0, Decimal(0)), (0, 0)
        self._set_running(True)
        return self._stop

    def _run_grid(self, progress: Any, stop: threading.Event) -> CompareResult:
        started = perf_counter()
        try:
            result = self.bench.run(progress=progress, stop=stop)
            self.timings["run"] = perf_counter() - started
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self._busy = False
            self._set_running(False)
            self._show_status()
        self.result, self._results_html = result, None
        started = perf_counter()
        self._show_results()
        self.timings["results"] = perf_counter() - started
        return result

    def stop(self) -> None:
        """Stop the running grid: no new call is sent, calls in flight are cancelled, what finished is
        kept."""
        if self._stop is not None:
            self._stop.set()

    def wait(self, timeout: float | None = None) -> CompareResult | None:
        """Wait for a run started with :meth:`start` (or the Run button); the last result."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.result

    def compare_runs(self, a: int, b: int) -> RunComparison:
        """Runs ``a`` and ``b`` side by side: each cell's success and cost in both, and the variants' diff."""
        return self.bench.compare_runs(a, b)

    # -- the widget ---------------------------------------------------------------------------------------
    def widget(self) -> Any:
        import ipywidgets as w

        if self._widget is not None:
            return self._widget
        bench = self.bench
        self._header = w.HTML()
        self._editors = w.VBox()
        self._new_name = w.Text(placeholder="new variant name", layout=w.Layout(width="200px"))
        add = w.Button(description="add variant", icon="plus", layout=w.Layout(width="auto"))
        add.on_click(lambda _: self._add_variant())
        self._models = {m: w.Checkbox(value=m in bench.grid.models, description=m, indent=False,
                                      layout=w.Layout(width="auto")) for m in bench.models}
        n = len(bench.items)
        self._inputs = w.BoundedIntText(value=bench.grid.inputs, min=1, max=n,
                                        description=f"inputs (of {n})", layout=w.Layout(width="170px"),
                                        style={"description_width": "initial"})
        self._repeats = w.BoundedIntText(value=bench.grid.repeats, min=1, max=1000, description="repeats",
                                         layout=w.Layout(width="150px"))
        self._max_tokens = w.BoundedIntText(value=bench.grid.max_tokens, min=1, max=1_000_000,
                                            description="max_tokens", layout=w.Layout(width="180px"))
        self._adaptive = w.Checkbox(value=bench.grid.adaptive, indent=False, layout=w.Layout(width="auto"),
                                    description="adaptive (race: stop losing cells)")
        grid = (*self._models.values(), self._inputs, self._repeats, self._max_tokens, self._adaptive)
        for control in grid:
            control.observe(self._grid_changed, names="value")
        self._estimate = w.HTML()
        self._run = w.Button(description="Run", button_style="primary", icon="play")
        self._stop_button = w.Button(description="Stop", icon="stop", disabled=True)
        self._run.on_click(lambda _: self.start())
        self._stop_button.on_click(lambda _: self.stop())
        self._bar = w.IntProgress(value=0, min=0, max=1, layout=w.Layout(width="240px"))
        self._status = w.HTML()
        self._results = w.VBox([w.HTML("<i>Run the grid to see its results here.</i>")])
        self._history = w.HTML(history_html(bench.runs))
        self._pick_a = w.Dropdown(description="run", layout=w.Layout(width="140px"))
        self._pick_b = w.Dropdown(description="vs run", layout=w.Layout(width="160px"))
        self._comparison = w.HTML("<i>Two runs are needed.</i>")
        for pick in (self._pick_a, self._pick_b):
            pick.observe(lambda _: self._show_comparison(), names="value")
        tabs = w.Tab(children=[self._results, self._history,
                               w.VBox([w.HBox([self._pick_a, self._pick_b]), self._comparison])],
                     titles=("Results", "History", "Compare runs"))
        self._widget = w.VBox([
            self._header,
            w.HTML("<b>Variants</b> <small>(a template over the inputs' fields, or chat messages as "
                   "JSON)</small>"),
            self._editors,
            w.HBox([self._new_name, add]),
            w.HTML("<b>Grid</b>"),
            w.HBox(list(self._models.values()), layout=w.Layout(flex_flow="row wrap")),
            w.HBox([self._inputs, self._repeats, self._max_tokens, self._adaptive]),
            self._estimate,
            w.HBox([self._run, self._stop_button, self._bar, self._status]),
            tabs,
        ], layout=w.Layout(border="1px solid #e0e0e0", padding="6px"))
        self._sync_variants()
        self._show_quote()
        self._show_status()
        self._show_results()
        return self._widget

    def _editor(self, name: str) -> tuple[Any, Any, Any]:
        import ipywidgets as w

        value = self.bench.variants[name]
        text = w.Textarea(value=value, continuous_update=True, rows=min(12, max(3, value.count("\n") + 2)),
                          layout=w.Layout(width="98%"))
        flag = w.HTML()
        duplicate = w.Button(description="duplicate", icon="copy", layout=w.Layout(width="auto"))
        remove = w.Button(description="remove", icon="trash", layout=w.Layout(width="auto"))
        duplicate.on_click(lambda _: self.duplicate_variant(name))
        remove.on_click(lambda _: self.remove_variant(name))
        text.observe(lambda change: self._typed(name, change["new"]), names="value")
        head = w.HBox([w.HTML(f"<b>{escape(name)}</b>", layout=w.Layout(width="160px")), duplicate, remove])
        return w.VBox([head, text, flag]), text, flag

    def _typed(self, name: str, text: str) -> None:
        """A keystroke in a variant: its field check at once, the estimate after the debounce."""
        if self._syncing or name not in self.bench.variants:
            return
        self.bench.set_variant(name, text)
        self._show_flag(name)
        self._schedule_estimate()

    def _schedule_estimate(self) -> None:
        with self._timer_lock:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(DEBOUNCE_S, self._debounced)
            self._timer.daemon = True
            self._timer.start()

    def _debounced(self) -> None:
        with self._timer_lock:
            self._timer = None
        self.quote = self.bench.quote()
        self._show_quote()

    def _add_variant(self) -> None:
        name = self._new_name.value.strip()
        if not name:
            k = len(self.bench.variants) + 1
            while f"v{k}" in self.bench.variants:
                k += 1
            name = f"v{k}"
        if name in self.bench.variants:
            self._status.value = f'<span style="color:{_RED}">a variant named {escape(name)} exists</span>'
            return
        field = next((f for f in self.bench.fields if f not in ("id", "expected")), None)
        self.set_variant(name, "{" + field + "}" if field else "")
        self._new_name.value = ""

    def _grid_changed(self, _: Any) -> None:
        if self._syncing:
            return
        try:
            self.bench.set_grid(models=[m for m, box in self._models.items() if box.value],
                                inputs=self._inputs.value, repeats=self._repeats.value,
                                max_tokens=self._max_tokens.value, adaptive=self._adaptive.value)
        except ValueError as exc:
            self._estimate.value = f'<span style="color:{_RED}">{escape(str(exc))}</span>'
            return
        self._schedule_estimate()

    # -- keeping the widgets in step with the model ------------------------------------------------------
    def _sync_variants(self) -> None:
        if self._widget is None:
            return
        texts = self.bench.variants
        for name in [n for n in self._rows if n not in texts]:
            del self._rows[name]
        self._syncing = True
        try:
            for name, text in texts.items():
                if name not in self._rows:
                    self._rows[name] = self._editor(name)
                elif self._rows[name][1].value != text:
                    self._rows[name][1].value = text
                self._show_flag(name)
        finally:
            self._syncing = False
        self._editors.children = [self._rows[name][0] for name in texts]

    def _sync_grid(self) -> None:
        if self._widget is None:
            return
        grid = self.bench.grid
        self._syncing = True
        try:
            for model, box in self._models.items():
                box.value = model in grid.models
            self._inputs.value, self._repeats.value = grid.inputs, grid.repeats
            self._max_tokens.value, self._adaptive.value = grid.max_tokens, grid.adaptive
        finally:
            self._syncing = False

    def _show_flag(self, name: str) -> None:
        if name not in self._rows:
            return
        check = self.bench.check(name)
        problem = check.problem(self.bench.fields)
        if problem is not None:
            html = f'<span style="color:{_RED}">⚠ {escape(problem.split(": ", 1)[1])}</span>'
        else:
            kind = "template" if isinstance(check.template, str) else f"{len(check.template)} chat messages"
            used = ", ".join("{" + f + "}" for f in check.fields) or "no field"
            html = f'<span style="color:{_GREY}"><small>{kind} · uses {escape(used)}</small></span>'
        self._rows[name][2].value = html

    def _show_quote(self) -> None:
        if self._widget is None:
            return
        quote = self.quote
        color = _RED if not quote.runnable else "inherit"
        self._estimate.value = (f'<div class="llmcost-estimate {NO_MATH}" style="color:{color}">'
                                f"<b>{escape(quote.label())}</b></div>")
        self._run.disabled = not quote.runnable or self.running
        self._header.value = self._header_html()

    def _set_running(self, running: bool) -> None:
        if self._widget is None:
            return
        self._run.disabled = running or not self.quote.runnable
        self._stop_button.disabled = not running

    def _progress(self, done: int, total: int, spent: Decimal, *, unpriced: int = 0, estimated: int = 0
                  ) -> None:
        self.progress, self.progress_counts = (done, total, spent), (unpriced, estimated)
        self._show_status()

    def _show_status(self) -> None:
        if self._widget is None:
            return
        done, total, spent = self.progress
        self._bar.max, self._bar.value = max(total, 1), done
        if self.error is not None:
            self._status.value = f'<span style="color:{_RED}">{escape(self.error)}</span>'
        elif total:
            unpriced, estimated = self.progress_counts
            cost = format_total(spent, unpriced=unpriced, estimated=estimated)
            self._status.value = (f'<span class="{NO_MATH}">{done:,} / {total:,} calls · '
                                  f"{escape(cost)}</span>")

    def _show_results(self) -> None:
        if self._widget is not None:
            import ipywidgets as w

            from .explorer import Explorer

            self._history.value = history_html(self.bench.runs)
            if self.result is not None:
                headline = escape(self.bench.runs[-1].headline())
                explorer = Explorer(self.result)
                self._results.children = [w.HTML(f'<b class="{NO_MATH}">{headline}</b>'), explorer.widget()]
                # the fallback shows the same table and chart: rendered once (a chart takes ~0.3 s)
                self._results_html = (f'<div class="llmcost-explorer">{explorer._table_box.value}'
                                      f"{explorer._chart_box.value}</div>")
            options = [(f"run {r.run}", r.run) for r in self.bench.runs]
            self._syncing = True
            try:
                self._pick_a.options, self._pick_b.options = options, options
                if len(options) >= 2:
                    self._pick_a.value, self._pick_b.value = options[-2][1], options[-1][1]
            finally:
                self._syncing = False
            self._show_comparison()
            self._show_quote()
        if self._displayed:
            from IPython.display import update_display

            update_display(self._bundle(), raw=True, display_id=self._display_id)

    def _show_comparison(self) -> None:
        if self._widget is None or self._syncing:
            return
        a, b = self._pick_a.value, self._pick_b.value
        if a is None or b is None or a == b:
            self._comparison.value = "<i>Pick two different runs.</i>"
            return
        self._comparison.value = self.compare_runs(a, b)._repr_html_()

    # -- display ------------------------------------------------------------------------------------------
    def _header_html(self) -> str:
        budget = f" · budget {format_usd(self.bench.budget)} per run" if self.bench.budget is not None else ""
        runs = len(self.bench.runs)
        return (f'<div class="{NO_MATH}"><b>Workbench {escape(self.name)}</b> · '
                f"{len(self.bench.items):,} inputs{budget} · {runs} run{'s' if runs != 1 else ''}</div>")

    def _repr_html_(self) -> str:
        """The kernel-free view: variants, grid, estimate, the last results (table and chart) and history."""
        from .explorer import Explorer

        variants = "".join(f"<div><b>{escape(n)}</b><pre style=\"margin:0 0 4px 0\">{escape(t)}</pre></div>"
                           for n, t in self.variants.items())
        results = ""
        if self.result is not None:
            if self._results_html is None:
                self._results_html = Explorer(self.result)._repr_html_()
            results = (f"<h4>Last run</h4><div><b>{escape(self.bench.runs[-1].headline())}</b></div>"
                       f"{self._results_html}")
        return (f'<div class="llmcost-workbench {NO_MATH}">{self._header_html()}<h4>Variants</h4>{variants}'
                f"<div>grid: {escape(self.bench.grid.describe())}</div>"
                f"<div>estimate: {escape(self.quote.label())}</div>{results}"
                f"<h4>History</h4>{history_html(self.bench.runs)}</div>")

    def __repr__(self) -> str:
        lines = [f"workbench {self.name}: {len(self.variants)} variants ({', '.join(self.variants)}); "
                 f"grid {self.bench.grid.describe()}", f"estimate: {self.quote.label()}"]
        if self.result is not None:
            lines.append("last run: " + self.result.summary())
        if self.bench.runs:
            lines += ["history:", history_text(self.bench.runs)]
        return "\n".join(lines)

    def _bundle(self) -> dict[str, Any]:
        from .display import widget_bundle

        return widget_bundle(self.widget, self._repr_html_(), repr(self))

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return self._bundle()

    def _ipython_display_(self) -> None:
        """Shown with a display id, so each run updates this output's fallbacks too (see the module doc)."""
        from IPython.display import display

        display(self._bundle(), raw=True, display_id=self._display_id)
        self._displayed = True


def workbench(
    inputs: Any,
    models: Sequence[str],
    *,
    client: Any = None,
    scorer: Any = None,
    budget: Decimal | str | float | None = None,
    variants: Mapping[str, Any] | None = None,
    name: str | None = None,
    sample: int | None = None,
    seed: int = 0,
    repeats: int = 1,
    max_tokens: int = 256,
    adaptive: bool = False,
    concurrency: int = 16,
    tags: Mapping[str, Any] | None = None,
    ledger: Ledger | str | Path | None = None,
) -> Workbench:
    """A prompt workbench over ``inputs`` (dicts or a DataFrame) and candidate ``models``; see the module
    docstring. ``budget``: the most one run may cost (its worst case is checked before Run is allowed);
    ``sample``: how many inputs a run uses at first (all by default); ``name``: the workbench's tag
    (``workbench=<name>``; runs are experiments ``<name>/run-<n>``). ``client``, ``scorer``, ``repeats``,
    ``max_tokens``, ``concurrency``, ``tags`` and ``ledger`` are :func:`~llmcost_nb.compare`'s.

    >>> wb = workbench(rows, models=["gpt-4.1-mini"], client=openai.OpenAI(), scorer="exact",
    ...                budget="0.50", variants={"terse": "Q: {question}"})             # doctest: +SKIP
    """
    return Workbench(Bench(inputs, models, client=client, scorer=scorer, budget=budget, variants=variants,
                           name=name, sample=sample, seed=seed, repeats=repeats, max_tokens=max_tokens,
                           adaptive=adaptive, concurrency=concurrency, tags=tags, ledger=ledger))
