"""Record & replay with the real openai, anthropic and google-genai clients against the fake provider.

Each test records against the fake provider, then replays: the fake's request counter proves nothing was
sent, the SDK objects are identical, and the ledger holds the replayed rows at $0 with what they saved.
Token counts follow docs/fake_provider.md ("hello there world": 6 in, 9 out).
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path

import anthropic
import httpx2
import openai
import pytest
from google import genai

import llmcost_nb
from llmcost_nb.recording import replay as replay_module
from llmcost_nb.recording.store import ReplayStore

HELLO = [{"role": "user", "content": "hello there world"}]
SECRETS = ("sk-test-secret", "sk-ant-secret", "goog-secret")
PRICES = {  # USD per million input / output tokens, stated for these tests (see `prices`)
    "gpt-4.1": ("2", "8"),
    "gpt-4.1-mini": ("0.4", "1.6"),
    "claude-haiku-4-5": ("1", "5"),
    "gemini-2.5-flash": ("0.3", "2.5"),
}
CHAT_COST = Decimal("0.000084")  # gpt-4.1: 6 in × $2/M + 9 out × $8/M
CLAUDE_COST = Decimal("0.000051")  # claude-haiku-4-5: 6 × $1/M + 9 × $5/M
GEMINI_COST = Decimal("0.0000243")  # gemini-2.5-flash: 6 × $0.30/M + 9 × $2.50/M


@pytest.fixture(autouse=True)
def prices():
    """Every model these tests call priced in the session's ledger: the costs above are ours to state, not
    genai-prices' current prices."""
    for model, (input_mtok, output_mtok) in PRICES.items():
        llmcost_nb.set_price(model, input_mtok=input_mtok, output_mtok=output_mtok)


def dump(obj):
    """A comparable form of what an SDK returned (Gemini also exposes the HTTP headers: only content-type
    is recorded, never the provider's request id or server header)."""
    if isinstance(obj, list):
        return [dump(o) for o in obj]
    data = obj.model_dump(mode="json")
    data.pop("sdk_http_response", None)
    return data


def clients(fake):
    return (
        openai.OpenAI(base_url=fake.openai_base_url, api_key="sk-test-secret", max_retries=0),
        anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="sk-ant-secret", max_retries=0),
        # api_version: the same request path on every google-genai release
        genai.Client(api_key="goog-secret",
                     http_options={"base_url": fake.gemini_base_url, "api_version": "v1"}),
    )


def run_all_sync(oai, claude, gem):
    """One of each call shape: plain and streamed, for each SDK."""
    out = [oai.chat.completions.create(model="gpt-4.1", messages=HELLO)]
    out.append(list(oai.chat.completions.create(model="gpt-4.1", messages=HELLO, stream=True,
                                                stream_options={"include_usage": True})))
    out.append(list(oai.responses.create(model="gpt-4.1", input="hello there world", stream=True)))
    out.append(claude.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=HELLO))
    with claude.messages.stream(model="claude-haiku-4-5", max_tokens=50, messages=HELLO) as stream:
        out.append(stream.get_final_message())
    out.append(gem.models.generate_content(model="gemini-2.5-flash", contents="hello there world"))
    out.append(list(gem.models.generate_content_stream(model="gemini-2.5-flash",
                                                       contents="hello there world")))
    return [dump(o) for o in out]


EXPECTED = [  # (api, streamed, input, output, saved)
    ("chat", False, 6, 9, CHAT_COST),
    ("chat", True, 6, 9, CHAT_COST),
    ("responses", True, 6, 9, CHAT_COST),
    ("messages", False, 6, 9, CLAUDE_COST),
    ("messages", True, 6, 9, CLAUDE_COST),
    ("gemini", False, 6, 9, GEMINI_COST),
    ("gemini", True, 6, 9, GEMINI_COST),
]


def rows(frame):
    return [(r.api, bool(r.streamed), r.input_tokens, r.output_tokens, r.saved_usd)
            for r in frame.itertuples()]


