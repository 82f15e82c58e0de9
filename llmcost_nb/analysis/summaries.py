"""Cost analysis over a ledger, aggregated in SQL: summaries by time, model, provider, status and tags.

>>> from llmcost_nb import Ledger
>>> ledger = Ledger("costs.db")                                             # doctest: +SKIP
>>> ledger.summary(by=("day", "model"), since="7d")                         # doctest: +SKIP
>>> ledger.summary(by="tag:team", where={"provider": "openai"})             # doctest: +SKIP

Which path a query takes (see :mod:`llmcost_nb.ledger.rollups`):

- **rollups** (milliseconds on a 1M-row ledger), when ``by`` and ``where`` use only day / week / month /
  hour, model, provider, status, user and tags, and ``since``/``until`` fall on whole days (whole hours
  without tags);
- **raw rows** (a scan of the calls, seconds per million rows) otherwise: a ``where`` given as SQL text,
  ``where`` on another column, or ``hour`` combined with tags. Both paths give identical results.

Sums, counts and the average latency are exact. ``p95_latency_ms`` is estimated from a latency histogram with
buckets a factor √2 wide: the true p95 lies in the same bucket (within ±41%).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core.call import from_pusd
from ..core.times import parse_when
from ..errors import AnalysisError
from ..ledger.rollups import HIST, MEASURES, _ensure_log2, percentile, refresh, source_rows, unpack

if TYPE_CHECKING:
    import pandas as pd

    from ..ledger.sqlite import Ledger

__all__ = [
    "DIMENSIONS",
    "AnalysisError",
    "Query",
    "anomalies",
    "chargeback",
    "daily_report",
    "forecast",
    "latency_histogram",
    "parse_when",
    "summary",
]

DIMENSIONS = ("day", "week", "month", "hour", "model", "provider", "status", "user", "tag:<key>")
_TIME = {"hour", "day", "week", "month"}
_COLUMNS_DIM = {"model", "provider", "status"}
_RAW_WHERE = {"api", "streamed", "billed", "session_id", "scope_id", "host", "service_tier", "attribution"}
SUMMARY_COLUMNS = (
    "requests",
    "errors",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cost_usd",
    "unpriced",
    "avg_latency_ms",
    "p95_latency_ms",
)


def _dim_name(dim: str) -> str:
    if dim in ("user", "tag:user"):
        return "user"
    if dim.startswith("tag:"):
        key = dim[4:]
        return key if key not in _TIME | _COLUMNS_DIM | {"user"} else dim
    return dim


@dataclass
class Query:
    """A planned summary query: its SQL, parameters and the path it takes (``rollup_daym``, ``rollup_hour``,
    ``rollup_dayt``, ``rollup_day`` or ``raw``)."""

    sql: str
    params: list[Any]
    path: str
    columns: list[str]


def _normalize_by(by: str | Sequence[str] | None) -> list[str]:
    dims = [by] if isinstance(by, str) else list(by or [])
    for dim in dims:
        if not (
            dim in _TIME or dim in _COLUMNS_DIM or dim == "user" or (dim.startswith("tag:") and len(dim) > 4)
        ):
            raise AnalysisError(f"cannot group by {dim!r}: allowed values are {', '.join(DIMENSIONS)}")
    return ["tag:user" if d == "user" else d for d in dims]


def _aligned(bound: str | None, unit: str) -> bool:
    if bound is None or len(bound) == 10:
        return True
    return unit == "hour" and bound[13:] == ":00:00.000000Z"


def plan(
    by: str | Sequence[str] | None = ("day", "model"),
    since: Any = None,
    until: Any = None,
    where: Mapping[str, Any] | str | None = None,
    *,
    force_raw: bool = False,
) -> Query:
    """Plan :func:`summary`'s SQL (exposed so tests and benchmarks can see the path taken)."""
    dims = _normalize_by(by)
    lo, hi = parse_when(since), parse_when(until)
    filters: dict[str, Any] = {}
    if isinstance(where, Mapping):
        filters = {("tag:user" if k == "user" else k): v for k, v in where.items()}
        for key in filters:
            if not (key in _COLUMNS_DIM or key in _RAW_WHERE or key.startswith("tag:")):
                allowed = ", ".join(sorted([*_COLUMNS_DIM, *_RAW_WHERE, "user", "tag:<key>"]))
                raise AnalysisError(f"cannot filter on {key!r}: allowed keys are {allowed}")
    elif where is not None and not isinstance(where, str):
        raise AnalysisError("where must be a dict of column or tag:<key> to value(s), or SQL text")
    tagged = any(d.startswith("tag:") for d in [*dims, *filters])
    hourly = "hour" in dims or not (_aligned(lo, "day") and _aligned(hi, "day"))
    raw = (
        force_raw
        or isinstance(where, str)
        or any(k in _RAW_WHERE for k in filters)
        or not (_aligned(lo, "hour") and _aligned(hi, "hour"))
        or (tagged and hourly)
    )
    columns = any(d in _COLUMNS_DIM for d in [*dims, *filters])
    path = (
        "raw"
        if raw
        else "rollup_day"
        if tagged and columns
        else "rollup_dayt"
        if tagged
        else "rollup_hour"
        if hourly
        else "rollup_daym"
    )
    src_params: list[Any] = []
    conds_outer: list[str] = []
    outer_params: list[Any] = []
    time_col = "hour" if hourly or path == "rollup_hour" else "day"
    if path == "raw":
        conds = [w for w in ("ts >= ?" if lo else "", "ts < ?" if hi else "") if w]
        src_params += [b for b in (lo, hi) if b]
        for key, value in filters.items():
            if key in _RAW_WHERE:
                values = list(value) if isinstance(value, (list, tuple, set)) else [value]
                conds.append(f"{key} IN ({', '.join('?' * len(values))})")
                src_params += [int(v) if isinstance(v, bool) else v for v in values]
        if isinstance(where, str):
            conds.append(f"({where})")
        keys = (time_col, "provider", "model", "status", "tagset_id")
        source = f"({source_rows(keys, 'calls', (' WHERE ' + ' AND '.join(conds)) if conds else '', '1')})"
    else:
        source = path
        for bound, op in ((lo, ">="), (hi, "<")):
            if bound:
                conds_outer.append(f"r.{time_col} {op} ?")
                outer_params.append(bound[:13] if time_col == "hour" else bound[:10])
    day_expr = f"substr(r.{time_col}, 1, 10)"
    exprs = {
        "hour": "r.hour || ':00:00Z'",
        "day": day_expr,
        "week": f"date({day_expr}, 'weekday 0', '-6 days')",
        "month": f"substr(r.{time_col}, 1, 7)",
        "model": "NULLIF(r.model, '')",
        "provider": "NULLIF(r.provider, '')",
        "status": "r.status",
    }
    joins, select, group = [], [], []
    tag_params: list[Any] = []
    for i, dim in enumerate(dims):
        if dim.startswith("tag:"):
            joins.append(f"LEFT JOIN tags t{i} ON t{i}.tagset_id = r.tagset_id AND t{i}.key = ?")
            tag_params.append(dim[4:])
            expr = f"t{i}.value"
        else:
            expr = exprs[dim]
        select.append(f'{expr} AS "{_dim_name(dim)}"')
        group.append(str(i + 1))
    for key, value in filters.items():
        if key in _RAW_WHERE:
            continue
        values = list(value) if isinstance(value, (list, tuple, set)) else [value]
        marks = ", ".join("?" * len(values))
        if key.startswith("tag:"):
            conds_outer.append(
                f"r.tagset_id IN (SELECT tagset_id FROM tags WHERE key = ? AND value IN ({marks}))"
            )
            outer_params += [key[4:], *map(str, values)]
        else:
            conds_outer.append(f"r.{key} IN ({marks})")
            outer_params += ["" if v is None else v for v in values]
    names = [name for name, _ in MEASURES] + list(HIST)
    if path == "rollup_day" and any(d.startswith("tag:") for d in dims):
        # sum the rollup per tag set first, then join the (tiny) tags table once per tag set, not per row
        used = {time_col} if _TIME & set(dims) else set()
        used |= {d for d in dims if d in _COLUMNS_DIM}
        keys = [k for k in (time_col, "provider", "model", "status") if k in used]
        inner = [
            *(f"r.{k} AS {k}" for k in keys),
            "r.tagset_id AS tagset_id",
            *(f"SUM(r.{c}) AS {c}" for c in names),
        ]
        source = (
            f"(SELECT {', '.join(inner)} FROM rollup_day r"
            + (" WHERE " + " AND ".join(conds_outer) if conds_outer else "")
            + f" GROUP BY {', '.join([*keys, 'tagset_id'])})"
        )
        src_params, outer_params, conds_outer = outer_params, [], []
    measures = [f"SUM(r.{c})" for c in names]
    sql = (
        f"SELECT {', '.join([*select, *measures])} FROM {source} r {' '.join(joins)}"
        + (" WHERE " + " AND ".join(conds_outer) if conds_outer else "")
        + (f" GROUP BY {', '.join(group)} ORDER BY {', '.join(group)}" if group else "")
    )
    return Query(sql, [*src_params, *tag_params, *outer_params], path, [_dim_name(d) for d in dims])


