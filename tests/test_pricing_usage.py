"""Token usage from raw response bodies: one exact example per wire format, every real body of the corpus
(against genai-prices' own extractors), and errors a person can act on."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from llmcost_nb.pricing.usage import _GENAI_FLAVOR, API_FLAVORS, UsageError, extract_usage, usage_part

CORPUS_FILE = Path(__file__).parent / "data" / "real_usages.json"  # see tests/data/README.md
CORPUS = [entry["body"] for entry in json.loads(CORPUS_FILE.read_text())]


def wire_format(body: dict) -> str | None:
    """The wire format a corpus body looks like, or None for shapes we do not capture (Cohere, ...)."""
    if "usageMetadata" in body:
        return "gemini"
    usage = body.get("usage")
    if not isinstance(usage, dict):
        return None
    if "inputTokens" in usage:
        return "converse"  # Bedrock
    if "prompt_tokens" in usage:
        return "embeddings" if "completion_tokens" not in usage else "chat"
    if "input_tokens" in usage:
        return "messages" if "cache_creation_input_tokens" in usage or "claude" in body.get("model", "") \
            else "responses"
    return None


EXAMPLES = [
    pytest.param("chat", {
        "model": "gpt-4o-audio-preview-2025-06-03",
        "usage": {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500,
                  "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 100},
                  "completion_tokens_details": {"reasoning_tokens": 128, "audio_tokens": 50,
                                                "accepted_prediction_tokens": 0,
                                                "rejected_prediction_tokens": 0}},
    }, "gpt-4o-audio-preview-2025-06-03", {
        "input_tokens": 1200, "cache_read_tokens": 1024, "input_audio_tokens": 100, "output_audio_tokens": 50,
        "output_reasoning_tokens": 128, "output_tokens": 300,
    }, id="chat-cached-reasoning-audio"),
    pytest.param("chat", {
        "model": "llama-3.3-70b", "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13,
                                            "prompt_tokens_details": None, "completion_tokens_details": None},
    }, "llama-3.3-70b", {"input_tokens": 9, "output_tokens": 4}, id="chat-null-details-unknown-model"),
    pytest.param("completions", {
        "model": "gpt-3.5-turbo-instruct",
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
    }, "gpt-3.5-turbo-instruct", {"input_tokens": 5, "output_tokens": 7}, id="completions"),
    pytest.param("responses", {
        "model": "o3-2025-04-16",
        "usage": {"input_tokens": 2000, "input_tokens_details": {"cached_tokens": 1500}, "output_tokens": 900,
                  "output_tokens_details": {"reasoning_tokens": 640}, "total_tokens": 2900},
    }, "o3-2025-04-16", {
        "input_tokens": 2000, "cache_read_tokens": 1500, "output_reasoning_tokens": 640, "output_tokens": 900,
    }, id="responses-cached-reasoning"),
    pytest.param("embeddings", {
        "object": "list", "model": "text-embedding-3-small", "usage": {"prompt_tokens": 8, "total_tokens": 8},
    }, "text-embedding-3-small", {"input_tokens": 8}, id="embeddings"),
    pytest.param("messages", {
        "model": "claude-sonnet-4-5-20250929",
        "usage": {"input_tokens": 50, "cache_creation_input_tokens": 2000, "cache_read_input_tokens": 3000,
                  "cache_creation": {"ephemeral_5m_input_tokens": 500, "ephemeral_1h_input_tokens": 1500},
                  "output_tokens": 400, "server_tool_use": {"web_search_requests": 2},
                  "service_tier": "standard"},
    }, "claude-sonnet-4-5-20250929", {
        "input_tokens": 5050,  # Anthropic's 50 uncached + cache writes + cache reads
        "cache_write_tokens": 2000, "cache_write_5m_tokens": 500, "cache_write_1h_tokens": 1500,
        "cache_read_tokens": 3000, "web_searches": 2, "output_tokens": 400,
    }, id="messages-cache-write-1h"),
    pytest.param("messages", {
        "usage": {"input_tokens": 12, "output_tokens": 0, "cache_read_input_tokens": 0},
    }, None, {"input_tokens": 12}, id="messages-no-model-zeros-omitted"),
    pytest.param("gemini", {
        "modelVersion": "gemini-2.5-pro",
        "usageMetadata": {"promptTokenCount": 5000, "cachedContentTokenCount": 4000,
                          "candidatesTokenCount": 200, "thoughtsTokenCount": 800, "totalTokenCount": 6000,
                          "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 4800},
                                                  {"modality": "IMAGE", "tokenCount": 200}],
                          "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": 4000}]},
    }, "gemini-2.5-pro", {
        "input_tokens": 5000, "cache_read_tokens": 4000, "cache_text_read_tokens": 4000,
        "input_text_tokens": 4800, "input_image_tokens": 200,
        "output_tokens": 1000, "output_reasoning_tokens": 800,  # thoughts count as output
    }, id="gemini-thoughts-cached"),
    pytest.param("gemini", {
        "modelVersion": "gemini-2.5-flash",
        "usageMetadata": {"promptTokenCount": 100, "candidatesTokenCount": 20, "toolUsePromptTokenCount": 30,
                          "candidatesTokensDetails": [{"modality": "text", "tokenCount": 20}]},
    }, "gemini-2.5-flash", {
        "input_tokens": 130, "input_tool_tokens": 30, "output_text_tokens": 20, "output_tokens": 20,
    }, id="gemini-tool-use-prompt"),
    pytest.param("chat", {
        "model": "m", "usage": {"prompt_tokens": 12.0, "completion_tokens": Decimal(3)},
    }, "m", {"input_tokens": 12, "output_tokens": 3}, id="integral-float-and-decimal"),
]


@pytest.mark.parametrize(("api", "body", "model", "usage"), EXAMPLES)
def test_extracts_exact_usage(api, body, model, usage):
    got_model, got_usage = extract_usage(body, api=api)
    assert (got_model, got_usage) == (model, usage)
    assert all(type(value) is int for value in got_usage.values())


BAD = [
    pytest.param("chat", ["not", "a", "dict"], "body must be a JSON object, got list", id="body-list"),
    pytest.param("chat", None, "body must be a JSON object, got null", id="body-none"),
    pytest.param("chat", {"model": "gpt-4.1"}, "chat response has no usage (`usage` is missing",
                 id="no-usage"),
    pytest.param("messages", {"usage": None}, "messages response has no usage", id="usage-null"),
    pytest.param("chat", {"usage": [1, 2]}, "`usage` must be an object, got list", id="usage-list"),
    pytest.param("chat", {"usage": {"completion_tokens": 3}}, "`usage.prompt_tokens` is missing or null",
                 id="missing-required"),
    pytest.param("chat", {"usage": {"prompt_tokens": None, "completion_tokens": 3}},
                 "`usage.prompt_tokens` is missing or null", id="required-null"),
    pytest.param("chat", {"usage": {"prompt_tokens": "12", "completion_tokens": 3}},
                 "`usage.prompt_tokens` must be an integer, got str '12'", id="string-count"),
    pytest.param("chat", {"usage": {"prompt_tokens": True, "completion_tokens": 3}},
                 "`usage.prompt_tokens` must be an integer, got bool", id="bool-count"),
    pytest.param("chat", {"usage": {"prompt_tokens": 1.5, "completion_tokens": 3}},
                 "`usage.prompt_tokens` must be a whole number of tokens, got 1.5", id="fractional"),
    pytest.param("chat", {"usage": {"prompt_tokens": float("nan"), "completion_tokens": 3}},
                 "must be a whole number of tokens, got nan", id="nan"),
    pytest.param("responses", {"usage": {"input_tokens": -5, "output_tokens": 3}},
                 "`usage.input_tokens` is negative (-5)", id="negative"),
    pytest.param("responses", {"usage": {"input_tokens": 5, "output_tokens": 3,
                                         "input_tokens_details": {"cached_tokens": -1}}},
                 "`usage.input_tokens_details.cached_tokens` is negative (-1)", id="negative-optional"),
    pytest.param("messages", {"usage": {"input_tokens": 10**13, "output_tokens": 3}},
                 "`usage.input_tokens` is absurdly large (10,000,000,000,000 > 10**12)", id="absurd"),
    pytest.param("chat", {"usage": {"prompt_tokens": 5, "completion_tokens": 3, "prompt_tokens_details": 7}},
                 "`usage.prompt_tokens_details.cached_tokens` is inside a int, expected an object",
                 id="details-not-object"),
    pytest.param("chat", {"usage": {"prompt_tokens": 5, "completion_tokens": 3,
                                    "prompt_tokens_details": {"cached_tokens": "many"}}},
                 "`usage.prompt_tokens_details.cached_tokens` must be an integer, got str",
                 id="optional-wrong-type"),
    pytest.param("gemini", {"usageMetadata": {}}, "`usageMetadata` holds no token counts", id="gemini-empty"),
    pytest.param("gemini", {"usageMetadata": {"promptTokenCount": 3, "promptTokensDetails": {"TEXT": 3}}},
                 "`usageMetadata.promptTokensDetails[modality=TEXT].tokenCount` is inside a dict, "
                 "expected a list",
                 id="gemini-details-not-list"),
    pytest.param("gemini", {"usage": {"prompt_tokens": 3}}, "gemini response has no usage (`usageMetadata`",
                 id="wrong-wire-format"),
]


@pytest.mark.parametrize(("api", "body", "message"), BAD)
def test_bad_usage_raises_usage_error_naming_the_problem(api, body, message):
    with pytest.raises(UsageError) as info:
        extract_usage(body, api=api)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)  # callers that catch ValueError keep working


def test_unknown_api_is_a_programming_error_not_a_usage_error():
    allowed = "allowed values: chat, responses, embeddings, completions, messages, gemini, converse"
    with pytest.raises(ValueError, match=f"Unknown api 'chat-completions', {allowed}") as info:
        extract_usage({"usage": {}}, api="chat-completions")
    assert not isinstance(info.value, UsageError)


def test_every_wire_format_is_supported():
    assert set(API_FLAVORS) == set(_GENAI_FLAVOR)


def genai_prices_extract(body, api):
    """genai-prices' own answer, as {key: int} without zeros, or None if it cannot extract."""
    from genai_prices.data_snapshot import get_snapshot

    provider_id, flavor = _GENAI_FLAVOR[api]
    try:
        provider = get_snapshot().find_provider(None, provider_id, None)
        model, usage = provider.extract_usage(body, api_flavor=flavor)
    except ValueError:
        return None
    return model, {key: value for key, value in vars(usage).items() if not key.startswith("_") and value}


