"""llmcost_nb.workbench on the fake provider, through its seams and its widgets: the estimate (exact, cached,
nothing sent), field names flagged as you type, Run disabled over the budget, runs as tagged experiments with
exact costs, the history and two runs side by side, Stop, the kernel-free fallbacks, no secret in the widget
state; and notebooks/workbench.ipynb as committed (tests/test_notebook_examples.py runs it under nbval)."""

from __future__ import annotations

import json
import re
import time
from decimal import Decimal
from pathlib import Path

import nbformat
import openai
import pytest

import llmcost_nb
from llmcost_nb.errors import GridOverBudget
from llmcost_nb.experiments.compare import estimate_grid
from llmcost_nb.notebook.workbench import DEBOUNCE_S, Workbench, workbench

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "workbench.ipynb"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
SECRET = "sk-test-workbench-SECRET-0042"

M = Decimal(10) ** 6
PRICES = {"gpt-4.1": (2, 8), "gpt-4.1-mini": (Decimal("0.4"), Decimal("1.6"))}  # USD per million in / out
MODELS = list(PRICES)
QUESTIONS = [
    {"id": f"q{n}", "question": f"what is {n} plus {n}", "expected": str(2 * n)} for n in range(1, 7)
]
# the fake provider counts a word as a token, +3 per message: "Q: what is n plus n" is 9 input tokens
FAKE_INPUT = {"Q: {question}": 9, "Question: {question}": 9, "Reply with the number only. {question}": 13}


def reply(body: dict, model: str) -> str:
    """gpt-4.1 answers every question right; gpt-4.1-mini only those with an even n ("no idea" otherwise)."""
    n = int(re.search(r"what is (\d+) plus", json.dumps(body)).group(1))
    return str(2 * n) if model == "gpt-4.1" or n % 2 == 0 else "no idea"


def cost(model: str, input_tokens: int, output_tokens: int) -> Decimal:
    inp, out = PRICES[model]
    return (Decimal(inp) * input_tokens + Decimal(out) * output_tokens) / M


def run_cost(texts: list[str], models: list[str], ns: list[int]) -> Decimal:
    """What the fake provider bills for these variants × models × questions (1 output token when right)."""
    return sum(
        (cost(m, FAKE_INPUT[t], 1 if m == "gpt-4.1" or n % 2 == 0 else 2) for t in texts for m in models
         for n in ns),
        Decimal(0),
    )


@pytest.fixture(autouse=True)
def prices():
    for model, (input_mtok, output_mtok) in PRICES.items():
        llmcost_nb.get_session().ledger.set_price(model, input_mtok=str(input_mtok),
                                                  output_mtok=str(output_mtok))


@pytest.fixture
def client(fake):
    fake.reply = reply
    return openai.OpenAI(base_url=fake.openai_base_url, api_key=SECRET)


@pytest.fixture
def wb(client) -> Workbench:
    return workbench(QUESTIONS, models=MODELS, client=client, scorer="exact", budget="0.50",
                     variants={"terse": "Q: {question}"}, name="quiz", max_tokens=16)


def ledger():
    return llmcost_nb.get_session().ledger


# -- the estimate ----------------------------------------------------------------------------------------
def test_the_estimate_is_the_grids_worst_case_exactly_and_sends_nothing(wb, fake):
    # tiktoken (o200k_base): "Q: what is n plus n" 9 tokens, "user" 1, + 3 per message + 3 priming = 16
    worst = 6 * (cost("gpt-4.1", 16, 16) + cost("gpt-4.1-mini", 16, 16))
    assert wb.estimate == worst == Decimal("0.001152")
    assert wb.estimate == estimate_grid({"terse": "Q: {question}"}, MODELS, QUESTIONS, max_tokens=16).max_cost
    assert wb.quote.label() == "≤ $0.001152 · 12 calls · 192 input tokens"
    widget = wb.widget()
    assert "≤ $0.001152 · 12 calls · 192 input tokens" in wb._estimate.value and not wb._run.disabled
    assert widget is wb.widget()
    wb.set_variant("steps", [{"role": "system", "content": "Reply with the number only."},
                             {"role": "user", "content": "{question}"}])
    both = {"terse": "Q: {question}", "steps": json.loads(wb.variants["steps"])}
    assert wb.estimate == estimate_grid(both, MODELS, QUESTIONS, max_tokens=16).max_cost
    assert wb.estimate == Decimal("0.0024192")
    assert wb._estimate.value.count("24 calls") == 1  # the seams refresh the label at once
    wb.set_grid(models=["gpt-4.1-mini"], inputs=3, repeats=2, max_tokens=8)
    assert wb.estimate == estimate_grid(both, ["gpt-4.1-mini"], wb.bench.sample(), repeats=2,
                                        max_tokens=8).max_cost
    assert wb.quote.estimate.calls == 12 and wb._inputs.value == 3 and not wb._models["gpt-4.1"].value
    assert fake.request_count == 0


