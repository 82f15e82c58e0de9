"""The grid runner behind :func:`llmcost_nb.compare`: one run on one event loop, launching calls under the
concurrency and budget limits, each inside its own tagged scope, retrying transient errors, scoring, and
writing the score back onto the candidate's ledger row.

An adaptive run (a :class:`~llmcost_nb.experiments.stats.Race`) runs the inputs in rounds, in one shuffled
order shared by every cell, and after each round stops feeding the cells the race rules out: their calls of
the later inputs are never launched (``raced_out``), and the calls of the last input each ran are tagged
``stopped`` with the reason, for :func:`~llmcost_nb.experiments.result.from_ledger`."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
import random
import threading
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from time import perf_counter
from typing import TYPE_CHECKING, Any

from ..core.call import PICO, Call
from ..tracking.scope import Scope
from .clients import Answer, Router, is_transient, provider_of
from .plan import Cell
from .scorers import LLMJudge

if TYPE_CHECKING:
    from ..ledger.sqlite import Ledger
    from .stats import Race, RaceStop

__all__ = ["Run"]

_SCORE_BATCH = 64  # scored calls whose score tags are written to the ledger in one commit


class _CallScope(Scope):
    """One call's tags, inside the experiment's scope: its calls are stored under the experiment's scope id
    (a row in ``scopes`` per experiment, not per call) and collected by the experiment's scope too."""

    def open(self) -> _CallScope:
        super().open()
        if self.parent is not None:
            self.id = self.parent.id
        return self

    def store_scope_row(self, ledger: Ledger) -> None:
        if self.parent is not None:
            self.parent.store_scope_row(ledger)
        else:
            super().store_scope_row(ledger)


