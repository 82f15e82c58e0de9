"""compare(..., adaptive=True): a race over paired rounds. Its statistics (the betting confidence sequence and
the stopping rule), a simulation over synthetic grids with known truth, and its exact behaviour on the fake
provider: which cells stop after which input, what they cost, what was saved, the ledger's tags and the
rebuild from the ledger, budgets, a judge, interrupts and bad arguments."""

from __future__ import annotations

import _thread
import json
import math
import random
import re
import threading
import zlib
from decimal import Decimal

import numpy as np
import openai
import pytest

import llmcost_nb
from llmcost_nb.core.call import PICO
from llmcost_nb.experiments.compare import GridOverBudget, acompare, compare, experiment
from llmcost_nb.experiments.scorers import llm_judge
from llmcost_nb.experiments.stats import RACE_METRICS, MeanBound, Race, RaceStop

M = Decimal(10) ** 6
PRICES = {"gpt-4.1": (2, 8), "gpt-4.1-mini": (Decimal("0.4"), Decimal("1.6"))}  # 5x apart
MODELS = ["gpt-4.1", "gpt-4.1-mini"]
VARIANTS = {"right": "Right: {question}", "maybe": "Maybe: {question}", "never": "Never: {question}"}
QUESTIONS = [{"id": f"q{n}", "question": f"what is {n} plus {n}", "expected": str(2 * n)} for n in range(40)]


def maybe_right(model: str, n: int) -> bool:
    return zlib.crc32(f"{model}/{n}".encode()) % 100 < 60


def reply(body: dict, model: str) -> str:
    """The "right" variant is always right, "maybe" about 60% of the time, "never" never."""
    text = json.dumps(body)
    if "You grade answers" in text:  # the judge: PASS when the reference is the candidate's answer
        prompt = body["messages"][0]["content"]
        expected = re.search(r"Reference answer: (.*)", prompt).group(1)
        return "PASS" if re.search(r"Candidate answer: (.*)", prompt).group(1) == expected else "FAIL"
    n = int(re.search(r"what is (\d+) plus", text).group(1))
    right = "Right" in text or ("Maybe" in text and maybe_right(model, n))
    return str(2 * n) if right else "no idea"


def call_cost(variant: str, model: str, n: int) -> Decimal:
    """The fake provider bills words + 3 input tokens ("Right: what is n plus n": 9) and one output token
    per word of the answer ("2n": 1, "no idea": 2)."""
    right = variant == "right" or (variant == "maybe" and maybe_right(model, n))
    inp, out = PRICES[model]
    return (Decimal(inp) * 9 + Decimal(out) * (1 if right else 2)) / M


@pytest.fixture(autouse=True)
def prices(ledger):
    for target in (ledger, llmcost_nb.get_session().ledger):
        for model, (input_mtok, output_mtok) in PRICES.items():
            target.set_price(model, input_mtok=str(input_mtok), output_mtok=str(output_mtok))


@pytest.fixture
def oai(fake):
    fake.reply = reply
    return openai.OpenAI(base_url=fake.openai_base_url, api_key="sk-test")


def shuffled(name: str, ids: list[str]) -> list[str]:
    """The documented order: the inputs shuffled by random.Random(crc32(experiment name))."""
    order = [(i, 0) for i in ids]
    random.Random(zlib.crc32(name.encode())).shuffle(order)
    return [i for i, _ in order]


