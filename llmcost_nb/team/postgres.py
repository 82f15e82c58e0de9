"""The shared team ledger on PostgreSQL, read with the same API as a local :class:`~llmcost_nb.Ledger`.

>>> team = Ledger("postgresql://me@db.internal/team")     # doctest: +SKIP
>>> team.total_cost(model="gpt-4.1", tags={"team": "search"})  # doctest: +SKIP
Decimal('812.4410')

Rows come from every laptop that synced (``llmcost sync --to …``); ``ledger_id`` tells them apart, and
``id`` is the row's id in its own local ledger. Read only: calls are recorded locally and synced. Under access
control (``llmcost team init``) PostgreSQL itself shows each role its slice: a member its teams' calls and its
own ledgers', FinOps every call (row-level security; see :mod:`llmcost_nb.team.access`).

It implements the ledger read protocol (:class:`~llmcost_nb.ledger.LedgerReader`) in PostgreSQL, from the raw
rows: ``summary``, ``latency_histogram``, ``anomalies`` and the dashboard's filter choices give the same
groups, filters, columns and order as on a local ledger. The p95 latency uses the same √2-wide latency
histogram as the local ledger, so both give identical figures. Text is ordered as SQLite orders it (bytes,
``COLLATE "C"``; NULL first), whatever the database's collation.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..core.call import from_pusd
from ..core.frames import CALL_COLUMNS
from ..core.times import PG_TS_FORMAT
from ..ledger.filters import Dialect, where
from ..ledger.protocol import LedgerReader
from ..ledger.query import Query, check_column
from .access import require_member
from .schema import DEFAULT_SCHEMA, _schema, connect, migrate, redact_dsn

if TYPE_CHECKING:
    import pandas as pd
    import psycopg

__all__ = ["PostgresLedger", "is_postgres_dsn"]

def _pg_tags(tags: Mapping[str, str]) -> tuple[list[str], list[Any]]:  # checked by filters.where
    return ["tags @> %s::jsonb"], [json.dumps(dict(tags))]


_DIALECT = Dialect("%s", _pg_tags, bool, more={"ledger_id": "ledger_id = {}"})
_SELECT = [c for c in CALL_COLUMNS if c not in ("cost_usd", "saved_usd", "ts", "tags", "usage_extra")]

_TS = "(ts AT TIME ZONE 'UTC')"
_EXPRS = {
    "hour": f'to_char({_TS}, \'YYYY-MM-DD"T"HH24":00:00Z"\')',
    "day": f"to_char({_TS}, 'YYYY-MM-DD')",
    "week": f"to_char(date_trunc('week', {_TS}), 'YYYY-MM-DD')",
    "month": f"to_char({_TS}, 'YYYY-MM')",
    "model": "NULLIF(model, '')",
    "provider": "NULLIF(provider, '')",
    "status": "status",
}
_BOOL_COLUMNS = {"billed", "streamed"}
_ISO = f"'{PG_TS_FORMAT}'"  # the local ledger's timestamp text
_BUCKET = (
    "CASE WHEN latency_ms IS NULL THEN -1 WHEN latency_ms < 10 THEN 0 "
    "ELSE least(31, 1 + trunc(2 * log(2.0, (latency_ms / 10.0)::numeric))::int) END"
)


def _bound(value: str) -> str:
    return f"{value}T00:00:00Z" if len(value) == 10 else value


def is_postgres_dsn(value: object) -> bool:
    """True for ``postgresql://…`` / ``postgres://…`` URLs (what ``Ledger(...)`` hands to this class)."""
    return isinstance(value, str) and value.startswith(("postgresql://", "postgres://"))