class Run:
    """One grid run on one event loop: launches cells under the concurrency and budget limits."""

    def __init__(
        self,
        name: str,
        cells: list[Cell],
        router: Router,
        judge_router: Router | None,
        scorer: Any,
        *,
        threshold: float,
        concurrency: int,
        budget: Decimal | None,
        retries: int,
        retry_delay: float,
        ledger: Ledger,
        tags: dict[str, str],
        race: Race | None = None,
    ) -> None:
        self.name, self.cells, self.router, self.judge_router, self.scorer = (
            name,
            cells,
            router,
            judge_router,
            scorer,
        )
        self.threshold, self.concurrency, self.budget = threshold, concurrency, budget
        self.retries, self.retry_delay, self.ledger, self.tags = retries, retry_delay, ledger, tags
        self.rows: dict[int, dict[str, Any]] = {}
        self.skipped: list[Cell] = []
        self.spent = Decimal(0)  # actual cost of finished cells (judge included)
        self.unpriced = 0  # billed calls of finished cells with no known price (not in spent)
        self.estimated = 0  # calls of finished cells whose tokens were estimated
        self.reserved = Decimal(0)  # worst case of the cells in flight
        self.done = 0
        self.stop_reason: str | None = None
        self.on_progress: Callable[[], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._scores: list[tuple[Call, dict[str, str]]] = []  # score tags not yet written to the ledger
        self._cell_of: dict[asyncio.Task[None], Cell] = {}
        self.race = race
        self.raced_out: list[Cell] = []  # calls a race ruled out: never launched
        self.saved = Decimal(0)  # their estimated cost: each stopped cell's mean cost so far × inputs left
        self.order: list[tuple[str, int]] = []  # an adaptive run's (input_id, repeat) order, once shuffled

    def stop(self, reason: str) -> None:
        """Stop launching and cancel the calls in flight; safe from any thread."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._stop_now, reason)
                return
            except RuntimeError:  # the loop closed meanwhile
                pass
        self.stop_reason = self.stop_reason or reason

    def _stop_now(self, reason: str) -> None:
        self.stop_reason = self.stop_reason or reason
        for task in list(self._in_flight):
            task.cancel()

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="llmcost-compare")
        self._slots = asyncio.Semaphore(self.concurrency)
        self._finished = asyncio.Event()
        try:
            with _older_objects_frozen(), Scope(
                tags={**self.tags, "experiment": self.name},
                ledger=self.ledger,
                kind="compare",
                name=self.name,
            ) as experiment:
                try:  # every cell's tag set stored up front, in one commit: each call is then one statement
                    outer = experiment.tags
                    self.ledger.store_tagsets(
                        {**outer, **{str(k): str(v) for k, v in cell.tags.items()}} for cell in self.cells)
                except Exception:  # stored with each call instead
                    pass
                try:
                    await self._launch_all()
                except asyncio.CancelledError:  # our own caller was cancelled: finish cleanly, then go
                    self._stop_now("cancelled")
                    if self._in_flight:
                        await asyncio.wait(self._in_flight)
                    raise
        finally:
            self._write_scores()
            self.ledger.flush()  # the calls' rows committed now: their ids are known
            for row in self.rows.values():
                row["call_ids"] = [c.id for c in row["call_ids"]]
            self._pool.shutdown(wait=False)
            for router in {id(r): r for r in (self.router, self.judge_router) if r is not None}.values():
                await router.aclose()

    def _write_scores(self) -> None:
        """Tag scored calls with their score, many in one commit (the calls' own rows are written as each
        answer arrives; a score is only derived from it)."""
        scores, self._scores = self._scores, []
        if not scores:
            return
        try:
            self.ledger.retag(scores)
        except Exception as exc:  # the grid goes on: its result holds the scores
            from ..core.warn import warn_once

            warn_once(f"compare-scores:{type(exc).__name__}",
                      f"could not write scores to the ledger ({exc}); experiment() will not see them")

    def _over_budget(self, cell: Cell) -> bool:
        return self.budget is not None and self.spent + self.reserved + (cell.max_cost or 0) > self.budget

    async def _launch_all(self) -> None:
        if self.race is None:
            await self._launch(self.cells)
        else:
            await self._race(self.race)
        self.skipped.sort(key=lambda c: c.index)

    async def _race(self, race: Race) -> None:
        """Paired rounds: every live cell runs the round's inputs; then the race stops the cells that cannot
        win. The order is a shuffle seeded by the experiment's name, so a run can be repeated exactly."""
        by_unit: dict[tuple[str, int], list[Cell]] = {}
        for cell in self.cells:
            by_unit.setdefault((cell.input_id, cell.repeat), []).append(cell)
        self.order = list(by_unit)
        random.Random(zlib.crc32(self.name.encode())).shuffle(self.order)
        repeats = len({repeat for _, repeat in self.order})
        position = 0
        while position < len(self.order):
            chunk = self.order[position : position + race.round_size(self.concurrency)]
            live = set(race.live)
            if not await self._launch([c for u in chunk for c in by_unit[u] if (c.variant, c.model) in live]):
                later = self.order[position + len(chunk) :]
                self.skipped.extend(c for u in later for c in by_unit[u] if (c.variant, c.model) in live)
                return
            for unit in chunk:
                for cell in by_unit[unit]:
                    if (cell.variant, cell.model) in live:
                        row = self.rows[cell.index]
                        race.observe((cell.variant, cell.model), success=row["success"], cost=row["cost"],
                                     score=row["score"])
            position += len(chunk)
            input_id, repeat = chunk[-1]
            stops = race.decide(input_id if repeats == 1 else f"{input_id} #{repeat}")
            if stops:
                self._stopped(stops, [by_unit[u] for u in self.order[:position]],
                              [by_unit[u] for u in self.order[position:]])

    def _stopped(self, stops: list[RaceStop], ran: list[list[Cell]], left: list[list[Cell]]) -> None:
        """Note what each stopped cell will not run and what that saves, and tag its last calls."""
        self._write_scores()  # first: a pending score tag set would overwrite the stop's
        retag = []
        for stop in stops:
            mine = [c for cells in ran for c in cells if (c.variant, c.model) == stop.cell]
            rows = [self.rows[c.index] for c in mine]
            spent = sum((r["cost"] + r["judge_cost"] for r in rows), Decimal(0))
            not_run = [c for cells in left for c in cells if (c.variant, c.model) == stop.cell]
            self.raced_out.extend(not_run)
            self.saved += (spent * len(not_run) / len(rows)).quantize(PICO)
            retag += [(call, {**call.tags, "stopped": stop.message()}) for call in rows[-1]["call_ids"]
                      if call.recorded]
        if self.on_progress is not None:
            self.on_progress()
        try:
            self.ledger.retag(retag)
        except Exception as exc:  # the race goes on: its result holds the stops
            from ..core.warn import warn_once

            warn_once(f"compare-stops:{type(exc).__name__}",
                      f"could not write a race's stops to the ledger ({exc}); experiment() will not see them")

    async def _launch(self, cells: list[Cell]) -> bool:
        """Launch ``cells`` under the limits and wait for them; False when the run was stopped meanwhile
        (budget, interrupt) and the rest of ``cells`` skipped."""
        for position, cell in enumerate(cells):
            await self._slots.acquire()
            while self.stop_reason is None and self._over_budget(cell) and self._in_flight:
                self._finished.clear()  # wait for a call in flight: its actual cost frees its reservation
                await self._finished.wait()
            if self.stop_reason is None and self._over_budget(cell):
                self.stop_reason = "budget"
            if self.stop_reason is not None:
                self._slots.release()
                self.skipped.extend(cells[position:])
                break
            self.reserved += cell.max_cost or 0
            task = asyncio.create_task(self._one(cell))
            self._cell_of[task] = cell
            self._in_flight.add(task)
            task.add_done_callback(self._task_done)
        if self._in_flight:
            await asyncio.wait(self._in_flight)
        return self.stop_reason is None

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        cell = self._cell_of.pop(task)
        if task.cancelled() and cell.index not in self.rows:  # cancelled before it sent anything
            self.reserved -= cell.max_cost or 0
            self.skipped.append(cell)
        self._slots.release()
        self._finished.set()

    async def _in_thread(self, fn: Callable[[], Any]) -> Any:
        future = self._loop.run_in_executor(self._pool, contextvars.copy_context().run, fn)  # type: ignore[union-attr]
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            # A thread cannot be stopped: its request goes on and is billed, so wait and keep its answer.
            await asyncio.wait([future])
            if future.cancelled() or future.exception() is not None:
                raise
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
            return future.result()

    async def _send(self, router: Router, model: str, request: dict[str, Any]) -> Answer:
        mode, send = router.plan(model, request)
        for attempt in range(self.retries + 1):
            try:
                return await (send() if mode == "async" else self._in_thread(send))
            except Exception as exc:
                if attempt == self.retries or not is_transient(exc) or self.stop_reason is not None:
                    raise
                await asyncio.sleep(self.retry_delay * 2**attempt)
        raise AssertionError("unreachable")

    async def _one(self, cell: Cell) -> None:
        row: dict[str, Any] = {
            "experiment": self.name,
            "variant": cell.variant,
            "model": cell.model,
            "input_id": cell.input_id,
            "repeat": cell.repeat,
            "status": "ok",
            "output": None,
            "expected": cell.item.get("expected"),
            "score": None,
            "error": None,
        }
        answer = None
        with _CallScope(tags=cell.tags) as scope:
            t0 = perf_counter()
            try:
                answer = await self._send(self.router, cell.model, cell.request)
                row["output"] = answer.text
            except asyncio.CancelledError:
                row["status"], row["error"] = "cancelled", "cancelled before an answer arrived"
            except Exception as exc:
                row["status"], row["error"] = "error", f"{type(exc).__name__}: {exc}"[:300]
            if not scope.records:  # a user function, or an error before any request: record it by hand
                _record_manual(cell, answer, row, (perf_counter() - t0) * 1000)
        calls = list(scope.records)
        judge_calls: list[Call] = []
        if answer is not None and self.scorer is not None:
            if isinstance(self.scorer, LLMJudge):
                if self.stop_reason is None:
                    judge_calls = await self._judge(cell, answer.text, row)
            else:
                try:
                    value = self.scorer(answer.text, cell.item)
                    row["score"] = None if value is None else float(value)
                except Exception as exc:
                    row["error"] = f"scorer: {type(exc).__name__}: {exc}"[:300]
        if row["score"] is not None:
            self._scores += [(call, {**call.tags, "score": f"{row['score']:g}"}) for call in calls
                             if call.billed and call.status == "ok" and call.recorded]
            if len(self._scores) >= _SCORE_BATCH:
                self._write_scores()
        self._finish(cell, row, calls, judge_calls)

    async def _judge(self, cell: Cell, output: str, row: dict[str, Any]) -> list[Call]:
        judge: LLMJudge = self.scorer
        with _CallScope(tags={**cell.tags, "role": "judge"}) as scope:
            try:
                reply = await self._send(self.judge_router, judge.model, judge.request(output, cell.item))  # type: ignore[arg-type]
                row["score"] = judge.parse(reply.text)
            except asyncio.CancelledError:
                row["error"] = "judge cancelled"
            except Exception as exc:
                row["error"] = f"judge: {type(exc).__name__}: {exc}"[:300]
        return list(scope.records)

    def _finish(self, cell: Cell, row: dict[str, Any], calls: list[Call], judge_calls: list[Call]) -> None:
        row.update(_sums(calls))
        row["judge_cost"] = sum((c.cost for c in judge_calls if c.cost is not None), Decimal(0))
        row["success"] = row["status"] == "ok" and (
            self.scorer is None or (row["score"] is not None and row["score"] >= self.threshold)
        )
        row["call_ids"] = calls + judge_calls  # their ids once the grid is over (see run): asked for now,
        # each would commit the calls taped so far, one transaction per cell instead of a few per second
        self.rows[cell.index] = row
        self.reserved -= cell.max_cost or 0
        self.spent += row["cost"] + row["judge_cost"]
        self.unpriced += row["unpriced"]
        self.estimated += row["estimated"]
        self.done += 1
        if self.on_progress is not None:
            self.on_progress()


_freezes = 0  # grids running with the objects older than them frozen (see _older_objects_frozen)
_freeze_lock = threading.Lock()
# What the permanent generation holds before anybody freezes anything: 0, except on some Python 3.12 releases,
# which start with a few hundred static objects there (3.12.1: 375). More than this: a freeze of the user's.
_UNFROZEN_COUNT = gc.get_freeze_count()


@contextlib.contextmanager
def _older_objects_frozen() -> Iterator[None]:
    """While a grid runs, keep the objects that existed before it out of the cycle collector's full passes.

    A request in flight lives through many young-generation collections, so a grid at concurrency 32 keeps
    promoting objects to the oldest generation, and every few hundred calls a full pass scans every object
    in the process (in bench_compare's process, 140k objects with pandas loaded: about 0.1 s each, 0.1-0.2 ms
    per call on average; a notebook kernel holds more).
    ``gc.freeze()`` leaves the older objects out of those passes (the grid's own garbage is still collected)
    and ``gc.unfreeze()`` puts them back when the last running grid ends. A freeze the user made is left as
    it is: then this does nothing."""
    global _freezes
    with _freeze_lock:
        ours = _freezes > 0 or gc.get_freeze_count() <= _UNFROZEN_COUNT
        if ours:
            if _freezes == 0:
                gc.freeze()
            _freezes += 1
    try:
        yield
    finally:
        if ours:
            with _freeze_lock:
                _freezes -= 1
                if _freezes == 0:
                    gc.unfreeze()


def _sums(calls: list[Call]) -> dict[str, Any]:
    return {
        "cost": sum((c.cost for c in calls if c.cost is not None), Decimal(0)),
        "unpriced": sum(1 for c in calls if c.billed and c.cost is None),
        "estimated": sum(1 for c in calls if c.usage_source == "estimated"),
        "input_tokens": sum(c.input_tokens for c in calls),
        "output_tokens": sum(c.output_tokens for c in calls),
        "latency_ms": round(sum(c.latency_ms or 0.0 for c in calls), 3),
        "attempts": len(calls),
    }


def _record_manual(cell: Cell, answer: Answer | None, row: dict[str, Any], latency_ms: float) -> None:
    from ..tracking.manual import record_manual, token_call

    usage = dict(answer.usage or {}) if answer is not None else {}
    call, _ = token_call(
        cell.model,
        usage.pop("input_tokens", 0),
        usage.pop("output_tokens", 0),
        provider_of(cell.model),
        usage,
        latency_ms=round(latency_ms, 3),
    )
    if row["status"] != "ok":
        call.status, call.billed, call.error = "error", False, row["error"]
    record_manual(call, None, None)
