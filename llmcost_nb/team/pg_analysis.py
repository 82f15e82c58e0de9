"""The analysis on the PostgreSQL team ledger: ``summary``, ``latency_histogram``, the runaway-scope counts
behind ``anomalies`` and the dashboard's filter choices, with the same groups, filters, columns and order as
on a local ledger (:mod:`llmcost_nb.analysis`, :mod:`llmcost_nb.analysis.filters`), computed in PostgreSQL
from the raw rows.

>>> Ledger("postgresql://me@db.internal/team").summary(by=("week", "tag:team"), since="30d")  # doctest: +SKIP

The p95 latency uses the same √2-wide latency histogram as the local ledger, so both give identical figures.
Text is ordered as SQLite orders it (bytes, ``COLLATE "C"``; NULL first), whatever the database's collation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..core.call import from_pusd
from ..core.times import PG_TS_FORMAT, parse_when

if TYPE_CHECKING:
    import pandas as pd

    from .postgres import PostgresLedger

__all__ = [
    "distinct",
    "latency_histogram",
    "runaway_scopes",
    "summary",
    "tag_keys",
    "tag_values",
    "time_span",
]

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


def _grouped(
    ledger: PostgresLedger,
    by: str | Sequence[str] | None,
    since: Any,
    until: Any,
    where: Mapping[str, Any] | str | None,
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The groups of ``by`` and, per group (ordered as SQLite orders them): the group's values, then requests,
    errors, five token sums, picodollars, unpriced calls, latency count and microseconds, 32 bucket counts."""
    from ..analysis.summaries import AnalysisError, _normalize_by

    dims = _normalize_by(by)
    conds: list[str] = []
    params: list[Any] = []
    for bound, op in ((parse_when(since), ">="), (parse_when(until), "<")):
        if bound:
            conds.append(f"ts {op} %s::timestamptz")
            params.append(_bound(bound))
    if isinstance(where, str):
        conds.append(f"({where})")
    elif isinstance(where, Mapping):
        for key, value in where.items():
            values = list(value) if isinstance(value, list | tuple | set) else [value]
            marks = ", ".join(["%s"] * len(values))
            key = "tag:user" if key == "user" else key
            if key.startswith("tag:"):
                conds.append(f"tags->>%s IN ({marks})")
                params += [key[4:], *map(str, values)]
            elif key in ("model", "provider"):
                conds.append(f"COALESCE({key}, '') IN ({marks})")
                params += ["" if v is None else v for v in values]
            elif key in ("status", "api", "session_id", "scope_id", "host", "service_tier", "attribution"):
                conds.append(f"{key} IN ({marks})")
                params += values
            elif key in _BOOL_COLUMNS:
                conds.append(f"{key} IN ({marks})")
                params += [bool(v) for v in values]
            else:
                raise AnalysisError(f"cannot filter on {key!r} in the team ledger")
    elif where is not None:
        raise AnalysisError("where must be a dict of column or tag:<key> to value(s), or SQL text")
    select, group, order, dim_params = [], [], [], []
    for i, dim in enumerate(dims):
        if dim.startswith("tag:"):
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
        "count(latency_ms)",
        "COALESCE(sum(round((latency_ms * 1000)::numeric)), 0)",
        *(f"count(*) FILTER (WHERE lb = {k})" for k in range(32)),
    ]  # fmt: skip
    sql = (
        f"SELECT {', '.join([*select, *measures])} FROM (SELECT *, {_BUCKET} AS lb FROM {ledger.schema}.calls"
        + (" WHERE " + " AND ".join(conds) if conds else "")
        + " OFFSET 0) AS c"  # OFFSET 0: the bucket (a numeric log) is computed once per row, not 32 times
        + (f" GROUP BY {', '.join(group)}" if group else "")
    )
    if group:
        sql = f"SELECT * FROM ({sql}) AS g ORDER BY {', '.join(order)}"
    return dims, ledger._query(sql, [*dim_params, *params])  # the SELECT's tag keys come first


