"""Sync to a real PostgreSQL server (started here from Debian's binaries): idempotent, resumable, parallel."""

from __future__ import annotations

import itertools
import threading
from decimal import Decimal

import pandas as pd
import psycopg
import pytest
from pg_server import PgServer

import llmcost_nb
from llmcost_nb import Call, Ledger
from llmcost_nb.team import SyncError, SyncResult, sync
from llmcost_nb.team.background import BackgroundSync
from llmcost_nb.team.postgres import PostgresLedger
from llmcost_nb.team.sync import connect, migrate

_db_numbers = itertools.count()


@pytest.fixture(scope="module")
def server():
    with PgServer() as pg:
        yield pg


@pytest.fixture
def team(server):
    """A fresh database on the shared server: its DSN."""
    name = f"team_{next(_db_numbers)}"
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server.dsn.rsplit("/", 1)[0] + f"/{name}"


def make_calls(n: int, *, start: int = 0, model: str = "gpt-4.1") -> list[Call]:
    """n calls with distinct token counts and exact costs: call i costs (i+1) × $0.000001."""
    return [
        Call(
            provider="openai",
            api="chat",
            model=model,
            model_requested=model,
            input_tokens=100 + i,
            output_tokens=10 + i % 7,
            cache_read_tokens=i % 3,
            cost=Decimal(i + 1).scaleb(-6),
            tags={"team": "search" if i % 2 else "ads", "variant": "AB"[i % 2]},
            ts=f"2026-11-{10 + i % 5:02d}T08:00:{i % 60:02d}.{i % 1000000:06d}Z",
            latency_ms=12.5,
            session_id="s1",
        )
        for i in range(start, start + n)
    ]


def server_totals(dsn: str, ledger: Ledger | None = None) -> tuple[int, Decimal]:
    with psycopg.connect(dsn) as conn:
        where, params = ("WHERE ledger_id = %s", [ledger_id(ledger)]) if ledger else ("", [])
        n, pusd = conn.execute(
            f"SELECT count(*), COALESCE(sum(cost_pusd), 0) FROM llmcost.calls {where}", params
        ).fetchone()
    return n, Decimal(pusd).scaleb(-12)


def ledger_id(ledger: Ledger) -> str:
    return ledger.connection.execute("SELECT value FROM meta WHERE key = 'ledger_id'").fetchone()[0]


def test_first_sync_pushes_every_row_with_the_same_values(ledger, team):
    ledger.write_many(make_calls(5))
    result = sync(team, ledger=ledger)
    assert (result.inserted, result.updated, result.unchanged, result.batches) == (5, 0, 0, 1)
    local = ledger.calls()
    shared = PostgresLedger(team).calls()
    assert shared["ledger_id"].tolist() == [ledger_id(ledger)] * 5
    assert shared.drop(columns="ledger_id").to_dict("records") == local.to_dict("records")
    assert shared["cost_usd"].tolist() == [
        Decimal("0.000001"),
        Decimal("0.000002"),
        Decimal("0.000003"),
        Decimal("0.000004"),
        Decimal("0.000005"),
    ]
    assert shared["tags"][1] == {"team": "search", "variant": "B"}


def test_awkward_values_arrive_unchanged(ledger, team):
    odd = Call(
        provider=None,
        api="chat",
        model="m\\odel",
        model_requested=None,
        input_tokens=2**40,
        output_tokens=0,
        cost=Decimal("1234567.000000000001"),
        latency_ms=0.1 + 0.2,
        status="error",
        http_status=None,
        error='tab\there\nnew "line"\r\\N \\ é 日本 \U0001f600',
        usage_extra={"web_searches": 3},
        billed=False,
        streamed=True,
        tags={"path": "C:\\temp\\x", "quote": 'say "hi"\tnow', "empty": ""},
        ts="2026-11-20T23:59:59.999999Z",
    )
    untagged = Call(model="plain", input_tokens=1, cost=Decimal(0), ts="2026-11-21T00:00:00.000000Z")
    ledger.write_many([odd, *make_calls(2), untagged])
    sync(team, ledger=ledger)
    local, shared = ledger.calls(), PostgresLedger(team).calls().sort_values("id", ignore_index=True)
    pd.testing.assert_frame_equal(shared.drop(columns="ledger_id"), local)
    first = shared.iloc[0]
    assert (first.error, first.latency_ms, first.cost_usd) == (odd.error, 0.30000000000000004, odd.cost)
    assert (first.tags, first.usage_extra) == (odd.tags, {"web_searches": 3})
    assert pd.isna(first.provider) and first.input_tokens == 2**40


