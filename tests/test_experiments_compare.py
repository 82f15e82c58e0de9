"""llmcost_nb.compare on the fake provider: exact totals against the ledger, tags, every client kind, retries,
the budget (refusal before the grid and a stop in the middle), interrupts, and rebuilding from the ledger."""

from __future__ import annotations

import _thread
import asyncio
import json
import re
import threading
from decimal import Decimal

import anthropic
import openai
import pytest
from google import genai

import llmcost_nb
from llmcost_nb.experiments.compare import GridOverBudget, acompare, compare, estimate_grid, experiment

M = Decimal(10) ** 6
PRICES = {  # USD per million input / output tokens, stated for these tests (see `prices`)
    "gpt-4.1": (2, 8),
    "gpt-4.1-mini": (Decimal("0.4"), Decimal("1.6")),
    "claude-haiku-4-5": (1, 5),
    "gemini-2.5-flash": (Decimal("0.3"), Decimal("2.5")),
}
QUESTIONS = [
    {"id": f"q{n}", "question": f"what is {n} plus {n}", "expected": str(2 * n)} for n in range(1, 7)
]
VARIANTS = {
    "terse": "Q: {question}",  # user "Q: what is n plus n": 6 words + 3 = 9 input tokens
    "system": [
        {"role": "system", "content": "Answer with a number only."},  # 5 + 3
        {"role": "user", "content": "{question}"},
    ],  # 5 + 3: 16 input tokens
}
INPUT_TOKENS = {"terse": 9, "system": 16}


def reply(body: dict, model: str) -> str:
    """gpt-4.1 answers every question right; other models only those with an even n ("no idea" otherwise)."""
    n = int(re.search(r"what is (\d+) plus", json.dumps(body)).group(1))
    return str(2 * n) if model == "gpt-4.1" or n % 2 == 0 else "no idea"


def cost(model: str, input_tokens: int, output_tokens: int) -> Decimal:
    inp, out = PRICES[model]
    return (Decimal(inp) * input_tokens + Decimal(out) * output_tokens) / M


def expected_cost(variant: str, model: str, n: int) -> Decimal:
    right = model == "gpt-4.1" or n % 2 == 0
    return cost(model, INPUT_TOKENS[variant], 1 if right else 2)


@pytest.fixture(autouse=True)
def prices(ledger):
    """Every model these tests call priced in the test's ledger and the session's: the costs, budgets and
    rankings below rest on these prices, ours to state (genai-prices' may change)."""
    for target in (ledger, llmcost_nb.get_session().ledger):
        for model, (input_mtok, output_mtok) in PRICES.items():
            target.set_price(model, input_mtok=str(input_mtok), output_mtok=str(output_mtok))


@pytest.fixture
def oai(fake):
    fake.reply = reply
    return openai.OpenAI(base_url=fake.openai_base_url, api_key="sk-test")


def test_totals_equal_the_ledger_exactly(oai, ledger):
    result = compare(
        VARIANTS,
        ["gpt-4.1", "gpt-4.1-mini"],
        QUESTIONS,
        scorer="exact",
        client=oai,
        name="exp-1",
        ledger=ledger,
        progress=False,
        tags={"team": "search"},
    )
    want = sum(
        expected_cost(v, m, n) for v in VARIANTS for m in ("gpt-4.1", "gpt-4.1-mini") for n in range(1, 7)
    )
    assert result.total_cost == want == ledger.total_cost(tags={"experiment": "exp-1"})
    assert ledger.count(tags={"experiment": "exp-1", "team": "search"}) == 24
    table = result.table.set_index(["variant", "model"])
    assert table.loc[("terse", "gpt-4.1"), "n"] == 6
    assert table.loc[("terse", "gpt-4.1"), "success_rate"] == 1.0
    assert table.loc[("system", "gpt-4.1-mini"), "success_rate"] == 0.5
    assert table.loc[("terse", "gpt-4.1"), "total_cost"] == 6 * cost("gpt-4.1", 9, 1) == Decimal("0.000156")
    mini = sum(expected_cost("system", "gpt-4.1-mini", n) for n in range(1, 7))
    assert table.loc[("system", "gpt-4.1-mini"), "cost_per_success"] == mini / 3
    assert table.loc[("terse", "gpt-4.1"), "input_tokens"] == 54
    assert table.loc[("system", "gpt-4.1-mini"), "output_tokens"] == 9
    # every row carries the experiment's tags, and scored rows their score
    calls = ledger.calls(tags={"experiment": "exp-1"})
    assert calls["scope_id"].nunique() == 1  # one scope per experiment, not one per call
    scope_rows = ledger.connection.execute("SELECT kind, name FROM scopes WHERE id = ?",
                                           (calls["scope_id"][0],))
    assert scope_rows.fetchall() == [("compare", "exp-1")]
    assert {frozenset(t) for t in calls["tags"]} == {
        frozenset({"experiment", "variant", "model", "input_id", "repeat", "team", "score"})
    }
    row = calls[
        calls["tags"].map(
            lambda t: t["input_id"] == "q3" and t["model"] == "gpt-4.1-mini" and t["variant"] == "terse"
        )
    ].iloc[0]
    assert row["tags"]["score"] == "0" and row["cost_usd"] == cost("gpt-4.1-mini", 9, 2)
    best = result.best("cost_per_success")  # half right, yet cheaper per success than gpt-4.1's $0.000026
    assert [best["variant"], best["model"], best["cost_per_success"]] == [
        "terse",
        "gpt-4.1-mini",
        Decimal("0.000012"),
    ]
    assert result.best("success_rate")[["variant", "model"]].tolist() == ["terse", "gpt-4.1"]


