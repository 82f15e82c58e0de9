"""Capture's cost per call on each HTTP stack in CPU instructions, counted by valgrind: the same figure on a
quiet machine and a noisy one, so a change of a few µs can be seen and attributed where wall-clock and CPU
time (``bench_stacks.py``) spread by ±20% from one run to the next on a shared machine.

    .venv/bin/python benchmarks/bench_instructions.py [STACK ...]   (needs valgrind; ~1 min a stack)

For each stack, a child process makes ``N`` non-streamed chat calls to a canned server on loopback, once with
capture on and once with it off, under callgrind; only the calling thread's instructions inside the calls are
counted (``--toggle-collect`` on the loop's ``functools.reduce``; the flusher and the server are other
threads or processes). The figure is the difference per call, and its ratio to httpx2's (the stack openai and
anthropic go through), measured in the same run. The cyclic garbage collector is off in the counted calls, in
both runs: a collection costs tens of thousands of instructions and falls on one call in hundreds, wherever
the allocation counts of the library and ours put it, so with it on 50 calls held one collection more or less
(botocore's figure read 22-57k instructions from run to run, 102k with it off). Instructions are not time:
a call whose code is cold in the CPU caches costs more per instruction, which ``bench_stacks.py`` measures;
but fewer instructions is less time.
"""

from __future__ import annotations

import functools
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

N = 50
WARM = 30


def child(stack: str, mode: str, n: int) -> None:
    """Make the calls: ``WARM`` first (imports, pools, the pricer's warming thread joined), then ``n`` inside
    the one ``functools.reduce`` callgrind counts."""
    sys.path.insert(0, str(Path(__file__).parent))
    import bench_stacks

    import llmcost_nb
    from llmcost_nb.ledger import journal
    from llmcost_nb.pricing import pricer
    from llmcost_nb.tracking import capture

    journal.INTERVAL_S, journal.MAX_PENDING = 1e9, 10**9  # no commit inside the counted calls
    llmcost_nb.get_session().use_ledger(Path(tempfile.mkdtemp()) / "instructions.db")
    calls, _, close = bench_stacks.stack_calls(os.environ["CANNED_URL"])
    call = calls[stack]
    with llmcost_nb.track():
        if mode == "off":
            capture.uninstall()
        for thread in list(pricer._warm_threads):
            thread.join()
        for _ in range(WARM):
            call()
        gc.collect()  # the cyclic collector off for the counted calls (see the module docstring)
        gc.disable()
        functools.reduce(lambda _, __: call(), range(n), None)
    close()
    os._exit(0)  # no exit handlers: nothing after the counted calls


def count(stack: str, mode: str, n: int, url: str) -> int:
    """Instructions of the calling thread inside the ``n`` counted calls."""
    out = Path(tempfile.mkdtemp())
    env = {**os.environ, "CANNED_URL": url, "PYTHONHASHSEED": "0"}
    subprocess.run(["valgrind", "--tool=callgrind", "--separate-threads=yes", "--collect-atstart=no",
                    "--toggle-collect=functools_reduce", f"--callgrind-out-file={out}/out.%p", sys.executable,
                    __file__, "--child", stack, mode, str(n)], env=env, check=True, capture_output=True)
    main_thread = next(out.glob("out.*-01"))
    total = next(int(line.split()[1]) for line in main_thread.read_text().splitlines()
                 if line.startswith("summary:"))
    shutil.rmtree(out)
    return total


def main(stacks: list[str]) -> None:
    if shutil.which("valgrind") is None:
        sys.exit("bench_instructions needs valgrind (Debian: apt-get install valgrind)")
    sys.path.insert(0, str(Path(__file__).parent))
    import bench_stacks

    server = bench_stacks.Canned()
    calls, _, close = bench_stacks.stack_calls(server.url)
    close()
    reference = "httpx2 (reference)"
    wanted = stacks or list(calls)
    if unknown := [s for s in wanted if s not in calls]:
        sys.exit(f"unknown stack {unknown}; the stacks are {list(calls)}")
    if reference not in wanted:
        wanted = [reference, *wanted]
    print(f"instructions per call of the calling thread ({N} calls; tracked - untracked; callgrind):")
    extra: dict[str, float] = {}
    for stack in wanted:
        on, off = (count(stack, mode, N, server.url) / N for mode in ("on", "off"))
        extra[stack] = on - off
        ratio = extra[stack] / extra[reference]
        print(f"  {stack:<22} {on:10,.0f} vs {off:10,.0f} untracked -> {extra[stack]:8,.0f} per call "
              f"({ratio:.2f}x httpx2's)", flush=True)
    print(json.dumps({"instructions_per_call": {k: round(v) for k, v in extra.items()}}))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        main(sys.argv[1:])
