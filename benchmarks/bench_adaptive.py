"""What racing saves: compare(..., adaptive=True) against the full grid on the same grids, measured in the
same run on the fake provider (real SDK client, real ledger; prices stated here, as in the tests).

Clear-winner grids: three variants — one always right, one right 60% of the time, one never — on two models
5x apart in price (gpt-4.1 at $2/$8 per million tokens, gpt-4.1-mini at $0.40/$1.60), 80 inputs, scored by
exact match, racing on cost per success at 95%. Each grid is run with a different experiment name, so with a
different shuffle, and a different set of inputs the 60% variant gets right.
Goal: adaptive spends <= 40% of the full grid and picks the same winner, on every grid.

No-clear-winner grids: two variants each right on exactly 70% of the inputs (not the same ones), with calls
of the same length, on one model: equal cost per success. Goal: adaptive says there is no clear winner and
spends no more than the full grid.

    .venv/bin/python benchmarks/bench_adaptive.py [--grids 5] [--inputs 80]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import time
import zlib
from decimal import Decimal
from pathlib import Path

PRICES = {"gpt-4.1": ("2", "8"), "gpt-4.1-mini": ("0.4", "1.6")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--grids", type=int, default=5)
    parser.add_argument("--inputs", type=int, default=80)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-adaptive-"))
    os.environ["LLMCOST_DB"] = str(tmp / "ledger.db")
    tiktoken = Path(__file__).resolve().parents[1] / "tests" / "data" / "tiktoken"
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(tiktoken))

    import openai

    import llmcost_nb
    from llmcost_nb.experiments.compare import compare
    from llmcost_nb.testing import FakeProvider

    ledger = llmcost_nb.Ledger(tmp / "ledger.db")
    for model, (inp, out) in PRICES.items():
        ledger.set_price(model, input_mtok=inp, output_mtok=out)
    questions = [
        {"id": f"q{n}", "question": f"what is {n} plus {n}", "expected": str(2 * n)}
        for n in range(args.inputs)
    ]
    state = {"salt": 0}

    def right(share: int, key: str) -> bool:
        return zlib.crc32(f"{state['salt']}/{key}".encode()) % 100 < share

    def reply(body: dict, model: str) -> str:
        text = json.dumps(body)
        n = int(re.search(r"what is (\d+) plus", text).group(1))
        ok = {
            "Right": True,
            "Maybe": right(60, f"{model}/{n}"),
            "Never": False,
            "Alpha": (n + state["salt"]) % 10 < 7,
            "Bravo": (n + state["salt"] + 3) % 10 < 7,
        }[re.search(r"(Right|Maybe|Never|Alpha|Bravo):", text).group(1)]
        return str(2 * n) if ok else "no idea"

    clear = {"right": "Right: {question}", "maybe": "Maybe: {question}", "never": "Never: {question}"}
    even = {"alpha": "Alpha: {question}", "bravo": "Bravo: {question}"}
    verdicts = []
    with FakeProvider() as fake:
        fake.reply, fake.record_requests = reply, False
        client = openai.OpenAI(base_url=fake.openai_base_url, api_key="sk-bench", max_retries=0)
        grid = dict(scorer="exact", client=client, ledger=ledger, max_tokens=4, progress=False)
        print(f"{'grid':<10} {'full grid':>11} {'adaptive':>11} {'share':>6} {'saved (est.)':>13}  "
              f"{'same winner':<11} verdict")
        for kind, variants, models, goal in (
            ("clear", clear, list(PRICES), Decimal("0.40")),
            ("no-winner", even, ["gpt-4.1-mini"], Decimal(1)),
        ):
            shares = []
            for g in range(args.grids):
                state["salt"] = g
                started = time.perf_counter()
                full = compare(variants, models, questions, name=f"{kind}-full-{g}", **grid)
                full_s = time.perf_counter() - started
                started = time.perf_counter()
                race = compare(variants, models, questions, name=f"{kind}-race-{g}", adaptive=True, **grid)
                race_s = time.perf_counter() - started
                share = race.total_cost / full.total_cost
                shares.append(share)
                cells = race.best()[["variant", "model"]].tolist(), full.best()[["variant", "model"]].tolist()
                same = cells[0] == cells[1]
                no_winner = len(race.live_cells) > 1
                ok = same and share <= goal and (no_winner if kind == "no-winner" else not no_winner)
                verdicts.append(ok)
                print(f"{kind}-{g:<4} ${full.total_cost:.7f}  ${race.total_cost:.7f} {share:6.1%} "
                      f"${race.saved:.7f}   {'yes' if same else 'NO':<11} "
                      f"{'ok' if ok else 'FAILED'} ({full_s:.1f}s vs {race_s:.1f}s)")
                print(f"           {race.race_verdict()}")
            print(f"{kind}: mean share of the full grid's cost {sum(shares) / len(shares):.1%} "
                  f"(goal <= {goal:.0%})\n")
    print("verdict:", "PASS" if all(verdicts) else "FAIL", f"({sum(verdicts)}/{len(verdicts)} grids)")


if __name__ == "__main__":
    main()
