"""Capture on every common HTTP stack, through the real libraries against the fake provider on loopback:
requests, urllib3, urllib.request and aiohttp by hand; google-genai's async client on aiohttp; openai and
anthropic with their aiohttp clients; boto3's bedrock-runtime (Converse, ConverseStream, InvokeModel,
InvokeModelWithResponseStream) for the Anthropic, Amazon Nova, Amazon Titan and Meta body formats.

Token counts follow the fake provider's rules (docs/fake_provider.md): "hello there world" as one message is
3 words + 3 overhead = 6 input tokens; a bare prompt string (Titan, Llama) is 3; the reply
"This is a fake reply to: hello there world" is 9 output tokens. Costs are genai-prices' own, and a few are
stated outright from the unit prices.
"""

from __future__ import annotations

import ast
import asyncio
import gc
import http.client
import json
import re
import urllib.request
import warnings
from decimal import Decimal

import aiohttp
import anthropic
import boto3
import botocore.httpsession
import genai_prices
import openai
import pytest
import requests
import urllib3
import urllib3.connection
from google import genai

import llmcost_nb
from llmcost_nb import LlmcostWarning, budget
from llmcost_nb.pricing.tokens import count_tokens, request_input_tokens
from llmcost_nb.tracking import capture, hooks
from llmcost_nb.tracking import recorder as _recorder

HELLO = [{"role": "user", "content": "hello there world"}]
REPLY = "This is a fake reply to: hello there world"
CONVERSE_HELLO = [{"role": "user", "content": [{"text": "hello there world"}]}]


def genai_cost(model, provider, **usage):
    return genai_prices.calc_price(genai_prices.Usage(**usage), model, provider_id=provider).total_price


def only_row(scope):
    frame = scope.calls
    assert len(frame) == 1, frame
    return frame.iloc[0]


def same_bytes(data: bytes) -> bytes:
    """A response with what differs between two requests to the fake (its request number, the time) masked."""
    return re.sub(rb'"created(_at)?":\d+', b'"created":0', re.sub(rb"(fake[-_])\d+", rb"\1N", data))


# -- requests, urllib3, urllib.request, aiohttp by hand ------------------------------------------------------
def raw_call(stack: str, url: str, body: dict, stream: bool) -> bytes:
    """POST ``body`` as JSON with ``stack``; the response body as the library hands it to its caller."""
    if stack == "requests":
        if stream:
            with requests.post(url, json=body, stream=True) as resp:
                return b"".join(resp.iter_content(chunk_size=None))
        return requests.post(url, json=body).content
    if stack == "urllib3":
        if stream:
            resp = urllib3.request("POST", url, json=body, preload_content=False)
            data = b"".join(resp.stream(64))
            resp.release_conn()
            return data
        return urllib3.request("POST", url, json=body).data
    if stack == "urllib.request":
        req = urllib.request.Request(url, data=json.dumps(body).encode(),
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req) as resp:
            return b"".join(resp) if stream else resp.read()

    async def go() -> bytes:
        async with aiohttp.ClientSession() as session, session.post(url, json=body) as resp:
            if stream:
                return b"".join([chunk async for chunk in resp.content.iter_any()])
            return await resp.read()

    return asyncio.run(go())


RAW_STACKS = ["requests", "urllib3", "urllib.request", "aiohttp"]
APIS = {  # api -> (path under the fake's url, body, model, provider)
    "chat": ("/v1/chat/completions", {"model": "gpt-4.1", "messages": HELLO}, "gpt-4.1", "openai"),
    "messages": ("/v1/messages", {"model": "claude-haiku-4-5", "max_tokens": 50, "messages": HELLO},
                 "claude-haiku-4-5", "anthropic"),
}


def stream_body(api: str, body: dict) -> dict:
    return {**body, "stream": True, **({"stream_options": {"include_usage": True}} if api == "chat" else {})}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("api", list(APIS))
@pytest.mark.parametrize("stack", RAW_STACKS)
def test_raw_stack_records_each_call_once_and_leaves_it_unchanged(fake, stack, api, stream):
    path, body, model, provider = APIS[api]
    body = stream_body(api, body) if stream else body
    untracked = raw_call(stack, fake.url + path, body, stream)
    with llmcost_nb.track(tags={"stack": stack}) as t:
        tracked = raw_call(stack, fake.url + path, body, stream)
    assert same_bytes(tracked) == same_bytes(untracked) and REPLY.split()[-1].encode() in tracked
    row = only_row(t)
    assert (row.api, row.model, row.host, row.tags) == (api, model, "127.0.0.1", {"stack": stack})
    assert (row.input_tokens, row.output_tokens, row.status, row.streamed) == (6, 9, "ok", stream)
    assert row.cost_usd == genai_cost(model, provider, input_tokens=6, output_tokens=9)
    assert row.request_id == "req_fake_2" and row.billed
    assert fake.request_count == 2


