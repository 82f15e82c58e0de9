"""llmcost_nb — see what every LLM call costs, where experiments happen: in the notebook.

>>> import llmcost_nb
>>> with llmcost_nb.track(tags={"variant": "A"}) as t:          # doctest: +SKIP
...     client.chat.completions.create(model="gpt-4.1", messages=msgs)
>>> t.total_cost                                                 # doctest: +SKIP
Decimal('0.0142')

In Jupyter: ``%load_ext llmcost_nb`` then ``%%llmcost --tag variant=A`` on a cell.
"""

from typing import Any as _Any

from .core.call import Call
from .core.version import __version__ as __version__
from .errors import LedgerError, LlmcostError, LlmcostWarning
from .ledger.protocol import REPORTS as _REPORT_NAMES
from .ledger.protocol import register_backend as _register_backend
from .ledger.protocol import register_reports as _register_reports
from .ledger.sqlite import Ledger
from .tracking.manual import disable, enable, log, log_many, record, self_hosted, set_price, track
from .tracking.scope import Scope, Session, get_session
from .tracking.scope import on_session_start as _on_session_start

__all__ = [
    "BudgetExceeded",
    "Call",
    "Ledger",
    "LedgerError",
    "LlmcostError",
    "LlmcostWarning",
    "Scope",
    "Session",
    "budget",
    "compare",
    "dashboard",
    "disable",
    "enable",
    "estimate",
    "experiment",
    "export",
    "get_session",
    "load_ipython_extension",
    "log",
    "log_many",
    "reconcile",
    "record",
    "replay",
    "self_hosted",
    "set_price",
    "share",
    "sync",
    "track",
    "unload_ipython_extension",
    "workbench",
]


def _compare_view(name: str) -> object:
    """A comparison view that imports the notebook layer only when a chart is asked for."""

    def show(result: object, *args: object, **kwargs: object) -> object:
        from .notebook import compare_charts, explorer

        views = {"cost_quality": compare_charts.cost_quality, "latency": compare_charts.latency,
                 "cost_per_success": compare_charts.cost_per_success, "wins": compare_charts.wins,
                 "race": compare_charts.race, "explore": explorer.Explorer}
        return views[name](result, *args, **kwargs)

    show.__name__ = show.__qualname__ = name
    return show


# -- the composition root: wiring of the layers (idempotent: %reload_ext re-runs this file) ---------
def _open_team_ledger(dsn: str, *args: _Any, **kwargs: _Any) -> _Any:
    """``Ledger("postgresql://…")``: the team ledger (psycopg is imported only then)."""
    from .team.postgres import PostgresLedger

    return PostgresLedger(dsn, *args, **kwargs)


def _report(name: str) -> object:
    """``ledger.<name>(…)`` (summary, daily_report, …): the analysis function of that name, whose module is
    imported only when it is called."""

    def run(ledger: _Any, *args: _Any, **kwargs: _Any) -> _Any:
        from . import analysis

        return getattr(analysis, name)(ledger, *args, **kwargs)

    run.__name__ = run.__qualname__ = name
    return run


def _wire() -> None:
    """The composition root: the only place that wires a lower layer to a higher one (each target imported
    only when used). Idempotent, since ``%reload_ext llmcost_nb`` runs this file again."""
    from .experiments.views import VIEWS, register_views

    _register_backend(("postgresql://", "postgres://"), _open_team_ledger)  # Ledger("postgresql://…")
    _register_reports(**{name: _report(name) for name in _REPORT_NAMES})  # ledger.summary() …
    register_views(**{name: _compare_view(name) for name in VIEWS})  # CompareResult charts and explore()
    _on_session_start("budgets", _start_budgets)  # stored budgets apply from a session's first tracked call


def _start_budgets(session: Session) -> None:
    """Every session enforces the budgets stored in its ledgers from its first tracked call."""
    from .budget import session_started

    session_started(session)


_wire()


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext llmcost_nb`` (see :mod:`llmcost_nb.notebook.extension`)."""
    from .notebook.extension import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: object) -> None:
    """``%unload_ext llmcost_nb``."""
    from .notebook.extension import unload_ipython_extension as unload

    unload(ipython)


def __dir__() -> list[str]:
    """The public names (``__all__``, the lazily imported ones included) and what is already loaded."""
    return sorted(set(__all__) | set(globals()))


def __getattr__(name: str) -> object:  # names built or imported on first use, to keep the import light
    if name == "BudgetExceeded":  # subclasses the openai and anthropic errors: built only when asked for
        from .budget import BudgetExceeded

        return BudgetExceeded
    if name == "sync":  # the PostgreSQL team sync (llmcost_nb.team)
        from .team import sync

        return sync
    if name == "reconcile":  # llmcost_nb.reconcile(ledger, export)
        from .team.reconcile import reconcile

        return reconcile
    if name == "dashboard":  # llmcost_nb.dashboard(ledger)
        from .notebook.dashboard import dashboard

        return dashboard
    if name == "replay":  # llmcost_nb.replay("replay-only"); .status, .clear, .magic, .ReplayMiss
        from .recording.replay import replay

        return replay
    if name == "share":  # llmcost_nb.share(nb, out); .execute
        from .notebook.share import share

        return share
    if name == "compare":  # llmcost_nb.compare(variants, models, inputs); .estimate_grid, .GridOverBudget
        from .experiments.compare import compare

        return compare
    if name == "workbench":  # llmcost_nb.workbench(inputs, models, client=…): the prompt workbench widget
        from .notebook.workbench import workbench

        return workbench
    if name == "experiment":  # an A/B comparison rebuilt from the ledger
        from .experiments.compare import experiment

        return experiment
    if name == "budget":  # a subpackage: `from . import budget` here would ask this function again
        import llmcost_nb.budget as budget

        return budget
    if name == "estimate":
        from .analysis import estimate

        return estimate
    if name == "export":
        from .team import export

        return export
    if name == "content":
        from .tracking import content

        return content
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
