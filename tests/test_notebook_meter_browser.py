"""The JupyterLab meter in a real JupyterLab and headless Chromium (Playwright, as test_notebook_browser.py).

The labextension is the committed build (llmcost_nb/labextension/, linked into the test's Jupyter data dir)
and the server extension is enabled by the config file the wheel installs. A notebook runs cells that call
the fake provider through the real openai SDK; the status item (``.llmcost-status``) must then show the
notebook's session spend and today's, in the amber state of a day budget passed 80%, and the "LLM costs"
panel (opened from the status item) today's model and the session's calls. Screenshots of both go to
artifacts/screenshots/ (kept by CI); the time from the cell's end to the meter's update is printed.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path

import nbformat
import pytest
from _prices import M, unit_prices
from test_notebook_browser import api, browser, check_screenshot, free_port  # noqa: F401 (browser: a fixture)

from llmcost_nb.core.money import format_usd

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

MODEL = "gpt-4.1"
CALLS = 3
WORDS = 20_000
# the fake provider (docs/fake_provider.md) counts a word a token, 3 more per message, and replies "This is a
# fake reply to: " and the prompt's first 8 words
INPUT, OUTPUT = WORDS + 3, 6 + 8
PRICE = unit_prices(MODEL, "openai")
COST = CALLS * (INPUT * PRICE.input_mtok + OUTPUT * PRICE.output_mtok) / M
DAY_BUDGET = Decimal("0.15")  # a little over 80% of it spent: amber, not red


def notebook(fake_url: str) -> nbformat.NotebookNode:
    cells = [
        "%load_ext llmcost_nb\n"
        "import openai\n"
        "from llmcost_nb import budget\n"
        f"client = openai.OpenAI(base_url={fake_url!r}, api_key='sk-test')\n"
        f"budget.set_budget({str(DAY_BUDGET)!r}, scope='day', thresholds=['2'])  # no alert text in the cell",
        "%%llmcost --quiet\n"
        f"for _ in range({CALLS}):\n"
        f"    client.chat.completions.create(model={MODEL!r}, "
        f"messages=[{{'role': 'user', 'content': 'hello ' * {WORDS}}}])\n"
        "print('calls done')",
    ]
    kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells],
                                    metadata={"kernelspec": kernelspec})


@contextlib.contextmanager
def jupyter(kernel_env: Path, fake, app: list[str]):
    """A real Jupyter server (``python -m jupyter <app...>``: JupyterLab or Notebook 7) on 127.0.0.1 with a
    token, the meter notebook in its root, the committed labextension and the server extension enabled:
    yields (base URL, token). Its log is kernel_env/<app>.log."""
    root = kernel_env / "root"
    root.mkdir()
    nbformat.write(notebook(fake.openai_base_url), root / "meter.ipynb")
    # the committed build, where a wheel would put it (the test's own Jupyter data dir), and the config file
    # the wheel installs to enable the server extension
    labextensions = kernel_env / "jd" / "labextensions"
    labextensions.mkdir(parents=True)
    (labextensions / "llmcost-nb").symlink_to(ROOT / "llmcost_nb" / "labextension")
    server_config = kernel_env / "jc" / "jupyter_server_config.d"
    server_config.mkdir(parents=True)
    config = ROOT / "jupyter-config" / "jupyter_server_config.d" / "llmcost_nb.json"
    (server_config / "llmcost_nb.json").write_bytes(config.read_bytes())
    labconfig = kernel_env / "jc" / "labconfig"
    labconfig.mkdir(parents=True)
    (labconfig / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    token = secrets.token_hex(16)
    log_path = kernel_env / f"{app[0]}.log"
    log = log_path.open("w")
    server = None
    try:
        for _attempt in range(3):  # the port is free when picked, and taken back by the server only later
            port = free_port()
            server = subprocess.Popen(
                [sys.executable, "-m", "jupyter", *app, "--no-browser", f"--port={port}", "--ip=127.0.0.1",
                 "--ServerApp.port_retries=0", f"--ServerApp.token={token}", "--allow-root",
                 f"--ServerApp.root_dir={root}"],
                # the test's own Jupyter dirs before the venv's (where an editable install of another
                # checkout may have linked its own build): jupyter_core prefers the venv's by default
                stdout=log, stderr=subprocess.STDOUT, cwd=root,
                env={**os.environ, "JUPYTER_PREFER_ENV_PATH": "0"})
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while server.poll() is None:
                try:
                    api(base, "/api/status", token)
                    break
                except OSError:
                    assert time.monotonic() < deadline, log_path.read_text()
                    time.sleep(0.3)
            if server.poll() is None:
                break
        else:
            pytest.fail(f"{app[0]} did not start: {log_path.read_text()[-3000:]}")
        yield base, token
    finally:
        if server is not None and server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
        log.close()


def assert_serves_the_committed_bundle(page) -> None:
    """The page loaded this checkout's build of the extension (its remoteEntry file), no other."""
    built = json.loads((ROOT / "llmcost_nb" / "labextension" / "package.json").read_text())
    entry = built["jupyterlab"]["_build"]["load"].split("/")[-1]
    loaded = page.evaluate("() => performance.getEntriesByType('resource').map(r => r.name)")
    ours = [url for url in loaded if "/llmcost-nb/static/remoteEntry." in url]
    assert len(ours) == 1 and ours[0].split("?")[0].endswith(f"/{entry}"), ours