def test_an_edit_tokenizes_only_the_edited_variant(client):
    questions = [{"id": i, "question": f"question number {i}"} for i in range(200)]
    wb = workbench(questions, models=MODELS, client=client, budget="1",
                   variants={"a": "A: {question}", "b": "B: {question}", "c": "C: {question}"})
    counter = wb.bench.counter
    assert counter.tokenized == 600  # 200 inputs × 3 variants; both models use o200k_base: counted once
    wb.set_variant("b", "B, briefly: {question}")
    assert counter.tokenized == 800
    wb.set_variant("b", "B: {question}")  # back to a text seen before: nothing to tokenize
    assert counter.tokenized == 800
    wb.set_grid(repeats=3, max_tokens=5)
    assert counter.tokenized == 800


def test_the_sample_is_the_same_every_run_and_a_larger_one_contains_it(client):
    wb = workbench(QUESTIONS, models=MODELS, client=client, sample=3, variants={"t": "{question}"})
    first = [q["id"] for q in wb.bench.sample()]
    assert len(first) == 3 and first == [q["id"] for q in wb.bench.sample()]
    again = workbench(QUESTIONS, models=MODELS, client=client, sample=3, variants={"t": "{question}"})
    assert [q["id"] for q in again.bench.sample()] == first
    wb.set_grid(inputs=5)
    assert set(first) < {q["id"] for q in wb.bench.sample()}
    with pytest.raises(ValueError, match=r"inputs must be between 1 and 6, got 7"):
        wb.set_grid(inputs=7)


# -- the editor ------------------------------------------------------------------------------------------
def test_an_unknown_field_is_flagged_as_you_type(wb, fake):
    wb.widget()
    area, flag = wb._rows["terse"][1], wb._rows["terse"][2]
    area.value = "Q: {qestion}"  # a keystroke: the flag at once
    assert "unknown field {qestion}: the inputs have id, question, expected" in flag.value
    assert wb.variants["terse"] == "Q: {qestion}"
    time.sleep(DEBOUNCE_S * 4)  # the estimate after the debounce
    assert "cannot run: terse: unknown field {qestion}" in wb._estimate.value and wb._run.disabled
    with pytest.raises(ValueError, match=r"unknown field \{qestion\}"):
        _ = wb.estimate
    with pytest.raises(ValueError, match=r"the grid cannot run"):
        wb.run()
    area.value = "Q: {question}"
    assert "uses {question}" in flag.value and "unknown" not in flag.value
    assert "≤ $0.001152" in wb.refresh_estimate().label() and not wb._run.disabled
    # chat messages as JSON: a field in any message is checked; broken JSON and a lone brace are named
    check = wb.set_variant("chat", '[{"role": "system", "content": "Be brief."}, '
                                   '{"role": "user", "content": "{question} ({level})"}]')
    assert check.fields == ("question", "level") and check.unknown == ("level",)
    assert "unknown field {level}" in wb._rows["chat"][2].value
    assert "not valid JSON" in wb.set_variant("chat", '[{"role": "user", "content": }]').error
    assert wb.set_variant("chat", "Q: {question").error.startswith("a brace { or } is not part of a {field}")
    assert "positional field" in wb.set_variant("chat", "Q: {}").error
    assert fake.request_count == 0


