"""Analysis: summaries, reports, chargeback, anomalies and forecasts, checked against the raw rows."""

from __future__ import annotations

import math
import re
import sqlite3
import statistics
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from llmcost_nb import Call, Ledger
from llmcost_nb.analysis.summaries import AnalysisError, summary, summary_frame
from llmcost_nb.core.call import from_pusd
from llmcost_nb.ledger.connection import SCHEMA_VERSION
from llmcost_nb.ledger.query import Query
from llmcost_nb.ledger.rollups import bucket_bounds, percentile
from llmcost_nb.ledger.rollups import plan as plan_query

SAMPLE = dict(rows=15_000, days=42, seed=11)  # conftest's `sample`: generate(**SAMPLE), ending 2026-11-20


@pytest.fixture(scope="module")
def rows(sample):
    """The calls straight from SQLite with their tags: the independent side of every comparison."""
    conn = sqlite3.connect(sample.path)
    conn.row_factory = sqlite3.Row
    tags = defaultdict(dict)
    for r in conn.execute("SELECT tagset_id, key, value FROM tags"):
        tags[r["tagset_id"]][r["key"]] = r["value"]
    result = []
    for r in conn.execute("SELECT * FROM calls ORDER BY id"):
        row = dict(r)
        row["tags"] = tags.get(r["tagset_id"], {})
        row["day"] = r["ts"][:10]
        result.append(row)
    conn.close()
    return result


def expected(rows, key, keep=lambda r: True):
    """Group rows by ``key(row)``: exact integer sums and the latencies."""
    groups = defaultdict(
        lambda: {
            "requests": 0,
            "errors": 0,
            "input_tokens": 0,
            "output_tokens": 0,
            "cache_read_tokens": 0,
            "reasoning_tokens": 0,
            "pusd": 0,
            "lat": [],
        }
    )
    for r in rows:
        if not keep(r):
            continue
        g = groups[key(r)]
        g["requests"] += 1
        g["errors"] += r["status"] == "error"
        for name in ("input_tokens", "output_tokens", "cache_read_tokens", "reasoning_tokens"):
            g[name] += r[name]
        g["pusd"] += r["cost_pusd"] or 0
        if r["latency_ms"] is not None:
            g["lat"].append(r["latency_ms"])
    return groups


def assert_matches(frame, groups, key_cols):
    assert len(frame) == len(groups)
    for rec in frame.to_dict(orient="records"):
        key = tuple(rec[c] for c in key_cols)
        g = groups[key if len(key) > 1 else key[0]]
        for name in (
            "requests",
            "errors",
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "reasoning_tokens",
        ):
            assert rec[name] == g[name], (key, name)
        assert rec["cost_usd"] == from_pusd(g["pusd"])
        assert rec["avg_latency_ms"] == pytest.approx(sum(g["lat"]) / len(g["lat"]), abs=5e-4)
        lat = sorted(g["lat"])
        exact_p95 = lat[math.ceil(0.95 * len(lat)) - 1]
        # approximate: the estimate lies in the same √2-wide bucket as the exact value
        assert exact_p95 / math.sqrt(2) <= rec["p95_latency_ms"] <= exact_p95 * math.sqrt(2), key


def test_summary_by_day_and_model_is_exact(sample, rows):
    frame = sample.ledger.summary(by=("day", "model"))
    assert_matches(frame, expected(rows, lambda r: (r["day"], r["model"])), ["day", "model"])
    assert list(frame.columns[:2]) == ["day", "model"]


def test_summary_by_tag_user_and_filters_is_exact(sample, rows):
    led = sample.ledger
    assert_matches(led.summary(by="tag:team"), expected(rows, lambda r: r["tags"].get("team")), ["team"])
    assert_matches(led.summary(by="user"), expected(rows, lambda r: r["tags"].get("user")), ["user"])
    frame = led.summary(
        by=("month", "tag:project"),
        since="2026-10-15",
        until="2026-11-10",
        where={"provider": ["openai", "google"], "tag:env": "dev"},
    )

    def keep(r):
        return (
            "2026-10-15" <= r["day"] < "2026-11-10"
            and r["provider"] in ("openai", "google")
            and r["tags"].get("env") == "dev"
        )

    assert_matches(
        frame, expected(rows, lambda r: (r["day"][:7], r["tags"].get("project")), keep), ["month", "project"]
    )


def test_summary_by_week_status_and_provider(sample, rows):
    def monday(day):
        d = date.fromisoformat(day)
        return (d - timedelta(days=d.weekday())).isoformat()

    frame = sample.ledger.summary(by=("week", "status", "provider"))
    assert_matches(
        frame,
        expected(rows, lambda r: (monday(r["day"]), r["status"], r["provider"])),
        ["week", "status", "provider"],
    )


@pytest.mark.parametrize(
    ("by", "kwargs", "path"),
    [
        (("day", "model"), {}, "rollup_daym"),
        (("hour",), {}, "rollup_hour"),
        (("day",), {"since": "2026-11-01T06:00:00Z"}, "rollup_hour"),
        (("tag:team",), {}, "rollup_dayt"),
        (("month", "tag:team"), {"where": {"tag:env": "prod"}}, "rollup_dayt"),
        (("tag:team", "model"), {}, "rollup_day"),
        (("tag:team",), {"where": {"model": "gpt-4.1"}}, "rollup_day"),
        (("hour", "tag:team"), {"since": "2026-11-18"}, "raw"),
        (("model",), {"where": {"api": "chat"}}, "raw"),
        (("model",), {"where": "input_tokens > 1000"}, "raw"),
        (("day",), {"since": "2026-11-01T06:30:00Z"}, "raw"),
    ],
)
def test_rollup_and_raw_paths_agree(sample, by, kwargs, path):
    query = Query.parse(by, **kwargs)
    assert plan_query(query).path == path
    assert plan_query(query, force_raw=True).path == "raw"
    fast = summary_frame(query, sample.ledger.aggregate(query))
    slow = summary_frame(query, sample.ledger.aggregate(query, force_raw=True))
    assert len(fast) > 0
    assert fast.equals(slow)


