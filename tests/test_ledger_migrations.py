"""Ledgers made by earlier versions of llmcost_nb open with every row kept and are migrated to the current
schema ("migrations run on open", README).

A ledger of schema version N is what a release with N migrations left: its first N migrations applied and
recorded by sqlite-utils (``Migrations.apply(db, stop_before=...)``, public API), ``PRAGMA user_version = N``,
WAL mode, and rows written with the columns that version had (``estimated_input_tokens`` and the budgets
table came in version 3, ``replayed`` / ``saved_pusd`` in 5, ``call_content`` in 6, ``usage_source`` in 8).
The migration names are written out here on purpose: they are stored in every ledger, so renaming one would
make old ledgers run it again.

Prices are the ledger's own overrides (model-x $1 / $10, model-y $3 / $15 per million input / output tokens),
so the stored costs are exact re-pricings: 1200 in + 300 out of model-x = $0.0042; 7 in + 1 out of model-y
= $0.000036.
"""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal

import pytest
from sqlite_utils import Database

import llmcost_nb
from llmcost_nb.budget import limits as budget
from llmcost_nb.ledger.migrations import migrations
from llmcost_nb.ledger.sqlite import SCHEMA_VERSION

NAMES = ("m001_calls", "m002_sync_outbox", "m003_budgets_and_estimates", "m004_rollups", "m005_replay",
         "m006_call_content", "m007_scope_rollup", "m008_usage_source", "m009_notebook_rollup",
         "m010_scope_unknowns")
SET_AT = "2026-09-30T12:00:00.000000Z"
PUSD = 1_000_000  # picodollars in a micro-dollar

# Each row: column -> value; a (version, column) key is a column that version added (left out before it).
ROWS = [
    {
        "ts": "2026-10-01T09:00:00.000001Z", "provider": "openai", "api": "chat",
        "model_requested": "model-x", "model": "model-x", "input_tokens": 1200, "output_tokens": 300,
        "cost_pusd": 4200 * PUSD, "price_source": "ledger override", "latency_ms": 812.5, "status": "ok",
        "http_status": 200, "billed": 1, "streamed": 0, "request_id": "req_1", "session_id": "s-old",
        "scope_id": "sc-1", "attribution": "active", "tagset_id": 1, (3, "estimated_input_tokens"): 1150,
    },
    {
        "ts": "2026-10-01T09:00:01.500000Z", "provider": "anthropic", "api": "messages",
        "model_requested": "model-y", "model": "model-y", "input_tokens": 7, "output_tokens": 1,
        "cost_pusd": 36 * PUSD, "price_source": "ledger override", "status": "unfinished", "billed": 1,
        "streamed": 1, "session_id": "s-old", "attribution": "unattributed", "tagset_id": 2,
    },
    {
        "ts": "2026-10-02T00:00:00.000000Z", "provider": "openai", "api": "chat",
        "model_requested": "model-x", "model": "model-x", "status": "error", "http_status": 429,
        "error": "rate limited", "billed": 0, "streamed": 0, "session_id": "s-old", "attribution": "active",
        "scope_id": "sc-1", "tagset_id": 1,
    },
    {
        "ts": "2026-10-03T10:00:00.000000Z", "provider": "openai", "api": "chat",
        "model_requested": "model-x", "model": "model-x", "input_tokens": 1200, "output_tokens": 300,
        "cost_pusd": 0, "status": "ok", "billed": 0, "streamed": 0, "session_id": "s-old",
        "attribution": "manual", (5, "replayed"): 1, (5, "saved_pusd"): 4200 * PUSD,
        (8, "usage_source"): "manual",
    },
]
TAGS = [{"team": "search"}, {"team": "ads", "user": "ana"}]