def test_add_duplicate_and_remove_variants(wb):
    wb.widget()
    assert wb.duplicate_variant("terse") == "terse 2"
    assert wb.variants == {"terse": "Q: {question}", "terse 2": "Q: {question}"}
    assert wb.estimate == 2 * Decimal("0.001152") and wb.quote.estimate.calls == 24  # the copy runs too
    wb._new_name.value = "guided"
    wb._add_variant()  # the "add variant" button
    assert wb.variants["guided"] == "{question}" and list(wb._rows) == ["terse", "terse 2", "guided"]
    wb.remove_variant("terse 2")
    assert list(wb.variants) == ["terse", "guided"]
    assert [row.children[1].value for row in wb._editors.children] == ["Q: {question}", "{question}"]
    with pytest.raises(KeyError, match=r"no variant 'nope'; variants: terse, guided"):
        wb.remove_variant("nope")
    assert wb.quote.estimate.calls == 24


def test_over_the_budget_the_label_is_red_and_run_is_disabled(client, fake):
    wb = workbench(QUESTIONS, models=MODELS, client=client, budget="0.001", max_tokens=16,
                   variants={"terse": "Q: {question}"})
    wb.widget()
    assert wb.quote.over_budget and wb._run.disabled
    assert "≤ $0.001152 · 12 calls · 192 input tokens · over the budget of $0.001000" in wb._estimate.value
    assert "color:#c62828" in wb._estimate.value
    with pytest.raises(GridOverBudget, match="Nothing was sent"):
        wb.run()
    wb._max_tokens.value = 8  # the grid control, as a person would: the estimate follows the debounce
    time.sleep(DEBOUNCE_S * 4)
    assert wb.estimate == 6 * (cost("gpt-4.1", 16, 8) + cost("gpt-4.1-mini", 16, 8)) == Decimal("0.0006912")
    assert not wb._run.disabled and "color:inherit" in wb._estimate.value
    assert fake.request_count == 0 and wb.history.empty


# -- runs ------------------------------------------------------------------------------------------------
def test_runs_are_tagged_experiments_with_exact_costs_and_a_history(wb):
    first = wb.run(progress=False)
    assert first.name == "quiz/run-1"
    assert first.total_cost == run_cost(["Q: {question}"], MODELS, list(range(1, 7))) == Decimal("0.000192")
    assert ledger().total_cost(tags={"workbench": "quiz", "run": "1"}) == first.total_cost
    assert ledger().count(tags={"workbench": "quiz", "run": "1", "experiment": "quiz/run-1"}) == 12
    wb.set_variant("terse", "Question: {question}")
    wb.set_variant("hint", "Reply with the number only. {question}")
    wb.set_grid(models=["gpt-4.1-mini"], inputs=4)
    second = wb.run(progress=False)
    ns = [int(q["id"][1:]) for q in wb.bench.sample()]
    assert second.total_cost == run_cost(["Question: {question}", "Reply with the number only. {question}"],
                                         ["gpt-4.1-mini"], ns)
    assert ledger().total_cost(tags={"workbench": "quiz", "run": "2"}) == second.total_cost
    assert ledger().count(tags={"workbench": "quiz"}) == 12 + 8

    history = wb.history
    assert list(history["run"]) == [1, 2] and list(history["experiment"]) == ["quiz/run-1", "quiz/run-2"]
    assert list(history["cost"]) == [first.total_cost, second.total_cost]
    assert list(history["estimate"]) == [Decimal("0.001152"), wb.bench.runs[1].estimate]
    assert list(history["calls"]) == [12, 8] and list(history["inputs"]) == [6, 4]
    assert list(history["models"]) == ["gpt-4.1, gpt-4.1-mini", "gpt-4.1-mini"]
    assert list(history["changes"]) == ["first run", "terse edited; hint added"]
    # gpt-4.1-mini is right on even n only, at a fifth of the price: it wins on cost per success
    assert history.loc[0, "winner"] == "terse · gpt-4.1-mini" and history.loc[0, "success_rate"] == 0.5
    evens = sum(1 for n in ns if n % 2 == 0) / len(ns)
    assert history.loc[1, "success_rate"] == evens and history.loc[1, "stopped"] is None
    assert "-Q: {question}\n+Question: {question}" in wb.bench.runs[1].diff
    # the widget shows the same history; its results pane shows the last run's explorer
    wb.widget()
    assert "<td>2</td>" in wb._history.value and "terse edited; hint added" in wb._history.value
    assert "run 2: " in wb._results.children[0].value


