"""The fake provider (llmcost_nb.testing) against the real openai, anthropic and google-genai clients.

Token counts follow the documented rules (docs/fake_provider.md): input = words of every prompt text + 3 per
message; the reply is "This is a fake reply to: " + the last user text's first 8 words; output = its words.

One server and one client of each SDK serve the whole module (building an SDK client costs 40-110 ms,
mostly its SSL context); ``reset()`` before each test gives it a fresh count, ids from 1 and default settings.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import socket
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import anthropic
import httpx
import httpx2
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from llmcost_nb.testing import wire
from llmcost_nb.testing.fake import FakeProvider, RecordedRequest, count_tokens

HELLO_TEXT = "hello there world"
HELLO = [{"role": "user", "content": HELLO_TEXT}]
HELLO_REPLY = "This is a fake reply to: hello there world"
HELLO_IN, HELLO_OUT = 6, 9  # 3 words + 3 per message; the reply's 9 words


@pytest.fixture(scope="module")
def server():
    with FakeProvider() as fake:
        yield fake


@pytest.fixture
def fake(server):
    server.reset()
    return server


@pytest.fixture(scope="module")
def oai(server):
    with openai.OpenAI(base_url=server.openai_base_url, api_key="sk-test", max_retries=0) as client:
        yield client


@pytest.fixture(scope="module")
def claude(server):
    with anthropic.Anthropic(base_url=server.anthropic_base_url, api_key="sk-ant", max_retries=0) as client:
        yield client


@pytest.fixture(scope="module")
def google(server):
    # Keep the client referenced while using it: a garbage-collected genai.Client closes its connection pool,
    # so ``genai.Client(...).models.generate_content(...)`` on a temporary fails mid-call.
    client = genai.Client(api_key="goog-test", http_options={"base_url": server.gemini_base_url})
    yield client
    client.close()


@pytest.fixture(scope="module")
def http():
    with httpx2.Client() as client:
        yield client


def chat(client, **kw):
    """A chat completion of HELLO (model gpt-4.1 unless given)."""
    return client.chat.completions.create(**{"model": "gpt-4.1", "messages": HELLO, **kw})


def sse_data(text: str) -> list[str]:
    return [line[6:] for line in text.splitlines() if line.startswith("data: ")]


# -- the rules ----------------------------------------------------------------------------------------------
def test_token_rules():
    assert count_tokens("") == 0 and count_tokens("  hello\nthere\tworld ") == 3
    long = [{"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "one two"},
                                         {"type": "image_url", "image_url": {"url": "x"}},
                                         {"type": "text", "text": "three four five six seven eight nine"}]}]
    turn = wire.plan("chat", {"messages": long}, "m", 1, wire.Settings())
    assert turn.prompt == 2 + 9 + 2 * 3
    assert turn.text == "This is a fake reply to: one two three four five six seven eight"  # 8 words only
    assert turn.words == 14
    no_user = wire.plan("chat", {"messages": [{"role": "system", "content": "x"}]}, "m", 1, wire.Settings())
    assert (no_user.text, no_user.words) == ("This is a fake reply to:", 6)
    responses = {"instructions": "be brief", "input": [{"role": "user", "content": "a b"},
                                                       {"role": "assistant", "content": "c"}]}
    assert wire.plan("responses", responses, "m", 1, wire.Settings()).prompt == 2 + 3 + 2 * 3
    system_blocks = {"system": [{"type": "text", "text": "x y"}], "messages": HELLO}
    assert wire.plan("messages", system_blocks, "m", 1, wire.Settings()).prompt == 2 + HELLO_IN
    contents = {"systemInstruction": {"parts": [{"text": "x y"}]},
                "contents": [{"parts": [{"text": "a b c"}]}, {"role": "model", "parts": [{"text": "d"}]}]}
    turn = wire.plan("gemini", contents, "m", 1, wire.Settings())
    assert (turn.prompt, turn.text) == (2 + 4 + 2 * 3, "This is a fake reply to: a b c")


# -- OpenAI chat completions --------------------------------------------------------------------------------
def test_openai_chat(fake, oai):
    raw = oai.chat.completions.with_raw_response.create(model="gpt-4.1", messages=HELLO)
    resp = raw.parse()
    assert resp.choices[0].message.content == HELLO_REPLY and resp.choices[0].finish_reason == "stop"
    assert (resp.id, resp.model, raw.headers["x-request-id"]) == ("chatcmpl-fake-1", "gpt-4.1", "req_fake_1")
    usage = resp.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (HELLO_IN, HELLO_OUT, 15)
    assert usage.prompt_tokens_details.cached_tokens == 0
    assert usage.completion_tokens_details.reasoning_tokens == 0
    [request] = fake.requests
    assert isinstance(request, RecordedRequest) and fake.request_count == 1
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.headers["authorization"] == "Bearer sk-test" and request.body["messages"] == HELLO


def test_openai_chat_cached_reasoning_and_audio(fake, oai):
    fake.cached_tokens, fake.reasoning_tokens, fake.audio_input_tokens = 4, 20, 5
    usage = chat(oai, model="o3").usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (11, 29, 40)
    assert usage.prompt_tokens_details.cached_tokens == 4 and usage.prompt_tokens_details.audio_tokens == 5
    assert usage.completion_tokens_details.reasoning_tokens == 20
    fake.cached_tokens = 1000  # capped at the input
    assert chat(oai, model="o3").usage.prompt_tokens_details.cached_tokens == 11


@pytest.mark.parametrize("include_usage", [True, False])
def test_openai_chat_stream(fake, oai, http, include_usage):
    options = {"stream_options": {"include_usage": True}} if include_usage else {}
    chunks = list(chat(oai, stream=True, **options))
    assert chunks[0].choices[0].delta.role == "assistant"
    contents = [c.choices[0].delta.content for c in chunks[1:] if c.choices and c.choices[0].delta.content]
    assert len(contents) == HELLO_OUT and "".join(contents) == HELLO_REPLY
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["stop"]
    if include_usage:
        assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == HELLO_IN
        assert chunks[-1].usage.completion_tokens == HELLO_OUT
        assert len(chunks) == 1 + HELLO_OUT + 2
    else:
        assert all(c.usage is None for c in chunks) and len(chunks) == 1 + HELLO_OUT + 1
    body = {"model": "gpt-4.1", "messages": HELLO, "stream": True, **options}
    resp = http.post(f"{fake.openai_base_url}/chat/completions", json=body)
    assert resp.headers["content-type"] == "text/event-stream"
    assert resp.headers["transfer-encoding"] == "chunked" and "content-length" not in resp.headers
    assert sse_data(resp.text)[-1] == "[DONE]"


def test_openai_chat_max_tokens_truncates(fake, oai):
    resp = chat(oai, max_completion_tokens=3)
    assert (resp.choices[0].message.content, resp.choices[0].finish_reason) == ("This is a", "length")
    assert resp.usage.completion_tokens == 3
    fake.reasoning_tokens = 2
    assert chat(oai, max_tokens=4).usage.completion_tokens == 4 + 2
    chunks = list(chat(oai, max_tokens=2, stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "This is"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].usage.completion_tokens == 2 + 2
    assert chat(oai, max_tokens=100).choices[0].finish_reason == "stop"


def test_openai_async_chat_and_stream(fake):
    async def main():
        async with openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="k", max_retries=0) as client:
            results = await asyncio.gather(*[chat(client, model="gpt-4.1-mini") for _ in range(8)])
            stream = await chat(client, stream=True, stream_options={"include_usage": True})
            return results, [chunk async for chunk in stream]

    results, chunks = asyncio.run(main())
    assert {r.usage.total_tokens for r in results} == {HELLO_IN + HELLO_OUT}
    assert len({r.id for r in results}) == 8 and chunks[-1].usage.completion_tokens == HELLO_OUT
    assert fake.request_count == 9


def test_custom_reply_and_latency(fake, oai):
    fake.reply = "  Short\n answer  "
    resp = chat(oai)
    assert (resp.choices[0].message.content, resp.usage.completion_tokens) == ("  Short\n answer  ", 2)
    assert "".join(c.choices[0].delta.content or "" for c in chat(oai, stream=True)) == "  Short\n answer  "
    fake.reply = lambda body, model: f"{model} saw {len(body['messages'])} messages"
    assert chat(oai, model="m1").choices[0].message.content == "m1 saw 1 messages"
    fake.reply = lambda body, model: 1 / 0
    with pytest.raises(openai.InternalServerError, match="ZeroDivisionError"):
        chat(oai)
    fake.reply, fake.latency = None, 0.2
    start = time.perf_counter()
    assert chat(oai).choices[0].message.content == HELLO_REPLY
    assert time.perf_counter() - start >= 0.2


# -- OpenAI responses and embeddings ------------------------------------------------------------------------
def test_openai_responses(fake, oai):
    resp = oai.responses.create(model="gpt-4.1", input=HELLO_TEXT, instructions="be brief")
    assert (resp.id, resp.object, resp.status) == ("resp_fake_1", "response", "completed")
    assert resp.model == "gpt-4.1"
    assert resp.output_text == HELLO_REPLY
    usage = resp.usage
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (HELLO_IN + 2, HELLO_OUT, 17)
    fake.cached_tokens, fake.reasoning_tokens = 3, 7
    items = [{"role": "user", "content": [{"type": "input_text", "text": HELLO_TEXT}]}]
    usage = oai.responses.create(model="o3", input=items).usage
    assert (usage.input_tokens, usage.output_tokens) == (HELLO_IN, HELLO_OUT + 7)
    assert usage.input_tokens_details.cached_tokens == 3 and usage.output_tokens_details.reasoning_tokens == 7
    cut = oai.responses.create(model="gpt-4.1", input=HELLO_TEXT, max_output_tokens=5)
    assert (cut.status, cut.incomplete_details.reason) == ("incomplete", "max_output_tokens")
    assert cut.output_text == "This is a fake reply" and cut.usage.output_tokens == 5 + 7


def test_openai_responses_stream(fake, oai):
    with oai.responses.stream(model="gpt-4.1", input=HELLO_TEXT) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert kinds.count("response.output_text.delta") == HELLO_OUT and kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert final.output_text == HELLO_REPLY
    assert (final.usage.input_tokens, final.usage.output_tokens) == (HELLO_IN, HELLO_OUT)

    async def main():
        async with openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="k", max_retries=0) as client:
            stream = await client.responses.create(model="gpt-4.1", input=HELLO_TEXT, stream=True,
                                                   max_output_tokens=2)
            return [event async for event in stream]

    events = asyncio.run(main())
    assert events[-1].type == "response.incomplete" and events[-1].response.usage.output_tokens == 2


def test_openai_embeddings(fake, oai, http):
    resp = oai.embeddings.create(model="text-embedding-3-small", input=["one two", "three"])
    assert fake.requests[-1].body["encoding_format"] == "base64"  # the SDK's default; it decodes the floats
    assert [d.embedding for d in resp.data] == [wire.embedding("one two"), wire.embedding("three")]
    assert len(resp.data[0].embedding) == 8 and (resp.usage.prompt_tokens, resp.usage.total_tokens) == (3, 3)
    floats = oai.embeddings.create(model="m", input="a b c d", encoding_format="float")
    assert floats.data[0].embedding == wire.embedding("a b c d") and floats.usage.prompt_tokens == 4
    raw = http.post(f"{fake.openai_base_url}/embeddings",
                    json={"model": "m", "input": [[1, 2, 3]], "encoding_format": "base64"}).json()
    vector = struct.unpack("<8f", base64.b64decode(raw["data"][0]["embedding"]))
    assert list(vector) == wire.embedding("1 2 3") and raw["usage"]["prompt_tokens"] == 3


# -- Anthropic ----------------------------------------------------------------------------------------------
def test_anthropic_messages(fake, claude):
    fake.cached_tokens, fake.cache_write_tokens, fake.reasoning_tokens = 2, 1, 50
    raw = claude.messages.with_raw_response.create(model="claude-sonnet-4-6", max_tokens=100,
                                                   system="be brief", messages=HELLO)
    msg = raw.parse()
    assert raw.headers["request-id"] == raw.headers["x-request-id"] == "req_fake_1"
    assert (msg.id, msg.model, msg.stop_reason) == ("msg_fake_1", "claude-sonnet-4-6", "end_turn")
    assert msg.content[0].text == HELLO_REPLY
    usage = msg.usage  # input excludes cache reads and writes; no reasoning in anthropic output
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (5, 2, 1)
    assert usage.output_tokens == HELLO_OUT
    short = claude.messages.create(model="claude-haiku-4-5", max_tokens=2, messages=HELLO)
    assert (short.stop_reason, short.content[0].text) == ("max_tokens", "This is")
    assert short.usage.output_tokens == 2


def test_anthropic_stream_sync_and_async(fake, claude, http):
    with claude.messages.stream(model="claude-haiku-4-5", max_tokens=100, messages=HELLO) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert final.content[0].text == HELLO_REPLY
    assert (final.usage.input_tokens, final.usage.output_tokens) == (HELLO_IN, HELLO_OUT)
    assert kinds.count("content_block_delta") >= HELLO_OUT and kinds[-1] == "message_stop"

    async def main():
        client = anthropic.AsyncAnthropic(base_url=fake.anthropic_base_url, api_key="k", max_retries=0)
        async with client, client.messages.stream(model="claude-haiku-4-5", max_tokens=100,
                                                  messages=HELLO) as stream:
            return await stream.get_final_message()

    assert asyncio.run(main()).usage.output_tokens == HELLO_OUT
    body = {"model": "claude-haiku-4-5", "max_tokens": 100, "messages": HELLO, "stream": True}
    text = http.post(f"{fake.url}/v1/messages", json=body).text
    events = [line[7:] for line in text.splitlines() if line.startswith("event: ")]
    assert events == ["message_start", "ping", "content_block_start", *["content_block_delta"] * HELLO_OUT,
                      "content_block_stop", "message_delta", "message_stop"]
    start, delta = json.loads(sse_data(text)[0]), json.loads(sse_data(text)[-2])
    assert start["message"]["usage"]["input_tokens"] == 6 and start["message"]["usage"]["output_tokens"] == 1
    assert delta["usage"] == {"output_tokens": HELLO_OUT} and delta["delta"]["stop_reason"] == "end_turn"


# -- Gemini -------------------------------------------------------------------------------------------------
def test_gemini_generate_and_stream(fake, google):
    fake.reasoning_tokens, fake.cached_tokens = 5, 2
    resp = google.models.generate_content(model="gemini-2.5-flash", contents=HELLO_TEXT)
    assert resp.text == HELLO_REPLY and resp.model_version == "gemini-2.5-flash"
    assert resp.response_id == "resp_fake_1" and resp.candidates[0].finish_reason == "STOP"
    usage = resp.usage_metadata
    assert (usage.prompt_token_count, usage.candidates_token_count, usage.thoughts_token_count) == (6, 9, 5)
    assert (usage.cached_content_token_count, usage.total_token_count) == (2, 6 + 9 + 5)
    assert fake.requests[0].path.endswith("/models/gemini-2.5-flash:generateContent")
    chunks = list(google.models.generate_content_stream(model="gemini-2.5-flash", contents=HELLO_TEXT))
    assert len(chunks) == HELLO_OUT and "".join(c.text for c in chunks) == HELLO_REPLY
    assert [c.usage_metadata.candidates_token_count for c in chunks] == list(range(1, 10))
    assert chunks[-1].usage_metadata.total_token_count == 20
    assert chunks[-1].candidates[0].finish_reason == "STOP"
    assert fake.requests[1].path.endswith(":streamGenerateContent?alt=sse")


def test_gemini_config_and_async(fake, google):
    config = genai_types.GenerateContentConfig(system_instruction="be brief", max_output_tokens=3)
    resp = google.models.generate_content(model="gemini-2.5-pro", contents=HELLO_TEXT, config=config)
    assert (resp.text, resp.candidates[0].finish_reason) == ("This is a", "MAX_TOKENS")
    usage = resp.usage_metadata
    assert (usage.prompt_token_count, usage.candidates_token_count) == (2 + HELLO_IN, 3)
    assert usage.thoughts_token_count is None and usage.cached_content_token_count is None

    async def main():
        first = await google.aio.models.generate_content(model="gemini-2.5-flash", contents=HELLO_TEXT)
        stream = await google.aio.models.generate_content_stream(model="gemini-2.5-flash", contents="hi")
        return first, [chunk async for chunk in stream]

    first, chunks = asyncio.run(main())
    assert first.usage_metadata.total_token_count == 15
    assert "".join(c.text for c in chunks) == "This is a fake reply to: hi"


# -- transport: gzip, keep-alive, streaming -----------------------------------------------------------------
def test_gzip(fake, oai, claude, google, http):
    body = {"model": "gpt-4.1", "messages": HELLO}
    url = f"{fake.openai_base_url}/chat/completions"
    assert "content-encoding" not in http.post(url, json=body).headers  # off by default
    fake.gzip = True
    resp = http.post(url, json=body)
    assert resp.headers["content-encoding"] == "gzip" and resp.json()["usage"]["total_tokens"] == 15
    with http.stream("POST", url, json=body) as raw:
        assert json.loads(gzip.decompress(b"".join(raw.iter_raw())))["usage"]["prompt_tokens"] == HELLO_IN
    identity = http.post(url, json=body, headers={"accept-encoding": "identity"})
    assert "content-encoding" not in identity.headers
    assert chat(oai).usage.total_tokens == 15
    with claude.messages.stream(model="claude-haiku-4-5", max_tokens=50, messages=HELLO) as stream:
        assert stream.get_final_message().usage.output_tokens == HELLO_OUT
    with http.stream("POST", url, json={**body, "stream": True}) as resp:
        assert resp.headers["content-encoding"] == "gzip"
        assert sse_data(resp.read().decode())[-1] == "[DONE]"
    chunks = list(google.models.generate_content_stream(model="gemini-2.5-flash", contents="x"))
    assert "".join(c.text for c in chunks) == "This is a fake reply to: x"


@pytest.mark.parametrize("use_gzip", [False, True])
def test_streams_arrive_incrementally(use_gzip):
    """Each event reaches the client when the server writes it: with 2 s between events, the first one is in
    the client's hands while the server still has ten to write, so closing the server then cuts the stream
    (a server that sent the stream whole would have delivered every event before the first was read)."""
    with (FakeProvider() as own,
          openai.OpenAI(base_url=own.openai_base_url, api_key="k", max_retries=0) as client):
        own.gzip, own.stream_delay = use_gzip, 2.0
        stream = chat(client, stream=True)
        received = [next(iter(stream))]
        assert received[0].choices[0].delta.role == "assistant"
        own.close()  # drops the open connection
        with pytest.raises((openai.APIError, httpx2.HTTPError)):
            for chunk in stream:
                received.append(chunk)
    assert len(received) < 1 + HELLO_OUT + 1


def test_keep_alive_and_content_length(fake, http):
    body = json.dumps({"model": "m", "messages": HELLO}).encode()
    request = (b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
               b"content-length: %d\r\n\r\n%b" % (len(body), body))
    with socket.create_connection((fake.host, fake.port), timeout=5) as sock, sock.makefile("rb") as reader:
        for n in (1, 2):  # two requests on one connection
            sock.sendall(request)
            assert reader.readline() == b"HTTP/1.1 200 OK\r\n"
            headers = {}
            while (line := reader.readline()) != b"\r\n":
                key, _, value = line.decode().partition(":")
                headers[key.lower()] = value.strip()
            answer = json.loads(reader.read(int(headers["content-length"])))
            assert answer["id"] == f"chatcmpl-fake-{n}" and headers["x-request-id"] == f"req_fake_{n}"
    for n in range(3, 203):  # a pooled client: every request answered, in order
        resp = http.post(f"{fake.openai_base_url}/chat/completions", json={"model": "m", "messages": HELLO})
        assert (resp.status_code, resp.headers["x-request-id"]) == (200, f"req_fake_{n}")
    assert fake.request_count == 202


def test_concurrent_requests_are_all_counted(fake, oai):
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda _: chat(oai).id, range(40)))
    assert fake.request_count == 40 == len(fake.requests) and len(set(ids)) == 40
    fake.record_requests = False
    chat(oai)
    assert fake.request_count == 41 and len(fake.requests) == 40


# -- faults -------------------------------------------------------------------------------------------------
def test_429_then_success_with_sdk_retries(fake, oai, claude):
    fake.fail_next(status=429, times=2)  # answered with retry-after-ms: 1 (test_error_shapes_and_headers)
    resp = chat(oai.with_options(max_retries=3))
    assert resp.usage.prompt_tokens == HELLO_IN and fake.request_count == 3
    assert [r.headers.get("x-stainless-retry-count") for r in fake.requests] == ["0", "1", "2"]
    fake.fail_next(status=429)
    msg = claude.with_options(max_retries=2).messages.create(model="claude-haiku-4-5", max_tokens=10,
                                                             messages=HELLO)
    assert msg.usage.output_tokens == HELLO_OUT and fake.request_count == 5


def test_error_shapes_and_headers(fake, oai, claude, google, http):
    fake.fail_next(status=429, times=3)
    with pytest.raises(openai.RateLimitError) as info:
        chat(oai)
    assert info.value.body["code"] == "rate_limit_exceeded"
    headers = info.value.response.headers
    assert (headers["retry-after"], headers["retry-after-ms"]) == ("0", "1")
    assert headers["x-request-id"] == "req_fake_1"
    with pytest.raises(anthropic.RateLimitError) as info:
        claude.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=HELLO)
    assert info.value.body["type"] == "error" and info.value.body["error"]["type"] == "rate_limit_error"
    with pytest.raises(genai_errors.ClientError) as info:  # google-genai does not retry by default
        google.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert (info.value.code, info.value.status) == (429, "RESOURCE_EXHAUSTED")
    assert chat(oai).usage.total_tokens == 15

    url = f"{fake.openai_base_url}/chat/completions"
    fake.fail_next(status=503, body="upstream down", headers={"Retry-After": "7", "x-extra": "1"})
    resp = http.post(url, json={"model": "m", "messages": HELLO})
    assert (resp.status_code, resp.text) == (503, "upstream down")
    assert resp.headers["content-type"] == "text/plain; charset=utf-8"
    assert (resp.headers["retry-after"], resp.headers["x-extra"]) == ("7", "1")
    fake.fail_next(status=400, body={"error": {"message": "custom"}})
    resp = http.post(url, json={"model": "m", "messages": HELLO})
    assert resp.json() == {"error": {"message": "custom"}} and "retry-after" not in resp.headers


def test_fail_always_until_reset(fake, oai, claude, google):
    fake.fail_always(status=500)
    with pytest.raises(openai.InternalServerError) as info:
        chat(oai.with_options(max_retries=2))
    assert info.value.status_code == 500 and info.value.body["type"] == "server_error"
    assert fake.request_count == 3
    with pytest.raises(anthropic.InternalServerError):
        claude.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=HELLO)
    with pytest.raises(genai_errors.ServerError):
        google.models.generate_content(model="gemini-2.5-flash", contents="hi")
    fake.reset()
    assert fake.request_count == 0 and fake.requests == []
    assert chat(oai).id == "chatcmpl-fake-1"


def test_cut_stream_after(fake, oai, claude, google):
    """A cut stream ends without its end (an incomplete chunked body): each SDK raises one of its documented
    errors for that (or lets the HTTP client's error through) after exactly the events sent."""
    fake.cut_stream_after(3)
    received = []
    with pytest.raises((openai.APIError, httpx2.HTTPError)):
        for chunk in chat(oai, stream=True, stream_options={"include_usage": True}):
            received.append(chunk)
    assert len(received) == 3 and all(c.usage is None for c in received)
    assert chat(oai).usage.total_tokens == 15  # the cut is used up

    fake.cut_stream_after(3)
    events = []
    with pytest.raises((anthropic.APIError, httpx2.HTTPError)), claude.messages.stream(
            model="claude-haiku-4-5", max_tokens=100, messages=HELLO) as stream:
        for event in stream:
            events.append(event.type)
    assert events[0] == "message_start" and "message_stop" not in events
    fake.cut_stream_after(2)
    chunks = []
    with pytest.raises((genai_errors.APIError, httpx2.HTTPError, httpx.HTTPError)):  # google-genai < 3: httpx
        for chunk in google.models.generate_content_stream(model="gemini-2.5-flash", contents="hello"):
            chunks.append(chunk)
    assert len(chunks) == 2
    fake.gzip = True
    fake.cut_stream_after(4)
    events = []
    with pytest.raises((openai.APIError, httpx2.HTTPError)), oai.responses.stream(
            model="gpt-4.1", input="hello") as stream:
        for event in stream:
            events.append(event)
    assert len(events) == 4
    fake.cut_stream_after(1000)  # longer than the stream: it ends normally
    assert len(list(chat(oai, stream=True))) == 11


def test_unknown_paths_and_bad_bodies(fake, oai, http):
    resp = http.get(f"{fake.url}/v1/models")
    assert resp.status_code == 404 and resp.json()["error"]["type"] == "invalid_request_error"
    resp = http.post(f"{fake.url}/v1/messages/batches", json={})
    assert resp.status_code == 404 and resp.json()["error"]["type"] == "not_found_error"
    resp = http.post(f"{fake.url}/v1beta/models/gemini-2.5-flash:countTokens", json={})
    assert resp.status_code == 404 and resp.json()["error"]["status"] == "NOT_FOUND"
    resp = http.post(f"{fake.openai_base_url}/chat/completions", content=b"{not json")
    assert resp.status_code == 400 and "parse" in resp.json()["error"]["message"]
    with pytest.raises(openai.BadRequestError):
        oai.chat.completions.create(model="m", messages="not a list")
    count = http.post(f"{fake.url}/v1/messages/count_tokens", json={"model": "m", "messages": HELLO}).json()
    assert count == {"input_tokens": HELLO_IN} and fake.request_count == 6


def test_client_disconnect_mid_stream_is_quiet(fake, oai, capfd):
    fake.stream_delay = 0.02
    stream = chat(oai, stream=True)
    next(iter(stream))
    stream.close()
    time.sleep(0.15)  # the server finds the closed connection while writing
    assert chat(oai).usage.total_tokens == 15
    assert capfd.readouterr().err == ""


def test_close_stops_the_server():
    fake = FakeProvider()
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="k", max_retries=0)
    chat(client)  # leaves a pooled keep-alive connection open
    assert repr(fake) == f"<FakeProvider {fake.url} (1 requests)>" and fake.url.startswith("http://127.0.0.1:")
    assert fake.anthropic_base_url == fake.gemini_base_url == fake.url == fake.openai_base_url[:-3]
    fake.close()  # returns although a keep-alive connection is open: it is dropped
    fake.close()  # idempotent
    assert "closed" in repr(fake)
    assert f"llmcost-fake-provider:{fake.port}" not in {thread.name for thread in threading.enumerate()}
    with pytest.raises(openai.APIConnectionError):
        chat(client)
    with pytest.raises(OSError):
        socket.create_connection((fake.host, fake.port), timeout=1).close()
    client.close()
