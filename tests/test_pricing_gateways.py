"""Model names as gateways write them (LiteLLM proxy, OpenRouter, any OpenAI-compatible gateway), Azure hosts,
and servers declared self-hosted: the real openai SDK against the fake provider on a loopback base_url.

The fake provider echoes the requested model name and counts 6 input / 9 output tokens for HELLO
(docs/fake_provider.md), so a prefixed name must cost exactly what the bare name costs at its provider.
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from decimal import Decimal

import openai
import pytest
from _prices import SOURCE, genai_cost

import llmcost_nb
from llmcost_nb import LlmcostWarning
from llmcost_nb.pricing import Pricer
from llmcost_nb.pricing.providers import classify, host_of

HELLO = [{"role": "user", "content": "hello there world"}]
USAGE = {"input_tokens": 6, "output_tokens": 9}


def chat(fake, model):
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="sk-test", max_retries=0)
    with llmcost_nb.track() as t:
        client.chat.completions.create(model=model, messages=HELLO)
    frame = t.calls
    assert len(frame) == 1
    return frame.iloc[0]


@pytest.mark.parametrize(("model", "bare", "provider"), [
    ("openai/gpt-4o-mini", "gpt-4o-mini", "openai"),
    ("anthropic/claude-3-5-haiku-latest", "claude-3-5-haiku-latest", "anthropic"),
    ("google/gemini-2.0-flash", "gemini-2.0-flash", "google"),
    ("mistralai/mistral-large", "mistral-large", "mistral"),
    ("x-ai/grok-3", "grok-3", "x-ai"),
    ("xai/grok-3", "grok-3", "x-ai"),  # LiteLLM's spelling, taken by genai-prices' provider_match
    ("deepseek/deepseek-chat", "deepseek-chat", "deepseek"),
    ("vertex_ai/gemini-2.0-flash", "gemini-2.0-flash", "google"),
])
def test_a_provider_prefix_prices_under_that_provider_on_any_host(fake, model, bare, provider):
    row = chat(fake, model)
    assert (row.model, row.input_tokens, row.output_tokens) == (model, 6, 9)
    assert row.cost_usd == genai_cost(bare, provider, **USAGE)
    assert (row.provider, row.price_source, row.host) == (provider, SOURCE, "127.0.0.1")


def test_gpt_4o_mini_through_a_gateway_costs_exactly_gpt_4o_mini(fake):
    prefixed, bare = chat(fake, "openai/gpt-4o-mini"), chat(fake, "gpt-4o-mini")
    assert prefixed.cost_usd == bare.cost_usd == genai_cost("gpt-4o-mini", "openai", **USAGE) > 0
    assert llmcost_nb.Ledger().check().ok


def test_nested_litellm_prefixes():
    """``openrouter/openai/gpt-4o`` (LiteLLM routing to OpenRouter) is OpenRouter's listing of
    ``openai/gpt-4o``; ``together_ai/...`` is Together's own name."""
    now = datetime.now(UTC)
    routed = Pricer().price(None, "openrouter/openai/gpt-4o", USAGE, now)
    assert (routed.provider, routed.model_id) == ("openrouter", "openai/gpt-4o")
    assert routed.cost == genai_cost("openai/gpt-4o", "openrouter", **USAGE)


def test_openrouter_host_uses_openrouters_own_listing():
    classified = classify("POST", "openrouter.ai", "/api/v1/chat/completions")
    assert classified is not None and classified.provider == "openrouter"
    result = Pricer().price("openrouter", "openai/gpt-4o-mini", USAGE, datetime.now(UTC))
    assert (result.provider, result.model_id) == ("openrouter", "openai/gpt-4o-mini")
    assert result.cost == genai_cost("openai/gpt-4o-mini", "openrouter", **USAGE)


def test_a_name_a_provider_lists_with_its_slash_stays_that_providers():
    """Groq sells ``openai/gpt-oss-120b`` itself: on its host the prefix is part of the name, not a hint."""
    result = Pricer().price("groq", "openai/gpt-oss-120b", USAGE, datetime.now(UTC))
    assert (result.provider, result.model_id) == ("groq", "openai/gpt-oss-120b")
    assert result.cost == genai_cost("openai/gpt-oss-120b", "groq", **USAGE)