def test_sync_replay_is_identical_sends_nothing_and_costs_zero(fake):
    oai, claude, gem = clients(fake)
    with llmcost_nb.replay("replay-or-record") as handle:
        with llmcost_nb.track() as first:
            recorded = run_all_sync(oai, claude, gem)
        assert fake.request_count == 7
        with llmcost_nb.track() as second:
            replayed = run_all_sync(oai, claude, gem)
    assert fake.request_count == 7  # not one request reached the provider
    assert replayed == recorded
    assert handle.mode == "replay-or-record" and llmcost_nb.replay.status().mode == "off"
    assert [(r.cost_usd, r.replayed, r.billed) for r in first.calls.itertuples()] == [
        (saved, False, True) for *_, saved in EXPECTED]
    assert rows(first.calls) == [(api, streamed, i, o, None) for api, streamed, i, o, _ in EXPECTED]
    frame = second.calls
    assert rows(frame) == EXPECTED
    assert list(frame.cost_usd) == [Decimal(0)] * 7 and frame.replayed.all() and not frame.billed.any()
    assert list(frame.status) == ["ok"] * 7
    # the ledger: replayed rows at $0 with the saved amount
    ledger = llmcost_nb.Ledger()
    stored = ledger.calls(scope_id=second.id)
    assert list(stored.cost_usd) == [Decimal(0)] * 7 and stored.replayed.all()
    assert list(stored.saved_usd) == [saved for *_, saved in EXPECTED]
    assert ledger.total_cost() == first.total_cost == Decimal("0.0004026")
    assert second.total_cost == 0 and replay_module.saved(second.records) == Decimal("0.0004026")
    status = llmcost_nb.replay.status()
    assert (status.replayed_calls, status.saved_usd) == (7, Decimal("0.0004026"))
    assert str(status) == "replay: off · 7 calls replayed this session, saved $0.000403"
    # a reprice leaves replayed rows at $0
    ledger.reprice(all=True)
    assert list(ledger.calls(scope_id=second.id).cost_usd) == [Decimal(0)] * 7


async def run_all_async(fake):
    oai = openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="sk-test-secret", max_retries=0)
    claude = anthropic.AsyncAnthropic(base_url=fake.anthropic_base_url, api_key="sk-ant-secret",
                                      max_retries=0)
    gem = genai.Client(api_key="goog-secret", http_options={"base_url": fake.gemini_base_url})
    out = [await oai.chat.completions.create(model="gpt-4.1", messages=HELLO)]
    stream = await oai.chat.completions.create(model="gpt-4.1", messages=HELLO, stream=True,
                                               stream_options={"include_usage": True})
    out.append([chunk async for chunk in stream])
    out.append(await claude.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=HELLO))
    async with claude.messages.stream(model="claude-haiku-4-5", max_tokens=50, messages=HELLO) as s:
        out.append(await s.get_final_message())
    out.append(await gem.aio.models.generate_content(model="gemini-2.5-flash", contents="hello there world"))
    chunks = await gem.aio.models.generate_content_stream(model="gemini-2.5-flash",
                                                          contents="hello there world")
    out.append([chunk async for chunk in chunks])
    await oai.close()
    await claude.close()
    return [dump(o) for o in out]


def test_async_clients_replay(fake):
    with llmcost_nb.replay("replay-or-record"):
        recorded = asyncio.run(run_all_async(fake))
        assert fake.request_count == 6
        with llmcost_nb.track() as t:
            replayed = asyncio.run(run_all_async(fake))
    assert fake.request_count == 6
    assert replayed == recorded
    expected = [EXPECTED[i] for i in (0, 1, 3, 4, 5, 6)]
    assert rows(t.calls) == expected and list(t.calls.cost_usd) == [Decimal(0)] * 6


def test_replay_only_miss_is_a_clear_error_and_nothing_is_sent(fake, tmp_path):
    oai, claude, gem = clients(fake)
    path = tmp_path / "empty.jsonl"
    with llmcost_nb.replay("replay-only", path=path), llmcost_nb.track() as t:
        with pytest.raises(llmcost_nb.replay.ReplayMiss) as info:
            oai.chat.completions.create(model="gpt-4.1", messages=HELLO)
        with pytest.raises(llmcost_nb.replay.ReplayMiss):  # passes through anthropic unwrapped too
            claude.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=HELLO)
        with pytest.raises(llmcost_nb.replay.ReplayMiss):
            gem.models.generate_content(model="gemini-2.5-flash", contents="hello there world")
    assert fake.request_count == 0 and len(t.records) == 0
    assert str(info.value) == (
        f"replay-only: no recording in {path} for POST /v1/chat/completions model='gpt-4.1' "
        "[{'role': 'user', 'content': 'hello there world'}]; nothing was sent. Record it first "
        "(llmcost_nb.replay('replay-or-record')) or turn replay off.")
    assert isinstance(info.value, openai.OpenAIError)