def test_two_runs_side_by_side(wb):
    wb.run(progress=False)
    wb.set_variant("terse", "Question: {question}")
    wb.run(progress=False)
    both = wb.compare_runs(1, 2)
    table = both.table.set_index(["variant", "model"])
    assert table.loc[("terse", "gpt-4.1"), "total_cost_run1"] == 6 * cost("gpt-4.1", 9, 1)
    assert table.loc[("terse", "gpt-4.1-mini"), "success_rate_run2"] == 0.5
    assert both.diff.splitlines()[-2:] == ["-Q: {question}", "+Question: {question}"]
    wb.widget()  # the "Compare runs" tab picks the last two runs
    assert (wb._pick_a.value, wb._pick_b.value) == (1, 2)
    assert "llmcost-run-comparison" in wb._comparison.value
    assert "+Question: {question}" in wb._comparison.value
    with pytest.raises(KeyError, match=r"no run 3; runs: 1, 2"):
        wb.compare_runs(1, 3)


def test_the_run_button_runs_in_the_background_and_stop_keeps_what_finished(client, fake):
    fake.latency = 0.05
    wb = workbench(QUESTIONS * 1, models=MODELS, client=client, scorer="exact", budget="0.50",
                   variants={"terse": "Q: {question}", "again": "Question: {question}"}, name="slow",
                   concurrency=2, max_tokens=16)
    wb.widget()
    wb._run.click()
    assert wb.running and wb._run.disabled and not wb._stop_button.disabled
    deadline = time.monotonic() + 30
    while wb.progress[0] < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    wb._stop_button.click()
    result = wb.wait(30)
    assert result is not None and result.stopped == "interrupted"
    assert 2 <= len(result.rows) < 24 and len(result.rows) + len(result.skipped) == 24
    assert result.total_cost == ledger().total_cost(tags={"workbench": "slow", "run": "1"}) > 0
    assert wb.history.loc[0, "stopped"] == "interrupted" and wb.history.loc[0, "calls"] == len(result.rows)
    assert not wb.running and not wb._run.disabled and wb._stop_button.disabled
    assert f"{len(result.rows)} / 24 calls" in wb._status.value
    fake.latency = 0
    assert len(wb.run(progress=False).rows) == 24  # the next run is whole again, as run 2
    assert list(wb.history["run"]) == [1, 2]


def test_a_failed_run_shows_why_and_adds_no_history(fake):
    wb = workbench(QUESTIONS, models=MODELS, client=object(), variants={"terse": "Q: {question}"})
    wb.widget()
    wb._run.click()
    wb.wait(30)
    assert wb.error.startswith("TypeError: client must be") and "client must be" in wb._status.value
    assert wb.history.empty and wb.result is None and not wb.running and fake.request_count == 0


def test_a_notebook_run_again_numbers_its_runs_after_those_in_the_ledger(client):
    workbench(QUESTIONS[:2], models=MODELS, client=client, name="again", variants={"t": "{question}"}).run(
        progress=False)
    rerun = workbench(QUESTIONS[:2], models=MODELS, client=client, name="again", variants={"t": "{question}"})
    assert rerun.run(progress=False).name == "again/run-2"


def test_adaptive_is_passed_to_compare(client):
    """Passes once compare() takes adaptive=True (issue 18); until then compare() raises TypeError."""
    questions = [{"id": f"q{n}", "question": f"what is {n} plus {n}", "expected": str(2 * n)}
                 for n in range(1, 41)]
    wb = workbench(questions, models=MODELS, client=client, scorer="exact", budget="0.50",
                   variants={"terse": "Q: {question}"}, name="race", max_tokens=16)
    wb.widget()
    wb._adaptive.value = True  # the checkbox
    assert wb.bench.grid.adaptive
    result = wb.run(progress=False)
    # gpt-4.1-mini is half right at a fifth of the price: gpt-4.1 is raced out before the 40th input
    table = result.table.set_index(["variant", "model"])
    assert "dominated by ('terse', 'gpt-4.1-mini')" in table.loc[("terse", "gpt-4.1"), "stopped"]
    assert table.loc[("terse", "gpt-4.1"), "n"] < 40 and table.loc[("terse", "gpt-4.1-mini"), "n"] == 40
    history = wb.history
    assert bool(history.loc[0, "adaptive"]) and history.loc[0, "winner"] == "terse · gpt-4.1-mini"
    assert history.loc[0, "calls"] == len(result.rows) < 80
    assert result.total_cost == ledger().total_cost(tags={"workbench": "race", "run": "1"})


