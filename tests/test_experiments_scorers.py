"""Scorers for llmcost_nb.compare, and the LLM judge whose calls are costed apart (tag role=judge)."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import openai
import pytest

from llmcost_nb.experiments.compare import compare, experiment
from llmcost_nb.experiments.scorers import (
    LLMJudge,
    contains,
    custom,
    exact_match,
    json_valid,
    llm_judge,
    numeric,
    regex,
    resolve_scorer,
)


@pytest.mark.parametrize(
    ("scorer", "output", "item", "score"),
    [
        (exact_match(), " Paris. ", {"expected": "paris"}, 1.0),
        (exact_match(), "Paris, France", {"expected": "paris"}, 0.0),
        (exact_match(case_sensitive=True), "paris", {"expected": "Paris"}, 0.0),
        (exact_match(), "Lyon", {"expected": ["Paris", "Lyon"]}, 1.0),
        (contains(), "The capital is Paris.", {"expected": "PARIS"}, 1.0),
        (contains(field="city"), "The capital is Paris.", {"city": "Lyon"}, 0.0),
        (regex(r"^\d{4}$"), "2026", {}, 1.0),
        (regex(field="pattern"), "order #A-17", {"pattern": r"#[A-Z]-\d+"}, 1.0),
        (regex(r"^\d+$"), "about 12", {}, 0.0),
        (json_valid(), '{"a": 1}', {}, 1.0),
        (json_valid(), '```json\n{"a": 1}\n```', {}, 1.0),
        (json_valid(required_keys=("a", "b")), '{"a": 1}', {}, 0.0),
        (json_valid(), "{a: 1}", {}, 0.0),
        (numeric(tolerance=0.01), "so it is 3.14159", {"expected": 3.14}, 1.0),
        (numeric(tolerance=0.001), "so it is 3.14159", {"expected": 3.14}, 0.0),
        (numeric(), "1,234 apples", {"expected": "1234"}, 1.0),
        (numeric(tolerance=0.1, relative=True), "105", {"expected": 100}, 1.0),
        (numeric(), "no number", {"expected": 1}, 0.0),
        (custom(lambda out, item: len(out) <= item["limit"]), "short", {"limit": 10}, 1.0),
        (custom(lambda out, item: None), "x", {}, None),
    ],
)
def test_builtin_scorers(scorer, output, item, score):
    assert scorer(output, item) == score


def test_scorer_errors_name_what_is_allowed():
    with pytest.raises(
        KeyError, match="the scorer reads the field 'expected', but the input has only answer"
    ):
        exact_match()("x", {"answer": "x"})
    with pytest.raises(ValueError, match="give exactly one of pattern= or field="):
        regex()
    with pytest.raises(
        ValueError, match="allowed names: contains, exact, exact_match, json, json_valid, numeric"
    ):
        resolve_scorer("bleu")
    with pytest.raises(TypeError, match="scorer must be a name, a callable"):
        resolve_scorer(3)
    assert resolve_scorer("exact").__name__ == "exact_match('expected')"


@pytest.mark.parametrize(
    ("reply", "score"),
    [("PASS", 1.0), ("fail.", 0.0), ("Yes", 1.0), ("8/10", 0.8), ("0.25", 0.25), ("hmm", None)],
)
def test_judge_replies_are_parsed(reply, score):
    assert LLMJudge.parse(reply) == score


def test_the_judge_is_costed_apart_from_the_candidates(fake, ledger):
    def reply(body, model):
        text = json.dumps(body)
        if "You grade answers" in text:  # the judge (gpt-4.1-mini) passes answers that contain a digit
            return "PASS" if re.search(r"Candidate answer: \d", body["messages"][0]["content"]) else "FAIL"
        return "4" if model == "gpt-4.1" else "four maybe"

    fake.reply = reply
    ledger.set_price("gpt-4.1-mini", input_mtok="0.4", output_mtok="1.6")  # the judge, at a price stated here
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="k")
    items = [{"id": "a", "question": "what is 2 plus 2", "expected": "4"}]
    result = compare(
        {"A": "{question}"},
        ["gpt-4.1", "gpt-4.1-nano"],
        items,
        scorer=llm_judge("gpt-4.1-mini"),
        client=client,
        name="judged",
        ledger=ledger,
        progress=False,
    )
    rows = result.rows.set_index("model")
    assert rows.loc["gpt-4.1", "score"] == 1.0 and rows.loc["gpt-4.1-nano", "score"] == 0.0
    judge_calls = ledger.calls(tags={"experiment": "judged", "role": "judge"})
    assert list(judge_calls["model"]) == ["gpt-4.1-mini", "gpt-4.1-mini"]
    # judge prompt: "You grade answers. Question: ... Reference answer: 4 Candidate answer: <output> ..."
    prompt_words = [
        len(LLMJudge("m").request(out, items[0])["messages"][0]["content"].split()) + 3
        for out in ("4", "four maybe")
    ]
    judge_cost = sum(Decimal("0.4") * w + Decimal("1.6") for w in prompt_words) / 10**6
    assert (
        result.judge_cost == judge_cost == ledger.total_cost(tags={"experiment": "judged", "role": "judge"})
    )
    assert result.total_cost == ledger.total_cost(tags={"experiment": "judged"})
    assert result.candidate_cost == result.total_cost - judge_cost
    judged_4 = (Decimal("0.4") * prompt_words[0] + Decimal("1.6")) / 10**6  # the judging of gpt-4.1's "4"
    assert (
        result.table.set_index("model").loc["gpt-4.1", "judge_cost"]
        == judged_4
        in set(judge_calls["cost_usd"])
    )
    rebuilt = experiment("judged", ledger=ledger)
    assert rebuilt.judge_cost == judge_cost and rebuilt.candidate_cost == result.candidate_cost
    assert list(rebuilt.rows.set_index("model").loc[["gpt-4.1", "gpt-4.1-nano"], "success"]) == [True, False]
    assert result.estimate.judge_calls == 2
