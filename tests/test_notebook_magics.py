"""The magics in a real IPython shell, with the real openai / anthropic clients against the fake provider.

A "hello there world" chat call costs 6 input + 9 output tokens on the fake provider; on gpt-4.1 ($2 / $8
per million, the price the `ip` fixture states) that is $0.000084.
"""

from __future__ import annotations

from decimal import Decimal

import httpx2
import pytest
from IPython.core.error import UsageError
from IPython.testing import globalipapp
from IPython.utils.capture import capture_output

import llmcost_nb
from llmcost_nb.analysis import estimate
from llmcost_nb.budget import limits
from llmcost_nb.budget.limits import Budget
from llmcost_nb.notebook.extension import _trackers
from llmcost_nb.tracking import capture
from llmcost_nb.tracking.scope import get_session

SETUP = """
import asyncio, openai, anthropic
from concurrent.futures import ThreadPoolExecutor
client = openai.OpenAI(base_url={base!r}, api_key="sk-test", max_retries=3)
aclient = openai.AsyncOpenAI(base_url={base!r}, api_key="sk-test", max_retries=3)
claude = anthropic.Anthropic(base_url={abase!r}, api_key="sk-ant", max_retries=3)
HELLO = [{{"role": "user", "content": "hello there world"}}]
def ask(**kw):
    return client.chat.completions.create(model="gpt-4.1", messages=HELLO, **kw)
"""


PRICES = {"gpt-4.1": ("2", "8"), "gpt-4.1-mini": ("0.4", "1.6"), "claude-haiku-4-5": ("1", "5")}  # $/M


def get_ipython():
    """The test shell (IPython's own test harness: a real TerminalInteractiveShell)."""
    globalipapp.start_ipython()
    return globalipapp.get_ipython()


@pytest.fixture
def ip(fake):
    shell = get_ipython()
    shell.run_cell(SETUP.format(base=fake.openai_base_url, abase=fake.anthropic_base_url))
    shell.run_line_magic("load_ext", "llmcost_nb")
    for model, (input_mtok, output_mtok) in PRICES.items():  # ours to state: genai-prices' may change
        llmcost_nb.set_price(model, input_mtok=input_mtok, output_mtok=output_mtok)
    yield shell
    shell.run_line_magic("unload_ext", "llmcost_nb")
    shell.config.pop("LlmcostMagics", None)  # %config settings would outlive the test in this shared shell


def run(ip, code):
    """Run a cell; return the result and what it displayed (the summaries' bundles) and printed."""
    with capture_output() as cap:
        result = ip.run_cell(code, store_history=True)
    return result, [o.data for o in cap.outputs], cap.stdout + cap.stderr


def summary_of(outputs):
    (bundle,) = [o for o in outputs if "llmcost" in o.get("text/plain", "")]
    return bundle


def test_load_is_idempotent_and_unload_restores_everything(fake, tmp_path):
    shell = get_ipython()
    original_send = httpx2.Client.send
    cleanup_before = list(shell.input_transformers_cleanup)
    for _ in range(2):
        llmcost_nb.load_ipython_extension(shell)
    assert (
        "llmcost" in shell.magics_manager.magics["cell"] and "llmcost" in shell.magics_manager.magics["line"]
    )
    assert len(shell.input_transformers_cleanup) == len(cleanup_before) + 1
    assert capture.installed() and httpx2.Client.send is not original_send
    session = get_session()
    tracker = _trackers[shell]
    # replay < estimate < budget < cell budget, whatever order %load_ext added them in
    assert session.preflight == [estimate._preflight, limits._preflight, tracker.cell_preflight]
    assert session.listeners == [limits._listener]
    default = get_session().ledger.path
    shell.run_line_magic("llmcost", f"db {tmp_path / 'switched.db'}")
    assert get_session().ledger.path == tmp_path / "switched.db"
    llmcost_nb.unload_ipython_extension(shell)
    assert get_session().ledger.path == default
    assert "llmcost" not in shell.magics_manager.magics["cell"]
    assert "llmcost" not in shell.magics_manager.magics["line"]
    assert shell.input_transformers_cleanup == cleanup_before
    assert not capture.installed() and httpx2.Client.send is original_send
    assert session.preflight == [] and session.listeners == []
    assert not any("CellTracker" in repr(cb) for cb in shell.events.callbacks["pre_run_cell"])
    assert "LlmcostMagics" not in [type(c).__name__ for c in shell.configurables]