def test_gzip_and_a_stream_closed_early_on_requests(fake):
    fake.gzip = True
    path, body, _, _ = APIS["chat"]
    with llmcost_nb.track() as t:
        assert REPLY in requests.post(fake.url + path, json=body).json()["choices"][0]["message"]["content"]
        with requests.post(fake.url + path, json=stream_body("chat", body), stream=True) as resp:
            first = next(resp.iter_lines())  # then closed by the with: the rest never read
    assert first.startswith(b"data: {")
    whole, cut = t.calls.itertuples()
    assert (whole.input_tokens, whole.output_tokens, whole.status) == (6, 9, "ok")
    # closed after its first line: the prompt is billed, counted by us (the output seen depends on how the
    # network split the chunks)
    assert (cut.status, cut.streamed, cut.input_tokens) == ("unfinished", True, 10)
    assert cut.usage_source == "estimated"


@pytest.mark.parametrize("stack", ["requests", "aiohttp"])  # both ask for gzip; aiohttp decodes as it reads
def test_gzip_bodies_and_streams_are_decoded(fake, stack):
    fake.gzip = True
    path, body, _, _ = APIS["messages"]
    with llmcost_nb.track() as t:
        whole = raw_call(stack, fake.url + path, body, False)
        streamed = raw_call(stack, fake.url + path, stream_body("messages", body), True)
    assert json.loads(whole)["content"][0]["text"] == REPLY and b"message_stop" in streamed
    assert [(r.input_tokens, r.output_tokens, r.streamed) for r in t.calls.itertuples()] == [
        (6, 9, False), (6, 9, True)]
    assert fake.requests[-1].headers["accept-encoding"].startswith("gzip")


def test_other_requests_pass_untouched(fake):
    with llmcost_nb.track() as t:
        assert requests.get(fake.url + "/v1/models").status_code == 404
        assert urllib3.request("POST", fake.url + "/v1/unknown", json={}).status == 404
    assert t.calls.empty and fake.request_count == 2


def test_an_error_is_recorded_unbilled(fake):
    fake.fail_next(status=429)
    path, body, _, _ = APIS["chat"]
    with llmcost_nb.track() as t:
        assert requests.post(fake.url + path, json=body).status_code == 429
    row = only_row(t)
    assert (row.status, row.billed, row.http_status) == ("error", False, 429)
    assert "Injected failure" in row.error


# -- SDKs on aiohttp -----------------------------------------------------------------------------------------
def test_google_genai_async_picks_aiohttp_and_is_recorded(fake):
    client = genai.Client(api_key="goog-secret", http_options={"base_url": fake.gemini_base_url})
    assert client.aio._api_client._use_aiohttp()  # what this test is about: aiohttp, not httpx

    async def main():
        whole = await client.aio.models.generate_content(model="gemini-2.5-flash",
                                                         contents="hello there world")
        chunks = await client.aio.models.generate_content_stream(model="gemini-2.5-flash",
                                                                 contents="hello there world")
        return whole.text, "".join([chunk.text async for chunk in chunks])

    with llmcost_nb.track() as t:
        assert asyncio.run(main()) == (REPLY, REPLY)
    cost = genai_cost("gemini-2.5-flash", "google", input_tokens=6, output_tokens=9)
    rows = [(r.api, r.input_tokens, r.output_tokens, r.streamed, r.cost_usd) for r in t.calls.itertuples()]
    assert rows == [("gemini", 6, 9, False, cost), ("gemini", 6, 9, True, cost)]


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_sdk_aiohttp_clients_are_recorded_once(fake, sdk):
    async def main():
        if sdk == "openai":
            async with openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="sk-test",
                                          http_client=openai.DefaultAioHttpClient()) as client:
                whole = await client.chat.completions.create(model="gpt-4.1", messages=HELLO)
                stream = await client.chat.completions.create(model="gpt-4.1", messages=HELLO, stream=True,
                                                              stream_options={"include_usage": True})
                text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
                return whole.choices[0].message.content, text
        async with anthropic.AsyncAnthropic(base_url=fake.anthropic_base_url, api_key="sk-ant",
                                            http_client=anthropic.DefaultAioHttpClient()) as client:
            whole = await client.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=HELLO)
            async with client.messages.stream(model="claude-haiku-4-5", max_tokens=50, messages=HELLO) as s:
                text = "".join([piece async for piece in s.text_stream])
            return whole.content[0].text, text

    with llmcost_nb.track() as t:
        assert asyncio.run(main()) == (REPLY, REPLY)
    model, provider = ("gpt-4.1", "openai") if sdk == "openai" else ("claude-haiku-4-5", "anthropic")
    cost = genai_cost(model, provider, input_tokens=6, output_tokens=9)
    rows = [(r.model, r.input_tokens, r.output_tokens, r.streamed, r.cost_usd) for r in t.calls.itertuples()]
    assert rows == [(model, 6, 9, False, cost), (model, 6, 9, True, cost)]  # once each, not twice
    assert fake.request_count == 2


