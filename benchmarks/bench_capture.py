"""Capture overhead and ledger write speed, each against a baseline measured in the same run.

    .venv/bin/python benchmarks/bench_capture.py

- capture + durable row write per non-stream call: the real openai client on an in-process transport
  (no network, so the difference is ours alone), p50 with capture on minus p50 with it off. Floor 60 µs.
  The durable write on the path is the call taped to the ledger's journal; making taped calls into priced,
  committed rows happens in batches after (llmcost_nb.ledger.journal), and is measured apart: per call,
  and the mean cost per call with the batches included.
- per stream chunk: a 2,000-chunk SSE stream read through httpx2 with and without the tee. Floor 3 µs. The
  same for a stream asked for its usage, read with the usage taken out (``enable(ask_stream_usage=True)``).
- bulk writes: ``log_many`` of 200k rows (priced) vs raw sqlite3 executemany of the same rows.
  Floor 100k rows/s.
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx2
import openai

import llmcost_nb
from llmcost_nb.ledger import journal as _journal
from llmcost_nb.tracking import capture
from llmcost_nb.tracking import recorder as _recorder

CHAT = json.dumps({
    "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "gpt-4.1",
    "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}],
    "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150,
              "prompt_tokens_details": {"cached_tokens": 64}},
}).encode()
CHUNKS = 2000


def chat_handler(request: httpx2.Request) -> httpx2.Response:
    return httpx2.Response(200, content=CHAT, headers={"content-type": "application/json"})


def stream_handler(request: httpx2.Request) -> httpx2.Response:
    events = [b'data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4.1","choices":[{"index":0,'
              b'"delta":{"content":"word "}}]}\n\n'] * CHUNKS
    events.append(b'data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4.1","choices":[],'
                  b'"usage":{"prompt_tokens":10,"completion_tokens":2000,"total_tokens":2010}}\n\n')
    return httpx2.Response(200, content=iter(events), headers={"content-type": "text/event-stream"})


def per_call_us(client: openai.OpenAI, n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "hi"}])
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


STREAM_BODY = {"model": "gpt-4.1", "stream": True, "stream_options": {"include_usage": True}}


def stream_us(http: httpx2.Client, n: int, url: str = "http://bench.local/v1/chat/completions",
              body: dict = STREAM_BODY) -> float:
    """p50 µs of reading a whole stream, raw."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        with http.stream("POST", url, json=body) as resp:
            for _ in resp.iter_raw():
                pass
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def bench_calls(tmp: Path, rounds: int = 60, batch: int = 50) -> None:
    """Capture switched off and on for alternate batches of calls, so the machine's drift (a neighbour
    waking up) hits both alike: the figure is the median of the paired batch differences."""
    client = openai.OpenAI(base_url="http://bench.local/v1", api_key="k",
                           http_client=httpx2.Client(transport=httpx2.MockTransport(chat_handler)))
    per_call_us(client, 200)  # warm up
    llmcost_nb.get_session().use_ledger(tmp / "calls.db")
    capture.install()
    off, on = [], []
    with llmcost_nb.track() as t:
        per_call_us(client, 300)
        for _ in range(rounds):
            capture.uninstall()
            off.append(per_call_us(client, batch))
            capture.install()
            on.append(per_call_us(client, batch))
        means = []  # whole batches of 500 calls (0.3 s: the background thread records about thrice in each)
        for _ in range(8):
            on_us = mean_us(client, 500)
            capture.uninstall()
            means.append(on_us - mean_us(client, 500))
            capture.install()
        batch_us = recording_us(client, t)
    capture.uninstall()
    rows = llmcost_nb.Ledger(tmp / "calls.db").count()
    ours = statistics.median(a - b for a, b in zip(on, off, strict=True))
    print(f"non-stream call: {statistics.median(on):.1f} µs p50 tracked vs {statistics.median(off):.1f} µs "
          f"untracked -> capture + durable row {ours:.1f} µs per call (median of {rounds} paired batches; "
          f"floor 60 µs); {rows} rows committed, scope total ${t.total_cost}")
    print(f"  taped calls made into priced, committed rows in batches: {batch_us:.1f} µs per call, off the "
          f"call's path; mean cost per call, batches included: {statistics.median(means):.1f} µs "
          "(median of 8 paired runs of 500 calls)")


def mean_us(client: openai.OpenAI, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "hi"}])
    return (time.perf_counter() - t0) / n * 1e6


def recording_us(client: openai.OpenAI, scope: llmcost_nb.Scope, n: int = 1000, rounds: int = 5) -> float:
    """What making ``n`` taped calls into priced, committed rows costs per call (here: on reading the
    scope's total, then the ledger), median of ``rounds`` batches; a full pass of the cycle collector, which
    the batch's allocations can set off in a process this size, lands in some of them."""
    interval, most = _journal.INTERVAL_S, _journal.MAX_PENDING
    _journal.INTERVAL_S, _journal.MAX_PENDING = 3600.0, 10**9
    figures = []
    try:
        scope.ledger.count()  # nothing pending before
        for _ in range(rounds):
            for _ in range(n):
                client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "hi"}])
            t0 = time.perf_counter()
            scope.total_cost  # noqa: B018
            scope.ledger.count()
            figures.append((time.perf_counter() - t0) / n * 1e6)
        return statistics.median(figures)
    finally:
        _journal.INTERVAL_S, _journal.MAX_PENDING = interval, most


