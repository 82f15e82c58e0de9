"""Benchmark: ``%load_ext llmcost_nb`` in a fresh IPython, against ``%load_ext autoreload`` (the baseline).

Each sample is a new process, so imports are cold: ``--mode shell`` a bare ``InteractiveShell`` (the worst
case: nothing else is imported yet), ``--mode kernel`` a fresh ipykernel started by jupyter_client (what
JupyterLab runs). Only the ``%load_ext`` line is timed, inside the process. Goal: <= 50 ms (median).

Bytecode caching is on (``PYTHONDONTWRITEBYTECODE`` removed, caches under a temp ``PYTHONPYCACHEPREFIX``) and
one untimed run per extension writes the caches first: an installed package has its ``.pyc`` files, and
compiling our sources on every start would measure the compiler, not the extension.

    .venv/bin/python benchmarks/bench_load_ext.py [--runs 15] [--mode shell|kernel|both]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ENV["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="llmcost-bench-pycache-")

TIMED = """
import json, sys, time
t0, c0 = time.perf_counter(), time.thread_time()
get_ipython().run_line_magic("load_ext", {ext!r})
elapsed, cpu = time.perf_counter() - t0, time.thread_time() - c0
heavy = sorted(m for m in ("pandas", "altair", "ipywidgets", "tiktoken", "genai_prices", "openai",
                           "anthropic", "httpx", "httpx2", "sqlite_utils") if m in sys.modules)
print(json.dumps({{"ms": elapsed * 1000, "cpu_ms": cpu * 1000, "heavy": heavy}}))
"""

SHELL = (
    """
from IPython.core.interactiveshell import InteractiveShell
get_ipython = InteractiveShell.instance().get_ipython
"""
    + TIMED
)


def in_shell(extension: str) -> dict:
    code = SHELL.format(ext=extension)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=ENV)
    return json.loads(out.stdout.strip().splitlines()[-1])


def in_kernel(extension: str) -> dict:
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3", stderr=subprocess.DEVNULL, env=ENV)
    try:
        lines: list[str] = []

        def collect(msg: dict) -> None:
            if msg["msg_type"] == "stream":
                lines.append(msg["content"]["text"])

        kc.execute_interactive(TIMED.format(ext=extension), output_hook=collect, timeout=60)
        return json.loads("".join(lines).strip().splitlines()[-1])
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def report(name: str, sample, runs: int) -> None:
    sample("llmcost_nb"), sample("autoreload")  # untimed: writes the bytecode caches
    ours, cpu, base, heavy = [], [], [], set()
    for _ in range(runs):  # interleaved, so both see the same machine load
        result = sample("llmcost_nb")
        ours.append(result["ms"])
        cpu.append(result["cpu_ms"])
        heavy.update(result["heavy"])
        base.append(sample("autoreload")["ms"])
    med, med_base = statistics.median(ours), statistics.median(base)
    print(
        f"[{name}] %load_ext llmcost_nb: median {med:.1f} ms, min {min(ours):.1f} ms, max {max(ours):.1f} ms "
        f"over {runs} fresh processes (goal <= 50 ms)"
    )
    print(
        f"[{name}] main-thread CPU time of the load: median {statistics.median(cpu):.1f} ms "
        "(excludes waiting for other processes and for the price-preloading thread)"
    )
    print(f"[{name}] %load_ext autoreload (baseline): median {med_base:.1f} ms; ratio {med / med_base:.1f}x")
    print(f"[{name}] heavy modules imported during the load: {', '.join(sorted(heavy)) or 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--mode", choices=["shell", "kernel", "both"], default="both")
    args = parser.parse_args()
    if args.mode in ("shell", "both"):
        report("fresh InteractiveShell", in_shell, args.runs)
    if args.mode in ("kernel", "both"):
        report("fresh ipykernel", in_kernel, args.runs)


if __name__ == "__main__":
    main()
