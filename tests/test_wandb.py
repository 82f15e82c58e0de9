"""W&B export in offline mode: assert on the files the real wandb client writes (the .wandb log, tables)."""

from __future__ import annotations

import json
import struct
from decimal import Decimal
from pathlib import Path

import pytest
import wandb

from llmcost_nb import Call, export


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


def read_run_log(path: Path) -> list[tuple[str, object]]:
    """The records of a run's .wandb file (W&B's leveldb-style log: 7-byte header, 32 KiB blocks)."""
    from wandb.proto import wandb_internal_pb2 as pb

    raw, pos, pending, found = path.read_bytes(), 7, b"", []
    assert raw[:4] == b":W&B"
    while pos + 7 <= len(raw):
        left = 32768 - pos % 32768
        _, length, kind = struct.unpack("<IHB", raw[pos : pos + 7])
        if left < 7 or (kind == 0 and length == 0):
            pos += left
            continue
        data, pos = raw[pos + 7 : pos + 7 + length], pos + 7 + length
        pending = data if kind in (1, 2) else pending + data
        if kind in (1, 4):
            record = pb.Record.FromString(pending)
            kind_name = record.WhichOneof("record_type")
            found.append((kind_name, getattr(record, kind_name)))
    return found


def summary(records: list[tuple[str, object]]) -> dict[str, object]:
    values: dict[str, object] = {}
    for kind, record in records:
        if kind == "summary":
            values.update(
                {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.update}
            )
    return values


def test_one_run_per_session_with_tables_metrics_and_summary(offline, ledger):
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
    records = read_run_log(run_dir / f"run-{runs[0].run_id}.wandb")
    (run,) = [record for kind, record in records if kind == "run"]
    assert (run.project, run.display_name, run.run_group, run.job_type) == (
        "prompt-lab",
        "session session-0",
        "session",
        "llm-cost",
    )
    assert list(run.tags) == list(runs[0].tags)
    config = {item.key: json.loads(item.value_json) for item in run.config.update}
    assert config["llmcost_tags"] == {}  # the three calls share no tag
    values = summary(records)
    assert values["llmcost/total_cost_usd"] == 0.00085
    assert values["llmcost/total_cost_usd_exact"] == "0.00085"
    assert (
        values["llmcost/calls"],
        values["llmcost/total_input_tokens"],
        values["llmcost/total_output_tokens"],
    ) == (3, 607, 63)
    assert values["llmcost/cost_usd/gpt-4.1"] == 0.0006
    assert values["llmcost/cost_usd/claude-sonnet-4-5"] == 0.00025
    history = [
        {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.item}
        for kind, record in records
        if kind == "history"
    ]
    assert [h["llmcost/cumulative_cost_usd"] for h in history if "llmcost/cumulative_cost_usd" in h] == [
        0.0002,
        0.0006,
        0.00085,
    ]

    (calls_table,) = (run_dir / "files" / "media" / "table" / "llmcost").glob("calls_*.table.json")
    table = json.loads(calls_table.read_text())
    assert table["columns"] == [
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
        "cost_usd_exact",
    ]
    assert [row[:6] + row[9:10] + row[13:] for row in table["data"]] == [
        ["2026-11-22T10:00:00+00:00", "openai", "chat", "gpt-4.1", 200, 20, 0.0002, "0.0002"],
        ["2026-11-24T10:00:00+00:00", "openai", "chat", "gpt-4.1", 400, 40, 0.0004, "0.0004"],
        ["2026-11-25T10:00:00+00:00", "anthropic", "messages", "claude-sonnet-4-5", 7, 3, 0.00025, "0.00025"],
    ]
    (by_model,) = (run_dir / "files" / "media" / "table" / "llmcost").glob("cost_by_model_*.table.json")
    assert json.loads(by_model.read_text())["data"] == [
        ["claude-sonnet-4-5", 1, 7, 3, 0.00025, "0.00025"],
        ["gpt-4.1", 2, 600, 60, 0.0006, "0.0006"],
    ]


def test_group_by_experiment_tag_and_bad_grouping(offline, ledger):
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
    records = read_run_log(runs[1].dir / f"run-{runs[1].run_id}.wandb")
    (run,) = [record for kind, record in records if kind == "run"]
    config = {item.key: json.loads(item.value_json) for item in run.config.update}
    assert config["llmcost_tags"] == {"experiment": "b", "team": "search"}
    with pytest.raises(ValueError, match="allowed values: session, scope, experiment"):
        export.wandb(ledger, project="p", by="day")