def test_httpx_aiohttp_client_is_recorded_once(fake):
    """httpx-aiohttp's client is an httpx.AsyncClient sending through aiohttp: httpx's hook records it, the
    aiohttp hook below stands aside."""
    import httpx_aiohttp

    async def main():
        async with httpx_aiohttp.HttpxAiohttpClient() as client:
            whole = await client.post(fake.url + APIS["chat"][0], json=APIS["chat"][1])
            async with client.stream("POST", fake.url + APIS["chat"][0],
                                     json=stream_body("chat", APIS["chat"][1])) as resp:
                streamed = b"".join([chunk async for chunk in resp.aiter_bytes()])
            return whole.json()["choices"][0]["message"]["content"], streamed

    with llmcost_nb.track() as t:
        text, streamed = asyncio.run(main())
    assert text == REPLY and streamed.endswith(b"data: [DONE]\n\n")
    rows = [(r.input_tokens, r.output_tokens, r.streamed) for r in t.calls.itertuples()]
    assert rows == [(6, 9, False), (6, 9, True)] and fake.request_count == 2


# -- boto3 bedrock-runtime -----------------------------------------------------------------------------------
def bedrock(fake):
    return boto3.client("bedrock-runtime", endpoint_url=fake.bedrock_endpoint_url, region_name="us-east-1",
                        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="not-a-secret")


CONVERSE_COSTS = {  # model id -> the cost of 6 input + 9 output tokens, from genai-prices' aws unit prices
    "us.anthropic.claude-3-haiku-20240307-v1:0": Decimal("0.00001275"),  # $0.25 / $1.25 per M
    "eu.anthropic.claude-sonnet-4-5-20250929-v1:0": Decimal("0.0001683"),  # regional: $3.30 / $16.50
    "global.anthropic.claude-sonnet-4-5-20250929-v1:0": Decimal("0.000153"),  # global: $3 / $15
    "apac.amazon.nova-pro-v1:0": Decimal("0.0000336"),  # $0.80 / $3.20
    "meta.llama3-1-8b-instruct-v1:0": Decimal("0.0000033"),  # $0.22 / $0.22
}


@pytest.mark.parametrize("model", list(CONVERSE_COSTS))
def test_bedrock_converse_and_converse_stream(fake, model):
    client = bedrock(fake)
    with llmcost_nb.track() as t:
        whole = client.converse(modelId=model, messages=CONVERSE_HELLO)
        events = list(client.converse_stream(modelId=model, messages=CONVERSE_HELLO)["stream"])
    assert whole["output"]["message"]["content"][0]["text"] == REPLY
    assert whole["usage"] == {"inputTokens": 6, "outputTokens": 9, "totalTokens": 15}
    assert "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e) == (
        REPLY)
    rows = [(r.provider, r.api, r.model, r.input_tokens, r.output_tokens, r.streamed, r.status, r.cost_usd)
            for r in t.calls.itertuples()]
    cost = CONVERSE_COSTS[model]
    assert rows == [("aws", "converse", model, 6, 9, False, "ok", cost),
                    ("aws", "converse", model, 6, 9, True, "ok", cost)]
    assert t.calls.request_id.tolist() == ["req_fake_1", "req_fake_2"]  # Bedrock's only id: x-amzn-RequestId
    assert cost == genai_cost(model, "aws", input_tokens=6, output_tokens=9)


