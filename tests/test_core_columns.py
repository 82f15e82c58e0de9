"""One list of call columns (``llmcost_nb.core.columns.CALLS_TABLE``): the SQLite schema of a fresh ledger,
the PostgreSQL DDL, what a write inserts, what a sync pushes, the calls frame and a Call rebuilt from a
frame row all follow it."""

from __future__ import annotations

import json
import re
from datetime import date
from decimal import Decimal

from llmcost_nb import Call
from llmcost_nb.core.columns import (
    CALLS_TABLE,
    FRAME_COLUMNS,
    LOG_MANY_COLUMNS,
    SYNC_COLUMNS,
    WRITE_COLUMNS,
    call_row,
    row_call,
)
from llmcost_nb.core.money import to_pusd
from llmcost_nb.core.times import format_ts, parse_iso
from llmcost_nb.team.schema import PG_MIGRATIONS
from llmcost_nb.testing.sample_data import generate


def test_a_fresh_sqlite_ledger_has_exactly_these_columns(ledger):
    found = [row[1] for row in ledger.connection.execute("PRAGMA table_info(calls)")]
    assert found == [c.name for c in CALLS_TABLE] == ["id", *WRITE_COLUMNS]


def test_the_postgresql_ddl_has_exactly_these_columns():
    ddl = " ".join(sql for _, _, sql in PG_MIGRATIONS)
    body = re.search(r"CREATE TABLE \{s\}\.calls \((.*?)PRIMARY KEY \(ledger_id, id\)", ddl, re.S).group(1)
    names = [part.split()[0] for part in body.split(",") if part.strip()]
    added = re.findall(r"ALTER TABLE \{s\}\.calls ADD COLUMN IF NOT EXISTS (\w+)", ddl)  # later migrations
    # the team ledger adds which ledger a row came from, its tags as JSON and when it arrived
    assert names == ["ledger_id", *(c for c in SYNC_COLUMNS if c not in added), "tags", "synced_at"]
    assert added == [c for c in SYNC_COLUMNS if c not in names]  # each added once, in the table's order
    assert [c for c in WRITE_COLUMNS if c not in SYNC_COLUMNS] == ["tagset_id"]


def test_call_row_puts_each_attribute_in_its_column():
    call = Call(
        provider="openai", api="chat", model_requested="gpt-x", model="gpt-x-1", input_tokens=1,
        output_tokens=2, cache_read_tokens=3, cache_write_tokens=4, reasoning_tokens=5, input_audio_tokens=6,
        output_audio_tokens=7, usage_extra={"web_searches": 8}, cost=Decimal("0.000009"), price_source="p",
        latency_ms=10.5, status="error", http_status=429, error="slow down", billed=False, streamed=True,
        request_id="r", host="h", service_tier="flex", session_id="s", scope_id="sc", attribution="context",
        ts="2026-11-22T07:41:22.123456Z", estimated_input_tokens=11, replayed=True, saved=Decimal("0.5"),
        usage_source="estimated",
    )  # fmt: skip
    row = dict(zip(WRITE_COLUMNS, call_row(call, 77), strict=True))
    converted = {"usage_extra": json.dumps(call.usage_extra), "cost_pusd": to_pusd(call.cost),
                 "saved_pusd": to_pusd(call.saved), "billed": 0, "streamed": 1, "replayed": 1}  # fmt: skip
    for column in CALLS_TABLE:
        if not column.written:
            continue
        if column.attribute is None:
            assert row[column.name] == 77  # the tag set's id
        else:
            assert row[column.name] == converted.get(column.name, getattr(call, column.attribute)), column
    assert set(LOG_MANY_COLUMNS) < set(WRITE_COLUMNS)


def test_a_frame_row_gives_back_the_call(ledger):
    call = Call(provider="openai", api="chat", model="m", input_tokens=3, output_tokens=4,
                input_audio_tokens=5, cost=Decimal("0.25"), latency_ms=12.5, http_status=200, streamed=True,
                request_id="r", attribution="context", tags={"team": "search"},
                ts="2026-11-22T07:41:22.123456Z")  # fmt: skip
    ledger.write(call)
    frame = ledger.calls()
    assert tuple(frame.columns) == FRAME_COLUMNS
    back = row_call(frame.to_dict("records")[0])
    for column in CALLS_TABLE:
        if column.frame and column.attribute:
            assert getattr(back, column.attribute) == getattr(call, column.attribute), column
    assert back.tags == call.tags and back.id == call.id


def test_generated_sample_timestamps_are_ledger_text(tmp_path):
    sample = generate(rows=1000, days=21, seed=1, path=tmp_path / "s.db", end=date(2026, 11, 20))
    stamps = [ts for (ts,) in sample.ledger.connection.execute("SELECT ts FROM calls")]
    sample.ledger.close()
    assert stamps and all(format_ts(parse_iso(ts)) == ts for ts in stamps)
