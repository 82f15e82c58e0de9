"""The llmcost command line: every command documented, exact output, one-line errors."""

from __future__ import annotations

import csv
import io
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from _prices import unit_prices
from click.testing import CliRunner

from llmcost_nb import Call, Ledger
from llmcost_nb.cli.app import main

SAMPLE = dict(rows=5_000, days=28, seed=1)  # conftest's `sample`: generate(**SAMPLE), ending 2026-11-20


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_every_command_has_help():
    top = CliRunner().invoke(main, ["--help"], prog_name="llmcost")
    assert top.exit_code == 0 and top.output.startswith("Usage: llmcost [OPTIONS] COMMAND [ARGS]...\n")
    listed = top.output.split("Commands:\n", 1)[1]
    assert re.findall(r"^  (\S+)", listed, re.M) == sorted(main.commands)  # each listed, with its help
    for name, command in main.commands.items():
        assert command.help, f"{name} has no help"
        result = CliRunner().invoke(main, [name, "--help"], prog_name="llmcost")
        assert result.exit_code == 0, name
        assert result.output.startswith(f"Usage: llmcost {name} "), result.output
        assert command.help.split("\n")[0][:40] in " ".join(result.output.split())
        if name in ("report", "daily", "prices"):
            assert "--db" in result.output


def test_report_formats_are_exact(sample):
    frame = sample.ledger.summary(by=["model"], since="2026-11-01")
    result = invoke(
        "report", "--by", "model", "--since", "2026-11-01", "--db", sample.path, "--format", "csv"
    )
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [r["model"] for r in rows] == list(frame["model"])
    assert [Decimal(r["cost_usd"]) for r in rows] == list(frame["cost_usd"])
    data = json.loads(invoke("--db", sample.path, "report", "--by", "tag:team", "--format", "json").output)
    assert sum(Decimal(r["cost_usd"]) for r in data) == sample.ledger.total_cost()
    table = invoke(
        "report", "--db", sample.path, "--by", "day", "--by", "provider", "--since", "2026-11-19"
    ).output
    assert table.splitlines()[0].split()[:4] == ["day", "provider", "requests", "errors"]
    assert len(table.splitlines()) == 1 + 2 * 3


def test_report_table_shows_sub_cent_and_large_amounts_as_the_cell_summary_does(tmp_path):
    """Money is never rounded to nothing ($0.000044, not $0.0000); 4 decimals under $100, then 2."""
    led = Ledger(tmp_path / "m.db")
    led.write_many([
        Call(provider="openai", model="tiny", cost=Decimal("0.000044"), ts="2026-11-02T10:00:00.000000Z"),
        Call(provider="openai", model="mid", cost=Decimal("2.5"), ts="2026-11-02T10:00:00.000000Z"),
        Call(provider="openai", model="big", cost=Decimal("1234.5"), ts="2026-11-02T10:00:00.000000Z"),
    ])  # fmt: skip
    led.close()
    lines = invoke("report", "--by", "model", "--db", tmp_path / "m.db").output.splitlines()
    header, rows = lines[0].split(), {line.split()[0]: line.split() for line in lines[1:]}
    cost = header.index("cost_usd")
    assert {model: row[cost] for model, row in rows.items()} == {
        "big": "$1,234.50", "mid": "$2.5000", "tiny": "$0.000044"
    }


def test_daily(tmp_path):
    led = Ledger(tmp_path / "d.db")
    led.write_many(
        Call(provider="openai", model="gpt-4.1", cost=Decimal("0.049"), ts="2025-01-15T10:00:00.000000Z")
        for _ in range(50)
    )
    result = invoke("daily", "2025-01-15", "--budget", "5", "--db", led.path)
    assert result.output == (
        "Daily summary (2025-01-15)\n==========================\n"
        "gpt-4.1: 50 requests, $2.45\nTotal: $2.45\n49% of the daily budget ($5.00) used\n"
    )