def test_rollups_follow_inserts_updates_and_deletes(tmp_path):
    led = Ledger(tmp_path / "l.db")
    first = Call(
        provider="openai",
        model="gpt-4.1",
        api="chat",
        input_tokens=100,
        output_tokens=10,
        cost=Decimal("0.0001"),
        latency_ms=120.5,
        status="unfinished",
        streamed=True,
        tags={"team": "a"},
        ts="2026-11-02T10:00:00.000000Z",
    )
    led.write(first)
    led.write(
        Call(
            provider="anthropic",
            model="claude-sonnet-4-20250514",
            api="messages",
            input_tokens=5,
            output_tokens=7,
            cost=Decimal("0.000120"),
            latency_ms=900.0,
            tags={"team": "b"},
            ts="2026-11-02T11:00:00.000000Z",
        )
    )
    assert led.summary(by="tag:team")["cost_usd"].tolist() == [Decimal("0.0001"), Decimal("0.00012")]
    # the stream finishes later: same row updated; the rollups are corrected from the logged old and new rows
    first.status, first.output_tokens, first.cost, first.latency_ms = "ok", 50, Decimal("0.0006"), 2000.25
    led.write(first)
    frame = led.summary(by=("status", "tag:team", "model"))
    assert frame[["status", "team", "requests", "output_tokens"]].values.tolist() == [
        ["ok", "a", 1, 50],
        ["ok", "b", 1, 7],
    ]
    assert frame["cost_usd"].tolist() == [Decimal("0.0006"), Decimal("0.00012")]
    assert frame["avg_latency_ms"].tolist() == [2000.25, 900.0]
    led.write(
        Call(
            provider="openai",
            model="gpt-4.1",
            api="chat",
            input_tokens=1,
            output_tokens=1,
            cost=Decimal("0.00001"),
            tags={"team": "a"},
            ts="2026-11-03T00:00:00.000000Z",
        )
    )
    led.connection.execute("DELETE FROM calls WHERE model LIKE 'claude%'")
    total = led.summary(by=())
    assert total["requests"].tolist() == [2]
    assert total["cost_usd"].tolist() == [Decimal("0.00061")]
    assert led.summary(by="day")["day"].tolist() == ["2026-11-02", "2026-11-03"]
    assert led.connection.execute("SELECT COUNT(*) FROM rollup_delta").fetchone()[0] == 0
    query = Query.parse(("day", "model"))
    assert led.aggregate(query) == led.aggregate(query, force_raw=True)


def test_summary_counts_unpriced_and_estimated_calls_per_group(tmp_path):
    led = Ledger(tmp_path / "l.db")
    at = "2026-11-02T10:00:00.000000Z"
    stream = Call(provider="openai", model="gpt-4.1", api="chat", input_tokens=12, output_tokens=30,
                  cost=Decimal("0.000264"), streamed=True, usage_source="estimated", tags={"team": "a"},
                  ts=at)
    led.write(stream)
    led.write(Call(provider="openai", model="gpt-4.1", api="chat", input_tokens=5, output_tokens=5,
                   cost=Decimal("0.00005"), tags={"team": "a"}, ts=at))
    led.write(Call(provider="openai", model="mystery-1", api="chat", input_tokens=5, output_tokens=5,
                   tags={"team": "b"}, ts=at))  # billed, no price known
    frame = led.summary(by="model")
    assert frame[["model", "requests", "unpriced", "estimated"]].values.tolist() == [
        ["gpt-4.1", 2, 0, 1], ["mystery-1", 1, 1, 0]]
    assert frame["cost_usd"].tolist() == [Decimal("0.000314"), Decimal(0)]
    # the estimate replaced later by the provider's numbers: the rollups follow the update
    stream.usage_source = "provider"
    led.write(stream)
    assert led.summary(by="tag:team")[["team", "unpriced", "estimated"]].values.tolist() == [
        ["a", 0, 0], ["b", 1, 0]]
    query = Query.parse(("day", "model"))
    assert led.aggregate(query) == led.aggregate(query, force_raw=True)
    assert led.calls().usage_source.tolist() == ["provider", "provider", "provider"]


def test_percentile_estimate_stays_in_the_bucket():
    assert bucket_bounds(0) == (0.0, 10.0)
    assert bucket_bounds(1) == (10.0, 10.0 * math.sqrt(2))
    assert bucket_bounds(31)[1] == math.inf
    hist = [0] * 32
    hist[5], hist[9] = 90, 10  # bucket 9 holds the 91st..100th values
    low, high = bucket_bounds(9)
    assert low <= percentile(hist, 0.95) <= high
    assert percentile([0] * 32, 0.95) is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"by": "colour"}, "cannot group by 'colour': allowed values are day, week, month, hour, model"),
        ({"by": "day", "where": {"bogus": 1}}, "cannot filter on 'bogus': allowed keys are"),
        ({"by": "day", "since": "last tuesday"}, "cannot read 'last tuesday' as a time: use YYYY-MM-DD"),
    ],
)
def test_bad_queries_say_what_is_allowed(sample, kwargs, message):
    with pytest.raises(AnalysisError, match=message.replace("(", r"\(")):
        summary(sample.ledger, **kwargs)