# -- the race on the fake provider ---------------------------------------------------------------------------
def test_the_race_stops_the_cells_that_cannot_win_and_the_full_grid_agrees(oai, ledger, capsys):
    grid = dict(scorer="exact", client=oai, ledger=ledger, max_tokens=4, concurrency=4)
    full = compare(VARIANTS, MODELS, QUESTIONS, name="full", progress=False, **grid)
    race = compare(VARIANTS, MODELS, QUESTIONS, name="race-1", adaptive=True, **grid)
    table = race.table.set_index(["variant", "model"])
    stops = {cell: stop for cell, stop in table["stopped"].items() if stop is not None}
    dominated = " dominated by ('right', 'gpt-4.1-mini') on cost_per_success at 95%"
    assert stops == {
        ("right", "gpt-4.1"): "after input 12 of 40 (q19):" + dominated,
        ("maybe", "gpt-4.1-mini"): "after input 34 of 40 (q23):" + dominated,
        ("maybe", "gpt-4.1"): "after input 10 of 40 (q5):" + dominated,
        ("never", "gpt-4.1-mini"): "after input 14 of 40 (q14):" + dominated,
        ("never", "gpt-4.1"): "after input 10 of 40 (q5):" + dominated,
    }
    assert table["n"].to_dict() == {
        ("right", "gpt-4.1"): 12, ("right", "gpt-4.1-mini"): 40, ("maybe", "gpt-4.1"): 10,
        ("maybe", "gpt-4.1-mini"): 34, ("never", "gpt-4.1"): 10, ("never", "gpt-4.1-mini"): 14,
    }
    # paired: every cell ran the first n inputs of the one shuffled order, and cost exactly those calls
    order = shuffled("race-1", [q["id"] for q in QUESTIONS])
    for (variant, model), n in table["n"].items():
        rows = race.rows[(race.rows["variant"] == variant) & (race.rows["model"] == model)]
        assert sorted(rows["input_id"]) == sorted(order[:n])
        want = sum(call_cost(variant, model, int(i[1:])) for i in order[:n])
        assert table.loc[(variant, model), "total_cost"] == want
    assert race.total_cost == Decimal("0.0014496") == ledger.total_cost(tags={"experiment": "race-1"})
    assert full.total_cost == Decimal("0.0042528")  # the race spent 34% of it
    # the winner: the same as the full grid's, and the only cell left
    assert race.best()[["variant", "model"]].tolist() == full.best()[["variant", "model"]].tolist() == [
        "right", "gpt-4.1-mini"]
    assert race.live_cells == [("right", "gpt-4.1-mini")]
    # saved: each stopped cell's mean cost so far x the inputs it did not run
    saved = sum(
        (table.loc[cell, "total_cost"] * (40 - table.loc[cell, "n"]) / table.loc[cell, "n"]).quantize(PICO)
        for cell in stops
    )
    assert race.saved == saved == Decimal("0.002859105882")
    assert race.race_verdict() == (
        "raced on cost_per_success at 95%: 5 of 6 cells stopped, saved an estimated $0.002859; "
        "winner: right · gpt-4.1-mini"
    )
    # the progress bar ends with the live cells and the money saved
    assert "live 1/6 cells · saved an estimated $0.002859" in capsys.readouterr().err
    # the ledger: every call tagged with the race, a stopped cell's last calls with why
    calls = ledger.calls(tags={"experiment": "race-1"})
    assert set(calls["tags"].map(lambda t: t["race"])) == {"cost_per_success@0.95"}
    tagged = calls[calls["tags"].map(lambda t: "stopped" in t)]
    assert sorted((t["variant"], t["model"], t["input_id"], t["stopped"]) for t in tagged["tags"]) == sorted(
        (v, m, re.search(r"\((q\d+)\)", s).group(1), s) for (v, m), s in stops.items()
    )
    assert full.race is None and full.saved == 0 and full.table["stopped"].isna().all()


def test_experiment_rebuilds_the_race_from_the_ledger(oai, ledger):
    live = compare(VARIANTS, MODELS, QUESTIONS, scorer="exact", client=oai, ledger=ledger, max_tokens=4,
                   concurrency=4, name="race-1", adaptive=True, progress=False)
    again = experiment("race-1", ledger=ledger)
    cols = ["n", "success_rate", "total_cost", "cost_per_success", "stopped"]
    assert (live.table.set_index(["variant", "model"]).sort_index()[cols]
            .equals(again.table.set_index(["variant", "model"]).sort_index()[cols]))
    assert again.race.by == "cost_per_success" and again.race.confidence == 0.95 and again.race.units == 40
    assert again.saved == live.saved and again.race_verdict() == live.race_verdict()
    assert again.best()[["variant", "model"]].tolist() == ["right", "gpt-4.1-mini"]


