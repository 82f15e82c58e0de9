"""The filters of ``calls()``, ``count()`` and ``total_cost()``: one set of names, checks and error for both
ledgers, each rendering them in its own SQL (a :class:`Dialect`).

>>> where({"model": "gpt-4.1", "since": "2026-11-01"}, SQLITE)
(' WHERE model = ? AND ts >= ?', ['gpt-4.1', '2026-11-01'])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..core.tags import clean_tags
from ..core.times import parse_when
from ..errors import FilterError

__all__ = ["FILTERS", "SQLITE", "Dialect", "where"]

FILTERS = {  # name -> condition, {} standing for the dialect's placeholder
    "provider": "provider = {}",
    "model": "model = {}",
    "api": "api = {}",
    "status": "status = {}",
    "billed": "billed = {}",
    "session_id": "session_id = {}",
    "scope_id": "scope_id = {}",
    "since": "ts >= {}",
    "until": "ts < {}",
}


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one ledger writes the filters: its placeholder, its tags condition (the conditions and their
    parameters for a ``{key: value}`` dict), how it binds ``billed``, and any filters of its own."""

    placeholder: str
    tags: Callable[[Mapping[Any, Any]], tuple[list[str], list[Any]]]
    billed: Callable[[Any], Any]
    more: Mapping[str, str] | None = None


def _sqlite_tags(tags: Mapping[str, str]) -> tuple[list[str], list[Any]]:
    clauses, params = [], []
    for key, value in tags.items():
        clauses.append("tagset_id IN (SELECT tagset_id FROM tags WHERE key = ? AND value = ?)")
        params += [key, value]
    return clauses, params


SQLITE = Dialect("?", _sqlite_tags, int)


def where(filters: Mapping[str, Any], dialect: Dialect) -> tuple[str, list[Any]]:
    """`` WHERE …`` (or ``""``) and its parameters; a filter whose value is None is left out. An unknown
    name is a :class:`~llmcost_nb.errors.FilterError` naming the allowed ones; ``since`` / ``until`` take
    what :func:`~llmcost_nb.core.times.parse_when` takes (``"7d"``, a date, ISO text); ``tags`` a mapping
    (:func:`~llmcost_nb.core.tags.clean_tags`; anything else is a FilterError, a TypeError)."""
    known = {**FILTERS, **(dialect.more or {})}
    clauses: list[str] = []
    params: list[Any] = []
    for name, value in filters.items():
        if value is None:
            continue
        if name == "tags":
            try:
                value = clean_tags(value, "the tags filter", limit=False)
            except TypeError as exc:
                raise FilterError(str(exc)) from None
            more_clauses, more_params = dialect.tags(value)
            clauses += more_clauses
            params += more_params
        elif name in known:
            clauses.append(known[name].format(dialect.placeholder))
            params.append(dialect.billed(value) if name == "billed"
                          else parse_when(value) if name in ("since", "until") else value)
        else:
            allowed = ", ".join(sorted([*known, "tags"]))
            raise FilterError(f"unknown filter {name!r}, allowed filters: {allowed}")
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params