def test_sync_again_pushes_nothing_then_only_new_rows(ledger, team):
    ledger.write_many(make_calls(3))
    sync(team, ledger=ledger)
    again = sync(team, ledger=ledger)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 0)
    ledger.write_many(make_calls(2, start=3))
    more = sync(team, ledger=ledger)
    assert (more.inserted, more.rows) == (2, 2)
    assert server_totals(team) == (5, Decimal("0.000015"))


def test_duplicate_push_after_lost_marks_adds_no_row(ledger, team):
    """The sync committed on the server but the laptop died before recording it: the re-push is harmless."""
    ledger.write_many(make_calls(40))
    sync(team, ledger=ledger, batch_size=7)
    ledger.connection.execute("UPDATE sync_targets SET last_call_id = 0, last_change_seq = 0")
    repeat = sync(team, ledger=ledger, batch_size=7)
    assert (repeat.inserted, repeat.updated, repeat.unchanged) == (0, 0, 40)
    assert server_totals(team) == (40, ledger.total_cost()) == (40, Decimal("0.00082"))


def test_rows_changed_after_push_are_pushed_again(ledger, team):
    first, second = make_calls(2)
    first.status, first.cost, first.output_tokens = "unfinished", None, 0
    ledger.write(first)
    ledger.write(second)
    sync(team, ledger=ledger)
    first.status, first.output_tokens, first.cost = "ok", 321, Decimal("0.0042")
    ledger.write(first)  # the stream finished later: updated in place locally
    result = sync(team, ledger=ledger)
    assert (result.inserted, result.updated, result.unchanged) == (0, 1, 0)
    row = PostgresLedger(team).calls(status="ok").set_index("id").loc[first.id]
    assert (row.output_tokens, row.cost_usd) == (321, Decimal("0.0042"))
    assert server_totals(team) == (2, Decimal("0.004202"))
    assert ledger.connection.execute("SELECT count(*) FROM sync_changes").fetchone() == (0,)  # pruned