def make_old_ledger(path, version: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    db = Database(conn)
    migrations.apply(db, stop_before=NAMES[version])
    assert [m.name for m in migrations.applied(db)] == list(NAMES[:version])
    conn.execute(f"PRAGMA user_version = {version}")
    for tagset_id, tags in enumerate(TAGS, 1):
        conn.execute("INSERT INTO tagsets (id, tags) VALUES (?, ?)",
                     (tagset_id, json.dumps(tags, sort_keys=True)))
        conn.executemany("INSERT INTO tags VALUES (?, ?, ?)", [(tagset_id, k, v) for k, v in tags.items()])
    conn.executemany("INSERT INTO prices VALUES ('', ?, ?, ?, NULL, NULL, ?)",
                     [("model-x", "1", "10", SET_AT), ("model-y", "3", "15", SET_AT)])
    conn.execute("INSERT INTO scopes VALUES ('sc-1', 'cell', NULL, '/work/a.ipynb', 3, 's-old', ?, 1)",
                 (SET_AT,))
    for row in ROWS:
        kept = {(k[1] if isinstance(k, tuple) else k): v for k, v in row.items()
                if not isinstance(k, tuple) or k[0] <= version}
        conn.execute(f"INSERT INTO calls ({', '.join(kept)}) VALUES ({', '.join('?' * len(kept))})",
                     tuple(kept.values()))
    if version >= 3:
        conn.execute("INSERT INTO budgets VALUES ('day', '5.00', 1, '[\"0.8\", \"1\"]', ?)", (SET_AT,))
    if version >= 6:
        conn.execute("INSERT INTO call_content VALUES (1, '{\"model\": \"model-x\"}', NULL)")
    conn.close()


def schema(conn) -> list[tuple]:
    return conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name").fetchall()


@pytest.mark.parametrize("version", range(1, SCHEMA_VERSION))
def test_a_ledger_of_an_earlier_schema_opens_with_its_rows_migrated(tmp_path, version):
    path = tmp_path / f"v{version}.db"
    make_old_ledger(path, version)

    led = llmcost_nb.Ledger(path)
    conn = led.connection
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert [m.name for m in migrations.applied(Database(conn))] == list(NAMES)
    fresh = llmcost_nb.Ledger(tmp_path / "fresh.db")
    assert schema(conn) == schema(fresh.connection)  # the same tables, columns, indexes and triggers

    calls = led.calls()
    assert calls.id.tolist() == [1, 2, 3, 4]
    assert calls.model.tolist() == ["model-x", "model-y", "model-x", "model-x"]
    assert calls.input_tokens.tolist() == [1200, 7, 0, 1200]
    assert calls.output_tokens.tolist() == [300, 1, 0, 300]
    assert calls.cost_usd.tolist() == [Decimal("0.0042"), Decimal("0.000036"), None, Decimal(0)]
    assert calls.status.tolist() == ["ok", "unfinished", "error", "ok"]
    assert calls.tags.tolist() == [TAGS[0], TAGS[1], TAGS[0], {}]
    assert led.total_cost() == Decimal("0.004236")
    extra = conn.execute(
        "SELECT estimated_input_tokens, replayed, saved_pusd FROM calls ORDER BY id").fetchall()
    assert extra == [
        (1150 if version >= 3 else None, 0, None), (None, 0, None), (None, 0, None),
        (None, 1, 4200 * PUSD) if version >= 5 else (None, 0, None),
    ]
    # logged by hand (attribution manual) before usage_source existed: manual; the others, the provider's
    assert calls.usage_source.tolist() == ["provider", "provider", "provider", "manual"]
    assert conn.execute("SELECT call_id, request FROM call_content").fetchall() == (
        [(1, '{"model": "model-x"}')] if version >= 6 else [])

    by_model = led.summary(by="model").set_index("model")  # the rollups, built from the migrated rows
    assert by_model.requests.to_dict() == {"model-x": 3, "model-y": 1}
    assert by_model.cost_usd.to_dict() == {"model-x": Decimal("0.0042"), "model-y": Decimal("0.000036")}
    assert budget.spent("notebook", notebook="/work/a.ipynb", ledger=led) == Decimal("0.0042")
    assert led.notebook_sessions(["/work/a.ipynb"]) == [  # the notebook rollup: scope sc-1's two calls
        ("/work/a.ipynb", "s-old", 2, 4200 * PUSD, ROWS[0]["ts"], ROWS[2]["ts"], 0, 0)]
    assert budget.budgets(led) == (
        [budget.Budget(Decimal("5.00"), "day", True, (Decimal("0.8"), Decimal("1")))] if version >= 3 else [])

    report = led.check()
    assert (report.ok, report.rows, report.repriced) == (True, 4, 2), str(report)
    new = llmcost_nb.log(model="model-y", input_tokens=1_000_000, output_tokens=0, tags=TAGS[1], ledger=led)
    assert (new.id, new.cost) == (5, Decimal(3))
    assert led.calls(tags={"user": "ana"}).id.tolist() == [2, 5]
    led.close()
    fresh.close()