def test_a_clear_winner_on_success_rate_and_the_charts_grey_the_stopped_cells(oai, ledger):
    result = compare(VARIANTS, ["gpt-4.1-mini"], QUESTIONS, scorer="exact", client=oai, ledger=ledger,
                     max_tokens=4, concurrency=3, name="race-rate", adaptive=True, by="success_rate",
                     progress=False)
    table = result.table.set_index("variant")
    assert table["n"].to_dict() == {"right": 40, "maybe": 22, "never": 10}
    assert table.loc["never", "stopped"] == (
        "after input 10 of 40 (q4): dominated by ('right', 'gpt-4.1-mini') on success_rate at 95%")
    assert result.race_verdict().endswith("winner: right · gpt-4.1-mini")
    assert result.best("success_rate")["variant"] == "right"
    html = result._repr_html_()
    assert html.count('<tr class="llmcost-stopped" style="color:#999">') == 2
    chart = result.cost_per_success_chart().to_dict()
    data = {d["cell"]: d for d in next(iter(chart["datasets"].values()))}
    assert {cell: d["live"] for cell, d in data.items()} == {
        "right · gpt-4.1-mini": True, "maybe · gpt-4.1-mini": False, "never · gpt-4.1-mini": False}
    assert data["never · gpt-4.1-mini"]["label"] == "no success (stopped after 10)"
    assert chart["layer"][0]["encoding"]["color"]["value"] == "#b8b8b8"  # grey unless live
    latency = result.latency_chart().to_dict()
    live = {d["cell"]: d["live"] for d in next(iter(latency["datasets"].values()))}
    assert live == {
        "right · gpt-4.1-mini": True, "maybe · gpt-4.1-mini": False, "never · gpt-4.1-mini": False}
    assert latency["layer"][1]["encoding"]["color"]["value"] == "#b8b8b8"
    race = next(iter(result.race_chart().to_dict()["datasets"].values()))
    assert [(d["cell"], d["n"], d["label"]) for d in race] == [
        ("right · gpt-4.1-mini", 40, "40 · ran every input"),
        ("maybe · gpt-4.1-mini", 22, "22 · stopped: dominated by ('right', 'gpt-4.1-mini')"),
        ("never · gpt-4.1-mini", 10, "10 · stopped: dominated by ('right', 'gpt-4.1-mini')"),
    ]
    explorer = result.explore()
    explorer.select(chart="race")
    buttons = explorer.widget().children[4].children
    assert [(b.description, b.style.text_color) for b in buttons] == [
        ("right · gpt-4.1-mini", None), ("maybe · gpt-4.1-mini (stopped)", "#999999"),
        ("never · gpt-4.1-mini (stopped)", "#999999")]
    with pytest.raises(ValueError, match="a full grid has no race"):
        compare(VARIANTS, ["gpt-4.1-mini"], QUESTIONS[:2], client=oai, ledger=ledger,
                progress=False).race_chart()


def test_no_clear_winner_says_so_and_spends_what_the_full_grid_does(oai, ledger):
    twins = {"right": VARIANTS["right"], "twin": "Right: {question} "}  # the same calls, the same cost
    grid = dict(scorer="exact", client=oai, ledger=ledger, max_tokens=4, progress=False)
    full = compare(twins, ["gpt-4.1-mini"], QUESTIONS, name="twins-full", **grid)
    race = compare(twins, ["gpt-4.1-mini"], QUESTIONS, name="twins", adaptive=True, **grid)
    want = 2 * sum(call_cost("right", "gpt-4.1-mini", n) for n in range(40))
    assert race.total_cost == full.total_cost == want
    assert race.saved == 0 and race.live_cells == [("right", "gpt-4.1-mini"), ("twin", "gpt-4.1-mini")]
    assert "no clear winner at 95%: 2 cells still in the race" in race.summary()
    assert race.best()["variant"] == full.best()["variant"] == "right"  # a tie: the first of the cheapest


