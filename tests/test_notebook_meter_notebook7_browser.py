"""The JupyterLab meter in a real Notebook 7 (``jupyter notebook``) and headless Chromium, as
test_notebook_meter_browser.py does in JupyterLab (same server set-up, same notebook and amounts).

Notebook 7 has no status bar: the item (``.llmcost-status``) sits in the notebook page's top bar, right of the
kernel logo. The "LLM costs" panel opens in Notebook 7's right sidebar, from the command palette and from the
item; its dashboard link opens the dashboard notebook in a new browser tab. The file browser's page has the
item too, without a session figure. Screenshots: artifacts/screenshots/notebook7-meter-{status,panel}.png.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal

import nbformat
import pytest
from test_notebook_browser import api, browser, check_screenshot  # noqa: F401 (browser: a fixture)
from test_notebook_meter_browser import (
    CALLS,
    COST,
    DAY_BUDGET,
    INPUT,
    MODEL,
    OUTPUT,
    assert_serves_the_committed_bundle,
    jupyter,
    wait_for_one_idle_kernel,
)

from llmcost_nb.core.money import format_usd

pytestmark = pytest.mark.slow


@pytest.fixture
def notebook7(kernel_env, fake):
    with jupyter(kernel_env, fake, ["notebook"]) as (base, token):
        yield base, token, kernel_env


def test_notebook7_top_bar_item_and_right_panel_show_a_cells_calls(browser, notebook7):  # noqa: F811
    base, token, kernel_env = notebook7
    ledger = kernel_env / "ledger.db"  # $LLMCOST_DB (kernel_env)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(f"{e}\n{e.stack}"))
    page.goto(f"{base}/notebooks/meter.ipynb?token={token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    status = page.locator(".llmcost-status")
    status.wait_for(timeout=30_000)
    # Notebook 7's notebook page: no status bar, the item is in the top bar
    assert page.locator(".jp-StatusBar-Widget").count() == 0
    assert page.locator("#top-panel .llmcost-status.llmcost-status-top").count() == 1
    page.wait_for_function("() => document.querySelector('.llmcost-status').textContent === 'LLM —'",
                           timeout=30_000)
    assert not ledger.exists()
    assert_serves_the_committed_bundle(page)
    wait_for_one_idle_kernel(base, token)

    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    page.locator(".jp-OutputArea-output", has_text="calls done").wait_for(timeout=120_000)
    done = time.monotonic()
    amount = format_usd(COST, places=2)
    expected = f"LLM {amount} · today {amount}"  # the first figure: this notebook's session
    page.wait_for_function(f"() => document.querySelector('.llmcost-status').textContent === {expected!r}",
                           timeout=30_000)
    answer = api(base, "/llmcost/api/summary", token)
    assert Decimal(answer["today"]["cost"]) == COST and answer["today"]["calls"] == CALLS
    assert Decimal(answer["notebooks"][0]["cost"]) == COST and answer["notebooks"][0]["path"] == "meter.ipynb"
    print(f"meter updated {time.monotonic() - done:.2f} s after the cell's output showed")
    classes = status.get_attribute("class").split()
    assert "llmcost-warn" in classes and "llmcost-over" not in classes
    tooltip = status.get_attribute("title")
    assert f"Today: {amount} in {CALLS} calls" in tooltip and f"{MODEL}: {amount} ({CALLS})" in tooltip
    assert f"Budget day: {amount} of $0.15 (80%)" in tooltip and Decimal("0.8") <= COST / DAY_BUDGET < 1
    box = status.bounding_box()
    assert box is not None and box["width"] > 0 and box["y"] + box["height"] <= 60  # shown, in the top bar
    check_screenshot(page.screenshot(), "notebook7-meter-status.png")

    # the command palette opens the panel in the right sidebar
    panel = page.locator("#llmcost-panel")
    assert panel.count() == 0
    page.keyboard.press("Control+Shift+C")
    page.keyboard.type("Show LLM costs")
    page.locator(".lm-CommandPalette-item", has_text="Show LLM costs").first.click()
    panel.wait_for(timeout=10_000)
    assert page.locator("#jp-right-stack #llmcost-panel").count() == 1
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
    check_screenshot(page.screenshot(), "notebook7-meter-panel.png")

    # closed with the sidebar's own button, and opened again from the item
    page.locator("#jp-right-stack .jp-SidePanel-collapse").click()
    panel.wait_for(state="hidden", timeout=10_000)
    status.click()
    panel.wait_for(state="visible", timeout=10_000)
    assert panel.locator(".llmcost-calls tbody tr").count() == CALLS

    # the dashboard link: Notebook 7 opens the notebook in a new browser tab
    with page.context.expect_page(timeout=30_000) as opened:
        panel.locator(".llmcost-dashboard-link").click()
    dashboard_page = opened.value
    dashboard_page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    assert dashboard_page.url.split("?")[0] == f"{base}/notebooks/llmcost-dashboard.ipynb"
    dashboard = nbformat.read(kernel_env / "root" / "llmcost-dashboard.ipynb", as_version=4)
    assert f"llmcost_nb.dashboard({json.dumps(str(ledger))})" in dashboard.cells[-1].source
    dashboard_page.close()

    # the file browser's page has the item too; no notebook is current there, so no session figure
    page.goto(f"{base}/tree?token={token}")
    expected = f"LLM — · today {amount}"
    page.wait_for_function(f"() => document.querySelector('#top-panel .llmcost-status')?.textContent === "
                           f"{expected!r}", timeout=60_000)

    # Notebook 7 itself raises one error while loading its settings, with or without this extension (seen
    # with the extension disabled in page_config): only errors from our bundle count
    assert [e for e in errors if "llmcost-nb" in e] == []
    page.close()