def test_sample_and_prices(tmp_path):
    out = tmp_path / "new.db"
    result = invoke("sample", out, "--rows", 2000, "--days", 21, "--seed", 4, "--end", "2026-11-20")
    assert result.exit_code == 0 and "wrote 2," in result.output and "runaway loop on 2026-" in result.output
    assert Ledger(out).count() > 2000
    again = invoke("sample", out, "--rows", 2000)
    assert (
        again.exit_code == 1
        and again.output == f"Error: {out} already exists: sample data goes into a new file\n"
    )
    prices = invoke("prices", "gpt-4.1", "--db", tmp_path / "none.db")
    genai = unit_prices("gpt-4.1")  # no ledger: genai-prices' current prices
    assert prices.exit_code == 0 and prices.output.startswith("gpt-4.1\n")
    assert f"  input_mtok               ${genai.input_mtok} per 1M tokens\n" in prices.output
    assert f"  output_mtok              ${genai.output_mtok} per 1M tokens\n" in prices.output
    Ledger(tmp_path / "priced.db").set_price("gpt-4.1", input_mtok="1.25", output_mtok="7")
    overridden = invoke("prices", "gpt-4.1", "--db", tmp_path / "priced.db")  # the ledger's price first
    assert overridden.output == ("gpt-4.1\n  input_mtok               $1.25 per 1M tokens\n"
                                 "  output_mtok              $7 per 1M tokens\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["report", "--db", "{missing}"], "Error: no ledger at {missing}: pass --db PATH or set LLMCOST_DB"),
        (
            ["report", "--db", "{db}", "--by", "colour"],
            "Error: cannot group by 'colour': allowed values are day, week",
        ),
        (["report", "--db", "{db}", "--since", "yesterday"], "Error: cannot read 'yesterday' as a time"),
        (
            ["daily", "15/01/2025", "--db", "{db}"],
            "Error: cannot read '15/01/2025' as a date: use YYYY-MM-DD",
        ),
        (["prices", "no-such-model"], "Error: Unknown model 'no-such-model'"),
    ],
)
def test_errors_are_one_line(sample, tmp_path, args, message):
    fill = {"missing": tmp_path / "missing.db", "db": sample.path}
    result = CliRunner().invoke(main, [a.format(**fill) for a in args])
    assert result.exit_code == 1
    assert result.output.startswith(message.format(**fill))
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_every_command_is_documented_and_every_documented_command_exists():
    """The commands added by other modules (sync, share, check, ...) are registered on the group, and the
    README and docs name each command there is."""
    root = Path(__file__).resolve().parent.parent
    text = "\n".join(p.read_text() for p in [root / "README.md", *sorted((root / "docs").glob("*.md"))])
    documented = set(re.findall(r"(?:^|`|\$ )llmcost ([a-z]+)", text, re.M))
    assert documented == set(main.commands)


def _honest_db(tmp_path):
    from _honest import write_honest

    led = Ledger(tmp_path / "honest.db")
    write_honest(led)
    led.close()
    return tmp_path / "honest.db"


def test_report_table_marks_unpriced_and_estimated_costs(tmp_path):
    """Issue 16: `llmcost report` over unpriced calls printed `$0.0000` and nothing marked them; a cost with
    estimated tokens looked exact."""
    db = _honest_db(tmp_path)
    output = invoke("report", "--by", "model", "--db", db).output
    assert output == (
        "      model requests errors input_tokens cache_read_tokens output_tokens                 cost_usd"
        " avg_latency_ms p95_latency_ms\n"
        "    gpt-4.1        2      1        1,000                 0           100                  $1.2000"
        "          900.0          905.1\n"
        "gpt-4o-mini        1      0          300                 0            40 ≈$0.004200 (1 estimated)"
        "          400.0          452.5\n"
        "      my-ft        2      0          200                 0            20               2 unpriced"
        "          300.0          320.0\n"
    )
    assert "$0.0000" not in output
    total = invoke("report", "--by", "day", "--db", db).output.splitlines()[1]
    assert "≈$1.2042 (1 estimated) + 2 unpriced" in total


def test_report_csv_and_json_keep_exact_costs_and_count_unpriced_and_estimated(tmp_path):
    db = _honest_db(tmp_path)
    rows = list(csv.DictReader(io.StringIO(invoke("report", "--db", db, "--format", "csv").output)))
    assert [(r["model"], r["cost_usd"], r["unpriced"], r["estimated"]) for r in rows] == [
        ("gpt-4.1", "1.2", "0", "0"), ("gpt-4o-mini", "0.0042", "0", "1"), ("my-ft", "0", "2", "0")
    ]
    assert all("≈" not in v and "unpriced" not in v for r in rows for v in r.values())

    def strict(name):  # json.loads accepts NaN; a strict JSON reader does not
        raise AssertionError(f"not JSON: {name}")

    data = json.loads(invoke("report", "--db", db, "--format", "json").output, parse_constant=strict)
    assert [(r["model"], r["cost_usd"], r["unpriced"], r["estimated"]) for r in data] == [
        ("gpt-4.1", "1.2", 0, 0), ("gpt-4o-mini", "0.0042", 0, 1), ("my-ft", "0", 2, 0)
    ]
    by_status = json.loads(invoke("report", "--db", db, "--by", "status", "--format", "json").output,
                           parse_constant=strict)
    assert [(r["status"], r["avg_latency_ms"], r["unpriced"]) for r in by_status] == [
        ("error", None, 0), ("ok", 475.0, 2)
    ]


def test_daily_marks_unpriced_and_estimated_costs(tmp_path):
    """Issue 16: `llmcost daily` over unpriced calls printed `$0.00` and nothing marked them."""
    result = invoke("daily", "2026-11-02", "--budget", "5", "--db", _honest_db(tmp_path))
    assert result.output == (
        "Daily summary (2026-11-02)\n==========================\n"
        "gpt-4.1: 2 requests, $1.20\n"
        "gpt-4o-mini: 1 request, ≈$0.0042 (1 estimated)\n"
        "my-ft: 2 requests, 2 unpriced\n"
        "Total: ≈$1.20 (1 estimated) + 2 unpriced\n"
        "24% of the daily budget ($5.00) used, not counting 2 unpriced calls\n"
    )