def test_experiment_rebuilds_the_result_from_the_ledger(oai, ledger):
    live = compare(
        VARIANTS,
        ["gpt-4.1", "gpt-4.1-mini"],
        QUESTIONS,
        scorer="exact",
        client=oai,
        name="exp-2",
        ledger=ledger,
        repeats=2,
        progress=False,
    )
    again = experiment("exp-2", ledger=ledger)
    keys = ["variant", "model", "input_id", "repeat"]
    columns = [
        "status",
        "score",
        "success",
        "cost",
        "input_tokens",
        "output_tokens",
        "latency_ms",
        "attempts",
    ]
    left = live.rows.sort_values(keys).reset_index(drop=True)
    right = again.rows.sort_values(keys).reset_index(drop=True)
    assert len(left) == 48
    assert left[keys + columns].equals(right[keys + columns])
    assert again.total_cost == live.total_cost
    table_cols = ["n", "success_rate", "mean_score", "total_cost", "cost_per_success", "p50_latency_ms"]
    assert (
        live.table.set_index(["variant", "model"])
        .sort_index()[table_cols]
        .equals(again.table.set_index(["variant", "model"]).sort_index()[table_cols])
    )
    with pytest.raises(KeyError, match="no calls tagged experiment='nope'"):
        experiment("nope", ledger=ledger)


def test_every_client_kind(fake, ledger):
    fake.reply = reply
    clients = [
        openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="k"),
        anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="k"),
        genai.Client(api_key="k", http_options={"base_url": fake.gemini_base_url}),
    ]
    models = ["gpt-4.1", "claude-haiku-4-5", "gemini-2.5-flash"]
    result = compare(
        {"terse": "Q: {question}"},
        models,
        QUESTIONS[:2],
        scorer="exact",
        client=clients,
        name="kinds",
        ledger=ledger,
        progress=False,
    )
    calls = ledger.calls(tags={"experiment": "kinds"})
    assert sorted(calls["api"]) == ["chat", "chat", "gemini", "gemini", "messages", "messages"]
    # anthropic and gemini count the user text only (no per-message overhead in their token rules? see docs)
    assert result.total_cost == ledger.total_cost(tags={"experiment": "kinds"})
    table = result.table.set_index("model")
    assert table.loc["gpt-4.1", "success_rate"] == 1.0
    assert table.loc["claude-haiku-4-5", "success_rate"] == 0.5  # q2 right, q1 "no idea"
    assert table.loc["gemini-2.5-flash", "success_rate"] == 0.5
    assert list(result.rows.sort_values(["model", "input_id"])["output"]) == [
        "no idea",
        "4",
        "no idea",
        "4",
        "2",
        "4",
    ]


