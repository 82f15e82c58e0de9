"""Streams that report no usage, or are closed or cut before they do, are counted with tiktoken, priced and
marked ``usage_source="estimated"`` (issue 16, "Usage for every stream").

Expected counts are computed here from tiktoken directly, on the known strings, with OpenAI's documented
chat framing (cookbook "num_tokens_from_messages": 3 tokens per message plus its role and content, 3 to
prime the reply); the fake provider's own counts are words (docs/fake_provider.md), so a row that shows
tiktoken's numbers was counted by us. Costs are tokens × genai-prices' unit prices.
"""

from __future__ import annotations

import asyncio
import json
import re
import warnings
from decimal import Decimal
from pathlib import Path

import anthropic
import httpx
import httpx2
import openai
import pytest
import tiktoken
from _prices import M, unit_prices
from google import genai

import llmcost_nb
from llmcost_nb import LlmcostWarning
from llmcost_nb.pricing.tokens import request_input_tokens
from llmcost_nb.testing.recorded import estimate_pair
from llmcost_nb.tracking import capture

SYSTEM = "You are terse."
QUESTION = "Which colour is the sky on a clear day?"
MESSAGES = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]
REPLY = "This is a fake reply to: Which colour is the sky on a clear"  # the fake: 8 words of the question
PAIRS = Path(__file__).resolve().parent.parent / "benchmarks" / "data" / "openai_chat_pairs.json"


def tokens(text: str, encoding: str = "o200k_base") -> int:
    return len(tiktoken.get_encoding(encoding).encode(text))


def chat_prompt(messages: list[dict[str, str]], encoding: str = "o200k_base") -> int:
    """The cookbook's count: per message 3 + its role + its content; 3 more prime the reply."""
    return sum(3 + tokens(m["role"], encoding) + tokens(m["content"], encoding) for m in messages) + 3


def cost(model: str, provider: str, input_tokens: int, output_tokens: int) -> Decimal:
    price = unit_prices(model, provider)
    return (input_tokens * price.input_mtok + output_tokens * price.output_mtok) / M


def only_row(scope):
    frame = scope.calls
    assert len(frame) == 1, frame
    return frame.iloc[0]


def oai(fake):
    return openai.OpenAI(base_url=fake.openai_base_url, api_key="sk-test", max_retries=0)


PROMPT_IN = chat_prompt(MESSAGES)
REPLY_OUT = tokens(REPLY)


# -- a complete stream without usage --------------------------------------------------------------------
def test_openai_sdk_stream_without_include_usage_is_counted_priced_and_marked(fake):
    with warnings.catch_warnings(record=True) as caught, llmcost_nb.track() as t:
        warnings.simplefilter("always")
        stream = oai(fake).chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == REPLY
    row = only_row(t)
    assert (row.status, row.streamed, row.billed, row.usage_source) == ("ok", True, True, "estimated")
    assert (row.input_tokens, row.output_tokens) == (PROMPT_IN, REPLY_OUT) == (25, 15)
    assert row.cost_usd == cost("gpt-4.1", "openai", PROMPT_IN, REPLY_OUT)
    assert t.total_cost == row.cost_usd
    stored = llmcost_nb.Ledger().calls()
    assert list(stored.usage_source) == ["estimated"] and stored.cost_usd[0] == row.cost_usd
    messages = [str(w.message) for w in caught if issubclass(w.category, LlmcostWarning)]
    assert len(messages) == 1 and "include_usage" in messages[0] and "estimated" in messages[0]


def test_raw_httpx_stream_to_a_custom_base_url_uses_the_models_encoding(fake):
    """A hand-written call through httpx to an OpenAI-compatible URL; gpt-4 counts with cl100k_base."""
    body = {"model": "gpt-4", "messages": MESSAGES, "stream": True}
    with llmcost_nb.track() as t, httpx.Client() as client, client.stream(
            "POST", fake.openai_base_url + "/chat/completions", json=body) as response:
        lines = [line for line in response.iter_lines() if line.startswith("data: {")]
    assert len(lines) == 1 + 14 + 1  # role, one chunk per word, finish
    row = only_row(t)
    prompt, out = chat_prompt(MESSAGES, "cl100k_base"), tokens(REPLY, "cl100k_base")
    assert (row.input_tokens, row.output_tokens, row.usage_source) == (prompt, out, "estimated")
    assert (row.host, row.model) == ("127.0.0.1", "gpt-4")
    assert row.cost_usd == cost("gpt-4", "openai", prompt, out)


