"""The fault table of tests/test_tracking_faults.py: what each case sets up, arms before each call, calls,
and expects.

Every call uses a real SDK client (openai, anthropic, google-genai, or plain httpx2) against the fake provider
or the canned server, both on loopback; ``setup`` breaks the tracked run's ledger or adds a raising hook.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx
import httpx2
import openai
from _faultkit import (
    HELLO,
    KEY,
    Answer,
    Canned,
    LockHolder,
    aoai,
    claude,
    fill_to_the_brim,
    gemini,
    oai,
    scribble,
)
from _prices import M, unit_prices
from google.genai import errors as genai_errors

import llmcost_nb


@dataclass
class Env:
    fake: Any
    canned: Canned
    tmp: Path
    port: int  # nothing listens there
    tracked: bool = False
    ledger: Any = None  # the tracked run's ledger (a Ledger, or a path that cannot be one)
    cleanup: list[Callable[[], None]] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class Case:
    id: str
    what: str  # for the docs table
    call: Callable[[Env], Any]
    # "returns", or what the call raises: the exception's class name, or for a cut stream the SDK's
    # documented base classes (an SDK may wrap the HTTP client's error or let it through)
    outcome: str | tuple[type[BaseException], ...] = "returns"
    rows: tuple[str, ...] | None = ("ok",)  # ledger rows per call (statuses); None: ledger unreadable
    warns: tuple[str, ...] = ()  # regexes of the warnings on the first call, in any order
    setup: Callable[[Env], None] | None = None
    arm: Callable[[Env], None] | None = None
    verify: Callable[[Env, Any], None] | None = None  # (env, scope.calls frame of the tracked run)
    recorded: int | None = None  # calls kept in the scope per call, when not len(rows)
    total_rows: tuple[str, ...] | None = None  # the ledger's rows after all the calls, when not rows * 3


# What each SDK raises for a stream the server cuts: one of its documented errors, or the HTTP client's let
# through (which one is the SDK's choice and changes between releases; we only promise the same one as
# without llmcost_nb, which test_fault checks)
OPENAI_CUT = (openai.APIError, httpx2.HTTPError)
ANTHROPIC_CUT = (anthropic.APIError, httpx2.HTTPError)
GEMINI_CUT = (genai_errors.APIError, httpx2.HTTPError, httpx.HTTPError)  # google-genai < 3 is on httpx


# -- calls --------------------------------------------------------------------------------------------------
def chat(env: Env, model: str = "gpt-4.1", **kw: Any) -> Any:
    client = oai(env.fake.openai_base_url, **kw.pop("client", {}))
    return client.chat.completions.create(model=model, messages=HELLO, **kw)


def canned_chat(env: Env, **client: Any) -> Any:
    return oai(env.canned.url + "/v1", **client).chat.completions.create(model="gpt-4.1", messages=HELLO)


def chat_stream(env: Env, **client: Any) -> list[Any]:
    stream = oai(env.fake.openai_base_url, **client).chat.completions.create(
        model="gpt-4.1", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    return list(stream)


def claude_call(base: str, **client: Any) -> Any:
    return claude(base, **client).messages.create(model="claude-haiku-4-5", max_tokens=100, messages=HELLO)


def claude_stream(env: Env, max_tokens: int = 100) -> list[str]:
    with claude(env.fake.anthropic_base_url).messages.stream(
        model="claude-haiku-4-5", max_tokens=max_tokens, messages=HELLO
    ) as stream:
        return [event.type for event in stream]


def gemini_call(base: str) -> Any:
    client = gemini(base)
    return client.models.generate_content(model="gemini-2.5-flash", contents="hello there world")


def gemini_stream(env: Env) -> list[str | None]:
    client = gemini(env.fake.gemini_base_url)
    return [
        c.text
        for c in client.models.generate_content_stream(model="gemini-2.5-flash", contents="hello there world")
    ]


def async_chat(env: Env, stream: bool = False, base: str | None = None, **client: Any) -> Any:
    async def main() -> Any:
        aclient = aoai(base or env.fake.openai_base_url, **client)
        if not stream:
            return await aclient.chat.completions.create(model="gpt-4.1", messages=HELLO)
        out = await aclient.chat.completions.create(
            model="gpt-4.1", messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
        return [chunk async for chunk in out]

    return asyncio.run(main())


def broken_off_openai(env: Env) -> str:
    stream = oai(env.fake.openai_base_url).chat.completions.create(
        model="gpt-4.1", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    first = next(iter(stream))
    stream.close()
    return first.choices[0].delta.role


def broken_off_anthropic(env: Env) -> str:
    with claude(env.fake.anthropic_base_url).messages.stream(
        model="claude-haiku-4-5", max_tokens=100, messages=HELLO
    ) as stream:
        for event in stream:
            return event.type
    return "none"


def responses_stream(env: Env) -> list[str]:
    client = oai(env.fake.openai_base_url)
    with client.responses.stream(model="gpt-4.1", input="hello there world") as stream:
        return [event.type for event in stream]


def extension_twice(env: Env) -> Any:
    from IPython.testing.globalipapp import get_ipython

    shell = get_ipython()
    shell.user_ns.update(oai=oai, base=env.fake.openai_base_url, HELLO=HELLO)
    body = "resp = oai(base).chat.completions.create(model='gpt-4.1', messages=HELLO)\n"
    if env.tracked:
        llmcost_nb.get_session().use_ledger(env.ledger)
        shell.run_line_magic("load_ext", "llmcost_nb")
        shell.run_line_magic("load_ext", "llmcost_nb")  # the second load must change nothing
        env.cleanup.append(lambda: shell.run_line_magic("unload_ext", "llmcost_nb"))
        result = shell.run_cell("%%llmcost --quiet --tag case=twice\n" + body)
    else:
        result = shell.run_cell(body)
    result.raise_error()
    return shell.user_ns.pop("resp")


# -- setups -------------------------------------------------------------------------------------------------
def read_only(env: Env) -> None:
    if env.tracked:
        env.ledger.connection.execute("PRAGMA query_only = 1")


def disk_full(env: Env) -> None:
    if env.tracked:
        env.state["filler"] = fill_to_the_brim(env.ledger.connection)


def locked(env: Env, hold: float | None = None, busy_ms: int = 50) -> None:
    if env.tracked:
        env.ledger.connection.execute(f"PRAGMA busy_timeout = {busy_ms}")
        holder = LockHolder(env.ledger.path, hold)
        env.state["holder"] = holder
        env.cleanup.append(holder.release)


def release_after_first_call(env: Env) -> None:
    if env.tracked and env.state.setdefault("calls", 0) == 1:
        env.state["holder"].release()
    env.state["calls"] = env.state.get("calls", 0) + 1


def corrupt(env: Env, pages: bool) -> None:
    if env.tracked:
        env.ledger.close()
        if pages:
            scribble(env.ledger.path)
        else:
            env.ledger.path.write_bytes(b"this is not a database " * 300)
        env.ledger = env.ledger.path  # the scope opens it itself


def ledger_is_directory(env: Env) -> None:
    if env.tracked:
        env.ledger = Path(env.tmp, "adir")
        env.ledger.mkdir()


def ledger_under_file(env: Env) -> None:
    if env.tracked:
        Path(env.tmp, "blocker").write_text("a file, not a directory")
        env.ledger = Path(env.tmp, "blocker", "ledger.db")


def pricing_raises(env: Env) -> None:
    class Boom:
        def price(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("price table on fire")

    if env.tracked:
        env.ledger._pricer = Boom()


def raising_hook(kind: str) -> Callable[[Env], None]:
    def setup(env: Env) -> None:
        session = llmcost_nb.get_session()
        hooks = session.listeners if kind == "listener" else session.preflight
        hooks.append(lambda *args: 1 / 0)

    return setup


def usage_body(usage: Any, api: str = "chat") -> bytes:
    if api == "messages":
        body = {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-haiku-4-5",
            "content": [{"type": "text", "text": "hi"}],
            "stop_reason": "end_turn",
        }
    elif api == "gemini":
        body = {
            "candidates": [{"content": {"role": "model", "parts": [{"text": "hi"}]}}],
            "modelVersion": "gemini-2.5-flash",
        }
    else:
        body = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": "gpt-4.1",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
            ],
        }
    if usage is not ...:
        body["usageMetadata" if api == "gemini" else "usage"] = usage
    return json.dumps(body).encode()


def answer(**kw: Any) -> Callable[[Env], None]:
    def arm(env: Env) -> None:
        env.canned.answer = Answer(**kw)

    return arm


def fake_set(**settings: Any) -> Callable[[Env], None]:
    def arm(env: Env) -> None:
        for name, value in settings.items():
            if name == "fail_next":
                env.fake.fail_next(**value)
            elif name == "cut":
                env.fake.cut_stream_after(value)
            else:
                setattr(env.fake, name, value)

    return arm


def tokens(expected: tuple[int, int]) -> Callable[[Env, Any], None]:
    def verify(env: Env, frame: Any) -> None:
        ok = frame[frame.status == "ok"]
        assert set(zip(ok.input_tokens, ok.output_tokens, strict=True)) == {expected}

    return verify


GOOD_CHAT = usage_body({"prompt_tokens": 6, "completion_tokens": 9, "total_tokens": 15})
WRITE_FAILED = r"could not write to the ledger .*; the call itself was not affected"
BAD_USAGE = r"could not read token usage from a response"
BIG = " ".join(["word"] * 200_000)


def no_cost(env: Env, frame: Any) -> None:
    assert list(frame.cost_usd) == [None] * len(frame)
    assert set(zip(frame.input_tokens, frame.output_tokens, strict=True)) == {(6, 9)}


def input_is(expected: int) -> Callable[[Env, Any], None]:
    def verify(env: Env, frame: Any) -> None:
        assert list(frame.input_tokens) == [expected] * len(frame)

    return verify


def gpt_cost_is(input_tokens: int, output_tokens: int) -> Callable[[Env, Any], None]:
    """Each answered call costs a gpt-4.1 call of these tokens at genai-prices' prices; failed attempts
    nothing."""

    def verify(env: Env, frame: Any) -> None:
        price = unit_prices("gpt-4.1", "openai")
        cost = (input_tokens * price.input_mtok + output_tokens * price.output_mtok) / M
        assert set(frame.cost_usd[frame.status == "ok"]) == {cost}
        assert set(frame.cost_usd[frame.status != "ok"]) <= {Decimal(0)}

    return verify


hello_chat_cost = gpt_cost_is(6, 9)


def error_text(text: str) -> Callable[[Env, Any], None]:
    def verify(env: Env, frame: Any) -> None:
        assert all(text in e for e in frame.error), list(frame.error)
        assert not frame.billed.any()

    return verify


def scope_row_stored(env: Env, frame: Any) -> None:
    """The scope row is written with the first call that reaches the ledger, not lost with a failed one."""
    with sqlite3.connect(env.ledger.path) as conn:
        found = conn.execute("SELECT kind FROM scopes WHERE id = ?", (frame.scope_id[0],)).fetchall()
    assert found == [("track",)]


def localhost(env: Env, frame: Any) -> None:
    assert set(frame.host) == {"localhost"} and set(frame.provider) == {"openai"}
    hello_chat_cost(env, frame)


def twice_enabled(env: Env) -> Any:
    if env.tracked:
        llmcost_nb.enable()
        llmcost_nb.enable()
    return chat(env)


def nested(env: Env) -> Any:
    if not env.tracked:
        return chat(env)
    with llmcost_nb.track(tags={"inner": "1"}), llmcost_nb.track(tags={"inner": "2"}):
        return chat(env)


def uncountable(env: Env) -> httpx2.Response:
    """A chat request whose messages are not messages (the server answers anyway): nothing to count from."""
    body = {"model": "gpt-4.1", "messages": [1]}
    with httpx2.stream("POST", f"{env.canned.url}/v1/chat/completions", json=body) as response:
        response.read()
    return response


def post_not_json(env: Env) -> httpx2.Response:
    return httpx2.post(
        f"{env.fake.openai_base_url}/chat/completions",
        content=b"{not json",
        headers={"content-type": "application/json", "authorization": f"Bearer {KEY}"},
    )


def canned_responses(env: Env) -> Any:
    return oai(env.canned.url + "/v1").responses.create(model="gpt-4.1", input="hello")


def canned_stream(env: Env) -> list[Any]:
    stream = oai(env.canned.url + "/v1", max_retries=0).chat.completions.create(
        model="gpt-4.1", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    return list(stream)


def unknown_usage(env: Env, frame: Any) -> None:
    """Usage that could not be read: no tokens, and unpriced (never $0)."""
    assert (frame.input_tokens == 0).all() and (frame.output_tokens == 0).all()
    assert list(frame.cost_usd) == [None] * len(frame)
    assert set(frame.usage_source) == {"unknown"}


def bad_usage(usage: Any, api: str = "chat") -> dict[str, Any]:
    return {"arm": answer(body=usage_body(usage, api)), "warns": (BAD_USAGE,), "verify": unknown_usage}


# What each canned call's request and "hi" answer count to with tiktoken (o200k_base): chat and Anthropic
# messages "hello there world" in OpenAI's message framing (3 + 1 for the role + 3 + 3 primed), Gemini's
# contents its text alone; the answer 1.
COUNTED = {"chat": (10, 1, "gpt-4.1", "openai"), "messages": (10, 1, "claude-haiku-4-5", "anthropic"),
           "gemini": (3, 1, "gemini-2.5-flash", "google")}


def no_usage(api: str = "chat", usage: Any = ...) -> dict[str, Any]:
    """A response without usage: counted, priced, marked estimated."""
    input_tokens, output_tokens, model, provider = COUNTED[api]

    def verify(env: Env, frame: Any) -> None:
        counted = (input_tokens, output_tokens)
        assert set(zip(frame.input_tokens, frame.output_tokens, strict=True)) == {counted}
        assert set(frame.usage_source) == {"estimated"}
        price = unit_prices(model, provider)
        cost = (input_tokens * price.input_mtok + output_tokens * price.output_mtok) / M
        assert set(frame.cost_usd) == {cost}

    return {"arm": answer(body=usage_body(usage, api)),
            "warns": (rf"a {api} response carried no usage; its tokens were counted with tiktoken",),
            "verify": verify}


NO_RETRY = {"x-should-retry": "false"}
RESPONSE = {
    "id": "resp_1",
    "object": "response",
    "model": "gpt-4.1",
    "output": [],
    "status": "completed",
    "created_at": 1,
    "usage": {"input_tokens": -1, "output_tokens": 2, "total_tokens": 1},
}
LEDGER = {"rows": (), "recorded": 1, "verify": tokens((6, 9))}

CASES: list[Case] = [
    # -- the ledger --------------------------------------------------------------------------------------
    Case(
        "ledger-read-only",
        "ledger connection read-only (PRAGMA query_only)",
        chat,
        setup=read_only,
        warns=(WRITE_FAILED,),
        **LEDGER,
    ),
    Case(
        "ledger-disk-full",
        "ledger full (PRAGMA max_page_count, filled to the brim)",
        chat,
        setup=disk_full,
        warns=(r"database or disk is full",),
        **LEDGER,
    ),
    Case(
        "ledger-locked",
        "another process holds the write lock beyond the busy timeout",
        chat,
        setup=locked,
        warns=(r"database is locked",),
        **LEDGER,
        total_rows=("ok", "ok", "ok"),  # kept meanwhile, and written once the lock is released
    ),
    Case(
        "ledger-locked-then-released",
        "write lock held during the first call only",
        chat,
        setup=locked,
        arm=release_after_first_call,
        warns=(r"database is locked",),
        rows=(),
        recorded=1,
        total_rows=("ok", "ok", "ok"),  # the first call's row was kept, and written once the lock went
        verify=scope_row_stored,
    ),
    Case(
        "ledger-busy-briefly",
        "write lock held 0.3 s, within the busy timeout",
        chat,
        setup=lambda env: locked(env, hold=0.3, busy_ms=5000),
        verify=tokens((6, 9)),
    ),
    Case(
        "ledger-corrupt-file",
        "ledger file is garbage",
        chat,
        setup=lambda env: corrupt(env, pages=False),
        rows=None,
        recorded=1,
        warns=(r"not a usable llmcost_nb ledger",),
    ),
    Case(
        "ledger-corrupt-pages",
        "ledger header intact, every other page overwritten",
        chat,
        setup=lambda env: corrupt(env, pages=True),
        rows=None,
        recorded=1,
        warns=(r"not a usable llmcost_nb ledger \(database disk image is malformed\)",),
    ),
    Case(
        "ledger-path-is-directory",
        "ledger path is a directory",
        chat,
        setup=ledger_is_directory,
        rows=None,
        recorded=1,
        warns=(r"cannot open the ledger at",),
    ),
    Case(
        "ledger-parent-is-file",
        "ledger's parent directory is a file",
        chat,
        setup=ledger_under_file,
        rows=None,
        recorded=1,
        warns=(r"cannot open the ledger at",),
    ),
    # -- pricing -----------------------------------------------------------------------------------------
    Case(
        "pricing-raises",
        "the pricer raises",
        chat,
        setup=pricing_raises,
        warns=(r"pricing failed",),
        verify=no_cost,
    ),
    Case(
        "unknown-model",
        "a model no price list knows",
        lambda env: chat(env, model="my-local-llama"),
        warns=(r"no price known for model 'my-local-llama'",),
        verify=no_cost,
    ),
    Case(
        "cache-exceeds-input",
        "usage says more cached tokens than input tokens",
        canned_chat,
        arm=answer(
            body=usage_body(
                {"prompt_tokens": 6, "completion_tokens": 9, "prompt_tokens_details": {"cached_tokens": 50}}
            )
        ),
        warns=(r"could not price 'gpt-4.1': .*recorded with an empty cost",),
    ),
    Case(
        "usage-huge-but-valid",
        "10**9 input and output tokens: $10,000 exactly",
        canned_chat,
        arm=answer(body=usage_body({"prompt_tokens": 10**9, "completion_tokens": 10**9})),
        verify=gpt_cost_is(10**9, 10**9),
    ),
    # -- usage ---------------------------------------------------------------------------------------------
    Case("usage-missing", "no usage in the body", canned_chat, **no_usage()),
    Case("usage-null", "usage: null", canned_chat, **no_usage(usage=None)),
    Case("usage-not-object", "usage: a string", canned_chat, **bad_usage("lots")),
    Case(
        "usage-negative",
        "a negative token count",
        canned_chat,
        **bad_usage({"prompt_tokens": -5, "completion_tokens": 9}),
    ),
    Case(
        "usage-fractional",
        "a fractional token count",
        canned_chat,
        **bad_usage({"prompt_tokens": 6.5, "completion_tokens": 9}),
    ),
    Case(
        "usage-absurd",
        "10**15 tokens in one call",
        canned_chat,
        **bad_usage({"prompt_tokens": 10**15, "completion_tokens": 9}),
    ),
    Case(
        "usage-boolean",
        "a token count that is true",
        canned_chat,
        **bad_usage({"prompt_tokens": True, "completion_tokens": 9}),
    ),
    Case(
        "usage-string-count",
        "a token count that is a string",
        canned_chat,
        **bad_usage({"prompt_tokens": "6", "completion_tokens": 9}),
    ),
    Case(
        "usage-nan",
        "a token count that is NaN",
        canned_chat,
        **bad_usage({"prompt_tokens": float("nan"), "completion_tokens": 9}),
    ),
    Case(
        "usage-details-wrong-type",
        "prompt_tokens_details is a string",
        canned_chat,
        **bad_usage({"prompt_tokens": 6, "completion_tokens": 9, "prompt_tokens_details": "cached"}),
    ),
    Case(
        "anthropic-usage-missing",
        "an Anthropic message without usage",
        lambda env: claude_call(env.canned.url),
        **no_usage("messages"),
    ),
    Case(
        "gemini-usage-missing",
        "a Gemini response without usageMetadata",
        lambda env: gemini_call(env.canned.url),
        **no_usage("gemini"),
    ),
    Case(
        "responses-usage-negative",
        "a Responses body with negative input tokens",
        canned_responses,
        arm=answer(body=json.dumps(RESPONSE).encode()),
        warns=(BAD_USAGE,),
        verify=unknown_usage,
    ),
    # -- bodies ------------------------------------------------------------------------------------------
    Case(
        "success-body-not-json",
        "200 with a text/plain body",
        canned_chat,
        arm=answer(body=b"hello", content_type="text/plain"),
        warns=(r"a chat response carried no usage: the call is recorded with its tokens unknown",),
        verify=unknown_usage,
    ),
    Case(
        "success-body-json-list",
        "200 with a JSON list",
        canned_chat,
        arm=answer(body=b"[1, 2]"),
        warns=(r"a chat response carried no usage: the call is recorded with its tokens unknown",),
        verify=unknown_usage,
    ),
    Case(
        "sse-garbage",
        "a stream of malformed SSE events",
        canned_stream,
        arm=answer(body=b"data: {nonsense\n\ndata: [DONE]\n\n", content_type="text/event-stream"),
        outcome="JSONDecodeError",
        warns=(r"a chat stream carried no usage; its tokens were counted with tiktoken",),
    ),
    Case(
        "usage-missing-uncountable",
        "no usage, and a request whose messages cannot be counted",
        uncountable,
        arm=answer(body=usage_body(...)),
        warns=(r"a chat response carried no usage, and counting its tokens failed .*: the call is recorded "
               r"with its tokens unknown",),
        verify=unknown_usage,
    ),
    Case(
        "stream-uncountable",
        "a stream without usage, and a request whose messages cannot be counted",
        uncountable,
        arm=answer(body=b'data: {"model":"gpt-4.1","choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n'
                   b"data: [DONE]\n\n", content_type="text/event-stream"),
        warns=(r"a chat stream reported no usage and counting its tokens failed .* cost empty \(unpriced\)",),
        verify=unknown_usage,
    ),
    Case("gzip-json", "gzip-encoded JSON", chat, arm=fake_set(gzip=True), verify=tokens((6, 9))),
    Case(
        "gzip-anthropic-stream",
        "gzip-encoded Anthropic stream",
        claude_stream,
        arm=fake_set(gzip=True),
        verify=tokens((6, 9)),
    ),
    Case(
        "gzip-gemini-stream",
        "gzip-encoded Gemini stream",
        gemini_stream,
        arm=fake_set(gzip=True),
        verify=tokens((6, 9)),
    ),
    Case(
        "chunked-json",
        "JSON in chunked transfer encoding",
        canned_chat,
        arm=answer(body=GOOD_CHAT, mode="chunked"),
        verify=tokens((6, 9)),
    ),
    Case(
        "gzip-chunked-json",
        "gzip JSON, chunked",
        canned_chat,
        arm=answer(body=GOOD_CHAT, mode="chunked", encoding="gzip"),
        verify=tokens((6, 9)),
    ),
    Case(
        "deflate-json",
        "deflate-encoded JSON",
        canned_chat,
        arm=answer(body=GOOD_CHAT, encoding="deflate"),
        verify=tokens((6, 9)),
    ),
    Case(
        "very-large-response",
        "a 200,000-word reply",
        chat,
        arm=fake_set(reply=BIG),
        verify=tokens((6, 200_000)),
    ),
    Case(
        "very-large-stream",
        "a 2,000-event Anthropic stream",
        lambda env: claude_stream(env, 10_000),
        arm=fake_set(reply=" ".join(["word"] * 2000)),
        verify=tokens((6, 2000)),
    ),
    # -- HTTP errors and retries ---------------------------------------------------------------------------
    Case(
        "openai-429-retried",
        "429 twice, then success (SDK retries)",
        chat,
        arm=fake_set(fail_next={"status": 429, "times": 2}),
        rows=("error", "error", "ok"),
        verify=hello_chat_cost,
    ),
    Case(
        "openai-500-retried",
        "500 once, then success",
        chat,
        arm=fake_set(fail_next={"status": 500}),
        rows=("error", "ok"),
        verify=hello_chat_cost,
    ),
    Case(
        "openai-500-exhausted",
        "500 on every retry",
        chat,
        outcome="InternalServerError",
        arm=fake_set(fail_next={"status": 500, "times": 3}),
        rows=("error",) * 3,
        verify=error_text("500"),
    ),
    Case(
        "anthropic-529-retried",
        "Anthropic 529 overloaded, then success",
        lambda env: claude_call(env.fake.anthropic_base_url),
        arm=fake_set(fail_next={"status": 529}),
        rows=("error", "ok"),
    ),
    Case(
        "async-openai-429-retried",
        "async client: 429, then success",
        async_chat,
        arm=fake_set(fail_next={"status": 429}),
        rows=("error", "ok"),
        verify=hello_chat_cost,
    ),
    Case(
        "gemini-429",
        "Gemini 429 (google-genai does not retry)",
        lambda env: gemini_call(env.fake.gemini_base_url),
        arm=fake_set(fail_next={"status": 429}),
        outcome="ClientError",
        rows=("error",),
    ),
    Case(
        "anthropic-400",
        "Anthropic 400 (not retried)",
        lambda env: claude_call(env.fake.anthropic_base_url),
        arm=fake_set(fail_next={"status": 400}),
        outcome="BadRequestError",
        rows=("error",),
    ),
    Case(
        "non-json-error-body",
        "503 with a text/plain body",
        lambda env: chat(env, client={"max_retries": 0}),
        arm=fake_set(fail_next={"status": 503, "body": "upstream down"}),
        outcome="InternalServerError",
        rows=("error",),
        verify=error_text("upstream down"),
    ),
    Case(
        "html-error-page",
        "502 with an HTML page",
        canned_chat,
        outcome="InternalServerError",
        arm=answer(
            status=502, body=b"<html><h1>Bad gateway</h1></html>", content_type="text/html", headers=NO_RETRY
        ),
        rows=("error",),
        verify=error_text("Bad gateway"),
    ),
    Case(
        "empty-error-body",
        "500 with an empty body",
        canned_chat,
        outcome="InternalServerError",
        arm=answer(status=500, body=b"", headers=NO_RETRY),
        rows=("error",),
    ),
    Case(
        "error-body-json-list",
        "400 with a JSON list body",
        canned_chat,
        outcome="BadRequestError",
        arm=answer(status=400, body=b"[1, 2]"),
        rows=("error",),
        verify=error_text("[1, 2]"),
    ),
    # -- the network ---------------------------------------------------------------------------------------
    Case(
        "connection-refused",
        "nothing listens on the port",
        lambda env: oai(f"http://127.0.0.1:{env.port}/v1", max_retries=0).chat.completions.create(
            model="gpt-4.1", messages=HELLO
        ),
        outcome="APIConnectionError",
        rows=("error",),
        verify=error_text("ConnectError"),
    ),
    Case(
        "async-connection-refused",
        "async client, nothing listens",
        lambda env: async_chat(env, base=f"http://127.0.0.1:{env.port}/v1", max_retries=0),
        outcome="APIConnectionError",
        rows=("error",),
        verify=error_text("ConnectError"),
    ),
    Case(
        "gemini-connection-refused",
        "google-genai, nothing listens",
        lambda env: gemini_call(f"http://127.0.0.1:{env.port}"),
        outcome="ConnectError",
        rows=("error",),
    ),
    Case(
        "connection-dropped",
        "the server closes the connection without answering",
        lambda env: canned_chat(env, max_retries=0),
        arm=answer(mode="drop"),
        outcome="APIConnectionError",
        rows=("error",),
        verify=error_text("RemoteProtocolError"),
    ),
    Case(
        "read-timeout",
        "the answer comes after the client's timeout",
        lambda env: chat(env, client={"max_retries": 0, "timeout": 0.1}),
        arm=fake_set(latency=0.4),
        outcome="APITimeoutError",
        rows=("error",),
        verify=error_text("ReadTimeout"),
    ),
    # -- streams -------------------------------------------------------------------------------------------
    Case(
        "openai-stream-cut",
        "chat stream cut after 3 events",
        chat_stream,
        arm=fake_set(cut=3),
        outcome=OPENAI_CUT,
        rows=("unfinished",),
    ),
    Case(
        "anthropic-stream-cut",
        "Anthropic stream cut after 3 events",
        claude_stream,
        arm=fake_set(cut=3),
        outcome=ANTHROPIC_CUT,
        rows=("unfinished",),
        verify=input_is(6),
    ),
    Case(
        "gemini-stream-cut",
        "Gemini stream cut after 2 events",
        gemini_stream,
        arm=fake_set(cut=2),
        outcome=GEMINI_CUT,
        rows=("unfinished",),
    ),
    Case(
        "responses-stream-cut",
        "Responses stream cut after 4 events",
        responses_stream,
        arm=fake_set(cut=4),
        outcome=OPENAI_CUT,
        rows=("unfinished",),
    ),
    Case(
        "async-stream-cut",
        "async chat stream cut after 3 events",
        lambda env: async_chat(env, stream=True),
        arm=fake_set(cut=3),
        outcome=OPENAI_CUT,
        rows=("unfinished",),
    ),
    Case(
        "openai-stream-broken-off",
        "the user closes a chat stream after one chunk",
        broken_off_openai,
        rows=("unfinished",),
    ),
    Case(
        "anthropic-stream-left-early",
        "the user leaves a message stream after one event",
        broken_off_anthropic,
        rows=("unfinished",),
    ),
    # -- URLs ----------------------------------------------------------------------------------------------
    Case(
        "unknown-host",
        "an OpenAI-compatible server on an unknown host (localhost)",
        lambda env: oai(f"http://localhost:{env.fake.port}/v1").chat.completions.create(
            model="gpt-4.1", messages=HELLO
        ),
        verify=localhost,
    ),
    Case(
        "proxy-path-prefix",
        "a gateway path prefix before /v1/chat/completions",
        lambda env: oai(env.canned.url + "/gateway/openai/v1").chat.completions.create(
            model="gpt-4.1", messages=HELLO
        ),
        arm=answer(body=GOOD_CHAT),
        verify=tokens((6, 9)),
    ),
    Case(
        "non-llm-path",
        "GET /v1/models (not an LLM call; 404)",
        lambda env: oai(env.fake.openai_base_url).models.list(),
        outcome="NotFoundError",
        rows=(),
    ),
    Case(
        "request-not-json",
        "a POST to /chat/completions whose body is not JSON",
        post_not_json,
        rows=(),
        warns=(r"could not read an LLM request",),
    ),
    # -- hooks and setup -----------------------------------------------------------------------------------
    Case(
        "listener-raises",
        "an after-call listener raises",
        chat,
        setup=raising_hook("listener"),
        warns=(r"a cost listener raised ZeroDivisionError",),
        verify=tokens((6, 9)),
    ),
    Case(
        "preflight-raises",
        "a preflight hook raises (not a budget stop)",
        chat,
        setup=raising_hook("preflight"),
        rows=(),
        warns=(r"could not read an LLM request",),
    ),
    Case("extension-loaded-twice", "%load_ext llmcost_nb twice, then a %%llmcost cell", extension_twice),
    Case("capture-enabled-twice", "llmcost_nb.enable() twice inside a scope", twice_enabled),
    Case("nested-scopes", "three nested scopes: one row per call", nested, verify=tokens((6, 9))),
]
