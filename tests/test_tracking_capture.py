"""Capture with the real openai, anthropic and google-genai clients against the fake provider on loopback.

Token counts follow the fake provider's documented rules (docs/fake_provider.md): input = words of every
prompt text + 3 per message; the reply is "This is a fake reply to: " + the last user text's first 8 words,
and output = its words. Costs are checked against genai-prices directly.
"""

from __future__ import annotations

import asyncio
import warnings
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import anthropic
import genai_prices
import httpx
import httpx2
import openai
import pytest
from _env import ledger_files
from _prices import M, unit_prices
from google import genai

import llmcost_nb
from llmcost_nb import LlmcostWarning
from llmcost_nb.tracking import capture

HELLO = [{"role": "user", "content": "hello there world"}]
HELLO_IN, HELLO_OUT = 6, 9  # 3 words + 3 overhead; "This is a fake reply to: hello there world"


def genai_cost(model, provider, **usage):
    return genai_prices.calc_price(genai_prices.Usage(**usage), model, provider_id=provider).total_price


def oai(fake, **kw):
    return openai.OpenAI(base_url=fake.openai_base_url, api_key="sk-test-secret", max_retries=3, **kw)


def aoai(fake, **kw):
    return openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="sk-test-secret", max_retries=3, **kw)


def claude(fake, **kw):
    return anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="sk-ant-secret", max_retries=3, **kw)


def gemini(fake):
    return genai.Client(api_key="goog-secret", http_options={"base_url": fake.gemini_base_url})


def only_row(scope):
    frame = scope.calls
    assert len(frame) == 1, frame
    return frame.iloc[0]


# -- OpenAI -------------------------------------------------------------------------------------------------
def test_openai_chat_sync(fake):
    with llmcost_nb.track(tags={"variant": "A"}) as t:
        resp = oai(fake).chat.completions.create(model="gpt-4.1", messages=HELLO)
    assert resp.choices[0].message.content == "This is a fake reply to: hello there world"
    row = only_row(t)
    assert (row.provider, row.api, row.model, row.host) == ("openai", "chat", "gpt-4.1", "127.0.0.1")
    assert (row.input_tokens, row.output_tokens) == (HELLO_IN, HELLO_OUT)
    assert row.cost_usd == genai_cost("gpt-4.1", "openai", input_tokens=6, output_tokens=9)
    price = unit_prices("gpt-4.1", "openai")
    assert row.cost_usd == (6 * price.input_mtok + 9 * price.output_mtok) / M
    assert row.tags == {"variant": "A"} and row.status == "ok" and row.billed and not row.streamed
    assert row.attribution == "context" and row.request_id.startswith("req_fake_")
    stored = llmcost_nb.Ledger().calls()  # reading the ledger commits the call's row: its id is set then
    assert list(stored.id) == [only_row(t).id] == [1] and stored.cost_usd[0] == row.cost_usd
    assert t.total_cost == row.cost_usd


def test_openai_chat_cached_and_reasoning(fake):
    fake.cached_tokens, fake.reasoning_tokens = 4, 20
    with llmcost_nb.track() as t:
        oai(fake).chat.completions.create(model="o3", messages=HELLO)
    row = only_row(t)
    tokens = (row.input_tokens, row.cache_read_tokens, row.output_tokens, row.reasoning_tokens)
    assert tokens == (6, 4, 29, 20)
    assert row.cost_usd == genai_cost("o3", "openai", input_tokens=6, cache_read_tokens=4, output_tokens=29,
                                      output_reasoning_tokens=20)


@pytest.mark.parametrize("include_usage", [True, False])
def test_openai_chat_stream(fake, include_usage):
    options = {"stream_options": {"include_usage": True}} if include_usage else {}
    with warnings.catch_warnings(record=True) as caught, llmcost_nb.track() as t:
        warnings.simplefilter("always")
        stream = oai(fake).chat.completions.create(model="gpt-4.1", messages=HELLO, stream=True, **options)
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "This is a fake reply to: hello there world"
    row = only_row(t)
    assert row.streamed and row.status == "ok"
    if include_usage:
        assert (row.input_tokens, row.output_tokens) == (HELLO_IN, HELLO_OUT)
        assert not [w for w in caught if issubclass(w.category, LlmcostWarning)]
    else:  # counted with tiktoken (tests/test_tracking_stream_estimate.py): "hello there world" and the reply
        assert (row.input_tokens, row.output_tokens, row.usage_source) == (10, 10, "estimated")
        assert any("include_usage" in str(w.message) for w in caught)


