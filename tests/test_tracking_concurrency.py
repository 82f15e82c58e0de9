"""Four processes x eight threads x 1,000 calls into one ledger file: exactly 32,000 rows, no call lost or
written twice, no "database is locked", totals exact to the picodollar.

Each process is a real interpreter (tests/_concurrency_worker.py) opening the same new ledger at the same
moment (which also races the schema migration). Costs are checked against genai-prices' gpt-4.1 prices.
"""

from __future__ import annotations

import json
import multiprocessing
import queue
import subprocess
import sys
from pathlib import Path

import pytest
from _prices import M, genai_cost, unit_prices

import llmcost_nb

WORKER = Path(__file__).parent / "_concurrency_worker.py"
PROCS, THREADS, CALLS = 4, 8, 1000
TOTAL = PROCS * THREADS * CALLS


def run_workers(ledger: Path, modes: list[str], base: str | None = None) -> list[dict]:
    args = [base] if base else []
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(ledger), str(p), str(THREADS), str(CALLS), mode, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for p, mode in enumerate(modes)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def assert_clean(results: list[dict]) -> None:
    assert [r["calls"] for r in results] == [THREADS * CALLS] * PROCS
    assert [(r["n_errors"], r["warnings"]) for r in results] == [(0, [])] * PROCS, results


def test_direct_log_calls_from_4_processes_x_8_threads(tmp_path):
    path = tmp_path / "shared.db"
    assert_clean(run_workers(path, ["log"] * PROCS))
    ledger = llmcost_nb.Ledger(path)
    conn = ledger.connection
    # every call logged input_tokens = its own number, 1..32,000: each appears exactly once
    assert conn.execute(
        "SELECT COUNT(*), COUNT(DISTINCT id), COUNT(DISTINCT input_tokens), MIN(input_tokens), "
        "MAX(input_tokens) FROM calls"
    ).fetchone() == (TOTAL, TOTAL, TOTAL, 1, TOTAL)
    # the sum of 1..32,000 input tokens plus 32,000 x 10 output tokens, at genai-prices' gpt-4.1 prices
    price = unit_prices("gpt-4.1", "openai")
    expected = (TOTAL * (TOTAL + 1) // 2 * price.input_mtok + TOTAL * 10 * price.output_mtok) / M
    assert ledger.total_cost() == expected
    assert sum(ledger.calls().cost_usd) == expected  # per-row Decimals add up to the SQL total
    for proc in range(PROCS):
        assert ledger.count(tags={"proc": str(proc)}) == THREADS * CALLS
    assert ledger.check().ok


@pytest.mark.slow
def test_http_calls_from_threads_and_async_tasks(tmp_path):
    """Real openai calls against one fake provider: three processes of threads, one of asyncio tasks."""
    from llmcost_nb.testing.fake import FakeProvider

    path = tmp_path / "shared.db"
    with FakeProvider() as fake:
        fake.record_requests = False
        results = run_workers(path, ["http"] * (PROCS - 1) + ["async-http"], fake.openai_base_url)
        served = fake.request_count
    assert_clean(results)
    assert served == TOTAL
    ledger = llmcost_nb.Ledger(path)
    conn = ledger.connection
    assert conn.execute(
        "SELECT COUNT(*), COUNT(DISTINCT id), COUNT(DISTINCT request_id), SUM(input_tokens), "
        "SUM(output_tokens) FROM calls WHERE status = 'ok'"
    ).fetchone() == (TOTAL, TOTAL, TOTAL, 6 * TOTAL, 9 * TOTAL)
    assert ledger.total_cost() == TOTAL * genai_cost("gpt-4.1", "openai", input_tokens=6, output_tokens=9)
    assert conn.execute("SELECT attribution, COUNT(*) FROM calls GROUP BY 1").fetchall() == [
        ("context", TOTAL)
    ]
    assert ledger.count(tags={"proc": "3"}) == THREADS * CALLS  # the asyncio process
    assert ledger.check().ok



def _open_at(path: str, barrier, results) -> None:
    barrier.wait(timeout=60)
    try:
        llmcost_nb.Ledger(path)
    except llmcost_nb.LedgerError as exc:
        results.put(str(exc))
    else:
        results.put("ok")


def test_many_processes_opening_a_new_ledger_at_once(tmp_path):
    """Six processes open the same new ledger at the same instant, twenty times over. Two connections
    switching a new file to WAL at once can deadlock inside SQLite, which then answers "database is locked"
    without waiting (one round in six failed so before set-up took the lock file)."""
    ctx = multiprocessing.get_context("fork")
    for round_ in range(20):
        path = str(tmp_path / f"new{round_}.db")
        barrier, results = ctx.Barrier(6), ctx.Queue()
        procs = [ctx.Process(target=_open_at, args=(path, barrier, results)) for _ in range(6)]
        for proc in procs:
            proc.start()
        answers = []
        try:
            for _ in procs:
                try:
                    answers.append(results.get(timeout=60))
                except queue.Empty:
                    pytest.fail(f"round {round_}: {len(answers)} of 6 processes answered within 60 s "
                                f"({answers}; exit codes {[p.exitcode for p in procs]})")
        finally:
            for proc in procs:
                proc.join(10)
                if proc.is_alive():
                    proc.kill()
                    proc.join()
        assert sorted(answers) == ["ok"] * 6
        assert [proc.exitcode for proc in procs] == [0] * 6
        assert llmcost_nb.Ledger(path).connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
