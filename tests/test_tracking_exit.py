"""What a process that exits normally leaves in its ledger (README "Durability", docs/reliability.md): streams
still open are recorded as ``unfinished`` with what arrived so far, and captured calls still pending in the
journal are committed — by the interpreter's exit, not by the next process to open the ledger.

A real subprocess runs a short script with real openai and anthropic clients against the fake provider. Its
journal's background commit is put off for an hour (``_journal.INTERVAL_S``), so only the exit can commit
the taped call; the script checks that nothing is in the ledger yet just before it ends. The ledger is read
afterwards with plain sqlite3: opening it with ``llmcost_nb.Ledger`` would record a dead process's segments
and hide a missing exit commit.

Prices are set in the ledger: $2 / $8 per million input / output tokens for gpt-4.1 and claude-haiku-4-5.
Tokens follow the fake provider's rules: "hello there world" is 3 words + 3 per message = 6 input tokens;
"one two three four five" is 8, answered with "This is a fake reply to: one two three four five", 11 output
tokens; anthropic's first stream event (message_start) reports the input tokens (and a placeholder of 1
output token); an openai stream reports usage only in its last chunk. A stream cut before its usage bills
its prompt, counted with tiktoken where the provider sent none ("hello there world" with OpenAI's chat
framing: 3 words + 1 for the role + 3 per message + 3 priming = 10), and the text seen: none here.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest
from _env import isolated_env

import llmcost_nb

SCRIPT = r"""
import sqlite3, sys, threading
import anthropic, openai
import llmcost_nb
from llmcost_nb.ledger import journal as _journal

_journal.INTERVAL_S = 3600.0  # no background commit: only the exit can write the taped call
oai_base, ant_base, db, streams = sys.argv[1:5]
llmcost_nb.enable()
oai = openai.OpenAI(base_url=oai_base, api_key="sk-exit", max_retries=0)
claude = anthropic.Anthropic(base_url=ant_base, api_key="sk-ant-exit", max_retries=0)
hello = [{"role": "user", "content": "hello there world"}]

if streams in ("module", "thread"):
    chat = oai.chat.completions.create(model="gpt-4.1", messages=hello, stream=True,
                                       stream_options={"include_usage": True})
    next(iter(chat))  # the first chunk; the rest is never read
    events = iter(claude.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=hello,
                                         stream=True))
    assert next(events).type == "message_start"
answer = oai.chat.completions.create(model="gpt-4.1",
                                     messages=[{"role": "user", "content": "one two three four five"}])
assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (8, 11)
if streams == "unread":  # a stream dropped before anything was read from it: no iterator ever ran
    unread = oai.chat.completions.create(model="gpt-4.1", messages=hello, stream=True)
    del unread
    import gc
    gc.collect()
if streams == "thread":  # only a daemon thread, still running at exit, refers to the streams
    held = [chat, events]
    threading.Thread(target=lambda held=held: threading.Event().wait(), daemon=True).start()
    del chat, events, held
with sqlite3.connect(db) as conn:
    print("rows before exit:", conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0], flush=True)
"""

PUSD = 1_000_000  # picodollars in a micro-dollar
ANSWERED = ("chat", "gpt-4.1", "ok", 0, 1, 8, 11, (8 * 2 + 11 * 8) * PUSD)
STREAMS_CUT = [
    ("chat", "gpt-4.1", "unfinished", 1, 1, 10, 0, 10 * 2 * PUSD),
    ("messages", "claude-haiku-4-5", "unfinished", 1, 1, 6, 0, 6 * 2 * PUSD),
]


@pytest.mark.parametrize(
    ("streams", "expected"),
    [("none", [ANSWERED]), ("module", [ANSWERED, *STREAMS_CUT]), ("thread", [ANSWERED, *STREAMS_CUT]),
     ("unread", [ANSWERED, STREAMS_CUT[0]])],
    ids=["no-stream", "streams-in-globals", "streams-in-a-thread", "stream-dropped-unread"],
)
def test_exit_records_open_streams_unfinished_and_commits_the_pending_journal(tmp_path, fake, streams,
                                                                              expected):
    """streams: none open at exit (only the exit's journal commit can write the answered call), or two
    open, referred to by the script's globals (finalized after the exit handlers ran) or only by a daemon
    thread still running (never finalized: only the exit handlers can record them), or one dropped and
    collected before anything was read from it (its prompt was billed: recorded at exit, not lost)."""
    db = tmp_path / "exit.db"
    ledger = llmcost_nb.Ledger(db)
    for model in ("gpt-4.1", "claude-haiku-4-5"):
        ledger.set_price(model, input_mtok="2", output_mtok="8")
    ledger.close()
    fake.stream_delay = 1.0  # the streams' later events arrive long after the script has ended
    def run(script: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", script, fake.openai_base_url, fake.anthropic_base_url, str(db), streams],
            env=isolated_env(tmp_path, LLMCOST_DB=str(db)), capture_output=True, text=True, check=False,
        )

    proc = run(SCRIPT)
    # The exit status is the one the same script has without llmcost_nb: 0, except on CPython 3.13.0, where a
    # stream the SDK leaves open in the globals crashes the final garbage collection with or without us
    # (SIGSEGV inside httpx2's close, seen here with tracking off too).
    untracked = run(SCRIPT.replace("llmcost_nb.enable()", "pass")).returncode if proc.returncode else 0
    assert (proc.returncode, proc.stdout) == (untracked, "rows before exit: 0\n")
    assert proc.stderr == "" or (untracked and "Segmentation fault" in proc.stderr)
    assert sorted(db.parent.glob(f"{db.name}-pending/*.rows")) == []  # nothing left for a next process
    with sqlite3.connect(db) as conn:
        found = conn.execute(
            "SELECT api, model, status, streamed, billed, input_tokens, output_tokens, cost_pusd FROM calls "
            "ORDER BY api, streamed").fetchall()
    assert found == expected