def test_openai_async_gather_and_stream(fake):
    async def main():
        client = aoai(fake)
        async with llmcost_nb.track() as t:
            await asyncio.gather(*[client.chat.completions.create(model="gpt-4.1-mini", messages=HELLO)
                                   for _ in range(10)])
            stream = await client.chat.completions.create(model="gpt-4.1-mini", messages=HELLO, stream=True,
                                                          stream_options={"include_usage": True})
            async for _ in stream:
                pass
        return t

    t = asyncio.run(main())
    frame = t.calls
    assert len(frame) == 11 and frame.streamed.sum() == 1
    assert set(frame.input_tokens) == {HELLO_IN} and set(frame.output_tokens) == {HELLO_OUT}
    one = genai_cost("gpt-4.1-mini", "openai", input_tokens=6, output_tokens=9)
    assert t.total_cost == 11 * one


def test_openai_responses_and_stream(fake):
    client = oai(fake)
    with llmcost_nb.track() as t:
        client.responses.create(model="gpt-4.1", input="hello there world")
        with client.responses.stream(model="gpt-4.1", input="hello there world") as stream:
            for _ in stream:
                pass
    frame = t.calls
    assert list(frame.api) == ["responses", "responses"] and list(frame.streamed) == [False, True]
    assert set(frame.input_tokens) == {HELLO_IN} and set(frame.output_tokens) == {HELLO_OUT}


def test_openai_embeddings(fake):
    with llmcost_nb.track() as t:
        oai(fake).embeddings.create(model="text-embedding-3-small", input=["one two", "three"])
    row = only_row(t)
    assert (row.api, row.input_tokens, row.output_tokens) == ("embeddings", 3, 0)
    assert row.cost_usd == genai_cost("text-embedding-3-small", "openai", input_tokens=3)


def test_with_raw_and_streaming_response(fake):
    client = oai(fake)
    with llmcost_nb.track() as t:
        raw = client.chat.completions.with_raw_response.create(model="gpt-4.1", messages=HELLO)
        assert raw.parse().usage.prompt_tokens == HELLO_IN
        with client.chat.completions.with_streaming_response.create(model="gpt-4.1", messages=HELLO) as resp:
            assert resp.parse().usage.completion_tokens == HELLO_OUT
    frame = t.calls
    assert len(frame) == 2 and not frame.streamed.any()
    assert list(frame.output_tokens) == [HELLO_OUT, HELLO_OUT]


# -- Anthropic ----------------------------------------------------------------------------------------------
def test_anthropic_messages_with_cache(fake):
    fake.cached_tokens, fake.cache_write_tokens = 2, 1
    with llmcost_nb.track() as t:
        msg = claude(fake).messages.create(model="claude-sonnet-4-6", max_tokens=100, messages=HELLO)
    assert msg.usage.input_tokens == 3  # anthropic's input_tokens exclude cache reads and writes
    row = only_row(t)
    assert (row.provider, row.api, row.model) == ("anthropic", "messages", "claude-sonnet-4-6")
    tokens = (row.input_tokens, row.cache_read_tokens, row.cache_write_tokens, row.output_tokens)
    assert tokens == (6, 2, 1, 9)
    assert row.cost_usd == genai_cost("claude-sonnet-4-6", "anthropic", input_tokens=6, cache_read_tokens=2,
                                      cache_write_tokens=1, output_tokens=9)


def test_anthropic_stream_sync_and_async(fake):
    async def astream():
        client = anthropic.AsyncAnthropic(base_url=fake.anthropic_base_url, api_key="k", max_retries=0)
        async with client.messages.stream(model="claude-haiku-4-5", max_tokens=100, messages=HELLO) as s:
            return await s.get_final_message()

    with llmcost_nb.track() as t:
        with claude(fake).messages.stream(model="claude-haiku-4-5", max_tokens=100, messages=HELLO) as s:
            s.get_final_message()
        asyncio.run(astream())
    frame = t.calls
    assert list(frame.streamed) == [True, True] and list(frame.status) == ["ok", "ok"]
    assert set(frame.input_tokens) == {HELLO_IN} and set(frame.output_tokens) == {HELLO_OUT}
    assert t.total_cost == 2 * genai_cost("claude-haiku-4-5", "anthropic", input_tokens=6, output_tokens=9)


# -- Gemini -------------------------------------------------------------------------------------------------
def test_gemini_generate_and_stream(fake):
    fake.reasoning_tokens = 5
    client = gemini(fake)
    with llmcost_nb.track() as t:
        client.models.generate_content(model="gemini-2.5-flash", contents="hello there world")
        stream = client.models.generate_content_stream(model="gemini-2.5-flash", contents="hello there world")
        for _ in stream:
            pass
    frame = t.calls
    assert list(frame.api) == ["gemini", "gemini"] and list(frame.streamed) == [False, True]
    assert set(frame.input_tokens) == {HELLO_IN}
    assert set(frame.output_tokens) == {HELLO_OUT + 5} and set(frame.reasoning_tokens) == {5}
    one = genai_cost("gemini-2.5-flash", "google", input_tokens=6, output_tokens=14,
                     output_reasoning_tokens=5)
    assert t.total_cost == 2 * one