def test_an_llm_judge_counts_toward_the_cost_and_the_saving(oai, ledger):
    result = compare({"right": VARIANTS["right"], "never": VARIANTS["never"]}, ["gpt-4.1-mini"], QUESTIONS,
                     scorer=llm_judge("gpt-4.1-mini"), client=oai, ledger=ledger, max_tokens=4,
                     name="judged", adaptive=True, progress=False)
    table = result.table.set_index("variant")
    assert table["n"].to_dict() == {"right": 40, "never": 18}
    never = result.rows[result.rows["variant"] == "never"]
    spent = sum(never["cost"], Decimal(0)) + sum(never["judge_cost"], Decimal(0))
    assert sum(never["judge_cost"], Decimal(0)) > 0
    assert result.saved == (spent * 22 / 18).quantize(PICO)
    assert result.total_cost == ledger.total_cost(tags={"experiment": "judged"})
    judge_tagged = ledger.calls(tags={"experiment": "judged", "role": "judge", "variant": "never"})
    assert judge_tagged["tags"].map(lambda t: "stopped" in t).sum() == 1  # the judge's call of its last input


def test_the_budget_is_checked_against_the_full_grid(oai, fake, ledger):
    with pytest.raises(GridOverBudget, match=r"adaptive grid's worst case: the full grid, no cell stopped"):
        compare(VARIANTS, MODELS, QUESTIONS, client=oai, ledger=ledger, max_tokens=4, budget="0.001",
                adaptive=True, progress=False)
    assert fake.request_count == 0
    # calls dearer than their worst case (hidden reasoning tokens): the budget stops the race mid-way, and
    # the cells' cost bounds no longer hold, so no cell is stopped on cost
    fake.reasoning_tokens = 50
    result = compare(VARIANTS, MODELS, QUESTIONS, scorer="exact", client=oai, ledger=ledger, max_tokens=4,
                     concurrency=2, budget="0.01", name="over", adaptive=True, progress=False)
    assert result.stopped == "budget" and result.race.stops == {}
    assert result.race_verdict().endswith("the race did not finish (budget): no verdict")
    assert len(result.rows) + len(result.skipped) == 6 * 40
    assert result.total_cost == ledger.total_cost(tags={"experiment": "over"})


def test_an_interrupt_stops_the_race_cleanly(fake, ledger):
    lock, count = threading.Lock(), [0]

    def answer(body, model):
        with lock:
            count[0] += 1
            if count[0] == 30:
                _thread.interrupt_main()  # what Jupyter's stop button does
        return reply(body, model)

    fake.reply, fake.latency = answer, 0.01
    result = compare(VARIANTS, MODELS, QUESTIONS, scorer="exact", client=openai.OpenAI(
        base_url=fake.openai_base_url, api_key="k"), ledger=ledger, max_tokens=4, concurrency=4, name="int",
        adaptive=True, progress=False)
    assert result.stopped == "interrupted"
    not_run = sum(result.race.units - result.table.set_index(["variant", "model"]).loc[c, "n"]
                  for c in result.race.stops)
    assert len(result.rows) + len(result.skipped) + not_run == 6 * 40
    assert ledger.total_cost(tags={"experiment": "int"}) == result.total_cost


def test_transient_errors_are_retried_in_a_race(oai, fake, ledger):
    fake.fail_next(status=429, times=2)  # the first two requests of the first round: retried, then answered
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="k", max_retries=0)  # ours, not the SDK's
    result = compare(VARIANTS, MODELS, QUESTIONS, scorer="exact", client=client, ledger=ledger, max_tokens=4,
                     concurrency=4, name="race-1", adaptive=True, progress=False, retry_delay=0)
    assert result.rows["attempts"].sum() == len(result.rows) + 2 and set(result.rows["status"]) == {"ok"}
    assert result.table["n"].tolist() == [12, 40, 10, 34, 10, 14]  # unbilled retries change nothing
    calls = ledger.calls(tags={"experiment": "race-1"})
    assert (calls["status"] == "error").sum() == 2 and result.total_cost == Decimal("0.0014496")


def test_repeats_are_raced_as_inputs_of_their_own(oai, ledger):
    two = {"right": VARIANTS["right"], "never": VARIANTS["never"]}
    result = compare(two, ["gpt-4.1-mini"], QUESTIONS[:10], scorer="exact", client=oai, ledger=ledger,
                     max_tokens=4, repeats=3, name="repeats", adaptive=True, progress=False)
    stop = result.table.set_index("variant").loc["never", "stopped"]
    # the unit is an (input, repeat) pair: "q4 #0" is q4's first repeat
    assert stop == ("after input 18 of 30 (q4 #0): dominated by ('right', 'gpt-4.1-mini') on "
                    "cost_per_success at 95%")
    assert result.race.units == 30 and result.table["n"].tolist() == [30, 18]
    assert experiment("repeats", ledger=ledger).race.units == 30


