"""Benchmark: opening a ledger of the previous schema (its migration), against one pass over its calls.

A ledger written by the release before this one (schema ``SCHEMA_VERSION - 1``: its migrations applied by
sqlite-utils, as that release left it) holds ``--calls`` calls in ``--scopes`` notebook cells, its rollups
current. ``Ledger(path)`` migrates it; the baseline, measured in the same run on the same file, is one
aggregate pass over its calls grouped by scope (what a migration that reads every call once must at least
do). Goal: the migration stays linear, a few such passes: opening a big ledger after an upgrade must not
stall a kernel. (A correlated lookup per scope without an index on ``calls.scope_id`` made
``m010_scope_unknowns`` quadratic at first: 205 s for 100k calls in 10k cells, against 0.08 s now.)

    .venv/bin/python benchmarks/bench_migrate.py [--calls 300000] [--scopes 30000]
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import tempfile
import time
from pathlib import Path

from sqlite_utils import Database

import llmcost_nb
from llmcost_nb.ledger import SCHEMA_VERSION
from llmcost_nb.ledger import migrations as migrations_module


def previous_schema_ledger(path: Path, calls: int, scopes: int) -> None:
    """A ledger as the previous release left it: calls in cells, every 7th unpriced, every 5th estimated."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    names = sorted(n for n in vars(migrations_module) if re.fullmatch(r"m\d{3}_\w+", n))
    migrations_module.migrations.apply(Database(conn), stop_before=names[SCHEMA_VERSION - 1])
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION - 1}")
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO scopes VALUES (?, 'cell', NULL, ?, 1, ?, '2026-11-01T00:00:00Z', NULL)",
                     [(f"c{k}", f"/nb/{k % 50}.ipynb", f"k{k % 200}") for k in range(scopes)])
    conn.executemany(
        "INSERT INTO calls (ts, api, status, billed, streamed, cost_pusd, scope_id, usage_source) "
        "VALUES (?, 'chat', 'ok', 1, 0, ?, ?, ?)",
        ((f"2026-11-01T00:{i // 1_000_000 % 60:02d}:00.{i % 1_000_000:06d}Z",
          None if i % 7 == 0 else 1000 + i, f"c{i % scopes}", "estimated" if i % 5 == 0 else "provider")
         for i in range(calls)))
    # the rollups current, as the previous schema's refresh left them
    conn.execute("INSERT INTO rollup_scope SELECT scope_id, COUNT(*), COALESCE(SUM(cost_pusd), 0), MIN(ts), "
                 "MAX(ts) FROM calls GROUP BY scope_id")
    conn.execute("INSERT INTO rollup_notebook SELECT s.notebook, s.session_id, SUM(r.n), SUM(r.cost_pusd), "
                 "MIN(r.first_ts), MAX(r.last_ts) FROM rollup_scope r JOIN scopes s ON s.id = r.scope_id "
                 "GROUP BY 1, 2")
    conn.executemany("INSERT OR REPLACE INTO rollup_state (name, last_id) VALUES (?, ?)",
                     [("calls", calls), ("scopes", scopes)])
    conn.execute("COMMIT")
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300_000)
    parser.add_argument("--scopes", type=int, default=30_000)
    args = parser.parse_args()
    path = Path(tempfile.mkdtemp(prefix="llmcost-bench-migrate-")) / "previous.db"
    previous_schema_ledger(path, args.calls, args.scopes)

    conn = sqlite3.connect(path)
    start = time.perf_counter()
    conn.execute("SELECT scope_id, COUNT(*), SUM(billed = 1 AND cost_pusd IS NULL) FROM calls "
                 "WHERE scope_id IS NOT NULL GROUP BY scope_id").fetchall()
    baseline = time.perf_counter() - start
    conn.close()

    start = time.perf_counter()
    ledger = llmcost_nb.Ledger(path)
    migrated = time.perf_counter() - start
    version = ledger.connection.execute("PRAGMA user_version").fetchone()[0]
    ledger.close()
    print(f"schema {SCHEMA_VERSION - 1} -> {version}, {args.calls:,} calls in {args.scopes:,} cells: "
          f"open + migrate {migrated:.3f} s; baseline, one pass over the calls by scope {baseline:.3f} s; "
          f"ratio {migrated / baseline:.1f}x")


if __name__ == "__main__":
    main()
