"""anomalies() and the dashboard on the PostgreSQL team ledger (a real server) give what they give locally."""

from __future__ import annotations

import itertools
import statistics
from datetime import date
from decimal import Decimal

import pandas as pd
import psycopg
import pytest
from pg_server import PgServer

import llmcost_nb
from llmcost_nb import Call, Ledger
from llmcost_nb.analysis.summaries import latency_histogram
from llmcost_nb.ledger import LedgerReader
from llmcost_nb.team import sync
from llmcost_nb.team.postgres import PostgresLedger
from llmcost_nb.testing.sample_data import MODELS
from llmcost_nb.tracking import resolve_ledger

# A generated ledger with a planted spike day and a runaway notebook cell.
SAMPLE = dict(rows=3_000, days=35, seed=5)  # conftest's `sample`: generate(**SAMPLE), ending 2026-11-20
_db_numbers = itertools.count()


@pytest.fixture(scope="module")
def server():
    with PgServer() as pg:
        yield pg


def new_database(server: PgServer, options: str = "") -> str:
    name = f"team_analysis_{next(_db_numbers)}"
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} {options}")  # type: ignore[arg-type]
    return server.dsn.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="module")
def team(server, sample):
    """The sample synced to a fresh team database: the PostgresLedger."""
    dsn = new_database(server)
    sync(dsn, ledger=sample.ledger)
    shared = Ledger(dsn)
    assert isinstance(shared, PostgresLedger)
    yield shared
    shared.close()


# -- the read protocol ---------------------------------------------------------------------------------------


def test_both_ledgers_are_ledger_readers_and_analyse_alike(sample, team):
    local = Ledger(sample.ledger.path)
    try:
        assert isinstance(local, LedgerReader) and isinstance(team, LedgerReader)
        assert isinstance(Ledger(team.dsn), LedgerReader)
        assert resolve_ledger(team) is team and resolve_ledger(local) is local
        assert type(resolve_ledger(team.dsn)) is PostgresLedger
        assert not hasattr(team, "backend")
        for by in (("day", "model"), ("week", "tag:team"), ()):
            pd.testing.assert_frame_equal(team.summary(by=by), local.summary(by=by))
        pd.testing.assert_frame_equal(team.chargeback(by="tag:team", period="month"),
                                      local.chargeback(by="tag:team", period="month"))
        assert team.total_cost() == local.total_cost() == sum(sample.ledger.calls().cost_usd)
        start, end = "2026-11-01", "2026-11-21"
        rows = sorted(local.daily_totals(start, end, {"openai"}, "team"))
        assert len(rows) > 20 and sorted(team.daily_totals(start, end, {"openai"}, "team")) == rows
    finally:
        local.close()


# -- anomalies -----------------------------------------------------------------------------------------------


def _cost(value) -> Decimal:
    return Decimal(0) if value is None or value != value else value


def _usd(value: Decimal) -> str:
    assert value >= Decimal("0.01")  # the amounts compared here are dollars: shown to the cent
    return f"${value:,.2f}"