def test_acompare_races_too(oai, ledger):
    import asyncio

    result = asyncio.run(acompare(VARIANTS, MODELS, QUESTIONS, scorer="exact", client=oai, ledger=ledger,
                                  max_tokens=4, concurrency=4, name="race-1", adaptive=True, progress=False))
    assert result.table["n"].tolist() == [12, 40, 10, 34, 10, 14]  # as compare() with the same name


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"by": "p50_latency_ms"}, ValueError, "race on one of cost_per_success, mean_cost"),
        ({"confidence": 1.5}, ValueError, "confidence must be between 0 and 1"),
        ({"min_inputs": 0}, ValueError, "min_inputs must be a positive int"),
        ({"adaptive": "yes"}, TypeError, "adaptive must be True or False"),
        ({"by": "mean_score"}, ValueError, "by='mean_score' needs a scorer"),
    ],
)
def test_bad_race_options_fail_before_anything_is_sent(oai, fake, ledger, kwargs, error, message):
    with pytest.raises(error, match=message):
        compare(VARIANTS, MODELS, QUESTIONS, client=oai, ledger=ledger, progress=False,
                **{"adaptive": True, **kwargs})
    assert fake.request_count == 0


# -- the statistics ------------------------------------------------------------------------------------------
def test_mean_bound_exact_values_and_the_end_of_the_population():
    bound = MeanBound(20, 0.05, discrete=True)
    for _ in range(10):
        bound.update(1.0)
    assert bound.interval() == (0.75, 1.0)  # certain: at least 10/20; betting: at least 15/20
    for _ in range(10):
        bound.update(0.0)
    assert bound.interval() == (0.5, 0.5)  # the whole population seen: its mean exactly
    with pytest.raises(ValueError, match="all 20 values were already seen"):
        bound.update(0.0)
    with pytest.raises(ValueError, match=r"values in \[0, 1\], got 1.5"):
        MeanBound(5, 0.05).update(1.5)
    with pytest.raises(ValueError, match="alpha must be between 0 and 1"):
        MeanBound(5, 1.0)
    constant = MeanBound(100, 0.05)
    widths = []
    for _ in range(60):
        constant.update(0.7)
        low, high = constant.interval()
        assert low <= 0.7 <= high
        widths.append(high - low)
    assert widths[9] < 0.6 and widths[59] < 0.15 and widths == sorted(widths, reverse=True)  # narrows


@pytest.mark.parametrize("discrete", [False, True])
def test_mean_bound_covers_the_mean_at_every_step_at_least_as_often_as_promised(discrete):
    """300 random orders of random populations: the mean leaves the interval (at any step) in at most
    alpha = 10% of them."""
    rng = np.random.default_rng(1)
    misses = 0
    for _ in range(300):
        population = (rng.random(50) < 0.3).astype(float) if discrete else rng.random(50) ** 3
        mean, bound = float(population.mean()), MeanBound(50, 0.1, discrete=discrete)
        for value in rng.permutation(population):
            bound.update(float(value))
            low, high = bound.interval()
            if not low - 1e-9 <= mean <= high + 1e-9:
                misses += 1
                break
    assert misses / 300 <= 0.1
    print(f"missed in {misses / 300:.1%} of orders (allowed: 10%)")