def test_tool_call_arguments_and_tool_definitions_are_counted(fake):
    """The streamed tool call's name and arguments are output, with 7 tokens of framing; the tool
    definitions are prompt, by the cookbook's num_tokens_for_tools rule (per function 7 +
    "name:description", per parameter 3 + "name:type:description", 3 for the parameter block, 12 at the
    end)."""
    arguments = '{"city": "Paris"}'
    events = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": None, "tool_calls": [
                  {"index": 0, "id": "call_1", "type": "function",
                   "function": {"name": "get_weather", "arguments": ""}}]}}]},
              {"choices": [{"index": 0, "delta": {"tool_calls": [
                  {"index": 0, "function": {"arguments": arguments[:9]}}]}}]},
              {"choices": [{"index": 0, "delta": {"tool_calls": [
                  {"index": 0, "function": {"arguments": arguments[9:]}}]}}]},
              {"model": "gpt-4o-2024-08-06",
               "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}]
    tools = [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather of a city.",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string", "description": "The city."},
            "unit": {"type": "string", "description": "Unit", "enum": ["c", "f"]}}}}}]
    request = {"model": "gpt-4o", "messages": MESSAGES, "tools": tools, "stream": True}
    from llmcost_nb.tracking.stream_usage import stream_usage

    content = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"
    usage, model = stream_usage("chat", content, request, "gpt-4o", None, output_reported=False)
    definitions = (7 + tokens("get_weather:Weather of a city") + 3
                   + 3 + tokens("city:string:The city")
                   + 3 - 3 + 3 + tokens("c") + 3 + tokens("f") + tokens("unit:string:Unit") + 12)
    assert usage == {"input_tokens": PROMPT_IN + definitions,
                     "output_tokens": tokens("get_weather" + arguments) + 7}
    assert model == "gpt-4o-2024-08-06"
    assert request_input_tokens("chat", request).approximate  # tool definitions: an approximation


# -- a stream closed early ------------------------------------------------------------------------------
def _break_after(stream, words: int):
    """Read until the chunk carrying the ``words``-th word of the reply, then stop reading."""
    seen = 0
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            seen += 1
            if seen == words:
                return


def test_break_after_the_first_word_bills_the_prompt_and_the_word(fake):
    fake.stream_delay = 0.2  # one SSE event per read: what the tee saw is what the caller read
    with llmcost_nb.track() as t:
        stream = oai(fake).chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True)
        _break_after(stream, 1)
        stream.close()
    row = only_row(t)
    out = tokens("This")
    assert (row.status, row.billed, row.usage_source) == ("unfinished", True, "estimated")
    assert (row.input_tokens, row.output_tokens) == (PROMPT_IN, out)
    assert row.cost_usd == cost("gpt-4.1", "openai", PROMPT_IN, out) > 0


def test_exception_inside_the_with_bills_the_prompt(fake):
    fake.stream_delay = 0.2
    client = oai(fake)
    with llmcost_nb.track() as t, pytest.raises(KeyError), client.chat.completions.create(
            model="gpt-4.1-mini", messages=MESSAGES, stream=True) as stream:
        _break_after(stream, 2)
        raise KeyError("the user's own error")
    row = only_row(t)
    out = tokens("This is")
    assert (row.status, row.usage_source, row.input_tokens, row.output_tokens) == (
        "unfinished", "estimated", PROMPT_IN, out)
    assert row.cost_usd == cost("gpt-4.1-mini", "openai", PROMPT_IN, out)


