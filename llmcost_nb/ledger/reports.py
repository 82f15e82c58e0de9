"""The analysis methods of both ledgers, the local ``Ledger`` and the team's ``PostgresLedger``: each hands
the ledger to :mod:`llmcost_nb.analysis`, which aggregates in SQLite (over rollups kept current before each
query) or, for the team ledger, in PostgreSQL. Same arguments, same columns."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["AnalysisMethods"]


class AnalysisMethods:
    def summary(self, by: Any = ("day", "model"), since: Any = None, until: Any = None, where: Any = None
                ) -> pd.DataFrame:
        """Requests, tokens, exact cost, latency by day/week/month/hour, model, provider, status, user or
        ``tag:<key>``; see :func:`llmcost_nb.analysis.summary`."""
        from ..analysis.summaries import summary

        return summary(self, by, since, until, where)  # type: ignore[arg-type]

    def daily_report(self, day: Any = None, budget: Any = None) -> Any:
        """A day's spend per model as text (``print(ledger.daily_report())``); see
        :func:`llmcost_nb.analysis.daily_report`."""
        from ..analysis.summaries import daily_report

        return daily_report(self, day, budget)  # type: ignore[arg-type]

    def chargeback(self, by: str = "tag:team", period: str | None = "month", **kwargs: Any) -> pd.DataFrame:
        """Showback per cost center with share of total; see :func:`llmcost_nb.analysis.chargeback`."""
        from ..analysis.summaries import chargeback

        return chargeback(self, by, period, **kwargs)  # type: ignore[arg-type]

    def anomalies(self, freq: str = "day", threshold: float = 1.5, window: int = 7, **kwargs: Any
                  ) -> pd.DataFrame:
        """Cost spikes and runaway cells, each with its reason; see :func:`llmcost_nb.analysis.anomalies`."""
        from ..analysis.summaries import anomalies

        return anomalies(self, freq, threshold, window, **kwargs)  # type: ignore[arg-type]

    def forecast(self, period: str = "month", as_of: Any = None, **kwargs: Any) -> Any:
        """Projected spend for this month (or week) with an interval; see ``analysis.forecast``."""
        from ..analysis.summaries import forecast

        return forecast(self, period, as_of, **kwargs)  # type: ignore[arg-type]
