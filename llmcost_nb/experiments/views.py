"""The views of a comparison (its charts and the explorer widget) live in :mod:`llmcost_nb.notebook`, a
higher layer. Experiments never import it: the package root registers them here by name, and
:class:`~llmcost_nb.experiments.result.CompareResult` looks them up when a chart is asked for.

>>> register_views(latency=lambda result: ...)        # doctest: +SKIP
>>> view("latency")(result)                            # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["VIEWS", "register_views", "view"]

VIEWS = ("cost_quality", "cost_per_success", "latency", "wins", "race", "explore")
_views: dict[str, Callable[..., Any]] = {}


def register_views(**views: Callable[..., Any]) -> None:
    """Register (or replace: registering twice is harmless) views by name; each is called with the
    :class:`CompareResult` first, then the chart method's arguments."""
    unknown = sorted(set(views) - set(VIEWS))
    if unknown:
        raise ValueError(f"unknown comparison view(s) {', '.join(unknown)}; known: {', '.join(VIEWS)}")
    _views.update(views)


def view(name: str) -> Callable[..., Any]:
    """The view registered as ``name``."""
    try:
        return _views[name]
    except KeyError:
        raise LookupError(f"no {name!r} view registered (the llmcost_nb package registers them)") from None
