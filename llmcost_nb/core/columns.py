"""The columns of a call, in one table: the ledger's ``calls`` table (SQLite, and PostgreSQL after a
sync), the ``Call`` attribute each holds, and its name in the calls DataFrame (``Ledger.calls()``,
``Scope.calls()``).

Every other list of call columns is derived from :data:`CALLS_TABLE`: what a write inserts
(:data:`WRITE_COLUMNS`, :func:`call_row`), what a sync pushes (:data:`SYNC_COLUMNS`), the frame's columns
(:data:`FRAME_COLUMNS`), the subset ``log_many`` fills (:data:`LOG_MANY_COLUMNS`), a Call from a frame
row (:func:`row_call`), and what re-pricing a stored call reads (:data:`PRICING_COLUMNS`,
:func:`pricing_call`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from .call import TOKEN_FIELDS, Call
from .money import to_pusd
from .times import format_ts

__all__ = [
    "CALLS_TABLE",
    "FRAME_COLUMNS",
    "LOG_MANY_COLUMNS",
    "PRICING_COLUMNS",
    "SYNC_COLUMNS",
    "WRITE_COLUMNS",
    "Column",
    "call_row",
    "insert_sql",
    "pricing_call",
    "row_call",
    "subset",
]


class Column(NamedTuple):
    name: str  # in the ledger's calls table
    attribute: str | None  # the Call attribute it stores (None: the tag set's id, not on Call)
    frame: str | None  # its name in the calls DataFrame (None: not shown there)
    written: bool = True  # a value of call_row (id is assigned by the database)
    synced: bool = True  # pushed to the team ledger (tagset_id is local: tags travel as JSON)


CALLS_TABLE: tuple[Column, ...] = (
    Column("id", "id", "id", written=False),
    Column("ts", "ts", "ts"),
    Column("provider", "provider", "provider"),
    Column("api", "api", "api"),
    Column("model_requested", "model_requested", "model_requested"),
    Column("model", "model", "model"),
    *(Column(name, name, name) for name in TOKEN_FIELDS),
    Column("usage_extra", "usage_extra", "usage_extra"),  # JSON text of genai-prices usage keys
    Column("cost_pusd", "cost", "cost_usd"),  # integer picodollars; the frame holds Decimal USD
    Column("price_source", "price_source", "price_source"),
    Column("latency_ms", "latency_ms", "latency_ms"),
    Column("status", "status", "status"),
    Column("http_status", "http_status", "http_status"),
    Column("error", "error", "error"),
    Column("billed", "billed", "billed"),
    Column("streamed", "streamed", "streamed"),
    Column("request_id", "request_id", "request_id"),
    Column("host", "host", "host"),
    Column("service_tier", "service_tier", "service_tier"),
    Column("session_id", "session_id", "session_id"),
    Column("scope_id", "scope_id", "scope_id"),
    Column("attribution", "attribution", "attribution"),
    Column("tagset_id", None, "tags", synced=False),  # the frame shows the tags themselves (a dict)
    Column("estimated_input_tokens", "estimated_input_tokens", None),
    Column("replayed", "replayed", "replayed"),
    Column("saved_pusd", "saved", "saved_usd"),
    Column("usage_source", "usage_source", "usage_source"),  # provider | estimated | manual
)

WRITE_COLUMNS = tuple(c.name for c in CALLS_TABLE if c.written)  # call_row's order
SYNC_COLUMNS = tuple(c.name for c in CALLS_TABLE if c.synced)
FRAME_COLUMNS = tuple(c.frame for c in CALLS_TABLE if c.frame)


def subset(columns: Iterable[str], names: Iterable[str]) -> tuple[str, ...]:
    """``names``, in the order of ``columns`` (each must be one of them)."""
    columns, wanted = tuple(columns), set(names)
    if unknown := wanted.difference(columns):
        raise ValueError(f"not call columns: {', '.join(sorted(unknown))}")
    return tuple(c for c in columns if c in wanted)


def insert_sql(columns: Iterable[str] = WRITE_COLUMNS) -> str:
    """The SQLite ``INSERT INTO calls`` of ``columns`` (the others take their defaults)."""
    columns = list(columns)
    return f"INSERT INTO calls ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


# What log_many fills for each row (the other columns take their defaults).
LOG_MANY_COLUMNS = subset(WRITE_COLUMNS, (
    "ts", "provider", "api", "model_requested", "model", *TOKEN_FIELDS, "usage_extra", "cost_pusd",
    "price_source", "status", "billed", "streamed", "session_id", "attribution", "tagset_id",
    "usage_source",
))  # fmt: skip


def call_row(call: Call, tagset_id: int | None) -> tuple[Any, ...]:
    """The values of :data:`WRITE_COLUMNS` for ``call`` (written out: this is every write's hot path)."""
    return (
        call.ts,
        call.provider,
        call.api,
        call.model_requested,
        call.model,
        call.input_tokens,
        call.output_tokens,
        call.cache_read_tokens,
        call.cache_write_tokens,
        call.reasoning_tokens,
        call.input_audio_tokens,
        call.output_audio_tokens,
        json.dumps(call.usage_extra, sort_keys=True) if call.usage_extra else None,
        to_pusd(call.cost),
        call.price_source,
        call.latency_ms,
        call.status,
        call.http_status,
        call.error,
        int(call.billed),
        int(call.streamed),
        call.request_id,
        call.host,
        call.service_tier,
        call.session_id,
        call.scope_id,
        call.attribution,
        tagset_id,
        call.estimated_input_tokens,
        int(call.replayed),
        to_pusd(call.saved),
        call.usage_source,
    )


def row_call(row: Mapping[str, Any]) -> Call:
    """A :class:`Call` from one row of a calls DataFrame (``frame.to_dict("records")``); NaN reads as None."""

    def value(name: str) -> Any:
        item = row[name]
        return None if isinstance(item, float) and math.isnan(item) else item

    call = Call()
    for column in CALLS_TABLE:
        if column.frame is None or column.attribute is None or column.frame not in row:
            continue
        item = value(column.frame)
        if column.name == "ts":
            item = format_ts(item) if item is not None else call.ts
        elif column.name == "http_status" and item is not None:
            item = int(item)
        elif column.name in ("billed", "streamed", "replayed"):
            item = bool(item)
        elif column.name in TOKEN_FIELDS:
            item = int(item or 0)
        setattr(call, column.attribute, item)
    call.tags = dict(row.get("tags") or {})
    return call


# What pricing a stored call reads (Ledger.reprice, Ledger.check): pricing_call() makes the Call of them.
PRICING_COLUMNS = ("ts", "provider", "model", "model_requested", "service_tier", "usage_extra", "host",
                   "usage_source", *TOKEN_FIELDS)


def pricing_call(values: Sequence[Any]) -> Call:
    """A :class:`Call` to price again, from the values of :data:`PRICING_COLUMNS` of one ``calls`` row."""
    ts, provider, model, requested, tier, extra, host, source, *tokens = values
    call = Call(provider=provider, model=model, model_requested=requested, service_tier=tier, ts=ts,
                usage_extra=json.loads(extra) if extra else None, host=host, usage_source=source)
    for name, value in zip(TOKEN_FIELDS, tokens, strict=True):
        setattr(call, name, value)
    return call