def test_relative_since(tmp_path):
    """"7d" is the last 7 calendar days in UTC, today included; "1d" today alone."""
    led = Ledger(tmp_path / "recent.db")
    for _ in range(3):  # a UTC midnight passing between writing and reading: write and read again
        today = datetime.now(UTC).date()
        led.connection.execute("DELETE FROM calls")
        for ago in (0, 1, 6, 7, 30):  # days before today; a call of that day costs (ago + 1) cents
            led.write_many(
                Call(provider="openai", model="gpt-4.1", cost=Decimal(ago + 1) / 100,
                     ts=f"{today - timedelta(days=ago)}T{hour:02d}:00:00.000000Z")
                for hour in (0, 23))
        week, day = led.summary(by="day", since="7d"), led.summary(by=(), since="1d")
        if datetime.now(UTC).date() == today:
            break
    assert week["day"].tolist() == [(today - timedelta(days=ago)).isoformat() for ago in (6, 1, 0)]
    assert week["requests"].tolist() == [2, 2, 2]
    assert week["cost_usd"].tolist() == [Decimal("0.14"), Decimal("0.04"), Decimal("0.02")]
    assert (day["requests"].tolist(), day["cost_usd"].tolist()) == ([2], [Decimal("0.02")])


def _small_ledger(tmp_path):
    tmp_path.mkdir(exist_ok=True)  # Ledger(PATH) makes no folder
    led = Ledger(tmp_path / "day.db")
    for model, n, cost in (("gpt-4.1", 50, "0.049"), ("gpt-4.1-mini", 200, "0.004")):
        led.write_many(
            Call(
                provider="openai",
                model=model,
                cost=Decimal(cost),
                latency_ms=100.0,
                ts=f"2025-01-15T{i % 24:02d}:00:00.000000Z",
            )
            for i in range(n)
        )
    led.write(Call(provider="openai", model="gpt-4.1", cost=Decimal("9"), ts="2025-01-16T00:00:00.000000Z"))
    return led


def test_daily_report_text(tmp_path):
    report = _small_ledger(tmp_path).daily_report("2025-01-15", budget=5)
    assert str(report) == (
        "Daily summary (2025-01-15)\n"
        "==========================\n"
        "gpt-4.1: 50 requests, $2.45\n"
        "gpt-4.1-mini: 200 requests, $0.80\n"
        "Total: $3.25\n"
        "Alert: 65% of the daily budget ($5.00) used"
    )
    assert report.total == Decimal("3.25") and report.budget_used == Decimal("0.65")
    assert "<table>" in report._repr_html_()
    with pytest.raises(AnalysisError, match="a budget must be a positive amount"):
        _small_ledger(tmp_path / "x").daily_report("2025-01-15", budget=-1)


def test_daily_report_marks_unpriced_and_estimated_calls(tmp_path):
    """Unpriced calls are named, never $0; amounts with estimated tokens carry ≈ (text and HTML alike)."""
    from _honest import write_honest

    led = Ledger(tmp_path / "honest.db")
    write_honest(led)
    report = led.daily_report("2026-11-02")
    assert str(report) == (
        "Daily summary (2026-11-02)\n"
        "==========================\n"
        "gpt-4.1: 2 requests, $1.20\n"
        "gpt-4o-mini: 1 request, ≈$0.0042 (1 estimated)\n"
        "my-ft: 2 requests, 2 unpriced\n"
        "Total: ≈$1.20 (1 estimated) + 2 unpriced"
    )
    assert (report.total, report.unpriced, report.estimated) == (Decimal("1.2042"), 2, 1)
    assert report.models[2] == ("my-ft", 2, Decimal(0), 2, 0)
    shares = led.chargeback(by="model", period=None)
    assert shares[["model", "cost_usd", "unpriced", "estimated"]].values.tolist() == [
        ["gpt-4.1", Decimal("1.2"), 0, 0],
        ["gpt-4o-mini", Decimal("0.0042"), 0, 1],
        ["my-ft", Decimal(0), 2, 0],
    ]
    html = report._repr_html_()
    assert "<td style='text-align:right'>2 unpriced</td>" in html
    assert "<td style='text-align:right'>≈$0.0042 (1 estimated)</td>" in html
    assert "<th style='text-align:right'>≈$1.20 (1 estimated) + 2 unpriced</th>" in html
    assert "$0.00<" not in html and "mathjax_ignore" in html


def test_chargeback_shares_and_exact_costs(sample, rows):
    frame = sample.ledger.chargeback(by="tag:team", period="month")
    groups = expected(rows, lambda r: (r["day"][:7], r["tags"].get("team", "(untagged)")))
    assert len(frame) == len(groups)
    for rec in frame.to_dict(orient="records"):
        assert rec["cost_usd"] == from_pusd(groups[(rec["month"], rec["team"])]["pusd"])
    for _, part in frame.groupby("month"):
        assert sum(part["share"]) == pytest.approx(1.0)
        assert list(part["cost_usd"]) == sorted(part["cost_usd"], reverse=True)
    with pytest.raises(AnalysisError, match="unknown period 'year', allowed values: day, week, month"):
        sample.ledger.chargeback(period="year")


