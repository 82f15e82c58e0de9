"""``Ledger.check()`` and ``llmcost check``: schema version, SQLite integrity, plausible rows, stored costs
equal to re-pricing — each problem reported in words, never as a traceback.

Calls are priced by genai-prices (GPT_COST: gpt-4.1, 1,000 in + 200 out, at its current prices).
"""

from __future__ import annotations

import sqlite3
import warnings
from decimal import Decimal

import pytest
from _prices import SOURCE, genai_cost
from click.testing import CliRunner

import llmcost_nb
from llmcost_nb import LlmcostWarning
from llmcost_nb.cli.app import main
from llmcost_nb.ledger import CheckReport, check
from llmcost_nb.ledger.sqlite import SCHEMA_VERSION
from llmcost_nb.pricing.pricer import Pricer


@pytest.fixture
def filled(ledger):
    """Two priced calls (tagged), one of an unknown model."""
    llmcost_nb.log(model="gpt-4.1", input_tokens=1000, output_tokens=200, tags={"team": "a"}, ledger=ledger)
    llmcost_nb.log(model="gpt-4.1-mini", input_tokens=500, output_tokens=50, ledger=ledger)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LlmcostWarning)
        llmcost_nb.log(model="my-local-llama", input_tokens=10, output_tokens=2, ledger=ledger)
    return ledger


def raw(ledger):
    return sqlite3.connect(ledger.path, isolation_level=None)


def test_a_sound_ledger_is_ok(filled):
    report = filled.check()
    assert isinstance(report, CheckReport)
    assert report.ok and report.problems == []
    assert (report.schema_version, report.rows, report.repriced) == (SCHEMA_VERSION, 3, 2)
    assert str(report).splitlines()[0] == (
        f"{filled.path}: ok — schema version {SCHEMA_VERSION}, SQLite integrity ok, 3 rows, "
        "2 priced rows match re-pricing"
    )
    assert report.notes == [
        "1 billed row has a model without a known price: my-local-llama (1); set one with "
        "llmcost_nb.set_price(model, input_mtok=..., output_mtok=...), declare your own server free with "
        "llmcost_nb.self_hosted(base_url), or name a gateway's provider as a prefix ('openai/gpt-4o-mini')"
    ]


def test_a_tampered_cost_is_found_and_reprice_fixes_it(filled):
    cost = genai_cost("gpt-4.1", "openai", input_tokens=1000, output_tokens=200)
    assert filled.total_cost(model="gpt-4.1") == cost
    repriced = Pricer().price("openai", "gpt-4.1", {"input_tokens": 1000, "output_tokens": 200}, None).cost
    assert repriced == cost  # the same amount (shown with the digits our pricer keeps)
    with raw(filled) as conn:
        conn.execute("UPDATE calls SET cost_pusd = cost_pusd + 1 WHERE model = 'gpt-4.1'")  # a picodollar
    report = filled.check()
    assert not report.ok
    (problem,) = report.problems
    assert problem.startswith(
        f"1 of 2 priced rows differ from re-pricing (id 1: stored ${cost + Decimal('1e-12')}, "
        f"re-priced ${repriced} (priced by {SOURCE})"
    )
    assert problem.endswith(f"run Ledger({str(filled.path)!r}).reprice(all=True)")
    assert filled.reprice(all=True) == 1
    assert filled.check().ok


def test_an_override_set_after_the_calls_is_a_difference(filled):
    stored = filled.calls().cost_usd[0]
    filled.set_price("gpt-4.1", input_mtok="1", output_mtok="1")
    (problem,) = filled.check().problems
    # re-priced: 1,200 tokens at $1/M; "priced by" names what priced the stored cost
    assert f"id 1: stored ${stored}, re-priced $0.0012 (priced by {SOURCE})" in problem