def test_close_after_the_first_chunk_bills_the_prompt_even_with_include_usage(fake):
    """The first chunk is the role chunk (no text); the usage chunk never came."""
    fake.stream_delay = 0.2
    with llmcost_nb.track() as t:
        stream = oai(fake).chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True,
                                                    stream_options={"include_usage": True})
        first = next(iter(stream))
        stream.close()
    assert first.choices[0].delta.role == "assistant"
    row = only_row(t)
    assert (row.status, row.usage_source, row.input_tokens, row.output_tokens) == (
        "unfinished", "estimated", PROMPT_IN, 0)
    assert row.cost_usd == cost("gpt-4.1", "openai", PROMPT_IN, 0)


def test_async_stream_broken_off_bills_the_prompt(fake):
    fake.stream_delay = 0.2

    async def main():
        client = openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="sk-test", max_retries=0)
        async with llmcost_nb.track() as t:
            stream = await client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True)
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    break
            await stream.close()
        return t

    row = only_row(asyncio.run(main()))
    assert (row.status, row.usage_source, row.input_tokens, row.output_tokens) == (
        "unfinished", "estimated", PROMPT_IN, tokens("This"))


def test_responses_stream_broken_off_bills_the_prompt(fake):
    fake.stream_delay = 0.2
    client = oai(fake)
    with llmcost_nb.track() as t, client.responses.stream(model="gpt-4.1", instructions=SYSTEM,
                                                          input=QUESTION) as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                break
    row = only_row(t)
    assert (row.status, row.usage_source, row.input_tokens, row.output_tokens) == (
        "unfinished", "estimated", PROMPT_IN, tokens("This"))


# -- Anthropic and Gemini streams cut before their final usage event ------------------------------------
HELLO_TEXT = "hello there world"
HELLO = [{"role": "user", "content": HELLO_TEXT}]


def test_anthropic_stream_cut_after_message_start_keeps_the_providers_input_and_counts_the_output(fake):
    """message_start carried input_tokens (the fake: 3 words + 3 = 6) and output_tokens 1 (a placeholder);
    the cut leaves two text deltas, "This" and " is", counted with o200k_base (Claude's approximation)."""
    fake.cut_stream_after(5)  # message_start, ping, content_block_start, 2 deltas
    client = anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="sk-ant", max_retries=0)
    with llmcost_nb.track() as t, pytest.raises(anthropic.APIConnectionError), client.messages.stream(
            model="claude-haiku-4-5", max_tokens=100, messages=HELLO) as stream:
        for _ in stream:
            pass
    row = only_row(t)
    out = tokens("This is")
    assert (row.status, row.usage_source, row.input_tokens, row.output_tokens) == (
        "unfinished", "estimated", 6, out)
    assert row.cost_usd == cost("claude-haiku-4-5", "anthropic", 6, out)


def test_anthropic_stream_broken_off_by_the_user(fake):
    fake.stream_delay = 0.2
    client = anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="sk-ant", max_retries=0)
    with llmcost_nb.track() as t, client.messages.stream(model="claude-haiku-4-5", max_tokens=100,
                                                         messages=HELLO) as stream:
        for event in stream:
            if event.type == "content_block_delta":
                break
    row = only_row(t)
    assert (row.status, row.usage_source, row.input_tokens, row.output_tokens) == (
        "unfinished", "estimated", 6, tokens("This"))


def test_gemini_stream_cut_keeps_the_providers_prompt_and_counts_the_output(fake):
    fake.cut_stream_after(2)  # chunks "This" and " is": each carries promptTokenCount (the fake: 6)
    client = genai.Client(api_key="k", http_options={"base_url": fake.gemini_base_url})
    with llmcost_nb.track() as t, pytest.raises(httpx2.RemoteProtocolError):  # what google-genai lets through
        for _ in client.models.generate_content_stream(model="gemini-2.5-flash", contents=HELLO_TEXT):
            pass
    row = only_row(t)
    out = tokens("This is")
    assert (row.status, row.usage_source, row.input_tokens, row.output_tokens) == (
        "unfinished", "estimated", 6, out)
    assert row.cost_usd == cost("gemini-2.5-flash", "google", 6, out)