def test_anomalies_find_the_planted_ones(sample, rows):
    found = sample.ledger.anomalies()
    spikes = found[found["kind"] == "cost_spike"]
    assert set(spikes["start"]) == {sample.spike_day.isoformat(), sample.runaway_day.isoformat()}
    runaways = found[found["kind"] == "runaway_scope"]
    assert runaways["scope_id"].tolist() == [sample.runaway_scope]
    assert "made" in runaways["reason"].iloc[0] and "calls" in runaways["reason"].iloc[0]
    # the baseline, independently: the 7 weekdays before the spike day
    per_day = {
        d: from_pusd(g["pusd"])
        for (d,), g in ((k, v) for k, v in expected(rows, lambda r: (r["day"],)).items())
    }
    day = sample.spike_day
    earlier = [d for d in sorted(per_day) if d < day.isoformat() and date.fromisoformat(d).weekday() < 5][-7:]
    spike = spikes[spikes["start"] == day.isoformat()].iloc[0]
    assert spike["baseline_usd"] == sum(per_day[d] for d in earlier) / 7
    assert spike["cost_usd"] == per_day[day.isoformat()]
    assert "claude-opus-4-20250514" in spike["reason"] and "trailing average" in spike["reason"]


def test_anomaly_threshold_is_configurable(sample):
    strict = sample.ledger.anomalies(threshold=5.0)
    assert (strict["kind"] == "cost_spike").sum() == 0
    with pytest.raises(AnalysisError, match="unknown freq 'week', allowed values: day, hour"):
        sample.ledger.anomalies(freq="week")


def test_hourly_anomalies_point_at_the_runaway_hours(sample):
    hours = sample.ledger.anomalies(freq="hour", scopes=False)
    assert set(hours["start"].str[:10]) >= {sample.runaway_day.isoformat()}
    assert set(hours["kind"]) == {"cost_spike"}


def test_forecast_is_spent_plus_run_rate(sample, rows):
    fc = sample.ledger.forecast(as_of=sample.end, budget=100)
    per_day = {d: from_pusd(g["pusd"]) for (d,), g in expected(rows, lambda r: (r["day"],)).items()}
    spent = sum((c for d, c in per_day.items() if d >= "2026-11-01"), Decimal(0))
    window = [per_day.get((sample.end - timedelta(days=i)).isoformat(), Decimal(0)) for i in range(14)]
    run_rate = sum(window, Decimal(0)) / 14
    assert fc.spent == spent
    assert fc.run_rate == run_rate
    assert fc.projected == (spent + run_rate * 10).quantize(Decimal("1e-12"))
    # the 80% interval: z(0.9) times the day-to-day spread over the lookback, grown with the days left
    sigma = statistics.stdev(float(c) for c in window)
    spread = statistics.NormalDist().inv_cdf(0.9) * sigma * math.sqrt(10)
    assert sigma > 0 and fc.daily_sigma == pytest.approx(sigma)
    assert float(fc.high - fc.projected) == pytest.approx(spread, rel=1e-4)
    assert fc.low == max(spent, fc.projected - (fc.high - fc.projected))
    assert fc.low < fc.projected < fc.high
    assert fc.budget_share == pytest.approx(float(fc.projected) / 100)
    frame = fc.frame()
    assert frame["actual"].dropna().iloc[-1] == pytest.approx(float(spent))
    assert frame["forecast"].dropna().iloc[-1] == pytest.approx(float(fc.projected))
    assert "November 2026" in str(fc)


def test_the_insert_path_carries_no_rollup_work(tmp_path):
    led = Ledger(tmp_path / "w.db")
    triggers = led.connection.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger'").fetchall()
    assert not [sql for (sql,) in triggers if "INSERT ON" in sql.upper()]  # on calls, scopes or any table
    led.write(Call(provider="openai", model="gpt-4.1", cost=Decimal("0.01")))
    led.write(Call(provider="openai", model="gpt-4.1", cost=Decimal("0.02")))
    # nothing rolled up until a query asks; then updates of rolled-up rows are logged, others are not
    assert led.connection.execute("SELECT COUNT(*) FROM rollup_day").fetchone()[0] == 0
    assert led.summary(by=())["cost_usd"].tolist() == [Decimal("0.03")]
    led.write(Call(provider="openai", model="gpt-4.1", cost=Decimal("0.04")))
    led.connection.execute("UPDATE calls SET latency_ms = 5 WHERE id = 3")
    assert led.connection.execute("SELECT COUNT(*) FROM rollup_delta").fetchone()[0] == 0
    led.connection.execute("UPDATE calls SET latency_ms = 5 WHERE id = 1")
    assert led.connection.execute("SELECT COUNT(*) FROM rollup_delta").fetchone()[0] == 2


def test_latency_histogram_counts_every_timed_call(sample, rows):
    from llmcost_nb.analysis.summaries import latency_histogram

    frame = latency_histogram(sample.ledger, by="provider")
    per_provider = frame.groupby("provider")["calls"].sum().to_dict()
    expected_counts = defaultdict(int)
    for r in rows:
        if r["latency_ms"] is not None:
            expected_counts[r["provider"]] += 1
    assert per_provider == dict(expected_counts)
    for low, high, bucket in zip(frame["low_ms"], frame["high_ms"], frame["bucket"], strict=True):
        assert (low, high) == bucket_bounds(bucket)
    raw = latency_histogram(sample.ledger, by="provider", where="latency_ms IS NOT NULL")
    assert raw.equals(frame)


