"""The manual API: record() of SDK responses, log(), log_many(), set_price()."""

from __future__ import annotations

import anthropic
import genai_prices
import openai
import pytest
from _prices import M, token_cost, unit_prices
from google import genai

import llmcost_nb
from llmcost_nb.core.warn import reset_warnings


def genai_cost(model, provider, **usage):
    return genai_prices.calc_price(genai_prices.Usage(**usage), model, provider_id=provider).total_price


def test_record_sdk_objects_captured_elsewhere(fake):
    """Responses obtained with capture off are recorded from the SDK objects themselves."""
    msgs = [{"role": "user", "content": "hello there world"}]
    chat = openai.OpenAI(base_url=fake.openai_base_url, api_key="k").chat.completions.create(
        model="gpt-4.1", messages=msgs)
    message = anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="k").messages.create(
        model="claude-haiku-4-5", max_tokens=50, messages=msgs)
    client = genai.Client(api_key="k", http_options={"base_url": fake.gemini_base_url})
    gem = client.models.generate_content(model="gemini-2.5-flash", contents="hello there world")
    resp = openai.OpenAI(base_url=fake.openai_base_url, api_key="k").responses.create(
        model="gpt-4.1", input="hello there world")
    calls = [llmcost_nb.record(r, tags={"src": "manual"}) for r in (chat, message, gem, resp)]
    assert [c.api for c in calls] == ["chat", "messages", "gemini", "responses"]
    assert [(c.input_tokens, c.output_tokens) for c in calls] == [(6, 9)] * 4
    assert calls[1].cost == genai_cost("claude-haiku-4-5", "anthropic", input_tokens=6, output_tokens=9)
    stored = llmcost_nb.Ledger().calls(tags={"src": "manual"})
    assert len(stored) == 4 and set(stored.attribution) == {"manual"}


def test_record_raw_dict_and_unknown_shapes():
    call = llmcost_nb.record({"object": "chat.completion", "model": "gpt-4.1",
                              "usage": {"prompt_tokens": 1000, "completion_tokens": 200}})
    price = unit_prices("gpt-4.1", "openai")
    assert call.cost == (1000 * price.input_mtok + 200 * price.output_mtok) / M
    with pytest.raises(ValueError, match="cannot tell which API"):
        llmcost_nb.record({"usage": {"tokens": 5}})
    with pytest.raises(TypeError, match="cannot record a int"):
        llmcost_nb.record(5)


def test_log_exact_cost_and_extra_tokens():
    call = llmcost_nb.log(model="gpt-4.1", input_tokens=1000, output_tokens=200, cache_read_tokens=100,
                          tags={"team": "ops"})
    assert call.cost == genai_cost("gpt-4.1", "openai", input_tokens=1000, output_tokens=200,
                                   cache_read_tokens=100)
    assert call.cost == token_cost("gpt-4.1", "openai", input_tokens=1000, output_tokens=200,
                                   cache_read_tokens=100)  # 900 uncached, 100 cache reads, 200 out
    assert call.provider == "openai"
    reasoning = llmcost_nb.log(model="o3", input_tokens=10, output_tokens=50, reasoning_tokens=40)
    assert reasoning.reasoning_tokens == 40
    assert llmcost_nb.Ledger().total_cost() == call.cost + reasoning.cost


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"model": "", "input_tokens": 1, "output_tokens": 1}, "model must be a non-empty string"),
    ({"model": "gpt-4.1", "input_tokens": -1, "output_tokens": 1}, "input_tokens must be a non-negative int"),
    ({"model": "gpt-4.1", "input_tokens": 1.5, "output_tokens": 1},
     "input_tokens must be a non-negative int"),
    ({"model": "gpt-4.1", "input_tokens": 1, "output_tokens": 1, "cache_read_tokens": "3"},
     "cache_read_tokens must be a non-negative int"),
])
def test_log_rejects_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        llmcost_nb.log(**kwargs)


