"""The magics in a real Jupyter kernel (ipykernel, run by nbclient), against the fake provider on loopback.

One notebook is executed once per module; each test checks one cell's outputs and the ledger file the kernel
wrote. A "hello there world" gpt-4.1 call costs 6 + 9 tokens = $0.000084 on the fake provider, at the price
the setup cell states ($2 / $8 per million: genai-prices' current prices may differ).
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time

import nbclient
import nbformat
import pytest
from _env import isolated_env

from llmcost_nb.testing.fake import FakeProvider

WIDGET = "application/vnd.jupyter.widget-view+json"

CELLS = {
    "setup": """
%load_ext llmcost_nb
import asyncio, httpx2, openai, llmcost_nb
from concurrent.futures import ThreadPoolExecutor
from llmcost_nb.tracking import scope
client = openai.OpenAI(base_url={base!r}, api_key="sk-test", max_retries=3)
aclient = openai.AsyncOpenAI(base_url={base!r}, api_key="sk-test", max_retries=3)
HELLO = [{{"role": "user", "content": "hello there world"}}]
llmcost_nb.set_price("gpt-4.1", input_mtok="2", output_mtok="8")
def ask(content="hello there world", **kw):
    messages = [{{"role": "user", "content": content}}]
    return client.chat.completions.create(model="gpt-4.1", messages=messages, **kw)
""",
    "basic": """%%llmcost --tag variant=A --name basic
print("attribution:", scope.current_scope()[1])
r = ask()
r.usage.total_tokens""",
    "gather": """%%llmcost --name gather
calls = [aclient.chat.completions.create(model="gpt-4.1", messages=HELLO) for _ in range(20)]
rs = await asyncio.gather(*calls)
len(rs)""",
    "threads": """%%llmcost --name threads
with ThreadPoolExecutor(8) as pool:
    rs = list(pool.map(lambda _: ask(), range(20)))
len(rs)""",
    "stream": """%%llmcost --name stream
stream = ask(stream=True, stream_options={"include_usage": True})
first = next(iter(stream))""",
    "error": """%%llmcost --name error
ask()
ask()
1 / 0""",
    "interrupt": """%%llmcost --name interrupt
import os, signal, threading
ask()
threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()  # what the Interrupt button sends
ask("slow please")""",
    "budget": """%%llmcost --name budget --budget 0.0003
for _ in range(3):
    ask("budget check", max_tokens=20)""",
    "plain": """x = ask()
"untracked cell" """,
    "unload": """%unload_ext llmcost_nb
stream.close()
print("restored:", not hasattr(httpx2.Client.send, "_llmcost_original"), "transformers:",
      any("CellTracker" in repr(t) for t in get_ipython().input_transformers_cleanup))""",
}


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """Run the notebook in a fresh kernel (HOME, Jupyter and IPython dirs in a temp dir)."""
    root = tmp_path_factory.mktemp("kernel")
    env = isolated_env(root, LLMCOST_DB=str(root / "ledger.db"),
                       JPY_SESSION_NAME=str(root / "analysis.ipynb"))
    with FakeProvider() as fake:
        fake.reply = slow_when_asked
        nb = nbformat.v4.new_notebook(
            cells=[
                nbformat.v4.new_code_cell(
                    source.format(base=fake.openai_base_url) if name == "setup" else source
                )
                for name, source in CELLS.items()
            ]
        )
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        client = nbclient.NotebookClient(
            nb,
            kernel_name="python3",
            timeout=120,
            allow_errors=True,
            store_widget_state=True,
            resources={"metadata": {"path": str(root)}},
        )
        client.execute(env=env)
        requests = fake.requests
    cells = dict(zip(CELLS, nb.cells, strict=True))
    conn = sqlite3.connect(root / "ledger.db")
    yield cells, conn, requests, nb
    conn.close()


def slow_when_asked(body, model):
    """The fake's usual reply, after 3 s for "slow please" (time for the kernel to be interrupted)."""
    text = body["messages"][-1]["content"]
    if "slow please" in text:
        time.sleep(3)
    return "This is a fake reply to: " + " ".join(text.split()[:8])


def summary(cell):
    (output,) = [
        o for o in cell.outputs if o.output_type == "display_data" and "llmcost" in o.data["text/plain"]
    ]
    return output.data


def ledger_rows(conn, name):
    return conn.execute(
        "SELECT c.status, c.attribution, c.cost_pusd, s.cell, s.notebook FROM calls c JOIN scopes s "
        "ON s.id = c.scope_id WHERE s.name = ? ORDER BY c.id",
        (name,),
    ).fetchall()