def test_cell_is_tracked_tagged_and_still_an_ordinary_cell(ip):
    result, outputs, _ = run(
        ip,
        "%%llmcost --tag variant=A --tag team=search --name first\n"
        "r1 = ask()\nr2 = ask()\nr2.usage.total_tokens",
    )
    assert result.success and result.result == 15  # the last expression is displayed as usual
    bundle = summary_of(outputs)
    text = bundle["text/plain"]
    assert text.startswith(
        f"llmcost [{result.execution_count}] first: 2 calls · 12 in / 18 out tokens · $0.000168 · "
    )
    assert "session $0.000168" in text and "models: gpt-4.1 ×2" in text
    html = bundle["text/html"]
    assert '<table class="llmcost-summary mathjax_ignore tex2jax_ignore" cellpadding="3">' in html
    assert "<td>gpt-4.1</td>" in html
    calls = get_session().ledger.calls()
    assert list(calls["tags"]) == [{"variant": "A", "team": "search"}] * 2
    assert list(calls["attribution"]) == ["context", "context"]
    scope = get_session().ledger.connection.execute("SELECT kind, name, cell FROM scopes").fetchall()
    assert scope == [("cell", "first", result.execution_count)]


def test_top_level_await_gather_of_20_calls(ip):
    result, outputs, _ = run(
        ip,
        "%%llmcost\n"
        "rs = await asyncio.gather(*[aclient.chat.completions.create(model='gpt-4.1', "
        "messages=HELLO) for _ in range(20)])\nlen(rs)",
    )
    assert result.success and result.result == 20
    assert "20 calls · 120 in / 180 out tokens · $0.001680" in summary_of(outputs)["text/plain"]
    assert set(get_session().ledger.calls()["attribution"]) == {"context"}


def test_thread_pool_of_20_calls(ip):
    result, outputs, _ = run(
        ip,
        "%%llmcost --tag via=threads\n"
        "with ThreadPoolExecutor(8) as pool:\n"
        "    rs = list(pool.map(lambda _: ask(), range(20)))",
    )
    assert result.success
    assert "20 calls · 120 in / 180 out tokens · $0.001680" in summary_of(outputs)["text/plain"]
    calls = get_session().ledger.calls()
    assert set(calls["attribution"]) == {"active"} and list(calls["tags"]) == [{"via": "threads"}] * 20


def test_stream_broken_off_early_is_shown_unfinished(ip):
    result, outputs, _ = run(
        ip,
        "%%llmcost\n"
        "stream = ask(stream=True, stream_options={'include_usage': True})\n"
        "first = next(iter(stream))",
    )
    assert result.success
    text = summary_of(outputs)["text/plain"]
    assert "1 call · " in text and "1 stream unfinished at cell end" in text
    assert list(get_session().ledger.calls()["status"]) == ["unfinished"]
    run(ip, "stream.close()")


def test_exception_mid_cell_still_shows_the_summary(ip):
    result, outputs, printed = run(ip, "%%llmcost\nask()\nask()\n1 / 0\nask()")
    assert isinstance(result.error_in_exec, ZeroDivisionError)
    assert "ZeroDivisionError" in printed  # the usual traceback
    assert "2 calls · 12 in / 18 out tokens · $0.000168" in summary_of(outputs)["text/plain"]


def test_cell_budget_stops_the_third_call_before_it_reaches_the_server(ip, fake):
    # each call may cost up to $0.00018 (10 estimated input + 20 output tokens) and costs $0.000084
    result, outputs, _ = run(ip, "%%llmcost --budget 0.0003\nfor _ in range(3):\n    ask(max_tokens=20)")
    assert type(result.error_in_exec) is llmcost_nb.BudgetExceeded
    assert fake.request_count == 2  # nothing sent for the third, no retries
    text = summary_of(outputs)["text/plain"]
    assert "2 calls · 12 in / 18 out tokens · $0.000168" in text
    assert "stopped: budget cell of $0.0003 would be exceeded: $0.000168 spent" in text