def _scopes_from_calls(conn):
    return conn.execute(
        "SELECT scope_id, COUNT(*), COALESCE(SUM(cost_pusd), 0) FROM calls WHERE scope_id IS NOT NULL "
        "GROUP BY scope_id ORDER BY scope_id").fetchall()


def test_the_scope_rollup_follows_new_updated_and_deleted_rows(tmp_path):
    from llmcost_nb.ledger.rollups import scope_rows

    led = Ledger(tmp_path / "s.db")
    conn = led.connection
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'calls_scope'").fetchall() == []
    for i in range(6):  # a..c get 2, 2, 1 calls; one call has no scope
        ts = f"2026-11-0{i + 1}T00:00:00.000000Z"
        scope = "abcab"[i] if i < 5 else None
        led.write(Call(model="gpt-4.1", cost=Decimal("0.01") * (i + 1), ts=ts, scope_id=scope))
    assert [r[:3] for r in scope_rows(conn)] == _scopes_from_calls(conn) == [
        ("a", 2, 50_000_000_000), ("b", 2, 70_000_000_000), ("c", 1, 30_000_000_000)]
    assert scope_rows(conn)[0][3:] == ("2026-11-01T00:00:00.000000Z", "2026-11-04T00:00:00.000000Z", 0, 0)
    conn.execute("UPDATE calls SET cost_pusd = 1 WHERE id = 1")  # rolled up already: logged as a delta
    conn.execute("DELETE FROM calls WHERE id = 3")  # scope c's only call
    led.write(Call(model="gpt-4.1", cost=Decimal("1"), scope_id="d"))  # new, not rolled up yet
    assert [r[:3] for r in scope_rows(conn)] == _scopes_from_calls(conn) == [
        ("a", 2, 40_000_000_001), ("b", 2, 70_000_000_000), ("d", 1, 1_000_000_000_000)]
    notebook = scope_rows(conn, "scope_id IN (?, ?)", ("b", "d"))
    assert [r[0] for r in notebook] == ["b", "d"]


def _ledger_of_schema(path, version: int) -> sqlite3.Connection:
    """A ledger as the release with ``version`` migrations left it: those applied and recorded by sqlite-utils
    (``stop_before`` the next one: public API), ``PRAGMA user_version``, WAL; open, for rows to be written."""
    from sqlite_utils import Database

    from llmcost_nb.ledger import migrations as migrations_module

    names = sorted(name for name in vars(migrations_module) if re.fullmatch(r"m\d{3}_\w+", name))
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    migrations_module.migrations.apply(Database(conn), stop_before=names[version])
    conn.execute(f"PRAGMA user_version = {version}")
    return conn


def _notebooks_from_calls(conn):
    """Per notebook and session: calls, picodollars, unpriced calls (billed, no cost), estimated calls."""
    return conn.execute(
        "SELECT s.notebook, s.session_id, COUNT(*), COALESCE(SUM(c.cost_pusd), 0), "
        "SUM(c.billed = 1 AND c.cost_pusd IS NULL), SUM(c.usage_source = 'estimated') FROM calls c "
        "JOIN scopes s ON s.id = c.scope_id WHERE s.notebook IS NOT NULL "
        "GROUP BY s.notebook, s.session_id ORDER BY 1, 2").fetchall()


def _notebook_rollup(conn):
    from llmcost_nb.ledger.rollups import refresh

    refresh(conn)
    return conn.execute(
        "SELECT notebook, NULLIF(session_id, ''), n, cost_pusd, unpriced, estimated FROM rollup_notebook "
        "ORDER BY 1, 2").fetchall()


def _scopes_unknowns(conn):
    """Per scope: unpriced and estimated calls, from the calls and from the scope rollup."""
    from llmcost_nb.ledger.rollups import refresh

    refresh(conn)
    raw = conn.execute(
        "SELECT scope_id, SUM(billed = 1 AND cost_pusd IS NULL), SUM(usage_source = 'estimated') FROM calls "
        "WHERE scope_id IS NOT NULL GROUP BY scope_id ORDER BY 1").fetchall()
    return raw, conn.execute("SELECT scope_id, unpriced, estimated FROM rollup_scope ORDER BY 1").fetchall()


