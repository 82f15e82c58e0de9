"""Summaries, reports (daily, chargeback, forecast), anomalies and estimates over a ledger."""

from .summaries import (
    DIMENSIONS,
    SUMMARY_COLUMNS,
    AnalysisError,
    Query,
    anomalies,
    chargeback,
    daily_report,
    forecast,
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