def test_system_messages_go_where_each_api_wants_them(fake, ledger):
    fake.reply = reply
    client = {
        "claude-haiku-4-5": anthropic.AsyncAnthropic(base_url=fake.anthropic_base_url, api_key="k"),
        "openai": openai.OpenAI(base_url=fake.openai_base_url, api_key="k"),
    }
    compare(
        {"system": VARIANTS["system"]},
        ["claude-haiku-4-5", "gpt-4.1-mini"],
        QUESTIONS[:1],
        client=client,
        ledger=ledger,
        progress=False,
        max_tokens=7,
    )
    bodies = {r.path: r.body for r in fake.requests}
    assert bodies["/v1/messages"]["system"] == "Answer with a number only."
    assert bodies["/v1/messages"]["messages"] == [{"role": "user", "content": "what is 1 plus 1"}]
    assert bodies["/v1/messages"]["max_tokens"] == 7
    assert bodies["/v1/chat/completions"]["max_completion_tokens"] == 7
    assert len(bodies["/v1/chat/completions"]["messages"]) == 2


def test_a_user_function_is_recorded_with_its_usage(ledger):
    seen = []

    def call(model, request):
        seen.append((model, request))
        return {"text": "4", "input_tokens": 1000, "output_tokens": 10}

    result = compare(
        {"A": "Q: {question}"},
        ["gpt-4.1", "gpt-4.1-mini"],
        QUESTIONS[1:2],
        scorer="exact",
        client=call,
        name="fn",
        ledger=ledger,
        progress=False,
    )
    assert seen[0] == (
        "gpt-4.1",
        {"messages": [{"role": "user", "content": "Q: what is 2 plus 2"}], "max_tokens": 256},
    )
    assert result.total_cost == cost("gpt-4.1", 1000, 10) + cost("gpt-4.1-mini", 1000, 10)
    assert ledger.total_cost(tags={"experiment": "fn"}) == result.total_cost
    assert set(ledger.calls(tags={"experiment": "fn"})["api"]) == {"manual"}
    assert result.table["success_rate"].tolist() == [1.0, 1.0]


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cycle collector frees it


def test_a_grid_leaves_older_objects_out_of_full_collections_and_the_collector_as_it_was(ledger):
    import gc
    import weakref

    from llmcost_nb.experiments import run as compare_run

    during = []

    def call(model, request):
        node = _Node()
        gone = weakref.ref(node)
        del node
        gc.collect()  # the grid's own garbage is still collected while the older objects are frozen
        during.append((gc.get_freeze_count(), gone() is None))
        return "4"

    grid = dict(scorer="exact", client=call, ledger=ledger, progress=False)
    assert gc.get_freeze_count() <= compare_run._UNFROZEN_COUNT  # nothing frozen (3.12.1 starts at 375)
    compare({"A": "{question}"}, ["gpt-4.1"], QUESTIONS[:2], name="gc", **grid)
    assert len(during) == 2 and all(frozen > 1000 and collected for frozen, collected in during)
    assert gc.get_freeze_count() == 0  # all back in the collector's care

    gc.freeze()  # a freeze the user made is theirs: left as it was
    try:
        mine = gc.get_freeze_count()
        compare({"A": "{question}"}, ["gpt-4.1"], QUESTIONS[:1], name="gc2", **grid)
        assert gc.get_freeze_count() > 0.9 * mine  # still frozen (less what refcounting freed meanwhile)
    finally:
        gc.unfreeze()


def test_an_async_user_function_without_usage_and_one_that_fails(ledger):
    async def call(model, request):
        await asyncio.sleep(0)
        if model == "broken":
            raise ValueError("no such model")
        return "4"

    result = compare(
        {"A": "{question}"},
        ["gpt-4.1", "broken"],
        QUESTIONS[1:2],
        scorer="exact",
        client=call,
        name="afn",
        ledger=ledger,
        progress=False,
    )
    rows = result.rows.set_index("model")
    assert rows.loc["gpt-4.1", "status"] == "ok" and rows.loc["gpt-4.1", "cost"] == 0
    assert rows.loc["broken", "status"] == "error"
    assert rows.loc["broken", "error"] == "ValueError: no such model"
    calls = ledger.calls(tags={"experiment": "afn"})
    assert sorted(zip(calls["status"], calls["billed"], strict=True)) == [("error", False), ("ok", True)]
    assert experiment("afn", ledger=ledger).rows.set_index("model").loc["broken", "status"] == "error"


