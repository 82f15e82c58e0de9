"""Asking OpenAI for a stream's usage, unseen by the caller (issue 16: "Optionally (off by default, a
documented setting): on api.openai.com, ask for stream_options.include_usage and take the extra usage-only
chunk out of what the caller's iterator sees ... only with tests that prove it").

The real openai SDK reaches ``http://api.openai.com/v1`` through the fake provider, used as a plain-HTTP
proxy, so capture sees OpenAI's host. The fake streams as OpenAI's API reference says
(``ChatCompletionStreamOptions``): asked for usage, every chunk carries ``"usage":null`` and one more chunk,
with no choices, carries the usage; not asked, no chunk has a usage key. The proof compares what the caller
reads with the setting on against what the same request reads untracked: the bytes the SDK is given, and the
chunk objects it makes (``to_dict()`` keeps only the fields that were sent). Only ``id`` and ``created``
differ between two requests, by nature, and are set aside.
"""

from __future__ import annotations

import asyncio
import re

import httpx
import httpx2
import openai
import pytest
from _prices import genai_cost

import llmcost_nb
from llmcost_nb import LlmcostWarning
from llmcost_nb.testing import wire
from llmcost_nb.tracking import capture
from llmcost_nb.tracking.ask_usage import HiddenUsage

MESSAGES = [{"role": "user", "content": "hello there how are you"}]
TOKENS = (8, 11)  # the fake's: 5 words + 3 for the message; the 11 words of "This is a fake reply to: ..."


def per_request(data: bytes) -> bytes:
    """What differs between two requests by nature (the completion's id, its time) set aside."""
    return re.sub(rb'"created":\d+', b'"created":0', re.sub(rb"chatcmpl-fake-\d+", b"chatcmpl-fake-N", data))


def dicts(chunks) -> list[dict]:
    return [{**c.to_dict(), "id": "N", "created": 0} for c in chunks]


def openai_client(fake, max_retries: int = 0) -> openai.OpenAI:
    return openai.OpenAI(base_url="http://api.openai.com/v1", api_key="sk-ask", max_retries=max_retries,
                         http_client=openai.DefaultHttpxClient(proxy=fake.url))


def stream_bytes(client: openai.OpenAI, **extra) -> bytes:
    with client.chat.completions.with_streaming_response.create(
            model="gpt-4.1", messages=MESSAGES, stream=True, **extra) as response:
        return b"".join(response.iter_bytes())


def test_an_asked_stream_reads_as_unasked_and_is_recorded_with_openais_own_counts(fake):
    client = openai_client(fake)
    plain_bytes = stream_bytes(client)
    plain = dicts(client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True))
    assert b'"usage"' not in plain_bytes and fake.requests[-1].body.get("stream_options") is None

    llmcost_nb.enable(ask_stream_usage=True)
    with llmcost_nb.track() as t:
        asked_bytes = stream_bytes(client)
        stream = client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True)
        asked = dicts(stream)

    assert per_request(asked_bytes) == per_request(plain_bytes)
    assert asked == plain and len(asked) == 13  # role, 11 words, finish: no usage chunk
    sent = fake.requests[-1]
    assert sent.body["stream_options"] == {"include_usage": True}
    assert sent.headers["accept-encoding"] == "identity"
    assert b"stream_options" not in stream.response.request.content  # the caller's request, as it made it
    calls = t.calls
    assert list(calls.usage_source) == ["provider", "provider"]
    assert list(zip(calls.input_tokens, calls.output_tokens, strict=True)) == [TOKENS, TOKENS]
    cost = genai_cost("gpt-4.1", "openai", input_tokens=TOKENS[0], output_tokens=TOKENS[1])
    assert list(calls.cost_usd) == [cost, cost]


def test_the_async_client_is_asked_the_same_way(fake):
    async def chunks(client: openai.AsyncOpenAI) -> list[dict]:
        stream = await client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True)
        return dicts([chunk async for chunk in stream])

    async def both() -> tuple[list[dict], list[dict], llmcost_nb.Scope]:
        client = openai.AsyncOpenAI(base_url="http://api.openai.com/v1", api_key="sk-ask", max_retries=0,
                                    http_client=openai.DefaultAsyncHttpxClient(proxy=fake.url))
        plain = await chunks(client)
        llmcost_nb.enable(ask_stream_usage=True)
        async with llmcost_nb.track() as scope:
            asked = await chunks(client)
        await client.close()
        return plain, asked, scope

    plain, asked, t = asyncio.run(both())
    assert asked == plain
    assert fake.requests[-1].body["stream_options"] == {"include_usage": True}
    row = t.calls.iloc[0]
    assert (row.usage_source, row.input_tokens, row.output_tokens) == ("provider", *TOKENS)


