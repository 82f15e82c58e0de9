"""W&B export in offline mode with the real wandb client: assert on what llmcost_nb hands to wandb's public
API (wandb.init, run.log, the run summary, wandb.Table), not on wandb's private run-file format."""

from __future__ import annotations

from decimal import Decimal

import pytest
import wandb

from llmcost_nb import Call
from llmcost_nb.team import export


@pytest.fixture
def offline(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "cache"))
    wandb.teardown()  # wandb reads its settings (WANDB_DIR) once per process set-up
    yield tmp_path
    wandb.teardown()


@pytest.fixture
def logged(offline, monkeypatch):
    """What llmcost_nb hands to wandb's public API, run by run: wandb.init's arguments, each run.log call, and
    the run's summary as it stands when llmcost_nb finishes the run. The real wandb client still runs (and
    writes its offline run); only its own file format stays unread."""
    runs: list[dict] = []
    real_init = wandb.init

    def init(**kwargs):
        run = real_init(**kwargs)
        record = {"init": kwargs, "log": [], "summary": None}
        real_log, real_finish = run.log, run.finish

        def log(data, **options):
            record["log"].append((dict(data), options))
            return real_log(data, **options)

        def finish(*args, **options):
            record["summary"] = dict(run.summary)
            return real_finish(*args, **options)

        run.log, run.finish = log, finish
        runs.append(record)
        return run

    monkeypatch.setattr(wandb, "init", init)
    return runs


def table(run: dict, key: str) -> wandb.Table:
    (found,) = [data[key] for data, _ in run["log"] if key in data]
    assert isinstance(found, wandb.Table)
    return found


def test_one_run_per_session_with_tables_metrics_and_summary(offline, logged, ledger):
    ledger.write_many(
        [
            Call(
                provider="openai",
                api="chat",
                model="gpt-4.1",
                input_tokens=100 * i,
                output_tokens=10 * i,
                cost=Decimal(i).scaleb(-4),
                session_id=f"session-{i % 2}",
                latency_ms=100.0 * i,
                tags={"team": "search", "environment": "dev", "project": "faq-bot", "variant": "AB"[i % 2]},
                ts=f"2026-11-2{i}T10:00:00.000000Z",
            )
            for i in range(1, 5)
        ]
        + [
            Call(
                provider="anthropic",
                api="messages",
                model="claude-sonnet-4-5",
                input_tokens=7,
                output_tokens=3,
                cost=Decimal("0.00025"),
                session_id="session-0",
                tags={"team": "ads"},
                ts="2026-11-25T10:00:00.000000Z",
            )
        ]
    )
    runs = export.wandb(ledger, project="prompt-lab", since="2026-11-22")
    wandb.teardown()  # the wandb service writes the run logs asynchronously: let it finish
    assert [(r.name, r.calls, r.cost) for r in runs] == [
        ("session session-0", 3, Decimal("0.00085")),
        ("session session-1", 1, Decimal("0.0003")),
    ]
    assert runs[0].tags == (
        "environment:dev",
        "model:claude-sonnet-4-5",
        "model:gpt-4.1",
        "project:faq-bot",
        "team:ads",
        "team:search",
    )

    run_dir = runs[0].dir
    assert run_dir.parent == offline / "wandb" and run_dir.name.startswith("offline-run-")
    assert len(logged) == 2
    run = logged[0]
    assert {key: run["init"][key] for key in ("project", "name", "group", "job_type", "tags")} == {
        "project": "prompt-lab",
        "name": "session session-0",
        "group": "session",
        "job_type": "llm-cost",
        "tags": list(runs[0].tags),
    }
    assert run["init"]["config"]["llmcost_tags"] == {}  # the three calls share no tag
    values = run["summary"]
    assert values["llmcost/total_cost_usd"] == 0.00085
    assert values["llmcost/total_cost_usd_exact"] == "0.00085"
    assert (
        values["llmcost/calls"],
        values["llmcost/total_input_tokens"],
        values["llmcost/total_output_tokens"],
    ) == (3, 607, 63)
    assert values["llmcost/cost_usd/gpt-4.1"] == 0.0006
    assert values["llmcost/cost_usd/claude-sonnet-4-5"] == 0.00025
    history = [(data, options) for data, options in run["log"] if "llmcost/cumulative_cost_usd" in data]
    assert [(data["llmcost/cumulative_cost_usd"], options) for data, options in history] == [
        (0.0002, {"step": 0}),
        (0.0006, {"step": 1}),
        (0.00085, {"step": 2}),
    ]

    calls_table = table(run, "llmcost/calls")
    assert calls_table.columns == [
        "ts",
        "provider",
        "api",
        "model",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
        "cost_usd",
        "latency_ms",
        "status",
        "tags",
        "usage_source",
        "cost_usd_exact",
        "unpriced",
    ]
    assert [list(row[:6]) + list(row[9:10]) + list(row[14:]) for row in calls_table.data] == [
        ["2026-11-22T10:00:00+00:00", "openai", "chat", "gpt-4.1", 200, 20, 0.0002, "0.0002", False],
        ["2026-11-24T10:00:00+00:00", "openai", "chat", "gpt-4.1", 400, 40, 0.0004, "0.0004", False],
        ["2026-11-25T10:00:00+00:00", "anthropic", "messages", "claude-sonnet-4-5", 7, 3, 0.00025, "0.00025",
         False],
    ]
    assert [list(row) for row in table(run, "llmcost/cost_by_model").data] == [
        ["claude-sonnet-4-5", 1, 7, 3, 0.00025, "0.00025", 0, 0],
        ["gpt-4.1", 2, 600, 60, 0.0006, "0.0006", 0, 0],
    ]
    assert (values["llmcost/unpriced_calls"], values["llmcost/estimated_calls"]) == (0, 0)


