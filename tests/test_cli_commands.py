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
