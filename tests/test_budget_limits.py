"""Budgets outside notebooks: persistence, alerts at thresholds, scopes, and the hard stop before sending.

Costs: the fake provider answers "hello there world" with 6 input / 9 output tokens (its documented rules),
priced at genai-prices' gpt-4.1 prices (CALL_COST). A hard budget's request estimate for the same call with
max_tokens=20: 10 input tokens (tiktoken, o200k_base, with message framing) and 20 output tokens (MAX_COST).
"""

from __future__ import annotations

import asyncio
import warnings
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import anthropic
import openai
import pytest
from _prices import M, unit_prices

import llmcost_nb
from llmcost_nb.budget import limits as budget
from llmcost_nb.tracking import scope

HELLO = [{"role": "user", "content": "hello there world"}]
GPT = unit_prices("gpt-4.1", "openai")
CALL_COST = (6 * GPT.input_mtok + 9 * GPT.output_mtok) / M
MAX_COST = (10 * GPT.input_mtok + 20 * GPT.output_mtok) / M
TWO_CALLS = 2 * CALL_COST + MAX_COST - Decimal("0.000001")  # room for two calls, not for a third's worst case


def oai(fake):
    return openai.OpenAI(base_url=fake.openai_base_url, api_key="sk-test", max_retries=3)


def claude(fake):
    return anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="sk-ant-test", max_retries=3)


@pytest.fixture
def priced(ledger):
    """A ledger where model-x costs exactly $1 per million input and $10 per million output tokens."""
    llmcost_nb.get_session().use_ledger(ledger)
    ledger.set_price("model-x", input_mtok="1", output_mtok="10")
    return ledger


def spend(usd_millionths: int, **tags):
    """Log a model-x call costing exactly usd_millionths µ$ (input tokens at $1/M)."""
    return llmcost_nb.log(model="model-x", input_tokens=usd_millionths, output_tokens=0, tags=tags or None)


def test_budget_is_stored_in_the_ledger_and_read_back(priced):
    made = budget.set_budget("5.00", scope="day", hard=True, thresholds=["0.5", "0.9"])
    assert made == budget.Budget(Decimal("5.00"), "day", True, (Decimal("0.5"), Decimal("0.9")))
    budget.refresh(priced)
    other = llmcost_nb.Ledger(priced.path)  # another process would open it like this
    assert budget.budgets(other) == [made]
    assert budget.remove_budget("day") is True
    assert budget.budgets(llmcost_nb.Ledger(priced.path)) == []
    assert budget.remove_budget("day") is False


def test_budgets_read_while_other_threads_write_the_ledger_are_read_whole(priced):
    """Reading a ledger's budgets shares its connection with threads writing calls: read without the
    ledger's lock, a row came back empty on Python 3.12 now and then ("not enough values to unpack"), which
    the budget listener turned into a warning on the calls of the 4-process concurrency test."""
    made = budget.set_budget("5.00", scope="day")
    done = False

    def read() -> int:
        reads = 0
        while not done or reads < 50:
            budget.refresh(priced)  # the book is built again, from the ledger, by the next read
            assert budget.budgets(priced) == [made]
            reads += 1
        return reads

    def write(thread: int) -> None:
        for i in range(400):
            spend(thread * 1000 + i + 1)

    with warnings.catch_warnings():
        # a listener's failure is our warning: here, the test's failure (only ours: another test's ledger
        # collected meanwhile may warn that its connection was left open)
        warnings.simplefilter("error", llmcost_nb.LlmcostWarning)
        with ThreadPoolExecutor(6) as pool:
            readers = [pool.submit(read) for _ in range(3)]
            writers = [pool.submit(write, t) for t in range(3)]
            for writer in writers:
                writer.result()
            done = True
            assert all(reader.result() >= 50 for reader in readers)
    assert priced.count() == 1200


@pytest.mark.parametrize(
    ("scope", "message"),
    [
        ("week", "unknown budget scope 'week', allowed values: session, notebook, day, month, tag:KEY=VALUE"),
        ("tag:nokey", "unknown budget scope 'tag:nokey'"),
        ("notebook", "scope 'notebook' needs a notebook path"),
    ],
)
def test_bad_scope(priced, scope, message):
    with pytest.raises(ValueError, match=message):
        budget.set_budget(1, scope=scope)


@pytest.mark.parametrize("limit", ["abc", -1, float("nan")])
def test_bad_limit(priced, limit):
    with pytest.raises(ValueError, match="a budget must be a"):
        budget.set_budget(limit)


