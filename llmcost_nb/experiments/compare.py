"""A/B comparison of prompt variants and models, weighing quality against cost.

>>> result = llmcost_nb.compare({"terse": "Q: {question}\\nA:", "steps": [
...     {"role": "system", "content": "Think, then give only the answer."},
...     {"role": "user", "content": "{question}"}]}, ["gpt-4.1", "gpt-4.1-mini"], rows,
...     scorer="exact", client=openai.OpenAI(), budget="0.50")          # doctest: +SKIP
>>> result.table                                                       # doctest: +SKIP
>>> result.best(by="cost_per_success")                                 # doctest: +SKIP
>>> llmcost_nb.experiment(result.name).table   # later, from the ledger alone    # doctest: +SKIP

The grid (variants × models × inputs × repeats) runs on asyncio with bounded concurrency, in a worker thread
with its own event loop, so it works the same in a script and inside Jupyter's running loop (``await
acompare(...)`` runs it on the caller's loop instead). Before anything is sent, the whole grid's worst-case
cost is estimated (tiktoken input counts × ``max_tokens`` of output) and a grid that could pass ``budget`` is
refused. While it runs, no call is launched when what was spent plus the worst case of the calls in flight
and of the next one would pass the budget. An interrupt (Jupyter's stop button) stops launching, cancels the
calls in flight (a call already answered in a worker thread is kept) and returns what finished.

Every call is captured into the ledger tagged ``experiment``, ``variant``, ``model``, ``input_id`` and
``repeat`` (judge calls also ``role=judge``); once scored, the candidate's row gets a ``score`` tag, so
:func:`experiment` rebuilds the result from the ledger alone (without the output texts, which are not stored).

``adaptive=True`` races the cells instead of running the full grid: the inputs run in rounds, in one shuffled
order shared by every cell (paired), and after each round a cell whose confidence bound on ``by`` shows it
cannot beat another live cell is stopped (see :class:`~llmcost_nb.experiments.stats.Race` for the bound and
its assumptions). Every cell stays in ``result.table`` with its ``n`` and a ``stopped`` reason;
``result.saved`` estimates what the inputs not run would have cost. Its calls are also tagged
``race=<by>@<confidence>``, and a stopped cell's last calls ``stopped=<reason>``, so :func:`experiment`
rebuilds the race too. The budget is checked against the full grid (a race's worst case: nothing stopped).
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Any

from ..core.call import now_iso
from ..core.money import format_total, format_usd
from ..core.tags import clean_tags
from ..errors import GridOverBudget
from ..tracking import resolve_ledger
from .clients import Router
from .plan import GridEstimate, plan, usd_amount
from .result import CompareResult, RaceSummary
from .run import Run
from .scorers import LLMJudge, resolve_scorer
from .stats import Race, check_race

if TYPE_CHECKING:
    from ..ledger.sqlite import Ledger

__all__ = [
    "CompareResult",
    "GridEstimate",
    "GridOverBudget",
    "acompare",
    "compare",
    "estimate_grid",
    "experiment",
]


def estimate_grid(
    variants: Mapping[str, Any],
    models: Sequence[str],
    inputs: Any,
    *,
    scorer: Any = None,
    repeats: int = 1,
    max_tokens: int = 256,
    ledger: Ledger | str | Path | None = None,
) -> GridEstimate:
    """What :func:`compare` would cost at most, without sending anything.

    >>> estimate_grid({"A": "Q: {q}"}, ["gpt-4.1"], [{"q": "2+2?"}], max_tokens=10).max_cost  # doctest: +SKIP
    """
    scorer = resolve_scorer(scorer)
    judge = scorer if isinstance(scorer, LLMJudge) else None
    return plan(
        variants,
        models,
        inputs,
        repeats=repeats,
        max_tokens=max_tokens,
        judge=judge,
        ledger=resolve_ledger(ledger),
        name="(estimate)",
    )[1]


def _prepare(
    variants: Any,
    models: Any,
    inputs: Any,
    *,
    scorer: Any,
    client: Any,
    repeats: int,
    concurrency: int,
    budget: Any,
    tags: Mapping[str, Any] | None,
    name: str | None,
    max_tokens: int,
    threshold: float,
    retries: int,
    retry_delay: float,
    ledger: Ledger | str | Path | None,
    adaptive: bool = False,
    confidence: float = 0.95,
    by: str = "cost_per_success",
    min_inputs: int = 10,
    loop_local: bool = False,
) -> tuple[Run, GridEstimate]:
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be a positive int, got {concurrency!r}")
    if isinstance(models, str):
        raise ValueError(f"models must be a non-empty list of model names, got the string {models!r}")
    if not isinstance(adaptive, bool):
        raise TypeError(f"adaptive must be True or False, got {adaptive!r}")
    if adaptive:
        check_race(by, confidence, min_inputs)
        if by == "mean_score" and scorer is None:
            raise ValueError("by='mean_score' needs a scorer: without one, calls have no score to race on")
    tags = clean_tags(tags)
    name = (
        name or tags.pop("experiment", None) or f"ab-{now_iso()[:16].replace(':', '')}-{uuid.uuid4().hex[:6]}"
    )
    limit, scorer = usd_amount(budget, "budget"), resolve_scorer(scorer)
    judge = scorer if isinstance(scorer, LLMJudge) else None
    target = resolve_ledger(ledger)
    cells, estimate = plan(
        variants,
        list(models),
        inputs,
        repeats=repeats,
        max_tokens=max_tokens,
        judge=judge,
        ledger=target,
        name=name,
    )
    router = Router(client, loop_local=loop_local)
    router.check(list(models))
    judge_client = judge.client if judge is not None and judge.client is not None else client
    judge_router = Router(judge_client, loop_local=loop_local)
    if judge is not None:
        judge_router.check([judge.model])
    if limit is not None:
        if estimate.max_cost is None:
            raise GridOverBudget(
                f"compare refused: no price known for {', '.join(estimate.unpriced_models)}, so "
                "the grid cannot be checked against the budget. Set one with "
                "llmcost_nb.set_price(model, input_mtok=..., output_mtok=...) or drop budget=."
            )
        if estimate.max_cost > limit:
            worst = " (an adaptive grid's worst case: the full grid, no cell stopped)" if adaptive else ""
            raise GridOverBudget(
                f"compare refused: the grid could cost up to ${estimate.max_cost:.6f}{worst} "
                f"({estimate.describe()}), more than the budget of ${limit}. Nothing was sent. "
                "Lower max_tokens, use fewer inputs, variants or models, or raise the budget."
            )
    from ..tracking.manual import enable

    enable()  # the grid opens scopes of its own, and a scope does not switch capture on
    race = None
    if adaptive:
        bounds: dict[tuple[str, str], Decimal | None] = {}  # each cell's worst cost of one call
        for cell in cells:
            key, worst = (cell.variant, cell.model), cell.candidate_max_cost
            if key not in bounds or bounds[key] is not None:
                bounds[key] = None if worst is None else max(worst, bounds.get(key, worst))  # type: ignore[type-var]
        race = Race(list(bounds), estimate.inputs * estimate.repeats, by=by, confidence=confidence,
                    min_inputs=min_inputs,
                    cost_bounds={k: None if v is None else float(v) for k, v in bounds.items()})
        tags["race"] = f"{by}@{confidence:g}"
    run = Run(
        name,
        cells,
        router,
        judge_router if judge is not None else None,
        scorer,
        threshold=threshold,
        concurrency=concurrency,
        budget=limit,
        retries=retries,
        retry_delay=retry_delay,
        ledger=target,
        tags=tags,
        race=race,
    )
    return run, estimate


def _result(run: Run, estimate: GridEstimate, elapsed: float) -> CompareResult:
    rows = [run.rows[i] for i in sorted(run.rows)]
    skipped = [
        {
            "variant": c.variant,
            "model": c.model,
            "input_id": c.input_id,
            "repeat": c.repeat,
            "reason": run.stop_reason,
        }
        for c in run.skipped
    ]
    scorer = getattr(run.scorer, "__name__", type(run.scorer).__name__) if run.scorer is not None else None
    race = None
    if run.race is not None:
        race = RaceSummary(run.race.by, run.race.confidence, run.race.units,
                           {stop.cell: stop.message() for stop in run.race.stops.values()},  # type: ignore[misc]
                           tuple(run.race.cells))  # type: ignore[arg-type]
    return CompareResult.build(
        run.name,
        rows,
        skipped=skipped,
        stopped=run.stop_reason,
        estimate=estimate,
        threshold=run.threshold,
        scorer=scorer,
        elapsed_s=elapsed,
        ledger=run.ledger,
        race=race,
    )


def _progress_bar(total: int, name: str, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=name, unit="call", leave=True)


def _tick(bar: Any, run: Run) -> None:
    if bar is None:
        return
    total = len(run.cells) - len(run.raced_out)
    if bar.n == run.done and bar.total == total:
        return
    if bar.total != total:  # a race's stopped cells will not run the rest: the bar ends where the race does
        bar.total = total
        container = getattr(bar, "container", None)  # tqdm.notebook's widget keeps its own maximum
        if container is not None:
            container.children[1].max = total
    bar.update(run.done - bar.n)
    text = format_total(run.spent, unpriced=run.unpriced, estimated=run.estimated)
    if run.race is not None:
        live = f"{len(run.race.live)}/{len(run.race.cells)}"
        text += f" · live {live} cells · saved an estimated {format_usd(run.saved)}"
    bar.set_postfix_str(text, refresh=True)


class _Report:
    """``progress=callable``: ``callable(done, total, spent)`` each time calls finish (and once at the end),
    in the thread that called :func:`compare`: for a caller that draws its own progress bar. A callable that
    takes ``unpriced`` and ``estimated`` keywords gets the counts of calls ``spent`` leaves out and guesses
    too (to word it as :func:`~llmcost_nb.core.money.format_total` does)."""

    def __init__(self, report: Callable[..., None]) -> None:
        self.report, self.n, self.counts = report, -1, _takes_counts(report)

    def update(self, run: Run) -> None:
        if run.done != self.n:
            self.n = run.done
            args = (run.done, len(run.cells) - len(run.raced_out), run.spent)
            if self.counts:
                self.report(*args, unpriced=run.unpriced, estimated=run.estimated)
            else:
                self.report(*args)

    def close(self) -> None:
        pass


def _takes_counts(report: Callable[..., None]) -> bool:
    import inspect

    try:
        params = inspect.signature(report).parameters
    except (TypeError, ValueError):  # a builtin without a signature: the three positional values only
        return False
    return ("unpriced" in params and "estimated" in params) or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _bar(total: int, name: str, progress: bool | Callable[[int, int, Decimal], None]) -> Any:
    return _Report(progress) if callable(progress) else _progress_bar(total, name, bool(progress))


def _advance(bar: Any, run: Run) -> None:
    if isinstance(bar, _Report):
        bar.update(run)
    else:
        _tick(bar, run)


def compare(
    variants: Mapping[str, Any],
    models: Sequence[str],
    inputs: Any,
    *,
    scorer: Any = None,
    client: Any = None,
    repeats: int = 1,
    concurrency: int = 16,
    budget: Decimal | str | float | None = None,
    tags: Mapping[str, Any] | None = None,
    name: str | None = None,
    max_tokens: int = 256,
    threshold: float = 0.5,
    retries: int = 2,
    retry_delay: float = 0.5,
    progress: bool | Callable[[int, int, Decimal], None] = True,
    ledger: Ledger | str | Path | None = None,
    adaptive: bool = False,
    confidence: float = 0.95,
    by: str = "cost_per_success",
    min_inputs: int = 10,
    stop: threading.Event | None = None,
) -> CompareResult:
    """Run every variant on every model for every input (``repeats`` times) and return a
    :class:`CompareResult`; see the module docstring. Blocks until done, interrupted or out of budget.

    ``adaptive=True``: race the cells instead, stopping each one whose bound on ``by`` (a metric
    ``best()`` takes, latency percentiles aside) shows at ``confidence`` that it cannot win, never before
    ``min_inputs`` inputs; ``adaptive=False`` (the default) runs the full grid.
    ``progress``: a progress bar with the running cost (True), none (False), or a function
    ``progress(done, total, spent)`` called as calls finish (with ``unpriced=``, ``estimated=`` counts when
    it takes them). ``stop``: an event another thread may set to stop
    the grid as an interrupt does (no new call launched, calls in flight cancelled, what finished returned,
    ``.stopped == "interrupted"``).

    >>> compare({"A": "Q: {q}"}, ["gpt-4.1-mini"], [{"q": "2+2?", "expected": "4"}], scorer="exact",
    ...         client=openai.OpenAI(), budget="0.01").table                          # doctest: +SKIP
    """
    run, estimate = _prepare(
        variants,
        models,
        inputs,
        scorer=scorer,
        client=client,
        repeats=repeats,
        concurrency=concurrency,
        budget=budget,
        tags=tags,
        name=name,
        max_tokens=max_tokens,
        threshold=threshold,
        retries=retries,
        retry_delay=retry_delay,
        ledger=ledger,
        adaptive=adaptive,
        confidence=confidence,
        by=by,
        min_inputs=min_inputs,
        loop_local=True,
    )
    context, outcome, finished = contextvars.copy_context(), {}, threading.Event()

    def work() -> None:
        loop = asyncio.new_event_loop()
        try:
            context.run(loop.run_until_complete, run.run())
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            loop.close()
            finished.set()

    started = perf_counter()
    worker = threading.Thread(target=work, name=f"llmcost-compare-{run.name}", daemon=True)
    bar = _bar(len(run.cells), run.name, progress)
    worker.start()
    try:
        # Wait on an Event, not Thread.join: a KeyboardInterrupt inside join() can leave the thread marked
        # stopped while it still runs (Python < 3.13), and we would return before the grid has wound down.
        while not finished.is_set():
            try:
                finished.wait(0.1)
                if stop is not None and stop.is_set():
                    run.stop("interrupted")
                _advance(bar, run)
            except KeyboardInterrupt:
                run.stop("interrupted")
    finally:
        if bar is not None:
            _advance(bar, run)
            bar.close()
    if "error" in outcome:
        raise outcome["error"]
    return _result(run, estimate, perf_counter() - started)


async def acompare(
    variants: Mapping[str, Any], models: Sequence[str], inputs: Any, **options: Any
) -> CompareResult:
    """:func:`compare` on the caller's event loop: ``result = await acompare(...)`` (same options)."""
    progress = options.pop("progress", True)
    run, estimate = _prepare(variants, models, inputs, **{**_DEFAULTS, **options})
    started = perf_counter()
    bar = _progress_bar(len(run.cells), run.name, progress)
    run.on_progress = lambda: _tick(bar, run)
    try:
        await run.run()
    finally:
        if bar is not None:
            bar.close()
    return _result(run, estimate, perf_counter() - started)


_DEFAULTS: dict[str, Any] = {
    "scorer": None,
    "client": None,
    "repeats": 1,
    "concurrency": 16,
    "budget": None,
    "tags": None,
    "name": None,
    "max_tokens": 256,
    "threshold": 0.5,
    "retries": 2,
    "retry_delay": 0.5,
    "ledger": None,
    "adaptive": False,
    "confidence": 0.95,
    "by": "cost_per_success",
    "min_inputs": 10,
}


def experiment(
    name: str, *, ledger: Ledger | str | Path | None = None, threshold: float = 0.5
) -> CompareResult:
    """Rebuild a comparison from the ledger alone: every call tagged ``experiment=name``.

    >>> llmcost_nb.experiment("prompt-v2-vs-v1").table       # doctest: +SKIP
    """
    from .result import from_ledger

    return from_ledger(name, resolve_ledger(ledger), threshold)


# llmcost_nb.compare.estimate_grid(...), llmcost_nb.compare.GridOverBudget, ...
compare.estimate_grid, compare.GridEstimate = estimate_grid, GridEstimate
compare.GridOverBudget = GridOverBudget
compare.experiment, compare.acompare, compare.CompareResult = experiment, acompare, CompareResult
