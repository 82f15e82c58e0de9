"""Property-based tests (hypothesis) for usage extraction and pricing.

- Whatever usage a response carries — missing, null, strings, floats, NaN, negative, huge, nested wrongly —
  recording it never raises out of the capture path, and what is stored is never negative.
- Costs are never negative, for any model and any believable usage.
- The sum of per-call costs equals every aggregate exactly: the ledger's SQL total, the scope's total, and
  ``Ledger.summary``'s rollups.
"""

from __future__ import annotations

import json
import uuid
import warnings
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import llmcost_nb
from llmcost_nb import LlmcostWarning
from llmcost_nb.pricing.pricer import Pricer
from llmcost_nb.pricing.providers import Endpoint, RequestInfo
from llmcost_nb.pricing.usage import UsageError, extract_usage
from llmcost_nb.tracking.recorder import Pending, _finish

APIS = ("chat", "responses", "embeddings", "completions", "messages", "gemini")
USAGE_KEYS = {  # the keys each wire format reports, and a few that none does
    "chat": [
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "prompt_tokens_details",
        "completion_tokens_details",
        "cached_tokens",
        "reasoning_tokens",
        "audio_tokens",
    ],
    "responses": [
        "input_tokens",
        "output_tokens",
        "input_tokens_details",
        "output_tokens_details",
        "cached_tokens",
        "reasoning_tokens",
    ],
    "messages": [
        "input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
        "server_tool_use",
        "web_search_requests",
    ],
    "gemini": [
        "promptTokenCount",
        "candidatesTokenCount",
        "thoughtsTokenCount",
        "cachedContentTokenCount",
        "promptTokensDetails",
        "modality",
        "tokenCount",
        "TEXT",
        "AUDIO",
    ],
}
USAGE_KEYS["embeddings"] = USAGE_KEYS["completions"] = USAGE_KEYS["chat"]
MODELS = {
    "chat": "gpt-4.1",
    "completions": "gpt-3.5-turbo-instruct",
    "responses": "o3",
    "embeddings": "text-embedding-3-small",
    "messages": "claude-sonnet-4-5",
    "gemini": "gemini-2.5-flash",
}

counts = st.one_of(
    st.integers(min_value=-10, max_value=10**6), st.integers(min_value=-(10**20), max_value=10**20)
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    counts,
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.sampled_from(["TEXT", "AUDIO", "IMAGE"]),
)


def payload(api: str) -> st.SearchStrategy:
    keys = st.sampled_from(USAGE_KEYS[api] + ["other"])
    return st.recursive(
        scalars,
        lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=6)),
        max_leaves=12,
    )


@st.composite
def response(draw: st.DrawFn) -> tuple[str, dict]:
    api = draw(st.sampled_from(APIS))
    body = draw(st.dictionaries(st.sampled_from(["id", "object", "model", "type"]), scalars, max_size=3))
    body["model"] = draw(st.one_of(st.just(MODELS[api]), scalars))
    key = "usageMetadata" if api == "gemini" else "usage"
    if draw(st.booleans()):
        body[key] = draw(st.dictionaries(st.sampled_from(USAGE_KEYS[api]), payload(api), max_size=6))
    else:
        body[key] = draw(payload(api))
    return api, body


@pytest.fixture(scope="module")
def shared_ledger(tmp_path_factory):
    ledger = llmcost_nb.Ledger(tmp_path_factory.mktemp("props") / "ledger.db")
    yield ledger
    ledger.close()


def pending_for(api: str, stream: bool, ledger) -> Pending:
    session = llmcost_nb.get_session()
    session.use_ledger(ledger)
    return Pending(
        Endpoint(None, api, "127.0.0.1"), RequestInfo(model=MODELS[api], stream=stream), None, "none", session
    )


