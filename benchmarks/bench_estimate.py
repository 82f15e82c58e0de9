"""Estimated vs provider-reported tokens, and what counting a stream costs per chunk.

    .venv/bin/python benchmarks/bench_estimate.py

- accuracy: the estimator a stream without usage gets (llmcost_nb.tracking.stream_usage: the prompt from the
  request body with OpenAI's chat framing, the output from the streamed text, tiktoken) over real
  request/response pairs recorded against api.openai.com (benchmarks/data/README.md: pydantic-ai's VCR
  cassettes, MIT). A recorded stream is replayed without its usage chunk; a recorded plain response gives
  its message text as if streamed. Per pair and in aggregate (sum of |error| / sum of reported), by kind:
  ``text`` (plain text chat: the goal, within 2%), ``tools`` (function definitions, tool calls and tool
  results: the cookbook's approximation, shown for information).
- per chunk: a 2,000-chunk OpenAI chat stream *without* usage read through httpx2 with and without capture
  (the tee keeps the raw chunks; counting happens once, at the end, and is included), paired rounds, and the
  same stream with its usage chunk (nothing to count) for comparison. Floor 3 µs per chunk. Wall time and
  this thread's CPU time (the latter is what a busy machine distorts least).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(ROOT / "tests" / "data" / "tiktoken"))

import httpx2  # noqa: E402

import llmcost_nb  # noqa: E402
from llmcost_nb.testing.recorded import estimate_pair  # noqa: E402
from llmcost_nb.tracking import capture  # noqa: E402

PAIRS = ROOT / "benchmarks" / "data" / "openai_chat_pairs.json"
CHUNKS = 2000
WORDS = ("The", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog", ".")


def bench_accuracy() -> None:
    data = json.loads(PAIRS.read_text())
    origin = data["origin"]
    print(f"{len(data['pairs'])} recorded pairs from {origin['repository']}@{origin['commit'][:12]} "
          f"({origin['license']})")
    print(f"{'kind':<13}{'model':<14}{'in est/rep':>15}{'out est/rep':>13}  source")
    totals: dict[str, list[int]] = {}
    for pair in data["pairs"]:
        (est_in, est_out), (rep_in, rep_out) = estimate_pair(pair)
        kind = pair["kind"].removesuffix("-stream")
        t = totals.setdefault(kind, [0, 0, 0, 0, 0, 0, 0])
        t[0] += 1
        t[1] += abs(est_in - rep_in)
        t[2] += rep_in
        t[3] += abs(est_out - rep_out)
        t[4] += rep_out
        t[5] += est_in == rep_in
        t[6] += est_out == rep_out
        name = pair["source"].rsplit("/", 1)[-1].removesuffix(".yaml")[:48]
        print(f"{pair['kind']:<13}{pair['request']['model']:<14}{est_in:>7}/{rep_in:<7}{est_out:>6}/{rep_out:<6}"
              f"  {name}#{pair['interaction']}")
    print()
    for kind, (n, d_in, r_in, d_out, r_out, ok_in, ok_out) in totals.items():
        goal = " (goal 2%)" if kind == "text" else " (approximation, for information)"
        print(f"{kind:<6} {n:>3} pairs: prompt error {100 * d_in / r_in:.2f}% ({ok_in}/{n} exact), output "
              f"error {100 * d_out / r_out:.2f}% ({ok_out}/{n} exact){goal}")


def stream_handler(with_usage: bool):
    head = b'data: {"id":"chatcmpl-b","object":"chat.completion.chunk","created":1,"model":"gpt-4.1",'
    events = [head + b'"choices":[{"index":0,"delta":{"content":' + json.dumps(WORDS[i % 10]).encode()
              + b'},"logprobs":null,"finish_reason":null}]}\n\n' for i in range(CHUNKS)]
    if with_usage:
        events.append(head + b'"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":2000,'
                      b'"total_tokens":2010}}\n\n')
    events.append(b"data: [DONE]\n\n")

    def handle(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=iter(events), headers={"content-type": "text/event-stream"})

    return handle


def stream_us(http: httpx2.Client, with_usage: bool, n: int) -> tuple[float, float]:
    """Median wall and CPU (this thread's) µs of reading the whole stream ``n`` times."""
    body = {"model": "gpt-4.1", "stream": True, "messages": [{"role": "user", "content": "Tell me a story."}]}
    if with_usage:
        body["stream_options"] = {"include_usage": True}
    wall, cpu = [], []
    for _ in range(n):
        t0, c0 = time.perf_counter(), time.thread_time()
        with http.stream("POST", "http://bench.local/v1/chat/completions", json=body) as resp:
            for _ in resp.iter_raw():
                pass
        wall.append(time.perf_counter() - t0)
        cpu.append(time.thread_time() - c0)
    return statistics.median(wall) * 1e6, statistics.median(cpu) * 1e6


def bench_chunks(tmp: Path, rounds: int = 15, batch: int = 10) -> None:
    llmcost_nb.get_session().use_ledger(tmp / "stream.db")
    for with_usage in (False, True):
        http = httpx2.Client(transport=httpx2.MockTransport(stream_handler(with_usage)))
        capture.install()
        with llmcost_nb.track() as t:
            stream_us(http, with_usage, 10)  # warm up: imports, tiktoken's encoding, the pricer
            off, on = [], []
            for _ in range(rounds):
                capture.uninstall()
                off.append(stream_us(http, with_usage, batch))
                capture.install()
                on.append(stream_us(http, with_usage, batch))
        capture.uninstall()
        sources = set(t.calls.usage_source)
        wall = statistics.median(a[0] - b[0] for a, b in zip(on, off, strict=True)) / CHUNKS
        cpu = statistics.median(a[1] - b[1] for a, b in zip(on, off, strict=True)) / CHUNKS
        label = "with its usage chunk (provider)" if with_usage else "without usage (counted by us)"
        print(f"stream of {CHUNKS} chunks {label}: {statistics.median(a[0] for a in on):.0f} µs tracked vs "
              f"{statistics.median(b[0] for b in off):.0f} µs untracked -> {wall:.2f} µs per chunk wall, "
              f"{cpu:.2f} µs CPU, counting and row write included (floor 3 µs; rows: {sorted(sources)})")


def main() -> None:
    bench_accuracy()
    print()
    with tempfile.TemporaryDirectory() as tmp:
        bench_chunks(Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