def test_the_notebook_rollup_follows_new_updated_and_deleted_rows_and_late_scope_rows(tmp_path):
    """Per notebook and session, what joining the calls with their scope rows gives: after new calls,
    updates and deletes of rolled-up calls, and a scope row written after its calls were rolled up."""
    led = Ledger(tmp_path / "n.db")
    conn = led.connection
    scope_row = "INSERT INTO scopes VALUES (?, 'cell', NULL, ?, 1, ?, '2026-11-01T00:00:00.000000Z', NULL)"
    conn.executemany(scope_row, [("a", "/nb/x.ipynb", "k1"), ("b", "/nb/x.ipynb", "k1"),
                                 ("c", "/nb/x.ipynb", "k2"), ("d", "/nb/y.ipynb", "k1"), ("e", None, "k1")])
    for i, scope in enumerate("abcdea"):  # e: a scope outside a notebook; one call in no scope at all
        led.write(Call(model="gpt-4.1", cost=Decimal("0.01") * (i + 1), scope_id=scope,
                       ts=f"2026-11-0{i + 1}T00:00:00.000000Z"))
    led.write(Call(model="gpt-4.1", cost=Decimal("5")))
    # in a: one call unpriced (billed, no cost), one estimated; one not billed (no cost, not unpriced)
    led.write(Call(model="mystery-1", cost=None, scope_id="a", ts="2026-11-01T00:00:01.000000Z"))
    led.write(Call(model="gpt-4.1", cost=Decimal("0.5"), usage_source="estimated", scope_id="a",
                   ts="2026-11-01T00:00:02.000000Z"))
    led.write(Call(model="gpt-4.1", cost=None, billed=False, status="error", scope_id="a",
                   ts="2026-11-01T00:00:03.000000Z"))
    assert _notebook_rollup(conn) == _notebooks_from_calls(conn) == [
        ("/nb/x.ipynb", "k1", 6, 590_000_000_000, 1, 1), ("/nb/x.ipynb", "k2", 1, 30_000_000_000, 0, 0),
        ("/nb/y.ipynb", "k1", 1, 40_000_000_000, 0, 0)]
    day = "2026-11-0{}T00:00:00.000000Z".format
    assert led.notebook_sessions(["/nb/x.ipynb"]) == [
        ("/nb/x.ipynb", "k1", 6, 590_000_000_000, day(1), day(6), 1, 1),
        ("/nb/x.ipynb", "k2", 1, 30_000_000_000, day(3), day(3), 0, 0)]
    raw, rolled = _scopes_unknowns(conn)
    assert rolled == raw == [("a", 1, 1), ("b", 0, 0), ("c", 0, 0), ("d", 0, 0), ("e", 0, 0)]

    conn.execute("UPDATE calls SET cost_pusd = 1 WHERE id = 1")  # rolled up already: logged as a delta
    conn.execute("DELETE FROM calls WHERE id = 3")  # k2's only call in x
    conn.execute("UPDATE calls SET cost_pusd = 4 WHERE id = 8")  # priced at last: no longer unpriced
    conn.execute("UPDATE calls SET cost_pusd = NULL WHERE id = 2")  # its price withdrawn: unpriced now
    conn.execute("UPDATE calls SET usage_source = 'provider' WHERE id = 9")  # the provider's count came
    led.write(Call(model="gpt-4.1", cost=Decimal("1"), scope_id="f"))  # its scope row comes later
    assert _notebook_rollup(conn) == _notebooks_from_calls(conn) == [
        ("/nb/x.ipynb", "k1", 6, 560_000_000_005, 1, 0), ("/nb/y.ipynb", "k1", 1, 40_000_000_000, 0, 0)]
    raw, rolled = _scopes_unknowns(conn)
    assert rolled == raw
    conn.execute(scope_row, ("f", "/nb/y.ipynb", "k3"))  # after its call was rolled up: counted when admitted
    led.write(Call(model="gpt-4.1", cost=None, usage_source="estimated", scope_id="f"))
    conn.execute(scope_row, ("g", "/nb/y.ipynb", None))  # a scope row without session
    led.write(Call(model="gpt-4.1", cost=Decimal("3"), scope_id="g"))
    assert _notebook_rollup(conn) == _notebooks_from_calls(conn) == [
        ("/nb/x.ipynb", "k1", 6, 560_000_000_005, 1, 0), ("/nb/y.ipynb", None, 1, 3_000_000_000_000, 0, 0),
        ("/nb/y.ipynb", "k1", 1, 40_000_000_000, 0, 0), ("/nb/y.ipynb", "k3", 2, 1_000_000_000_000, 1, 1)]
    conn.execute("UPDATE calls SET cost_pusd = 7 WHERE scope_id = 'f'")
    assert _notebook_rollup(conn) == _notebooks_from_calls(conn)
    assert _notebook_rollup(conn)[-1] == ("/nb/y.ipynb", "k3", 2, 14, 0, 1)
    raw, rolled = _scopes_unknowns(conn)
    assert rolled == raw
    found = [r[:4] for r in led.notebook_sessions(["/nb/y.ipynb"])]
    assert found[-1] == ("/nb/y.ipynb", None, 1, 3_000_000_000_000)  # the newest: by first call


def test_a_version_8_ledger_builds_its_notebook_rollup_from_the_scope_rollup(tmp_path):
    """Opening a ledger of schema 8 (the scope rollup built up to some id, a delta logged with its scope)
    migrates it: per notebook and session, the same figures as the calls joined with their scope rows."""
    path = tmp_path / "v8.db"
    conn = _ledger_of_schema(path, 8)
    conn.executemany("INSERT INTO scopes VALUES (?, 'cell', NULL, ?, 1, ?, '2026-11-01T00:00:00Z', NULL)",
                     [(f"c{k}", f"/nb/{k % 3}.ipynb", f"k{k % 2}") for k in range(12)])
    insert = ("INSERT INTO calls (ts, api, status, billed, streamed, cost_pusd, scope_id) "
              "VALUES (?, 'chat', 'ok', 1, 0, ?, ?)")
    for i in range(300):
        conn.execute(insert, (f"2026-11-01T00:{i // 60:02d}:{i % 60:02d}.000000Z", 1000 + i, f"c{i % 12}"))
    conn.execute("INSERT INTO rollup_scope SELECT scope_id, COUNT(*), SUM(cost_pusd), MIN(ts), MAX(ts) "
                 "FROM calls WHERE id <= 200 GROUP BY scope_id")  # what schema 8's refresh left
    conn.execute("INSERT INTO rollup_state (name, last_id) VALUES ('calls', 200)")
    conn.execute("UPDATE calls SET cost_pusd = 7 WHERE id = 1")  # logged with its scope
    conn.close()
    led = Ledger(path)
    conn = led.connection
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    expected = _notebooks_from_calls(conn)
    assert [(nb, k, n) for nb, k, n, *_ in expected] == [
        (f"/nb/{k % 3}.ipynb", f"k{k % 2}", 50) for k in (0, 3, 4, 1, 2, 5)]
    assert _notebook_rollup(conn) == expected
    found = led.notebook_sessions(["/nb/0.ipynb", "/nb/1.ipynb", "/nb/2.ipynb"])  # by notebook, oldest first
    assert sorted((*r[:4], *r[6:]) for r in found) == expected


