"""Cost analysis over a ledger, aggregated in SQL: summaries by time, model, provider, status and tags.

>>> from llmcost_nb import Ledger
>>> ledger = Ledger("costs.db")                                             # doctest: +SKIP
>>> ledger.summary(by=("day", "model"), since="7d")                         # doctest: +SKIP
>>> ledger.summary(by="tag:team", where={"provider": "openai"})             # doctest: +SKIP

Each ledger aggregates in its own database (:meth:`~llmcost_nb.ledger.LedgerReader.aggregate`); on the local
ledger, which path a query takes (see :func:`llmcost_nb.ledger.rollups.plan`):

- **rollups** (milliseconds on a 1M-row ledger), when ``by`` and ``where`` use only day / week / month /
  hour, model, provider, status, user and tags, and ``since``/``until`` fall on whole days (whole hours
  without tags);
- **raw rows** (a scan of the calls, seconds per million rows) otherwise: a ``where`` given as SQL text,
  ``where`` on another column, or ``hour`` combined with tags. Both paths give identical results.

Sums, counts and the average latency are exact. ``p95_latency_ms`` is estimated from a latency histogram with
buckets a factor √2 wide: the true p95 lies in the same bucket (within ±41%).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..core.call import from_pusd
from ..ledger.query import DIMENSIONS, AnalysisError, Query, parse_when
from ..ledger.rollups import (
    bucket_bounds,
    percentile,
)

if TYPE_CHECKING:
    import pandas as pd

    from ..ledger.protocol import LedgerReader

__all__ = [
    "DIMENSIONS",
    "SUMMARY_COLUMNS",
    "AnalysisError",
    "Query",
    "latency_histogram",
    "parse_when",
    "summary",
    "summary_frame",
]

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
    "estimated",
    "avg_latency_ms",
    "p95_latency_ms",
)
_COUNTS = ("requests", "errors", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
           "reasoning_tokens", "unpriced", "estimated")
_HIST_AT = 12  # in an aggregate row, after the group's values: 12 measures, then the 32 bucket counts


def summary(
    ledger: LedgerReader,
    by: str | Sequence[str] | None = ("day", "model"),
    since: Any = None,
    until: Any = None,
    where: Mapping[str, Any] | str | None = None,
) -> pd.DataFrame:
    """Requests, errors, token sums, exact cost (``cost_usd``, Decimal), ``unpriced`` calls (billed, no
    price known: their cost is not in ``cost_usd``), calls whose tokens were ``estimated`` (a stream that
    sent no usage, counted with the model's tokenizer), average and p95 latency, grouped by ``by`` (any of
    day, week, month, hour, model, provider, status, user, ``tag:<key>``).

    ``since`` (inclusive) and ``until`` (exclusive) take dates, datetimes, ISO text or ``7d`` / ``24h``;
    ``where`` a dict such as ``{"provider": "openai", "tag:team": ["search", "ops"]}`` or SQL text on the
    calls table (which reads raw rows). Rows with no value for a tag show ``None``.

    >>> summary(ledger, by=("week", "tag:team"), since="2026-10-01")     # doctest: +SKIP
    """
    query = Query.parse(by, since, until, where)
    return summary_frame(query, ledger.aggregate(query))


def summary_frame(query: Query, rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    """:func:`summary`'s frame from a ledger's :meth:`~llmcost_nb.ledger.LedgerReader.aggregate` rows."""
    import pandas as pd

    k = len(query.by)
    records = []
    for row in rows:
        keys = row[:k]
        n, errors, n_in, n_out, n_cr, n_cw, n_r, pusd, unpriced, estimated, lat_n, lat_us, *hist = row[k:]
        if not n:
            continue
        records.append((*keys, n, errors, n_in, n_out, n_cr, n_cw, n_r, from_pusd(pusd), unpriced, estimated,
                        (lat_us / lat_n / 1000) if lat_n else None,
                        percentile(hist, 0.95) if lat_n else None))  # fmt: skip
    frame = pd.DataFrame.from_records(records, columns=[*query.columns, *SUMMARY_COLUMNS])
    for col in _COUNTS:
        frame[col] = frame[col].astype("int64")
    frame["cost_usd"] = frame["cost_usd"].astype(object)
    for col in ("avg_latency_ms", "p95_latency_ms"):
        frame[col] = frame[col].astype("float64")
    return frame


def latency_histogram(
    ledger: LedgerReader,
    by: str | Sequence[str] | None = "model",
    since: Any = None,
    until: Any = None,
    where: Mapping[str, Any] | str | None = None,
) -> pd.DataFrame:
    """Latency distribution per group, from the ledger's latency histograms: one row per group and non-empty
    bucket with ``low_ms``, ``high_ms`` (``inf`` for the last) and ``calls``.

    >>> latency_histogram(ledger, by="model")      # doctest: +SKIP
    """
    import pandas as pd

    query = Query.parse(by, since, until, where)
    k = len(query.by)
    records = []
    for row in ledger.aggregate(query):
        for bucket, count in enumerate(row[k + _HIST_AT :]):
            if count:
                records.append((*row[:k], bucket, *bucket_bounds(bucket), count))
    columns = [*query.columns, "bucket", "low_ms", "high_ms", "calls"]
    return pd.DataFrame.from_records(records, columns=columns)

