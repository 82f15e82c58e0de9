"""Summaries, reports (daily, chargeback, forecast), anomalies and estimates over a ledger.

Its names load on first use: ``%load_ext`` imports :mod:`.estimate` only (for the pre-send estimate), and the
summaries bring pandas with them."""

from __future__ import annotations

from typing import Any

__all__ = [
    "DIMENSIONS",
    "SUMMARY_COLUMNS",
    "AnalysisError",
    "Query",
    "anomalies",
    "chargeback",
    "daily_report",
    "forecast",
    "latency_histogram",
    "parse_when",
    "summary",
]


def __getattr__(name: str) -> Any:
    # No submodule shares a name with what it exports (an imported submodule would replace the attribute).
    if name == "anomalies":
        from .anomaly import anomalies as value
    elif name == "chargeback":
        from .reports import chargeback as value
    elif name == "daily_report":
        from .reports import daily_report as value
    elif name == "forecast":
        from .reports import forecast as value
    elif name in __all__:
        from . import summaries

        value = getattr(summaries, name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # the submodule import set the package attribute to the module: put the name back
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
