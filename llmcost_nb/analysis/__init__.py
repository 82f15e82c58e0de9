"""Summaries, reports (daily, chargeback, forecast), anomalies and estimates over a ledger."""

from .summaries import (
    DIMENSIONS,
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
