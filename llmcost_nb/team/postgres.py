"""The shared team ledger on PostgreSQL, read with the same API as a local :class:`~llmcost_nb.Ledger`.

>>> team = Ledger("postgresql://me@db.internal/team")     # doctest: +SKIP
>>> team.total_cost(model="gpt-4.1", tags={"team": "search"})  # doctest: +SKIP
Decimal('812.4410')

Rows come from every laptop that synced (``llmcost sync --to …``); ``ledger_id`` tells them apart, and
``id`` is the row's id in its own local ledger. Read only: calls are recorded locally and synced.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..core.call import from_pusd
from ..core.frames import CALL_COLUMNS
from ..core.times import PG_TS_FORMAT, parse_when
from ..errors import FilterError
from ..ledger.reports import AnalysisMethods
from .schema import DEFAULT_SCHEMA, _schema, connect, migrate, redact_dsn

if TYPE_CHECKING:
    import pandas as pd
    import psycopg

__all__ = ["PostgresLedger", "is_postgres_dsn"]

_FILTERS = {
    "provider": "provider = %s",
    "model": "model = %s",
    "api": "api = %s",
    "status": "status = %s",
    "billed": "billed = %s",
    "session_id": "session_id = %s",
    "scope_id": "scope_id = %s",
    "ledger_id": "ledger_id = %s",
    "since": "ts >= %s",
    "until": "ts < %s",
}
_SELECT = [c for c in CALL_COLUMNS if c not in ("cost_usd", "saved_usd", "ts", "tags", "usage_extra")]


def is_postgres_dsn(value: object) -> bool:
    """True for ``postgresql://…`` / ``postgres://…`` URLs (what ``Ledger(...)`` hands to this class)."""
    return isinstance(value, str) and value.startswith(("postgresql://", "postgres://"))


class PostgresLedger(AnalysisMethods):
    """The team ledger in PostgreSQL schema ``schema`` (created on first use). ``summary``, ``daily_report``,
    ``chargeback``, ``forecast`` and ``anomalies`` work as on a local ledger, aggregated in PostgreSQL;
    runaway scopes are named from the synced ``scopes`` table."""

    backend = "postgresql"  # analysis code dispatches on this (a local Ledger has no such attribute)

    def __init__(self, dsn: str, *, schema: str = DEFAULT_SCHEMA) -> None:
        self.dsn, self.schema = dsn, _schema(schema)
        self.path = redact_dsn(dsn)
        self._lock = threading.RLock()
        self._conn: psycopg.Connection | None = None

    def __repr__(self) -> str:
        return f"PostgresLedger({self.path!r}, schema={self.schema!r})"

    @property
    def connection(self) -> psycopg.Connection:
        """An autocommit psycopg connection (reopened if the server went away)."""
        with self._lock:
            if self._conn is None or self._conn.closed or self._conn.broken:
                self._conn = connect(self.dsn)
                migrate(self._conn, self.schema)
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
            self._conn = None

    def _where(self, filters: Mapping[str, Any]) -> tuple[str, list[Any]]:
        clauses, params = [], []
        for name, value in filters.items():
            if value is None:
                continue
            if name == "tags":
                clauses.append("tags @> %s::jsonb")
                params.append(json.dumps({str(k): str(v) for k, v in value.items()}))
            elif name in _FILTERS:
                clauses.append(_FILTERS[name])
                bound = name in ("since", "until")
                params.append(bool(value) if name == "billed" else parse_when(value) if bound else value)
            else:
                allowed = ", ".join(sorted([*_FILTERS, "tags"]))
                raise FilterError(f"unknown filter {name!r}, allowed filters: {allowed}")
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def _query(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        with self._lock:
            return self.connection.execute(sql, params).fetchall()  # type: ignore[arg-type]

    def calls(self, **filters: Any) -> pd.DataFrame:
        """Calls matching ``filters`` (those of ``Ledger.calls`` plus ``ledger_id``): ``Ledger.calls``'s
        columns, then ``ledger_id``; ``cost_usd`` holds exact Decimals."""
        import pandas as pd

        where, params = self._where(filters)
        sql = (
            f"SELECT {', '.join(_SELECT)}, cost_pusd, saved_pusd, "
            f"to_char(ts AT TIME ZONE 'UTC', '{PG_TS_FORMAT}'), tags::text, "
            f"usage_extra::text, ledger_id FROM {self.schema}.calls{where} ORDER BY ts, ledger_id, id"
        )
        rows = self._query(sql, params)
        frame = pd.DataFrame.from_records(
            rows, columns=[*_SELECT, "cost_pusd", "saved_pusd", "ts", "tags", "usage_extra", "ledger_id"]
        )
        for money in ("cost", "saved"):
            frame[f"{money}_usd"] = pd.Series(
                [from_pusd(v) for v in frame[f"{money}_pusd"]], index=frame.index, dtype=object
            )
        frame["tags"] = pd.Series([json.loads(t) for t in frame["tags"]], index=frame.index, dtype=object)
        frame["usage_extra"] = pd.Series(
            [json.loads(u) if isinstance(u, str) else None for u in frame["usage_extra"]],
            index=frame.index,
            dtype=object,
        )
        for flag in ("billed", "streamed", "replayed"):
            frame[flag] = frame[flag].astype(bool)
        frame["latency_ms"] = frame["latency_ms"].astype("float64")
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True, format="ISO8601")
        return frame[[*CALL_COLUMNS, "ledger_id"]]

    def total_cost(self, **filters: Any) -> Decimal:
        """Exact total cost of the matching calls, across every synced ledger."""
        where, params = self._where(filters)
        ((pusd,),) = self._query(
            f"SELECT COALESCE(SUM(cost_pusd), 0) FROM {self.schema}.calls{where}", params
        )
        return from_pusd(int(pusd))  # type: ignore[return-value]

    def count(self, **filters: Any) -> int:
        where, params = self._where(filters)
        ((n,),) = self._query(f"SELECT COUNT(*) FROM {self.schema}.calls{where}", params)
        return int(n)

    # -- filter choices (llmcost_nb.analysis_filters; the dashboard's dropdowns) ---------------------------
    def time_span(self) -> tuple[str | None, str | None]:
        """The first and last call's timestamps as ISO text (``None, None`` when empty)."""
        from .pg_analysis import time_span

        return time_span(self)

    def tag_keys(self) -> list[str]:
        """Every tag key of the team's calls, sorted."""
        from .pg_analysis import tag_keys

        return tag_keys(self)

    def tag_values(self, key: str) -> list[str]:
        """Every value of tag ``key`` in the team's calls, sorted."""
        from .pg_analysis import tag_values

        return tag_values(self, key)

    def distinct(self, column: str) -> list[str]:
        """The non-empty values of a calls column (model, provider, status, api, ...), sorted."""
        from ..analysis.filters import check_column
        from .pg_analysis import distinct

        check_column(column)
        return distinct(self, column)

    def ledgers(self) -> pd.DataFrame:
        """The local ledgers that have synced here: id, label, host, first and last sync, rows."""
        import pandas as pd

        rows = self._query(
            f"SELECT l.ledger_id, l.label, l.hostname, l.first_sync, l.last_sync, "
            f"(SELECT count(*) FROM {self.schema}.calls c WHERE c.ledger_id = l.ledger_id) "
            f"FROM {self.schema}.ledgers l ORDER BY l.first_sync",
            [],
        )
        return pd.DataFrame.from_records(
            rows, columns=["ledger_id", "label", "hostname", "first_sync", "last_sync", "rows"]
        )