@pytest.mark.parametrize(("limit", "sent"), [("0.000264", 2), ("0.000263999999", 1)])
def test_a_cell_budget_exactly_reached_lets_the_request_through(ip, fake, limit, sent):
    # 2 calls: $0.000084 spent + the second's $0.00018 worst case = $0.000264, the limit exactly: sent
    result, _, _ = run(ip, f"%%llmcost --budget {limit}\nfor _ in range(3):\n    ask(max_tokens=20)")
    assert type(result.error_in_exec) is llmcost_nb.BudgetExceeded
    assert fake.request_count == sent


def test_a_cell_records_after_disable(ip, fake):
    llmcost_nb.disable()
    assert not capture.installed()
    result, outputs, _ = run(ip, "%%llmcost --tag variant=B\nask()")
    assert result.success and fake.request_count == 1
    assert capture.installed()
    assert "1 call · 6 in / 9 out tokens · $0.000084" in summary_of(outputs)["text/plain"]
    calls = get_session().ledger.calls(tags={"variant": "B"})
    assert calls["cost_usd"].tolist() == [Decimal("0.000084")]


def test_session_hard_budget_from_the_line_magic(ip, fake):
    # claude-haiku-4-5 ($1 / $5 per million): a call costs 6 × 1 + 9 × 5 = 51 µ$ and may cost up to
    # 10 × 1 + 20 × 5 = 110 µ$, so with $0.0002 the third (102 + 110 > 200) is stopped
    run(ip, "%llmcost budget 0.0002 --hard")
    result, outputs, _ = run(
        ip,
        "%%llmcost\nfor _ in range(3):\n    claude.messages.create(model='claude-haiku-4-5', "
        "max_tokens=20, messages=HELLO)",
    )
    assert type(result.error_in_exec) is llmcost_nb.BudgetExceeded
    assert fake.request_count == 2
    text = summary_of(outputs)["text/plain"]
    assert "2 calls · 12 in / 18 out tokens · $0.000102" in text
    assert (
        "stopped: budget session of $0.0002 would be exceeded: $0.000102 spent, this claude-haiku-4-5 call "
        "could cost up to $0.000110; nothing was sent" in text
    )


def test_budget_alerts_show_in_the_summary(ip):
    run(ip, "%llmcost budget 0.0002")
    _, outputs, _ = run(ip, "%%llmcost\nask(); ask()")
    text = summary_of(outputs)["text/plain"]
    assert "! llmcost budget session: $0.000168 spent of $0.000200 (80% threshold reached)" in text
    assert "budget session: [################----] 84% of $0.000200" in text
    assert "session $0.000168 of $0.000200" in text


def test_on_tracks_every_cell_and_off_stops(ip):
    run(ip, "%llmcost on")
    result, outputs, _ = run(ip, "ask()\n'done'")
    assert result.result == "done" and "1 call · " in summary_of(outputs)["text/plain"]
    _, outputs, _ = run(ip, "x = 1")
    assert outputs == []  # nothing to say about a cell without calls
    run(ip, "%llmcost off")
    _, outputs, _ = run(ip, "ask()")
    assert outputs == []
    assert get_session().call_count == 2  # still captured, counted in the session


def test_tag_status_db_and_config(ip, tmp_path):
    run(ip, "%llmcost tag project=demo owner=ann")
    assert run(ip, "%llmcost tag -r owner")[0].result == {"project": "demo"}
    run(ip, "%%llmcost\nask()")
    assert list(get_session().ledger.calls()["tags"]) == [{"project": "demo"}]
    status = run(ip, "%llmcost status")[0].result
    assert (status.calls, status.total_cost, status.tags) == (1, Decimal("0.000084"), {"project": "demo"})
    assert "session " in repr(status) and "1 calls, $0.000084" in repr(status)
    path = tmp_path / "other.db"
    assert run(ip, f"%llmcost db {path}")[0].result == str(path)
    assert get_session().ledger.path == path
    run(ip, "%config LlmcostMagics.quiet = True")
    _, outputs, _ = run(ip, "%%llmcost\nask()")
    assert outputs == []
    assert llmcost_nb.Ledger(path).count() == 1