def bench_path_alone(tmp: Path) -> None:
    """Our code alone, on a prebuilt request and response (no SDK around it): what capture itself costs
    when its code and SQLite's are warm in the CPU caches (inside a real SDK call they are not)."""
    request = httpx2.Request("POST", "https://api.openai.com/v1/chat/completions",
                             json={"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]})
    tee = capture._sync_tee_class(httpx2.SyncByteStream)
    headers = {"content-type": "application/json", "x-request-id": "req_1"}

    def response() -> httpx2.Response:
        resp = httpx2.Response(200, content=CHAT, headers=headers)
        resp.read()
        return resp

    def tracked() -> None:
        pending = capture._begin(request)
        _recorder.responded(pending, response(), tee)

    def p50(fn: object, n: int) -> float:
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()  # type: ignore[operator]
            times.append(time.perf_counter() - t0)
        return statistics.median(times) * 1e6

    llmcost_nb.get_session().use_ledger(tmp / "alone.db")
    with llmcost_nb.track():
        p50(tracked, 300)
        ours = statistics.median(p50(tracked, 1000) - p50(response, 1000) for _ in range(5))
    capture.uninstall()
    print(f"capture path alone (begin + record + durable row, no SDK around it): {ours:.1f} µs p50")


def bench_stream(tmp: Path) -> None:
    http = httpx2.Client(transport=httpx2.MockTransport(stream_handler))
    stream_us(http, 20)
    off = stream_us(http, 200)
    capture.install()
    llmcost_nb.get_session().use_ledger(tmp / "stream.db")
    stream_us(http, 20)
    on = stream_us(http, 200)
    capture.uninstall()
    per_chunk = (on - off) / (CHUNKS + 1)
    print(f"stream of {CHUNKS + 1} chunks: {on:.0f} µs tracked vs {off:.0f} µs untracked -> "
          f"{per_chunk:.2f} µs per chunk, row write included (floor 3 µs)")


def asked_handler(request: httpx2.Request) -> httpx2.Response:
    """An OpenAI stream as sent when asked for its usage: ``"usage":null`` in every chunk, then the usage."""
    asked = b',"usage":null}\n\n' if b"include_usage" in request.content else b"}\n\n"
    events = [b'data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4.1","choices":[{"index":0,'
              b'"delta":{"content":"word "}}]' + asked] * CHUNKS
    if b"include_usage" in request.content:
        events.append(b'data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4.1","choices":[],'
                      b'"usage":{"prompt_tokens":10,"completion_tokens":2000,"total_tokens":2010}}\n\n')
    events.append(b"data: [DONE]\n\n")
    return httpx2.Response(200, content=iter(events), headers={"content-type": "text/event-stream"})


def bench_asked_stream(tmp: Path) -> None:
    """A stream asked for its usage (``enable(ask_stream_usage=True)``): the tee keeps the stream as sent
    and gives the caller each event with the usage taken out, against the same stream read untracked."""
    http = httpx2.Client(transport=httpx2.MockTransport(asked_handler))
    body = {"model": "gpt-4.1", "stream": True, "messages": [{"role": "user", "content": "hi"}]}

    def read_us(n: int) -> float:
        return stream_us(http, n, "https://api.openai.com/v1/chat/completions", body)

    read_us(20)
    off = read_us(200)
    llmcost_nb.get_session().use_ledger(tmp / "asked.db")
    llmcost_nb.enable(ask_stream_usage=True)
    read_us(20)
    on = read_us(200)
    capture.uninstall()
    llmcost_nb.get_session().ask_stream_usage = False
    per_chunk = (on - off) / (CHUNKS + 1)
    print(f"asked stream of {CHUNKS + 1} events (usage hidden from the caller): {on:.0f} µs tracked vs "
          f"{off:.0f} µs untracked -> {per_chunk:.2f} µs per chunk, row write included (floor 3 µs)")


def bench_bulk(tmp: Path, n: int = 200_000) -> None:
    rows = [{"model": "gpt-4.1" if i % 3 else "claude-sonnet-4-5", "input_tokens": 100 + i % 1000,
             "output_tokens": 20 + i % 300, "cache_read_tokens": i % 50, "tags": {"team": f"t{i % 5}"}}
            for i in range(n)]
    ledger = llmcost_nb.Ledger(tmp / "bulk.db")
    t0 = time.perf_counter()
    llmcost_nb.log_many(rows, ledger=ledger)
    ours = n / (time.perf_counter() - t0)

    conn = sqlite3.connect(tmp / "raw.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE calls (id INTEGER PRIMARY KEY, ts TEXT, model TEXT, input_tokens INT, "
                 "output_tokens INT, cache_read_tokens INT, cost_pusd INT, tags TEXT)")
    conn.execute("CREATE INDEX calls_ts ON calls(ts)")
    t0 = time.perf_counter()
    params = [("2026-01-01T00:00:00.000000Z", r["model"], r["input_tokens"], r["output_tokens"],
               r["cache_read_tokens"], 0, json.dumps(r["tags"])) for r in rows]
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO calls (ts, model, input_tokens, output_tokens, cache_read_tokens, "
                     "cost_pusd, tags) VALUES (?, ?, ?, ?, ?, ?, ?)", params)
    conn.execute("COMMIT")
    raw = n / (time.perf_counter() - t0)
    print(f"bulk log_many: {ours:,.0f} rows/s (priced, tagged) vs raw sqlite3 executemany {raw:,.0f} rows/s "
          f"-> ratio {ours / raw:.2f} (floor 100k rows/s)")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        bench_calls(Path(tmp))
        bench_path_alone(Path(tmp))
        bench_stream(Path(tmp))
        bench_asked_stream(Path(tmp))
        bench_bulk(Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