# -- provider numbers stay the provider's -----------------------------------------------------------------
def test_a_stream_with_usage_stays_provider(fake):
    with warnings.catch_warnings(record=True) as caught, llmcost_nb.track() as t:
        warnings.simplefilter("always")
        for _ in oai(fake).chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True,
                                                   stream_options={"include_usage": True}):
            pass
        client = anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="sk-ant", max_retries=0)
        with client.messages.stream(model="claude-haiku-4-5", max_tokens=100, messages=HELLO) as stream:
            stream.get_final_message()
    frame = t.calls
    words = len(REPLY.split())  # the fake's own counts: words, +3 per message
    assert list(frame.usage_source) == ["provider", "provider"]
    assert list(frame.input_tokens) == [len(SYSTEM.split()) + len(QUESTION.split()) + 6, 6]
    assert list(frame.output_tokens) == [words, 9]
    assert not [w for w in caught if issubclass(w.category, LlmcostWarning)]


def test_summary_counts_the_estimated_calls(fake, ledger):
    client = oai(fake)
    with llmcost_nb.track(ledger=ledger):
        for _ in client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True):
            pass
        for _ in client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True):
            pass
        client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
        client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES)
    frame = ledger.summary(by="model").set_index("model")
    assert frame.loc["gpt-4.1", ["requests", "estimated", "input_tokens"]].tolist() == [
        3, 2, 2 * PROMPT_IN + len(SYSTEM.split()) + len(QUESTION.split()) + 6]
    assert frame.loc["gpt-4.1-mini", ["requests", "estimated"]].tolist() == [1, 0]


def test_the_callers_stream_is_unchanged(fake):
    """What the caller reads from a stream we count is exactly what it reads without us."""

    def read():
        with httpx.Client() as client, client.stream(
                "POST", fake.openai_base_url + "/chat/completions",
                json={"model": "gpt-4.1", "messages": MESSAGES, "stream": True}) as response:
            return b"".join(response.iter_raw())

    capture.uninstall()
    untracked = read()
    with llmcost_nb.track() as t:
        tracked = read()

    def same(raw: bytes) -> bytes:  # the fake numbers its requests and stamps the second it answered
        raw = raw.replace(b"chatcmpl-fake-2", b"chatcmpl-fake-1")
        return re.sub(rb'"created": ?\d+', b'"created":0', raw)

    assert same(tracked) == same(untracked) and tracked.count(b"data: ") == 17
    assert only_row(t).usage_source == "estimated"


# -- a whole response without usage --------------------------------------------------------------------
ARGS = '{"city": "Paris"}'


def _sse(*events: dict) -> bytes:
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)