def test_unpriced_calls_are_named_in_the_summary_and_the_status_never_as_0(ip):
    """Issue 16: a call to a model with no known price is counted as unpriced, never as $0."""
    with pytest.warns(llmcost_nb.LlmcostWarning, match="no price known for model 'my-ft'"):
        result, outputs, _ = run(
            ip, "%%llmcost\nask()\nclient.chat.completions.create(model='my-ft', messages=HELLO)"
        )
    bundle = summary_of(outputs)
    text = bundle["text/plain"]
    assert text.startswith(
        f"llmcost [{result.execution_count}]: 2 calls · 12 in / 18 out tokens · $0.000084 + 1 unpriced · "
    )
    assert text.splitlines()[0].endswith(" · session $0.000084 + 1 unpriced")
    assert "\n  1 unpriced: no price known for my-ft, not in the cost (llmcost_nb.set_price sets one)" in text
    html = bundle["text/html"]
    assert "<td>my-ft</td><td>chat</td><td>6</td><td>9</td><td>0</td><td>unpriced</td>" in html
    assert "$0.000084 + 1 unpriced" in html and "$0.0000<" not in html
    status = run(ip, "%llmcost status")[0].result
    assert (status.calls, status.total_cost) == (2, Decimal("0.000084"))
    assert (status.unpriced, status.estimated) == (1, 0)
    assert repr(status).splitlines()[0].endswith(": 2 calls, $0.000084 + 1 unpriced")


def test_estimate_subcommand(ip):
    result, _, _ = run(ip, "%llmcost estimate HELLO --models gpt-4.1,gpt-4.1-mini --output 100")
    rows = result.result.rows
    assert [(r.model, r.input_tokens, r.cost) for r in rows] == [
        ("gpt-4.1", 10, Decimal("0.00082")),
        ("gpt-4.1-mini", 10, Decimal("0.000164")),
    ]


def test_estimates_are_recorded_with_captured_calls(ip):
    run(ip, "%%llmcost\nask()")
    frame = llmcost_nb.estimate.estimate_accuracy()
    assert frame[["estimated_input_tokens", "input_tokens", "error"]].values.tolist() == [[10, 6, -4]]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "%llmcost frobnicate",
            "%llmcost: unknown subcommand 'frobnicate', allowed values: budget, db, estimate, "
            "off, on, replay, status, sync, tag",
        ),
        ("%llmcost budget lots", "%llmcost budget: USD must be a number, got 'lots'"),
        (
            "%llmcost budget 5 --scope week",
            "%llmcost budget: unknown budget scope 'week', allowed values: session, "
            "notebook, day, month, tag:KEY=VALUE",
        ),
        (
            "%llmcost tag novalue",
            "%llmcost tag: argument KEY=VALUE: a tag is KEY=VALUE, got 'novalue' (see %llmcost tag -h)",
        ),
        ("%llmcost on --now", "%llmcost on: unrecognized arguments: --now"),
        ("%llmcost estimate undefined_name", "%llmcost estimate: cannot evaluate 'undefined_name'"),
    ],
)
def test_bad_arguments_are_one_line_usage_errors(ip, line, message):
    result, _, printed = run(ip, line)
    assert isinstance(result.error_in_exec, UsageError)
    assert str(result.error_in_exec).startswith(message)
    assert "\n" not in str(result.error_in_exec) and "Traceback" not in printed


def test_bad_cell_arguments_do_not_run_the_cell(ip, fake):
    result, outputs, printed = run(ip, "%%llmcost --tag novalue\nask()")
    assert isinstance(result.error_in_exec, UsageError)
    assert "a tag is KEY=VALUE, got 'novalue'" in str(result.error_in_exec) and "Traceback" not in printed
    assert fake.request_count == 0 and outputs == []