# -- retries, faults, streams cut ---------------------------------------------------------------------------
def test_retries_bill_only_the_successful_attempt(fake):
    fake.fail_next(status=429, times=2)
    with llmcost_nb.track() as t:
        resp = oai(fake).chat.completions.create(model="gpt-4.1", messages=HELLO)
    assert resp.usage.prompt_tokens == HELLO_IN
    frame = t.calls
    assert list(frame.status) == ["error", "error", "ok"] and list(frame.billed) == [False, False, True]
    assert list(frame.http_status) == [429, 429, 200]
    assert t.total_cost == genai_cost("gpt-4.1", "openai", input_tokens=6, output_tokens=9)


@pytest.mark.parametrize("tracked", [False, True])
def test_always_failing_raises_the_same_error(fake, tracked):
    fake.fail_always(status=500)
    scope = llmcost_nb.track() if tracked else None
    if scope:
        scope.open()
    with pytest.raises(openai.InternalServerError) as info:
        oai(fake, ).with_options(max_retries=1).chat.completions.create(model="gpt-4.1", messages=HELLO)
    if scope:
        scope.close()
        assert list(scope.calls.status) == ["error", "error"] and scope.total_cost == 0
    assert info.value.status_code == 500


def test_connection_refused_is_recorded_unbilled_and_raised(unused_port):
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{unused_port}/v1", api_key="k", max_retries=0)
    with llmcost_nb.track() as t, pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="gpt-4.1", messages=HELLO)
    row = only_row(t)
    assert (row.status, row.billed) == ("error", False) and "ConnectError" in row.error


def test_stream_cut_by_server_is_unfinished(fake):
    """The user gets what the SDK raises for a cut stream without us (one of its documented errors, or the
    HTTP client's), and the ledger row is unfinished."""

    def cut_stream():
        fake.cut_stream_after(3)
        with pytest.raises((anthropic.APIError, httpx2.HTTPError)) as raised, claude(fake).messages.stream(
                model="claude-haiku-4-5", max_tokens=100, messages=HELLO) as stream:
            for _ in stream:
                pass
        return type(raised.value), str(raised.value)

    capture.uninstall()
    untracked = cut_stream()
    with llmcost_nb.track() as t:
        tracked = cut_stream()
    assert tracked == untracked
    row = only_row(t)
    assert (row.status, row.streamed) == ("unfinished", True)
    assert row.input_tokens == HELLO_IN  # message_start already carried the input tokens


def test_stream_broken_off_by_user_is_unfinished(fake):
    with llmcost_nb.track() as t:
        stream = oai(fake).chat.completions.create(model="gpt-4.1", messages=HELLO, stream=True,
                                                    stream_options={"include_usage": True})
        for _ in stream:
            break
        stream.close()
    row = only_row(t)
    assert (row.status, row.streamed, row.billed) == ("unfinished", True, True)


def test_stream_open_at_scope_end_is_recorded_unfinished_then_updated(fake):
    client = oai(fake)
    with llmcost_nb.track() as t:
        stream = client.chat.completions.create(model="gpt-4.1", messages=HELLO, stream=True,
                                                stream_options={"include_usage": True})
    assert only_row(t).status == "unfinished"
    for _ in stream:
        pass
    row = only_row(t)
    assert (row.status, row.output_tokens) == ("ok", HELLO_OUT)
    stored = llmcost_nb.Ledger().calls()
    assert list(stored.status) == ["ok"]
    assert llmcost_nb.get_session().total_cost == row.cost_usd


def test_gzip_responses(fake):
    fake.gzip = True
    with llmcost_nb.track() as t:
        oai(fake).chat.completions.create(model="gpt-4.1", messages=HELLO)
        with claude(fake).messages.stream(model="claude-haiku-4-5", max_tokens=50, messages=HELLO) as s:
            s.get_final_message()
    frame = t.calls
    assert list(frame.input_tokens) == [HELLO_IN, HELLO_IN] and list(frame.output_tokens) == [9, 9]


def test_legacy_httpx_and_httpx2_clients(fake):
    body = {"model": "gpt-4.1", "messages": HELLO}
    with llmcost_nb.track() as t:
        httpx.post(f"{fake.openai_base_url}/chat/completions", json=body)
        httpx2.post(f"{fake.openai_base_url}/chat/completions", json=body)
        httpx.get(f"{fake.url}/v1/models")  # not an LLM call: passes through unrecorded
    assert list(t.calls.input_tokens) == [HELLO_IN, HELLO_IN]


def test_threads_are_attributed_to_the_active_scope(fake):
    client = oai(fake)
    with llmcost_nb.track(tags={"cell": "7"}) as t, ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: client.chat.completions.create(model="gpt-4.1", messages=HELLO), range(20)))
    frame = t.calls
    assert len(frame) == 20 and set(frame.attribution) == {"active"}
    assert all(tags == {"cell": "7"} for tags in frame.tags)


