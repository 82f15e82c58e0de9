"""The session's hooks and who switches capture on: a scope does not (``track()``, ``enable()``, ``%load_ext``
and the compare grid do), ``get_session()`` only builds the session, and budgets start at its first tracked
call. Real openai clients against the fake provider; real SQLite ledgers."""

from __future__ import annotations

from decimal import Decimal

import openai
import pytest

import llmcost_nb
from llmcost_nb import budget
from llmcost_nb.analysis import estimate
from llmcost_nb.budget import limits
from llmcost_nb.recording import replay as replay_module
from llmcost_nb.tracking import capture, scope

HELLO = [{"role": "user", "content": "hello there world"}]


def oai(fake):
    return openai.OpenAI(base_url=fake.openai_base_url, api_key="sk-test", max_retries=0)


def test_get_session_switches_nothing_on_and_the_first_tracked_call_starts_the_budgets(fake):
    session = llmcost_nb.get_session()
    assert session.listeners == [] and session.preflight == []
    assert not capture.installed()
    with llmcost_nb.track():
        oai(fake).chat.completions.create(model="gpt-4.1", messages=HELLO)
    assert session.preflight == [limits._preflight] and session.listeners == [limits._listener]


def test_a_manual_record_also_starts_the_session():
    session = llmcost_nb.get_session()
    llmcost_nb.log(model="gpt-4.1", input_tokens=10, output_tokens=5)
    assert session.started
    assert session.preflight == [limits._preflight] and session.listeners == [limits._listener]


def test_session_start_hooks_run_once_per_session_and_are_keyed_by_name(monkeypatch):
    monkeypatch.setattr(scope, "_start_hooks", dict(scope._start_hooks))
    seen: list[tuple[str, object]] = []
    scope.on_session_start("probe", lambda s: seen.append(("first", s)))
    scope.on_session_start("probe", lambda s: seen.append(("second", s)))  # replaces the first
    session = llmcost_nb.get_session()
    assert seen == []
    for _ in range(3):
        llmcost_nb.log(model="gpt-4.1", input_tokens=1, output_tokens=1)
    assert seen == [("second", session)]
    monkeypatch.setattr(scope, "_session", None)  # a new process: its own start
    llmcost_nb.log(model="gpt-4.1", input_tokens=1, output_tokens=1)
    assert len(seen) == 2 and seen[1][1] is llmcost_nb.get_session() is not session


def test_a_deactivated_session_stays_deactivated_after_its_start(fake):
    budget.set_budget("0", scope="session", hard=True)  # would stop every request
    budget.deactivate()
    with llmcost_nb.track() as t:
        oai(fake).chat.completions.create(model="gpt-4.1", messages=HELLO)
    assert fake.request_count == 1 and len(t.records) == 1


def test_pre_send_hooks_run_in_their_named_order_whatever_the_order_they_are_added_in():
    session = llmcost_nb.get_session()

    def cell(pending, s):
        pass

    def by_hand(pending, s):
        pass

    session.add_pre_send(cell, "cell budget")
    session.preflight.append(by_hand)  # appended to the list directly: runs after the ordered hooks
    budget.activate(session, start_capture=False)
    estimate.activate(session)
    replay_module.replay("replay-or-record", session=session)
    assert session.preflight == [
        replay_module._preflight, estimate._preflight, limits._preflight, cell, by_hand]
    session.add_pre_send(estimate._preflight, "estimate")  # again: nothing changes
    assert session.preflight.count(estimate._preflight) == 1
    session.remove_pre_send(estimate._preflight)
    session.add_pre_send(estimate._preflight, "estimate")  # back between replay and budget
    assert session.preflight == [
        replay_module._preflight, estimate._preflight, limits._preflight, cell, by_hand]
    replay_module.replay("off", session=session)
    budget.deactivate(session)
    assert session.preflight == [estimate._preflight, cell, by_hand]
    with pytest.raises(KeyError):
        session.add_pre_send(cell, "no such order")