def test_transient_errors_are_retried(fake, ledger):
    fake.reply = reply
    gemini = genai.Client(
        api_key="k", http_options={"base_url": fake.gemini_base_url}
    )  # the SDK never retries
    fake.fail_next(status=429, times=2)
    result = compare(
        {"A": "Q: {question}"},
        ["gemini-2.5-flash"],
        QUESTIONS[1:2],
        scorer="exact",
        client=gemini,
        name="retry",
        ledger=ledger,
        progress=False,
        retry_delay=0,
    )
    row = result.rows.iloc[0]
    assert (row["status"], row["attempts"], row["success"]) == ("ok", 3, True)
    calls = ledger.calls(tags={"experiment": "retry"})
    assert list(calls["status"]) == ["error", "error", "ok"] and list(calls["billed"]) == [False, False, True]
    fake.fail_next(status=400, times=1)  # not transient: no retry
    result = compare(
        {"A": "Q: {question}"},
        ["gemini-2.5-flash"],
        QUESTIONS[1:2],
        client=gemini,
        name="no-retry",
        ledger=ledger,
        progress=False,
        retry_delay=0,
    )
    assert (result.rows.iloc[0]["status"], result.rows.iloc[0]["attempts"]) == ("error", 1)


def test_the_grid_is_refused_before_anything_is_sent_when_it_could_pass_the_budget(oai, fake, ledger):
    estimate = estimate_grid(VARIANTS, ["gpt-4.1"], QUESTIONS, max_tokens=100, ledger=ledger)
    # tiktoken (o200k_base): "Q: what is 1 plus 1" is 9 tokens + 1 for the role + 3 per message + 3 priming
    assert (estimate.calls, estimate.input_tokens, estimate.max_output_tokens) == (12, 6 * 16 + 6 * 24, 100)
    assert estimate.max_cost == cost("gpt-4.1", 240, 12 * 100) == Decimal("0.01008")
    with pytest.raises(
        GridOverBudget,
        match=r"could cost up to \$0\.010080 \(12 calls = 2 variants × 1 models"
        r" × 6 inputs × 1 repeats.*more than the budget of \$0\.01\.",
    ):
        compare(VARIANTS, ["gpt-4.1"], QUESTIONS, client=oai, budget="0.01", max_tokens=100, ledger=ledger)
    assert fake.request_count == 0
    ledger.set_price("my-model", input_mtok=1, output_mtok=1)
    with pytest.raises(GridOverBudget, match="no price known for mystery-model"):
        compare(VARIANTS, ["my-model", "mystery-model"], QUESTIONS, client=oai, budget=1, ledger=ledger)
    result = compare(
        VARIANTS,
        ["gpt-4.1"],
        QUESTIONS,
        client=oai,
        budget="0.0101",
        max_tokens=100,
        ledger=ledger,
        progress=False,
    )
    assert result.stopped is None and len(result.rows) == 12 and result.estimate == estimate


def test_a_budget_stop_mid_grid_keeps_what_finished_and_reports_what_was_skipped(oai, fake, ledger):
    # Hidden reasoning tokens make every call cost more than its estimate: the running check must stop it.
    fake.reasoning_tokens = 1000  # output 1 + 1000 tokens at $8/M on gpt-4.1
    per_call = cost("gpt-4.1", 9, 1001)  # $0.008026
    worst = cost("gpt-4.1", 16, 20)  # tiktoken estimate: 16 input, max_tokens=20 output
    budget = Decimal("0.03")
    result = compare(
        {"terse": "Q: {question}"},
        ["gpt-4.1"],
        QUESTIONS,
        client=oai,
        budget=budget,
        max_tokens=20,
        concurrency=1,
        name="stop",
        ledger=ledger,
        progress=False,
    )
    done = next(k for k in range(7) if k * per_call + worst > budget)  # the first call that would not fit
    assert done == 4 and result.stopped == "budget"
    assert list(result.rows["input_id"]) == ["q1", "q2", "q3", "q4"]
    assert list(result.skipped["input_id"]) == ["q5", "q6"] and set(result.skipped["reason"]) == {"budget"}
    assert result.total_cost == 4 * per_call == ledger.total_cost(tags={"experiment": "stop"})
    assert fake.request_count == 4
    assert "stopped (budget): 2 calls skipped" in result.summary()


