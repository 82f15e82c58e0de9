"""What an analysis asks a ledger: groups (``by``), a time range and filters (``where``), checked once here
for every ledger (the local SQLite one and the PostgreSQL team one), so each backend only renders its own SQL.

>>> Query.parse(("day", "user"), since="2026-11-01").by
('day', 'tag:user')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.times import parse_when
from ..errors import AnalysisError

__all__ = [
    "COLUMN_DIMS",
    "DIMENSIONS",
    "DISTINCT_COLUMNS",
    "RAW_WHERE",
    "TIME_DIMS",
    "AnalysisError",
    "Query",
    "check_column",
    "dim_name",
    "normalize_by",
    "parse_when",
]

DIMENSIONS = ("day", "week", "month", "hour", "model", "provider", "status", "user", "tag:<key>")
TIME_DIMS = frozenset({"hour", "day", "week", "month"})
COLUMN_DIMS = frozenset({"model", "provider", "status"})
# filter keys that only the raw calls rows hold (not the rollups)
RAW_WHERE = frozenset({"api", "streamed", "billed", "session_id", "scope_id", "host", "service_tier",
                       "attribution"})
ROLLUP_COLUMNS = ("provider", "model", "status")  # in the local ledger's daily rollup
DISTINCT_COLUMNS = (*ROLLUP_COLUMNS, "api", "host", "service_tier", "session_id", "attribution")


def dim_name(dim: str) -> str:
    """The column a group is shown under: ``tag:team`` -> ``team`` (unless that names another group)."""
    if dim in ("user", "tag:user"):
        return "user"
    if dim.startswith("tag:"):
        key = dim[4:]
        return key if key not in TIME_DIMS | COLUMN_DIMS | {"user"} else dim
    return dim


def normalize_by(by: str | Sequence[str] | None) -> list[str]:
    """``by`` as a list of groups (``user`` is ``tag:user``), or :class:`AnalysisError` naming the allowed."""
    dims = [by] if isinstance(by, str) else list(by or [])
    for dim in dims:
        tag = dim.startswith("tag:") and len(dim) > 4
        if not (dim in TIME_DIMS or dim in COLUMN_DIMS or dim == "user" or tag):
            raise AnalysisError(f"cannot group by {dim!r}: allowed values are {', '.join(DIMENSIONS)}")
    return ["tag:user" if d == "user" else d for d in dims]


def check_column(column: str) -> None:
    """Refuse a column ``distinct`` does not list (its name goes into SQL)."""
    if column not in DISTINCT_COLUMNS:
        allowed = ", ".join(DISTINCT_COLUMNS)
        raise ValueError(f"cannot list the values of {column!r}: allowed columns are {allowed}")


@dataclass(frozen=True)
class Query:
    """A checked aggregation: ``by`` (normalized groups), ``since``/``until`` (ledger timestamp text or
    ``None``), ``filters`` (column or ``tag:<key>`` -> list of values) and ``sql`` (a ``where`` given as SQL
    text on the calls table, or ``None``). Build one with :meth:`parse`."""

    by: tuple[str, ...] = ()
    since: str | None = None
    until: str | None = None
    filters: Mapping[str, list[Any]] = field(default_factory=dict)
    sql: str | None = None

    @classmethod
    def parse(
        cls,
        by: str | Sequence[str] | None = ("day", "model"),
        since: Any = None,
        until: Any = None,
        where: Mapping[str, Any] | str | None = None,
    ) -> Query:
        dims = normalize_by(by)
        filters: dict[str, list[Any]] = {}
        sql = None
        if isinstance(where, Mapping):
            for key, value in where.items():
                key = "tag:user" if key == "user" else key
                if not (key in COLUMN_DIMS or key in RAW_WHERE or key.startswith("tag:")):
                    allowed = ", ".join(sorted([*COLUMN_DIMS, *RAW_WHERE, "user", "tag:<key>"]))
                    raise AnalysisError(f"cannot filter on {key!r}: allowed keys are {allowed}")
                filters[key] = list(value) if isinstance(value, list | tuple | set) else [value]
        elif isinstance(where, str):
            sql = where
        elif where is not None:
            raise AnalysisError("where must be a dict of column or tag:<key> to value(s), or SQL text")
        return cls(tuple(dims), parse_when(since), parse_when(until), filters, sql)

    @property
    def columns(self) -> list[str]:
        """The group columns' names, in order."""
        return [dim_name(d) for d in self.by]
