"""llmcost_nb — see what every LLM call costs, where experiments happen: in the notebook.

>>> import llmcost_nb
>>> with llmcost_nb.track(tags={"variant": "A"}) as t:          # doctest: +SKIP
...     client.chat.completions.create(model="gpt-4.1", messages=msgs)
>>> t.total_cost                                                 # doctest: +SKIP
Decimal('0.0142')

In Jupyter: ``%load_ext llmcost_nb`` then ``%%llmcost --tag variant=A`` on a cell.
"""

from .core.call import Call
from .core.warn import LlmcostWarning
from .ledger.sqlite import Ledger, LedgerError
from .tracking.manual import disable, enable, log, log_many, record, set_price, track
from .tracking.scope import Scope, Session, get_session
from .tracking.scope import on_session_start as _on_session_start

__all__ = [
    "BudgetExceeded",
    "Call",
    "Ledger",
    "LedgerError",
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
    "set_price",
    "share",
    "sync",
    "track",
    "unload_ipython_extension",
]
__version__ = "0.1.0"


def _start_budgets(session: Session) -> None:
    """Every session enforces the budgets stored in its ledgers from its first tracked call."""
    from .budget import session_started

    session_started(session)


# Wiring (idempotent, keyed by name: ``%reload_ext llmcost_nb`` re-runs this file).
_on_session_start("budgets", _start_budgets)


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext llmcost_nb`` (see :mod:`llmcost_nb.notebook.extension`)."""
    from .notebook.extension import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: object) -> None:
    """``%unload_ext llmcost_nb``."""
    from .notebook.extension import unload_ipython_extension as unload

    unload(ipython)


def __getattr__(name: str) -> object:  # names built or imported on first use, to keep the import light
    if name == "BudgetExceeded":  # subclasses the openai and anthropic errors: built only when asked for
        from .budget import BudgetExceeded

        return BudgetExceeded
    if name == "sync":  # the PostgreSQL team sync (llmcost_nb.team)
        from .team import sync

        return sync
    if name == "reconcile":  # a callable module: llmcost_nb.reconcile(ledger, export) works either way
        from .team.reconcile import reconcile

        return reconcile
    if name == "dashboard":  # a callable module: llmcost_nb.dashboard(ledger) works either way
        from .notebook.dashboard import dashboard

        return dashboard
    if name == "replay":  # a callable module: llmcost_nb.replay("replay-only")
        from .recording import replay

        return replay
    if name == "share":  # a callable module: llmcost_nb.share(nb, out)
        from .notebook import share

        return share
    if name == "compare":  # a callable module: llmcost_nb.compare(variants, models, inputs, ...)
        from .experiments import compare

        return compare
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