def test_unpriced_rows_that_can_now_be_priced_are_a_note(filled):
    filled.set_price("my-local-llama", input_mtok="1", output_mtok="2")
    report = filled.check()
    assert report.ok
    assert report.notes == [
        "1 billed row has no cost but can be priced now (id 3): run Ledger(...).reprice()"
    ]
    assert filled.reprice() == 1 and filled.check().notes == []


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("UPDATE calls SET input_tokens = -5 WHERE id = 2", "1 row with a negative token count (id 2)"),
        ("UPDATE calls SET cost_pusd = -1 WHERE id = 1", "1 row with a negative cost (id 1)"),
        (
            "UPDATE calls SET billed = 0 WHERE id IN (1, 2)",
            "2 rows with a cost although not billed (id 1, 2)",
        ),
        (
            "UPDATE calls SET status = 'weird' WHERE id = 3",
            "1 row with a status other than ok, error, unfinished (id 3)",
        ),
        ("UPDATE calls SET tagset_id = 99 WHERE id = 2", "1 row with a tag set that does not exist (id 2)"),
        (
            "UPDATE calls SET cost_pusd = '0.0036' WHERE id = 1",
            "1 row with a cost that is not an integer of picodollars (id 1)",
        ),
        ("INSERT INTO tags VALUES (77, 'k', 'v')", "1 tag belong to no tag set"),
    ],
)
def test_implausible_rows_are_reported(filled, sql, words):
    with raw(filled) as conn:
        conn.execute(sql)
    assert words in filled.check(reprice=False).problems


def test_a_file_that_is_not_a_database(tmp_path):
    path = tmp_path / "notes.db"
    path.write_bytes(b"this is not sqlite" * 100)
    report = check(path)
    assert report.problems == ["the file is not a SQLite database (file is not a database)"]
    assert path.read_bytes() == b"this is not sqlite" * 100  # untouched


def test_a_missing_file(tmp_path):
    assert check(tmp_path / "nope.db").problems == [f"there is no file at {tmp_path / 'nope.db'}"]
    assert not (tmp_path / "nope.db").exists()


