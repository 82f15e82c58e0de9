"""Rollups behind :mod:`llmcost_nb.analysis`: pre-aggregated tables kept current lazily, before each query.

Four tables by time (created by migration ``m004_rollups``):

- ``rollup_daym``: day × provider × model × status — daily and coarser, untagged (a few rows per day);
- ``rollup_hour``: hour × provider × model × status — hourly series and hourly anomalies;
- ``rollup_dayt``: day × tag set — tags without model, provider or status (chargeback, cost by team);
- ``rollup_day``: day × provider × model × status × tag set — the rest of tag queries.

Each row holds the request and error counts, token sums, the exact cost sum (picodollars), the number of
unpriced billed calls, the latency count and sum (integer microseconds, so averages do not depend on
summation order) and a latency histogram of 32 log-spaced buckets, packed two per column (``h00..h15``):
bucket 0 is < 10 ms, bucket k (1..31) starts at ``10 ms * 2**((k-1)/2)`` — each bucket spans a factor of
√2; 31 is open-ended (>= ~5.5 min).

and ``rollup_scope`` (``m007_scope_rollup``): per scope, its calls, exact cost, unpriced and estimated calls
(``m010_scope_unknowns``) and first and last timestamps, for runaway cells and notebook budgets
(:func:`scope_rows`); ``rollup_notebook`` (``m009_notebook_rollup``): the same per notebook and tracking
session (the scopes' ``notebook`` and ``session_id``), for the JupyterLab
meter's open notebooks (``Ledger.notebook_sessions``).

:func:`refresh` rolls up the rows with ``id`` above the high-water mark and applies the deltas that triggers
logged for updated or deleted rows that were already rolled up. The insert path carries no trigger.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .query import COLUMN_DIMS, RAW_WHERE, TIME_DIMS, Query

__all__ = [
    "BUCKETS", "HIST", "MEASURES", "Plan", "aggregate", "bucket_bounds", "percentile", "plan", "refresh",
    "scope_rows", "source_rows",
    "unpack",
]

BUCKETS = 32
# (column, expression over one calls-like row; {s} is the row's sign: 1, or -1/1 for deltas)
MEASURES: tuple[tuple[str, str], ...] = (
    ("n", "{s}"),
    ("errors", "{s} * (status = 'error')"),
    ("input_tokens", "{s} * input_tokens"),
    ("output_tokens", "{s} * output_tokens"),
    ("cache_read_tokens", "{s} * cache_read_tokens"),
    ("cache_write_tokens", "{s} * cache_write_tokens"),
    ("reasoning_tokens", "{s} * reasoning_tokens"),
    ("cost_pusd", "{s} * COALESCE(cost_pusd, 0)"),
    ("unpriced", "{s} * (billed = 1 AND cost_pusd IS NULL)"),
    ("estimated", "{s} * (usage_source = 'estimated')"),
    ("lat_n", "{s} * (latency_ms IS NOT NULL)"),
    ("lat_us", "{s} * COALESCE(CAST(round(latency_ms * 1000) AS INTEGER), 0)"),
)
_MEASURE = dict(MEASURES)
# what rollup_scope sums per scope, and rollup_notebook per notebook and session (besides first and last ts)
_SCOPE_SUMS = ("n", "cost_pusd", "unpriced", "estimated")
_ADD_SUMS = ", ".join(f"{c} = {c} + excluded.{c}" for c in _SCOPE_SUMS)
HIST = tuple(f"h{k:02d}" for k in range(BUCKETS // 2))  # bucket 2j: low 32 bits of hj; 2j+1: high bits
_HIGH = 1 << 32
_BUCKET_SQL = (
    "CASE WHEN latency_ms IS NULL THEN -1 WHEN latency_ms < 10 THEN 0 "
    f"ELSE min({BUCKETS - 1}, 1 + CAST(2 * log2(latency_ms / 10.0) AS INTEGER)) END"
)
_KEYS = {
    "rollup_dayt": ("day", "tagset_id"),
    "rollup_daym": ("day", "provider", "model", "status"),
    "rollup_hour": ("hour", "provider", "model", "status"),
    "rollup_day": ("day", "provider", "model", "status", "tagset_id"),
}
_KEY_SQL = {
    "hour": "substr(ts, 1, 13)",
    "day": "substr(ts, 1, 10)",
    "provider": "COALESCE(provider, '')",
    "model": "COALESCE(model, '')",
    "status": "status",
    "tagset_id": "COALESCE(tagset_id, 0)",
}


def bucket_bounds(k: int) -> tuple[float, float]:
    """The latency range (ms) of histogram bucket ``k``: ``[low, high)``; the last one is open (``inf``)."""
    if k == 0:
        return 0.0, 10.0
    high = math.inf if k == BUCKETS - 1 else 10.0 * 2 ** (k / 2)
    return 10.0 * 2 ** ((k - 1) / 2), high


def unpack(packed: Sequence[int]) -> list[int]:
    """The 32 bucket counts from the packed histogram columns."""
    counts = []
    for value in packed:
        counts += [value & (_HIGH - 1), value >> 32]
    return counts


def percentile(hist: Sequence[int], q: float) -> float | None:
    """The ``q``-quantile (0..1, nearest rank) estimated from a latency histogram: exact to its bucket, then
    interpolated geometrically inside it. ``None`` for an empty histogram."""
    total = sum(hist)
    if total <= 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for k, count in enumerate(hist):
        if count > 0 and seen + count >= rank:
            low, high = bucket_bounds(k)
            frac = (rank - seen) / count
            if k == 0:
                return low + (high - low) * frac
            if math.isinf(high):
                return low
            return low * (high / low) ** frac
        seen += max(count, 0)
    return None


def _ensure_log2(conn: sqlite3.Connection) -> None:
    """SQLite builds without math functions get ``log2`` from Python (slower, same result)."""
    try:
        conn.execute("SELECT log2(2)").fetchone()
    except sqlite3.OperationalError:
        conn.create_function("log2", 1, lambda x: math.log2(x) if x and x > 0 else None, deterministic=True)


def source_rows(keys: Sequence[str], table: str, where: str, sign: str) -> str:
    """``table``'s rows (calls, or logged deltas) aggregated by ``keys`` into the rollups' columns."""
    inner = ", ".join(
        [f"{_KEY_SQL[k]} AS k_{k}" for k in keys]
        + [f"{expr.format(s=sign)} AS m_{name}" for name, expr in MEASURES]
        + [f"{_BUCKET_SQL} AS lb"]
    )
    sums = ", ".join(f"SUM(m_{name}) AS {name}" for name, _ in MEASURES)
    hist = ", ".join(
        f"SUM(CASE lb WHEN {2 * j} THEN m_lat_n WHEN {2 * j + 1} THEN m_lat_n * {_HIGH} ELSE 0 END) AS {h}"
        for j, h in enumerate(HIST)
    )
    # LIMIT -1 keeps SQLite from flattening the subquery, which would compute the bucket once per column
    return (
        f"SELECT {', '.join(f'k_{k} AS {k}' for k in keys)}, {sums}, {hist} "
        f"FROM (SELECT {inner} FROM {table}{where} LIMIT -1) GROUP BY {', '.join(f'k_{k}' for k in keys)}"
    )


def _upsert(conn: sqlite3.Connection, rollup: str, select: str, params: Sequence[object]) -> None:
    keys = _KEYS[rollup]
    cols = [*keys, *(name for name, _ in MEASURES), *HIST]
    update = ", ".join(f"{c} = {c} + excluded.{c}" for c in cols[len(keys) :])
    conn.execute(
        f"INSERT INTO {rollup} ({', '.join(cols)}) SELECT * FROM ({select}) WHERE true "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {update}",
        params,
    )


def _roll(conn: sqlite3.Connection, table: str, where: str, sign: str, params: Sequence[object]) -> None:
    """Add ``table``'s matching rows into the rollups: two scans (hourly; daily by tag set), the other daily
    rollups re-aggregated from the second."""
    _upsert(conn, "rollup_hour", source_rows(_KEYS["rollup_hour"], table, where, sign), params)
    conn.execute("DROP TABLE IF EXISTS temp.rollup_new")
    conn.execute(
        f"CREATE TEMP TABLE rollup_new AS {source_rows(_KEYS['rollup_day'], table, where, sign)}", params
    )
    sums = ", ".join(f"SUM({c})" for c in [*(name for name, _ in MEASURES), *HIST])
    for rollup in ("rollup_day", "rollup_daym", "rollup_dayt"):
        keys = ", ".join(_KEYS[rollup])
        _upsert(conn, rollup, f"SELECT {keys}, {sums} FROM temp.rollup_new GROUP BY {keys}", ())
    conn.execute("DROP TABLE temp.rollup_new")


def refresh(conn: sqlite3.Connection) -> int:
    """Bring the rollups up to date; returns how many new rows, deltas and scope rows were rolled up (0:
    nothing to do).

    Cheap when current (four indexed lookups); otherwise one write transaction."""
    _ensure_log2(conn)
    last_id, top, admitted, scopes_top = _marks(conn)
    has_delta = conn.execute("SELECT EXISTS (SELECT 1 FROM rollup_delta)").fetchone()[0]
    if top <= last_id and not has_delta and scopes_top <= admitted:
        return 0
    conn.execute("BEGIN IMMEDIATE")
    try:
        last_id, top, admitted, scopes_top = _marks(conn)
        done = 0
        if top > last_id:
            _roll(conn, "calls", " WHERE id > ? AND id <= ?", "1", (last_id, top))
            _roll_scopes(conn, "calls", "id > ? AND id <= ?", "1", (last_id, top), admitted)
            done += top - last_id
        max_seq = conn.execute("SELECT MAX(seq) FROM rollup_delta").fetchone()[0]
        if max_seq is not None:
            _roll(conn, "rollup_delta", " WHERE seq <= ?", "sign", (max_seq,))
            _roll_scopes(conn, "rollup_delta", "seq <= ?", "sign", (max_seq,), admitted)
            for rollup in (*_KEYS, "rollup_scope", "rollup_notebook"):
                conn.execute(f"DELETE FROM {rollup} WHERE n = 0")
            conn.execute("DELETE FROM rollup_delta WHERE seq <= ?", (max_seq,))
            done += max_seq
        if scopes_top > admitted:
            _admit_scopes(conn, admitted, scopes_top)
            done += scopes_top - admitted
        conn.executemany("INSERT OR REPLACE INTO rollup_state (name, last_id) VALUES (?, ?)",
                         [("calls", top), ("scopes", scopes_top)])
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return done


def _marks(conn: sqlite3.Connection) -> tuple[int, int, int, int]:
    """The last call id rolled up and the highest one; the last scope rowid admitted into
    ``rollup_notebook`` and the highest one."""
    state = dict(conn.execute("SELECT name, last_id FROM rollup_state WHERE name IN ('calls', 'scopes')"))
    top = conn.execute("SELECT COALESCE(MAX(id), 0) FROM calls").fetchone()[0]
    scopes_top = conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM scopes").fetchone()[0]
    return state.get("calls", 0), top, state.get("scopes", 0), scopes_top


def _roll_scopes(conn: sqlite3.Connection, table: str, where: str, sign: str, params: Sequence[object],
                 admitted: int) -> None:
    """Add ``table``'s matching rows into ``rollup_scope`` (first and last timestamps only ever widen), and
    into ``rollup_notebook`` for the scope rows already admitted there (rowid <= ``admitted``)."""
    conn.execute("DROP TABLE IF EXISTS temp.scope_new")
    sums = ", ".join(f"SUM({_MEASURE[name].format(s=sign)}) AS {name}" for name in _SCOPE_SUMS)
    conn.execute(
        f"CREATE TEMP TABLE scope_new AS SELECT scope_id, {sums}, MIN(ts) AS first_ts, MAX(ts) AS last_ts "
        f"FROM {table} WHERE {where} AND scope_id IS NOT NULL GROUP BY scope_id",
        params,
    )
    conn.execute(
        f"INSERT INTO rollup_scope (scope_id, {', '.join(_SCOPE_SUMS)}, first_ts, last_ts) "
        f"SELECT scope_id, {', '.join(_SCOPE_SUMS)}, first_ts, last_ts FROM temp.scope_new WHERE true "
        f"ON CONFLICT (scope_id) DO UPDATE SET {_ADD_SUMS}, first_ts = min(first_ts, excluded.first_ts), "
        "last_ts = max(last_ts, excluded.last_ts)"
    )
    _add_notebooks(conn, "temp.scope_new", "s.rowid <= ?", (admitted,))
    conn.execute("DROP TABLE temp.scope_new")


def _admit_scopes(conn: sqlite3.Connection, admitted: int, scopes_top: int) -> None:
    """Count the scope rows written since the last refresh (rowid in ``(admitted, scopes_top]``) in
    ``rollup_notebook`` with all their calls rolled up so far (none, usually: a scope row comes first)."""
    _add_notebooks(conn, "rollup_scope", "s.rowid > ? AND s.rowid <= ?", (admitted, scopes_top))


def _add_notebooks(conn: sqlite3.Connection, source: str, where: str, params: Sequence[object]) -> None:
    """Add per-scope figures (``source``: scope_id, ``_SCOPE_SUMS``, first_ts, last_ts) of the scope rows
    matching ``where`` into ``rollup_notebook``, by the scopes' notebook and session."""
    conn.execute(
        f"INSERT INTO rollup_notebook (notebook, session_id, {', '.join(_SCOPE_SUMS)}, first_ts, last_ts) "
        f"SELECT s.notebook, COALESCE(s.session_id, ''), {', '.join(f'SUM(r.{c})' for c in _SCOPE_SUMS)}, "
        f"MIN(r.first_ts), MAX(r.last_ts) FROM {source} r JOIN scopes s ON s.id = r.scope_id "
        f"WHERE s.notebook IS NOT NULL AND {where} GROUP BY 1, 2 "
        f"ON CONFLICT (notebook, session_id) DO UPDATE SET {_ADD_SUMS}, "
        "first_ts = min(first_ts, excluded.first_ts), last_ts = max(last_ts, excluded.last_ts)",
        params,
    )


