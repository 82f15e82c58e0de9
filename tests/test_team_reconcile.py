"""Reconciliation against the provider exports shipped in sample_data/exports/ (their documented formats)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

import llmcost_nb
from llmcost_nb import Call
from llmcost_nb.team.exports import ExportFormatError, read_export
from llmcost_nb.team.reconcile import reconcile

EXPORTS = Path(__file__).resolve().parent.parent / "sample_data" / "exports"


def call(
    day: str,
    model: str,
    cost: str,
    *,
    provider: str = "openai",
    n_in: int = 0,
    n_out: int = 0,
    cached: int = 0,
    written: int = 0,
    project: str | None = None,
    billed: bool = True,
) -> Call:
    return Call(
        provider=provider,
        api="chat",
        model=model,
        model_requested=model,
        input_tokens=n_in,
        output_tokens=n_out,
        cache_read_tokens=cached,
        cache_write_tokens=written,
        cost=Decimal(cost),
        billed=billed,
        status="ok" if billed else "error",
        tags={"project": project} if project else {},
        ts=f"{day}T12:00:00.000000Z",
    )


@pytest.fixture
def books(ledger):
    """The ledger the sample exports describe, with one difference, one row missing on each side."""
    ledger.write_many(
        [
            call(
                "2026-11-03",
                "gpt-4.1-2025-04-14",
                "0.125",
                n_in=30000,
                cached=10000,
                n_out=10000,
                project="proj_search",
            ),
            call(
                "2026-11-03",
                "gpt-4.1-2025-04-14",
                "0.125",
                n_in=30000,
                cached=10000,
                n_out=10000,
                project="proj_search",
            ),
            call(
                "2026-11-03", "gpt-4.1", "0", n_in=99, billed=False, project="proj_search"
            ),  # a failed attempt
            call("2026-11-03", "gpt-4.1-mini-2025-04-14", "0.08", n_in=125000, project="proj_search"),
            call("2026-11-04", "gpt-4.1-2025-04-14", "0.5004", n_in=250000, project="proj_ads"),
            call("2026-11-04", "gpt-4.1-nano-2025-04-14", "0.002", n_in=20000, project="proj_ads"),
            call("2026-11-05", "gpt-4.1-2025-04-14", "9", n_in=1),  # after the export's last day
            call(
                "2026-11-03",
                "claude-sonnet-4-5-20250929",
                "0.018075",
                provider="anthropic",
                n_in=5500,
                cached=4000,
                written=500,
                n_out=800,
            ),
            call(
                "2026-11-04", "claude-haiku-4-5-20251001", "0.00046", provider="anthropic", n_in=210, n_out=50
            ),
        ]
    )
    return ledger


def statuses(rec) -> list[tuple]:
    return [(r.day, r.model, r.key, r.status) for r in rec.rows.itertuples()]


@pytest.mark.parametrize("export", ["openai_costs.json", "openai_costs_dashboard.csv"])
def test_openai_cost_export_by_day_and_model(books, export):
    rec = reconcile(books, EXPORTS / export)
    assert rec.basis == "cost"
    assert statuses(rec) == [
        ("2026-11-03", "gpt-4.1", None, "match"),
        ("2026-11-03", "gpt-4.1-mini", None, "differs"),
        ("2026-11-04", "gpt-4.1", None, "match"),
        ("2026-11-04", "gpt-4.1-nano", None, "only in ledger"),
        ("2026-11-04", "o3", None, "only in export"),
    ]
    assert rec.rows["export_cost_usd"].tolist() == [
        Decimal("0.25"),
        Decimal("0.05"),
        Decimal("0.5"),
        None,
        Decimal("0.3"),
    ]
    assert rec.rows["ledger_cost_usd"].tolist() == [
        Decimal("0.25"),
        Decimal("0.08"),
        Decimal("0.5004"),
        Decimal("0.002"),
        None,
    ]
    assert rec.differences["difference_usd"].tolist() == [Decimal("0.03")]
    assert rec.rows["ledger_requests"].tolist()[:3] == [2, 1, 1]
    assert rec.counts == {"match": 2, "differs": 1, "only in export": 1, "only in ledger": 1}
    assert not rec.ok
    assert str(rec) == (
        f"reconciled {export} by cost: 2 match, 1 differs, 1 only in export, 1 only in ledger"
        " · export $1.10 vs ledger $0.8324"
    )


def test_tolerance_decides_what_differs(books):
    loose = reconcile(books, EXPORTS / "openai_costs.json", tolerance="0.05")
    assert loose.counts["differs"] == 0 and loose.counts["match"] == 3
    strict = reconcile(books, EXPORTS / "openai_costs.json", tolerance="0", rel_tolerance="0")
    assert strict.differences["model"].tolist() == ["gpt-4.1-mini", "gpt-4.1"]


def test_split_by_project_uses_the_ledgers_project_tag(books):
    rec = reconcile(books, EXPORTS / "openai_costs.json", key="project_id", key_tag="project")
    assert statuses(rec) == [
        ("2026-11-03", "gpt-4.1", "proj_search", "match"),
        ("2026-11-03", "gpt-4.1-mini", "proj_search", "differs"),
        ("2026-11-04", "gpt-4.1", "proj_ads", "match"),
        ("2026-11-04", "gpt-4.1-nano", "proj_ads", "only in ledger"),
        ("2026-11-04", "o3", "proj_ads", "only in export"),
    ]
    with pytest.raises(ValueError, match="allowed values: project_id, api_key_id, workspace_id"):
        reconcile(books, EXPORTS / "openai_costs.json", key="team")


@pytest.mark.parametrize("export", ["openai_usage_completions.json", "openai_usage.csv"])
def test_openai_usage_export_compares_tokens(books, export):
    rec = reconcile(books, EXPORTS / export)
    assert rec.basis == "tokens"
    assert statuses(rec) == [
        ("2026-11-03", "gpt-4.1", None, "match"),
        ("2026-11-03", "gpt-4.1-mini", None, "only in ledger"),
        ("2026-11-04", "gpt-4.1", None, "match"),
        ("2026-11-04", "gpt-4.1-nano", None, "only in ledger"),
    ]
    first = rec.rows.iloc[0]
    assert (
        first.export_input_tokens,
        first.ledger_input_tokens,
        first.export_cache_read_tokens,
        first.ledger_cache_read_tokens,
        first.export_requests,
    ) == (60000, 60000, 20000, 20000, 12)


def test_anthropic_usage_report_counts_cache_tokens_as_input(books):
    rec = reconcile(books, EXPORTS / "anthropic_usage_report.json")
    assert statuses(rec) == [
        ("2026-11-03", "claude-sonnet-4-5", None, "match"),
        ("2026-11-04", "claude-haiku-4-5", None, "differs"),
    ]
    assert rec.rows["export_input_tokens"].tolist() == [5500, 200]  # 1000 + 4000 read + 500 written
    assert rec.rows["ledger_input_tokens"].tolist() == [5500, 210]


def test_anthropic_cost_report_amounts_are_cents(books):
    # The ledger has no workspace tag: split by workspace, nothing lines up.
    rec = reconcile(books, EXPORTS / "anthropic_cost_report.json", key="workspace_id", key_tag="workspace")
    assert [(r.key, r.status) for r in rec.rows.itertuples()] == [
        (None, "only in ledger"),
        ("wrkspc_01Search", "only in export"),
        (None, "only in ledger"),
        ("wrkspc_01Ads", "only in export"),
    ]
    assert rec.rows["export_cost_usd"].tolist() == [None, Decimal("0.018075"), None, Decimal("0.00045")]
    plain = reconcile(books, EXPORTS / "anthropic_cost_report.json")
    assert statuses(plain) == [
        ("2026-11-03", "claude-sonnet-4-5", None, "match"),
        ("2026-11-04", "claude-haiku-4-5", None, "match"),
    ]
    assert plain.rows["difference_usd"].tolist() == [Decimal("0"), Decimal("0.00001")]


def test_generic_csv_and_parsed_json_and_module_call(books):
    assert statuses(reconcile(books, EXPORTS / "generic.csv"))[0] == ("2026-11-03", "gpt-4.1", None, "match")
    document = json.loads((EXPORTS / "openai_costs.json").read_text())
    rec = llmcost_nb.reconcile(books, document)  # the package attribute is callable, module or function
    assert rec.counts["match"] == 2 and rec.source == "export"


def test_chart_has_both_sides_per_day(books):
    chart = reconcile(books, EXPORTS / "openai_costs.json").chart()
    spec = chart.to_dict()
    assert spec["mark"]["type"] == "bar"
    assert spec["encoding"]["xOffset"]["field"] == "source"
    values = next(iter(spec["datasets"].values()))
    assert len(values) == 10
    assert {
        (v["day"], v["source"], v["model"], v["value"]) for v in values if v["model"] == "gpt-4.1-mini"
    } == {("2026-11-03", "export", "gpt-4.1-mini", 0.05), ("2026-11-03", "ledger", "gpt-4.1-mini", 0.08)}
    assert "gpt-4.1-mini" in reconcile(books, EXPORTS / "openai_costs.json")._repr_html_()


def test_every_sample_export_is_read(tmp_path):
    formats = {
        path.name: {row["format"] for row in read_export(path)}
        for path in sorted(EXPORTS.iterdir())
        if path.suffix in (".json", ".csv")
    }
    assert formats == {
        "anthropic_cost_report.json": {"anthropic-cost"},
        "anthropic_usage_report.json": {"anthropic-usage"},
        "generic.csv": {"generic-csv"},
        "openai_costs.json": {"openai-costs"},
        "openai_costs_dashboard.csv": {"openai-costs-csv"},
        "openai_usage.csv": {"openai-usage-csv"},
        "openai_usage_completions.json": {"openai-usage"},
    }
    bad = tmp_path / "bad.csv"
    bad.write_text("when,what\n1,2\n")
    with pytest.raises(ExportFormatError, match="unknown CSV columns"):
        read_export(bad)
    with pytest.raises(ExportFormatError, match="only USD"):
        read_export(
            {
                "data": [
                    {
                        "starting_at": "2026-11-03T00:00:00Z",
                        "results": [{"amount": "1", "currency": "EUR", "model": "m"}],
                    }
                ]
            }
        )
    with pytest.raises(ExportFormatError, match="cannot read the export"):
        read_export(tmp_path / "missing.csv")


def test_cli_reconcile_prints_the_rows_that_do_not_match(books, tmp_path):
    from click.testing import CliRunner

    from llmcost_nb.cli.team import reconcile_command

    out_csv = tmp_path / "rows.csv"
    result = CliRunner().invoke(
        reconcile_command,
        [
            str(EXPORTS / "openai_costs_dashboard.csv"),
            "--db",
            str(books.path),
            "--csv",
            str(out_csv),
            "--check",
        ],
    )
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0] == (
        "reconciled openai_costs_dashboard.csv by cost: 2 match, 1 differs, 1 only in export, "
        "1 only in ledger · export $1.10 vs ledger $0.8324"
    )
    assert lines[1].split() == [
        "day",
        "model",
        "status",
        "export_cost_usd",
        "ledger_cost_usd",
        "difference_usd",
    ]
    assert [line.split()[:2] for line in lines[2:]] == [
        ["2026-11-03", "gpt-4.1-mini"],
        ["2026-11-04", "gpt-4.1-nano"],
        ["2026-11-04", "o3"],
    ]
    assert lines[3].split() == ["2026-11-04", "gpt-4.1-nano", "only", "in", "ledger", "—", "0.002", "0.002"]
    assert len(out_csv.read_text().splitlines()) == 6
    matching = tmp_path / "matching.csv"
    matching.write_text(
        "date,provider,model,cost_usd\n2026-11-03,openai,gpt-4.1,0.25\n2026-11-03,openai,"
        "gpt-4.1-mini,0.08\n2026-11-04,openai,gpt-4.1,0.5\n2026-11-04,openai,gpt-4.1-nano,0.002\n"
    )
    good = CliRunner().invoke(reconcile_command, [str(matching), "--db", str(books.path), "--check"])
    assert good.exit_code == 0, good.output
    assert good.output == (
        "reconciled matching.csv by cost: 4 match, 0 differs, 0 only in export, 0 only in "
        "ledger · export $0.832 vs ledger $0.8324\n"
    )
    bad = CliRunner().invoke(
        reconcile_command, [str(EXPORTS / "generic.csv"), "--db", str(books.path), "--tolerance", "lots"]
    )
    assert (
        bad.exit_code == 1
        and bad.output == "Error: tolerance must be a non-negative decimal number, got 'lots'\n"
    )


def test_llmcost_main_group_has_reconcile_with_db_before_the_command(books):
    from click.testing import CliRunner

    from llmcost_nb.cli.app import main

    result = CliRunner().invoke(
        main, ["--db", str(books.path), "reconcile", str(EXPORTS / "openai_costs.json")]
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("reconciled openai_costs.json by cost: 2 match, 1 differs")
    helped = CliRunner().invoke(main, ["--help"])
    assert "reconcile" in helped.output and "sync" in helped.output


def test_unpriced_ledger_calls_are_named_never_0(books, tmp_path):
    """Issue 16: the ledger's side of a reconciliation says how many billed calls had no price."""
    from click.testing import CliRunner

    from llmcost_nb.cli.team import reconcile_command

    books.write(Call(provider="openai", api="chat", model="gpt-4.1-nano", input_tokens=10, cost=None,
                     billed=True, ts="2026-11-04T13:00:00.000000Z"))
    matching = tmp_path / "matching.csv"
    matching.write_text(
        "date,provider,model,cost_usd\n2026-11-03,openai,gpt-4.1,0.25\n2026-11-03,openai,"
        "gpt-4.1-mini,0.08\n2026-11-04,openai,gpt-4.1,0.5\n2026-11-04,openai,gpt-4.1-nano,0.004\n"
    )
    result = CliRunner().invoke(reconcile_command, [str(matching), "--db", str(books.path), "--all"])
    lines = result.output.splitlines()
    assert lines[0] == (
        "reconciled matching.csv by cost: 4 match, 0 differs, 0 only in export, 0 only in "
        "ledger · export $0.834 vs ledger $0.8324 + 1 unpriced"
    )
    assert lines[1].split()[-1] == "ledger_unpriced"
    assert lines[5].split() == ["2026-11-04", "gpt-4.1-nano", "match", "0.004", "0.002", "-0.002", "1"]
