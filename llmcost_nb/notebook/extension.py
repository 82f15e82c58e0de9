"""``%load_ext llmcost_nb``: how a ``%%llmcost`` cell is tracked while still running as an ordinary cell.

A plain cell magic cannot run top-level ``await`` in ipykernel, so the ``%%llmcost ...`` line is removed by
an input transformer (the cell then runs exactly like any other: ``await``, last-expression display, native
tracebacks, interrupt) and the ``pre_run_cell`` / ``post_run_cell`` events open and close a
cell :class:`~llmcost_nb.tracking.scope.Scope` around it. The registered cell magic is only there for
``%%llmcost?`` help and ``%lsmagic``.
"""

from __future__ import annotations

import contextlib
import os
import re
import weakref
from decimal import Decimal
from typing import Any

from IPython.core.error import UsageError

from .magics import CellArgs, LlmcostMagics, parse_cell_line

__all__ = ["CellTracker", "load_ipython_extension", "unload_ipython_extension"]

_FIRST_LINE = re.compile(r"^%%llmcost(?=\s|$)(.*)$")
_trackers: weakref.WeakKeyDictionary[Any, CellTracker] = weakref.WeakKeyDictionary()


def _first_line(lines: list[str]) -> tuple[int, str] | None:
    """The index and argument text of a leading ``%%llmcost`` line (blank lines before it allowed)."""
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        match = _FIRST_LINE.match(line.rstrip("\r\n"))
        if match is None or match.group(1).strip() in ("?", "??"):
            return None
        return i, match.group(1)
    return None


class CellTracker:
    """Per-shell state: the cell scopes open now, alerts to show, and the hooks registered on the shell."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.magics = LlmcostMagics(shell, self)
        self.stack: list[tuple[Any, CellArgs, list[str]]] = []  # (scope, args, alerts) of running cells
        self.stops: dict[int, list[str]] = {}  # id(cell scope) -> budget stops in that cell
        self.installed_capture = False
        self.restore: tuple[Any, int] = (None, 0)  # the session's ledger and output default before loading
        self._remove_callbacks: list[Any] = []

    # -- the input transformer ------------------------------------------------------------------------
    def transform(self, lines: list[str]) -> list[str]:
        """Drop the ``%%llmcost`` line; a bad line becomes a cell that raises the one-line UsageError."""
        found = _first_line(lines)
        if found is None:
            return lines
        index, argline = found
        try:
            args = parse_cell_line(argline)
        except UsageError as exc:
            return [f"raise __import__('IPython.core.error', fromlist=['UsageError']).UsageError("
                    f"{str(exc)!r})\n"]
        if args.help:
            body = "".join(lines[index + 1:]) or "pass"
            return [f"get_ipython().run_cell_magic('llmcost', {argline!r}, {body!r})\n"]
        return lines[index + 1:]

    # -- events ---------------------------------------------------------------------------------------
    def pre_run_cell(self, info: Any) -> None:
        from ..tracking.manual import enable
        from ..tracking.scope import Scope

        found = _first_line((info.raw_cell or "").splitlines(keepends=True))
        if found is not None:
            try:
                args = parse_cell_line(found[1])
            except UsageError:
                return  # the transformed cell raises it
            if args.help:
                return
        elif self.magics.track_all:
            args = CellArgs()
        else:
            return
        count = self.shell.execution_count - 1 if getattr(info, "store_history", True) else None
        scope = Scope(kind="cell", tags=args.tags, name=args.name, notebook=self.notebook_path(), cell=count)
        self.stack.append((scope, args, []))
        enable()  # a tracked cell records even after llmcost_nb.disable(): a scope does not switch it on
        scope.open()
        if args.replay:  # %%llmcost --replay: recorded responses for this cell's calls
            from ..recording.replay import for_scope

            for_scope(scope, args.replay)

    def post_run_cell(self, result: Any) -> None:
        if not self.stack:
            return
        scope, args, alerts = self.stack[-1]
        scope.close()  # still on the stack: alerts its last calls raise go into its summary
        self.stack.pop()
        error = getattr(result, "error_in_exec", None)
        stops = self.stops.pop(id(scope), [])
        stopped = str(error) if getattr(error, "_llmcost_deliberate", False) else stops[-1] if stops else None
        explicit = _first_line((result.info.raw_cell or "").splitlines(keepends=True)) is not None
        quiet = args.quiet or self.magics.quiet
        if (quiet or (not explicit and not scope.records)) and not alerts and not stopped:
            return
        from .widgets import CellSummary

        summary = CellSummary.from_scope(scope, alerts=alerts, stopped=stopped)
        use_widget = self.magics.widget and getattr(self.shell, "kernel", None) is not None
        from IPython.display import display

        display(summary.mimebundle(widget=use_widget), raw=True)

    # -- budgets --------------------------------------------------------------------------------------
    def on_stop(self, stop: Exception) -> None:
        """A hard budget stopped a request: say so in the summary even if the cell caught the exception."""
        if self.stack:
            self.stops.setdefault(id(self.stack[-1][0]), []).append(str(stop))

    def on_alert(self, alert: Any) -> None:
        """Budget alerts during a tracked cell go into its summary; outside one, a visible warning."""
        if self.stack:
            self.stack[-1][2].append(alert.message)
        else:
            from ..budget import warn

            warn(alert)

    def cell_preflight(self, pending: Any, scope: Any) -> None:
        """Hard stop for ``%%llmcost --budget USD``: the cell may not spend more than USD."""
        if pending.respond_with is not None:  # served from a recording (replay): it spends nothing
            return
        for cell_scope, args, _ in reversed(self.stack):
            if args.budget is None or not _within(scope, cell_scope):
                continue
            from .. import budget

            spent = cell_scope.total_cost
            cost, _ = budget.max_request_cost(pending, cell_scope.ledger)
            if budget.exceeds(spent, cost, args.budget):
                cell = budget.Budget(args.budget, "cell", True)
                stop = budget.exceeded(cell, spent, cost or Decimal(0), pending.info.model)
                self.on_stop(stop)
                raise stop

    def notebook_path(self) -> str | None:
        """The notebook's path where the front end tells the kernel (JupyterLab, VS Code), else None."""
        ns = self.shell.user_ns
        candidates = (ns.get("__vsc_ipynb_file__"), ns.get("__session__"), os.environ.get("JPY_SESSION_NAME"))
        for value in candidates:
            if isinstance(value, str) and value.endswith(".ipynb"):
                return value
        return None


