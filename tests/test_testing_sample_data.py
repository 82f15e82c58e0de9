"""The sample ledger generator: realistic, deterministic, with its planted events."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

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


def test_costs_are_the_ledgers_own_pricing_of_its_price_table(sample):
    """The price table is stored as the ledger's overrides, and every billed row costs exactly what the
    ledger's pricer gives for it: check() re-prices all of them to the same picodollar."""
    conn = sample.ledger.connection
    rows = conn.execute(
        "SELECT provider, model, input_mtok, output_mtok, cache_read_mtok, cache_write_mtok FROM prices")
    stored = {(provider, model): tuple(map(Decimal, prices)) for provider, model, *prices in rows}
    table = {(spec[0], model): tuple(Decimal(str(p)) for p in spec[7]) for model, spec in MODELS.items()}
    assert stored == table
    inp, out, cached, pusd = conn.execute(
        "SELECT input_tokens, output_tokens, cache_read_tokens, cost_pusd FROM calls "
        "WHERE model = 'o3' AND status = 'ok' AND cache_read_tokens > 0 LIMIT 1").fetchone()
    assert pusd == (inp - cached) * 10_000_000 + out * 40_000_000 + cached * 2_500_000
    report = sample.ledger.check()
    assert report.ok and report.problems == [], str(report)
    billed = conn.execute("SELECT COUNT(*) FROM calls WHERE billed = 1").fetchone()[0]
    assert report.repriced == billed > 6_000
    assert {r[0] for r in conn.execute("SELECT DISTINCT price_source FROM calls WHERE billed = 1")} == {
        "override"}


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
    events it was asked for, its days, and every cost from its price table."""
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
    prices = {model: [round(p * 1_000_000) for p in spec[7]] for model, spec in MODELS.items()}
    for model, inp, out, read, write, pusd, source in conn.execute(
            "SELECT model, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, "
            "cost_pusd, price_source FROM calls WHERE status != 'error'"):
        p_in, p_out, p_read, p_write = prices[model]
        full = (inp - read - write) * p_in + out * p_out + read * p_read + write * p_write
        assert (pusd, source) == (full, "override")


def test_generated_sample_has_its_arguments_shape(sample):
    planted_shape(sample.ledger, 6_000, 28, sample.end, 3)


def test_committed_sample_is_the_documented_one(tmp_path):
    """The committed sample (or, without it, a fresh one) is what generate(**SAMPLE_ARGS) promises; the draws
    themselves come from numpy's generator, which may change between numpy releases (NEP 19)."""
    copy = sample_ledger(tmp_path)
    assert isinstance(copy, Ledger) and copy.path.parent == tmp_path
    args = SAMPLE_ARGS
    planted_shape(copy, args["rows"], args["days"], date.fromisoformat(args["end"]), args["seed"])


def test_the_committed_sample_passes_its_own_check():
    """``llmcost check sample_data/ledger.db`` exits 0: the shipped file, checked where it lies (read-only
    but for re-pricing, which writes nothing)."""
    from click.testing import CliRunner

    from llmcost_nb.cli.app import main

    committed = Path(__file__).resolve().parents[1] / "sample_data" / "ledger.db"
    before = hashlib.sha256(committed.read_bytes()).hexdigest()
    result = CliRunner().invoke(main, ["check", str(committed)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{committed}: ok — schema version ")
    assert "priced rows match re-pricing" in result.output and "problem" not in result.output
    assert hashlib.sha256(committed.read_bytes()).hexdigest() == before


def utc_today():
    return datetime.now(UTC).date()


@pytest.mark.parametrize("as_of", ["2027-03-04", date(2026, 11, 1), "today"])
def test_as_of_shifts_the_sample_to_end_that_day(tmp_path, as_of):
    (tmp_path / "plain").mkdir()
    (tmp_path / "shifted").mkdir()
    plain = sample_ledger(tmp_path / "plain")
    shifted = sample_ledger(tmp_path / "shifted", as_of=as_of)
    last = {"today": utc_today()}.get(as_of) if isinstance(as_of, str) else as_of
    last = date.fromisoformat(as_of) if last is None else last
    end = date.fromisoformat(SAMPLE_ARGS["end"])
    moved = last - end
    (first, final), (first0, final0) = shifted.time_span(), plain.time_span()
    assert final[:10] == last.isoformat() and final0[:10] == SAMPLE_ARGS["end"]
    assert first[:10] == (date.fromisoformat(first0[:10]) + moved).isoformat()
    assert first[10:] == first0[10:] and final[10:] == final0[10:]  # times of day kept to the microsecond
    assert (shifted.count(), shifted.total_cost()) == (plain.count(), plain.total_cost())
    week = shifted.summary(by=(), since=(last - timedelta(days=6)).isoformat())
    plain_week = plain.summary(by=(), since=(end - timedelta(days=6)).isoformat())
    assert week["requests"].tolist() == plain_week["requests"].tolist() != [0]
    assert week["cost_usd"].tolist() == plain_week["cost_usd"].tolist()
    starts = "SELECT MIN(started), MAX(started) FROM scopes"
    s_first, s_last = shifted.connection.execute(starts).fetchone()
    p_first, p_last = plain.connection.execute(starts).fetchone()
    assert (s_first[:10], s_last[:10]) == tuple(
        (date.fromisoformat(t[:10]) + moved).isoformat() for t in (p_first, p_last))
    assert shifted.check().ok


def test_the_readme_since_7d_example_shows_the_samples_last_week(tmp_path):
    ledger = sample_ledger(tmp_path, as_of="today")
    frame = ledger.summary(by=("day", "model"), since="7d")
    days = sorted(set(frame["day"].astype(str).str[:10]))
    assert days[-1] == utc_today().isoformat() and len(days) >= 7
    assert frame["requests"].sum() > 0
