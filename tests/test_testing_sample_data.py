"""The sample ledger generator: realistic, deterministic, with its planted events."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import date, timedelta
from decimal import Decimal

import pytest

from llmcost_nb import Ledger
from llmcost_nb.testing.sample_data import MODELS, SAMPLE_ARGS, _planted_days, generate, sample_ledger

SAMPLE = dict(rows=6_000, days=28, seed=3)  # conftest's `sample`: generate(**SAMPLE), ending 2026-11-20


def digest(path):
    conn = sqlite3.connect(path)
    rows = conn.execute(
        "SELECT ts, model, input_tokens, output_tokens, cost_pusd, latency_ms, status, scope_id, "
        "tagset_id FROM calls ORDER BY id"
    ).fetchall()
    conn.close()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def test_same_arguments_same_ledger(sample, tmp_path):
    again = generate(**SAMPLE, path=tmp_path / "b.db", end=sample.end)
    assert digest(again.path) == digest(sample.path)
    other = generate(**{**SAMPLE, "seed": 4}, path=tmp_path / "c.db", end=sample.end)
    assert digest(other.path) != digest(sample.path)


def test_shape_of_the_sample(sample):
    conn = sample.ledger.connection
    end = date(2026, 11, 20)  # the fixture's end (SAMPLE_ARGS)
    start = end - timedelta(days=27)
    assert (sample.start, sample.end) == (start, end)
    first, last = conn.execute("SELECT MIN(ts), MAX(ts) FROM calls").fetchone()
    assert first[:10] == start.isoformat() and last[:10] == end.isoformat()
    assert (
        sample.rows == conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0] > 6_000
    )  # plus planted calls
    providers = {r[0] for r in conn.execute("SELECT DISTINCT provider FROM calls")}
    assert providers == {"openai", "anthropic", "google"}
    assert {r[0] for r in conn.execute("SELECT DISTINCT model FROM calls")} == set(MODELS)
    keys = {r[0] for r in conn.execute("SELECT DISTINCT key FROM tags")}
    assert keys == {"team", "project", "user", "env"}
    # failed attempts are unbilled and cost nothing; some streams never finished
    assert (
        conn.execute(
            "SELECT COUNT(*) FROM calls WHERE status = 'error' AND (billed = 1 OR cost_pusd != 0 "
            "OR http_status < 400)"
        ).fetchone()[0]
        == 0
    )
    assert conn.execute("SELECT COUNT(*) FROM calls WHERE status = 'error'").fetchone()[0] > 0
    assert (
        conn.execute("SELECT COUNT(*) FROM calls WHERE status = 'unfinished' AND streamed = 1").fetchone()[0]
        > 0
    )
    streamed = conn.execute("SELECT AVG(streamed) FROM calls WHERE api != 'embeddings'").fetchone()[0]
    assert 0.25 < streamed < 0.45
    # weekday rhythm: a weekday carries several times a weekend day's calls
    per_dow = dict(conn.execute("SELECT strftime('%w', ts), COUNT(*) FROM calls GROUP BY 1").fetchall())
    assert min(per_dow[d] for d in "12345") > 2.5 * max(per_dow[d] for d in "06")


def test_costs_follow_the_price_table_and_the_price_cut(sample):
    conn = sample.ledger.connection
    cut = sample.price_change_day.isoformat()
    for when, factor in (("<", 1), (">=", Decimal("0.2"))):
        row = conn.execute(
            f"SELECT input_tokens, output_tokens, cache_read_tokens, cost_pusd FROM calls "
            f"WHERE model = 'o3' AND status = 'ok' AND ts {when} ? LIMIT 1",
            (cut,),
        ).fetchone()
        inp, out, cached, pusd = row
        full = (inp - cached) * 10_000_000 + out * 40_000_000 + cached * 2_500_000
        assert pusd == (full if factor == 1 else full // 5)
    assert (
        sample.ledger.connection.execute(
            "SELECT COUNT(*) FROM calls WHERE price_source = 'sample'"
        ).fetchone()[0]
        > 0
    )


def test_planted_events(sample):
    conn = sample.ledger.connection
    n, scope_kind = conn.execute(
        "SELECT COUNT(*), (SELECT kind FROM scopes WHERE id = ?) FROM calls WHERE scope_id = ?",
        (sample.runaway_scope, sample.runaway_scope),
    ).fetchone()
    assert n >= 200 and scope_kind == "cell"
    assert (
        conn.execute("SELECT MIN(ts) FROM calls WHERE scope_id = ?", (sample.runaway_scope,)).fetchone()[0][
            :10
        ]
        == sample.runaway_day.isoformat()
    )
    opus = conn.execute(
        "SELECT COUNT(*) FROM calls WHERE model = 'claude-opus-4-20250514' AND ts LIKE ?",
        (sample.spike_day.isoformat() + "%",),
    ).fetchone()[0]
    assert opus >= 40
    assert sample.spike_day.weekday() < 5 and sample.runaway_day.weekday() < 5


def test_refuses_to_mix_into_a_used_ledger(sample, tmp_path):
    with pytest.raises(ValueError, match=r"already holds .* calls: sample data goes into a new file"):
        generate(rows=1_000, days=21, path=sample.path, end=sample.end)
    with pytest.raises(ValueError, match="need rows >= 1000 and days >= 21"):
        generate(rows=10, days=5, path=tmp_path / "x.db")


def planted_shape(ledger: Ledger, rows: int, days: int, end: date, seed: int) -> None:
    """What generate(rows, days, seed, end) promises whatever numpy's random draws are: the rows and planted
    events it was asked for, its days, and every cost from its price table (o3 a fifth from the cut on)."""
    conn = ledger.connection
    start = end - timedelta(days=days - 1)
    spike, runaway = _planted_days(start, days)
    batch, loop = max(40, rows // 300), max(200, rows // 60)
    assert conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0] == rows + batch + loop
    first, last = conn.execute("SELECT MIN(ts), MAX(ts) FROM calls").fetchone()
    assert (first[:10], last[:10]) == (start.isoformat(), end.isoformat())
    scope = f"sample-runaway-{runaway.isoformat()}"
    assert conn.execute("SELECT COUNT(*), MIN(substr(ts, 1, 10)), MAX(substr(ts, 1, 10)) FROM calls "
                        "WHERE scope_id = ?", (scope,)).fetchone() == (loop, runaway.isoformat(),
                                                                        runaway.isoformat())
    assert conn.execute("SELECT kind, name, session_id FROM scopes WHERE id = ?", (scope,)).fetchone() == (
        "cell", "agent loop", f"sample-{seed}")
    opus = "SELECT COUNT(*) FROM calls WHERE model = 'claude-opus-4-20250514' AND ts LIKE ?"
    assert conn.execute(opus, (spike.isoformat() + "%",)).fetchone()[0] >= batch
    cut = (start + timedelta(days * 3 // 5)).isoformat()
    prices = {model: [round(p * 1_000_000) for p in spec[7]] for model, spec in MODELS.items()}
    for model, ts, inp, out, read, write, pusd, source in conn.execute(
            "SELECT model, ts, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, "
            "cost_pusd, price_source FROM calls WHERE status != 'error'"):
        p_in, p_out, p_read, p_write = prices[model]
        full = (inp - read - write) * p_in + out * p_out + read * p_read + write * p_write
        assert (pusd, source) == (full // 5 if model == "o3" and ts >= cut else full, "sample")


def test_generated_sample_has_its_arguments_shape(sample):
    planted_shape(sample.ledger, 6_000, 28, sample.end, 3)


def test_committed_sample_is_the_documented_one(tmp_path):
    """The committed sample (or, without it, a fresh one) is what generate(**SAMPLE_ARGS) promises; the draws
    themselves come from numpy's generator, which may change between numpy releases (NEP 19)."""
    copy = sample_ledger(tmp_path)
    assert isinstance(copy, Ledger) and copy.path.parent == tmp_path
    args = SAMPLE_ARGS
    planted_shape(copy, args["rows"], args["days"], date.fromisoformat(args["end"]), args["seed"])