def summary(
    ledger: Ledger,
    by: str | Sequence[str] | None = ("day", "model"),
    since: Any = None,
    until: Any = None,
    where: Mapping[str, Any] | str | None = None,
) -> pd.DataFrame:
    """Requests, errors, token sums, exact cost (``cost_usd``, Decimal), unpriced calls, average and p95
    latency, grouped by ``by`` (any of day, week, month, hour, model, provider, status, user, ``tag:<key>``).

    ``since`` (inclusive) and ``until`` (exclusive) take dates, datetimes, ISO text or ``7d`` / ``24h``;
    ``where`` a dict such as ``{"provider": "openai", "tag:team": ["search", "ops"]}`` or SQL text on the
    calls table (which reads raw rows). Rows with no value for a tag show ``None``.

    >>> summary(ledger, by=("week", "tag:team"), since="2026-10-01")     # doctest: +SKIP
    """
    if getattr(ledger, "backend", "sqlite") == "postgresql":  # the team ledger aggregates in PostgreSQL
        from ..team.pg_analysis import summary as team_summary

        return team_summary(ledger, by, since, until, where)  # type: ignore[arg-type]
    query = plan(by, since, until, where)
    try:
        return run(ledger, query)
    except sqlite3.OperationalError as exc:  # rollups cannot be brought up to date (read-only file): raw rows
        if query.path == "raw" or "readonly" not in str(exc):
            raise
        return run(ledger, plan(by, since, until, where, force_raw=True))


