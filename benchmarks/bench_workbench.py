"""The workbench's two figures, measured in one run against baselines measured alongside.

1. **Estimate after a keystroke** on a 200-input grid (3 variants × 3 models): the label is recomputed
   ``DEBOUNCE_S`` after the last keystroke; what it then costs is the workbench's quote with token counts
   cached per filled request (only the edited variant's 200 requests are tokenized again). Baseline: the same
   estimate without the cache (``compare.estimate_grid``, every request tokenized). Goal: debounce + quote
   ≤ 100 ms.
2. **Widget overhead**: the same grid (the fake provider in its own process) run with ``compare()`` directly
   and with ``wb.run()`` from a workbench whose widget is built (its progress bar, Stop, the estimate checked
   again, the run's number, the history), alternating, one run each per round. Goal: ≤ 5% more time than
   compare(). The results pane (the explorer's table and chart) is then rendered once per run, whatever the
   grid's size: it is timed apart, beside ``result.explore()``'s widget after ``compare()`` (the same work).

    .venv/bin/python benchmarks/bench_workbench.py [--keystrokes 40] [--calls 400] [--rounds 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SERVER = """
import time
from llmcost_nb.testing import FakeProvider
fake = FakeProvider()
fake.record_requests = False
fake.reply = "4"
print(fake.openai_base_url, flush=True)
while True:
    time.sleep(3600)