def test_two_ledgers_sync_concurrently_while_writing(tmp_path, team):
    ledgers = [Ledger(tmp_path / f"laptop #{i} ?.db") for i in range(2)]
    errors: list[BaseException] = []

    def laptop(led: Ledger, offset: int) -> None:
        try:
            for round_ in range(4):
                led.write_many(make_calls(2500, start=offset + round_ * 2500))
                sync(team, ledger=led, batch_size=600)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=laptop, args=(led, i * 100_000)) for i, led in enumerate(ledgers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for led in ledgers:
        assert server_totals(team, led) == (10_000, led.total_cost())
    assert server_totals(team)[0] == 20_000
    assert len(PostgresLedger(team).ledgers()) == 2


def test_one_ledger_synced_from_two_threads_at_once_has_no_duplicates(ledger, team):
    ledger.write_many(make_calls(6000))
    results: list[SyncResult] = []
    threads = [
        threading.Thread(target=lambda: results.append(sync(team, ledger=ledger, batch_size=500)))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.inserted + r.unchanged for r in results) == [0, 0, 6000]
    assert server_totals(team) == (6000, ledger.total_cost())


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_server_stopped_mid_sync_loses_nothing(tmp_path, mode):
    led = Ledger(tmp_path / "l.db")
    led.write_many(make_calls(10_000))
    with PgServer() as pg:

        def stop_after_third_batch(progress: SyncResult) -> None:
            if progress.batches == 3:
                pg.stop(mode)

        with pytest.raises(SyncError, match="the next sync resumes"):
            sync(pg.dsn, ledger=led, batch_size=1000, progress=stop_after_third_batch)
        with pytest.raises(SyncError, match="cannot connect"):
            sync(pg.dsn, ledger=led)
        pg.restart()
        assert server_totals(pg.dsn) == (3000, Decimal("4.5015"))
        resumed = sync(pg.dsn, ledger=led, batch_size=1000)
        assert (resumed.inserted, resumed.unchanged) == (7000, 0)
        assert server_totals(pg.dsn) == (10_000, led.total_cost()) == (10_000, Decimal("50.005"))


def test_background_sync_keeps_trying_while_the_server_is_down(tmp_path):
    led = Ledger(tmp_path / "l.db")
    led.write_many(make_calls(100))
    with PgServer() as pg:
        pg.stop()
        job = llmcost_nb.sync(pg.dsn, ledger=led, every=0.2)
        assert isinstance(job, BackgroundSync) and job.running
        job.min_backoff = 0.01
        assert job.wait_idle(2, timeout=30)
        assert job.last_result is None and "cannot connect" in job.last_error
        led.write_many(make_calls(50, start=100))  # calls go on while the server is down
        pg.restart()
        job.now()
        runs = job.runs
        assert job.wait_idle(runs + 2, timeout=30)
        job.stop()
        assert not job.running and job.last_error is None
        assert server_totals(pg.dsn) == (150, led.total_cost()) == (150, Decimal("0.011325"))


def test_postgres_ledger_filters_match_the_local_ledger(ledger, team):
    ledger.write_many(make_calls(30) + make_calls(10, start=30, model="gpt-4.1-mini"))
    sync(team, ledger=ledger)
    shared = PostgresLedger(team)
    for filters in (
        {},
        {"model": "gpt-4.1-mini"},
        {"tags": {"team": "ads"}},
        {"tags": {"team": "ads", "variant": "A"}, "since": "2026-11-12", "until": "2026-11-14"},
        {"billed": True, "provider": "openai"},
    ):
        assert shared.total_cost(**filters) == ledger.total_cost(**filters), filters
        assert shared.count(**filters) == ledger.count(**filters), filters
    assert shared.total_cost(tags={"team": "ads"}) == Decimal("0.000400")
    with pytest.raises(llmcost_nb.errors.FilterError, match="allowed filters: api, billed"):
        shared.calls(colour="red")
    shared.close()


def test_ledger_with_a_postgres_url_opens_the_team_ledger(ledger, team):
    ledger.write_many(make_calls(4))
    sync(team, ledger=ledger)
    shared = Ledger(team)
    assert isinstance(shared, PostgresLedger)
    assert shared.total_cost() == Decimal("0.00001")


def test_schema_migration_is_safe_when_many_clients_start_at_once(team):
    versions: list[int] = []

    def start() -> None:
        with connect(team) as conn:
            versions.append(migrate(conn))

    threads = [threading.Thread(target=start) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert versions == [2] * 6
    with psycopg.connect(team) as conn:
        assert conn.execute("SELECT version, name FROM llmcost.migrations ORDER BY 1").fetchall() == [
            (1, "calls"),
            (2, "access"),
        ]


def test_unreachable_server_and_bad_input_give_one_line_errors(ledger, unused_port):
    with pytest.raises(SyncError, match=rf"^cannot connect to .*port={unused_port}"):
        sync(f"postgresql://nobody:secret@127.0.0.1:{unused_port}/x", ledger=ledger)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        sync("postgresql://127.0.0.1/x", ledger=ledger, batch_size=0)
    with pytest.raises(ValueError, match="schema must be a lower-case SQL identifier"):
        sync("postgresql://127.0.0.1/x", ledger=ledger, schema="Robert'); DROP")
    with pytest.raises(ValueError, match="LLMCOST_SYNC_DSN"):
        sync(ledger=ledger)
    with pytest.raises(ValueError, match="ledger must be a local ledger"):
        sync("postgresql://127.0.0.1/x", ledger="postgresql://127.0.0.1/y")


def test_cli_sync_pushes_the_ledger_named_by_db(ledger, team):
    from click.testing import CliRunner

    from llmcost_nb.cli.team import sync_command

    ledger.write_many(make_calls(5))
    result = CliRunner().invoke(sync_command, ["--to", team, "--db", str(ledger.path)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("synced to user=postgres dbname=team_")
    assert ": 5 new, 0 updated, 0 already there · " in result.output
    again = CliRunner().invoke(sync_command, ["--to", team, "--db", str(ledger.path)])
    assert ": 0 new, 0 updated, 0 already there · " in again.output
    missing = CliRunner().invoke(sync_command, ["--db", str(ledger.path)], env={"LLMCOST_SYNC_DSN": ""})
    assert missing.exit_code == 2 and "pass --to postgresql://user@host/db" in missing.output
    assert server_totals(team) == (5, Decimal("0.000015"))


@pytest.mark.parametrize(
    "by, kwargs",
    [
        (("day", "model"), {}),
        (("week", "tag:team"), {}),
        (("month", "provider", "status"), {}),
        ("hour", {"since": "2026-11-11", "until": "2026-11-13"}),
        (("tag:variant",), {"where": {"tag:team": "ads", "model": "gpt-4.1"}}),
        ((), {"where": {"billed": True}}),
    ],
)
def test_team_summary_equals_the_local_analysis(ledger, team, by, kwargs):
    from llmcost_nb.analysis.summaries import summary

    calls = make_calls(300) + make_calls(40, start=300, model="gpt-4.1-mini")
    for i, call in enumerate(calls):
        call.latency_ms = 3.0 + 7.5 * (i % 97)
        call.status = "error" if i % 31 == 0 else "ok"
    ledger.write_many(calls)
    sync(team, ledger=ledger)
    local = summary(ledger, by, **kwargs)
    shared = PostgresLedger(team).summary(by, **kwargs)
    assert len(local) > 0
    assert shared.to_dict("records") == local.to_dict("records")
    assert shared.dtypes.to_dict() == local.dtypes.to_dict()


def test_llmcost_sync_magic_runs_once_or_in_the_background(tmp_path, team, monkeypatch):
    from IPython.core.error import UsageError

    from llmcost_nb.notebook.sync_magic import sync_magic

    session = llmcost_nb.get_session()
    session.ledger.write_many(make_calls(12))
    once = sync_magic(["--to", team])
    assert (once.inserted, once.unchanged) == (12, 0)
    assert sync_magic(["--status"]) == "no background sync is running"
    job = sync_magic(["--to", team, "--every", "0.1"])
    assert isinstance(job, BackgroundSync) and job.running
    session.ledger.write_many(make_calls(3, start=12))
    assert job.wait_idle(2, timeout=30)
    assert sync_magic(["--status"]) is job
    assert sync_magic(["--stop"]) is job and not job.running
    assert server_totals(team) == (15, session.ledger.total_cost()) == (15, Decimal("0.00012"))
    monkeypatch.delenv("LLMCOST_SYNC_DSN", raising=False)
    with pytest.raises(UsageError, match="pass --to postgresql://user@host/db"):
        sync_magic([])
    with pytest.raises(UsageError, match="--every must be a positive number of seconds, got -1"):
        sync_magic(["--to", team, "--every", "-1"])
    with pytest.raises(UsageError, match="unrecognized arguments: --bogus"):
        sync_magic(["--bogus"])


def test_rows_lost_on_the_server_are_pushed_again(ledger, team):
    """The team database was restored from an older backup: the next sync notices and fills the gap."""
    ledger.write_many(make_calls(50))
    sync(team, ledger=ledger, batch_size=20)
    with psycopg.connect(team, autocommit=True) as conn:
        conn.execute("DELETE FROM llmcost.calls WHERE id > 30")
    healed = sync(team, ledger=ledger, batch_size=20)
    assert (healed.inserted, healed.unchanged) == (20, 0)
    assert server_totals(team) == (50, ledger.total_cost()) == (50, Decimal("0.001275"))


def test_laptop_killed_mid_sync_loses_nothing(ledger, team):
    """SIGKILL in the middle of a sync (after 3 committed batches of 10): the next sync resumes."""
    import subprocess
    import sys

    ledger.write_many(make_calls(100))
    script = (
        "import os, signal, sys\n"
        "from llmcost_nb.team import sync\n"
        "def die(progress):\n"
        "    if progress.batches == 3:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "sync(sys.argv[1], ledger=sys.argv[2], batch_size=10, progress=die)\n"
    )
    killed = subprocess.run(
        [sys.executable, "-c", script, team, str(ledger.path)], capture_output=True, timeout=60
    )
    assert killed.returncode == -9
    assert server_totals(team)[0] == 30
    # The third batch was committed on the server but the process died before recording it locally: it is
    # pushed again and found unchanged. The dead client's advisory lock went away with its connection.
    resumed = sync(team, ledger=ledger, batch_size=10)
    assert (resumed.inserted, resumed.unchanged) == (70, 10)
    assert server_totals(team) == (100, ledger.total_cost()) == (100, Decimal("0.00505"))


def test_sync_carries_every_column_of_the_local_calls_table(ledger):
    """Fails when a migration adds a column to calls that the sync (and the PostgreSQL schema) lacks."""
    from llmcost_nb.team.schema import PG_MIGRATIONS
    from llmcost_nb.team.sync import CALL_COLUMNS

    local = [row[1] for row in ledger.connection.execute("PRAGMA table_info(calls)")]
    assert sorted(CALL_COLUMNS) == sorted(c for c in local if c != "tagset_id")
    ddl = " ".join(sql for _, _, sql in PG_MIGRATIONS)
    assert all(f" {column} " in ddl for column in CALL_COLUMNS)


def test_team_chargeback_and_forecast_equal_the_local_ones(ledger, team):
    ledger.write_many(make_calls(120))
    sync(team, ledger=ledger)
    shared = PostgresLedger(team)
    local_cb, shared_cb = (
        ledger.chargeback(by="tag:team", period=None),
        shared.chargeback(by="tag:team", period=None),
    )
    pd.testing.assert_frame_equal(shared_cb, local_cb)
    assert shared_cb["cost_usd"].tolist() == [Decimal("0.003660"), Decimal("0.003600")]
    as_of = "2026-11-14T12:00:00Z"
    assert str(shared.forecast(as_of=as_of)) == str(ledger.forecast(as_of=as_of))
    assert str(shared.daily_report("2026-11-12", budget=1)) == str(
        ledger.daily_report("2026-11-12", budget=1)
    )
    assert "gpt-4.1" in str(shared.daily_report("2026-11-12"))


def test_reconcile_the_team_ledger_against_the_org_invoice(ledger, team):
    """The org-wide invoice matches only the calls of every laptop together."""
    from test_team_reconcile import EXPORTS, call

    from llmcost_nb.team.reconcile import reconcile

    other = Ledger(ledger.path.with_name("laptop2.db"))
    half = dict(n_in=30000, cached=10000, n_out=10000, project="proj_search")
    ledger.write_many([call("2026-11-03", "gpt-4.1-2025-04-14", "0.125", **half),
                       call("2026-11-03", "claude-sonnet-4-5-20250929", "0.018075", provider="anthropic",
                            n_in=5500, cached=4000, written=500, n_out=800)])  # fmt: skip
    other.write_many(
        [
            call("2026-11-03", "gpt-4.1-2025-04-14", "0.125", **half),
            call("2026-11-04", "gpt-4.1-nano", "0.002", n_in=20000, project="proj_ads"),
        ]
    )
    sync(team, ledger=ledger)
    sync(team, ledger=other)
    alone = reconcile(ledger, EXPORTS / "openai_costs.json", key="project_id", key_tag="project")
    assert alone.rows["status"].tolist()[0] == "differs"  # one laptop's half of the spend
    shared = reconcile(Ledger(team), EXPORTS / "openai_costs.json", key="project_id", key_tag="project")
    assert [(r.day, r.model, r.key, r.status) for r in shared.rows.itertuples()] == [
        ("2026-11-03", "gpt-4.1", "proj_search", "match"),
        ("2026-11-03", "gpt-4.1-mini", "proj_search", "only in export"),
        ("2026-11-04", "gpt-4.1", "proj_ads", "only in export"),
        ("2026-11-04", "gpt-4.1-nano", "proj_ads", "only in ledger"),
        ("2026-11-04", "o3", "proj_ads", "only in export"),
    ]
    assert (shared.rows["ledger_requests"][0], shared.rows["ledger_cost_usd"][0]) == (2, Decimal("0.25"))
    anthropic = reconcile(Ledger(team), EXPORTS / "anthropic_usage_report.json")
    assert [(r.model, r.status, r.ledger_input_tokens) for r in anthropic.rows.itertuples()] == [
        ("claude-sonnet-4-5", "match", 5500),
        ("claude-haiku-4-5", "only in export", None),
    ]


def test_cli_reports_read_the_team_ledger(ledger, team):
    from click.testing import CliRunner

    from llmcost_nb.cli.app import main

    ledger.write_many(make_calls(30) + make_calls(5, start=30, model="gpt-4.1-mini"))
    sync(team, ledger=ledger)
    runner = CliRunner()
    local = runner.invoke(main, ["report", "--by", "model", "--format", "csv", "--db", str(ledger.path)])
    shared = runner.invoke(main, ["report", "--by", "model", "--format", "csv", "--db", team])
    assert local.exit_code == shared.exit_code == 0, shared.output
    assert shared.output == local.output and "gpt-4.1-mini" in shared.output
    bad = runner.invoke(main, ["report", "--db", team.rsplit("/", 1)[0] + "/no_such_db"])
    assert bad.exit_code == 1 and bad.output.startswith("Error: cannot open the team ledger:")
    assert "Traceback" not in bad.output