def test_race_rule_on_success_rate():
    cells = [("A", "m"), ("B", "m"), ("C", "m")]
    race = Race(cells, 40, by="success_rate", min_inputs=10)
    decisions = []
    for i in range(40):
        race.observe(cells[0], success=True, cost=0.0)
        for cell, success in ((cells[1], False), (cells[2], i % 4 != 0)):  # never; 75% of the time
            if cell in race.live:
                race.observe(cell, success=success, cost=0.0)
        decisions += [(i + 1, stop) for stop in race.decide(f"q{i}")]
    assert decisions == [
        (10, RaceStop(("B", "m"), 10, 40, ("A", "m"), "success_rate", 0.95, "q9")),
        (25, RaceStop(("C", "m"), 25, 40, ("A", "m"), "success_rate", 0.95, "q24")),  # 19/25 against 25/25
    ]
    assert race.live == [("A", "m")]
    # each cell's error is (1 - confidence) / 3: the bound of a MeanBound at that alpha
    reference = MeanBound(40, 0.05 / 3, discrete=True)
    for _ in range(40):
        reference.update(1.0)
    assert race.interval(("A", "m")) == reference.interval() == (1.0, 1.0)
    again = Race(cells[:2], 40, by="success_rate")
    for _ in range(9):
        again.observe(cells[0], success=True, cost=0.0)
        again.observe(cells[1], success=False, cost=0.0)
        assert again.decide() == []  # never before min_inputs
    again.observe(("A", "m"), success=True, cost=0.0)
    with pytest.raises(ValueError, match=r"different numbers of inputs: \[9, 10\]"):
        again.decide()


def test_race_cost_per_success_is_the_ratio_of_the_bounds_of_its_parts():
    cells = [("cheap", "m"), ("dear", "m")]
    race = Race(cells, 50, cost_bounds={("cheap", "m"): 2.0, ("dear", "m"): 10.0})
    cost, success = MeanBound(50, 0.025 / 2), MeanBound(50, 0.025 / 2, discrete=True)
    stopped_after = None
    for i in range(30):
        race.observe(("cheap", "m"), success=i % 4 != 0, cost=1.0)
        if stopped_after is None:
            race.observe(("dear", "m"), success=True, cost=6.0)
        cost.update(0.5)
        success.update(1.0 if i % 4 != 0 else 0.0)
        (c_low, c_high), (s_low, s_high) = cost.interval(), success.interval()
        want = (c_low * 2 / s_high, c_high * 2 / s_low if s_low else math.inf)
        assert race.interval(("cheap", "m")) == want
        if race.decide():
            stopped_after = i + 1
    assert stopped_after == 15 and race.live == [("cheap", "m")]  # $1.33 a success against $6
    fresh = Race(cells, 50)
    assert fresh.round_size(16) == 10  # min_inputs first
    for _ in range(10):
        fresh.observe(cells[0], success=True, cost=0.0)
        fresh.observe(cells[1], success=True, cost=0.0)
    assert fresh.round_size(16) == 8  # then enough inputs to keep 16 calls busy on 2 live cells


def test_a_call_dearer_than_its_bound_or_an_unpriced_model_voids_that_cells_cost_bound():
    cells = [("a", "m"), ("b", "m"), ("free", "m")]
    race = Race(cells, 30, by="mean_cost", cost_bounds={("a", "m"): 1.0, ("b", "m"): None, ("free", "m"): 0})
    for _ in range(15):
        race.observe(("a", "m"), success=True, cost=2.0)  # over its bound
        race.observe(("b", "m"), success=True, cost=0.5)
        race.observe(("free", "m"), success=True, cost=0.0)
    assert race.interval(("a", "m")) == race.interval(("b", "m")) == (0.0, math.inf)
    assert race.interval(("free", "m")) == (0.0, 0.0)
    assert race.decide() == []  # a cell with no upper bound stops no one and is stopped by no one


def test_race_options_are_checked():
    assert set(RACE_METRICS) == {"cost_per_success", "mean_cost", "total_cost", "success_rate", "mean_score"}
    with pytest.raises(ValueError, match="got by='p95_latency_ms'"):
        Race([("a", "m")], 10, by="p95_latency_ms")
    with pytest.raises(ValueError, match="a race needs distinct cells"):
        Race([("a", "m"), ("a", "m")], 10)


# -- simulation: synthetic grids with known truth ------------------------------------------------------------
def _best(values: dict, mean_cost: dict, lower: bool):
    cells = [c for c, v in values.items() if v is not None]
    return min(cells, key=lambda c: (values[c] if lower else -values[c], mean_cost[c])) if cells else None


