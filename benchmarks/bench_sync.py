"""Sync speed: push a 1M-row local ledger to a real PostgreSQL server (started here, 127.0.0.1).

    .venv/bin/python benchmarks/bench_sync.py [ROWS]

Prints rows/s for: the first sync (COPY fast path), a full re-push after losing the local marks (staging +
upsert path, every row already there), a no-op sync, and a baseline measured in the same run: a row-at-a-
time ``executemany`` upsert of a sample (what a naive sync would do), with the ratio between them.
"""

from __future__ import annotations

import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import psycopg
from pg_server import PgServer

from llmcost_nb import Call, Ledger
from llmcost_nb.team.sync import _SELECT_CALLS as SELECT_CALLS
from llmcost_nb.team.sync import CALL_COLUMNS, PG_COLUMNS, connect, migrate, sync

MODELS = ("gpt-4.1", "gpt-4.1-mini", "claude-sonnet-4-5", "gemini-2.5-flash")
BASELINE_ROWS = 50_000


def fill(ledger: Ledger, rows: int) -> float:
    started = time.perf_counter()
    chunk = 100_000
    for start in range(0, rows, chunk):
        ledger.write_many(
            Call(
                provider="openai",
                api="chat",
                model=MODELS[i % 4],
                model_requested=MODELS[i % 4],
                input_tokens=1000 + i % 5000,
                output_tokens=200 + i % 700,
                cache_read_tokens=i % 300,
                cost=Decimal(1000 + i % 9000).scaleb(-8),
                latency_ms=800.0 + i % 900,
                tags={"team": ("search", "ads", "infra")[i % 3], "variant": "AB"[i % 2]},
                ts=f"2026-11-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00.{i % 999_999:06d}Z",
                session_id=f"s{i // 5000}",
            )
            for i in range(start, min(rows, start + chunk))
        )
    return time.perf_counter() - started


def baseline(dsn: str, ledger: Ledger) -> float:
    """Row-at-a-time upsert through executemany: rows/s."""
    rows = ledger.connection.execute(SELECT_CALLS + "ORDER BY c.id LIMIT ?", (BASELINE_ROWS,)).fetchall()
    ledger_id = "baseline"
    flags = {CALL_COLUMNS.index(c) for c in ("billed", "streamed", "replayed")}  # booleans in PostgreSQL
    rows = [tuple(bool(v) if i in flags else v for i, v in enumerate(row)) for row in rows]
    cols = ", ".join(PG_COLUMNS)
    sql = (
        f"INSERT INTO llmcost.calls ({cols}) VALUES ({', '.join(['%s'] * len(PG_COLUMNS))}) "
        "ON CONFLICT (ledger_id, id) DO UPDATE SET cost_pusd = EXCLUDED.cost_pusd"
    )
    with connect(dsn) as conn:
        migrate(conn)
        started = time.perf_counter()
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(sql, [(ledger_id, *row) for row in rows])
        return len(rows) / (time.perf_counter() - started)


def main(rows: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, PgServer(fsync=True) as pg:
        ledger = Ledger(Path(tmp) / "bench.db")
        print(f"filling a local ledger with {rows:,} rows: {fill(ledger, rows):.1f} s")
        first = sync(pg.dsn, ledger=ledger)
        print(
            f"first sync      : {first.rows:,} rows in {first.seconds:.2f} s = "
            f"{first.rows_per_s:,.0f} rows/s "
            f"({first.batches} batches)"
        )
        noop = sync(pg.dsn, ledger=ledger)
        print(f"no-op sync      : {noop.seconds * 1000:.0f} ms")
        ledger.connection.execute("UPDATE sync_targets SET last_call_id = 0")
        again = sync(pg.dsn, ledger=ledger)
        print(
            f"full re-push    : {again.rows:,} rows ({again.unchanged:,} unchanged) "
            f"in {again.seconds:.2f} s = "
            f"{again.rows_per_s:,.0f} rows/s"
        )
        with psycopg.connect(pg.dsn) as conn:
            n, pusd = conn.execute("SELECT count(*), sum(cost_pusd) FROM llmcost.calls").fetchone()
        assert (n, Decimal(pusd).scaleb(-12)) == (rows, ledger.total_cost()), "server and local totals differ"
        print(f"server totals   : {n:,} rows, ${Decimal(pusd).scaleb(-12)} (equal to the local ledger)")
        base = baseline(pg.dsn, ledger)
        print(
            f"baseline        : row-at-a-time executemany upsert of {BASELINE_ROWS:,} rows = "
            f"{base:,.0f} rows/s"
        )
        print(
            f"ratio           : first sync {first.rows_per_s / base:.1f}x, "
            f"re-push {again.rows_per_s / base:.1f}x "
            "the baseline"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
