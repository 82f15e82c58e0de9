"""Moved to :mod:`llmcost_nb.notebook.charts`; this path keeps working."""

from .notebook.charts import (
    cost_by_tag,
    cumulative_spend,
    latency_distribution,
    register_theme,
    show,
    spend_over_time,
    token_mix,
)

__all__ = [
    "cost_by_tag",
    "cumulative_spend",
    "latency_distribution",
    "register_theme",
    "show",
    "spend_over_time",
    "token_mix",
]
