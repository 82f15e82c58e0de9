"""Bad input changes nothing (issue 16, item 5): each case a user tried becomes one clear error — an
LlmcostError, or a TypeError/ValueError naming what is allowed — raised before anything is written."""

from __future__ import annotations

import hashlib
import sqlite3
from decimal import Decimal

import numpy as np
import pytest
from _prices import genai_cost
from click.testing import CliRunner

import llmcost_nb
from llmcost_nb import LedgerError, LlmcostError
from llmcost_nb.cli.app import main
from llmcost_nb.core.tags import MAX_TAG_CHARS, clean_tags
from llmcost_nb.errors import FilterError
from llmcost_nb.pricing.pricer import MAX_PRICE_MTOK


def stored(ledger) -> tuple[int, int, int, int]:
    """Rows in calls, prices, tag sets and tags: what a refused input must leave as it was."""
    conn = ledger.connection
    return tuple(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                 for table in ("calls", "prices", "tagsets", "tags"))


@pytest.fixture
def before(ledger):
    llmcost_nb.log(model="gpt-4.1", input_tokens=10, output_tokens=2, tags={"team": "a"}, ledger=ledger)
    return stored(ledger)


# -- set_price ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("model", "error", "message"), [
    (123, TypeError, "model must be the model's name as a str, got int 123"),
    (None, TypeError, "model must be the model's name as a str"),
    ("", ValueError, "model must be a non-empty name"),
    ("  ", ValueError, "model must be a non-empty name"),
])
def test_set_price_refuses_a_model_that_is_no_name(ledger, before, model, error, message):
    with pytest.raises(error, match=message):
        llmcost_nb.set_price(model, input_mtok="1", output_mtok="2", ledger=ledger)
    assert stored(ledger) == before


@pytest.mark.parametrize(("prices", "message"), [
    ({"input_mtok": "abc", "output_mtok": "1"}, "prices must be numbers, got 'abc'"),
    ({"input_mtok": "1", "output_mtok": "-1"}, "prices must be finite and non-negative"),
    ({"input_mtok": "nan", "output_mtok": "1"}, "prices must be finite and non-negative"),
    ({"input_mtok": "1e400", "output_mtok": "1"}, "input_mtok must be at most 10,000 USD per million tokens"),
    ({"input_mtok": "1", "output_mtok": "10000.01"}, "output_mtok must be at most 10,000 USD"),
    ({"input_mtok": "1", "output_mtok": "1", "cache_read_mtok": 1e9}, "cache_read_mtok must be at most"),
])
def test_set_price_refuses_prices_that_are_no_amount_or_absurd(ledger, before, prices, message):
    with pytest.raises(ValueError, match=message):
        llmcost_nb.set_price("gpt-4.1", **prices, ledger=ledger)
    assert stored(ledger) == before
    call = llmcost_nb.log(model="gpt-4.1", input_tokens=10, output_tokens=2, ledger=ledger)
    assert call.cost == genai_cost("gpt-4.1", "openai", input_tokens=10, output_tokens=2)  # no override


def test_the_highest_price_allowed_still_fits_the_ledger(ledger):
    """The bound: at MAX_PRICE_MTOK, a call of 900 million tokens is written with its exact cost."""
    llmcost_nb.set_price("dear-model", input_mtok=MAX_PRICE_MTOK, output_mtok=MAX_PRICE_MTOK, ledger=ledger)
    call = llmcost_nb.log(model="dear-model", input_tokens=900_000_000, output_tokens=0, ledger=ledger)
    assert call.cost == Decimal(9_000_000) and ledger.total_cost() == Decimal(9_000_000)
    with pytest.raises(ValueError, match=r"costs \$10,000,000,000.00, more than the ledger holds"):
        llmcost_nb.log(model="dear-model", input_tokens=10**12, output_tokens=0, ledger=ledger)
    assert ledger.count() == 1


# -- log ----------------------------------------------------------------------------------------------------
def test_log_takes_at_most_what_capture_takes(ledger, before):
    with pytest.raises(ValueError, match=r"input_tokens must be a non-negative int of at most 10\*\*12"):
        llmcost_nb.log(model="gpt-4.1", input_tokens=10**15, output_tokens=1, ledger=ledger)
    assert stored(ledger) == before
    call = llmcost_nb.log(model="gpt-4.1", input_tokens=10**12, output_tokens=0, ledger=ledger)
    assert call.cost == genai_cost("gpt-4.1", "openai", input_tokens=10**12)


