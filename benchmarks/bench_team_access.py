"""Row-level security's cost: a team summary over a 1M-row team ledger as the admin and as a member, one run.

    .venv/bin/python benchmarks/bench_team_access.py [ROWS]

A real PostgreSQL server (started here, 127.0.0.1) under `llmcost team init`; ROWS calls over 28 days,
3 teams, 4 models, 8 ledgers. Alice is a member of team `search` and registered one of the ledgers; Carol is
FinOps.
Timed (best of 5, after a warm-up), through ``Ledger("postgresql://…")`` as each role:

- the team summary ``summary(by=("day", "model"), where={"tag:team": "search"})``: the same rows for every
  role (a member sees all of its team's calls), so the ratio is row-level security's own cost;
- the whole-ledger summary ``summary(by=("day", "tag:team"))``: each role's slice (the member reads less).

Goal: member ≤ 1.5× admin. The member's figures are checked against the admin's filtered by hand. Then a
first sync of ROWS / 5 (at most 200,000) rows as the admin and as the member, rows/s.
"""

from __future__ import annotations

import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import psycopg
from pg_server import PgServer

from llmcost_nb import Ledger
from llmcost_nb.team import sync
from llmcost_nb.team.access import add_member, init
from llmcost_nb.team.schema import connect

RUNS = 5


def fill(dsn: str, rows: int) -> float:
    """ROWS calls straight into PostgreSQL (what 8 laptops' syncs would leave), 8 ledgers with owners."""
    started = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        owners = ["alice", "bob", "bob", "dave", "dave", "erin", "erin", "erin"]
        for k, owner in enumerate(owners):
            conn.execute(
                "INSERT INTO llmcost.ledgers (ledger_id, label, hostname, owner) VALUES (%s, %s, "
                "'bench', %s)",
                (f"ledger-{k}", f"laptop{k}.db", owner),
            )
        conn.execute(
            """
            INSERT INTO llmcost.calls (ledger_id, id, ts, provider, api, model_requested, model,
                input_tokens, output_tokens, cache_read_tokens, cost_pusd, price_source, latency_ms, status,
                billed, streamed, session_id, tags)
            SELECT 'ledger-' || (i %% 8), i,
                timestamptz '2026-11-01' + (i %% 28) * interval '1 day' + (i %% 86400) * interval '1 second',
                'openai', 'chat', m, m, 1000 + i %% 5000, 200 + i %% 700, i %% 300,
                (1000 + i %% 9000) * 10000,
                'genai-prices', 800 + i %% 900, CASE WHEN i %% 50 = 0 THEN 'error' ELSE 'ok' END, true, false,
                's' || (i / 5000),
                jsonb_build_object('team', (ARRAY['search', 'ads', 'infra'])[1 + i %% 3], 'variant',
                                   (ARRAY['A', 'B'])[1 + i %% 2])
            FROM generate_series(1, %s) AS i,
                LATERAL (SELECT (ARRAY['gpt-4.1', 'gpt-4.1-mini', 'claude-sonnet-4-5', 'gemini-2.5-flash'])
                         [1 + (i / 7) %% 4] AS m) AS model
            """,
            (rows,),
        )
        conn.execute("VACUUM ANALYZE llmcost.calls")
        conn.execute("VACUUM ANALYZE llmcost.ledgers")
    return time.perf_counter() - started


def best(runs: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Each role's best time of RUNS, the roles taking turns (a busy machine slows them alike)."""
    for run in runs.values():
        run()  # warm-up: the connection, the catalog caches, the table in shared buffers
    times: dict[str, list[float]] = {who: [] for who in runs}
    for _ in range(RUNS):
        for who, run in runs.items():
            started = time.perf_counter()
            run()
            times[who].append(time.perf_counter() - started)
    return {who: min(t) for who, t in times.items()}


def main(rows: int) -> None:
    with PgServer() as pg:
        admin = pg.dsn
        with connect(admin) as conn:
            init(conn)
            add_member(conn, "alice", teams=["search"])
            for role in ("bob", "dave", "erin"):
                add_member(conn, role, teams=["ads"])
            add_member(conn, "carol", finops=True)
        print(f"filling the team ledger with {rows:,} rows: {fill(admin, rows):.1f} s")
        dsn = {"admin": admin, **{r: admin.replace("postgres@", f"{r}@") for r in ("alice", "carol")}}
        ledgers = {who: Ledger(d) for who, d in dsn.items()}

        team = best({who: (lambda led=led: led.summary(by=("day", "model"), where={"tag:team": "search"}))
                     for who, led in ledgers.items()})  # fmt: skip
        whole = best(
            {who: (lambda led=led: led.summary(by=("day", "tag:team"))) for who, led in ledgers.items()}
        )

        # the member's figures are the admin's, filtered by hand
        search = ledgers["admin"].summary(by=("day", "model"), where={"tag:team": "search"})
        assert ledgers["alice"].summary(by=("day", "model"), where={"tag:team": "search"}).equals(search)
        with psycopg.connect(admin) as conn:
            n, pusd = conn.execute(
                "SELECT count(*), sum(cost_pusd) FROM llmcost.calls WHERE team = 'search' OR "
                "ledger_id = 'ledger-0'"
            ).fetchone()
        alice_rows = ledgers["alice"].count()
        assert (alice_rows, ledgers["alice"].total_cost()) == (n, Decimal(pusd).scaleb(-12)), (
            "the member's rows differ from the hand-filtered ones"
        )
        print(f"rows seen       : admin {ledgers['admin'].count():,}, FinOps {ledgers['carol'].count():,}, "
              f"member {alice_rows:,} (team search + its own ledger)")  # fmt: skip
        print(
            f"team summary    : admin {team['admin'] * 1000:.0f} ms, FinOps {team['carol'] * 1000:.0f} ms, "
            f"member {team['alice'] * 1000:.0f} ms = {team['alice'] / team['admin']:.2f}x admin (goal "
            "<= 1.5x)"
        )
        print(
            f"whole summary   : admin {whole['admin'] * 1000:.0f} ms, FinOps {whole['carol'] * 1000:.0f} ms, "
            f"member {whole['alice'] * 1000:.0f} ms = {whole['alice'] / whole['admin']:.2f}x admin"
        )
        for led in ledgers.values():
            led.close()
        sync_speeds(admin, dsn["alice"], min(rows // 5, 200_000))


def sync_speeds(admin: str, member: str, rows: int) -> None:
    """A first sync of ROWS rows as the admin (COPY) and as a member (PostgreSQL refuses COPY under row-level
    security: staging table + INSERT), from two copies of one local ledger (each its own ledger_id)."""
    from bench_sync import fill as fill_local

    with tempfile.TemporaryDirectory() as tmp:
        paths = {"admin": Path(tmp) / "admin.db", "member": Path(tmp) / "member.db"}
        local = Ledger(paths["admin"])
        fill_local(local, rows)
        local.close()
        shutil.copy(paths["admin"], paths["member"])
        with sqlite3.connect(paths["member"]) as conn:
            conn.execute("UPDATE meta SET value = 'bench-member' WHERE key = 'ledger_id'")
        speed = {
            who: sync(dsn, ledger=paths[who]).rows_per_s
            for who, dsn in (("admin", admin), ("member", member))
        }
    print(
        f"first sync      : {rows:,} rows, admin {speed['admin']:,.0f} rows/s, member {speed['member']:,.0f} "
        f"rows/s = {speed['member'] / speed['admin']:.2f}x admin"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