def test_team_anomalies_equal_the_local_ones_with_the_planted_spike_and_runaway(sample, team):
    local, shared = sample.ledger.anomalies(), team.anomalies()
    pd.testing.assert_frame_equal(shared, local)
    assert shared.to_dict("records") == local.to_dict("records")
    # the planted events are found, and every number and reason follows from the calls themselves (the
    # sample's random draws depend on numpy's generator: only what was planted is fixed)
    spike_day, runaway_day = sample.spike_day.isoformat(), sample.runaway_day.isoformat()
    found = {(r.kind, r.start): r for r in shared.itertuples(index=False)}
    planted = {("cost_spike", spike_day), ("cost_spike", runaway_day), ("runaway_scope", runaway_day)}
    assert planted <= set(found)
    calls = sample.ledger.calls()
    calls = calls.assign(day=calls["ts"].dt.strftime("%Y-%m-%d"), cost=calls["cost_usd"].map(_cost))
    for day in (spike_day, runaway_day):
        spike, on_day = found["cost_spike", day], calls[calls["day"] == day]
        by_model = on_day.groupby("model")["cost"].sum()
        assert (spike.calls, spike.cost_usd) == (len(on_day), sum(on_day["cost"], Decimal(0)))
        assert spike.ratio == pytest.approx(float(spike.cost_usd / spike.baseline_usd))
        assert spike.reason == (
            f"{_usd(spike.cost_usd)} is {spike.ratio:.1f}× the trailing average ({_usd(spike.baseline_usd)} "
            f"over 7 earlier weekdays); largest: {by_model.idxmax()} ({_usd(by_model.max())})"
        )
        if day == spike_day:  # the planted batch job
            assert by_model.idxmax() == "claude-opus-4-20250514"
    runaway = found["runaway_scope", runaway_day]
    loop = calls[calls["scope_id"] == sample.runaway_scope]
    per_scope = calls["scope_id"].dropna().value_counts()
    median = statistics.median(per_scope)
    cell, notebook = sample.ledger.connection.execute(
        "SELECT cell, notebook FROM scopes WHERE id = ?", (sample.runaway_scope,)).fetchone()
    minutes = (loop["ts"].max().floor("s") - loop["ts"].min().floor("s")).total_seconds() / 60
    assert (runaway.scope_id, runaway.calls, runaway.cost_usd) == (
        sample.runaway_scope, len(loop), sum(loop["cost"], Decimal(0)))
    assert runaway.calls == per_scope.max() > 10 * median  # the one runaway cell
    assert runaway.reason == (
        f"cell {cell} of {notebook} made {len(loop):,} calls in {minutes:.0f} min "
        f"({_usd(runaway.cost_usd)}): "
        f"{len(loop) / median:.0f}× the median scope ({median:g} call{'s' * (median != 1)}; "
        f"threshold {max(100, 10 * median):g})"
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"freq": "hour", "threshold": 4.0},
        {"threshold": 2.0, "window": 14, "seasonal": False},
        {"since": "2026-11-01", "until": "2026-11-12"},  # the runaway day is outside: no runaway row
        {"since": "2026-11-12", "until": "2026-11-13"},
        {"scopes": False, "min_cost": "0.5"},
        {"runaway_factor": 3, "runaway_calls": 3},  # every cell of 3 calls or more
    ],
)
def test_team_anomalies_equal_the_local_ones_for_any_arguments(sample, team, kwargs):
    local = sample.ledger.anomalies(**kwargs)
    shared = team.anomalies(**kwargs)
    pd.testing.assert_frame_equal(shared, local)
    assert shared.to_dict("records") == local.to_dict("records")
    runaways = shared[shared["kind"] == "runaway_scope"]
    if kwargs.get("scopes", True) and kwargs.get("until") != "2026-11-12":
        assert sample.runaway_scope in set(runaways["scope_id"])
    else:
        assert runaways.empty
    if "runaway_factor" in kwargs:  # every cell of 3 calls or more, counted from the calls
        per_scope = sample.ledger.calls()["scope_id"].dropna().value_counts()
        limit = max(3, 3 * statistics.median(per_scope))
        assert sorted(runaways["calls"].tolist()) == sorted(n for n in per_scope if n >= limit)