# (api, a whole body without usage, the same answer as its stream carries it, output tokens), each with some
# text and a tool call where the format has them
WHOLE = [
    ("chat", {"model": "gpt-4o", "choices": [{"index": 0, "message": {
        "role": "assistant", "content": "Sunny.", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": ARGS}}]}}]},
     _sse({"model": "gpt-4o", "choices": [{"index": 0, "delta": {"content": "Sunny."}}]},
          {"choices": [{"index": 0, "delta": {"tool_calls": [
              {"index": 0, "function": {"name": "get_weather", "arguments": ARGS}}]}}]}),
     tokens("Sunny.get_weather" + ARGS) + 7),
    ("completions", {"model": "gpt-4o", "choices": [{"index": 0, "text": "Sunny."}]},
     _sse({"model": "gpt-4o", "choices": [{"index": 0, "text": "Sunny."}]}), tokens("Sunny.")),
    ("messages", {"model": "claude-haiku-4-5", "content": [
        {"type": "thinking", "thinking": "Look it up."}, {"type": "text", "text": "Sunny."},
        {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Paris"}}]},
     _sse({"type": "message_start", "message": {"model": "claude-haiku-4-5"}},
          {"type": "content_block_delta", "delta": {"type": "thinking_delta", "thinking": "Look it up."}},
          {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "Sunny."}},
          {"type": "content_block_start", "content_block": {"type": "tool_use", "name": "get_weather"}},
          {"type": "content_block_delta", "delta": {"type": "input_json_delta", "partial_json": ARGS}}),
     tokens("Look it up.Sunny.get_weather" + ARGS)),
    ("gemini", {"modelVersion": "gemini-2.5-flash", "candidates": [{"content": {"role": "model", "parts": [
        {"text": "Sunny."}, {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]}}]},
     _sse({"modelVersion": "gemini-2.5-flash", "candidates": [{"content": {"parts": [{"text": "Sunny."}]}}]},
          {"candidates": [{"content": {"parts": [
              {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]}}]}),
     tokens("Sunny.get_weather" + ARGS)),
    ("responses", {"model": "gpt-4o", "output": [
        {"type": "message", "content": [{"type": "output_text", "text": "Sunny."}]},
        {"type": "function_call", "name": "get_weather", "arguments": ARGS}]},
     None,  # (its stream carries the function's name outside the deltas it counts)
     tokens("Sunny.get_weather" + ARGS)),
]


@pytest.mark.parametrize(("api", "body", "stream", "output"), WHOLE, ids=[w[0] for w in WHOLE])
def test_a_whole_response_without_usage_counts_as_its_stream_would(api, body, stream, output):
    """body_usage: the prompt from the request, the output from the answer's text and tool calls, in each
    wire format's shape; the same count as the answer streamed (stream_usage)."""
    from llmcost_nb.tracking.stream_usage import body_usage, stream_usage

    request = ({"contents": [{"role": "user", "parts": [{"text": QUESTION}]}]} if api == "gemini" else
               {"prompt": QUESTION} if api == "completions" else
               {"input": QUESTION} if api == "responses" else {"messages": MESSAGES})
    prompt = request_input_tokens(api, request, body.get("model")).tokens
    assert prompt > 0
    usage, model = body_usage(api, body, request, None)
    assert usage == {"input_tokens": prompt, "output_tokens": output}
    assert model == body.get("model", body.get("modelVersion"))
    if stream is not None:
        assert stream_usage(api, stream, request, None, None, output_reported=False) == (usage, model)
    assert body_usage("embeddings", {"data": [], "model": "text-embedding-3-small"}, {"input": QUESTION},
                      None) == ({"input_tokens": tokens(QUESTION)}, "text-embedding-3-small")
    assert body_usage(api, {"error": "odd"}, None, "gpt-4o") == ({}, None)  # nothing to count


def test_openai_sdk_response_without_usage_is_counted_priced_and_marked(fake):
    """A chat completion whose server left usage out (some OpenAI-compatible servers do), through the openai
    SDK: the user gets the body as sent; the row is counted, priced and marked estimated, with one warning."""
    body = {"id": "x", "object": "chat.completion", "created": 0, "model": "gpt-4o", "choices": [
        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": REPLY}}]}
    fake.fail_next(status=200, body=body)
    with pytest.warns(LlmcostWarning, match="a chat response carried no usage; its tokens were counted"), \
            llmcost_nb.track() as t:
        resp = oai(fake).chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert resp.usage is None and resp.choices[0].message.content == REPLY
    row = only_row(t)
    assert (row.input_tokens, row.output_tokens, row.usage_source) == (PROMPT_IN, REPLY_OUT, "estimated")
    assert row.cost_usd == cost("gpt-4o", "openai", PROMPT_IN, REPLY_OUT)


# -- the estimator against real OpenAI recordings ----------------------------------------------------------
def _recorded(kind: str):
    return [p for p in json.loads(PAIRS.read_text())["pairs"] if p["kind"] == kind]


def test_text_chat_estimates_match_real_openai_usage():
    """15 text-only chat exchanges recorded against api.openai.com (benchmarks/data/README.md). Measured:
    14 prompts counted exactly, one (a 3,152-token YAML document) 19 tokens over, 0.37% in all; gpt-4o
    sometimes reports one output token more than its text has, never more: 0.92% in all (goal: 2%)."""
    results = [estimate_pair(p) for p in _recorded("text") + _recorded("text-stream")]
    assert len(results) == 15
    prompt_errors = [est[0] - rep[0] for est, rep in results]
    assert sorted(prompt_errors) == [0] * 14 + [19]
    output_errors = [rep[1] - est[1] for est, rep in results]
    assert sorted(output_errors) == [0] * 11 + [1] * 4
    reported_in, reported_out = sum(r[0] for _, r in results), sum(r[1] for _, r in results)
    assert 19 / reported_in < 0.004 and 4 / reported_out < 0.01