def test_a_database_that_is_not_a_ledger(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE birds (name TEXT)")
    assert check(path).problems == [
        "the file is a SQLite database but not an llmcost_nb ledger (no calls table)"
    ]


@pytest.mark.parametrize(
    ("version", "words"),
    [
        (
            SCHEMA_VERSION + 1,
            f"schema version {SCHEMA_VERSION + 1} is newer than this llmcost_nb knows "
            f"({SCHEMA_VERSION}): upgrade llmcost_nb before writing to it",
        ),
        (
            SCHEMA_VERSION - 1,
            f"schema version {SCHEMA_VERSION - 1} is older than {SCHEMA_VERSION}: opening it with "
            "llmcost_nb (Ledger(path)) migrates it",
        ),
    ],
)
def test_schema_versions(filled, version, words):
    filled.close()
    with raw(filled) as conn:
        conn.execute(f"PRAGMA user_version = {version}")
    report = check(filled.path)
    assert report.problems == [words] and report.repriced == 0


def test_a_dropped_table_and_column(filled):
    filled.close()
    with raw(filled) as conn:
        conn.execute("DROP TABLE scopes")
        conn.execute("ALTER TABLE calls DROP COLUMN service_tier")
    assert check(filled.path).problems == [
        "missing table: scopes",
        "the calls table lacks column service_tier",
    ]


def test_corrupted_pages_fail_the_integrity_check(ledger):
    llmcost_nb.log_many(
        [{"model": "gpt-4.1", "input_tokens": i, "output_tokens": 1} for i in range(3000)], ledger=ledger
    )
    ledger.close()
    with raw(ledger) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size, pages = (conn.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_size", "page_count"))
    assert pages > 20
    data = bytearray(ledger.path.read_bytes())
    for page in range(pages // 2, pages // 2 + 4):  # scribble over four pages in the middle of the calls
        data[page * page_size + 8 : (page + 1) * page_size] = b"\xa5" * (page_size - 8)
    ledger.path.write_bytes(bytes(data))
    report = check(ledger.path)
    assert len(report.problems) == 1
    assert report.problems[0].startswith("SQLite integrity check failed: ")
    assert report.problems[0].endswith(
        "Copy the rows you can read into a new ledger (sqlite3 .recover) and move this file aside"
    )


def test_html_escapes_the_words(tmp_path):
    report = CheckReport(tmp_path / "x.db", problems=["<script>"], notes=["a & b"])
    assert "&lt;script&gt;" in report._repr_html_() and "a &amp; b" in report._repr_html_()


# -- the command line ---------------------------------------------------------------------------------------
def test_cli_ok_exits_0(filled):
    result = CliRunner().invoke(main, ["check", "--db", str(filled.path)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{filled.path}: ok — schema version {SCHEMA_VERSION}")
    assert CliRunner().invoke(main, ["--db", str(filled.path), "check"]).output == result.output


def test_cli_problems_exit_1_without_traceback(tmp_path):
    path = tmp_path / "bad.db"
    path.write_bytes(b"garbage" * 100)
    result = CliRunner().invoke(main, ["check", "--db", str(path)])
    assert result.exit_code == 1
    assert (
        result.output
        == f"{path}: 1 problem\n  problem: the file is not a SQLite database (file is not a database)\n"
    )
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_cli_default_ledger_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMCOST_DB", str(tmp_path / "env.db"))
    llmcost_nb.log(model="gpt-4.1", input_tokens=1, output_tokens=1)
    result = CliRunner().invoke(main, ["check", "--no-reprice"])
    assert result.exit_code == 0 and result.output.startswith(f"{tmp_path / 'env.db'}: ok")


def test_ok_rows_without_tokens_are_a_note(ledger):
    """A billed success with 0 input and 0 output tokens (a stream recorded without usage) is flagged as a
    note naming its ids; an embedding (0 output), a failed call and one with other priced units are not."""
    for call in (
        llmcost_nb.Call(provider="openai", api="chat", model="gpt-4.1", streamed=True),  # ok, billed, 0 / 0
        llmcost_nb.Call(provider="openai", api="embeddings", model="text-embedding-3-small", input_tokens=8),
        llmcost_nb.Call(provider="openai", api="chat", model="gpt-4.1", status="error", billed=False),
        llmcost_nb.Call(provider="openai", api="chat", model="gpt-4.1", usage_extra={"web_searches": 1}),
        llmcost_nb.Call(provider="openai", api="chat", model="gpt-4.1", streamed=True),
    ):
        ledger.write(ledger.price(call))
    report = ledger.check()
    assert report.ok, str(report)
    assert [n for n in report.notes if "0 input and 0 output" in n] == [
        "2 billed rows say ok with 0 input and 0 output tokens (id 1, 5): the provider billed them, but the "
        "tokens, and so the cost, are not known (most often a stream recorded without usage by an llmcost_nb "
        "older than stream estimates); their cost counts as $0 or empty in totals"
    ]
    ledger.connection.execute("DELETE FROM calls WHERE id = 5")
    assert "1 billed row says ok with 0 input and 0 output tokens (id 1): the provider billed it" in str(
        ledger.check())


def test_a_call_whose_usage_could_not_be_read_stays_unpriced_through_reprice_and_check(fake, ledger):
    """A 200 whose usage cannot be read is recorded with its tokens unknown: unpriced, not $0. Re-pricing
    (which sees 0 tokens of a known model) must not make it $0, and check() names it for what it is, not as
    a row that says ok with 0 tokens."""
    import httpx2

    fake.fail_next(status=200, body={"id": "x", "object": "chat.completion", "model": "gpt-4.1",
                                     "choices": [], "usage": {"prompt_tokens": -5, "completion_tokens": 1}})
    with pytest.warns(LlmcostWarning, match=r"could not read token usage.*never as \$0"), llmcost_nb.track(
            ledger=ledger) as t:
        httpx2.post(f"{fake.openai_base_url}/chat/completions", json={"model": "gpt-4.1"})
    llmcost_nb.log(model="gpt-4.1", input_tokens=1000, output_tokens=200, ledger=ledger)
    assert (t.unpriced, t.total_cost) == (1, Decimal(0))  # the scope's total leaves it out, and says so
    frame = ledger.calls()
    assert list(frame.usage_source) == ["unknown", "manual"] and frame.cost_usd[0] is None
    assert ledger.reprice(all=True) == 0 and ledger.reprice() == 0
    assert ledger.calls().cost_usd[0] is None
    report = ledger.check()
    assert report.ok and report.repriced == 1, str(report)
    assert report.notes == [
        "1 billed row has no cost because the response's token usage could not be read (usage_source "
        "'unknown', id 1): unpriced, never $0; the warning given when the call was made says what was wrong "
        "with it"]
    summary = ledger.summary(by="model")
    assert list(summary.unpriced) == [1]
    assert summary.cost_usd[0] == genai_cost("gpt-4.1", input_tokens=1000, output_tokens=200)