def test_record_mode_always_sends_and_replay_only_serves_it(fake, tmp_path):
    oai, _, _ = clients(fake)
    path = tmp_path / "rec.jsonl"
    with llmcost_nb.replay("record", path=path):
        oai.chat.completions.create(model="gpt-4.1", messages=HELLO)
        latest = oai.chat.completions.create(model="gpt-4.1", messages=HELLO)  # record keeps the latest
    assert fake.request_count == 2 and len(ReplayStore(path)) == 1
    with llmcost_nb.replay("replay-only", path=path), llmcost_nb.track() as t:
        again = oai.chat.completions.create(model="gpt-4.1", messages=HELLO)
    assert fake.request_count == 2
    assert again.model_dump() == latest.model_dump() and again.id == "chatcmpl-fake-2"
    assert t.calls.saved_usd[0] == CHAT_COST


def test_a_hard_budget_stops_new_requests_but_not_replayed_ones(fake, tmp_path):
    from llmcost_nb.budget import limits as budget

    oai, _, _ = clients(fake)
    path = tmp_path / "rec.jsonl"
    with llmcost_nb.replay("record", path=path):
        recorded = oai.chat.completions.create(model="gpt-4.1", messages=HELLO)
    budget.set_budget("0.000001", scope="session", hard=True)  # less than any real request costs
    with llmcost_nb.replay("replay-only", path=path):
        again = oai.chat.completions.create(model="gpt-4.1", messages=HELLO)  # costs nothing: not stopped
    assert again.model_dump() == recorded.model_dump() and fake.request_count == 1
    with pytest.raises(llmcost_nb.BudgetExceeded):
        oai.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "new"}])
    assert fake.request_count == 1


def test_recordings_hold_no_secret_and_only_the_content_type(fake, tmp_path):
    oai, claude, gem = clients(fake)
    path = tmp_path / "rec.jsonl"
    fake.gzip = True  # stored decoded, without content-encoding
    with llmcost_nb.replay("record", path=path):
        run_all_sync(oai, claude, gem)
    text = path.read_text()
    for secret in (*SECRETS, "authorization", "x-api-key", "x-goog-api-key", "cookie", "gzip", "req_fake_"):
        assert secret not in text.lower()
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) == 7
    assert {tuple(sorted(line["response"])) for line in lines} == {("body", "content_type", "status")}
    assert [line["request"]["path"] for line in lines] == [
        "/v1/chat/completions", "/v1/chat/completions", "/v1/responses", "/v1/messages", "/v1/messages",
        "/v1/models/gemini-2.5-flash:generateContent", "/v1/models/gemini-2.5-flash:streamGenerateContent"]
    with llmcost_nb.replay("replay-only", path=path):
        assert run_all_sync(oai, claude, gem)[0]["choices"][0]["message"]["content"] == (
            "This is a fake reply to: hello there world")
    assert fake.request_count == 7


def test_volatile_fields_do_not_change_the_match_but_the_prompt_does(fake, tmp_path):
    oai, _, _ = clients(fake)
    with llmcost_nb.replay("replay-or-record", path=tmp_path / "r.jsonl"):
        oai.chat.completions.create(model="gpt-4.1", messages=HELLO, user="alice", metadata={"run": "1"})
        oai.chat.completions.create(model="gpt-4.1", messages=HELLO, user="bob", metadata={"run": "2"})
        assert fake.request_count == 1
        oai.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "hello there"}])
        oai.chat.completions.create(model="gpt-4.1-mini", messages=HELLO)
        assert fake.request_count == 3
    with llmcost_nb.replay("replay-or-record", path=tmp_path / "r.jsonl", ignore_fields=("temperature",)):
        oai.chat.completions.create(model="gpt-4.1", messages=HELLO, temperature=0.3)
    assert fake.request_count == 3