def _within(scope: Any, ancestor: Any) -> bool:
    while scope is not None:
        if scope is ancestor:
            return True
        scope = scope.parent
    return False


def load_ipython_extension(shell: Any) -> None:
    """``%load_ext llmcost_nb``: register the magics, the cell tracking and the budget hooks (idempotent)."""
    if shell in _trackers:
        return
    from .. import budget
    from ..analysis import estimate
    from ..budget import limits
    from ..tracking import capture
    from ..tracking.scope import get_session

    session = get_session()
    tracker = _trackers[shell] = CellTracker(shell)
    tracker.installed_capture = not capture.installed()
    tracker.restore = (session._ledger_arg, limits.DEFAULT_MAX_OUTPUT_TOKENS)
    shell.register_magics(tracker.magics)
    if tracker.magics not in shell.configurables:
        shell.configurables.append(tracker.magics)
    shell.input_transformers_cleanup.append(tracker.transform)
    shell.events.register("pre_run_cell", tracker.pre_run_cell)
    shell.events.register("post_run_cell", tracker.post_run_cell)
    if tracker.magics.db:
        session.use_ledger(tracker.magics.db)
    if tracker.magics.record_estimates:
        estimate.activate(session)
    budget.activate(session, start_capture=False)
    session.add_pre_send(tracker.cell_preflight, "cell budget")  # after the session's budgets
    tracker._remove_callbacks = [budget.on_alert(tracker.on_alert, session=session),
                                 budget.on_stop(tracker.on_stop, session=session)]
    capture.install()  # last: it starts a thread that preloads prices, which should not slow the rest


def unload_ipython_extension(shell: Any) -> None:
    """``%unload_ext llmcost_nb``: remove everything ``%load_ext`` added and restore the HTTP libraries."""
    tracker = _trackers.pop(shell, None)
    if tracker is None:
        return
    from .. import budget
    from ..analysis import estimate
    from ..tracking import capture
    from ..tracking.scope import get_session

    while tracker.stack:
        tracker.stack.pop()[0].close()
    if tracker.transform in shell.input_transformers_cleanup:
        shell.input_transformers_cleanup.remove(tracker.transform)
    for event, callback in (("pre_run_cell", tracker.pre_run_cell), ("post_run_cell", tracker.post_run_cell)):
        with contextlib.suppress(ValueError):  # not registered
            shell.events.unregister(event, callback)
    magics = shell.magics_manager.magics
    for kind in ("line", "cell"):
        if getattr(magics[kind].get("llmcost"), "__self__", None) is tracker.magics:
            del magics[kind]["llmcost"]
    shell.magics_manager.registry.pop(type(tracker.magics).__name__, None)
    if tracker.magics in shell.configurables:
        shell.configurables.remove(tracker.magics)
    session = get_session()
    session.remove_pre_send(tracker.cell_preflight)
    for remove in tracker._remove_callbacks:
        remove()
    budget.deactivate(session)
    estimate.deactivate(session)
    ledger_arg, max_output_tokens = tracker.restore
    budget.set_default_max_output_tokens(max_output_tokens)
    if session._ledger_arg is not ledger_arg:  # %llmcost db / %config LlmcostMagics.db switched it
        session.use_ledger(ledger_arg)
    if tracker.installed_capture:
        capture.uninstall()