INVOKE = {  # family -> (model id, request body, input tokens)
    "anthropic": ("us.anthropic.claude-3-haiku-20240307-v1:0",
                  {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 50, "messages": HELLO}, 6),
    "nova": ("amazon.nova-micro-v1:0",
             {"messages": CONVERSE_HELLO, "inferenceConfig": {"max_new_tokens": 50}}, 6),
    "titan": ("amazon.titan-text-express-v1",
              {"inputText": "hello there world", "textGenerationConfig": {"maxTokenCount": 50}}, 3),
    "meta": ("meta.llama3-1-8b-instruct-v1:0", {"prompt": "hello there world", "max_gen_len": 50}, 3),
}
INVOKE_COSTS = {"anthropic": Decimal("0.00001275"), "nova": Decimal("0.00000147"),
                "titan": Decimal("0.0000060"), "meta": Decimal("0.00000264")}


def reply_of(family: str, body: dict) -> str:
    if family == "anthropic":
        return body["content"][0]["text"]
    if family == "nova":
        return body["output"]["message"]["content"][0]["text"]
    return body["results"][0]["outputText"] if family == "titan" else body["generation"]


def streamed_text(family: str, chunks: list[dict]) -> str:
    if family == "anthropic":
        return "".join(c["delta"]["text"] for c in chunks if c["type"] == "content_block_delta")
    if family == "nova":
        return "".join(c["contentBlockDelta"]["delta"]["text"] for c in chunks if "contentBlockDelta" in c)
    return "".join(c["outputText" if family == "titan" else "generation"] for c in chunks)


@pytest.mark.parametrize("family", list(INVOKE))
def test_bedrock_invoke_model_and_its_stream(fake, family):
    model, body, input_tokens = INVOKE[family]
    client = bedrock(fake)
    with llmcost_nb.track() as t:
        whole = client.invoke_model(modelId=model, body=json.dumps(body))
        answer = json.loads(whole["body"].read())
        streamed = client.invoke_model_with_response_stream(modelId=model, body=json.dumps(body))
        chunks = [json.loads(event["chunk"]["bytes"]) for event in streamed["body"]]
    assert reply_of(family, answer) == streamed_text(family, chunks) == REPLY
    headers = whole["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amzn-bedrock-input-token-count"] == str(input_tokens)
    cost = INVOKE_COSTS[family]
    rows = [(r.api, r.model, r.input_tokens, r.output_tokens, r.streamed, r.status, r.cost_usd)
            for r in t.calls.itertuples()]
    assert rows == [("invoke", model, input_tokens, 9, False, "ok", cost),
                    ("invoke", model, input_tokens, 9, True, "ok", cost)]
    assert cost == genai_cost(model, "aws", input_tokens=input_tokens, output_tokens=9)


def test_bedrock_invoke_of_another_family_is_priced_from_the_token_count_headers(fake):
    model = "mistral.mistral-7b-instruct-v0:2"  # a body format not read: Bedrock's headers say the counts
    with llmcost_nb.track() as t:
        bedrock(fake).invoke_model(modelId=model, body=json.dumps(INVOKE["anthropic"][1]))["body"].read()
    row = only_row(t)
    assert (row.input_tokens, row.output_tokens, row.status) == (6, 9, "ok")
    assert row.cost_usd == Decimal("0.0000027") == genai_cost(model, "aws", input_tokens=6, output_tokens=9)


def test_bedrock_wire_format_reading():
    from llmcost_nb.pricing import bedrock as wire
    from llmcost_nb.pricing.providers import classify
    from llmcost_nb.testing.wire import event_frame

    host = "bedrock-runtime.eu-west-1.amazonaws.com"
    arn = "arn%3Aaws%3Abedrock%3Aeu-west-1%3A1%3Ainference-profile%2Feu.amazon.nova-lite-v1%3A0"
    assert classify("POST", host, f"/model/{arn}/converse").provider == "aws"
    assert wire.route(f"/model/{arn}/invoke-with-response-stream") == (
        "invoke", "eu.amazon.nova-lite-v1:0", True)
    assert classify("POST", host, "/model/x/other") is None
    assert classify("GET", host, "/model/x/invoke") is None
    frames = event_frame({":event-type": "chunk"}, b'{"a":1}') + event_frame({":event-type": "end"}, b"")
    assert wire.decode_frames(frames) == (
        [({":event-type": "chunk"}, b'{"a":1}'), ({":event-type": "end"}, b"")], True)
    assert wire.decode_frames(frames[:-3]) == ([({":event-type": "chunk"}, b'{"a":1}')], False)  # cut
    corrupt = frames[:20] + b"X" + frames[21:]
    assert wire.decode_frames(corrupt) == ([], False)  # a CRC that does not match: nothing believed