def test_concurrent_calls_reserve_their_worst_case(oai, fake, ledger):
    """A call is launched only if the budget holds what was spent plus the worst case of every call still in
    flight. Two at a time, each call costing far more than its estimate (hidden reasoning tokens): once the
    first is answered, what it cost plus the worst case of the one still out leaves no room for a third, so
    the grid must wait for that one (and then stop: the budget is spent). The server holds the second
    request until the first is answered and then a while longer: a third launched on spent money alone
    (not counting the call in flight) would arrive meanwhile."""
    fake.reasoning_tokens = 100
    worst = cost("gpt-4.1", 16, 20)  # each call's estimate: 16 input tokens (tiktoken), max_tokens=20
    budget, per_call = 6 * worst, cost("gpt-4.1", 9, 101)  # the grid's worst case: not refused
    assert budget - 2 * worst < per_call <= budget - worst  # after one call: room for one worst case, not two
    gate = threading.Condition()
    state = {"arrived": 0, "first_answered": False, "arrived_while_second_held": 0}

    def held(body, model):
        with gate:
            state["arrived"] += 1
            arrival = state["arrived"]
            if arrival > 2:
                state["arrived_while_second_held"] += 1
                gate.notify_all()
            if arrival == 2:
                assert gate.wait_for(lambda: state["first_answered"], timeout=60), "the first never answered"
                gate.wait_for(lambda: state["arrived"] > 2, timeout=0.5)  # a third, if launched too early
                state["second_answered"] = True
            if arrival == 1:
                state["first_answered"] = True
                gate.notify_all()
        return reply(body, model)

    fake.reply = held
    result = compare(
        {"terse": "Q: {question}"},
        ["gpt-4.1"],
        QUESTIONS,
        client=oai,
        budget=budget,
        max_tokens=20,
        concurrency=2,
        ledger=ledger,
        progress=False,
    )
    assert state["arrived_while_second_held"] == 0 and fake.request_count == 2
    assert result.stopped == "budget" and list(result.rows["input_id"]) == ["q1", "q2"]
    assert list(result.skipped["input_id"]) == ["q3", "q4", "q5", "q6"]
    assert result.total_cost == 2 * per_call == ledger.total_cost()


def _interrupt_at(n: int, fake) -> None:
    lock, count = threading.Lock(), [0]

    def answer(body, model):
        with lock:
            count[0] += 1
            if count[0] == n:
                _thread.interrupt_main()  # what Jupyter's stop button does
        return reply(body, model)

    fake.reply = answer


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_an_interrupt_stops_cleanly_and_leaves_no_half_written_state(fake, ledger, kind):
    fake.latency = 0.05
    _interrupt_at(5, fake)
    client = (openai.AsyncOpenAI if kind == "async" else openai.OpenAI)(
        base_url=fake.openai_base_url, api_key="k"
    )
    questions = [
        {"id": f"q{n}", "question": f"what is {n} plus {n}", "expected": str(2 * n)} for n in range(40)
    ]
    result = compare(
        {"terse": "Q: {question}"},
        ["gpt-4.1"],
        questions,
        scorer="exact",
        client=client,
        concurrency=4,
        name=f"int-{kind}",
        ledger=ledger,
        progress=False,
    )
    assert result.stopped == "interrupted"
    assert 0 < len(result.rows) < 40 and len(result.rows) + len(result.skipped) == 40
    assert set(result.rows["input_id"]).isdisjoint(result.skipped["input_id"])
    assert set(result.rows["status"]) <= {"ok", "cancelled"}
    # the ledger holds exactly the launched calls: same total, every finished one scored, no skipped one sent
    calls = ledger.calls(tags={"experiment": f"int-{kind}"})
    assert ledger.total_cost(tags={"experiment": f"int-{kind}"}) == result.total_cost
    assert set(calls["tags"].map(lambda t: t["input_id"])) == set(result.rows["input_id"])
    ok = calls[calls["status"] == "ok"]
    assert ok["tags"].map(lambda t: t.get("score")).notna().all()
    assert len(ok) == (result.rows["status"] == "ok").sum()
    if kind == "sync":  # a request already in a worker thread cannot be stopped: it finishes and is kept
        assert set(result.rows["status"]) == {"ok"}
    cancelled = calls[calls["status"] != "ok"]
    assert (~cancelled["billed"]).all() and cancelled["error"].str.startswith("CancelledError").all()
    rebuilt = experiment(f"int-{kind}", ledger=ledger).rows.set_index("input_id").sort_index()
    live = result.rows.set_index("input_id").sort_index()
    assert rebuilt["status"].equals(live["status"]) and rebuilt["cost"].equals(live["cost"])