def test_off_by_default_the_request_is_sent_as_made_and_its_tokens_counted(fake):
    client = openai_client(fake)
    with pytest.warns(LlmcostWarning, match="include_usage"), llmcost_nb.track() as t:
        list(client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True))
    sent = fake.requests[-1]
    assert "stream_options" not in sent.body and sent.headers.get("accept-encoding") != "identity"
    assert t.calls.iloc[0].usage_source == "estimated"


def test_a_caller_that_asked_itself_gets_its_usage_chunk(fake):
    client = openai_client(fake)
    llmcost_nb.enable(ask_stream_usage=True)
    with llmcost_nb.track() as t:
        chunks = list(client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True,
                                                     stream_options={"include_usage": True}))
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == TOKENS[0]
    assert len(chunks) == 14 and "usage" in chunks[0].to_dict()  # as OpenAI sends it: "usage": null
    assert fake.requests[-1].headers.get("accept-encoding") != "identity"  # not rewritten
    assert t.calls.iloc[0].usage_source == "provider"


def test_other_hosts_are_not_asked(fake):
    """An OpenAI-compatible server may not know stream_options: only api.openai.com is asked."""
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="sk-ask", max_retries=0)
    llmcost_nb.enable(ask_stream_usage=True)
    with pytest.warns(LlmcostWarning, match="include_usage"), llmcost_nb.track() as t:
        list(client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True))
    assert "stream_options" not in fake.requests[-1].body
    assert t.calls.iloc[0].usage_source == "estimated"


def test_a_stream_closed_early_reads_as_unasked_and_is_counted(fake):
    client = openai_client(fake)
    plain = client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True)
    first_plain = dicts([next(plain) for _ in range(3)])
    plain.close()
    llmcost_nb.enable(ask_stream_usage=True)
    with llmcost_nb.track() as t:
        asked = client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True)
        first_asked = dicts([next(asked) for _ in range(3)])
        asked.close()
    assert first_asked == first_plain
    row = t.calls.iloc[0]
    assert (row.status, row.usage_source) == ("unfinished", "estimated")


def test_a_stream_gzipped_though_identity_was_asked_reads_as_unasked(fake):
    """A server that ignores ``Accept-Encoding: identity``: the tee decodes, hides, and the response drops
    its content-encoding (the bytes the caller reads are decoded already)."""
    client = openai_client(fake)
    plain_bytes = stream_bytes(client)
    fake.gzip = "always"
    llmcost_nb.enable(ask_stream_usage=True)
    with llmcost_nb.track() as t, client.chat.completions.with_streaming_response.create(
            model="gpt-4.1", messages=MESSAGES, stream=True) as response:
        asked_bytes = b"".join(response.iter_bytes())
        assert "content-encoding" not in response.headers
    assert per_request(asked_bytes) == per_request(plain_bytes)
    row = t.calls.iloc[0]
    assert (row.usage_source, row.input_tokens, row.output_tokens) == ("provider", *TOKENS)


def turn(include_usage: bool) -> wire.Turn:
    body = {"model": "gpt-4.1", "messages": MESSAGES, "stream": True}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    return wire.plan("chat", body, "gpt-4.1", 1, wire.Settings())


@pytest.mark.parametrize("sizes", [None, 1, 7, 64])
def test_hidden_usage_gives_the_unasked_stream_however_the_bytes_are_cut(sizes):
    asked, plain = b"".join(wire.chat_events(turn(True))), b"".join(wire.chat_events(turn(False)))
    created = re.search(rb'"created":(\d+)', plain).group(1)
    asked = re.sub(rb'"created":\d+', b'"created":' + created, asked)
    assert b'"usage":null' in asked and asked != plain
    pieces = [asked] if sizes is None else [asked[i:i + sizes] for i in range(0, len(asked), sizes)]
    hidden = HiddenUsage()
    assert b"".join(hidden.feed(piece) for piece in pieces) + hidden.close() == plain


OPENAI_2025 = (  # the key order of OpenAI's chunks in 2025 (service_tier, obfuscation after usage)
    b'data: {"id":"chatcmpl-x","object":"chat.completion.chunk","created":1761564674,"model":"gpt-4o-mini",'
    b'"service_tier":"default","system_fingerprint":null,"choices":[{"index":0,"delta":{"content":"Hi"},'
    b'"logprobs":null,"finish_reason":null}]%s,"obfuscation":"Gpkah"}\n\n')
OPENAI_2025_USAGE = (
    b'data: {"id":"chatcmpl-x","object":"chat.completion.chunk","created":1761564674,"model":"gpt-4o-mini",'
    b'"service_tier":"default","system_fingerprint":null,"choices":[],"usage":{"prompt_tokens":10,'
    b'"completion_tokens":5,"total_tokens":15},"obfuscation":"8618FsxJD2gV"}\n\n')


