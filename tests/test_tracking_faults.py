"""Fault injection on the call path: every case runs without tracking, then with it, and the user must get the
same result or the same exception either way. Failures inside llmcost_nb surface as one warning per kind: each
case makes its call three times, and only the first may warn.

A case is a row: an id, an optional ``setup`` (break the ledger, add a raising hook), an ``arm`` run before
each call (queue a 429, a stream cut), the ``call`` (a real SDK client against the fake provider or the
canned server, both on loopback), what the call does (returns, or the exception's name), the ledger rows
expected per call (their statuses; None when the ledger cannot be read back), the warnings expected on the
first call, and an optional ``verify`` of exact token counts. docs/reliability.md lists the same table; a
test keeps both in step.
"""

from __future__ import annotations

import re
import sqlite3
import time
import warnings
from pathlib import Path
from typing import Any

import httpx2
import pytest
from _fault_cases import CASES, Case, Env, chat
from _faultkit import Canned, fill_to_the_brim
from _prices import token_cost

import llmcost_nb
from llmcost_nb import LlmcostWarning
from llmcost_nb.core.warn import reset_warnings
from llmcost_nb.ledger import check
from llmcost_nb.ledger.journal import flush_all
from llmcost_nb.ledger.segment import read_exchanges
from llmcost_nb.tracking import capture

REPEAT = 3
DOCS = Path(__file__).parent.parent / "docs" / "reliability.md"


# -- the runner ---------------------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """A comparable form of what a call returned: SDK models as dicts, minus clocks and HTTP metadata."""
    if hasattr(value, "model_dump"):
        value = value.model_dump(warnings=False)
    if isinstance(value, httpx2.Response):
        return (value.status_code, value.content)
    if isinstance(value, dict):
        return {
            k: _plain(v)
            for k, v in value.items()
            if k not in ("created", "created_at", "sdk_http_response", "create_time")
        }
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _outcome(case: Case, env: Env) -> tuple[Any, ...]:
    try:
        return ("returns", _plain(case.call(env)))
    except Exception as exc:
        return (type(exc), str(exc))


def _as_expected(outcome: tuple[Any, ...], expected: Any) -> bool:
    """``outcome`` (from _outcome) is what the case expects: "returns", an exception class name, or
    exception base classes."""
    if outcome[0] == "returns" or expected == "returns":
        return outcome[0] == expected
    if isinstance(expected, str):
        return outcome[0].__name__ == expected
    return issubclass(outcome[0], expected)


def _run(case: Case, env: Env) -> tuple[list[tuple[Any, ...]], list[list[str]], Any]:
    reset_warnings()
    if case.setup is not None:
        case.setup(env)
    outcomes, warned, scope = [], [], None
    if env.tracked and case.id != "extension-loaded-twice":
        scope = llmcost_nb.track(ledger=env.ledger, tags={"case": case.id}).open()
    try:
        for _ in range(REPEAT):
            if case.arm is not None:
                case.arm(env)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                outcomes.append(_outcome(case, env))
                flush_all()  # the call's row is made (priced, written) in a batch after the call: now
            warned.append([str(w.message) for w in caught if issubclass(w.category, LlmcostWarning)])
    finally:
        if scope is not None:
            scope.close()
        for undo in reversed(env.cleanup):
            undo()
        env.cleanup.clear()
    return outcomes, warned, scope


def _ledger_statuses(path: Path) -> list[str]:
    with sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True) as conn:
        return [r[0] for r in conn.execute("SELECT status FROM calls WHERE api != 'filler' ORDER BY id")]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_fault(case: Case, fake, tmp_path, unused_port):
    with Canned() as canned:
        env = Env(fake, canned, tmp_path, unused_port)
        capture.uninstall()
        plain, plain_warned, _ = _run(case, env)
        fake.reset()
        session = llmcost_nb.get_session()
        session.start()  # its start hooks (the stored budgets) run now, so the hooks cleared stay cleared
        session.listeners.clear()
        session.preflight.clear()
        env.tracked, env.state = True, {}
        (tmp_path / "tracked").mkdir(exist_ok=True)  # Ledger(PATH) makes no folder
        env.ledger = llmcost_nb.Ledger(tmp_path / "tracked" / "ledger.db")
        tracked, tracked_warned, scope = _run(case, env)

    assert tracked == plain, "tracking changed what the call returned or raised"
    assert all(_as_expected(o, case.outcome) for o in plain), plain[0]
    assert plain_warned == [[]] * REPEAT
    first, *later = tracked_warned
    assert later == [[]] * (REPEAT - 1), "a warning repeated: one per kind, not per call"
    assert len(first) == len(case.warns), first
    for pattern in case.warns:
        assert any(re.search(pattern, message) for message in first), (pattern, first)
    per_call = case.recorded if case.recorded is not None else len(case.rows or ())
    if scope is not None:
        assert len(scope.records) == per_call * REPEAT
    path = env.ledger.path if hasattr(env.ledger, "path") else Path(env.ledger)
    if case.rows is not None:
        env.ledger.flush()  # a write that failed is retried after a pause; here, at once
        expected = case.total_rows if case.total_rows is not None else case.rows * REPEAT
        assert _ledger_statuses(path) == list(expected)
    else:
        assert not check(path).ok
    if case.verify is not None and scope is not None:
        case.verify(env, scope.calls)


def test_docs_table_lists_every_case():
    documented = set(re.findall(r"^\| `([a-z0-9-]+)` \|", DOCS.read_text(), re.M))
    assert documented == {c.id for c in CASES}
    assert len(CASES) >= 40


def test_disk_full_ledger_recovers_when_space_returns(fake, tmp_path):
    ledger = llmcost_nb.Ledger(tmp_path / "full.db")
    filler = fill_to_the_brim(ledger.connection)
    with pytest.warns(LlmcostWarning, match="database or disk is full"), llmcost_nb.track(ledger=ledger):
        chat(Env(fake, None, tmp_path, 0))  # type: ignore[arg-type]
        ledger.flush()  # what the background thread would do 0.1 s later
    assert _ledger_statuses(ledger.path) == []  # the call is kept in the journal meanwhile
    ledger.connection.execute("DELETE FROM calls WHERE api = 'filler'")
    with llmcost_nb.track(ledger=ledger) as t:
        resp = chat(Env(fake, None, tmp_path, 0))  # type: ignore[arg-type]
    one = token_cost("gpt-4.1", "openai", input_tokens=6, output_tokens=9)
    assert filler > 0 and resp.usage.total_tokens == 15 and t.total_cost == one
    deadline = time.monotonic() + 10
    while _ledger_statuses(ledger.path) != ["ok", "ok"]:  # the background retry, after its 1 s pause
        assert time.monotonic() < deadline, _ledger_statuses(ledger.path)
        time.sleep(0.05)
    assert ledger.total_cost() == 2 * one
    left = list(ledger.path.with_name("full.db-pending").iterdir())  # the calls' segments gone once recorded:
    assert len(left) <= 1 and not any(read_exchanges(p) for p in left)  # at most the empty one made ahead