def _scoped(scope_id: str, n: int, day: str, cost: str) -> list[Call]:
    return [
        Call(
            provider="openai",
            api="chat",
            model="gpt-4.1",
            input_tokens=100,
            output_tokens=10,
            cost=Decimal(cost),
            ts=f"{day}T10:{i:02d}:{i % 60:02d}.{i:06d}Z",
            scope_id=scope_id,
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("runaway_calls, flagged", [(20, 3), (31, 3), (32, 2)])
def test_team_runaway_scopes_name_scopes_like_the_local_ledger(ledger, server, runaway_calls, flagged):
    """Six scopes of 2, 3, 4, 31, 35 and 40 calls: median 17.5; a described cell, a named track run and a
    scope with no scope row ("scope <id>"), on the limit and above it."""
    unknown = "f00dfeedbeef0123456789abcdef"
    ledger.write_many(
        _scoped("small-1", 2, "2026-11-02", "0.001")
        + _scoped("small-2", 3, "2026-11-02", "0.001")
        + _scoped("small-3", 4, "2026-11-03", "0.001")
        + _scoped("track-run", 31, "2026-11-04", "0.002")
        + _scoped(unknown, 35, "2026-11-05", "0.003")
        + _scoped("cell-loop", 40, "2026-11-06", "0.0125")
        + _scoped_free()
    )
    scopes = [
        ("small-1", "cell", None, "a.ipynb", 1, "s", "2026-11-02T10:00:00.000000Z", None),
        ("small-2", "cell", None, "a.ipynb", 2, "s", "2026-11-02T10:00:00.000000Z", None),
        ("small-3", "cell", None, "a.ipynb", 3, "s", "2026-11-03T10:00:00.000000Z", None),
        ("track-run", "track", "nightly eval", None, None, "s", "2026-11-04T10:00:00.000000Z", None),
        ("cell-loop", "cell", None, "evals.ipynb", 7, "s", "2026-11-06T10:00:00.000000Z", None),
    ]
    with ledger._lock:
        ledger.connection.executemany("INSERT INTO scopes VALUES (?, ?, ?, ?, ?, ?, ?, ?)", scopes)
    dsn = new_database(server)
    assert sync(dsn, ledger=ledger).scopes == 5
    shared = Ledger(dsn)
    kwargs = {"runaway_factor": 1.5, "runaway_calls": runaway_calls}
    local, team = ledger.anomalies(**kwargs), shared.anomalies(**kwargs)
    pd.testing.assert_frame_equal(team, local)
    runaways = team[team["kind"] == "runaway_scope"]
    limit = "31" if runaway_calls == 31 else "32" if runaway_calls == 32 else "26.25"
    median = f"2× the median scope (17.5 calls; threshold {limit})"
    expected = [
        ("2026-11-04", Decimal("0.062"), 31, "track-run",
         f"track 'nightly eval' made 31 calls in 30 min ($0.06): {median}"),
        ("2026-11-05", Decimal("0.105"), 35, unknown,
         f"scope f00dfeedbeef made 35 calls in 35 min ($0.10): {median}"),  # the unsynced scope: its id
        ("2026-11-06", Decimal("0.5"), 40, "cell-loop",
         f"cell 7 of evals.ipynb made 40 calls in 40 min ($0.50): {median}"),
    ][3 - flagged:]  # fmt: skip
    assert [(r.start, r.cost_usd, r.calls, r.scope_id, r.reason) for r in runaways.itertuples()] == expected
    assert runaways["ratio"].tolist() == [n / 17.5 for _, _, n, _, _ in expected]
    assert runaways["baseline_usd"].isna().all()
    # a window that ends before the scopes ran, or starts after: none of them
    assert shared.anomalies(**kwargs, since="2026-11-07").query("kind == 'runaway_scope'").empty
    assert shared.anomalies(**kwargs, until="2026-11-04").query("kind == 'runaway_scope'").empty
    shared.close()


def _scoped_free() -> list[Call]:
    """Calls outside any scope (they take no part in the runaway check)."""
    return [Call(model="gpt-4.1", input_tokens=1, cost=Decimal("0.5"), ts=f"2026-11-0{d}T09:00:00.000000Z")
            for d in range(1, 8)]  # fmt: skip


def test_no_scoped_calls_means_no_runaway_rows(ledger, server):
    ledger.write_many(_scoped_free())
    dsn = new_database(server)
    sync(dsn, ledger=ledger)
    shared = Ledger(dsn)
    pd.testing.assert_frame_equal(shared.anomalies(), ledger.anomalies())
    assert shared.anomalies().empty
    shared.close()


# -- filter choices and the latency histogram ----------------------------------------------------------------


def test_filter_choices_equal_the_local_ones(sample, team):
    assert team.time_span() == sample.ledger.time_span()
    first, last = team.time_span()
    assert first.startswith("2026-10-17T") and last.startswith("2026-11-20T") and last.endswith("Z")
    assert team.tag_keys() == sample.ledger.tag_keys() == ["env", "project", "team", "user"]
    for key in ("team", "user", "env", "project", "nope"):
        assert team.tag_values(key) == sample.ledger.tag_values(key)
    assert team.tag_values("team") == ["growth", "platform", "research", "search", "support"]
    assert team.tag_values("nope") == []
    assert (
        team.distinct("provider") == sample.ledger.distinct("provider") == ["anthropic", "google", "openai"]
    )
    assert team.distinct("model") == sample.ledger.distinct("model") == sorted(MODELS)
    for column in ("status", "api", "host", "session_id", "attribution"):
        assert team.distinct(column) == sample.ledger.distinct(column), column
    assert team.distinct("status") == ["error", "ok", "unfinished"]
    for led in (team, sample.ledger):
        with pytest.raises(ValueError, match="cannot list the values of 'cost_pusd; DROP"):
            led.distinct("cost_pusd; DROP TABLE calls")


@pytest.mark.parametrize(
    "by, kwargs",
    [
        ("model", {}),
        (("provider", "status"), {"since": "2026-11-01"}),
        ("tag:team", {"where": {"model": "gpt-4.1"}}),
        ((), {}),
    ],
)
def test_team_latency_histogram_equals_the_local_one(sample, team, by, kwargs):
    local, shared = latency_histogram(sample.ledger, by, **kwargs), latency_histogram(team, by, **kwargs)
    assert len(local) > 0
    pd.testing.assert_frame_equal(shared, local)
    calls = sample.ledger.calls(**{k: v for k, v in kwargs.items() if k == "since"})
    if "where" in kwargs:
        calls = calls[calls["model"] == "gpt-4.1"]
    assert int(shared["calls"].sum()) == int(calls["latency_ms"].notna().sum())  # every timed call, once


def test_database_collation_does_not_change_the_order(ledger, server):
    """A team database sorting text by an ICU locale ('alpha' before 'Zeta') still gives SQLite's order
    (bytes: 'Zeta' first) and puts the untagged and model-less group first."""
    calls = [
        Call(provider="openai", model=model, input_tokens=1, cost=Decimal("0.01") * (i + 1),
             tags=tags, ts=f"2026-11-1{i}T08:00:00.000000Z", latency_ms=20.0 * (i + 1))
        for i, (model, tags) in enumerate(
            [("alpha", {"team": "Zeta"}), ("Zeta", {"team": "alpha"}),
             ("beta", {"team": "Beta", "Zone": "x"}), (None, {}), ("Zeta", {"zone": "y"})]
        )
    ]  # fmt: skip
    ledger.write_many(calls)
    dsn = new_database(server, "TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'")
    sync(dsn, ledger=ledger)
    shared = Ledger(dsn)
    assert shared.query("SELECT x FROM (VALUES ('Zeta'), ('alpha')) v(x) ORDER BY x", []) == [
        ("alpha",),
        ("Zeta",),
    ]  # the database's own order differs from SQLite's
    assert shared.distinct("model") == ledger.distinct("model") == ["Zeta", "alpha", "beta"]
    assert shared.tag_keys() == ledger.tag_keys() == ["Zone", "team", "zone"]
    assert shared.tag_values("team") == ledger.tag_values("team") == ["Beta", "Zeta", "alpha"]
    for by in ("model", "tag:team", ("tag:team", "model")):
        local, team = ledger.summary(by), shared.summary(by)
        pd.testing.assert_frame_equal(team, local)
        pd.testing.assert_frame_equal(latency_histogram(shared, by), latency_histogram(ledger, by))
    teams, models = shared.summary("tag:team")["team"], shared.summary("model")["model"]
    assert pd.isna(teams[0]) and teams[1:].tolist() == ["Beta", "Zeta", "alpha"]
    assert pd.isna(models[0]) and models[1:].tolist() == ["Zeta", "alpha", "beta"]
    shared.close()


# -- the dashboard -------------------------------------------------------------------------------------------


def _same_boards(local, team) -> None:
    assert team.kpis_dict() == local.kpis_dict()
    pd.testing.assert_frame_equal(team.top_frame(), local.top_frame())
    for name in ("total", "time", "tag", "model"):
        pd.testing.assert_frame_equal(team._frames[name], local._frames[name], obj=name)
    assert str(team._frames["forecast"]) == str(local._frames["forecast"])
    pd.testing.assert_frame_equal(team._frames["forecast"].frame(), local._frames["forecast"].frame())
    for index in range(len(local.outputs)):  # the data and spec behind each chart
        assert team.chart(index).to_dict() == local.chart(index).to_dict(), index
    assert (team.kpis.value, team.table.value, str(team)) == (local.kpis.value, local.table.value, str(local))
    assert [c.options for c in (team.provider, team.model, team.tag_key, team.tag_value, team.group)] == [
        c.options for c in (local.provider, local.model, local.tag_key, local.tag_value, local.group)
    ]


def _expected(sample, model=None, team=None, since=None, until=None) -> tuple[Decimal, int, int]:
    """Spend, calls and tokens straight from the local calls."""
    calls = sample.ledger.calls()
    keep = pd.Series(True, index=calls.index)
    if model:
        keep &= calls["model"] == model
    if team:
        keep &= calls["tags"].map(lambda t: t.get("team")) == team
    if since:
        keep &= calls["ts"] >= pd.Timestamp(since, tz="UTC")
    if until:
        keep &= calls["ts"] < pd.Timestamp(until, tz="UTC")
    chosen = calls[keep]
    tokens = int((chosen["input_tokens"] + chosen["output_tokens"]).sum())
    return sum(chosen["cost_usd"], Decimal(0)), len(chosen), tokens


def test_team_dashboard_equals_the_local_one_and_follows_filters(sample, team):
    local = llmcost_nb.dashboard(sample.ledger, budget=100)
    shared = llmcost_nb.dashboard(team.dsn, budget=100)  # the URL opens the team ledger
    assert isinstance(shared.ledger, PostgresLedger)
    _same_boards(local, shared)
    k = shared.kpis_dict()
    assert (k["spend"], k["calls"], k["tokens"]) == _expected(sample)
    forecast = sample.ledger.forecast(as_of=sample.end, budget=100)
    assert k["forecast"] == forecast.projected
    assert k["budget_used"] == _expected(sample, since="2026-11-01")[0] / 100  # November so far
    assert (shared.since.value, shared.until.value) == (date(2026, 10, 17), sample.end)
    assert list(shared.model.options) == ["(all)", *sorted(MODELS)]
    assert shared.tag_key.value == "team"
    assert list(shared.tag_value.options) == ["(all)", "growth", "platform", "research", "search", "support"]

    for board in (local, shared):  # a model, a tag value, a date range and another grouping
        board.model.value = "gpt-4.1"
        board.tag_key.value = "team"
        board.tag_value.value = "research"
        board.since.value = date(2026, 11, 1)
        board.until.value = date(2026, 11, 14)
        board.group.value = "tag:project"
    assert shared.where == local.where == {"model": "gpt-4.1", "tag:team": "research"}
    _same_boards(local, shared)
    k = shared.kpis_dict()
    spend, calls, tokens = _expected(sample, "gpt-4.1", "research", "2026-11-01", "2026-11-15")
    assert (k["spend"], k["calls"], k["tokens"]) == (spend, calls, tokens)
    assert calls > 200  # the runaway cell (team research, gpt-4.1) is in the range
    top = shared.top_frame()
    assert top.columns.tolist() == ["project", "requests", "cost_usd", "unpriced", "estimated"]
    assert (int(top["requests"].sum()), sum(top["cost_usd"], Decimal(0))) == (calls, spend)

    for board in (local, shared):  # another tag key: its values, and the filter on it
        board.tag_key.value = "env"
    assert (
        list(shared.tag_value.options) == list(local.tag_value.options) == ["(all)", "dev", "prod", "staging"]
    )
    for board in (local, shared):
        board.model.value = "(all)"
        board.tag_value.value = "prod"
        board.provider.value = "anthropic"
    _same_boards(local, shared)
    assert shared.where == {"provider": "anthropic", "tag:env": "prod"}
    assert shared.kpis_dict()["calls"] == int(
        sample.ledger.calls(
            provider="anthropic", tags={"env": "prod"}, since="2026-11-01", until="2026-11-15"
        ).shape[0]
    )


def test_team_dashboard_renders_its_charts_and_static_view(sample, team):
    local, shared = llmcost_nb.dashboard(sample.ledger, budget=100), llmcost_nb.dashboard(team, budget=100)
    for index in range(len(shared.outputs)):
        shared.tabs.selected_index = index
        outputs = shared.outputs[index].outputs
        assert len(outputs) == 1 and outputs[0]["data"]["image/svg+xml"].startswith("<svg"), outputs
    shared.tabs.selected_index = local.tabs.selected_index = 1  # budget & forecast: with the anomaly marks
    text = str(shared)
    k = shared.kpis_dict()
    assert (
        text
        == str(local)
        == (
            f"llmcost dashboard 2026-10-17 to 2026-11-20: ${k['spend']:,.2f} · {k['calls']:,} calls · "
            f"{k['tokens']:,} tokens · forecast ${k['forecast']:,.2f} · budget {k['budget_used']:.0%}"
        )
    )
    assert (k["spend"], k["calls"], k["tokens"]) == _expected(sample)
    bundle, local_bundle = shared._repr_mimebundle_(), local._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/plain"] == text
    assert "<svg" in bundle["text/html"] and "Top 10 by cost: model" in bundle["text/html"]
    assert bundle["text/html"] == local_bundle["text/html"]
    spikes = shared.ledger.anomalies(since="2026-10-04", until="2026-12-01", scopes=False)
    assert spikes["start"].tolist() == [sample.spike_day.isoformat(), sample.runaway_day.isoformat()]  # red


def test_team_dashboard_of_an_empty_team_ledger(ledger, server):
    dsn = new_database(server)
    sync(dsn, ledger=ledger)
    shared = Ledger(dsn)
    assert shared.time_span() == ledger.time_span() == (None, None)
    assert shared.tag_keys() == [] and shared.distinct("model") == []
    board, local = llmcost_nb.dashboard(shared), llmcost_nb.dashboard(ledger)
    assert board.kpis_dict() == local.kpis_dict()
    assert (board.kpis_dict()["calls"], board.kpis_dict()["spend"]) == (0, Decimal(0))
    assert board.top_frame().empty and str(board) == str(local)
    shared.close()
