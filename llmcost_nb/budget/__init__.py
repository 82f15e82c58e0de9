"""Budgets and alerts: a pre-send hook and a listener on the session."""

from .limits import (
    DEFAULT_MAX_OUTPUT_TOKENS,
    SCOPES,
    Budget,
    BudgetAlert,
    BudgetExceeded,
    BudgetWarning,
    activate,
    budgets,
    deactivate,
    max_request_cost,
    on_alert,
    on_stop,
    refresh,
    remove_budget,
    set_budget,
    spent,
)

__all__ = [
    "DEFAULT_MAX_OUTPUT_TOKENS",
    "SCOPES",
    "Budget",
    "BudgetAlert",
    "BudgetExceeded",
    "BudgetWarning",
    "activate",
    "budgets",
    "deactivate",
    "max_request_cost",
    "on_alert",
    "on_stop",
    "refresh",
    "remove_budget",
    "set_budget",
    "spent",
]