def test_listeners_are_added_once_and_removed():
    session = llmcost_nb.get_session()
    seen = []
    listener = seen.append
    session.add_listener(listener)
    session.add_listener(listener)
    assert session.listeners == [listener]
    session.remove_listener(listener)
    assert session.listeners == []


def test_a_scope_does_not_switch_capture_on(fake):
    with llmcost_nb.Scope(kind="track") as s:
        oai(fake).chat.completions.create(model="gpt-4.1", messages=HELLO)
    assert not capture.installed()
    assert fake.request_count == 1 and s.records == []


def test_a_track_block_records_after_disable(fake):
    llmcost_nb.enable()
    llmcost_nb.disable()
    assert not capture.installed()
    with llmcost_nb.track(tags={"variant": "A"}) as t:
        oai(fake).chat.completions.create(model="gpt-4.1", messages=HELLO)
    assert capture.installed()
    assert [(c.model, c.input_tokens, c.output_tokens, c.tags) for c in t.records] == [
        ("gpt-4.1", 6, 9, {"variant": "A"})]
    assert t.ledger.count(scope_id=t.id) == 1


def test_exceeds_is_the_one_hard_stop_in_picodollars():
    limit = Decimal("0.000264")
    assert not budget.exceeds(Decimal("0.000084"), Decimal("0.000180"), limit)  # exactly reaches it: sent
    assert budget.exceeds(Decimal("0.000084"), Decimal("0.000180000001"), limit)  # a picodollar over
    assert not budget.exceeds(Decimal("0.000084"), Decimal("0.0001800000000004"), limit)  # below a pico
    assert budget.exceeds(limit, Decimal(0), limit)  # spent already: nothing more, not even a free request
    assert budget.exceeds(Decimal(0), None, Decimal(0))  # a zero budget stops everything
    assert not budget.exceeds(Decimal(0), None, Decimal("0.01"))  # unpriced request: counted as 0


def test_the_default_output_tokens_a_hard_budget_assumes_has_a_setter():
    assert budget.DEFAULT_MAX_OUTPUT_TOKENS == 4096
    previous = budget.set_default_max_output_tokens(100)
    try:
        assert previous == 4096
        assert budget.DEFAULT_MAX_OUTPUT_TOKENS == limits.DEFAULT_MAX_OUTPUT_TOKENS == 100
    finally:
        budget.set_default_max_output_tokens(previous)
    assert limits.DEFAULT_MAX_OUTPUT_TOKENS == 4096


def test_budgets_with_spent_and_applicable_budgets(fake):
    llmcost_nb.set_price("gpt-4.1", input_mtok="2", output_mtok="8")  # ours to state: 6 × 2 + 9 × 8 = 84 µ$
    budget.set_budget("1", scope="tag:team=search")
    budget.set_budget("2", scope="session")
    with llmcost_nb.track(tags={"team": "search"}) as t:
        oai(fake).chat.completions.create(model="gpt-4.1", messages=HELLO)
    with llmcost_nb.track(tags={"team": "ads"}) as other:
        pass
    spent = Decimal("0.000084")
    assert [(b.scope, s) for b, s in budget.budgets_with_spent()] == [("tag:team=search", spent),
                                                                       ("session", spent)]
    assert [(b.scope, s) for b, s in budget.applicable_budgets(t)] == [("tag:team=search", spent),
                                                                        ("session", spent)]
    assert [b.scope for b, _ in budget.applicable_budgets(other)] == ["session"]


def test_budget_exceeded_is_built_by_a_public_builder():
    stop = budget.exceeded(budget.Budget(Decimal("0.5"), "cell", True), Decimal("0.4"), Decimal("0.2"), "m")
    assert type(stop) is llmcost_nb.BudgetExceeded is budget.BudgetExceeded
    assert (stop.spent, stop.request_cost, stop.model, stop.budget.scope) == (
        Decimal("0.4"), Decimal("0.2"), "m", "cell")
    assert str(stop) == ("budget cell of $0.5 would be exceeded: $0.400000 spent, this m call could cost up "
                         "to $0.200000; nothing was sent")
