"""Replay speed: a call served from a recording vs the same call sent to the fake provider, in the same run.

    .venv/bin/python benchmarks/bench_replay.py

Both go through the real openai client and llmcost_nb's capture (a ledger row each); the baseline is a
loopback round trip to the fake provider with no added latency — a real provider adds 300 ms or more per
call, so against one the gain is far larger. Also: the cost of recording (record mode vs capture alone) and
of looking a request up in a store of 5,000 recordings.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import openai

import llmcost_nb
from llmcost_nb.recording.store import Recording, ReplayStore, normalized_request
from llmcost_nb.testing.fake import FakeProvider

N = 300


def per_call_ms(fn, n: int = N) -> float:
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    llmcost_nb.get_session().use_ledger(tmp / "bench.db")
    with FakeProvider() as fake:
        fake.record_requests = False
        client = openai.OpenAI(base_url=fake.openai_base_url, api_key="sk-bench", max_retries=0)

        def call(i: int, stream: bool = False) -> None:
            messages = [{"role": "user", "content": f"question number {i % 50} about costs"}]
            if stream:
                list(client.chat.completions.create(model="gpt-4.1", messages=messages, stream=True,
                                                    stream_options={"include_usage": True}))
            else:
                client.chat.completions.create(model="gpt-4.1", messages=messages)

        with llmcost_nb.track():
            for i in range(20):
                call(i)  # warm-up: imports, pricing cache, connections
            sent = per_call_ms(call)
            sent_stream = per_call_ms(lambda i: call(i, True))
            with llmcost_nb.replay("record", path=tmp / "rec.jsonl"):
                recording = per_call_ms(call)
                per_call_ms(lambda i: call(i, True), 50)
            before = fake.request_count
            with llmcost_nb.replay("replay-only", path=tmp / "rec.jsonl"):
                replayed = per_call_ms(call)
                replayed_stream = per_call_ms(lambda i: call(i, True))
            assert fake.request_count == before, "a replayed call reached the provider"

    big = ReplayStore(tmp / "big.jsonl")
    for i in range(5000):
        body = {"model": "gpt-4.1", "messages": [{"role": "user", "content": f"q {i}"}]}
        request = normalized_request("POST", "/v1/chat/completions", "gpt-4.1", body)
        big.put(Recording.new(request, 200, "application/json", b'{"id": "x"}' * 40))
    fresh = ReplayStore(tmp / "big.jsonl")
    t0 = time.perf_counter()
    len(fresh)
    load_ms = (time.perf_counter() - t0) * 1000
    key = Recording.new(request, 0, "", b"").key
    t0 = time.perf_counter()
    for _ in range(10_000):
        fresh.get(key)
    lookup_us = (time.perf_counter() - t0) / 10_000 * 1e6

    print(f"chat call, median of {N} (openai client + capture + ledger row):")
    print(f"  sent to the fake provider (loopback)   {sent:7.3f} ms   stream {sent_stream:7.3f} ms")
    print(f"  record mode (send + keep the body)     {recording:7.3f} ms   ({recording / sent:.2f}x sent)")
    print(f"  replayed from the recording            {replayed:7.3f} ms   stream {replayed_stream:7.3f} ms")
    ratio, ratio_stream = sent / replayed, sent_stream / replayed_stream
    print(f"  ratio sent / replayed                  {ratio:7.2f}x   stream {ratio_stream:.2f}x")
    print(f"store of 5,000 recordings: first load {load_ms:.1f} ms, lookup {lookup_us:.2f} µs (incl. a stat)")


if __name__ == "__main__":
    main()
