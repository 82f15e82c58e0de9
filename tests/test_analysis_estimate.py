"""Token estimates with tiktoken (offline, from tests/data/tiktoken) and cost tables across models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal

import pytest
from _prices import M, unit_prices

from llmcost_nb.analysis import estimate

# OpenAI's published example (openai-cookbook, "How to count tokens with tiktoken"): the API reports 129
# prompt tokens for it on gpt-3.5-turbo and gpt-4, and 124 on gpt-4o and gpt-4o-mini.
COOKBOOK = [
    {
        "role": "system",
        "content": "You are a helpful, pattern-following assistant that translates corporate "
        "jargon into plain English.",
    },
    {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Things working well together will increase revenue.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "Let's circle back when we have more bandwidth to touch "
        "base on opportunities for increased leverage.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Let's talk later when we're less busy about how to do better.",
    },
    {
        "role": "user",
        "content": "This late pivot means we don't have time to boil the ocean for the client deliverable.",
    },
]


@pytest.mark.parametrize(
    ("model", "tokens", "encoding"),
    [
        ("gpt-3.5-turbo", 129, "cl100k_base"),
        ("gpt-4", 129, "cl100k_base"),
        ("gpt-4o", 124, "o200k_base"),
        ("gpt-4o-mini", 124, "o200k_base"),
        ("gpt-4.1", 124, "o200k_base"),
    ],
)
def test_chat_messages_match_openais_published_counts(model, tokens, encoding):
    assert estimate.count_message_tokens(COOKBOOK, model=model) == estimate.TokenCount(
        tokens, encoding, False
    )


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-4.1", ("o200k_base", False)),
        ("gpt-5", ("o200k_base", False)),
        ("o3", ("o200k_base", False)),
        ("openai/gpt-4.1-mini", ("o200k_base", False)),
        ("gpt-4", ("cl100k_base", False)),
        ("text-embedding-3-small", ("cl100k_base", False)),
        ("claude-sonnet-4-5", ("o200k_base", True)),
        ("gemini-2.5-flash", ("o200k_base", True)),
        (None, ("o200k_base", True)),
    ],
)
def test_encoding_per_model(model, expected):
    assert estimate.encoding_name(model) == expected


def test_plain_text_and_framing():
    assert estimate.count_tokens("Hello world", model="gpt-4.1") == estimate.TokenCount(
        2, "o200k_base", False
    )
    # 3 (reply priming) + 3 (message) + 1 ("user") + 2 ("Hello world")
    assert (
        estimate.count_message_tokens([{"role": "user", "content": "Hello world"}], model="gpt-4.1").tokens
        == 9
    )
    # a string prompt counts as one user message
    assert estimate.count_message_tokens("Hello world", model="gpt-4.1").tokens == 9
    # special-token text in user input is ordinary text, not an error
    assert estimate.count_tokens("<|endoftext|>", model="gpt-4").tokens == 7


def test_content_parts_and_images():
    parts = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Hello world"},
                {"type": "image_url", "image_url": {"url": "data:..."}},
            ],
        }
    ]
    count = estimate.count_message_tokens(parts, model="gpt-4.1")
    assert count == estimate.TokenCount(9 + estimate.IMAGE_TOKENS, "o200k_base", True)


@pytest.mark.parametrize(
    ("api", "body", "expected"),
    [
        ("chat", {"model": "gpt-4.1", "messages": [{"role": "user", "content": "Hello world"}]}, (9, False)),
        ("responses", {"model": "gpt-4.1", "input": "Hello world"}, (9, False)),
        (
            "responses",
            {"model": "gpt-4.1", "input": "Hello world", "instructions": "Be brief"},
            (9 + 3 + 1 + 2, False),
        ),
        (
            "messages",
            {
                "model": "claude-sonnet-4-5",
                "system": "Be brief",
                "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello world"}]}],
            },
            (9 + 3 + 1 + 2, True),
        ),
        ("embeddings", {"model": "text-embedding-3-small", "input": ["Hello world", "Hello"]}, (3, False)),
        ("embeddings", {"model": "text-embedding-3-small", "input": [[1, 2, 3]]}, (3, False)),
        ("completions", {"model": "gpt-3.5-turbo-instruct", "prompt": "Hello world"}, (2, False)),
        ("gemini", {"contents": [{"role": "user", "parts": [{"text": "Hello world"}]}]}, (2, True)),
    ],
)
def test_request_bodies(api, body, expected):
    count = estimate.request_input_tokens(api, body)
    assert (count.tokens, count.approximate) == expected


CONVERSE_BODY = {"system": [{"text": "Be brief"}],
                 "messages": [{"role": "user", "content": [{"text": "Hello world"}]}]}
BEDROCK_SAME_PROMPT = [  # (api, model id, body): "Be brief" + "Hello world", as each Bedrock body writes it
    ("converse", "us.anthropic.claude-3-haiku-20240307-v1:0", CONVERSE_BODY),
    ("invoke", "us.anthropic.claude-3-haiku-20240307-v1:0",
     {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 5, "system": "Be brief",
      "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello world"}]}]}),
    ("invoke", "amazon.nova-micro-v1:0", {**CONVERSE_BODY, "inferenceConfig": {"max_new_tokens": 5}}),
]


@pytest.mark.parametrize(("api", "model", "body"), BEDROCK_SAME_PROMPT)
def test_bedrock_bodies_count_their_messages_as_the_messages_api_does(api, model, body):
    """Not the JSON text of the body: a budget's pre-send check would refuse requests it can afford."""
    count = estimate.request_input_tokens(api, body, model)
    assert (count.tokens, count.approximate) == (9 + 3 + 1 + 2, True)