@pytest.mark.parametrize("host", ["my-res.openai.azure.com", "my-proj.services.ai.azure.com"])
def test_azure_hosts_price_under_azure(host):
    classified = classify("POST", host, "/openai/deployments/d/chat/completions")
    assert classified is not None and classified.provider == "azure"
    result = Pricer().price("azure", "gpt-4o-mini", USAGE, datetime.now(UTC))
    assert (result.provider, result.cost) == ("azure", genai_cost("gpt-4o-mini", "azure", **USAGE))


def test_an_unknown_name_keeps_its_tokens_and_the_warning_names_the_fixes(fake):
    with pytest.warns(LlmcostWarning) as caught:
        row = chat(fake, "Qwen/Qwen2.5-7B-Instruct")
    assert (row.input_tokens, row.output_tokens, row.billed) == (6, 9, True)
    assert row.cost_usd is None and row.price_source is None
    (message,) = [str(w.message) for w in caught if "Qwen" in str(w.message)]
    assert "no price known for model 'Qwen/Qwen2.5-7B-Instruct'" in message
    assert "host 127.0.0.1" in message
    assert "llmcost_nb.self_hosted('http://127.0.0.1')" in message
    assert "llmcost_nb.set_price('Qwen/Qwen2.5-7B-Instruct'" in message
    assert "'openai/gpt-4o-mini'" in message  # the prefix form


def test_a_self_hosted_server_costs_zero_not_unpriced(fake):
    host = llmcost_nb.self_hosted(fake.openai_base_url)
    assert host == "127.0.0.1"
    with warnings.catch_warnings():
        warnings.simplefilter("error", LlmcostWarning)  # no "no price known" warning
        row = chat(fake, "Qwen/Qwen2.5-7B-Instruct")
        known = chat(fake, "gpt-4.1")  # every model on that host: it is the user's own hardware
    assert (row.cost_usd, row.price_source, row.billed) == (Decimal(0), "self-hosted", True)
    assert (known.cost_usd, known.price_source) == (Decimal(0), "self-hosted")
    ledger = llmcost_nb.Ledger()
    report = ledger.check()  # re-pricing knows the declaration: it is stored in the ledger
    assert report.ok and report.repriced == 2, str(report)
    assert ledger.reprice(all=True) == 0
    assert llmcost_nb.Ledger(ledger.path).pricer.self_hosted == {"127.0.0.1"}  # a later session too


def test_declaring_self_hosted_later_prices_earlier_calls_with_reprice(fake):
    with pytest.warns(LlmcostWarning, match="no price known"):
        chat(fake, "my-local-llama")
    ledger = llmcost_nb.Ledger()
    ledger.self_hosted("127.0.0.1:9999")  # a bare host with a port: the port is not part of it
    assert ledger.reprice() == 1
    assert ledger.calls().price_source.tolist() == ["self-hosted"]
    assert ledger.total_cost() == 0


@pytest.mark.parametrize(("value", "expected"), [
    ("http://127.0.0.1:8000/v1", "127.0.0.1"), ("https://GPU-Box.lan/v1", "gpu-box.lan"),
    ("gpu-box:8000", "gpu-box"), ("localhost", "localhost"),
])
def test_host_of(value, expected):
    assert host_of(value) == expected


@pytest.mark.parametrize(("value", "error"), [(None, TypeError), ("", TypeError), (8000, TypeError),
                                               ("http://:80/", ValueError)])
def test_self_hosted_refuses_what_is_no_url_and_writes_nothing(ledger, value, error):
    with pytest.raises(error, match="base URL"):
        ledger.self_hosted(value)
    stored = ledger.connection.execute("SELECT COUNT(*) FROM meta WHERE key LIKE 'self-hosted:%'").fetchone()
    assert stored == (0,)


def test_a_hard_budget_lets_a_self_hosted_server_through_without_a_warning(fake):
    from llmcost_nb.budget import set_budget

    llmcost_nb.self_hosted(fake.openai_base_url)
    set_budget("0.000001", scope="session", hard=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LlmcostWarning)  # neither "no price known" nor a budget warning
        rows = [chat(fake, "Qwen/Qwen2.5-7B-Instruct") for _ in range(3)]
    assert [(r.cost_usd, r.price_source) for r in rows] == [(Decimal(0), "self-hosted")] * 3