@pytest.mark.parametrize("api", API_FLAVORS)
def test_corpus_agrees_with_genai_prices_extractors(api):
    """Every real body genai-prices can read in this wire format, we read identically; the rest we reject
    with a UsageError, never another exception."""
    agreed = 0
    for body in CORPUS:
        expected = genai_prices_extract(body, api)
        if expected is None:
            with pytest.raises(UsageError):
                extract_usage(body, api=api)
        else:
            assert extract_usage(body, api=api) == expected, body["file"]
            agreed += 1
    assert agreed >= (220 if api == "converse" else 400)  # hundreds of real bodies each (Bedrock: 220)


def test_every_corpus_body_of_our_wire_formats_extracts():
    extracted = [extract_usage(body, api=api) for body in CORPUS if (api := wire_format(body)) is not None]
    assert len(extracted) > 1300
    assert all(model is None or isinstance(model, str) for model, _ in extracted)
    assert sum(bool(usage) for _, usage in extracted) > 1300  # a few real responses used no tokens at all


def test_importing_usage_does_not_import_genai_prices():
    code = "import sys, llmcost_nb.pricing.usage, llmcost_nb.pricing; print('genai_prices' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize("api", API_FLAVORS)
def test_the_part_of_a_body_taped_reads_as_the_whole_body_does(api):
    """What capture tapes of a body (usage_part: its usage object and model, never its text) reads back, on
    every real body of the corpus in every wire format's reading, to what the whole body reads to: the same
    tokens and model, or the same refusal. Bedrock's part has no model: its model is the request path's."""
    extras = {"id": "x", "choices": [{"message": {"content": "the answer's text"}}], "output": ["text"]}
    bodies = [{**extras, **body} for body in CORPUS] + [example.values[1] for example in EXAMPLES]
    compared = 0
    for body in bodies:
        part = usage_part(body, api=api)
        try:
            whole = extract_usage(body, api=api)
        except UsageError as exc:
            if part is not None:
                with pytest.raises(UsageError, match=re.escape(str(exc))):
                    extract_usage(part, api=api)
            continue
        assert part is not None and not set(part) & set(extras), body
        model, usage = extract_usage(part, api=api)
        assert usage == whole[1] and model == (None if api == "converse" else whole[0]), body
        compared += 1
    assert compared >= (220 if api == "converse" else 400)