def test_alerts_at_80_and_100_percent_once_each(priced):
    alerts = []
    budget.on_alert(alerts.append)
    budget.set_budget("0.000100", scope="session")
    spend(79)
    assert alerts == []
    spend(1)  # 80 µ$: crosses 80%
    spend(10)
    assert [(a.threshold, a.spent) for a in alerts] == [(Decimal("0.8"), Decimal("0.000080"))]
    spend(15)  # 105 µ$: crosses 100%
    spend(1)
    assert [(a.threshold, a.spent) for a in alerts] == [
        (Decimal("0.8"), Decimal("0.000080")),
        (Decimal("1"), Decimal("0.000105")),
    ]
    assert (
        alerts[1].message == "llmcost budget session: $0.000105 spent of $0.000100 (100% threshold reached)"
    )
    assert budget.spent("session") == Decimal("0.000106")


def test_default_alert_is_a_warning(priced):
    budget.set_budget("0.000010", scope="session", thresholds=["0.5"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        spend(6)
    assert [type(w.message) for w in caught] == [budget.BudgetWarning]
    assert "50% threshold reached" in str(caught[0].message)


def test_tag_budget_counts_only_tagged_calls(priced):
    alerts = []
    budget.on_alert(alerts.append)
    budget.set_budget("0.000010", scope="tag:team=search", thresholds=["1"])
    spend(50, team="ads")
    spend(9, team="search")
    assert alerts == [] and budget.spent("tag:team=search") == Decimal("0.000009")
    with llmcost_nb.track(tags={"team": "search"}):
        spend(1)
    assert len(alerts) == 1 and alerts[0].budget.scope == "tag:team=search"


def test_day_and_month_budgets_start_from_what_the_ledger_already_holds(priced):
    spend(40)
    spend(2)
    budget.set_budget("1", scope="month")
    budget.set_budget("1", scope="day")
    assert budget.spent("day") == budget.spent("month") == Decimal("0.000042")
    spend(8)
    assert budget.spent("day") == budget.spent("month") == Decimal("0.000050")


def test_notebook_budget_counts_calls_of_scopes_in_that_notebook(priced):
    budget.set_budget("1", scope="notebook", notebook="/work/a.ipynb")
    with llmcost_nb.Scope(kind="cell", notebook="/work/a.ipynb", cell=1):
        spend(7)
        with llmcost_nb.track():  # nested scopes belong to the notebook too
            spend(3)
    with llmcost_nb.Scope(kind="cell", notebook="/work/b.ipynb", cell=1):
        spend(100)
    assert budget.spent("notebook", notebook="/work/a.ipynb") == Decimal("0.000010")
    budget.refresh(priced)  # read back from the ledger: the scopes table knows the notebook
    assert budget.spent("notebook", notebook="/work/a.ipynb") == Decimal("0.000007")


def test_budget_exceeded_subclasses_both_sdk_errors():
    exc_class = llmcost_nb.BudgetExceeded
    assert exc_class is budget.BudgetExceeded
    assert issubclass(exc_class, openai.OpenAIError) and issubclass(exc_class, anthropic.AnthropicError)
    assert exc_class._llmcost_deliberate is True


def test_hard_budget_stops_the_third_call_before_it_is_sent(fake):
    budget.set_budget(str(TWO_CALLS), scope="session", hard=True)
    client = oai(fake)
    with llmcost_nb.track() as t:
        for _ in range(2):
            client.chat.completions.create(model="gpt-4.1", messages=HELLO, max_tokens=20)
        with pytest.raises(llmcost_nb.BudgetExceeded) as info:
            client.chat.completions.create(model="gpt-4.1", messages=HELLO, max_tokens=20)
    assert fake.request_count == 2  # the third request never reached the server, and was not retried
    assert t.total_cost == 2 * CALL_COST
    exc = info.value
    assert (exc.spent, exc.request_cost, exc.budget.limit) == (2 * CALL_COST, MAX_COST, TWO_CALLS)
    assert "nothing was sent" in str(exc)
    assert [c.estimated_input_tokens for c in t.records] == [10, 10]  # kept to compare with the actual 6


def test_a_budget_stored_by_an_earlier_session_applies_in_the_next_one(fake, monkeypatch):
    budget.set_budget(str(TWO_CALLS), scope="day", hard=True)  # stored in the default ledger
    monkeypatch.setattr(scope, "_session", None)  # a new process: nothing activated by hand
    client = oai(fake)
    with llmcost_nb.track():
        for _ in range(2):
            client.chat.completions.create(model="gpt-4.1", messages=HELLO, max_tokens=20)
        with pytest.raises(llmcost_nb.BudgetExceeded, match="nothing was sent"):
            client.chat.completions.create(model="gpt-4.1", messages=HELLO, max_tokens=20)
    assert fake.request_count == 2
    budget.deactivate()  # a session can opt out
    client.chat.completions.create(model="gpt-4.1", messages=HELLO, max_tokens=20)
    assert fake.request_count == 3


def test_hard_budget_passes_through_anthropic_without_retries(fake):
    budget.set_budget("0", scope="tag:team=search", hard=True)
    with llmcost_nb.track(tags={"team": "search"}), pytest.raises(anthropic.AnthropicError) as info:
        claude(fake).messages.create(model="claude-haiku-4-5", max_tokens=50, messages=HELLO)
    assert type(info.value) is llmcost_nb.BudgetExceeded
    assert fake.request_count == 0
    # calls outside the tag go through
    claude(fake).messages.create(model="claude-haiku-4-5", max_tokens=50, messages=HELLO)
    assert fake.request_count == 1


def test_hard_budget_stops_async_calls(fake):
    budget.set_budget(str(MAX_COST - Decimal("0.000001")), scope="session", hard=True)
    client = openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="sk-test", max_retries=3)

    async def call():
        with pytest.raises(llmcost_nb.BudgetExceeded):
            await client.chat.completions.create(model="gpt-4.1", messages=HELLO, max_tokens=20)

    asyncio.run(call())
    assert fake.request_count == 0


def test_request_without_max_tokens_assumes_the_default_output(fake):
    worst = (10 * GPT.input_mtok + 4096 * GPT.output_mtok) / M  # 10 input tokens, 4096 output
    budget.set_budget(str(worst - Decimal("0.000001")), scope="session", hard=True)
    with pytest.raises(llmcost_nb.BudgetExceeded) as info:
        oai(fake).chat.completions.create(model="gpt-4.1", messages=HELLO)
    assert info.value.request_cost == worst
    assert fake.request_count == 0


def test_threads_share_the_hard_budget(fake):
    budget.set_budget(str(5 * CALL_COST + MAX_COST - Decimal("0.000001")), scope="session", hard=True)
    client = oai(fake)

    def one(_):
        try:
            client.chat.completions.create(model="gpt-4.1", messages=HELLO, max_tokens=20)
            return "ok"
        except llmcost_nb.BudgetExceeded:
            return "stopped"

    with ThreadPoolExecutor(1) as pool:  # one at a time: exactly 5 fit
        results = list(pool.map(one, range(8)))
    assert results == ["ok"] * 5 + ["stopped"] * 3
    assert fake.request_count == 5


def test_each_budget_counts_the_unpriced_calls_its_spending_leaves_out(priced):
    """Issue 16: a call of unknown price adds nothing to what a budget has spent; unpriced_against says how
    many such billed calls fall under each budget (the views print "not counting N unpriced calls")."""
    from llmcost_nb import Call

    for scope_key, kw in [("session", {}), ("day", {}), ("month", {}), ("tag:team=ads", {}),
                          ("notebook", {"notebook": "/work/a.ipynb"})]:
        budget.set_budget("1", scope=scope_key, **kw)
    with pytest.warns(llmcost_nb.LlmcostWarning, match="no price known for model 'my-ft'"):
        with llmcost_nb.Scope(kind="cell", notebook="/work/a.ipynb", cell=1):
            spend(5, team="ads")
            llmcost_nb.log(model="my-ft", input_tokens=10, output_tokens=2, tags={"team": "ads"})
        llmcost_nb.log(model="my-ft", input_tokens=10, output_tokens=2)
    priced.write_many([
        Call(model="my-ft", input_tokens=10, output_tokens=2, cost=None, billed=True, session_id="another"),
        Call(model="my-ft", status="error", http_status=500, cost=None, billed=False),  # not billed: left out
    ])
    counts = {b.scope: budget.unpriced_against(b) for b, _ in budget.budgets_with_spent()}
    assert counts == {"session": 2, "day": 3, "month": 3, "tag:team=ads": 1, "notebook:/work/a.ipynb": 1}
    # what they have spent is unchanged: priced calls only
    assert {b.scope: s for b, s in budget.budgets_with_spent()} == dict.fromkeys(counts, Decimal("0.000005"))