def scope_rows(conn: sqlite3.Connection, where: str = "", params: Sequence[object] = ()
               ) -> list[tuple[str, int, int, str, str, int, int]]:
    """``(scope_id, calls, picodollars, first ts, last ts, unpriced calls, estimated calls)`` per scope with
    calls, in scope id order, from ``rollup_scope`` brought up to date first; from the calls themselves when
    the file is read-only.
    ``where``: a condition on ``scope_id`` (``"scope_id IN (SELECT id FROM scopes WHERE notebook = ?)"``)."""
    condition = f" WHERE {where}" if where else ""
    try:
        refresh(conn)
    except sqlite3.OperationalError as exc:  # a read-only file cannot bring its rollups up to date
        if "readonly" not in str(exc):
            raise
        raw = "scope_id IS NOT NULL" + (f" AND ({where})" if where else "")
        return conn.execute(
            "SELECT scope_id, COUNT(*), COALESCE(SUM(cost_pusd), 0), MIN(ts), MAX(ts), "
            f"SUM({_MEASURE['unpriced'].format(s=1)}), SUM({_MEASURE['estimated'].format(s=1)}) FROM calls "
            f"WHERE {raw} GROUP BY scope_id ORDER BY scope_id", params).fetchall()
    return conn.execute(
        "SELECT scope_id, n, cost_pusd, first_ts, last_ts, unpriced, estimated "
        f"FROM rollup_scope{condition} ORDER BY scope_id", params).fetchall()