def test_a_version_9_ledger_counts_its_scopes_unpriced_and_estimated_calls(tmp_path):
    """Opening a ledger of schema 9 (scope and notebook rollups built up to call 200, deltas pending, a scope
    row not admitted yet) migrates it: per scope, and per notebook and session, the unpriced and estimated
    calls as schema 9's rollups stood (before the pending deltas), then what the calls say once refreshed."""
    path = tmp_path / "v9.db"
    conn = _ledger_of_schema(path, 9)
    assert "unpriced" not in {r[1] for r in conn.execute("PRAGMA table_info(rollup_scope)")}
    scopes = [(f"c{k}", f"/nb/{k % 3}.ipynb", f"k{k % 2}") for k in range(12)]
    scope_row = "INSERT INTO scopes VALUES (?, 'cell', NULL, ?, 1, ?, '2026-11-01T00:00:00Z', NULL)"
    conn.executemany(scope_row, scopes[:11])
    insert = ("INSERT INTO calls (ts, api, status, billed, streamed, cost_pusd, scope_id, usage_source) "
              "VALUES (?, 'chat', 'ok', ?, 0, ?, ?, ?)")

    def unpriced(i):  # every 7th call has no cost; every other one of those was not billed
        return i % 14 == 7

    def estimated(i):
        return i % 5 == 0

    for i in range(300):  # call id i + 1
        conn.execute(insert, (f"2026-11-01T00:{i // 60:02d}:{i % 60:02d}.000000Z", int(i % 14 != 0),
                              None if i % 7 == 0 else 1000 + i, f"c{i % 12}",
                              "estimated" if estimated(i) else "provider"))
    # what schema 9's refresh left: calls up to 200 rolled up, scope rows up to rowid 11 admitted
    conn.execute("INSERT INTO rollup_scope SELECT scope_id, COUNT(*), COALESCE(SUM(cost_pusd), 0), MIN(ts), "
                 "MAX(ts) FROM calls WHERE id <= 200 GROUP BY scope_id")
    conn.execute("INSERT INTO rollup_notebook SELECT s.notebook, s.session_id, SUM(r.n), SUM(r.cost_pusd), "
                 "MIN(r.first_ts), MAX(r.last_ts) FROM rollup_scope r JOIN scopes s ON s.id = r.scope_id "
                 "GROUP BY 1, 2")
    conn.executemany("INSERT OR REPLACE INTO rollup_state (name, last_id) VALUES (?, ?)",
                     [("calls", 200), ("scopes", 11)])
    conn.execute(scope_row, scopes[11])  # written since: not admitted yet
    conn.execute("UPDATE calls SET cost_pusd = 5 WHERE id = 8")  # was unpriced
    conn.execute("UPDATE calls SET cost_pusd = NULL WHERE id = 2")  # unpriced now
    conn.execute("UPDATE calls SET usage_source = 'estimated' WHERE id = 3")
    conn.execute("UPDATE calls SET usage_source = 'provider' WHERE id = 6")  # was estimated
    conn.execute("UPDATE calls SET scope_id = 'c5' WHERE id = 11")  # an estimated call of c10 moves to c5
    conn.execute("DELETE FROM calls WHERE id = 22")  # unpriced
    conn.execute("UPDATE calls SET cost_pusd = NULL WHERE id = 250")  # not rolled up yet: no delta
    assert conn.execute("SELECT COUNT(*) FROM rollup_delta").fetchone()[0] == 11
    conn.close()

    led = Ledger(path)
    conn = led.connection
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    # filled in by the migration, before any refresh: the calls up to 200 as schema 9 rolled them up
    stood = {f"c{k}": [0, 0] for k in range(12)}
    for i in range(200):
        stood[f"c{i % 12}"][0] += unpriced(i)
        stood[f"c{i % 12}"][1] += estimated(i)
    filled = conn.execute("SELECT scope_id, unpriced, estimated FROM rollup_scope ORDER BY 1").fetchall()
    assert filled == sorted((scope, *counts) for scope, counts in stood.items())
    per_notebook: dict = {}
    for scope, notebook, session in scopes[:11]:
        counts = per_notebook.setdefault((notebook, session), [0, 0])
        counts[0] += stood[scope][0]
        counts[1] += stood[scope][1]
    assert conn.execute("SELECT notebook, session_id, unpriced, estimated FROM rollup_notebook ORDER BY 1, 2"
                        ).fetchall() == sorted((*key, *counts) for key, counts in per_notebook.items())
    raw, rolled = _scopes_unknowns(conn)  # the pending deltas and calls 201-300 rolled up, c11 admitted
    assert rolled == raw
    expected = _notebooks_from_calls(conn)
    assert (sum(r[4] for r in expected), sum(r[5] for r in expected)) == (21 - 1 + 1 - 1 + 1, 60 + 1 - 1)
    assert _notebook_rollup(conn) == expected

