"""Moved to :mod:`llmcost_nb.experiments.scorers`; this path keeps working."""

from .experiments.scorers import (
    LLMJudge,
    contains,
    custom,
    exact_match,
    json_valid,
    llm_judge,
    numeric,
    regex,
    resolve_scorer,
)

__all__ = [
    "LLMJudge",
    "contains",
    "custom",
    "exact_match",
    "json_valid",
    "llm_judge",
    "numeric",
    "regex",
    "resolve_scorer",
]