def test_failed_and_cut_responses_are_not_recorded(fake, tmp_path):
    oai, _, _ = clients(fake)
    path = tmp_path / "r.jsonl"
    with llmcost_nb.replay("replay-or-record", path=path):
        fake.fail_next(status=500)
        with pytest.raises(openai.InternalServerError):
            oai.chat.completions.create(model="gpt-4.1", messages=HELLO)
        fake.cut_stream_after(3)
        with pytest.raises((openai.APIError, httpx2.HTTPError)):  # what the SDK raises for a cut stream
            list(oai.chat.completions.create(model="gpt-4.1", messages=HELLO, stream=True))
        assert len(ReplayStore(path)) == 0
        oai.chat.completions.create(model="gpt-4.1", messages=HELLO)
        oai.chat.completions.create(model="gpt-4.1", messages=HELLO)
    assert fake.request_count == 3 and len(ReplayStore(path)) == 1


def test_modes_nest_and_restore_and_bad_mode_names_the_allowed_values(tmp_path):
    session = llmcost_nb.get_session()
    outer = llmcost_nb.replay("record", path=tmp_path / "a.jsonl")
    with llmcost_nb.replay("replay-only", path=tmp_path / "b.jsonl"):
        assert llmcost_nb.replay.status().mode == "replay-only"
        assert llmcost_nb.replay.status().path == tmp_path / "b.jsonl"
    assert llmcost_nb.replay.status().mode == "record" and outer.store.path == tmp_path / "a.jsonl"
    outer.close()
    assert llmcost_nb.replay.status().mode == "off"
    assert replay_module._preflight not in session.preflight
    with pytest.raises(ValueError, match=r"^Unknown replay mode 'replay', allowed values: off, record, "
                                         r"replay-or-record, replay-only$"):
        llmcost_nb.replay("replay")


def test_default_path_is_beside_the_ledger_and_clear_empties_it(fake, tmp_path):
    oai, _, _ = clients(fake)
    with llmcost_nb.replay("replay-or-record") as handle:
        oai.chat.completions.create(model="gpt-4.1", messages=HELLO)
    assert handle.store.path == tmp_path / "default-ledger.replay.jsonl"
    assert llmcost_nb.replay.clear() == 1 and not handle.store.path.exists()


def test_a_recording_appended_by_another_writer_is_picked_up(fake, tmp_path):
    oai, _, _ = clients(fake)
    path = tmp_path / "shared.jsonl"
    with llmcost_nb.replay("replay-only", path=path):
        with pytest.raises(llmcost_nb.replay.ReplayMiss):
            oai.chat.completions.create(model="gpt-4.1", messages=HELLO)
        with llmcost_nb.replay("record", path=path):  # its own store object, like a second kernel's
            oai.chat.completions.create(model="gpt-4.1", messages=HELLO)
        oai.chat.completions.create(model="gpt-4.1", messages=HELLO)
    assert fake.request_count == 1


def test_the_magic_actions(fake, tmp_path):
    from IPython.core.error import UsageError

    oai, _, _ = clients(fake)
    path = str(tmp_path / "m.jsonl")
    assert replay_module.magic(["on", "--path", path]).mode == "replay-or-record"
    oai.chat.completions.create(model="gpt-4.1", messages=HELLO)
    oai.chat.completions.create(model="gpt-4.1", messages=HELLO)
    status = replay_module.magic([])
    assert (status.mode, status.recordings, status.replayed_calls, status.saved_usd) == (
        "replay-or-record", 1, 1, CHAT_COST)
    assert str(status) == (f"replay: replay-or-record · 1 recording in {path} · 1 call replayed this "
                           "session, saved $0.000084")
    assert replay_module.magic(["only"]).mode == "replay-only"
    assert replay_module.magic(["clear"]).recordings == 0
    assert replay_module.magic(["off"]).mode == "off"
    with pytest.raises(UsageError, match=r"unknown action 'maybe', allowed values: on, off, record, only, "
                                         r"replay-or-record, replay-only, clear, status$"):
        replay_module.magic(["maybe"])
    assert fake.request_count == 1


# -- the notebook that runs offline from a committed recording ------------------------------------------
ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data" / "replay" / "replay_tour.jsonl"
QUESTION = [{"role": "user", "content": "Why does a replayed call cost nothing?"}]