def _simulate(seed: int, by: str, n_inputs: int = 60, concurrency: int = 16, naive: bool = False
              ) -> tuple[bool, float]:
    """One synthetic grid (3 variants x 2 models, success rates from a small set so ties happen, costs from
    the input's length plus a random output, inputs either shared in difficulty across cells or not),
    its full grid's winner, and a race over it as the runner runs one: same rounds, same rule. ``naive``:
    stop instead every cell whose figure so far is worse than the best one's (no bound)."""
    rng = np.random.default_rng(seed)
    prices = {"small": 1.0, "big": float(rng.choice([2.0, 5.0]))}
    cells = [(v, m) for v in ("v0", "v1", "v2") for m in prices]
    rates = {c: float(rng.choice([0.0, 0.3, 0.6, 0.8, 0.9, 1.0])) for c in cells}
    lengths, difficulty = rng.integers(20, 201, n_inputs), rng.random(n_inputs)
    success = {c: (difficulty if seed % 2 else rng.random(n_inputs)) < rates[c] for c in cells}
    cost = {c: prices[c[1]] * (lengths + rng.integers(1, 21, n_inputs)) * 1e-6 for c in cells}
    full, mean_cost = {}, {c: float(cost[c].mean()) for c in cells}
    for c in cells:
        successes = int(success[c].sum())
        full[c] = {
            "cost_per_success": float(cost[c].sum()) / successes if successes else None,
            "mean_cost": mean_cost[c],
            "success_rate": successes / n_inputs,
        }[by]
    race = Race(cells, n_inputs, by=by, cost_bounds={c: prices[c[1]] * 220e-6 for c in cells})
    order, position, spent = rng.permutation(n_inputs), 0, 0.0
    while position < n_inputs:
        chunk = order[position : position + race.round_size(concurrency)]
        for i in chunk:
            for c in race.live:
                race.observe(c, success=bool(success[c][i]), cost=float(cost[c][i]))
                spent += float(cost[c][i])
        position += len(chunk)
        if not naive:
            race.decide()
        elif race.min_inputs <= position < n_inputs:  # (cost per success only)
            seen = order[:position]
            so_far = {c: float(cost[c][seen].sum()) / max(1, int(success[c][seen].sum())) for c in race.live}
            so_far.update({c: math.inf for c in race.live if not success[c][seen].any()})
            leader = min(race.live, key=so_far.get)
            race.stops.update({c: None for c in race.live if so_far[c] > so_far[leader]})
    found = _best({c: full[c] for c in race.live}, mean_cost, RACE_METRICS[by])
    return found == _best(full, mean_cost, RACE_METRICS[by]), spent / sum(float(cost[c].sum()) for c in cells)


@pytest.mark.slow  # about 15 s
@pytest.mark.parametrize(("by", "runs"), [("cost_per_success", 200), ("success_rate", 60), ("mean_cost", 60)])
def test_simulated_races_pick_the_full_grids_winner(by, runs):
    outcomes = [_simulate(seed, by) for seed in range(runs)]
    matched = sum(same for same, _ in outcomes) / runs
    share = sum(share for _, share in outcomes) / runs
    print(f"{by}: the race picked the full grid's winner in {matched:.1%} of {runs} grids, "
          f"spending {share:.1%} of the full grid's cost on average")
    assert matched >= 0.95
    assert share < 1
    if by == "cost_per_success":  # the check has teeth: stopping on the figures so far (no bound) fails
        naive = [_simulate(seed, by, naive=True) for seed in range(runs)]
        naive_matched = sum(same for same, _ in naive) / runs
        print(f"without a bound (stop whatever is behind so far): {naive_matched:.1%} of the grids, "
              f"{sum(share for _, share in naive) / runs:.1%} of the cost")
        assert naive_matched < 0.95


def test_a_large_population_uses_the_fine_grid_and_still_covers_its_mean():
    bound = MeanBound(10_000, 0.05, discrete=True)  # 0/1 values, but too many for a k/N grid
    for i in range(2000):
        bound.update(1.0 if i % 5 else 0.0)
    low, high = bound.interval()
    assert low <= 0.8 <= high and high - low < 0.1
