"""Where the ledger lives when nobody says (README "Ledger location"): ``$LLMCOST_DB`` if set, else
``$XDG_DATA_HOME/llmcost_nb/ledger.db`` when XDG_DATA_HOME is set (and not empty, as the XDG base directory
spec reads it), else ``~/.local/share/llmcost_nb/ledger.db``; the folder is made when missing. The same file
serves ``Ledger()``, the session's calls and the ``llmcost`` command line without ``--db``.

conftest.py sets LLMCOST_DB for every test; these take it away. HOME points into the test's temp dir.
"""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal

import pytest
from click.testing import CliRunner

import llmcost_nb
from llmcost_nb.cli.app import main


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    """HOME and a would-be XDG_DATA_HOME under the temp dir (neither exists yet); LLMCOST_DB and
    XDG_DATA_HOME unset."""
    monkeypatch.delenv("LLMCOST_DB")
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path / "home", tmp_path / "xdg"


def rows_in(path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT model, input_tokens, cost_pusd FROM calls ORDER BY id").fetchall()


def uses(expected, *elsewhere) -> None:
    """Ledger(), the session and the command line all use ``expected`` (made with its folders), and
    nothing is written under ``elsewhere``."""
    assert not expected.parent.exists()
    ledger = llmcost_nb.Ledger()
    assert ledger.path == expected and expected.is_file()
    ledger.set_price("model-x", input_mtok="1", output_mtok="0")
    llmcost_nb.log(model="model-x", input_tokens=7, output_tokens=0)
    assert llmcost_nb.get_session().ledger.path == expected
    assert rows_in(expected) == [("model-x", 7, 7_000_000)]
    result = CliRunner().invoke(main, ["report", "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert [(r["model"], r["requests"], Decimal(r["cost_usd"])) for r in json.loads(result.output)] == [
        ("model-x", 1, Decimal("0.000007"))]
    for other in elsewhere:
        assert not other.exists()
    ledger.close()


def test_xdg_data_home_when_set(dirs, monkeypatch):
    home, xdg = dirs
    monkeypatch.setenv("XDG_DATA_HOME", str(xdg))
    uses(xdg / "llmcost_nb" / "ledger.db", home)


@pytest.mark.parametrize("xdg_value", [None, ""], ids=["unset", "empty"])
def test_home_local_share_without_xdg_data_home(dirs, monkeypatch, xdg_value):
    home, xdg = dirs
    if xdg_value is not None:
        monkeypatch.setenv("XDG_DATA_HOME", xdg_value)
    uses(home / ".local" / "share" / "llmcost_nb" / "ledger.db", xdg)


def test_llmcost_db_wins_over_xdg_data_home(dirs, monkeypatch, tmp_path):
    home, xdg = dirs
    monkeypatch.setenv("XDG_DATA_HOME", str(xdg))
    monkeypatch.setenv("LLMCOST_DB", str(tmp_path / "chosen" / "costs.db"))
    uses(tmp_path / "chosen" / "costs.db", home, xdg)
