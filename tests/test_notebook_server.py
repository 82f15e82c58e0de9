"""The jupyter_server extension behind the JupyterLab meter: ``GET {base_url}llmcost/api/summary``.

A real server (pytest-jupyter's ``jp_serverapp``) with our extension enabled, a real notebook session (its
kernel started by the server's session manager) and a ledger written here with exact prices: model-x costs
$1 per million input and $10 per million output tokens, model-y twice that.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pytest_jupyter.jupyter_core import jp_asyncio_loop  # noqa: F401 (the plugin's own: see conftest.py)
from pytest_jupyter.jupyter_server import jp_server_cleanup  # noqa: F401
from tornado.httpclient import HTTPClientError

import llmcost_nb
from llmcost_nb import budget
from llmcost_nb.notebook.server import API_PATH, summary
from llmcost_nb.tracking.scope import Scope, get_session

pytest_plugins = ["pytest_jupyter.jupyter_server"]

EXTENSION = {"llmcost_nb.notebook.server": True}


@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": EXTENSION}}


def priced_ledger() -> llmcost_nb.Ledger:
    led = get_session().ledger
    led.set_price("model-x", input_mtok="1", output_mtok="10")
    led.set_price("model-y", input_mtok="2", output_mtok="20")
    return led


async def get_summary(jp_fetch) -> dict:
    response = await jp_fetch(*API_PATH.split("/"))
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    return json.loads(response.body)


async def open_notebook(jp_fetch, path: str = "nb.ipynb") -> dict:
    body = json.dumps({"path": path, "name": path.rsplit("/", 1)[-1], "type": "notebook",
                       "kernel": {"name": "python3"}})
    response = await jp_fetch("api", "sessions", method="POST", body=body)
    return json.loads(response.body)


@pytest.mark.parametrize("auth", [None, "token wrong-token"], ids=["no-token", "wrong-token"])
async def test_summary_refuses_requests_without_a_valid_token(jp_fetch, auth):
    priced_ledger()
    headers = {"Authorization": auth} if auth else {"Authorization": ""}
    with pytest.raises(HTTPClientError) as refused:
        await jp_fetch(*API_PATH.split("/"), headers=headers)
    assert refused.value.code in (401, 403)


async def test_summary_of_a_ledger_that_does_not_exist_yet_does_not_create_it(jp_fetch, tmp_path):
    path = tmp_path / "default-ledger.db"  # $LLMCOST_DB of every test (conftest)
    answer = await get_summary(jp_fetch)
    assert answer == {"ledger": str(path), "exists": False, "currency": "USD"}
    assert not path.exists()


async def test_summary_is_read_only_and_refuses_other_methods(jp_fetch):
    priced_ledger()
    with pytest.raises(HTTPClientError) as refused:
        await jp_fetch(*API_PATH.split("/"), method="POST", body="{}")
    assert refused.value.code == 405


async def test_summary_sums_today_month_models_notebook_sessions_and_budgets_exactly(jp_fetch, jp_root_dir):
    now = datetime.now(UTC)
    notebook = str(jp_root_dir / "nb.ipynb")  # what the kernel is told: JPY_SESSION_NAME
    led = priced_ledger()
    old_session = get_session().id
    with Scope(kind="cell", notebook=notebook, cell=1):  # an earlier kernel of the same notebook
        llmcost_nb.log(model="model-x", input_tokens=5000, output_tokens=0)              # $0.005
    with Scope(kind="cell", notebook=str(jp_root_dir / "other.ipynb"), cell=1):  # not open in the server
        llmcost_nb.log(model="model-y", input_tokens=500, output_tokens=10)             # $0.0012
    llmcost_nb.testing.reset()  # the kernel restarts: a new tracking session
    led = priced_ledger()
    session = get_session().id
    assert session != old_session
    with Scope(kind="cell", notebook=notebook, cell=1):
        llmcost_nb.log(model="model-x", input_tokens=1000, output_tokens=100)           # $0.002
    llmcost_nb.log(model="model-y", input_tokens=3, output_tokens=0)                     # $0.000006, no cell
    with Scope(kind="cell", notebook=notebook, cell=2):
        llmcost_nb.log(model="model-x", input_tokens=250, output_tokens=0, tags={"team": "search"})  # $.00025
    earlier = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    rows = [{"model": "model-x", "input_tokens": 7, "output_tokens": 0,
             "ts": "2025-01-15T10:00:00.000000Z"}]                                       # another month
    if earlier.date() < now.date():  # this month, not today (unless today is the 1st)
        rows.append({"model": "model-x", "input_tokens": 40, "output_tokens": 0,
                     "ts": earlier.strftime("%Y-%m-%dT%H:%M:%S.000000Z")})               # $0.00004
    llmcost_nb.log_many(rows)
    budget.set_budget("0.01", scope="day")
    budget.set_budget("0.004", scope="notebook", notebook=notebook)
    budget.set_budget("0.001", scope="tag:team=search")
    budget.set_budget("1", scope="session")
    led.flush()

    opened = await open_notebook(jp_fetch)
    answer = await get_summary(jp_fetch)

    assert answer["exists"] is True and answer["ledger"] == str(led.path)
    assert answer["today"]["day"] == now.strftime("%Y-%m-%d")
    assert (answer["today"]["calls"], answer["today"]["cost"]) == (5, "0.008456")
    assert [(m["model"], m["calls"], m["input_tokens"], m["output_tokens"], m["cost"])
            for m in answer["today"]["by_model"]] == [
        ("model-x", 3, 6250, 100, "0.00725"), ("model-y", 2, 503, 10, "0.001206")]
    month_cost = Decimal("0.008456") + (Decimal("0.00004") if len(rows) == 2 else 0)
    assert answer["month"] == {"month": now.strftime("%Y-%m"), "calls": 4 + len(rows), "errors": 0,
                               "input_tokens": 6753 + (40 if len(rows) == 2 else 0), "output_tokens": 110,
                               "cost": f"{month_cost:f}", "unpriced": 0, "estimated": 0}
    assert {b["scope"]: (b["limit"], b["spent"], b["fraction"]) for b in answer["budgets"]} == {
        "day": ("0.01", "0.008456", "0.8456"),
        f"notebook:{notebook}": ("0.004", "0.00725", "1.8125"),
        "tag:team=search": ("0.001", "0.00025", "0.2500"),
        "session": ("1", None, None),  # each kernel has its own: see the notebook's entry
    }
    assert answer["tightest_budget"] == {"scope": f"notebook:{notebook}", "fraction": "1.8125"}
    assert {b["scope"]: b["unpriced"] for b in answer["budgets"]} == {  # all priced; a session: no figure
        "day": 0, f"notebook:{notebook}": 0, "tag:team=search": 0, "session": None}

    (entry,) = answer["notebooks"]
    assert entry["path"] == "nb.ipynb" and entry["kernel_id"] == opened["kernel"]["id"]
    assert entry["session_id"] == session
    # the current session: its two tracked cells (not the untracked call between them); the notebook: both
    # kernels' cells
    assert (entry["calls"], entry["cost"]) == (2, "0.00225")
    assert (entry["notebook_calls"], entry["notebook_cost"]) == (3, "0.00725")
    unknowns = ("unpriced", "estimated", "notebook_unpriced", "notebook_estimated")
    assert [entry[k] for k in unknowns] == [0, 0, 0, 0]  # all priced (the browser test has the others)
    assert {b["scope"]: (b["limit"], b["spent"], b["fraction"]) for b in entry["budgets"]} == {
        "day": ("0.01", "0.008456", "0.8456"),
        f"notebook:{notebook}": ("0.004", "0.00725", "1.8125"),
        "tag:team=search": ("0.001", "0.00025", "0.2500"),
        "session": ("1", "0.00225", "0.0022"),
    }
    assert [b["unpriced"] for b in entry["budgets"]] == [0, 0, 0, 0]
    assert entry["tightest_budget"] == {"scope": f"notebook:{notebook}", "fraction": "1.8125"}
    assert [(c["model"], c["cost"], c["notebook"], c["cell"], c["tags"]) for c in entry["last_calls"]] == [
        ("model-x", "0.00025", notebook, 2, {"team": "search"}),
        ("model-x", "0.002", notebook, 1, {}),
    ]
    assert len(answer["last_calls"]) == 5 + len(rows)
    assert [c["input_tokens"] for c in answer["last_calls"]] == [  # newest first, by time
        250, 3, 1000, 500, 5000, *sorted((r["input_tokens"] for r in rows), reverse=True)]


async def test_a_new_call_shows_in_the_next_answer(jp_fetch, jp_root_dir):
    notebook = str(jp_root_dir / "nb.ipynb")
    priced_ledger()
    with Scope(kind="cell", notebook=notebook, cell=1):
        llmcost_nb.log(model="model-x", input_tokens=100, output_tokens=0)
    await open_notebook(jp_fetch)
    first = await get_summary(jp_fetch)
    with Scope(kind="cell", notebook=notebook, cell=2):
        llmcost_nb.log(model="model-y", input_tokens=100, output_tokens=1)
    get_session().ledger.flush()
    second = await get_summary(jp_fetch)
    assert (first["today"]["cost"], second["today"]["cost"]) == ("0.0001", "0.00032")
    assert (first["notebooks"][0]["cost"], second["notebooks"][0]["cost"]) == ("0.0001", "0.00032")


class TestConfiguredLedger:
    @pytest.fixture
    def jp_server_config(self, tmp_path):
        return {"ServerApp": {"jpserver_extensions": EXTENSION},
                "LlmcostExtension": {"ledger": str(tmp_path / "configured.db")}}

    async def test_the_configured_ledger_wins_over_llmcost_db(self, jp_fetch, tmp_path):
        other = llmcost_nb.Ledger(tmp_path / "configured.db")
        other.set_price("model-x", input_mtok="1", output_mtok="10")
        llmcost_nb.log(model="model-x", input_tokens=9, output_tokens=0, ledger=other)
        priced_ledger()
        llmcost_nb.log(model="model-x", input_tokens=1, output_tokens=0)  # the $LLMCOST_DB one
        get_session().ledger.flush()
        answer = await get_summary(jp_fetch)
        assert answer["ledger"] == str(tmp_path / "configured.db")
        assert (answer["today"]["calls"], answer["today"]["cost"]) == (1, "0.000009")


def test_summary_function_takes_the_day_it_is_asked_for(sample):
    """On the generated sample ledger (ends 2026-11-20), the answer for a past day equals the ledger's own
    totals for that day and month (the rollups against the raw rows)."""
    day = datetime(2026, 11, 20, 12, tzinfo=UTC)
    answer = summary(sample.ledger, now=day, last_calls=3)
    assert answer["today"]["cost"] == f"{sample.ledger.total_cost(since='2026-11-20', until='2026-11-21'):f}"
    assert answer["today"]["calls"] == sample.ledger.count(since="2026-11-20", until="2026-11-21")
    assert answer["month"]["cost"] == f"{sample.ledger.total_cost(since='2026-11-01', until='2026-11-21'):f}"
    assert [c["id"] for c in answer["last_calls"]] == sorted(
        [c["id"] for c in answer["last_calls"]], reverse=True)
    assert len(answer["last_calls"]) == 3


async def test_a_ledger_that_cannot_be_read_is_said_in_the_answer_not_a_500(jp_fetch, tmp_path):
    path = tmp_path / "default-ledger.db"  # $LLMCOST_DB
    path.write_bytes(b"this is not a SQLite file" * 100)
    answer = await get_summary(jp_fetch)
    assert (answer["ledger"], answer["exists"]) == (str(path), True)
    assert "not a usable llmcost_nb ledger" in answer["error"]
    assert path.read_bytes() == b"this is not a SQLite file" * 100  # left as it was