def test_cell_is_an_ordinary_cell_with_a_summary_widget_and_fallbacks(executed):
    cells, conn, _, nb = executed
    cell = cells["basic"]
    assert [o.output_type for o in cell.outputs] == ["stream", "execute_result", "display_data"]
    assert cell.outputs[0].text == "attribution: context\n"
    assert cell.outputs[1].data["text/plain"] == "15"
    data = summary(cell)
    assert set(data) == {WIDGET, "text/html", "text/plain"}
    assert data["text/plain"].startswith(
        f"llmcost [{cell.execution_count}] basic: 1 call · 6 in / 9 out tokens · $0.000084 · "
    )
    html = data["text/html"]
    assert '<table class="llmcost-summary mathjax_ignore tex2jax_ignore" cellpadding="3">' in html
    # the widget's state is saved with the notebook, so it renders without a kernel
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    assert data[WIDGET]["model_id"] in state
    # the kernel knows its notebook (JupyterLab passes it as JPY_SESSION_NAME)
    (row,) = ledger_rows(conn, "basic")
    assert row[:4] == ("ok", "context", 84_000_000, cell.execution_count)
    assert row[4].endswith("analysis.ipynb")
    tags = conn.execute("SELECT t.tags FROM calls c JOIN tagsets t ON t.id = c.tagset_id").fetchall()
    assert tags == [('{"variant": "A"}',)]


def test_top_level_await_gather_of_20_calls(executed):
    cells, conn, _, _ = executed
    assert cells["gather"].outputs[0].data["text/plain"] == "20"
    assert "20 calls · 120 in / 180 out tokens · $0.001680" in summary(cells["gather"])["text/plain"]
    rows = ledger_rows(conn, "gather")
    assert len(rows) == 20 and {r[1] for r in rows} == {"context"}


def test_thread_pool_of_20_calls(executed):
    cells, conn, _, _ = executed
    assert "20 calls · 120 in / 180 out tokens · $0.001680" in summary(cells["threads"])["text/plain"]
    rows = ledger_rows(conn, "threads")
    assert len(rows) == 20 and {r[1] for r in rows} == {"active"}  # threads: the open cell, not the context


def test_stream_broken_off_early_is_shown_unfinished(executed):
    cells, conn, _, _ = executed
    text = summary(cells["stream"])["text/plain"]
    # the prompt is billed, counted with tiktoken (3 words + 1 for the role + 3 per message + 3 priming); the
    # output is what the tee had read when the cell ended (one event or more, as the network delivered them)
    assert "1 call · 10 in / " in text and "1 stream unfinished at cell end" in text
    assert [r[0] for r in ledger_rows(conn, "stream")] == ["unfinished"]


def test_exception_or_interrupt_mid_cell_shows_traceback_then_summary(executed):
    cells, _, _, _ = executed
    outputs = cells["error"].outputs
    assert [o.output_type for o in outputs] == ["error", "display_data"]
    assert outputs[0].ename == "ZeroDivisionError"
    assert "2 calls · 12 in / 18 out tokens · $0.000168" in outputs[1].data["text/plain"]
    outputs = cells["interrupt"].outputs
    assert [o.output_type for o in outputs] == ["error", "display_data"]
    assert outputs[0].ename == "KeyboardInterrupt"
    text = outputs[1].data["text/plain"]
    assert "2 calls · 6 in / 9 out tokens · $0.000084" in text and "1 failed attempt (not billed)" in text


def test_hard_cell_budget_stops_the_third_call_before_the_server(executed):
    cells, conn, requests, _ = executed
    outputs = cells["budget"].outputs
    assert outputs[0].output_type == "error" and outputs[0].ename == "BudgetExceeded"
    sent = [r for r in requests if "budget check" in str(r.body)]
    assert len(sent) == 2  # the third request never reached the server (and was not retried)
    text = outputs[1].data["text/plain"]
    assert "2 calls · 10 in / 16 out tokens · $0.000148" in text  # "budget check": 2 words + 3 in, 8 out
    assert "stopped: budget cell of $0.0003 would be exceeded" in text
    assert len(ledger_rows(conn, "budget")) == 2


def test_untracked_cells_show_nothing_and_unload_restores(executed):
    cells, conn, _, _ = executed
    assert [o.output_type for o in cells["plain"].outputs] == ["execute_result"]
    assert cells["unload"].outputs[-1].text == "restored: True transformers: False\n"
    # the untracked call was still captured (the session's total counts it), without a scope
    assert conn.execute("SELECT COUNT(*) FROM calls WHERE scope_id IS NULL").fetchone() == (1,)


def test_kernel_uses_this_python():
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec("python3")
    assert spec.argv[0] in (sys.executable, "python") or os.path.samefile(spec.argv[0], sys.executable)