def test_a_stop_event_set_from_another_thread_stops_like_an_interrupt(fake, ledger):
    fake.latency = 0.05
    stop, seen, lock, count = threading.Event(), [], threading.Lock(), [0]

    def answer(body, model):
        with lock:
            count[0] += 1
            if count[0] == 5:
                stop.set()  # another thread (the workbench's Stop button) asks the grid to stop
        return reply(body, model)

    fake.reply = answer
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="k")
    questions = [
        {"id": f"q{n}", "question": f"what is {n} plus {n}", "expected": str(2 * n)} for n in range(40)
    ]
    result = compare({"terse": "Q: {question}"}, ["gpt-4.1"], questions, scorer="exact", client=client,
                     concurrency=4, name="stopped", ledger=ledger, stop=stop,
                     progress=lambda done, total, spent: seen.append((done, total, spent)))
    assert result.stopped == "interrupted"
    assert 5 <= len(result.rows) < 40 and len(result.rows) + len(result.skipped) == 40
    assert ledger.total_cost(tags={"experiment": "stopped"}) == result.total_cost
    # progress=callable: (done, total, spent) as calls finish, the last one the result's
    assert seen[-1] == (len(result.rows), 40, result.total_cost)
    assert [d for d, _, _ in seen] == sorted({d for d, _, _ in seen})
    assert all(t == 40 for _, t, _ in seen)


def test_compare_works_inside_a_running_event_loop_and_acompare_on_it(oai, ledger):
    async def in_jupyter():
        loop = asyncio.get_running_loop()
        mine = openai.AsyncOpenAI(base_url=str(oai.base_url), api_key="k")
        await mine.chat.completions.create(
            model="gpt-4.1", messages=[{"role": "user", "content": "what is 1 plus 1"}]
        )
        sync_result = compare(
            {"A": "Q: {question}"},
            ["gpt-4.1"],
            QUESTIONS[:2],
            client=mine,
            ledger=ledger,
            name="in-loop",
            progress=False,
        )
        # compare() ran on its own loop with a copy of the client: this one still works on ours
        again = await mine.chat.completions.create(
            model="gpt-4.1", messages=[{"role": "user", "content": "what is 3 plus 3"}]
        )
        assert again.choices[0].message.content == "6"
        async_result = await acompare(
            {"A": "Q: {question}"},
            ["gpt-4.1"],
            QUESTIONS[:2],
            client=oai,
            ledger=ledger,
            name="on-loop",
            progress=False,
        )
        assert asyncio.get_running_loop() is loop
        return sync_result, async_result

    sync_result, async_result = asyncio.run(in_jupyter())
    assert sync_result.total_cost == async_result.total_cost == 2 * cost("gpt-4.1", 9, 1)
    assert ledger.count(tags={"experiment": "on-loop"}) == 2


def test_calls_join_the_enclosing_scope_and_dataframe_inputs_work(oai):
    import pandas as pd

    frame = pd.DataFrame(QUESTIONS[:3]).set_index("id")
    with llmcost_nb.track(tags={"project": "ab"}) as outer:
        result = compare({"A": "Q: {question}"}, ["gpt-4.1"], frame, client=oai, progress=True, name="df")
    assert list(result.rows["input_id"]) == ["q1", "q2", "q3"]
    assert len(outer.records) == 3 and outer.total_cost == result.total_cost
    assert all(c.tags["project"] == "ab" and c.tags["experiment"] == "df" for c in outer.records)
    assert llmcost_nb.experiment("df").total_cost == result.total_cost  # the session's ledger
    # the module is callable: it is compare()
    via_module = llmcost_nb.compare({"A": "{question}"}, ["gpt-4.1"], frame[:1], client=oai, progress=False)
    assert list(via_module.rows["input_id"]) == ["q1"]