def test_the_committed_recording_answers_the_real_api_addresses_without_keys(monkeypatch):
    for key in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    client = openai.OpenAI(api_key="sk-no-key-needed", max_retries=0)  # https://api.openai.com/v1
    claude = anthropic.Anthropic(api_key="sk-ant-no-key-needed", max_retries=0)
    with llmcost_nb.replay("replay-only", path=SAMPLE), llmcost_nb.track() as t:
        answer = client.chat.completions.create(model="gpt-4.1-mini", messages=QUESTION)
        chunks = list(client.chat.completions.create(model="gpt-4.1-mini", messages=QUESTION, stream=True,
                                                     stream_options={"include_usage": True}))
        reply = claude.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=QUESTION)
    text = "This is a fake reply to: Why does a replayed call cost nothing?"
    assert answer.choices[0].message.content == reply.content[0].text == text
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    frame = t.calls
    assert list(frame.host) == ["api.openai.com", "api.openai.com", "api.anthropic.com"]
    assert (frame.input_tokens.sum(), frame.output_tokens.sum()) == (30, 39)
    assert list(frame.saved_usd) == [Decimal("0.0000248"), Decimal("0.0000248"), Decimal("0.000075")]
    assert sum(frame.saved_usd) == Decimal("0.0001246") and set(frame.cost_usd) == {Decimal(0)}


def test_raw_and_streaming_response_wrappers_replay(fake, tmp_path):
    oai, _, _ = clients(fake)

    def both():
        raw = oai.chat.completions.with_raw_response.create(model="gpt-4.1", messages=HELLO)
        with oai.chat.completions.with_streaming_response.create(model="gpt-4.1-mini", messages=HELLO) as r:
            streamed_json = b"".join(r.iter_bytes())
        return raw.parse().model_dump(), raw.headers["content-type"], json.loads(streamed_json)

    with llmcost_nb.replay("replay-or-record", path=tmp_path / "w.jsonl"):
        first = both()
        with llmcost_nb.track() as t:
            again = both()
    assert again == first and fake.request_count == 2
    assert list(t.calls.replayed) == [True, True] and list(t.calls.output_tokens) == [9, 9]


# -- the magics -------------------------------------------------------------------------------------------
@pytest.fixture
def ip(fake):
    from IPython.testing import globalipapp

    globalipapp.start_ipython()
    shell = globalipapp.get_ipython()
    shell.run_cell(f"import openai\nclient = openai.OpenAI(base_url={fake.openai_base_url!r}, "
                   "api_key='sk-t', max_retries=0)\n"
                   "HELLO = [{'role': 'user', 'content': 'hello there world'}]")
    shell.run_line_magic("load_ext", "llmcost_nb")
    yield shell
    shell.run_line_magic("unload_ext", "llmcost_nb")


def test_cell_replay_option_replays_only_that_cell(ip, fake):
    from IPython.utils.capture import capture_output

    cell = "%%llmcost --replay\nclient.chat.completions.create(model='gpt-4.1', messages=HELLO).id"
    with capture_output():
        first = ip.run_cell(cell)
    with capture_output() as shown:
        second = ip.run_cell(cell)
    with capture_output():
        ip.run_cell("%%llmcost\nclient.chat.completions.create(model='gpt-4.1', messages=HELLO)")
    summary = shown.outputs[-1].data["text/plain"]  # the summary under the replayed cell
    assert "1 call replayed from recordings at $0, saved $0.000084" in summary
    status = ip.run_line_magic("llmcost", "status")
    assert repr(status).splitlines()[-1] == "replay: off · 1 call replayed this session, saved $0.000084"
    assert first.result == second.result == "chatcmpl-fake-1"
    assert fake.request_count == 2  # the second --replay cell was served; the plain cell was sent
    frame = llmcost_nb.get_session().ledger.calls()
    assert list(frame.replayed) == [False, True, False]
    assert list(frame.saved_usd) == [None, CHAT_COST, None]
    assert llmcost_nb.replay.status().mode == "off"  # the cell's mode did not leak into the session


def test_line_magic_replay(ip, fake, tmp_path):
    from IPython.core.error import UsageError

    path = tmp_path / "line.jsonl"
    status = ip.run_line_magic("llmcost", f"replay on --path {path}")
    assert status.mode == "replay-or-record"
    ip.run_cell("client.chat.completions.create(model='gpt-4.1', messages=HELLO)")
    ip.run_cell("client.chat.completions.create(model='gpt-4.1', messages=HELLO)")
    assert fake.request_count == 1
    assert str(ip.run_line_magic("llmcost", "replay")).startswith(
        f"replay: replay-or-record · 1 recording in {path} · 1 call replayed this session, saved $0.000084")
    assert ip.run_line_magic("llmcost", "replay off").mode == "off"
    with pytest.raises(UsageError, match="unknown action 'later'"):
        ip.run_line_magic("llmcost", "replay later")