def test_a_misspelt_token_count_is_an_error_naming_the_allowed_keys(ledger, before):
    with pytest.raises(TypeError) as caught:
        llmcost_nb.log(model="gpt-4.1", input_tokens=10, output_tokens=1, cached_tokens=3, ledger=ledger)
    message = str(caught.value)
    assert message.startswith("unknown token count 'cached_tokens' (did you mean 'cache_read_tokens'?): "
                              "allowed are input_tokens, output_tokens and ")
    for key in ("cache_read_tokens", "cache_write_tokens", "reasoning_tokens", "output_reasoning_tokens",
                "web_searches", "input_audio_tokens"):
        assert f" {key}," in message or message.endswith(key)
    assert stored(ledger) == before


@pytest.mark.parametrize("more", [{"cache_read_tokens": 11},
                                  {"cache_read_tokens": 6, "cache_write_tokens": 5}])
def test_cached_tokens_cannot_exceed_input_tokens(ledger, before, more):
    with pytest.raises(ValueError, match=r"cache_read_tokens \+ cache_write_tokens \(11\) cannot exceed "
                                         r"input_tokens \(10\)"):
        llmcost_nb.log(model="gpt-4.1", input_tokens=10, output_tokens=1, ledger=ledger, **more)
    assert stored(ledger) == before


@pytest.mark.parametrize("kind", [np.int64, np.int32, np.uint16, int])
def test_numpy_integer_counts_are_accepted(ledger, kind):
    call = llmcost_nb.log(model="gpt-4.1", input_tokens=kind(1000), output_tokens=kind(200),
                          cache_read_tokens=kind(100), ledger=ledger)
    assert (call.input_tokens, call.output_tokens, call.cache_read_tokens) == (1000, 200, 100)
    assert type(call.input_tokens) is int
    assert call.cost == genai_cost("gpt-4.1", "openai", input_tokens=1000, output_tokens=200,
                                   cache_read_tokens=100)
    rows = llmcost_nb.log_many([{"model": "gpt-4.1", "input_tokens": kind(10), "output_tokens": kind(1)}],
                               ledger=ledger)
    assert rows == 1 and ledger.count() == 2


@pytest.mark.parametrize("value", [True, 1.0, np.float64(3), "3", None])
def test_what_is_no_integer_is_still_refused(ledger, before, value):
    with pytest.raises(ValueError, match="input_tokens must be a non-negative int"):
        llmcost_nb.log(model="gpt-4.1", input_tokens=value, output_tokens=1, ledger=ledger)
    assert stored(ledger) == before


def test_log_refuses_a_provider_that_is_no_id(ledger, before):
    with pytest.raises(TypeError, match="provider must be a genai-prices provider id"):
        llmcost_nb.log(model="gpt-4.1", input_tokens=1, output_tokens=1, provider=5, ledger=ledger)
    assert stored(ledger) == before


# -- tags ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("tags", "error", "message"), [
    ({"x": None}, TypeError, "the value of tag 'x' must be a str or a number, got NoneType None"),
    ({"x": ["a"]}, TypeError, "the value of tag 'x' must be a str or a number, got list"),
    (["a"], TypeError, r'tags must be a mapping of tag keys to values, e.g. \{"team": "search"\}, got list'),
    ("team", TypeError, "tags must be a mapping of tag keys to values"),
    ({1: "a"}, TypeError, "a tag key must be a str, got int 1"),
    ({"": "a"}, ValueError, "a tag key must not be empty"),
    ({"x": "a" * 5_000_000}, ValueError, "the value of tag 'x' is 5,000,000 characters; at most 1,000"),
    ({"k" * 1001: "a"}, ValueError, "is 1,001 characters; at most 1,000 are allowed"),
])
def test_bad_tags_are_refused_by_every_way_in(ledger, before, tags, error, message):
    attempts = [
        lambda: llmcost_nb.log(model="gpt-4.1", input_tokens=1, output_tokens=1, tags=tags, ledger=ledger),
        lambda: llmcost_nb.record({"object": "chat.completion", "model": "gpt-4.1",
                                   "usage": {"prompt_tokens": 1, "completion_tokens": 1}}, tags=tags,
                                  ledger=ledger),
        lambda: llmcost_nb.log_many([
            {"model": "gpt-4.1", "input_tokens": 1, "output_tokens": 1},
            {"model": "gpt-4.1", "input_tokens": 1, "output_tokens": 1, "tags": tags}], ledger=ledger),
        lambda: llmcost_nb.track(tags=tags, ledger=ledger),
    ]
    for attempt in attempts:
        with pytest.raises(error, match=message):
            attempt()
    assert stored(ledger) == before