# -- honest numbers (issue 16): unknown is never $0, estimated is never exact -----------------------------
def test_a_model_without_a_price_gives_no_dollar_estimate_and_its_runs_count_it_unpriced(client, fake):
    wb = workbench(QUESTIONS, models=["gpt-4.1", "mystery-1"], client=client, scorer="exact", max_tokens=16,
                   variants={"terse": "Q: {question}"}, name="unknown")
    wb.widget()
    assert wb.quote.label() == "cost unknown for mystery-1 (no price) · 12 calls · 192 input tokens"
    assert wb.estimate is None and "$" not in wb._estimate.value
    grid = estimate_grid({"terse": "Q: {question}"}, ["gpt-4.1", "mystery-1"], QUESTIONS, max_tokens=16)
    assert str(grid).startswith("cost unknown for mystery-1 (no price) — 12 calls = 1 variants × 2 models")
    # no budget: compare() runs such a grid (its calls are unpriced), so Run is enabled
    assert wb.quote.runnable and not wb._run.disabled
    with pytest.warns(llmcost_nb.LlmcostWarning, match="no price known for model 'mystery-1'"):
        result = wb.run()  # the widget's own progress: its status line words the running cost
    assert result.total_cost == 6 * cost("gpt-4.1", 9, 1) == Decimal("0.000156")
    assert "12 / 12 calls · $0.000156 + 6 unpriced</span>" in wb._status.value
    history = wb.history
    assert history.loc[0, "cost"] == Decimal("0.000156") and history.loc[0, "estimate"] is None
    assert (history.loc[0, "unpriced"], history.loc[0, "estimated"]) == (6, 0)
    assert wb.bench.runs[0].headline().endswith(" · cost $0.000156 + 6 unpriced")
    assert ('<td style="white-space:nowrap">$0.000156 + 6 unpriced</td>'
            '<td style="white-space:nowrap">unknown</td>') in wb._history.value
    assert "cost $0.000156 + 6 unpriced · 12 calls · first run" in repr(wb)
    wb.set_variant("terse", "Question: {question}")
    wb.run(progress=False)  # (the warning about mystery-1 came once, in run 1)
    html = wb.compare_runs(1, 2)._repr_html_()  # each cell's total as format_total words it
    row = "\n      ".join
    assert row(["<td>mystery-1</td>", "<td>6</td>", "<td>50%</td>", "<td>6 unpriced</td>"]) in html
    assert row(["<td>gpt-4.1</td>", "<td>6</td>", "<td>100%</td>", "<td>$0.000156</td>"]) in html


def test_with_a_budget_a_grid_without_a_price_cannot_run_and_the_label_says_why(client, fake):
    wb = workbench(QUESTIONS, models=["gpt-4.1", "mystery-1"], client=client, budget="0.50", max_tokens=16,
                   variants={"terse": "Q: {question}"})
    wb.widget()
    assert wb.quote.label() == ("cost unknown for mystery-1 (no price) · 12 calls · 192 input tokens · "
                                "cannot be checked against the budget of $0.5000")
    assert wb._run.disabled and "color:#c62828" in wb._estimate.value
    with pytest.raises(GridOverBudget, match=r"cost unknown for mystery-1 .* Nothing was sent\. Set a price"):
        wb.run()
    assert fake.request_count == 0 and wb.history.empty


def test_a_run_with_estimated_tokens_says_so_in_the_history():
    from llmcost_nb import Call
    from llmcost_nb.experiments.result import from_ledger
    from llmcost_nb.experiments.workbench import Grid, RunRecord, history_frame, history_html, history_text

    def call(n: int, **kw) -> Call:
        tags = {"experiment": "est/run-1", "variant": "terse", "model": "gpt-4.1", "input_id": f"q{n}"}
        return Call(provider="openai", model="gpt-4.1", input_tokens=9, output_tokens=1, tags=tags, **kw)

    ledger().write_many([call(1, cost=Decimal("0.000026")),
                         call(2, cost=Decimal("0.000026"), usage_source="estimated", streamed=True),
                         call(3, cost=None, billed=True)])
    record = RunRecord(run=1, experiment="est/run-1", started="2026-12-06T08:00:00Z", variants={"terse": "Q"},
                       grid=Grid(("gpt-4.1",), 3), estimate=Decimal("0.0004"),
                       result=from_ledger("est/run-1", ledger()))
    assert record.cost == Decimal("0.000052") and (record.unpriced, record.estimated) == (1, 1)
    assert record.cost_text() == "≈$0.000052 (1 estimated) + 1 unpriced"
    frame = history_frame([record])
    assert frame.loc[0, ["cost", "unpriced", "estimated"]].tolist() == [Decimal("0.000052"), 1, 1]
    cell = '<td style="white-space:nowrap">≈$0.000052 (1 estimated) + 1 unpriced</td>'
    assert cell in history_html([record])
    assert " · cost ≈$0.000052 (1 estimated) + 1 unpriced · 3 calls · " in history_text([record])