def wait_for_one_idle_kernel(base: str, token: str) -> None:
    deadline = time.monotonic() + 60  # the page may start and drop a second kernel while loading
    while True:
        try:
            kernels = api(base, "/api/kernels", token)
        except urllib.error.HTTPError:  # jupyter_server answers 500 while a kernel is still starting
            kernels = []
        if len(kernels) == 1 and kernels[0]["execution_state"] == "idle":
            break
        assert time.monotonic() < deadline, kernels
        time.sleep(0.5)


@pytest.fixture
def lab(kernel_env, fake):
    app = ["lab", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    with jupyter(kernel_env, fake, app) as (base, token):
        yield base, token, kernel_env


def test_status_bar_and_panel_show_a_cells_calls(browser, lab):  # noqa: F811
    base, token, kernel_env = lab
    ledger = kernel_env / "ledger.db"  # $LLMCOST_DB (kernel_env)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{base}/lab/tree/meter.ipynb?reset&token={token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    status = page.locator(".llmcost-status")
    status.wait_for(timeout=30_000)
    # no ledger yet: a dash, and the server did not create one
    page.wait_for_function("() => document.querySelector('.llmcost-status').textContent === 'LLM —'",
                           timeout=30_000)
    assert not ledger.exists()
    assert_serves_the_committed_bundle(page)
    wait_for_one_idle_kernel(base, token)

    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    page.locator(".jp-OutputArea-output", has_text="calls done").wait_for(timeout=120_000)
    done = time.monotonic()
    amount = format_usd(COST, places=2)  # the panel's default "cents" format is format_usd's fixed one
    expected = f"LLM {amount} · today {amount}"
    page.wait_for_function(f"() => document.querySelector('.llmcost-status').textContent === {expected!r}",
                           timeout=30_000)
    answer = api(base, "/llmcost/api/summary", token)  # what the meter read: exact
    assert Decimal(answer["today"]["cost"]) == COST and answer["today"]["calls"] == CALLS
    assert Decimal(answer["notebooks"][0]["cost"]) == COST and answer["notebooks"][0]["path"] == "meter.ipynb"
    print(f"meter updated {time.monotonic() - done:.2f} s after the cell's output showed")
    classes = status.get_attribute("class").split()
    assert "llmcost-warn" in classes and "llmcost-over" not in classes
    tooltip = status.get_attribute("title")
    assert f"Today: {amount} in {CALLS} calls" in tooltip and f"{MODEL}: {amount} ({CALLS})" in tooltip
    assert f"Budget day: {amount} of $0.15 (80%)" in tooltip and Decimal("0.8") <= COST / DAY_BUDGET < 1
    check_screenshot(page.screenshot(), "jupyterlab-meter-status.png")

    status.click()
    panel = page.locator("#llmcost-panel")
    panel.wait_for(timeout=10_000)
    models = panel.locator(".llmcost-models tbody tr")
    models.first.wait_for(timeout=10_000)
    assert [r.locator("td").all_inner_texts() for r in models.all()] == [
        [MODEL, str(CALLS), f"{CALLS * INPUT:,} → {CALLS * OUTPUT}", amount]]
    calls = panel.locator(".llmcost-calls tbody tr")
    assert calls.count() == CALLS
    per_call = format_usd(COST / CALLS, places=2)
    rows = [r.locator("td").all_inner_texts()[1:] for r in calls.all()]  # after the time
    assert rows == [["[2]", MODEL, f"{INPUT:,} → {OUTPUT}", per_call]] * CALLS
    assert panel.locator(".llmcost-budget .llmcost-bar.llmcost-warn").count() == 1
    assert panel.locator(".llmcost-dashboard-link").is_visible()
    check_screenshot(page.screenshot(), "jupyterlab-meter-panel.png")

    # the panel from the command palette too
    page.keyboard.press("Control+Shift+C")
    page.keyboard.type("Show LLM costs")
    assert page.locator(".lm-CommandPalette-item", has_text="Show LLM costs").count() >= 1
    page.keyboard.press("Escape")

    # the dashboard link: a notebook next to the others, opened in a tab, reading this ledger
    panel.locator(".llmcost-dashboard-link").click()
    page.locator(".lm-TabBar-tab", has_text="llmcost-dashboard.ipynb").wait_for(timeout=30_000)
    dashboard = nbformat.read(kernel_env / "root" / "llmcost-dashboard.ipynb", as_version=4)
    assert f"llmcost_nb.dashboard({json.dumps(str(ledger))})" in dashboard.cells[-1].source

    # the Settings Editor's choices: other figures, another currency format
    settings = {"figures": "today-and-month", "currencyFormat": "adaptive"}
    request = urllib.request.Request(
        f"{base}/lab/api/settings/llmcost-nb:plugin?token={token}", method="PUT",
        data=json.dumps({"raw": json.dumps(settings)}).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 204
    page.reload()
    adaptive = format_usd(COST)  # 4 decimals under $100
    expected = f"LLM today {adaptive} · month {adaptive}"
    page.wait_for_function(f"() => document.querySelector('.llmcost-status')?.textContent === {expected!r}",
                           timeout=60_000)
    assert errors == []
    page.close()


def test_the_meter_says_what_its_totals_leave_out_and_what_they_guess(browser, lab):  # noqa: F811
    """The session's figure, the notebook's, today's total, each model's and each call's, in the words every
    other view uses (llmcost_nb.core.money): a call without a price is "unpriced" and left out of a total that
    says so; a call whose tokens were estimated marks its amount "≈". The notebook's calls are written to the
    ledger by this process, in a cell of the notebook the page opens (as a kernel of it would)."""
    import warnings

    import llmcost_nb
    from llmcost_nb.budget import set_budget
    from llmcost_nb.core.money import format_cost, format_total, not_counting
    from llmcost_nb.tracking.scope import Scope, get_session

    base, token, kernel_env = lab
    session = get_session()
    session.use_ledger(kernel_env / "ledger.db")
    ledger = session.ledger
    set_budget("1", scope="day", ledger=ledger)
    with Scope(kind="cell", notebook=str(kernel_env / "root" / "meter.ipynb"), cell=1) as cell:
        llmcost_nb.log(model=MODEL, input_tokens=1000, output_tokens=200)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", llmcost_nb.LlmcostWarning)  # (no price known: expected)
            llmcost_nb.log(model="my-local-llama", input_tokens=10, output_tokens=2)
        estimated = ledger.price(llmcost_nb.Call(
            provider="openai", api="chat", model=MODEL, input_tokens=100, output_tokens=20,
            usage_source="estimated", session_id=session.id, scope_id=cell.id))
        ledger.write(estimated)
    ledger.flush()
    exact = (1000 * PRICE.input_mtok + 200 * PRICE.output_mtok) / M
    guessed = (100 * PRICE.input_mtok + 20 * PRICE.output_mtok) / M
    assert estimated.cost == guessed

    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{base}/lab/tree/meter.ipynb?reset&token={token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    wait_for_one_idle_kernel(base, token)
    today = format_total(exact + guessed, unpriced=1, estimated=1, places=2)
    assert today.startswith("≈$") and today.endswith("(1 estimated) + 1 unpriced")
    expected = f"LLM {today} · today {today}"  # the session's calls are all of today's: the same figure
    page.wait_for_function(f"() => document.querySelector('.llmcost-status')?.textContent === {expected!r}",
                           timeout=60_000)
    answer = api(base, "/llmcost/api/summary", token)
    assert (answer["today"]["unpriced"], answer["today"]["estimated"]) == (1, 1)
    (entry,) = answer["notebooks"]
    assert (entry["calls"], entry["unpriced"], entry["estimated"]) == (3, 1, 1)
    assert (entry["notebook_calls"], entry["notebook_unpriced"], entry["notebook_estimated"]) == (3, 1, 1)
    assert [(c["model"], c["billed"], c["usage_source"]) for c in answer["notebooks"][0]["last_calls"]] == [
        (MODEL, True, "estimated"), ("my-local-llama", True, "manual"), (MODEL, True, "manual")]
    tooltip = page.locator(".llmcost-status").get_attribute("title")
    assert f"Today: {today} in 3 calls" in tooltip and "  my-local-llama: 1 unpriced (1)" in tooltip
    assert f"This notebook's kernel: {today} in 3 calls (the notebook, all kernels: {today})" in tooltip
    spent = format_usd(exact + guessed, places=2)  # a budget counts priced calls, and says what it leaves out
    assert [b["unpriced"] for b in entry["budgets"]] == [1]
    assert not_counting(1) == "not counting 1 unpriced call"
    assert f"Budget day: {spent} of $1.00 (0%) · {not_counting(1)}" in tooltip.splitlines()

    page.locator(".llmcost-status").click()
    panel = page.locator("#llmcost-panel")
    panel.locator(".llmcost-calls tbody tr").first.wait_for(timeout=10_000)
    assert panel.locator(".llmcost-today").inner_text() == f"Today {today}"
    session_text = panel.locator(".llmcost-session").inner_text()
    assert session_text.startswith(f"{today} in 3 calls since ")
    assert session_text.endswith(f" · the notebook, all kernels: {today}")
    models = [r.locator("td").all_inner_texts() for r in panel.locator(".llmcost-models tbody tr").all()]
    assert models == [
        [MODEL, "2", "1,100 → 220", format_total(exact + guessed, estimated=1, places=2)],
        ["my-local-llama", "1", "10 → 2", "1 unpriced"]]
    costs = [r.locator("td").all_inner_texts()[-1] for r in panel.locator(".llmcost-calls tbody tr").all()]
    assert costs == [format_cost(guessed, estimated=True, places=2), "unpriced", format_cost(exact, places=2)]
    assert panel.locator(".llmcost-budget-label").all_inner_texts() == [
        f"day: {spent} of $1.00 · 0% · {not_counting(1)}"]
    assert errors == []
    page.close()