def test_calls_outside_any_scope_are_recorded_unattributed(fake):
    llmcost_nb.enable()
    oai(fake).chat.completions.create(model="gpt-4.1", messages=HELLO)
    stored = llmcost_nb.Ledger().calls()
    assert list(stored.attribution) == ["none"] and stored.scope_id[0] is None


def test_nested_scopes_merge_tags_and_roll_up(fake):
    client = oai(fake)
    with llmcost_nb.track(tags={"team": "a", "v": "1"}) as outer, llmcost_nb.track(tags={"v": "2"}) as inner:
        client.chat.completions.create(model="gpt-4.1", messages=HELLO)
    assert only_row(inner).tags == {"team": "a", "v": "2"}
    assert len(outer.calls) == 1


def test_unknown_model_keeps_tokens_and_warns_once(fake):
    expected = r"no price known for model 'my-local-llama'.*set_price"
    with pytest.warns(LlmcostWarning, match=expected) as caught, llmcost_nb.track() as t:
        for _ in range(3):
            oai(fake).chat.completions.create(model="my-local-llama", messages=HELLO)
    assert len([w for w in caught if "my-local-llama" in str(w.message)]) == 1
    frame = t.calls
    assert list(frame.input_tokens) == [6, 6, 6] and frame.cost_usd.isna().all()
    llmcost_nb.set_price("my-local-llama", input_mtok="1", output_mtok="2")
    assert llmcost_nb.Ledger().reprice() == 3
    assert llmcost_nb.Ledger().total_cost() == 3 * (6 * Decimal("1e-6") + 9 * Decimal("2e-6"))


def test_results_identical_with_and_without_capture(fake):
    client = oai(fake)
    plain = client.chat.completions.create(model="gpt-4.1", messages=HELLO).model_dump()
    with llmcost_nb.track():
        tracked = client.chat.completions.create(model="gpt-4.1", messages=HELLO).model_dump()
    for key in ("id", "created"):
        plain.pop(key), tracked.pop(key)
    assert plain == tracked


def test_broken_ledger_warns_and_the_call_still_returns(fake, tmp_path):
    bad = tmp_path / "corrupt.db"
    bad.write_bytes(b"garbage" * 1000)
    with (pytest.warns(LlmcostWarning, match="not a usable llmcost_nb ledger"),
          llmcost_nb.track(ledger=bad) as t):
        resp = oai(fake).chat.completions.create(model="gpt-4.1", messages=HELLO)
    assert resp.usage.total_tokens == HELLO_IN + HELLO_OUT
    assert len(t.calls) == 1 and t.calls.cost_usd[0] is None  # kept in memory, not priced without a ledger


def test_uninstall_restores_send():
    import httpx2 as lib

    original = lib.Client.send
    capture.install()
    assert lib.Client.send is not original
    capture.install()  # idempotent
    capture.uninstall()
    assert lib.Client.send is original


def test_no_secret_reaches_the_ledger(fake):
    with llmcost_nb.track():
        oai(fake).chat.completions.create(model="gpt-4.1", messages=HELLO)
        claude(fake).messages.create(model="claude-haiku-4-5", max_tokens=10, messages=HELLO)
        google_client = gemini(fake)  # keep a reference: the client closes its connection pool when collected
        google_client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    llmcost_nb.Ledger().close()
    raw = b"".join(p.read_bytes() for p in ledger_files(llmcost_nb.Ledger().path))
    for secret in (b"sk-test-secret", b"sk-ant-secret", b"goog-secret", b"authorization", b"x-api-key"):
        assert secret not in raw


def test_gemini_async(fake):
    async def main():
        client = gemini(fake)
        async with llmcost_nb.track() as t:
            await client.aio.models.generate_content(model="gemini-2.5-flash", contents="hello there world")
            async for _ in await client.aio.models.generate_content_stream(model="gemini-2.5-flash",
                                                                            contents="hello there world"):
                pass
        return t

    frame = asyncio.run(main()).calls
    assert list(frame.streamed) == [False, True]
    assert list(frame.input_tokens) == [HELLO_IN, HELLO_IN] and list(frame.output_tokens) == [HELLO_OUT] * 2


def test_unwritable_ledger_path_warns_and_the_call_returns(fake, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.warns(LlmcostWarning, match="cannot open the ledger at"), \
            llmcost_nb.track(ledger=blocker / "ledger.db") as t:
        resp = oai(fake).chat.completions.create(model="gpt-4.1", messages=HELLO)
    assert resp.choices[0].message.content.startswith("This is a fake reply")
    assert list(t.calls.input_tokens) == [HELLO_IN]
