"""The one read protocol of a ledger: what the analysis, reconciliation and the dashboard may ask of it.

The local SQLite :class:`~llmcost_nb.Ledger` and the PostgreSQL team ledger (``Ledger("postgresql://…")``)
both implement :class:`LedgerReader`; code above the ledger layer calls these methods and never asks which
ledger it holds. Two registries, filled by the package's composition root (``llmcost_nb/__init__.py``), keep
the ledger layer from importing the layers above it:

- :func:`register_backend`: URL prefixes -> an opener (``postgresql://`` -> the team ledger);
- :func:`register_reports`: the analysis functions behind :meth:`LedgerReader.summary` and the others.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from .query import Query

__all__ = ["LedgerReader", "backend_for", "register_backend", "register_reports"]

_BACKENDS: dict[tuple[str, ...], Callable[..., LedgerReader]] = {}
_REPORTS: dict[str, Callable[..., Any]] = {}
REPORTS = ("summary", "latency_histogram", "daily_report", "chargeback", "anomalies", "forecast")


def register_backend(prefixes: Iterable[str], opener: Callable[..., LedgerReader]) -> None:
    """``Ledger(url)`` for a URL starting with one of ``prefixes`` returns ``opener(url, *args, **kwargs)``.
    Idempotent: registering the same prefixes again replaces the opener."""
    _BACKENDS[tuple(prefixes)] = opener


def backend_for(target: object) -> Callable[..., LedgerReader] | None:
    """The opener registered for ``target`` (a URL), or ``None`` (a path: the SQLite ledger)."""
    if isinstance(target, str):
        for prefixes, opener in _BACKENDS.items():
            if target.startswith(prefixes):
                return opener
    return None


def register_reports(**functions: Callable[..., Any]) -> None:
    """The analysis functions behind the report methods, each called as ``function(ledger, *args, **kw)``:
    ``summary``, ``latency_histogram``, ``daily_report``, ``chargeback``, ``anomalies``, ``forecast``."""
    unknown = set(functions) - set(REPORTS)
    if unknown:
        raise TypeError(f"unknown report(s) {', '.join(sorted(unknown))}; allowed: {', '.join(REPORTS)}")
    _REPORTS.update(functions)


def _report(name: str) -> Callable[..., Any]:
    try:
        return _REPORTS[name]
    except KeyError:  # only when the package root was not imported, which `import llmcost_nb.x` always does
        raise RuntimeError(f"no {name} report registered (import llmcost_nb first)") from None


class LedgerReader(abc.ABC):
    """A ledger that can be read and analysed: the local SQLite ledger or the PostgreSQL team ledger."""

    path: Any  # the file's path, or the team ledger's URL without its password

    # -- rows and totals ------------------------------------------------------------------------------
    @abc.abstractmethod
    def calls(self, **filters: Any) -> pd.DataFrame:
        """The calls matching ``filters`` as a DataFrame (``cost_usd`` exact Decimals, ``tags`` dicts)."""

    @abc.abstractmethod
    def total_cost(self, **filters: Any) -> Decimal:
        """Exact total cost of the matching calls."""

    @abc.abstractmethod
    def count(self, **filters: Any) -> int:
        """How many calls match."""

    # -- aggregates -----------------------------------------------------------------------------------
    @abc.abstractmethod
    def aggregate(self, query: Query) -> list[tuple[Any, ...]]:
        """Per group of ``query.by`` (ordered as SQLite orders text: bytes, NULL first): the group's values,
        then requests, errors, five token sums (input, output, cache read, cache write, reasoning),
        picodollars, unpriced calls, calls with estimated usage, latency count, latency microseconds and
        the 32 latency bucket counts."""

    @abc.abstractmethod
    def runaway_scopes(self, factor: float, min_calls: int) -> tuple[float | None, list[tuple[Any, ...]]]:
        """The median scope's call count (``None`` without scopes) and, for each scope with at least
        ``max(min_calls, factor * median)`` calls, by scope id: id, calls, first and last timestamp,
        picodollars, and ``(kind, name, notebook, cell)`` or ``None`` for a scope the ledger does not
        describe."""

    @abc.abstractmethod
    def daily_totals(self, start: str, end: str, providers: Iterable[str], key_tag: str | None
                     ) -> list[tuple[Any, ...]]:
        """Billed calls from day ``start`` to day ``end`` (excluded), of ``providers`` (all when empty), by
        day, model (the requested one when none came back) and the value of tag ``key_tag``: day, model,
        key, requests, input, output and cache-read tokens, picodollars, unpriced calls."""

    # -- filter choices -------------------------------------------------------------------------------
    @abc.abstractmethod
    def time_span(self) -> tuple[str | None, str | None]:
        """The first and last call's timestamps as ledger text, ``(None, None)`` when empty."""

    @abc.abstractmethod
    def tag_keys(self) -> list[str]:
        """Every tag key, sorted."""

    @abc.abstractmethod
    def tag_values(self, key: str) -> list[str]:
        """Every value of tag ``key``, sorted (empty for an unknown key)."""

    @abc.abstractmethod
    def distinct(self, column: str) -> list[str]:
        """The non-empty values of a calls column (``DISTINCT_COLUMNS``), sorted."""

    @abc.abstractmethod
    def stored_budget(self, scope: str) -> Decimal | None:
        """The budget stored for ``scope`` (``day`` / ``month``) in this ledger, if any."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close this process's connection."""

    # -- analysis (functions of llmcost_nb.analysis, registered by the package root) ------------------
    def summary(self, by: Any = ("day", "model"), since: Any = None, until: Any = None, where: Any = None
                ) -> pd.DataFrame:
        """Requests, tokens, exact cost, latency by day/week/month/hour, model, provider, status, user or
        ``tag:<key>``; see :func:`llmcost_nb.analysis.summary`."""
        return _report("summary")(self, by, since, until, where)  # type: ignore[no-any-return]

    def latency_histogram(self, by: Any = "model", since: Any = None, until: Any = None, where: Any = None
                          ) -> pd.DataFrame:
        """Calls per latency bucket and group; see :func:`llmcost_nb.analysis.latency_histogram`."""
        return _report("latency_histogram")(self, by, since, until, where)  # type: ignore[no-any-return]

    def daily_report(self, day: Any = None, budget: Any = None) -> Any:
        """A day's spend per model as text (``print(ledger.daily_report())``); see
        :func:`llmcost_nb.analysis.daily_report`."""
        return _report("daily_report")(self, day, budget)

    def chargeback(self, by: str = "tag:team", period: str | None = "month", **kwargs: Any) -> pd.DataFrame:
        """Showback per cost center with share of total; see :func:`llmcost_nb.analysis.chargeback`."""
        return _report("chargeback")(self, by, period, **kwargs)  # type: ignore[no-any-return]

    def anomalies(self, freq: str = "day", threshold: float = 1.5, window: int = 7, **kwargs: Any
                  ) -> pd.DataFrame:
        """Cost spikes and runaway cells, each with its reason; see :func:`llmcost_nb.analysis.anomaly`."""
        return _report("anomalies")(self, freq, threshold, window, **kwargs)  # type: ignore[no-any-return]

    def forecast(self, period: str = "month", as_of: Any = None, **kwargs: Any) -> Any:
        """Projected spend for this month (or week) with an interval; see ``analysis.forecast``."""
        return _report("forecast")(self, period, as_of, **kwargs)
