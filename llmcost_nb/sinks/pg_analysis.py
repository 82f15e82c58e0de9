"""``summary`` on the PostgreSQL team ledger: the same groups, filters and columns as
:func:`llmcost_nb.analysis.summary` on a local ledger, computed in PostgreSQL from the raw rows.

>>> Ledger("postgresql://me@db.internal/team").summary(by=("week", "tag:team"), since="30d")  # doctest: +SKIP

The p95 latency uses the same √2-wide latency histogram as the local ledger, so both give identical figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._call import from_pusd

if TYPE_CHECKING:
    import pandas as pd

    from .pg_ledger import PostgresLedger

__all__ = ["summary"]

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
_BUCKET = (
    "CASE WHEN latency_ms IS NULL THEN -1 WHEN latency_ms < 10 THEN 0 "
    "ELSE least(31, 1 + trunc(2 * log(2.0, (latency_ms / 10.0)::numeric))::int) END"
)


def _bound(value: str) -> str:
    return f"{value}T00:00:00Z" if len(value) == 10 else value


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

    from ..analysis import SUMMARY_COLUMNS, AnalysisError, _dim_name, _normalize_by, parse_when
    from ..analysis_rollup import percentile

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
    select, group, dim_params = [], [], []
    for i, dim in enumerate(dims):
        if dim.startswith("tag:"):
            select.append("tags->>%s")
            dim_params.append(dim[4:])
        else:
            select.append(_EXPRS[dim])
        group.append(str(i + 1))
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
        + ") AS c"
        + (f" GROUP BY {', '.join(group)} ORDER BY {', '.join(group)}" if group else "")
    )
    rows = ledger._query(sql, [*dim_params, *params])  # the SELECT's tag keys come first
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