def summary(
    ledger: PostgresLedger,
    by: str | Sequence[str] | None = ("day", "model"),
    since: Any = None,
    until: Any = None,
    where: Mapping[str, Any] | str | None = None,
) -> pd.DataFrame:
    """Requests, errors, token sums, exact ``cost_usd`` (Decimal), unpriced calls, average and p95 latency by
    ``by`` (day, week, month, hour, model, provider, status, user, ``tag:<key>``)."""
    import pandas as pd

    from ..analysis.summaries import SUMMARY_COLUMNS, _dim_name
    from ..ledger.rollups import percentile

    dims, rows = _grouped(ledger, by, since, until, where)
    k = len(dims)
    records = []
    for row in rows:
        keys, (n, errors, n_in, n_out, n_cr, n_cw, n_r, pusd, unpriced, lat_n, lat_us, *hist) = (
            row[:k],
            row[k:],
        )
        if not n:
            continue
        records.append((*keys, n, errors, n_in, n_out, n_cr, n_cw, n_r, from_pusd(int(pusd)), unpriced,
                        (int(lat_us) / lat_n / 1000) if lat_n else None,
                        percentile(list(hist), 0.95) if lat_n else None))  # fmt: skip
    frame = pd.DataFrame.from_records(records, columns=[*(_dim_name(d) for d in dims), *SUMMARY_COLUMNS])
    counts = ("requests", "errors", "input_tokens", "output_tokens", "cache_read_tokens",
              "cache_write_tokens",
              "reasoning_tokens", "unpriced")  # fmt: skip
    for col in counts:
        frame[col] = frame[col].astype("int64")
    frame["cost_usd"] = frame["cost_usd"].astype(object)
    for col in ("avg_latency_ms", "p95_latency_ms"):
        frame[col] = frame[col].astype("float64")
    return frame


def latency_histogram(
    ledger: PostgresLedger,
    by: str | Sequence[str] | None = "model",
    since: Any = None,
    until: Any = None,
    where: Mapping[str, Any] | str | None = None,
) -> pd.DataFrame:
    """:func:`llmcost_nb.analysis.latency_histogram` on the team ledger: one row per group and non-empty
    latency bucket with ``bucket``, ``low_ms``, ``high_ms`` (``inf`` for the last) and ``calls``."""
    import pandas as pd

    from ..analysis.summaries import _dim_name
    from ..ledger.rollups import bucket_bounds

    dims, rows = _grouped(ledger, by, since, until, where)
    k = len(dims)
    records = []
    for row in rows:
        for bucket, count in enumerate(row[k + 11 :]):  # after the 11 measures: the 32 bucket counts
            if count:
                records.append((*row[:k], bucket, *bucket_bounds(bucket), count))
    columns = [*(_dim_name(d) for d in dims), "bucket", "low_ms", "high_ms", "calls"]
    return pd.DataFrame.from_records(records, columns=columns)


def runaway_scopes(
    ledger: PostgresLedger, factor: float, min_calls: int
) -> tuple[float | None, list[tuple[Any, ...]]]:
    """The calls per scope across the team, grouped in PostgreSQL: their median (``None`` when no scope
    qualifies) and, for each scope with at least ``max(min_calls, factor * median)`` calls, by scope id:
    id, calls, first and last timestamp (the local ledger's text), picodollars, and ``(kind, name, notebook,
    cell)`` from the synced ``scopes`` table (``None`` for a scope that was not synced)."""
    s = ledger.schema
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
    rows = ledger._query(sql, [float(min_calls), float(factor)])
    found = [
        (sid, int(n), first, last, None if pusd is None else int(pusd), tuple(info) if synced else None)
        for sid, n, first, last, pusd, _, synced, *info in rows
    ]
    return (rows[0][5] if rows else None), found


def time_span(ledger: PostgresLedger) -> tuple[str | None, str | None]:
    """The first and last call's timestamps as the local ledger's text (``None, None`` when empty)."""
    ((first, last),) = ledger._query(
        f"SELECT to_char(min(ts) AT TIME ZONE 'UTC', {_ISO}), to_char(max(ts) AT TIME ZONE 'UTC', {_ISO}) "
        f"FROM {ledger.schema}.calls",
        [],
    )
    return first, last


def tag_keys(ledger: PostgresLedger) -> list[str]:
    """The tag keys of the team's calls, sorted (each distinct tag set is expanded once)."""
    rows = ledger._query(
        f'SELECT DISTINCT k COLLATE "C" FROM (SELECT DISTINCT tags FROM {ledger.schema}.calls) AS t, '
        "jsonb_object_keys(t.tags) AS k ORDER BY 1",
        [],
    )
    return [r[0] for r in rows]


def tag_values(ledger: PostgresLedger, key: str) -> list[str]:
    """The values tag ``key`` takes in the team's calls, sorted."""
    rows = ledger._query(
        f'SELECT DISTINCT (t.tags->>%s) COLLATE "C" FROM (SELECT DISTINCT tags FROM {ledger.schema}.calls) '
        "AS t WHERE t.tags->>%s IS NOT NULL ORDER BY 1",
        [key, key],
    )
    return [r[0] for r in rows]


def distinct(ledger: PostgresLedger, column: str) -> list[str]:
    """The non-empty values of ``column`` (checked against the allowed names by the caller), sorted."""
    rows = ledger._query(
        f"SELECT DISTINCT {column} COLLATE \"C\" FROM {ledger.schema}.calls WHERE {column} <> '' ORDER BY 1",
        [],
    )
    return [r[0] for r in rows]
