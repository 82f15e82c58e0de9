"""llmcost_nb — see what every LLM call costs, where experiments happen: in the notebook.

>>> import llmcost_nb
>>> with llmcost_nb.track(tags={"variant": "A"}) as t:          # doctest: +SKIP
...     client.chat.completions.create(model="gpt-4.1", messages=msgs)
>>> t.total_cost                                                 # doctest: +SKIP
Decimal('0.0142')

In Jupyter: ``%load_ext llmcost_nb`` then ``%%llmcost --tag variant=A`` on a cell.
"""

from ._api import disable, enable, log, log_many, record, set_price
from ._call import Call
from ._warnings import LlmcostWarning
from .ledger import Ledger, LedgerError
from .scope import Scope, Session, get_session, track

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


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext llmcost_nb`` (see :mod:`llmcost_nb._extension`)."""
    from ._extension import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: object) -> None:
    """``%unload_ext llmcost_nb``."""
    from ._extension import unload_ipython_extension as unload

    unload(ipython)


def __getattr__(name: str) -> object:  # names built or imported on first use, to keep the import light
    if name == "BudgetExceeded":  # subclasses the openai and anthropic errors: built only when asked for
        from .budget import _exceeded_class

        return _exceeded_class()
    if name == "sync":  # the PostgreSQL team sync (llmcost_nb.sinks)
        from .sinks import sync

        return sync
    if name == "reconcile":  # a callable module: llmcost_nb.reconcile(ledger, export) works either way
        from .reconcile import reconcile

        return reconcile
    if name == "dashboard":  # a callable module: llmcost_nb.dashboard(ledger) works either way
        from .dashboard import dashboard

        return dashboard
    if name in ("replay", "share"):  # callable modules: llmcost_nb.replay("replay-only"), .share(nb, out)
        import importlib

        return importlib.import_module(f".{name}", __name__)
    if name == "compare":  # a callable module: llmcost_nb.compare(variants, models, inputs, ...)
        import importlib

        return importlib.import_module(".compare", __name__)
    if name == "experiment":  # an A/B comparison rebuilt from the ledger
        from .compare import experiment

        return experiment
    if name in ("budget", "estimate", "export"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