def test_bedrock_cache_reads_and_writes_are_priced(fake):
    fake.cached_tokens, fake.cache_write_tokens = 2, 1
    model = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
    client = bedrock(fake)
    with llmcost_nb.track() as t:
        client.converse(modelId=model, messages=CONVERSE_HELLO)
        client.invoke_model(modelId=model, body=json.dumps(INVOKE["anthropic"][1]))
        list(client.converse_stream(modelId="amazon.nova-lite-v1:0", messages=CONVERSE_HELLO)["stream"])
    converse, invoke, nova = t.calls.itertuples()
    usage = dict(input_tokens=6, cache_read_tokens=2, cache_write_tokens=1, output_tokens=9)
    for row in (converse, invoke):
        tokens = (row.input_tokens, row.cache_read_tokens, row.cache_write_tokens, row.output_tokens)
        assert tokens == (6, 2, 1, 9)
        assert row.cost_usd == genai_cost(model, "aws", **usage)
    # 3 fresh at $0.80, 2 read at $0.08, 1 written at $1.00, 9 out at $4.00 per M
    assert converse.cost_usd == Decimal("0.00003956")
    assert (nova.cache_read_tokens, nova.cache_write_tokens) == (2, 1)
    assert nova.cost_usd == genai_cost("amazon.nova-lite-v1:0", "aws", **usage)


def test_bedrock_retried_throttle_is_one_row_per_attempt(fake):
    fake.fail_next(status=429)
    with llmcost_nb.track() as t:
        bedrock(fake).converse(modelId="meta.llama3-1-8b-instruct-v1:0", messages=CONVERSE_HELLO)
    failed, ok = t.calls.itertuples()
    assert (failed.status, failed.billed, failed.http_status, failed.error) == (
        "error", False, 429, "Injected failure: HTTP 429 from llmcost_nb's FakeProvider.")
    assert (ok.status, ok.input_tokens, ok.output_tokens) == ("ok", 6, 9)
    assert fake.request_count == 2


def test_bedrock_stream_cut_is_unfinished_with_its_prompt(fake):
    fake.cut_stream_after(2)  # message_start and content_block_start, then the connection drops
    model, body, _ = INVOKE["anthropic"]
    with llmcost_nb.track() as t:
        response = bedrock(fake).invoke_model_with_response_stream(modelId=model, body=json.dumps(body))
        with pytest.raises(Exception) as info:  # botocore's own error for a stream cut mid-way
            list(response["body"])
    assert "botocore" in type(info.value).__module__ or "urllib3" in type(info.value).__module__
    row = only_row(t)  # the prompt as message_start said; no text had arrived (its output 1 is a placeholder)
    assert (row.status, row.streamed, row.input_tokens, row.output_tokens) == ("unfinished", True, 6, 0)
    assert row.usage_source == "estimated"