def _fetch(ledger: Ledger, query: Query) -> list[tuple[Any, ...]]:
    """Bring the rollups up to date (a rollup query) and run the query."""
    conn = ledger.connection
    with ledger._lock:
        if query.path == "raw":
            _ensure_log2(conn)
        else:
            refresh(conn)
        return conn.execute(query.sql, query.params).fetchall()


def run(ledger: Ledger, query: Query) -> pd.DataFrame:
    """Execute a planned query and shape its result."""
    import pandas as pd

    rows = _fetch(ledger, query)
    k = len(query.columns)
    names = [name for name, _ in MEASURES]
    records = []
    for row in rows:
        keys, values = row[:k], row[k:]
        if values[0] is None or values[0] == 0:
            continue
        m = dict(zip(names, values[: len(names)], strict=True))
        hist = values[len(names) :]
        records.append(
            (
                *keys,
                m["n"],
                m["errors"],
                m["input_tokens"],
                m["output_tokens"],
                m["cache_read_tokens"],
                m["cache_write_tokens"],
                m["reasoning_tokens"],
                from_pusd(m["cost_pusd"]),
                m["unpriced"],
                (m["lat_us"] / m["lat_n"] / 1000) if m["lat_n"] else None,
                percentile(unpack(hist), 0.95) if m["lat_n"] else None,
            )
        )
    frame = pd.DataFrame.from_records(records, columns=[*query.columns, *SUMMARY_COLUMNS])
    for col in (
        "requests",
        "errors",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
        "unpriced",
    ):
        frame[col] = frame[col].astype("int64")
    frame["cost_usd"] = frame["cost_usd"].astype(object)
    for col in ("avg_latency_ms", "p95_latency_ms"):
        frame[col] = frame[col].astype("float64")
    return frame


def latency_histogram(
    ledger: Ledger,
    by: str | Sequence[str] | None = "model",
    since: Any = None,
    until: Any = None,
    where: Mapping[str, Any] | str | None = None,
) -> pd.DataFrame:
    """Latency distribution per group, from the rollups' histograms: one row per group and non-empty bucket
    with ``low_ms``, ``high_ms`` (``inf`` for the last) and ``calls``.

    >>> latency_histogram(ledger, by="model")      # doctest: +SKIP
    """
    import pandas as pd

    from ..ledger.rollups import bucket_bounds

    if getattr(ledger, "backend", "sqlite") == "postgresql":  # the team ledger buckets in PostgreSQL
        from ..team.pg_analysis import latency_histogram as team_histogram

        return team_histogram(ledger, by, since, until, where)  # type: ignore[arg-type]
    query = plan(by, since, until, where)
    rows = _fetch(ledger, query)
    k, skip = len(query.columns), len(MEASURES)
    records = []
    for row in rows:
        for bucket, count in enumerate(unpack(row[k + skip :])):
            if count:
                records.append((*row[:k], bucket, *bucket_bounds(bucket), count))
    columns = [*query.columns, "bucket", "low_ms", "high_ms", "calls"]
    return pd.DataFrame.from_records(records, columns=columns)


from .anomalies import anomalies  # noqa: E402  (they build on summary, above)
from .reports import chargeback, daily_report, forecast  # noqa: E402