def test_help(ip, fake):
    result, _, printed = run(ip, "%llmcost budget -h")
    assert result.success and printed.startswith(
        "usage: %llmcost budget [-h] [--scope SCOPE] [--hard] [USD|off]"
    )
    result, _, printed = run(ip, "%llmcost")
    assert result.success and printed.startswith("usage: %llmcost SUBCOMMAND [options]")
    assert all(f"\n  {sub}" in printed for sub in ("status", "on | off", "tag", "budget", "db", "estimate"))
    result, outputs, printed = run(ip, "%%llmcost -h\nask()")
    assert result.success and printed.startswith("usage: %%llmcost [-h] [--tag KEY=VALUE] [--budget USD]")
    assert printed.count("usage:") == 1
    assert fake.request_count == 0 and outputs == []  # help only: the body does not run
    _, _, printed = run(ip, "%%llmcost?")
    assert "Track every LLM call made while the cell runs" in printed
    result, _, _ = run(ip, "%lsmagic")
    assert "%%llmcost" in str(result.result) and "%llmcost" in str(result.result)


def test_cell_magic_called_directly_still_tracks(ip):
    result, outputs, _ = run(ip, "get_ipython().run_cell_magic('llmcost', '--name direct', 'ask()')")
    assert result.success
    assert summary_of(outputs)["text/plain"].startswith("llmcost direct: 1 call · 6 in / 9 out tokens")


def test_budget_subcommand_sets_lists_and_removes(ip):
    made = run(ip, "%llmcost budget 5 --scope day --hard")[0].result
    assert made == Budget(Decimal("5"), "day", True, (Decimal("0.8"), Decimal("1")))
    listed = repr(run(ip, "%llmcost budget")[0].result)
    assert listed == "budget day: $5.0000 (hard), alerts at 80%, 100%; spent $0.0000"
    run(ip, "%config LlmcostMagics.alert_thresholds = [0.5]")
    assert run(ip, "%llmcost budget 2 --scope tag:team=ads")[0].result.thresholds == (Decimal("0.5"),)
    assert run(ip, "%llmcost budget off --scope day")[0].result is True
    assert run(ip, "%llmcost budget off --scope tag:team=ads")[0].result is True
    assert repr(run(ip, "%llmcost budget")[0].result) == "no budgets"


def test_budget_lines_say_which_unpriced_calls_they_do_not_count(ip):
    """Issue 16: the spend a budget counts leaves out calls of unknown price; every budget line says so."""
    run(ip, "%llmcost budget 5")
    run(ip, "%llmcost budget 2 --scope day --hard")
    run(ip, "%llmcost budget 1 --scope tag:team=ads")  # no call carries the tag: nothing left out
    with pytest.warns(llmcost_nb.LlmcostWarning, match="no price known for model 'my-ft'"):
        _, outputs, _ = run(
            ip, "%%llmcost\nask()\nfor _ in range(2):\n    client.chat.completions.create(model='my-ft', "
                "messages=HELLO)"
        )
    bundle = summary_of(outputs)
    lines = bundle["text/plain"].splitlines()
    assert "  budget session: [--------------------] 0% of $5.0000 · not counting 2 unpriced calls" in lines
    empty = "[--------------------] 0%"
    assert f"  budget day: {empty} of $2.0000 (hard) · not counting 2 unpriced calls" in lines
    assert "  budget tag:team=ads: [--------------------] 0% of $1.0000" not in lines  # the cell's tags only
    assert ("<small>budget session: $0.000084 of $5.0000 · not counting 2 unpriced calls</small>"
            in bundle["text/html"])
    status = repr(run(ip, "%llmcost status")[0].result).splitlines()
    assert "budget session: $0.000084 of $5.0000 · not counting 2 unpriced calls" in status
    assert "budget day: $0.000084 of $2.0000 (hard) · not counting 2 unpriced calls" in status
    assert "budget tag:team=ads: $0.0000 of $1.0000" in status
    listed = repr(run(ip, "%llmcost budget")[0].result).splitlines()
    assert listed == [
        "budget session: $5.0000, alerts at 80%, 100%; spent $0.000084 · not counting 2 unpriced calls",
        "budget day: $2.0000 (hard), alerts at 80%, 100%; spent $0.000084 · not counting 2 unpriced calls",
        "budget tag:team=ads: $1.0000, alerts at 80%, 100%; spent $0.0000",
    ]
    for scope in ("session", "day", "tag:team=ads"):
        run(ip, f"%llmcost budget off --scope {scope}")