# -- displays --------------------------------------------------------------------------------------------
def test_the_fallbacks_show_the_last_results_and_the_history(wb):
    wb.run(progress=False)
    wb.set_variant("terse", "Question: {question}")
    wb.run(progress=False)
    bundle = wb._repr_mimebundle_()
    assert WIDGET_VIEW in bundle and bundle[WIDGET_VIEW]["model_id"] == wb.widget().model_id
    html = bundle["text/html"]
    assert "<pre" in html and "Question: {question}" in html  # the variants' texts
    assert "llmcost-explorer" in html and "<svg" in html  # the last run's table and chart
    assert "llmcost-history" in html and "terse edited" in html and "-Q: {question}" in html
    assert "run 2: terse · gpt-4.1-mini won at 50% · cost $0.000192" in html
    text = bundle["text/plain"]
    assert text.splitlines()[0] == ("workbench quiz: 1 variants (terse); grid gpt-4.1, gpt-4.1-mini · "
                                    "6 inputs · 1 repeat · max_tokens 16")
    assert "history:\nrun 1: terse · gpt-4.1-mini won at 50% · cost $0.000192 · 12 calls · first run" in text


def test_no_secret_in_the_widget_state_or_the_fallbacks(wb):
    from ipywidgets.embed import embed_data

    wb.run(progress=False)
    wb.set_variant("terse", "Question: {question}")
    wb.run(progress=False)
    state = json.dumps(embed_data(views=[wb.widget()])["manager_state"])
    assert "Question: {question}" in state and "llmcost-history" in state  # the state is all there …
    bundle = wb._repr_mimebundle_()
    for text in (state, bundle["text/html"], bundle["text/plain"], wb.history.to_json(default_handler=str)):
        assert SECRET not in text and "api_key" not in text  # … but no key
    assert ledger().count(tags={"workbench": "quiz"}) == 24
    assert SECRET.encode() not in Path(ledger().path).read_bytes()


def test_the_public_name_is_lazy():
    assert llmcost_nb.workbench is workbench and "workbench" in llmcost_nb.__all__


# -- the committed notebook ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def notebook():
    return nbformat.read(NOTEBOOK, as_version=4)


def test_the_notebook_is_committed_with_the_last_results_in_its_fallbacks(notebook):
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), "commit the notebook executed, with its outputs"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    shown = next(o for c in code for o in c.outputs
                 if "llmcost-workbench" in o.get("data", {}).get("text/html", ""))
    state = notebook.metadata["widgets"][WIDGET_STATE]["state"]
    assert shown.data[WIDGET_VIEW]["model_id"] in state  # the widget renders from its saved state
    html = shown.data["text/html"]  # … its fallback shows the last run and the history (updated after runs)
    assert "llmcost-explorer" in html and "<svg" in html and "llmcost-history" in html
    assert "<td>2</td>" in html and "guided edited" in html
    checked = "".join(o.get("text", "") for c in code if c.source.startswith("# NBVAL_CHECK_OUTPUT")
                      for o in c.outputs if o.output_type == "stream")
    assert "requests sent so far: 0" in checked and "ledger total for workbench=quiz-bench:" in checked


def test_llmcost_share_renders_the_workbench(tmp_path):
    shared = llmcost_nb.share(NOTEBOOK, tmp_path / "workbench.html", execute=False)
    page = shared.path.read_text()
    # the page renders the widget from its saved state: the history, the last run's table, two runs compared
    assert shared.widget_views == 1
    assert page.count('<script type="application/vnd.jupyter.widget-view+json">') == 1
    assert "llmcost-history" in page and "llmcost-compare" in page and "llmcost-run-comparison" in page
    assert "run 2: guided" in page