@dataclass
class Plan:
    """A :class:`~llmcost_nb.ledger.query.Query` planned for the SQLite ledger: its SQL, parameters, the path
    it takes (``rollup_daym``, ``rollup_hour``, ``rollup_dayt``, ``rollup_day`` or ``raw``) and its group
    columns. Its rows: the groups' values, ``MEASURES`` and the packed histogram ``HIST``."""

    sql: str
    params: list[Any]
    path: str
    columns: list[str]


def _aligned(bound: str | None, unit: str) -> bool:
    if bound is None or len(bound) == 10:
        return True
    return unit == "hour" and bound[13:] == ":00:00.000000Z"


def plan(query: Query, *, force_raw: bool = False) -> Plan:
    """Plan ``query`` over the rollups when they can answer it, else over the raw calls (``force_raw`` too):
    both give identical results. Exposed so tests and benchmarks can see the path taken."""
    dims, lo, hi, filters, where = list(query.by), query.since, query.until, query.filters, query.sql
    tagged = any(d.startswith("tag:") for d in [*dims, *filters])
    hourly = "hour" in dims or not (_aligned(lo, "day") and _aligned(hi, "day"))
    raw = (
        force_raw
        or where is not None
        or any(k in RAW_WHERE for k in filters)
        or not (_aligned(lo, "hour") and _aligned(hi, "hour"))
        or (tagged and hourly)
    )
    columns = any(d in COLUMN_DIMS for d in [*dims, *filters])
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
        for key, values in filters.items():
            if key in RAW_WHERE:
                conds.append(f"{key} IN ({', '.join('?' * len(values))})")
                src_params += [int(v) if isinstance(v, bool) else v for v in values]
        if where is not None:
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
    for i, (dim, name) in enumerate(zip(dims, query.columns, strict=True)):
        if dim.startswith("tag:"):
            joins.append(f"LEFT JOIN tags t{i} ON t{i}.tagset_id = r.tagset_id AND t{i}.key = ?")
            tag_params.append(dim[4:])
            expr = f"t{i}.value"
        else:
            expr = exprs[dim]
        select.append(f'{expr} AS "{name}"')
        group.append(str(i + 1))
    for key, values in filters.items():
        if key in RAW_WHERE:
            continue
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
        used = {time_col} if TIME_DIMS & set(dims) else set()
        used |= {d for d in dims if d in COLUMN_DIMS}
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
    return Plan(sql, [*src_params, *tag_params, *outer_params], path, query.columns)


def aggregate(conn: sqlite3.Connection, planned: Plan) -> list[tuple[Any, ...]]:
    """Run a plan (the rollups brought up to date first) and give its rows in the protocol's shape: the
    groups' values, then the ``MEASURES`` and the 32 bucket counts unpacked; groups with no calls left out
    (a rollup row whose calls were all deleted). The caller holds the lock."""
    if planned.path == "raw":
        _ensure_log2(conn)
    else:
        refresh(conn)
    k, m = len(planned.columns), len(MEASURES)
    rows = conn.execute(planned.sql, planned.params).fetchall()
    return [(*row[: k + m], *unpack(row[k + m :])) for row in rows if row[k]]