@pytest.mark.parametrize(("asked", "plain"), [
    (OPENAI_2025 % b',"usage":null' + OPENAI_2025_USAGE + b"data: [DONE]\n\n",
     OPENAI_2025 % b"" + b"data: [DONE]\n\n"),
    (b'data: {"a":1,"usage": null}\r\n\r\n', b'data: {"a":1}\r\n\r\n'),  # CRLF, a space
    (b'data: {"usage":null,"a":1}\n\n', b'data: {"a":1}\n\n'),  # usage first
    (b'data: {"id":"x","choices":[],"usage":{"prompt_tokens":1}}\n\ndata: [DONE]\n\n', b"data: [DONE]\n\n"),
    (b'data: {"choices":[{"delta":{"content":"\\"usage\\":null"}}]}\n\n',  # in the text: left alone
     b'data: {"choices":[{"delta":{"content":"\\"usage\\":null"}}]}\n\n'),
    (b'data: {"a":1,"usage":null', b'data: {"a":1'),  # cut mid-event: what came, filtered
])
def test_hidden_usage_takes_out_only_what_was_not_asked_for(asked, plain):
    hidden = HiddenUsage()
    assert hidden.feed(asked) + hidden.close() == plain
    events = re.findall(rb".*?(?:\r?\n\r?\n|$)", asked, flags=re.S)  # one read per event, as usual
    hidden = HiddenUsage()
    assert b"".join(hidden.feed(event) for event in events) + hidden.close() == plain


def test_the_setting_is_checked_read_from_the_environment_and_shown(monkeypatch):
    with pytest.raises(TypeError, match="ask_stream_usage must be True or False"):
        llmcost_nb.enable(ask_stream_usage="yes")
    assert not llmcost_nb.get_session().ask_stream_usage
    assert "asked for their usage" not in capture.status_line()
    monkeypatch.setenv("LLMCOST_ASK_STREAM_USAGE", "1")
    llmcost_nb.testing.reset()
    llmcost_nb.enable()
    assert llmcost_nb.get_session().ask_stream_usage
    assert capture.status_line().endswith("· OpenAI streams asked for their usage")
    llmcost_nb.enable(ask_stream_usage=False)
    assert not llmcost_nb.get_session().ask_stream_usage


def test_each_attempt_of_a_retried_request_is_asked(fake):
    client = openai_client(fake, max_retries=1)
    fake.fail_next(500)
    llmcost_nb.enable(ask_stream_usage=True)
    with llmcost_nb.track() as t:
        stream = client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True)
        chunks = list(stream)
    assert [r.body["stream_options"] for r in fake.requests] == [{"include_usage": True}] * 2
    assert len(chunks) == 13 and b"stream_options" not in stream.response.request.content
    assert list(t.calls.status) == ["error", "ok"] and t.calls.iloc[1].usage_source == "provider"


def test_a_recorded_session_is_not_asked(fake, tmp_path):
    """What a recording keeps is replayed to a caller later, so it must be the stream the caller asked for."""
    client = openai_client(fake)
    llmcost_nb.enable(ask_stream_usage=True)
    with pytest.warns(LlmcostWarning, match="include_usage"), \
            llmcost_nb.replay("record", path=tmp_path / "rec"), llmcost_nb.track():
        list(client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True))
    assert "stream_options" not in fake.requests[-1].body


@pytest.mark.parametrize("library", [httpx, httpx2])
def test_a_hand_written_stream_on_either_httpx_is_asked_and_reads_as_unasked(fake, library):
    body = {"model": "gpt-4.1", "messages": MESSAGES, "stream": True}

    def read(client) -> bytes:
        with client.stream("POST", "http://api.openai.com/v1/chat/completions", json=body) as response:
            return b"".join(response.iter_bytes())

    with library.Client(proxy=fake.url) as client:
        plain = read(client)
        llmcost_nb.enable(ask_stream_usage=True)
        with llmcost_nb.track() as t:
            asked = read(client)
    assert per_request(asked) == per_request(plain)
    assert fake.requests[-1].body["stream_options"] == {"include_usage": True}
    assert t.calls.iloc[0].usage_source == "provider"


def test_a_failure_to_ask_sends_the_request_as_made_with_one_warning(fake, monkeypatch):
    """A bug of ours in building the asking request (simulated): the call goes out as the caller made it."""
    from llmcost_nb.tracking import ask_usage

    def broken(*args, **kwargs):
        raise RuntimeError("simulated")

    monkeypatch.setattr(ask_usage, "asking_request", broken)
    client = openai_client(fake)
    llmcost_nb.enable(ask_stream_usage=True)
    with pytest.warns(LlmcostWarning, match="could not ask for a stream's usage"), \
            pytest.warns(LlmcostWarning, match="counted them with tiktoken"), llmcost_nb.track() as t:
        chunks = list(client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True))
    assert len(chunks) == 13 and "stream_options" not in fake.requests[-1].body
    assert t.calls.iloc[0].usage_source == "estimated"
