"""Summaries, reports (daily, chargeback, forecast), anomalies and estimates over a ledger."""

from .anomalies import anomalies
from .reports import chargeback, daily_report, forecast
from .summaries import (
    DIMENSIONS,
    SUMMARY_COLUMNS,
    AnalysisError,
    Query,
    latency_histogram,
    parse_when,
    summary,
)

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