def test_a_grid_records_after_disable(oai, fake, ledger):
    """The grid opens scopes of its own, and a scope does not switch capture on: compare does."""
    from llmcost_nb.tracking import capture

    llmcost_nb.disable()
    result = compare({"terse": VARIANTS["terse"]}, ["gpt-4.1"], QUESTIONS[:2], client=oai, name="off",
                     ledger=ledger, progress=False)
    assert capture.installed() and fake.request_count == 2
    want = expected_cost("terse", "gpt-4.1", 1) + expected_cost("terse", "gpt-4.1", 2)
    assert result.total_cost == want == ledger.total_cost(tags={"experiment": "off"}) == Decimal("0.000052")
    assert ledger.count(tags={"experiment": "off"}) == 2


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"variants": {}}, ValueError, "variants must be a non-empty dict"),
        ({"models": "gpt-4.1"}, ValueError, "models must be a non-empty list"),
        ({"inputs": [{"id": 1, "question": "a"}, {"id": 1, "question": "b"}]}, ValueError, "duplicate ids"),
        (
            {"variants": {"A": "{nope}"}},
            KeyError,
            r"variant 'A' uses \{nope\} but the input has only the fields",
        ),
        ({"scorer": "fuzzy"}, ValueError, "unknown scorer 'fuzzy', allowed names: contains, exact"),
        ({"concurrency": 0}, ValueError, "concurrency must be a positive int"),
        ({"budget": -1}, ValueError, "budget must be a non-negative amount"),
        ({"client": {"gpt-4.1-mini": None}}, KeyError, "no client for model 'gpt-4.1'"),
        ({"client": 42}, TypeError, "client must be an openai, anthropic or google-genai client"),
    ],
)
def test_bad_arguments_fail_before_anything_is_sent(fake, kwargs, error, message):
    call = {
        "variants": {"A": "{question}"},
        "models": ["gpt-4.1"],
        "inputs": QUESTIONS[:1],
        "client": openai.OpenAI(base_url=fake.openai_base_url, api_key="k"),
        **kwargs,
    }
    with pytest.raises(error, match=message):
        compare(call.pop("variants"), call.pop("models"), call.pop("inputs"), progress=False, **call)
    assert fake.request_count == 0


def test_a_model_with_no_price_is_unpriced_in_the_result_never_0(oai, ledger, capsys):
    """Issue 16: a compared model with no known price shows as unpriced in the table, the summary, the
    progress bar and the result rebuilt from the ledger; its costs are not counted as $0."""
    with pytest.warns(llmcost_nb.LlmcostWarning, match="no price known for model 'my-ft'"):
        result = compare({"terse": "Q: {question}"}, ["gpt-4.1", "my-ft"], QUESTIONS[:2], client=oai,
                         name="unpriced", ledger=ledger, progress=True)
    table = result.table.set_index("model")
    assert table.loc["my-ft", ["total_cost", "unpriced", "estimated"]].tolist() == [Decimal(0), 2, 0]
    assert table.loc["gpt-4.1", ["total_cost", "unpriced"]].tolist() == [2 * cost("gpt-4.1", 9, 1), 0]
    assert result.summary() == "experiment unpriced: 4 calls (4 ok) · $0.000052 + 2 unpriced"
    shown = result._display_table().set_index("model")
    assert shown.loc["my-ft", ["total $", "$ / call", "$ / success"]].tolist() == ["2 unpriced"] * 3
    assert "$0.000052 + 2 unpriced" in capsys.readouterr().err  # the progress bar's running cost
    rebuilt = llmcost_nb.experiment("unpriced", ledger=ledger)
    assert rebuilt.table.set_index("model").loc["my-ft", "unpriced"] == 2
    assert rebuilt.summary() == result.summary()
    # its cost is unknown, not $0: it never wins on a cost, nor a tie on success as "the cheaper cell"
    for by in ("cost_per_success", "mean_cost", "total_cost", "success_rate"):
        assert result.best(by)["model"] == "gpt-4.1", by
    only = compare({"terse": "Q: {question}"}, ["my-ft"], QUESTIONS[:2], client=oai, ledger=ledger,
                   progress=False)
    with pytest.raises(ValueError, match=r"no cell has a known cost_per_success: no price for my-ft \("):
        only.best()
    assert only.best("success_rate")["model"] == "my-ft"