"""
WORDS = ("what", "is", "the", "capital", "of", "a", "country", "whose", "river", "runs", "north", "through",
         "mountains", "and", "plains", "before", "reaching", "sea", "in", "winter")


def question(i: int) -> str:
    """A question of 20-60 words, different for each input."""
    return " ".join(WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(20 + i % 41)) + f" (#{i})?"


def estimate_figures(keystrokes: int) -> None:
    from llmcost_nb.experiments.compare import estimate_grid
    from llmcost_nb.notebook.workbench import DEBOUNCE_S, workbench

    inputs = [{"id": f"q{i}", "question": question(i), "expected": "4"} for i in range(200)]
    variants = {
        "terse": "Q: {question}",
        "guided": '[{"role": "system", "content": "You are a careful assistant. Answer in one word."},\n'
                  ' {"role": "user", "content": "{question}"}]',
        "steps": "Think step by step, then give only the final answer.\n\nQuestion: {question}\nAnswer:",
    }
    models = ["gpt-4.1", "gpt-4.1-mini", "claude-haiku-4-5"]
    start = time.perf_counter()
    wb = workbench(inputs, models=models, budget="5", variants=variants, max_tokens=64)
    wb.widget()
    cold = time.perf_counter() - start
    cached, cpu, uncached, typed = [], [], [], []
    text = variants["steps"]
    for k in range(keystrokes):
        text += "x" if k % 5 else " "
        wb.bench.set_variant("steps", text)
        t0, c0 = time.perf_counter(), time.process_time()
        quote = wb.bench.quote()
        cached.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        templates = {n: c.template for n, c in ((n, wb.bench.check(n)) for n in wb.variants)}
        t0 = time.perf_counter()
        baseline = estimate_grid(templates, models, inputs, max_tokens=64)
        uncached.append(time.perf_counter() - t0)
        assert baseline.max_cost == quote.max_cost and baseline.input_tokens == quote.estimate.input_tokens
        # through the widget: the keystroke's handler (field check, timer) then the debounced refresh
        area = wb._rows["steps"][1]
        t0 = time.perf_counter()
        area.value = text + "!"  # the keystroke's handler: the field check, the debounce timer (re)started
        wb.refresh_estimate()  # what the timer runs DEBOUNCE_S later
        typed.append(time.perf_counter() - t0)
    label = wb.quote.label()
    med = statistics.median
    print(f"estimate on {len(inputs)} inputs × {len(variants)} variants × {len(models)} models "
          f"({wb.quote.estimate.calls:,} calls): {label}")
    print(f"  first quote (every request tokenized, widget built): {cold * 1000:7.1f} ms")
    print(f"  after a keystroke, cached counts (median of {keystrokes}):   {med(cached) * 1000:7.1f} ms   "
          f"(p90 {sorted(cached)[int(0.9 * len(cached))] * 1000:.1f} ms; CPU {med(cpu) * 1000:.1f} ms)")
    print(f"  baseline, estimate_grid without the cache (median):  {med(uncached) * 1000:7.1f} ms   "
          f"(the workbench's: {med(uncached) / med(cached):.1f}× faster)")
    print(f"  through the widget (keystroke handler + refresh):     {med(typed) * 1000:7.1f} ms")
    total = DEBOUNCE_S * 1000 + med(typed) * 1000
    print(f"  label updated {total:.1f} ms after the last keystroke (debounce {DEBOUNCE_S * 1000:.0f} ms + "
          f"refresh): goal ≤ 100 ms: {'met' if total <= 100 else 'NOT met'}")


def overhead_figures(calls: int, rounds: int) -> None:
    import openai

    from llmcost_nb.experiments.compare import compare
    from llmcost_nb.notebook.workbench import workbench

    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    try:
        base_url = server.stdout.readline().strip()
        client = openai.OpenAI(base_url=base_url, api_key="sk-bench", max_retries=0)
        models = ["gpt-4.1", "gpt-4.1-mini"]
        variants = {"terse": "Q: {question}", "polite": "Please answer: {question}"}
        inputs = [{"id": f"q{i}", "question": f"what is {i} plus {i}", "expected": "4"}
                  for i in range(calls // 4)]
        n = len(inputs) * 4
        options = dict(scorer="exact", client=client, concurrency=16, budget="1", max_tokens=16)

        from llmcost_nb.notebook.explorer import Explorer

        explored: list[float] = []  # the 3-cell flow's last step: result.explore()'s widget, for the results

        def direct() -> float:
            start = time.perf_counter()
            result = compare(variants, models, inputs, progress=False, **options)
            took = time.perf_counter() - start
            assert len(result.rows) == n
            start = time.perf_counter()
            Explorer(result).widget()
            explored.append(time.perf_counter() - start)
            return took

        wb = workbench(inputs, models=models, variants=variants, **options)
        wb.widget()  # displayed: runs report into its progress bar and fill its results pane
        rendered: list[float] = []

        def widget() -> float:
            result = wb.run()
            assert len(result.rows) == n
            rendered.append(wb.timings["results"])
            return wb.timings["run"]

        direct(), widget()  # warm-up: imports, prices, tiktoken, vl-convert, connections
        explored.clear(), rendered.clear()
        plain, through = [], []
        for i in range(rounds):  # back to back, order alternating, so drift and neighbours hit both alike
            if i % 2:
                through.append(widget())
                plain.append(direct())
            else:
                plain.append(direct())
                through.append(widget())
        ratios = [w / p for w, p in zip(through, plain, strict=True)]
        ratio = statistics.median(ratios)
        med = statistics.median
        print(f"run of {n} calls (fake provider in its own process), {rounds} rounds alternating:")
        print(f"  compare() directly:                 median {med(plain) * 1000:7.1f} ms "
              f"({', '.join(f'{t * 1000:.0f}' for t in plain)})")
        print(f"  wb.run() until its result and history: median {med(through) * 1000:7.1f} ms "
              f"({', '.join(f'{t * 1000:.0f}' for t in through)})")
        print(f"  run: widget / direct, median of paired rounds {ratio:.3f} "
              f"({', '.join(f'{r:.2f}' for r in ratios)}): goal ≤ 1.05: "
              f"{'met' if ratio <= 1.05 else 'NOT met'}")
        print(f"  then the results pane (the explorer's table and chart, once per run): median "
              f"{med(rendered) * 1000:.0f} ms; result.explore()'s widget after compare(): median "
              f"{med(explored) * 1000:.0f} ms (the same work, which the 3-cell flow pays too)")
        totals = [(t + r) / (p + e) for t, r, p, e in zip(through, rendered, plain, explored, strict=True)]
        print(f"  run + results: workbench / (compare() + explore()), median {statistics.median(totals):.3f}")
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keystrokes", type=int, default=40)
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    os.environ["LLMCOST_DB"] = str(Path(tempfile.mkdtemp(prefix="bench-workbench-")) / "ledger.db")
    tiktoken = Path(__file__).resolve().parents[1] / "tests" / "data" / "tiktoken"
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(tiktoken))
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    estimate_figures(args.keystrokes)
    overhead_figures(args.calls, args.rounds)


if __name__ == "__main__":
    main()