def test_group_by_experiment_tag_and_bad_grouping(offline, logged, ledger):
    ledger.write_many(
        [
            Call(
                model="gpt-4.1",
                input_tokens=1,
                output_tokens=1,
                cost=Decimal("0.01"),
                tags={"experiment": name, "team": "search"},
            )
            for name in ("b", "a", "b")
        ]
    )
    runs = export.wandb(ledger, project="p", by="experiment")
    wandb.teardown()  # the wandb service writes the run logs asynchronously: let it finish
    assert [(r.name, r.calls, r.cost) for r in runs] == [("a", 1, Decimal("0.01")), ("b", 2, Decimal("0.02"))]
    assert [run["init"]["name"] for run in logged] == ["a", "b"]
    assert logged[1]["init"]["config"]["llmcost_tags"] == {"experiment": "b", "team": "search"}
    with pytest.raises(ValueError, match="allowed values: session, scope, experiment"):
        export.wandb(ledger, project="p", by="day")


def test_unpriced_calls_are_never_logged_as_0_and_estimated_ones_are_counted(offline, logged, ledger):
    """Issue 16: an unpriced call has no cost metric and an empty cost in the tables, and is counted."""
    from _honest import write_honest

    write_honest(ledger)
    (exported,) = export.wandb(ledger, project="p")
    wandb.teardown()  # the wandb service writes the run logs asynchronously: let it finish
    assert (exported.calls, exported.cost) == (5, Decimal("1.2042"))
    (run,) = logged
    values = run["summary"]
    assert (values["llmcost/unpriced_calls"], values["llmcost/estimated_calls"]) == (2, 1)
    assert values["llmcost/total_cost_usd_exact"] == "1.2042"
    steps = [data for data, _ in run["log"] if "llmcost/cumulative_cost_usd" in data]
    assert [data.get("llmcost/cost_usd") for data in steps] == [1.2, 0.0042, None, None, None]
    calls_table = table(run, "llmcost/calls")
    source, exact, unpriced = (calls_table.columns.index(c) for c in ("usage_source", "cost_usd_exact",
                                                                       "unpriced"))
    rows = [(row[3], row[source], row[exact], bool(row[unpriced])) for row in calls_table.data]
    assert [(*row[:2], None if row[2] != row[2] else row[2], row[3]) for row in rows] == [  # NaN: empty
        ("gpt-4.1", "provider", "1.2", False),
        ("gpt-4o-mini", "estimated", "0.0042", False),
        ("my-ft", "provider", None, True),
        ("my-ft", "provider", None, True),
        ("gpt-4.1", "provider", None, False),
    ]
    assert [list(row) for row in table(run, "llmcost/cost_by_model").data] == [
        ["gpt-4.1", 2, 1000, 100, 1.2, "1.2", 0, 0],
        ["gpt-4o-mini", 1, 300, 40, 0.0042, "0.0042", 0, 1],
        ["my-ft", 2, 200, 20, 0.0, "0", 2, 0],
    ]
