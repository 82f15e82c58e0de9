"""Crash safety: a process, or a real Jupyter kernel, killed with SIGKILL in the middle of a loop of calls
keeps a row for every call that returned before the kill, and the ledger opens cleanly afterwards.

The promise tested (docs/reliability.md): a call's row is durable before the call returns to the user:
committed to the WAL file, or (a captured call) taped in the ledger's memory-mapped journal, which
the next process to open the ledger records. Both survive the process being killed at any instant. The
loop prints ``done k`` after call k returned; everything up to the last ``done`` seen must be there, and at
most the one call in flight beyond it.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from _env import isolated_env

import llmcost_nb
from llmcost_nb.testing.fake import FakeProvider

LOOP = """
import llmcost_nb, openai
client = openai.OpenAI(base_url={base!r}, api_key="sk-crash", max_retries=0)
ledger = llmcost_nb.Ledger({db!r})
with llmcost_nb.track(ledger=ledger, tags={{"run": "crash"}}):
    for k in range(1, 100_000):
        if k % 2:
            llmcost_nb.log(model="gpt-4.1", input_tokens=k, output_tokens=1, ledger=ledger)
        else:
            words = [{{"role": "user", "content": "w " * k}}]
            client.chat.completions.create(model="gpt-4.1", messages=words)
        print("done", k, flush=True)
"""


def last_done(text: str) -> int:
    """The k of the last complete ``done k`` line (a line cut by the kill does not count)."""
    lines = [line for line in text.split("\n")[:-1] if line.startswith("done ")]
    return int(lines[-1].split()[1]) if lines else 0


def survivors(db) -> tuple[list[str], list[int]]:
    """After the kill, once a process opened the ledger (recording what the dead one had taped):
    integrity, and the rows' input tokens in order (log rows: k; chat rows: k + 3)."""
    pending = list(db.with_name(db.name + "-pending").glob("*.rows"))
    llmcost_nb.Ledger(db).close()
    assert not any(p.exists() for p in pending)
    with sqlite3.connect(db) as conn:
        integrity = [r[0] for r in conn.execute("PRAGMA integrity_check")]
        tokens = [r[0] for r in conn.execute("SELECT input_tokens FROM calls ORDER BY id")]
    return integrity, tokens


def assert_every_returned_call_kept(db, acknowledged: int, unseen: int = 1) -> None:
    """``unseen``: calls that may have returned after the last ``done`` we could see (one in flight; for a
    kernel, also what the kernel printed that the kill kept from reaching us)."""
    integrity, tokens = survivors(db)
    assert integrity == ["ok"]
    assert acknowledged >= 20
    assert acknowledged <= len(tokens) <= acknowledged + unseen
    assert tokens == [k if k % 2 else k + 3 for k in range(1, len(tokens) + 1)]  # "w " * k: k words + 3
    report = llmcost_nb.Ledger(db).check()
    assert report.ok, str(report)
    assert report.rows == len(tokens)


def test_process_killed_mid_run(tmp_path):
    db = tmp_path / "crash.db"
    with FakeProvider() as fake:
        fake.record_requests = False
        proc = subprocess.Popen(
            [sys.executable, "-c", LOOP.format(base=fake.openai_base_url, db=str(db))],
            stdout=subprocess.PIPE,
            text=True,
        )
        acknowledged = 0
        while acknowledged < 200:
            line = proc.stdout.readline()
            assert line, "the loop ended early"
            acknowledged = int(line.split()[1])
        os.kill(proc.pid, signal.SIGKILL)
        rest = proc.stdout.read()  # lines printed between our last read and the kill also count
        proc.wait()
        proc.stdout.close()
    acknowledged = max(acknowledged, last_done(rest))
    assert proc.returncode == -signal.SIGKILL
    assert_every_returned_call_kept(db, acknowledged)


@pytest.mark.slow
def test_kernel_killed_mid_run(tmp_path):
    """A real ipykernel (jupyter_client) runs the loop in a cell; we SIGKILL the kernel process."""
    from jupyter_client.manager import KernelManager

    db = tmp_path / "kernel.db"
    env = isolated_env(tmp_path, LLMCOST_DB=str(tmp_path / "default.db"))
    with FakeProvider() as fake:
        fake.record_requests = False
        km = KernelManager(kernel_name="python3")
        km.start_kernel(env=env)
        client = km.client()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=60)
            client.execute("%load_ext llmcost_nb\n" + LOOP.format(base=fake.openai_base_url, db=str(db)))
            text, deadline = "", time.monotonic() + 120
            while last_done(text) < 100:
                assert time.monotonic() < deadline, "the kernel made too little progress"
                msg = client.get_iopub_msg(timeout=60)
                if msg["msg_type"] == "stream":
                    text += msg["content"]["text"]
                assert msg["msg_type"] != "error", msg["content"]
            pid = km.provisioner.process.pid
            os.kill(pid, signal.SIGKILL)
            while True:  # output already sent before the kill
                try:
                    msg = client.get_iopub_msg(timeout=1)
                except Exception:
                    break
                if msg["msg_type"] == "stream":
                    text += msg["content"]["text"]
        finally:
            client.stop_channels()
            km.shutdown_kernel(now=True)
    assert_every_returned_call_kept(db, last_done(text), unseen=1000)