class PostgresLedger(LedgerReader):
    """The team ledger in PostgreSQL schema ``schema`` (created on first use). ``summary``, ``daily_report``,
    ``chargeback``, ``forecast`` and ``anomalies`` work as on a local ledger, aggregated in PostgreSQL;
    runaway scopes are named from the synced ``scopes`` table."""

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
                conn = connect(self.dsn)
                try:
                    migrate(conn, self.schema)
                    require_member(conn, self.schema)  # a role without a team: one line, not an empty ledger
                except BaseException:
                    conn.close()
                    raise
                self._conn = conn
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
            self._conn = None

    def _where(self, filters: Mapping[str, Any]) -> tuple[str, list[Any]]:
        return where(filters, _DIALECT)

    def query(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one read (``%s`` placeholders) and fetch its rows."""
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
        rows = self.query(sql, params)
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
        ((pusd,),) = self.query(
            f"SELECT COALESCE(SUM(cost_pusd), 0) FROM {self.schema}.calls{where}", params
        )
        return from_pusd(int(pusd))  # type: ignore[return-value]

    def count(self, **filters: Any) -> int:
        where, params = self._where(filters)
        ((n,),) = self.query(f"SELECT COUNT(*) FROM {self.schema}.calls{where}", params)
        return int(n)

    # -- the read protocol: aggregates, reconciliation totals, filter choices --------------------------------
    def aggregate(self, query: Query) -> list[tuple[Any, ...]]:
        """See :meth:`LedgerReader.aggregate`, grouped in PostgreSQL and ordered as SQLite orders text."""
        dims = list(query.by)
        conds: list[str] = []
        params: list[Any] = []
        for bound, op in ((query.since, ">="), (query.until, "<")):
            if bound:
                conds.append(f"ts {op} %s::timestamptz")
                params.append(_bound(bound))
        if query.sql is not None:
            conds.append(f"({query.sql})")
        for key, values in query.filters.items():
            marks = ", ".join(["%s"] * len(values))
            if key == "tag:team":  # the stored, indexed `team` column (what the access policies test)
                conds.append(f"team IN ({marks})")
                params += list(map(str, values))
            elif key.startswith("tag:"):
                conds.append(f"tags->>%s IN ({marks})")
                params += [key[4:], *map(str, values)]
            elif key in ("model", "provider"):
                conds.append(f"COALESCE({key}, '') IN ({marks})")
                params += ["" if v is None else v for v in values]
            elif key in _BOOL_COLUMNS:
                conds.append(f"{key} IN ({marks})")
                params += [bool(v) for v in values]
            else:  # status, api, session_id, scope_id, host, service_tier, attribution (checked by Query)
                conds.append(f"{key} IN ({marks})")
                params += values
        select, group, order, dim_params = [], [], [], []
        for i, dim in enumerate(dims):
            if dim == "tag:team":
                select.append(f"team AS g{i}")
            elif dim.startswith("tag:"):
                select.append(f"tags->>%s AS g{i}")
                dim_params.append(dim[4:])
            else:
                select.append(f"{_EXPRS[dim]} AS g{i}")
            group.append(str(i + 1))
            order.append(f'g{i} COLLATE "C" NULLS FIRST')  # SQLite's order: bytes, NULL first
        measures = [
            "count(*)",
            "count(*) FILTER (WHERE status = 'error')",
            *(f"COALESCE(sum({c}), 0)" for c in ("input_tokens", "output_tokens", "cache_read_tokens",
                                                 "cache_write_tokens", "reasoning_tokens", "cost_pusd")),
            "count(*) FILTER (WHERE billed AND cost_pusd IS NULL)",
            "count(*) FILTER (WHERE usage_source = 'estimated')",
            "count(latency_ms)",
            "COALESCE(sum(round((latency_ms * 1000)::numeric)), 0)",
            *(f"count(*) FILTER (WHERE lb = {k})" for k in range(32)),
        ]  # fmt: skip
        sql = (
            f"SELECT {', '.join([*select, *measures])} "
            f"FROM (SELECT *, {_BUCKET} AS lb FROM {self.schema}.calls"
            + (" WHERE " + " AND ".join(conds) if conds else "")
            + " OFFSET 0) AS c"  # OFFSET 0: the bucket (a numeric log) is computed once per row, not 32 times
            + (f" GROUP BY {', '.join(group)}" if group else "")
        )
        if group:
            sql = f"SELECT * FROM ({sql}) AS g ORDER BY {', '.join(order)}"
        k = len(dims)
        rows = self.query(sql, [*dim_params, *params])  # the SELECT's tag keys come first
        # PostgreSQL sums come back as Decimal: integers, as SQLite gives them
        return [(*row[:k], *(int(v) for v in row[k:])) for row in rows if row[k]]

    def runaway_scopes(self, factor: float, min_calls: int) -> tuple[float | None, list[tuple[Any, ...]]]:
        """See :meth:`LedgerReader.runaway_scopes`: counted in PostgreSQL across the team, scopes described
        by the synced ``scopes`` table."""
        s = self.schema
        sql = f"""
            WITH counts AS (
                SELECT scope_id, count(*) AS n, min(ts) AS first, max(ts) AS last, sum(cost_pusd) AS pusd
                FROM {s}.calls WHERE scope_id IS NOT NULL GROUP BY scope_id
            ), mid AS (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY n) AS median FROM counts)
            SELECT c.scope_id, c.n, to_char(c.first AT TIME ZONE 'UTC', {_ISO}),
                   to_char(c.last AT TIME ZONE 'UTC', {_ISO}), c.pusd, mid.median,
                   sc.id IS NOT NULL, sc.kind, sc.name, sc.notebook, sc.cell
            FROM counts c CROSS JOIN mid LEFT JOIN {s}.scopes sc ON sc.id = c.scope_id
            WHERE c.n >= greatest(%s::float8, %s::float8 * mid.median)
            ORDER BY c.scope_id COLLATE "C"
        """
        rows = self.query(sql, [float(min_calls), float(factor)])
        found = [
            (sid, int(n), first, last, None if pusd is None else int(pusd), tuple(info) if synced else None)
            for sid, n, first, last, pusd, _, synced, *info in rows
        ]
        return (rows[0][5] if rows else None), found

    def daily_totals(self, start: str, end: str, providers: Iterable[str], key_tag: str | None
                     ) -> list[tuple[Any, ...]]:
        """See :meth:`LedgerReader.daily_totals`: every synced laptop's calls."""
        providers = sorted(providers)
        params: list[Any] = [key_tag] if key_tag else []
        where = "billed AND ts >= %s::timestamptz AND ts < %s::timestamptz"
        params += [f"{start}T00:00:00Z", f"{end}T00:00:00Z"]
        if providers:
            where += f" AND provider IN ({', '.join(['%s'] * len(providers))})"
            params += providers
        sql = (
            f"SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD'), COALESCE(model, model_requested), "
            f"{'tags->>%s' if key_tag else 'NULL'}, count(*), sum(input_tokens), sum(output_tokens), "
            "sum(cache_read_tokens), sum(cost_pusd), count(*) FILTER (WHERE cost_pusd IS NULL) "
            f"FROM {self.schema}.calls WHERE {where} GROUP BY 1, 2, 3"
        )
        return self.query(sql, params)

    def time_span(self) -> tuple[str | None, str | None]:
        """The first and last call's timestamps as the local ledger's text (``None, None`` when empty)."""
        ((first, last),) = self.query(
            f"SELECT to_char(min(ts) AT TIME ZONE 'UTC', {_ISO}), "
            f"to_char(max(ts) AT TIME ZONE 'UTC', {_ISO}) "
            f"FROM {self.schema}.calls"
        )
        return first, last

    def tag_keys(self) -> list[str]:
        """Every tag key of the team's calls, sorted (each distinct tag set is expanded once)."""
        rows = self.query(
            f'SELECT DISTINCT k COLLATE "C" FROM (SELECT DISTINCT tags FROM {self.schema}.calls) AS t, '
            "jsonb_object_keys(t.tags) AS k ORDER BY 1"
        )
        return [r[0] for r in rows]

    def tag_values(self, key: str) -> list[str]:
        """Every value of tag ``key`` in the team's calls, sorted."""
        rows = self.query(
            f'SELECT DISTINCT (t.tags->>%s) COLLATE "C" FROM (SELECT DISTINCT tags FROM {self.schema}.calls) '
            "AS t WHERE t.tags->>%s IS NOT NULL ORDER BY 1",
            [key, key],
        )
        return [r[0] for r in rows]

    def distinct(self, column: str) -> list[str]:
        """The non-empty values of a calls column (model, provider, status, api, ...), sorted."""
        check_column(column)
        rows = self.query(
            f"SELECT DISTINCT {column} COLLATE \"C\" FROM {self.schema}.calls WHERE {column} <> '' ORDER BY 1"
        )
        return [r[0] for r in rows]

    def stored_budget(self, scope: str) -> Decimal | None:
        """Budgets live in the local ledgers, not the team one: always ``None``."""
        return None

    def ledgers(self) -> pd.DataFrame:
        """The local ledgers that have synced here: id, label, host, first and last sync, rows."""
        import pandas as pd

        rows = self.query(
            f"SELECT l.ledger_id, l.label, l.hostname, l.first_sync, l.last_sync, "
            f"(SELECT count(*) FROM {self.schema}.calls c WHERE c.ledger_id = l.ledger_id) "
            f"FROM {self.schema}.ledgers l ORDER BY l.first_sync",
            [],
        )
        return pd.DataFrame.from_records(
            rows, columns=["ledger_id", "label", "hostname", "first_sync", "last_sync", "rows"]
        )