def test_bedrock_prompt_bodies_and_image_parts():
    count = estimate.request_input_tokens
    titan = count("invoke", {"inputText": "Hello world"}, "amazon.titan-text-express-v1")
    meta = count("invoke", {"prompt": "Hello world"}, "meta.llama3-1-8b-instruct-v1:0")
    assert (titan.tokens, meta.tokens) == (2, 2)
    image = {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo" * 10_000}}}
    with_image = estimate.request_input_tokens(
        "converse", {"messages": [{"role": "user", "content": [{"text": "Hello world"}, image]}]}, None)
    assert (with_image.tokens, with_image.approximate) == (9 + estimate.IMAGE_TOKENS, True)  # not its base64


def test_estimate_table_prices_every_model(ledger):
    ledger.set_price("model-a", input_mtok="2", output_mtok="8")
    ledger.set_price("model-b", input_mtok="0.4", output_mtok="1.6")
    table = estimate.estimate(
        COOKBOOK, models=["model-a", "model-b"], expected_output_tokens=500, ledger=ledger
    )
    a, b = table.rows
    # model-a/b have no tiktoken encoding: o200k_base, marked approximate
    assert (a.input_tokens, a.output_tokens, a.approximate, a.encoding) == (124, 500, True, "o200k_base")
    assert (a.input_cost, a.output_cost, a.cost) == (
        Decimal("0.000248"),
        Decimal("0.004"),
        Decimal("0.004248"),
    )
    assert (b.input_cost, b.output_cost, b.cost) == (
        Decimal("0.0000496"),
        Decimal("0.0008"),
        Decimal("0.0008496"),
    )
    assert table.cheapest() is b
    frame = table.to_frame()
    assert list(frame["model"]) == ["model-a", "model-b"]
    assert list(frame["cost"]) == [Decimal("0.004248"), Decimal("0.0008496")]
    html = table._repr_html_()
    assert "<td>model-a</td><td>124~</td><td>500</td>" in html and "approximate" in html
    assert repr(table).splitlines()[1].split() == [
        "model-a",
        "124~",
        "500",
        "$0.000248",
        "$0.004000",
        "$0.004248",
    ]


def test_estimate_with_genai_prices_for_known_models(ledger):
    table = estimate.estimate("Hello world", models="gpt-4.1", expected_output_tokens=1000, ledger=ledger)
    (row,) = table.rows
    assert (row.input_tokens, row.approximate) == (2, False)
    price = unit_prices("gpt-4.1", "openai")  # genai-prices' current prices
    assert (row.input_cost, row.output_cost, row.cost) == (
        2 * price.input_mtok / M,
        1000 * price.output_mtok / M,
        (2 * price.input_mtok + 1000 * price.output_mtok) / M,
    )


def test_unknown_model_has_no_cost_rather_than_failing(ledger):
    (row,) = estimate.estimate("Hi", models=["no-such-model-xyz"], ledger=ledger).rows
    assert row.cost is None and "unknown" in repr(estimate.Estimate([row]))


@pytest.mark.parametrize("bad", [-1, 1.5, "10", True])
def test_bad_expected_output_tokens(bad, ledger):
    with pytest.raises(ValueError, match="expected_output_tokens must be a non-negative int"):
        estimate.estimate("Hi", models=["gpt-4.1"], expected_output_tokens=bad, ledger=ledger)


def test_without_an_encoding_counts_are_a_marked_approximation(tmp_path):
    """No cached encoding and no network (a proxy that refuses): 4 characters per token, marked."""
    code = (
        "import json, warnings\n"
        "from llmcost_nb.analysis import estimate\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    c = estimate.count_tokens('Hello world, how are you?', model='gpt-4.1')\n"
        "    m = estimate.count_message_tokens('Hello world', model='gpt-4.1')\n"
        "seen = [str(x.message) for x in w]\n"
        "print(json.dumps([c.tokens, c.encoding, c.approximate, m.tokens, m.approximate, seen]))\n"
    )
    env = {
        **os.environ,
        "TIKTOKEN_CACHE_DIR": str(tmp_path),
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "https_proxy": "http://127.0.0.1:9",
        "NO_PROXY": "",
    }
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    tokens, encoding, approximate, message_tokens, message_approx, warnings = json.loads(out.stdout)
    assert (tokens, encoding, approximate) == (7, estimate.APPROXIMATION, True)  # ceil(25 / 4)
    # 3 + 3 + ceil(4/4) for "user" + ceil(11/4) for "Hello world"
    assert (message_tokens, message_approx) == (10, True)
    assert len(warnings) == 1 and "cannot load the tiktoken encoding o200k_base" in warnings[0]