@pytest.mark.parametrize("family", ["converse", *INVOKE])
def test_bedrock_stream_text_is_the_reply_of_every_body_format(fake, family):
    """What a stream cut before its usage is counted from: the text of its deltas, by wire format."""
    from llmcost_nb.pricing import bedrock as wire_formats

    if family == "converse":
        api, model, path = "converse", INVOKE["nova"][0], "converse-stream"
        body = {"messages": CONVERSE_HELLO}
    else:
        api, (model, body, _), path = "invoke", INVOKE[family], "invoke-with-response-stream"
    raw = requests.post(f"{fake.url}/model/{model}/{path}", data=json.dumps(body)).content
    assert wire_formats.stream_text(api, model, raw) == REPLY
    cut = wire_formats.stream_text(api, model, raw[:len(raw) // 2])  # cut: the text of the frames that came
    assert REPLY.startswith(cut) and 0 < len(cut) < len(REPLY)


def test_bedrock_converse_stream_cut_before_its_metadata_bills_its_prompt_and_the_text_seen(fake):
    """ConverseStream's usage comes last (``metadata``): a stream cut before it was a row of 0 tokens, $0."""
    model = "us.anthropic.claude-3-haiku-20240307-v1:0"
    fake.cut_stream_after(3)  # messageStart and two contentBlockDelta, then the connection drops
    seen = []
    with llmcost_nb.track() as t, pytest.raises(Exception) as info:  # botocore's or urllib3's own error
        seen.extend(bedrock(fake).converse_stream(modelId=model, messages=CONVERSE_HELLO)["stream"])
    assert "botocore" in type(info.value).__module__ or "urllib3" in type(info.value).__module__
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in seen if "contentBlockDelta" in e)
    prompt = request_input_tokens("converse", {"messages": CONVERSE_HELLO}, model).tokens
    output = count_tokens(text, model=model).tokens
    row = only_row(t)
    assert text and (row.status, row.input_tokens, row.output_tokens) == ("unfinished", prompt, output)
    assert row.usage_source == "estimated"
    assert row.cost_usd == genai_cost(model, "aws", input_tokens=prompt, output_tokens=output) > 0


def test_an_aiohttp_stream_dropped_unread_is_recorded_cut_and_not_kept(fake):
    """Responses dropped before their bodies ended (no read, no release) live as long as aiohttp's
    connection does; once they are collected our copies of their bodies go too (they were kept for the life
    of the process), and the calls are recorded, as cut, with what arrived."""
    from llmcost_nb.tracking import capture_aiohttp

    fake.stream_delay = 0.05
    path, body, _, _ = APIS["chat"]

    async def drop_unread() -> None:
        async with aiohttp.ClientSession() as session:
            for _ in range(3):
                resp = await session.post(fake.url + path, json=stream_body("chat", body))
                del resp

    with llmcost_nb.track() as t:
        asyncio.run(drop_unread())
        gc.collect()
        assert capture_aiohttp._tees == {}
        assert raw_call("aiohttp", fake.url + path, body, False)  # the next call records them first
        assert capture_aiohttp._dropped == []
    assert t.calls.status.tolist() == ["unfinished"] * 3 + ["ok"]
    prompt = request_input_tokens("chat", body, "gpt-4.1").tokens  # no usage arrived: counted by tiktoken
    assert t.calls.input_tokens.tolist() == [prompt] * 3 + [6]  # each dropped one billed its prompt
    assert t.calls.usage_source.tolist() == ["estimated"] * 3 + ["provider"]


# -- budgets stop a request before it is sent, on every stack ------------------------------------------------
def gemini_aio(fake):
    client = genai.Client(api_key="goog-secret", http_options={"base_url": fake.gemini_base_url})
    return asyncio.run(client.aio.models.generate_content(model="gemini-2.5-flash",
                                                          contents="hello there world"))


STOPPED = {
    **{stack: (lambda fake, stack=stack: raw_call(stack, fake.url + APIS["chat"][0], APIS["chat"][1], False))
       for stack in RAW_STACKS},
    "botocore": lambda fake: bedrock(fake).converse(modelId="meta.llama3-1-8b-instruct-v1:0",
                                                    messages=CONVERSE_HELLO),
    "botocore-stream": lambda fake: bedrock(fake).invoke_model_with_response_stream(
        modelId=INVOKE["titan"][0], body=json.dumps(INVOKE["titan"][1])),
    "google-genai-aio": gemini_aio,
}


@pytest.mark.parametrize("stack", list(STOPPED))
def test_hard_budget_stops_the_request_before_it_is_sent(fake, stack):
    budget.set_budget("0.0000001", scope="session", hard=True)  # less than any of these requests may cost
    with warnings.catch_warnings(record=True) as caught, llmcost_nb.track() as t, pytest.raises(
            llmcost_nb.BudgetExceeded, match="nothing was sent") as info:
        warnings.simplefilter("always")
        STOPPED[stack](fake)
    assert type(info.value) is llmcost_nb.BudgetExceeded  # itself: not wrapped, not retried
    assert info.value.request_cost > Decimal("0.0000001")  # priced: the model's price is known
    assert fake.request_count == 0 and t.calls.empty
    assert not [w for w in caught if issubclass(w.category, LlmcostWarning)]


# -- a failure of ours is one warning, and the call is unchanged ---------------------------------------------
CALLS = {
    **{stack: (lambda fake, stack=stack: raw_call(stack, fake.url + APIS["chat"][0],
                                                  stream_body("chat", APIS["chat"][1]), True))
       for stack in RAW_STACKS},
    "botocore": lambda fake: json.dumps(bedrock(fake).converse(
        modelId="meta.llama3-1-8b-instruct-v1:0", messages=CONVERSE_HELLO)["output"]).encode(),
    "botocore-stream": lambda fake: json.dumps([e for e in bedrock(fake).converse_stream(
        modelId="meta.llama3-1-8b-instruct-v1:0", messages=CONVERSE_HELLO)["stream"]]).encode(),
}


def broken(*args, **kwargs):
    raise RuntimeError("boom inside llmcost_nb")


@pytest.mark.parametrize("where", ["request", "response"])
@pytest.mark.parametrize("stack", list(CALLS))
def test_an_internal_failure_is_one_warning_and_the_call_is_unchanged(fake, monkeypatch, stack, where):
    untracked = CALLS[stack](fake)
    monkeypatch.setattr(_recorder, "begin", broken) if where == "request" else monkeypatch.setattr(
        hooks.Headers, "__init__", broken)
    with warnings.catch_warnings(record=True) as caught, llmcost_nb.track() as t:
        warnings.simplefilter("always")
        results = [CALLS[stack](fake) for _ in range(2)]
    assert [same_bytes(r) for r in results] == [same_bytes(untracked)] * 2
    ours = [str(w.message) for w in caught if issubclass(w.category, LlmcostWarning)]
    assert len(ours) == 1 and "boom inside llmcost_nb" in ours[0], ours
    assert t.calls.empty and fake.request_count == 3


# -- replay --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stack", RAW_STACKS)
def test_replay_serves_every_raw_stack_without_the_network(fake, tmp_path, stack):
    path, body, model, provider = APIS["chat"]
    for stream in (False, True):
        request = stream_body("chat", body) if stream else body
        with llmcost_nb.replay("record", path=tmp_path / "r.jsonl"):
            first = raw_call(stack, fake.url + path, request, stream)
        with llmcost_nb.replay("replay-only", path=tmp_path / "r.jsonl"), llmcost_nb.track() as t:
            again = raw_call(stack, fake.url + path, request, stream)
        assert again == first
        row = only_row(t)
        assert (row.replayed, row.cost_usd, row.input_tokens, row.streamed) == (True, 0, 6, stream)
        assert row.saved_usd == genai_cost(model, provider, input_tokens=6, output_tokens=9)
    assert fake.request_count == 2


def test_replay_serves_boto3_bedrock_without_the_network(fake, tmp_path):
    model, body, _ = INVOKE["nova"]
    client = bedrock(fake)

    def calls():
        whole = client.converse(modelId=model, messages=CONVERSE_HELLO)
        events = list(client.converse_stream(modelId=model, messages=CONVERSE_HELLO)["stream"])
        invoked = json.loads(client.invoke_model(modelId=model, body=json.dumps(body))["body"].read())
        chunks = [json.loads(e["chunk"]["bytes"]) for e in client.invoke_model_with_response_stream(
            modelId=model, body=json.dumps(body))["body"]]
        for answer in (whole, *events):
            answer.pop("ResponseMetadata", None)  # request ids and dates: the fake's, not the recording's
        return whole, events, invoked, chunks

    with llmcost_nb.replay("record", path=tmp_path / "r.jsonl"):
        first = calls()
    with llmcost_nb.replay("replay-only", path=tmp_path / "r.jsonl"), llmcost_nb.track() as t:
        again = calls()
    assert again == first and fake.request_count == 4
    cost = genai_cost(model, "aws", input_tokens=6, output_tokens=9)
    rows = [(r.api, r.replayed, r.streamed, r.input_tokens, r.output_tokens, r.cost_usd, r.saved_usd)
            for r in t.calls.itertuples()]
    assert rows == [(api, True, streamed, 6, 9, 0, cost) for api, streamed in (
        ("converse", False), ("converse", True), ("invoke", False), ("invoke", True))]


@pytest.mark.parametrize("stack", ["requests", "urllib3"])
def test_replay_only_over_https_opens_no_connection_and_a_budget_stop_neither(fake, tmp_path, unused_port,
                                                                             stack):
    """urllib3's pool connects before it sends (for HTTPS, in its connection check): the recording is
    found, or the budget stops the call, before that. Nothing listens on the port, and it is HTTPS: any
    attempt to connect would raise."""
    path, body, _, _ = APIS["chat"]
    with llmcost_nb.replay("record", path=tmp_path / "r.jsonl"):
        first = raw_call(stack, fake.url + path, body, False)
    nowhere = f"https://127.0.0.1:{unused_port}{path}"
    with llmcost_nb.replay("replay-only", path=tmp_path / "r.jsonl"), llmcost_nb.track() as t:
        again = raw_call(stack, nowhere, body, False)
    assert again == first and fake.request_count == 1
    row = only_row(t)
    assert (row.replayed, row.cost_usd, row.input_tokens, row.output_tokens) == (True, 0, 6, 9)
    budget.set_budget("0.0000001", scope="session", hard=True)
    with llmcost_nb.track() as t, pytest.raises(llmcost_nb.BudgetExceeded) as info:
        raw_call(stack, nowhere, body, False)
    assert type(info.value) is llmcost_nb.BudgetExceeded and t.calls.empty


def test_a_replay_we_cannot_build_is_sent_instead_with_one_warning(fake, tmp_path, monkeypatch):
    from llmcost_nb.tracking import capture_http

    path, body, _, _ = APIS["chat"]
    with llmcost_nb.replay("record", path=tmp_path / "r.jsonl"):
        first = raw_call("requests", fake.url + path, body, False)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom inside llmcost_nb")

    monkeypatch.setattr(capture_http, "_replayed_urllib3", broken)
    with warnings.catch_warnings(record=True) as caught, llmcost_nb.replay(
            "replay-or-record", path=tmp_path / "r.jsonl"), llmcost_nb.track() as t:
        warnings.simplefilter("always")
        again = raw_call("requests", fake.url + path, body, False)
    assert same_bytes(again) == same_bytes(first) and fake.request_count == 2
    ours = [str(w.message) for w in caught if issubclass(w.category, LlmcostWarning)]
    assert len(ours) == 1 and "boom inside llmcost_nb" in ours[0]
    row = only_row(t)
    assert (row.replayed, row.status, row.input_tokens) == (False, "ok", 6)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_refused_connection_is_one_unbilled_error_row_on_requests(unused_port, scheme):
    """Over HTTPS urllib3's pool connects before the request is written: that attempt is a row as well."""
    with llmcost_nb.track() as t, pytest.raises(requests.ConnectionError):
        requests.post(f"{scheme}://127.0.0.1:{unused_port}{APIS['chat'][0]}", json=APIS["chat"][1])
    row = only_row(t)
    assert (row.status, row.billed, row.model, row.cost_usd) == ("error", False, "gpt-4.1", 0)
    assert "Connection refused" in row.error


# -- install, status, uninstall ------------------------------------------------------------------------------
PATCH_POINTS = [(http.client.HTTPConnection, "request"), (http.client.HTTPConnection, "getresponse"),
                (urllib3.connection.HTTPConnection, "request"),
                (urllib3.connectionpool.HTTPConnectionPool, "_make_request"),
                (botocore.httpsession.URLLib3Session, "send"), (aiohttp.ClientSession, "_request")]


def test_install_hooks_every_stack_and_uninstall_restores_them(fake):
    originals = [cls.__dict__[attr] for cls, attr in PATCH_POINTS]
    assert capture.stacks() == dict.fromkeys(
        ["httpx", "httpx2", "urllib.request", "urllib3/requests", "botocore", "aiohttp"], "off")
    capture.install()
    assert all(cls.__dict__[attr] is not original for (cls, attr), original in zip(PATCH_POINTS, originals,
                                                                                    strict=True))
    assert set(capture.stacks().values()) == {"hooked"}  # every library is imported by this module
    assert capture.status_line() == ("capture: httpx, httpx2, urllib.request, urllib3/requests, botocore, "
                                     "aiohttp hooked")
    capture.uninstall()
    assert [cls.__dict__[attr] for cls, attr in PATCH_POINTS] == originals
    assert capture.status_line() == "capture: off"
    raw_call("requests", fake.url + APIS["chat"][0], APIS["chat"][1], False)
    assert llmcost_nb.Ledger().count() == 0  # nothing recorded once uninstalled


def test_libraries_imported_after_install_are_hooked_on_import():
    import subprocess
    import sys

    code = ("from llmcost_nb.tracking import capture; capture.install(); import sys; "
            "print(sorted(m for m in ('requests', 'aiohttp', 'botocore', 'urllib3') if m in sys.modules)); "
            "import requests, aiohttp, boto3; boto3.client('bedrock-runtime', region_name='us-east-1'); "
            "print(capture.stacks())")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after = result.stdout.strip().splitlines()
    assert before == "[]"  # install() imported none of them
    states = ast.literal_eval(after)
    assert {k: v for k, v in states.items() if k not in ("httpx", "httpx2")} == dict.fromkeys(
        ["urllib.request", "urllib3/requests", "botocore", "aiohttp"], "hooked")


def test_load_ext_status_and_unload_ext(fake):
    from IPython.testing import globalipapp

    globalipapp.start_ipython()
    shell = globalipapp.get_ipython()
    originals = [cls.__dict__[attr] for cls, attr in PATCH_POINTS]
    shell.run_line_magic("load_ext", "llmcost_nb")
    try:
        status = shell.run_line_magic("llmcost", "status")
        line = "capture: httpx, httpx2, urllib.request, urllib3/requests, botocore, aiohttp hooked"
        assert line in repr(status).splitlines()
    finally:
        shell.run_line_magic("unload_ext", "llmcost_nb")
    assert [cls.__dict__[attr] for cls, attr in PATCH_POINTS] == originals