def assert_plausible(call) -> None:
    for name in (
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
    ):
        assert 0 <= getattr(call, name) <= 10**12
    assert call.cost is None or call.cost >= 0


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(response())
def test_any_usage_payload_never_raises_out_of_capture(shared_ledger, api_body):
    api, body = api_body
    content = json.dumps(body).encode()  # NaN and Infinity as JSON allows them in Python
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LlmcostWarning)
        call = _finish(
            pending_for(api, False, shared_ledger), 200, {}, content, "application/json", cut=False
        )
    assert call.id is not None and call.status == "ok"
    assert_plausible(call)
    try:
        extract_usage(body, api=api)
    except UsageError:
        assert (call.input_tokens, call.output_tokens) == (0, 0)  # unbelievable usage is not half-taken


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(api_body=response(), raw=st.binary(max_size=64), cut=st.booleans())
def test_any_stream_never_raises_out_of_capture(shared_ledger, api_body, raw, cut):
    api, body = api_body
    events = b"data: " + json.dumps(body).encode() + b"\n\n" + raw + b"\ndata: [DONE]\n\n"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LlmcostWarning)
        call = _finish(pending_for(api, True, shared_ledger), 200, {}, events, "text/event-stream", cut=cut)
    assert call.id is not None and call.status in ("ok", "unfinished")
    assert_plausible(call)


usage_counts = st.integers(min_value=0, max_value=10**9)


@st.composite
def believable_usage(draw: st.DrawFn) -> dict[str, int]:
    total_in = draw(usage_counts)
    read = draw(st.integers(min_value=0, max_value=total_in))
    write = draw(st.integers(min_value=0, max_value=total_in - read))
    output = draw(usage_counts)
    reasoning = draw(st.integers(min_value=0, max_value=output))
    usage = {
        "input_tokens": total_in,
        "cache_read_tokens": read,
        "cache_write_tokens": write,
        "output_tokens": output,
        "output_reasoning_tokens": reasoning,
    }
    return {k: v for k, v in usage.items() if v}


PRICED = [
    "gpt-4.1",
    "gpt-4.1-mini",
    "o3",
    "claude-sonnet-4-5",
    "claude-haiku-4-5",
    "gemini-2.5-flash",
    "gemini-2.5-pro",
    "gpt-4o",
    "deepseek-chat",
    "gemini-2.0-flash",
]
_pricer = Pricer()


@settings(max_examples=400, deadline=None)
@given(
    model=st.sampled_from(PRICED),
    usage=believable_usage(),
    when=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(UTC)),
)
def test_costs_are_never_negative(model, usage, when):
    result = _pricer.price(None, model, usage, when)
    assert result.cost is not None, result.error
    assert result.cost >= 0


calls = st.lists(
    st.tuples(
        st.sampled_from([*PRICED[:6], "unknown-model-x"]),
        st.integers(0, 10**7),
        st.integers(0, 10**6),
        st.sampled_from(["a", "b", "c"]),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=calls)
def test_per_call_costs_sum_to_every_aggregate_exactly(shared_ledger, rows):
    run = uuid.uuid4().hex  # one ledger for all examples; each example's calls carry their own run tag
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LlmcostWarning)
        with llmcost_nb.track(ledger=shared_ledger, tags={"run": run}) as scope:
            logged = [
                llmcost_nb.log(model=m, input_tokens=i, output_tokens=o, tags={"team": t})
                for m, i, o, t in rows
            ]
    per_call = sum((c.cost for c in logged if c.cost is not None), Decimal(0))
    assert all(c.cost is None or c.cost >= 0 for c in logged)
    assert shared_ledger.total_cost(tags={"run": run}) == per_call == scope.total_cost
    frame = shared_ledger.calls(tags={"run": run})
    assert [c is None for c in frame.cost_usd] == [c.cost is None for c in logged]
    assert sum(c for c in frame.cost_usd if c is not None) == per_call
    for by in ("model", "tag:team", "day"):
        assert sum(shared_ledger.summary(by=by, where={"tag:run": run}).cost_usd) == per_call
    for team in ("a", "b", "c"):
        expected = sum(
            (c.cost for c, r in zip(logged, rows, strict=True) if r[3] == team and c.cost), Decimal(0)
        )
        assert shared_ledger.total_cost(tags={"run": run, "team": team}) == expected
