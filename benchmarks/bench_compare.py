"""Grid throughput of llmcost_nb.compare against a raw asyncio.gather of the same requests.

Both send the same N chat requests to the fake provider through one AsyncOpenAI client, 32 at a time, with
capture on and writing to a ledger (the raw gather inside one ``track()`` scope). compare() adds per-call
scopes and tags, scoring, the score written back to the ledger row, budget bookkeeping and a worker-thread
event loop. Goal: compare's calls/s >= 0.9 × the raw gather's, measured in the same run.

compare() keeps the objects older than the grid out of the cycle collector's full passes while it runs
(``gc.freeze``; see ``compare_run._older_objects_frozen``): the raw gather pays those passes, about 0.1-0.2 ms
per call here. ``--no-gc-freeze`` measures compare without it, to see what the rest of its work costs.

On a shared 2-core machine one round's rate swings by ±20% (the same run, repeated), so the verdict takes
the median of 16 paired rounds; the client CPU per call is printed as a second, steadier view.

    .venv/bin/python benchmarks/bench_compare.py [--calls 600] [--rounds 16] [--no-gc-freeze]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONCURRENCY = 32
SERVER = """
import sys, time
from llmcost_nb.testing import FakeProvider
fake = FakeProvider()
fake.record_requests = False
fake.reply = "4"
print(fake.openai_base_url, flush=True)
while True:
    time.sleep(3600)
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--no-gc-freeze", action="store_true", help="compare without its gc.freeze()")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-compare-"))
    os.environ["LLMCOST_DB"] = str(tmp / "ledger.db")
    tiktoken = Path(__file__).resolve().parents[1] / "tests" / "data" / "tiktoken"
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(tiktoken))

    import openai

    import llmcost_nb
    from llmcost_nb.experiments.compare import compare

    if args.no_gc_freeze:
        import contextlib

        import llmcost_nb.experiments.run

        llmcost_nb.experiments.run._older_objects_frozen = contextlib.nullcontext

    # The fake provider in its own process, as a real server would be: in this one its threads would
    # compete with the client for the GIL and make both figures noisy.
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    base_url = server.stdout.readline().strip()
    client = openai.AsyncOpenAI(base_url=base_url, api_key="sk-bench", max_retries=0)
    models = ["gpt-4.1", "gpt-4.1-mini"]
    variants = {"terse": "Q: {question}", "polite": "Please answer: {question}"}
    per_cell = len(models) * len(variants)
    inputs = [
        {"id": f"q{i}", "question": f"what is {i} plus {i}", "expected": "4"}
        for i in range(args.calls // per_cell)
    ]
    n = len(inputs) * per_cell
    requests = [
        (model, template.format(**item))
        for item in inputs
        for template in variants.values()
        for model in models
    ]

    async def raw() -> None:
        slots = asyncio.Semaphore(CONCURRENCY)

        async def one(model: str, prompt: str) -> str:
            async with slots:
                response = await client.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": prompt}], max_completion_tokens=256
                )
                return response.choices[0].message.content

        with llmcost_nb.track(tags={"bench": "raw"}):
            await asyncio.gather(*(one(m, p) for m, p in requests))

    cpu: dict[str, list[float]] = {"raw": [], "compare": []}  # this process's CPU ms per call

    def run_raw() -> float:
        loop = asyncio.new_event_loop()  # a script: no loop is running here
        try:
            start, cpu_start = time.perf_counter(), time.process_time()
            loop.run_until_complete(raw())
            rate = n / (time.perf_counter() - start)
            cpu["raw"].append((time.process_time() - cpu_start) * 1000 / n)
            loop.run_until_complete(client.close())
            return rate
        finally:
            loop.close()

    def run_compare() -> float:
        start, cpu_start = time.perf_counter(), time.process_time()
        result = compare(
            variants, models, inputs, scorer="exact", client=client, concurrency=CONCURRENCY, progress=False
        )
        rate = n / (time.perf_counter() - start)
        cpu["compare"].append((time.process_time() - cpu_start) * 1000 / n)
        assert len(result.rows) == n and result.table["success_rate"].min() == 1.0
        return rate

    # the raw gather runs on a new loop each round, and httpx pools belong to a loop: a new client each time
    # (compare() makes its own loop-local copy of the client by itself)
    def fresh_client() -> None:
        nonlocal client
        client = openai.AsyncOpenAI(base_url=base_url, api_key="sk-bench", max_retries=0)

    fresh_client()
    run_raw()  # warm-up: imports, pricing catalog, tiktoken, connections
    run_compare()
    raw_rates, compare_rates = [], []
    for i in range(args.rounds):  # back to back, order alternating, so drift and neighbours hit both alike
        fresh_client()
        if i % 2:
            compare_rates.append(run_compare())
            raw_rates.append(run_raw())
        else:
            raw_rates.append(run_raw())
            compare_rates.append(run_compare())
    ratios = [c / r for c, r in zip(compare_rates, raw_rates, strict=True)]

    def line(label: str, rates: list[float]) -> str:
        listed = ", ".join(f"{r:.0f}" for r in rates)
        return (
            f"{label}: {max(rates):7.1f} calls/s best, {statistics.median(rates):7.1f} median  "
            f"(rounds: {listed})"
        )

    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}: "
        f"{n} calls per run, concurrency {CONCURRENCY}, {args.rounds} rounds"
        + (", compare without its gc.freeze()" if args.no_gc_freeze else "")
    )
    print(line("raw asyncio.gather ", raw_rates))
    print(line("llmcost_nb.compare ", compare_rates))
    print(
        f"ratio compare / raw: median of the paired rounds {statistics.median(ratios):.3f}, best vs best "
        f"{max(compare_rates) / max(raw_rates):.3f}  (rounds: {', '.join(f'{r:.2f}' for r in ratios)})"
    )
    raw_cpu, compare_cpu = statistics.median(cpu["raw"][1:]), statistics.median(cpu["compare"][1:])
    print(f"client CPU per call (less sensitive to a busy machine): raw {raw_cpu:.2f} ms, compare "
          f"{compare_cpu:.2f} ms: CPU-bound throughput ratio {raw_cpu / compare_cpu:.3f}")
    ratio = statistics.median(ratios)
    print(f"goal >= 0.9: {'met' if ratio >= 0.9 else 'NOT met'}")
    server.stdin and server.stdin.close()
    server.terminate()
    server.wait()


if __name__ == "__main__":
    main()