def test_tags_at_the_limit_and_numbers_are_kept(ledger):
    tags = {"x": "a" * MAX_TAG_CHARS, "run": 3, "rate": Decimal("0.5"), "flag": True, "n": np.int64(7)}
    call = llmcost_nb.log(model="gpt-4.1", input_tokens=1, output_tokens=1, tags=tags, ledger=ledger)
    assert call.tags == {"x": "a" * MAX_TAG_CHARS, "run": "3", "rate": "0.5", "flag": "True", "n": "7"}
    assert ledger.count(tags={"run": 3}) == 1 and ledger.count(tags={"run": "3"}) == 1


@pytest.mark.parametrize("tags", ["team", ["team"], {"team": None}])
def test_the_tags_filter_takes_a_mapping(ledger, before, tags):
    for read in (ledger.calls, ledger.count, ledger.total_cost):
        with pytest.raises(TypeError, match="the tags filter") as caught:
            read(tags=tags)
        assert isinstance(caught.value, FilterError | TypeError) and isinstance(caught.value, LlmcostError)


def test_clean_tags_is_the_one_check():
    assert clean_tags(None) == {} and clean_tags({}) == {}
    assert clean_tags({"b": 1, "a": "x"}) == {"b": "1", "a": "x"}  # the order given


# -- opening a ledger ---------------------------------------------------------------------------------------
def test_another_applications_sqlite_file_is_refused_untouched(tmp_path):
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.executescript("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);"
                           "INSERT INTO users (name) VALUES ('ana');")
    conn.close()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(LedgerError, match=r"app.db is not an llmcost_nb ledger: it is a SQLite database of "
                                          r"another application \(tables users\). Nothing was changed"):
        llmcost_nb.Ledger(path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db"]  # no WAL, no lock file
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == [("users",)]
    conn.close()


def test_an_empty_file_becomes_a_ledger(tmp_path):
    path = tmp_path / "empty.db"
    path.touch()
    ledger = llmcost_nb.Ledger(path)
    llmcost_nb.log(model="gpt-4.1", input_tokens=1, output_tokens=1, ledger=ledger)
    assert ledger.count() == 1 and ledger.check().ok
    ledger.close()


def test_a_missing_folder_is_named_not_made(tmp_path):
    missing = tmp_path / "no" / "such" / "dir"
    with pytest.raises(LedgerError, match=f"the folder {missing} does not exist. Nothing was created"):
        llmcost_nb.Ledger(missing / "x.db")
    assert not (tmp_path / "no").exists()
    with pytest.raises(LedgerError, match="does not exist"):
        llmcost_nb.log(model="gpt-4.1", input_tokens=1, output_tokens=1, ledger=missing / "x.db")
    assert not (tmp_path / "no").exists()


def test_the_default_location_still_makes_its_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMCOST_DB", str(tmp_path / "fresh" / "dir" / "ledger.db"))
    ledger = llmcost_nb.Ledger()
    assert ledger.path.is_file() and ledger.path.parent == tmp_path / "fresh" / "dir"
    ledger.close()


# -- the command line ---------------------------------------------------------------------------------------
def test_daily_budget_that_is_no_number_is_one_actionable_line(ledger, before):
    result = CliRunner().invoke(main, ["daily", "--budget", "abc", "--db", str(ledger.path)])
    assert result.exit_code == 1
    assert result.output == "Error: a budget must be a positive amount of USD, got 'abc'\n"


def test_magic_tags_go_through_the_same_check():
    from IPython.core.error import UsageError

    from llmcost_nb.notebook.magics import parse_cell_line

    assert parse_cell_line(f"--tag team=search --tag note={'a' * MAX_TAG_CHARS}").tags == {
        "team": "search", "note": "a" * MAX_TAG_CHARS}
    with pytest.raises(UsageError, match="the value of tag 'note' is 1,001 characters; at most 1,000"):
        parse_cell_line(f"--tag note={'a' * 1001}")
