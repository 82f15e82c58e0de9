"""The root's public names: ``__all__`` is sorted, complete and resolvable (httpx's test_exported_members)."""

from __future__ import annotations

import sys
import types

import llmcost_nb


def _is_submodule(name: str) -> bool:
    return isinstance(vars(llmcost_nb).get(name), types.ModuleType) and f"llmcost_nb.{name}" in sys.modules


def test_all_is_sorted():
    assert llmcost_nb.__all__ == sorted(llmcost_nb.__all__)


def test_every_exported_name_resolves():
    for name in llmcost_nb.__all__:
        assert getattr(llmcost_nb, name) is not None, name


def test_every_public_name_is_exported():
    for name in llmcost_nb.__all__:  # load the lazy names too: what they import must not add public names
        getattr(llmcost_nb, name)
    public = {name for name in dir(llmcost_nb) if not name.startswith("_")}
    assert set(llmcost_nb.__all__) <= public
    assert {name for name in public - set(llmcost_nb.__all__) if not _is_submodule(name)} == set()


def test_dir_lists_the_lazy_names_before_they_are_loaded():
    lazy = {"BudgetExceeded", "compare", "dashboard", "reconcile", "replay", "share", "sync"}
    assert lazy <= set(dir(llmcost_nb))


def test_the_plain_modules_are_budget_estimate_and_export():
    values = {name: getattr(llmcost_nb, name) for name in llmcost_nb.__all__}
    plain_modules = {name for name, value in values.items()
                     if isinstance(value, types.ModuleType) and not callable(value)}
    assert plain_modules == {"budget", "estimate", "export"}  # every other public name can be called


def test_the_error_base_and_warning_are_exported():
    from llmcost_nb import errors

    assert llmcost_nb.LlmcostError is errors.LlmcostError
    assert llmcost_nb.LlmcostWarning is errors.LlmcostWarning
    assert llmcost_nb.LedgerError is errors.LedgerError
