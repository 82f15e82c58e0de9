"""The choices a filter offers: a ledger's time span, its tag keys and values, the models or providers seen.

>>> from llmcost_nb.analysis.filters import distinct, tag_keys, tag_values, time_span
>>> time_span(ledger)                        # doctest: +SKIP
('2026-10-10T00:04:31.120533Z', '2026-11-20T23:58:02.901114Z')
>>> distinct(ledger, "model"), tag_keys(ledger), tag_values(ledger, "team")     # doctest: +SKIP

Each takes a local :class:`~llmcost_nb.Ledger` or the PostgreSQL team ledger (``Ledger("postgresql://…")``,
whose methods of the same names these call) and gives the same answer for the same calls: timestamps as the
ledger's ISO text, lists sorted as SQLite sorts text (by bytes), empty values left out. The dashboard reads
its filters through these, so it runs no SQL of its own.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..ledger.sqlite import Ledger

__all__ = ["DISTINCT_COLUMNS", "check_column", "distinct", "tag_keys", "tag_values", "time_span"]

_ROLLUP_COLUMNS = ("provider", "model", "status")  # in the daily rollup: read from there
DISTINCT_COLUMNS = (*_ROLLUP_COLUMNS, "api", "host", "service_tier", "session_id", "attribution")


def check_column(column: str) -> None:
    """Refuse a column :func:`distinct` does not list (its name goes into SQL)."""
    if column not in DISTINCT_COLUMNS:
        allowed = ", ".join(DISTINCT_COLUMNS)
        raise ValueError(f"cannot list the values of {column!r}: allowed columns are {allowed}")


def _team(ledger: Any) -> bool:
    return getattr(ledger, "backend", "sqlite") == "postgresql"


def time_span(ledger: Ledger) -> tuple[str | None, str | None]:
    """The first and the last call's timestamps (``"2026-11-20T08:00:01.000000Z"``), ``(None, None)`` when
    the ledger is empty; from the timestamp index."""
    if _team(ledger):
        return ledger.time_span()  # type: ignore[attr-defined,no-any-return]
    with ledger._lock:
        first, last = ledger.connection.execute("SELECT MIN(ts), MAX(ts) FROM calls").fetchone()
    return first, last


def tag_keys(ledger: Ledger) -> list[str]:
    """Every tag key, sorted."""
    if _team(ledger):
        return ledger.tag_keys()  # type: ignore[attr-defined,no-any-return]
    with ledger._lock:
        rows = ledger.connection.execute("SELECT DISTINCT key FROM tags ORDER BY key").fetchall()
    return [r[0] for r in rows]


def tag_values(ledger: Ledger, key: str) -> list[str]:
    """Every value of tag ``key``, sorted (empty for an unknown key)."""
    if _team(ledger):
        return ledger.tag_values(key)  # type: ignore[attr-defined,no-any-return]
    with ledger._lock:
        rows = ledger.connection.execute(
            "SELECT DISTINCT value FROM tags WHERE key = ? ORDER BY value", (key,)
        ).fetchall()
    return [r[0] for r in rows]


def distinct(ledger: Ledger, column: str) -> list[str]:
    """The non-empty values of a calls column, sorted: ``model``, ``provider``, ``status`` (from the daily
    rollup, kept current first), or ``api``, ``host``, ``service_tier``, ``session_id``, ``attribution``."""
    if _team(ledger):
        return ledger.distinct(column)  # type: ignore[attr-defined,no-any-return]
    check_column(column)
    from ..ledger.rollups import refresh

    raw = f"SELECT DISTINCT {column} FROM calls ORDER BY 1"
    conn = ledger.connection
    with ledger._lock:
        if column in _ROLLUP_COLUMNS:
            try:
                refresh(conn)
                sql = f"SELECT DISTINCT {column} FROM rollup_daym ORDER BY 1"
            except sqlite3.OperationalError as exc:  # a read-only file cannot bring its rollups up to date
                if "readonly" not in str(exc):
                    raise
                sql = raw
        else:
            sql = raw
        rows = conn.execute(sql).fetchall()
    return [r[0] for r in rows if r[0]]
