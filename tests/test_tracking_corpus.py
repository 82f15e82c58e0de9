"""Every real usage body of the corpus (tests/data/real_usages.json, from genai-prices' MIT-licensed dataset)
served through the fake provider and captured from the wire: the captured row has exactly the tokens and cost
that extraction and pricing give for the body, and no body makes the user's call fail."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import httpx2
import pytest

import llmcost_nb
from llmcost_nb.core.call import Call, parse_iso
from llmcost_nb.pricing.usage import UsageError, extract_usage

CORPUS = Path(__file__).parent / "data" / "real_usages.json"
PATHS = {"chat": "/v1/chat/completions", "responses": "/v1/responses", "messages": "/v1/messages"}


def wire_format(body):
    """Which of our wire formats a corpus body is shaped like (None: a shape we do not capture)."""
    if "usageMetadata" in body:
        return "gemini"
    usage = body.get("usage")
    if not isinstance(usage, dict) or "model" not in body:
        return None
    if "prompt_tokens" in usage:
        return "chat"
    if "input_tokens" in usage and ("cache_creation_input_tokens" in usage or "cache_creation" in usage
                                    or body["model"].startswith("claude")):
        return "messages"
    if "input_tokens" in usage:
        return "responses"
    return None


def corpus_bodies():
    entries = json.loads(CORPUS.read_text())
    out = []
    for entry in entries:
        body = {k: v for k, v in entry["body"].items() if k != "file"}
        if (api := wire_format(body)) is not None:
            out.append((api, body))
    return out


def test_corpus_has_every_wire_format():
    found = {api for api, _ in corpus_bodies()}
    assert found == {"chat", "responses", "messages", "gemini"}


def test_every_corpus_body_is_captured_exactly(fake):
    bodies = corpus_bodies()
    assert len(bodies) > 1000
    client = httpx2.Client(base_url=fake.url)
    mismatches, captured = [], 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unknown models and rejected usages warn once each: expected here
        with llmcost_nb.track() as t:
            ledger = t.ledger
            for api, body in bodies:
                fake.fail_next(status=200, body=body)
                model = body.get("model") or body.get("modelVersion") or "gemini-2.5-flash"
                path = f"/v1beta/models/{model}:generateContent" if api == "gemini" else PATHS[api]
                response = client.post(path, json={"model": model, "messages": []})
                assert response.json() == body  # the user's response is untouched
                call = t.records[-1]
                captured += 1
                try:
                    _, usage = extract_usage(body, api=api)
                    source = "provider"
                except UsageError:  # a usage the capture cannot read either: unpriced, never $0
                    usage, source = {}, "unknown"
                expected = Call(api=api, model=call.model, ts=call.ts, usage_source=source)
                expected.set_usage(usage)
                ledger.price(expected)
                got = (call.usage, call.cost, call.usage_source)
                if got != (expected.usage, expected.cost, source):
                    mismatches.append((api, body, got, expected.usage, expected.cost))
    assert captured == len(bodies) == len(t.records)
    assert mismatches == []
    stored = ledger.calls(scope_id=t.id)
    assert len(stored) == len(bodies)
    assert ledger.total_cost(scope_id=t.id) == t.total_cost
    assert parse_iso(t.records[0].ts).tzinfo is not None


@pytest.mark.parametrize("usage", [
    "lots", {"prompt_tokens": -5, "completion_tokens": 1},
    {"prompt_tokens": 10**15, "completion_tokens": 1}, {"prompt_tokens": 1.5},
    # NaN where a count may be left out: refused whole, as everywhere (JSON has no NaN; the journal's record
    # could not keep it)
    {"prompt_tokens": 5, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": float("nan")}}])
def test_bad_usage_warns_and_the_response_is_untouched(fake, usage):
    body = {"id": "x", "object": "chat.completion", "model": "gpt-4.1", "choices": [], "usage": usage}
    fake.fail_next(status=200, body=body)
    with pytest.warns(llmcost_nb.LlmcostWarning, match="could not read token usage"), llmcost_nb.track() as t:
        response = httpx2.post(f"{fake.openai_base_url}/chat/completions", json={"model": "gpt-4.1"})
    assert json.dumps(response.json()) == json.dumps(body)  # (NaN is not equal to itself)
    call = t.records[0]
    assert (call.input_tokens, call.status, call.usage_source, call.cost) == (0, "ok", "unknown", None)
