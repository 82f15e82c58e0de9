"""Budgets and alerts: a pre-send hook and a listener on the session."""

from typing import Any

from .limits import (
    DEFAULT_THRESHOLDS,
    SCOPES,
    Budget,
    BudgetAlert,
    BudgetWarning,
    activate,
    applicable_budgets,
    budgets,
    budgets_with_spent,
    deactivate,
    exceeded,
    exceeds,
    max_request_cost,
    on_alert,
    on_stop,
    parse_scope,
    refresh,
    remove_budget,
    session_started,
    set_budget,
    set_default_max_output_tokens,
    spent,
    unpriced_against,
    warn,
)

__all__ = [
    "DEFAULT_MAX_OUTPUT_TOKENS",  # read from limits on each access
    "DEFAULT_THRESHOLDS",
    "SCOPES",
    "Budget",
    "BudgetAlert",
    "BudgetExceeded",  # built on first use
    "BudgetWarning",
    "activate",
    "applicable_budgets",
    "budgets",
    "budgets_with_spent",
    "deactivate",
    "exceeded",
    "exceeds",
    "max_request_cost",
    "on_alert",
    "on_stop",
    "parse_scope",
    "refresh",
    "remove_budget",
    "session_started",
    "set_budget",
    "set_default_max_output_tokens",
    "spent",
    "unpriced_against",
    "warn",
]


def __getattr__(name: str) -> Any:
    if name == "BudgetExceeded":  # subclasses the SDKs' errors: built (importing them) only when asked for
        from .limits import BudgetExceeded

        return BudgetExceeded
    if name == "DEFAULT_MAX_OUTPUT_TOKENS":
        from . import limits

        return limits.DEFAULT_MAX_OUTPUT_TOKENS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