def test_a_read_only_ledger_counts_scopes_from_its_calls(tmp_path):
    from llmcost_nb.ledger.rollups import scope_rows

    path = tmp_path / "ro.db"
    led = Ledger(path)
    for scope in ("x", "x", "y"):
        led.write(Call(model="gpt-4.1", cost=Decimal("0.5"), scope_id=scope))
    led.write(Call(model="gpt-4.1", cost=None, usage_source="estimated", scope_id="y"))  # unpriced
    led.close()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    assert [(*r[:3], *r[5:]) for r in scope_rows(conn)] == [  # calls, picodollars, unpriced, estimated
        ("x", 2, 1_000_000_000_000, 0, 0), ("y", 2, 500_000_000_000, 1, 1)]


def test_a_version_6_ledger_moves_its_scope_counts_into_the_rollup(tmp_path):
    """Opening a ledger of schema 6 (scope index, rollups built up to some id, a delta logged without
    scope_id) migrates it: the index goes, scope counts are exact, runaway detection unchanged."""
    from llmcost_nb.ledger.rollups import scope_rows

    path = tmp_path / "v6.db"
    conn = _ledger_of_schema(path, 6)
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'calls_scope'").fetchone()
    insert = ("INSERT INTO calls (ts, api, status, billed, streamed, cost_pusd, scope_id) "
              "VALUES (?, 'chat', 'ok', 1, 0, ?, ?)")
    for i in range(300):  # a runaway: 150 calls in scope r, 5 scopes of 30
        conn.execute(insert, ("2026-11-01T00:00:00.000000Z", 1000 + i, "r" if i < 150 else f"s{i % 5}"))
    conn.execute("INSERT INTO rollup_state (name, last_id) VALUES ('calls', 200)")  # rolled up to id 200
    conn.execute("UPDATE calls SET cost_pusd = 7 WHERE id = 1")  # its delta has no scope_id
    assert conn.execute("SELECT COUNT(*) FROM rollup_delta").fetchone()[0] == 2
    conn.close()
    led = Ledger(path)
    conn = led.connection
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'calls_scope'").fetchone() is None
    assert [r[:3] for r in scope_rows(conn)] == _scopes_from_calls(conn)
    assert dict((r[0], r[1]) for r in scope_rows(conn)) == {"r": 150, **{f"s{k}": 30 for k in range(5)}}
    runaways = led.anomalies(runaway_factor=3, runaway_calls=100)
    assert runaways[runaways["kind"] == "runaway_scope"]["scope_id"].tolist() == ["r"]
    conn.execute("UPDATE calls SET cost_pusd = 9 WHERE id = 2")  # logged with its scope now
    assert [r[:3] for r in scope_rows(conn)] == _scopes_from_calls(conn)


def test_an_anomalys_reason_words_unpriced_and_estimated_calls_as_every_view_does(tmp_path):
    """Issue 16: a spike day's cost leaves out its unpriced calls and guesses its estimated ones; the reason
    says so through format_total (the cost_usd column keeps the exact priced total)."""
    led = Ledger(tmp_path / "spike.db")
    weekdays = ["2026-11-02", "2026-11-03", "2026-11-04", "2026-11-05", "2026-11-06", "2026-11-09",
                "2026-11-10"]
    at = "T10:00:00.000000Z"
    calls = [Call(provider="openai", model="gpt-4.1", input_tokens=10, output_tokens=1, cost=Decimal(1),
                  ts=d + at) for d in weekdays]
    spike = "2026-11-11" + at
    calls += [
        Call(provider="openai", model="gpt-4.1", input_tokens=10, output_tokens=1, cost=Decimal(4),
             usage_source="estimated", streamed=True, ts=spike),
        Call(provider="openai", model="gpt-4o-mini", input_tokens=10, output_tokens=1, cost=Decimal(1),
             ts=spike),
        *[Call(provider="openai", model="my-ft", input_tokens=10, output_tokens=1, cost=None, billed=True,
               ts=spike) for _ in range(2)],
    ]
    led.write_many(calls)
    found = led.anomalies(scopes=False)
    assert found["start"].tolist() == ["2026-11-11"] and found["cost_usd"].tolist() == [Decimal(5)]
    assert found["reason"].tolist() == [
        "≈$5.00 (1 estimated) + 2 unpriced is 5.0× the trailing average ($1.00 over 7 earlier weekdays); "
        "largest: gpt-4.1 (≈$4.00 (1 estimated))"
    ]
    led.close()


def test_a_runaway_scopes_reason_counts_its_unpriced_calls(tmp_path, recwarn):
    import llmcost_nb

    led = Ledger(tmp_path / "runaway.db")
    led.set_price("model-x", input_mtok="1", output_mtok="10")
    llmcost_nb.get_session().use_ledger(led)
    for cell in (1, 2, 3):
        with llmcost_nb.Scope(kind="cell", notebook="/work/a.ipynb", cell=cell):
            llmcost_nb.log(model="model-x", input_tokens=1000, output_tokens=0)
    with llmcost_nb.Scope(kind="cell", notebook="/work/a.ipynb", cell=4):
        for _ in range(4):
            llmcost_nb.log(model="model-x", input_tokens=1000, output_tokens=0)
        for _ in range(2):
            llmcost_nb.log(model="my-ft", input_tokens=1000, output_tokens=0)
    found = led.anomalies(runaway_factor=2, runaway_calls=3)
    assert found["kind"].tolist() == ["runaway_scope"] and found["cost_usd"].tolist() == [Decimal("0.004")]
    assert found["reason"].iloc[0].startswith(
        "cell 4 of /work/a.ipynb made 6 calls in 0 min ($0.0040 + 2 unpriced): 6× the median scope (1 call; "
    )