def test_log_many_is_exact_and_transactional(ledger):
    rows = [{"model": "gpt-4.1-mini", "input_tokens": 100 + i, "output_tokens": i,
             "tags": {"team": f"t{i % 3}"},
             "ts": f"2026-01-{1 + i % 28:02d}T12:00:00.000000Z"} for i in range(3000)]
    assert llmcost_nb.log_many(rows, ledger=ledger) == 3000
    expected = sum(genai_cost("gpt-4.1-mini", "openai", input_tokens=100 + i, output_tokens=i)
                   for i in range(3000))
    assert ledger.total_cost() == expected
    assert ledger.count(tags={"team": "t1"}) == 1000
    with pytest.raises(ValueError, match="output_tokens must be a non-negative int"):
        llmcost_nb.log_many([{"model": "m", "input_tokens": 1, "output_tokens": 1},
                             {"model": "m", "input_tokens": 1, "output_tokens": -1}], ledger=ledger)
    assert ledger.count() == 3000  # nothing half-written


def test_log_many_stores_exactly_what_log_stores(tmp_path):
    """The bulk path (sparse INSERT, pricer called directly) and log() give identical rows, column by
    column."""
    rows = [
        {"model": "gpt-4.1", "input_tokens": 1000, "output_tokens": 50, "cache_read_tokens": 600},
        {"model": "o3", "input_tokens": 10, "output_tokens": 400, "reasoning_tokens": 300, "tags": {"a": 1}},
        {"model": "gpt-4o-audio-preview", "input_tokens": 20, "output_tokens": 30, "input_audio_tokens": 5,
         "output_audio_tokens": 7, "provider": "openai"},
        {"model": "claude-sonnet-4-5", "input_tokens": 12, "output_tokens": 0, "cache_write_tokens": 9,
         "ts": "2026-02-03T04:05:06.000007Z"},
        {"model": "no-such-model-x", "input_tokens": 3, "output_tokens": 4, "web_searches": 2},
    ]
    bulk, single = llmcost_nb.Ledger(tmp_path / "bulk.db"), llmcost_nb.Ledger(tmp_path / "single.db")
    with pytest.warns(llmcost_nb.LlmcostWarning, match="no price known for model 'no-such-model-x'"):
        assert llmcost_nb.log_many(rows, ledger=bulk) == 5
    reset_warnings()  # warned once per kind: log() below warns afresh
    with pytest.warns(llmcost_nb.LlmcostWarning, match="no-such-model-x"):
        for row in rows:
            row = dict(row)
            ts = row.pop("ts", None)
            call = llmcost_nb.log(**row, ledger=single)
            if ts:  # log() stamps the time of the call; the bulk row carries its own
                single.connection.execute("UPDATE calls SET ts = ? WHERE id = ?", (ts, call.id))
    ignore = ["id", "ts", "latency_ms"]
    left, right = bulk.calls().drop(columns=ignore), single.calls().drop(columns=ignore)
    assert left.to_dict("records") == right.to_dict("records")
    assert list(bulk.calls().ts)[3] == list(single.calls().ts)[3]
    assert list(left.reasoning_tokens) == [0, 300, 0, 0, 0]
    assert list(left.output_audio_tokens) == [0, 0, 7, 0, 0]
    assert left.usage_extra[4] == {"web_searches": 2} and left.cost_usd[4] is None
    assert left.cost_usd[0] == genai_cost("gpt-4.1", "openai", input_tokens=1000, output_tokens=50,
                                          cache_read_tokens=600)


def test_track_with_an_explicit_ledger_path(fake, tmp_path):
    path = tmp_path / "exp.db"
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="k")
    with llmcost_nb.track(ledger=path, tags={"exp": "1"}) as t:
        client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "a b"}])
    assert llmcost_nb.Ledger(path).count(scope_id=t.id) == 1
    assert llmcost_nb.Ledger().count() == 0
    scopes = llmcost_nb.Ledger(path).connection.execute("SELECT kind, session_id FROM scopes").fetchall()
    assert scopes == [("track", llmcost_nb.get_session().id)]


def test_scope_ids_are_unique_in_a_process_and_across_a_fork():
    import os

    from llmcost_nb.tracking.scope import new_id

    ids = {new_id() for _ in range(10_000)}
    assert len(ids) == 10_000 and all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its ids must not repeat the parent's
        os.write(write, new_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    assert child not in ids and child[:16] != new_id()[:16]
