"""The hard budget before every kind of request capture sees: a stream (openai ``stream=True``, anthropic's
``messages.stream`` and ``create(stream=True)``), a google-genai call (plain and streamed), and a raw
httpx / httpx2 request (sync and async). Real SDK clients talk to the fake provider on loopback.

Every case runs the same request twice against a session hard budget, after $0.000005 already spent:
- with the limit one micro-dollar short of spent + the request's maximum cost, the request is refused before
  it is sent: ``BudgetExceeded`` carries what was spent and that maximum, the fake provider received nothing,
  and the ledger holds exactly the rows it held before;
- with the limit exactly spent + that maximum, the same request is sent and recorded.

The maximum cost is ours to state: the ledger's prices are set here ($2 / $8 per million input / output
tokens for every model), the input estimate is :func:`llmcost_nb.estimate.request_input_tokens` of the body
the fake received on the allowed run, and the output limit is the request's own (20 tokens).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import anthropic
import httpx
import httpx2
import openai
import pytest
from google import genai

import llmcost_nb
from llmcost_nb.analysis.estimate import request_input_tokens
from llmcost_nb.budget import limits as budget
from llmcost_nb.testing.fake import FakeProvider
from llmcost_nb.tracking import capture

HELLO = [{"role": "user", "content": "hello there world"}]
MAX_OUT = 20
IN_MTOK, OUT_MTOK = Decimal(2), Decimal(8)
SPENT = Decimal("0.000005")  # model-x at $1 per million input tokens, 5 tokens
MICRO = Decimal("0.000001")


def _oai(fake):
    return openai.OpenAI(base_url=fake.openai_base_url, api_key="sk-test", max_retries=3)


def _claude(fake):
    return anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="sk-ant-test", max_retries=3)


def _gemini(fake):
    return genai.Client(api_key="goog-test", http_options={"base_url": fake.gemini_base_url})


def openai_stream(fake):
    stream = _oai(fake).chat.completions.create(model="gpt-4.1", messages=HELLO, max_tokens=MAX_OUT,
                                                stream=True, stream_options={"include_usage": True})
    for _ in stream:
        pass


def anthropic_stream(fake):
    with _claude(fake).messages.stream(model="claude-haiku-4-5", max_tokens=MAX_OUT, messages=HELLO) as s:
        s.get_final_message()


def anthropic_create_stream(fake):
    for _ in _claude(fake).messages.create(model="claude-haiku-4-5", max_tokens=MAX_OUT, messages=HELLO,
                                           stream=True):
        pass


def gemini_generate(fake):
    client = _gemini(fake)  # kept: a Client collected mid-call closes its connection pool
    client.models.generate_content(model="gemini-2.5-flash", contents="hello there world",
                                   config={"max_output_tokens": MAX_OUT})


def gemini_stream(fake):
    client = _gemini(fake)
    for _ in client.models.generate_content_stream(
            model="gemini-2.5-flash", contents="hello there world", config={"max_output_tokens": MAX_OUT}):
        pass


RAW_BODY = {"model": "gpt-4.1", "messages": HELLO, "max_tokens": MAX_OUT}


def raw_httpx(fake):
    httpx.post(f"{fake.openai_base_url}/chat/completions", json=RAW_BODY).raise_for_status()


def raw_httpx2(fake):
    httpx2.post(f"{fake.openai_base_url}/chat/completions", json=RAW_BODY).raise_for_status()


def raw_httpx_async(fake):
    async def post():
        async with httpx.AsyncClient() as client:
            (await client.post(f"{fake.openai_base_url}/chat/completions", json=RAW_BODY)).raise_for_status()

    asyncio.run(post())


# (request, the API its body is estimated as, model, whether the recorded row is a stream)
CASES = {
    "openai-stream": (openai_stream, "chat", "gpt-4.1", True),
    "anthropic-stream": (anthropic_stream, "messages", "claude-haiku-4-5", True),
    "anthropic-create-stream": (anthropic_create_stream, "messages", "claude-haiku-4-5", True),
    "google-genai": (gemini_generate, "gemini", "gemini-2.5-flash", False),
    "google-genai-stream": (gemini_stream, "gemini", "gemini-2.5-flash", True),
    "httpx": (raw_httpx, "chat", "gpt-4.1", False),
    "httpx2": (raw_httpx2, "chat", "gpt-4.1", False),
    "httpx-async": (raw_httpx_async, "chat", "gpt-4.1", False),
}


def rows(ledger):
    """Every row of the ledger, as what identifies and prices it."""
    frame = ledger.calls()
    return list(zip(frame.id, frame.model, frame.input_tokens, frame.output_tokens, frame.cost_usd,
                    frame.status, strict=True))


@pytest.mark.parametrize("case", list(CASES))
def test_hard_budget_refuses_the_request_before_it_is_sent(fake, ledger, case):
    request, api, model, streamed = CASES[case]
    llmcost_nb.get_session().use_ledger(ledger)
    ledger.set_price("model-x", input_mtok="1", output_mtok="0")
    ledger.set_price(model, input_mtok=str(IN_MTOK), output_mtok=str(OUT_MTOK))
    llmcost_nb.log(model="model-x", input_tokens=5, output_tokens=0)
    before = rows(ledger)
    assert [r[1:] for r in before] == [("model-x", 5, 0, SPENT, "ok")]

    # the request once without capture, on a fake of its own: the body the SDK sends, for the estimate
    capture.uninstall()
    with FakeProvider() as probe:
        request(probe)
        [sent] = probe.requests
    estimate = request_input_tokens(api, sent.body, model).tokens
    maximum = (estimate * IN_MTOK + MAX_OUT * OUT_MTOK) / 1_000_000
    assert rows(ledger) == before

    stops = []
    budget.on_stop(stops.append)
    budget.set_budget(SPENT + maximum - MICRO, scope="session", hard=True)
    with pytest.raises(llmcost_nb.BudgetExceeded) as info:
        request(fake)
    assert fake.request_count == 0 and fake.requests == []
    assert (info.value.spent, info.value.request_cost, info.value.model) == (SPENT, maximum, model)
    assert stops == [info.value]
    assert rows(ledger) == before
    assert budget.spent("session") == SPENT

    budget.set_budget(SPENT + maximum, scope="session", hard=True)  # exactly enough: sent
    request(fake)
    assert fake.request_count == 1
    after = ledger.calls()
    assert len(after) == 2 and rows(ledger)[0] == before[0]
    sent_row = after.iloc[1]
    assert (sent_row.model, sent_row.status, bool(sent_row.streamed)) == (model, "ok", streamed)
    estimated = ledger.connection.execute("SELECT estimated_input_tokens FROM calls ORDER BY id").fetchall()
    assert estimated == [(None,), (estimate,)]
