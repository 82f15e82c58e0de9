"""Real browser tests (Chromium from Debian, driven by Playwright; .ci/install-browser.sh installs it).

(a) Each notebook in notebooks/, exported by llmcost_nb.share, opened from disk with every request that is
    not file:/data:/blob: recorded: there must be none, every widget output must be rendered from its saved
    state and every chart drawn.
(b) JupyterLab on loopback: the quickstart opened, Run All clicked, the %%llmcost summary widget and a chart
    found in the page.
Screenshots go to artifacts/screenshots/ (kept by CI) and are checked not blank.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import struct
import subprocess
import sys
import time
import urllib.request
import zlib
from pathlib import Path

import nbformat
import pytest

import llmcost_nb

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert os.access(CHROMIUM, os.X_OK), "no Chromium: run .ci/install-browser.sh (scripts/setup.sh does)"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM,
                                              args=["--no-sandbox", "--disable-gpu"])
        yield chromium
        chromium.close()


def check_screenshot(png: bytes, name: str) -> Path:
    """Keep the screenshot as an artifact and check it is not blank (many distinct pixel values)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / name
    path.write_bytes(png)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    chunks, pos = [], 8
    while pos < len(png):
        (length,), kind = struct.unpack(">I", png[pos:pos + 4]), png[pos + 4:pos + 8]
        if kind == b"IDAT":
            chunks.append(png[pos + 8:pos + 8 + length])
        pos += 12 + length
    raw = zlib.decompress(b"".join(chunks))
    row = len(raw) // height
    # PNG rows are filtered; a blank page's rows are (after the filter byte) nearly all one value.
    busy_rows = sum(1 for y in range(height) if len(set(raw[y * row + 1:(y + 1) * row])) > 8)
    assert width >= 800 and busy_rows > height // 20, f"{name} looks blank ({busy_rows} of {height} rows)"
    return path


RENDER_CHECK = """() => {
  const views = [...document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]')];
  const outputs = views.map(s => s.closest('.jp-OutputArea-output') || s.parentElement);
  const chart = '.vega-embed, .vega-visualization, .jp-RenderedSVG, .jp-RenderedImage';
  const charts = [...document.querySelectorAll('.jp-OutputArea-output')].filter(o =>
      o.matches(chart) || o.querySelector(chart));
  const drawn = o => {
    const vega = o.querySelector('.vega-embed');
    if (vega) return !!vega.querySelector('svg, canvas');
    const img = o.querySelector('img');
    if (img) return img.complete && img.naturalWidth > 0;
    const svg = o.querySelector('svg');
    return !!svg && svg.getBoundingClientRect().width > 0;
  };
  return {
    widgets: outputs.length,
    widgetsRendered: outputs.filter(o => o.querySelector('.jupyter-widgets')).length,
    charts: charts.length,
    chartsDrawn: charts.filter(drawn).length,
    interactive: document.querySelectorAll('.vega-embed canvas, .vega-embed svg').length,
  };
}"""


def open_offline(browser, page_path: Path, shot: str) -> dict:
    page = browser.new_page(viewport={"width": 1200, "height": 1600})
    remote, errors, failed = [], [], []
    page.on("request", lambda r: None if r.url.startswith(LOCAL_SCHEMES) else remote.append(r.url))
    page.on("requestfailed", lambda r: failed.append(r.url[:120]))  # e.g. a font file not beside the page
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(page_path.as_uri(), wait_until="load")
    with contextlib.suppress(Exception):  # on a timeout, the assertions after say what is missing
        page.wait_for_function(f"""() => {{ const r = ({RENDER_CHECK})();
            return r.widgetsRendered === r.widgets && r.chartsDrawn === r.charts; }}""", timeout=30_000)
    state = page.evaluate(RENDER_CHECK)
    check_screenshot(page.screenshot(full_page=False), shot)
    page.close()
    return {**state, "remote": remote, "errors": errors, "failed": failed}


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
@pytest.mark.parametrize("folder", [False, True], ids=["single-file", "folder"])
def test_exported_notebook_renders_with_no_network(browser, kernel_env, notebook, folder):
    result = llmcost_nb.share(notebook, kernel_env / ("site" if folder else f"{notebook.stem}.html"),
                              folder=folder)
    state = open_offline(browser, result.path, f"{notebook.stem}-{'folder' if folder else 'single'}.png")
    assert state["remote"] == [] and state["failed"] == []
    assert state["widgets"] == result.widget_views > 0
    assert state["widgetsRendered"] == state["widgets"]
    assert state["chartsDrawn"] == state["charts"] >= result.charts
    assert state["errors"] == []


def test_exported_altair_charts_draw_with_local_vega(browser, kernel_env):
    """Altair's html renderer (require(["vega-embed"]) from a CDN), a Vega-Lite output and our SVG view."""
    from test_notebook_share import CHART_CELLS

    path = kernel_env / "charts.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CHART_CELLS]), path)
    result = llmcost_nb.share(path, kernel_env / "charts.html")
    state = open_offline(browser, result.path, "charts-single.png")
    assert state["remote"] == state["errors"] == state["failed"] == []
    assert (state["widgets"], state["widgetsRendered"]) == (1, 1)
    assert state["charts"] == state["chartsDrawn"] == 3
    assert state["interactive"] >= 1  # vega-embed ran: the chart is live, not just a picture


# -- (b) JupyterLab --------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def api(base: str, path: str, token: str) -> object:
    with urllib.request.urlopen(f"{base}{path}?token={token}", timeout=5) as response:
        return json.load(response)


@pytest.fixture
def lab(kernel_env):
    root = kernel_env / "root"
    root.mkdir()
    shutil.copyfile(ROOT / "notebooks" / "quickstart.ipynb", root / "quickstart.ipynb")  # as committed
    labconfig = kernel_env / "jc" / "labconfig"
    labconfig.mkdir(parents=True)
    (labconfig / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    # render every cell, not only those in view (Lab 4's windowing leaves off-screen outputs out of the DOM)
    tracker = kernel_env / "jc" / "lab" / "user-settings" / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True)
    (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    token = secrets.token_hex(16)
    log = (kernel_env / "lab.log").open("w")
    server = None
    try:
        for _attempt in range(3):  # the port is free when picked, and taken back by Lab only later
            port = free_port()
            server = subprocess.Popen(
                [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
                 "--ServerApp.port_retries=0",  # on that port or not at all (then: another port)
                 f"--ServerApp.token={token}", "--allow-root", f"--ServerApp.root_dir={root}",
                 "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
                stdout=log, stderr=subprocess.STDOUT, cwd=root, env=os.environ.copy())
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while server.poll() is None:
                try:
                    api(base, "/api/status", token)
                    break
                except OSError:
                    assert time.monotonic() < deadline, (kernel_env / "lab.log").read_text()
                    time.sleep(0.3)
            if server.poll() is None:
                break
        else:
            pytest.fail(f"JupyterLab did not start: {(kernel_env / 'lab.log').read_text()[-3000:]}")
        yield base, token
    finally:
        if server is not None and server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
        log.close()


def test_jupyterlab_run_all_shows_the_summary_widget_and_a_chart(browser, lab):
    base, token = lab
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{base}/lab/tree/quickstart.ipynb?reset&token={token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    deadline = time.monotonic() + 60  # Lab may start and drop a second kernel while loading
    while True:
        kernels = api(base, "/api/kernels", token)
        if len(kernels) == 1 and kernels[0]["execution_state"] == "idle":
            break
        assert time.monotonic() < deadline, kernels
        time.sleep(0.5)
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    # the summary widget (its per-call table stays folded until clicked)
    summary = page.locator(".jp-OutputArea-output .jupyter-widgets",
                           has=page.locator(".llmcost-summary")).first
    summary.wait_for(timeout=120_000)
    chart = page.locator(".jp-OutputArea-output[data-mime-type='image/svg+xml'] :is(img, svg), "
                         ".jp-OutputArea-output .vega-embed :is(svg, canvas)").first
    try:
        chart.wait_for(timeout=60_000)
    except Exception:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SHOTS / "jupyterlab-failure.png", full_page=True)
        outputs = page.locator(".jp-OutputArea-output").all_inner_texts()
        pytest.fail(f"no chart after Run All; outputs: {[o[:200] for o in outputs][-4:]}")
    assert "gpt-4.1-mini" in summary.inner_text() and "1 call" in summary.inner_text()
    summary.scroll_into_view_if_needed()
    check_screenshot(page.screenshot(), "jupyterlab-summary.png")
    chart.scroll_into_view_if_needed()
    assert chart.bounding_box()["width"] > 200
    check_screenshot(page.screenshot(), "jupyterlab-chart.png")
    assert page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").filter(
        has_text="Traceback").count() == 0
    page.close()


def test_install_script_is_idempotent_and_needs_no_playwright_download():
    lines = (ROOT / ".ci" / "install-browser.sh").read_text().splitlines()
    commands = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    assert "apt-get install -y" in commands and "chromium" in commands and "playwright" not in commands
    result = subprocess.run(["bash", str(ROOT / ".ci" / "install-browser.sh")], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and result.stdout == ""  # chromium is there: nothing to do
    assert shutil.which("chromium") == CHROMIUM


WORKBENCH_CELL = """\
import openai, llmcost_nb
from llmcost_nb.testing import FakeProvider
fake = FakeProvider()
fake.reply = lambda body, model: "4"
client = openai.OpenAI(base_url=fake.openai_base_url, api_key="sk-fake")
llmcost_nb.set_price("gpt-4.1", input_mtok="2", output_mtok="8")  # the test's prices, not the catalog's
llmcost_nb.set_price("gpt-4.1-mini", input_mtok="0.4", output_mtok="1.6")
questions = [{"id": f"q{n}", "question": f"what is {n} plus {n}", "expected": "4"} for n in range(1, 7)]
wb = llmcost_nb.workbench(questions, models=["gpt-4.1", "gpt-4.1-mini"], client=client, scorer="exact",
                          budget="0.05", variants={"terse": "Q: {question}"}, name="lab", max_tokens=16)
wb"""


def test_jupyterlab_workbench_flags_a_field_as_you_type_and_runs_from_its_button(browser, lab, kernel_env):
    base, token = lab
    kernel = {"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}}
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(WORKBENCH_CELL)], metadata=kernel)
    nbformat.write(notebook, kernel_env / "root" / "workbench.ipynb")
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    page.goto(f"{base}/lab/tree/workbench.ipynb?reset&token={token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    deadline = time.monotonic() + 60
    while True:
        kernels = api(base, "/api/kernels", token)
        if len(kernels) == 1 and kernels[0]["execution_state"] == "idle":
            break
        assert time.monotonic() < deadline, kernels
        time.sleep(0.5)
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    bench = page.locator(".jp-OutputArea-output .jupyter-widgets", has_text="Workbench lab").first
    try:
        bench.wait_for(timeout=120_000)
        estimate = bench.locator(".llmcost-estimate")
        estimate.filter(has_text="≤ $0.001152 · 12 calls · 192 input tokens").wait_for(timeout=30_000)
        run = bench.locator("button", has_text="Run")
        assert run.is_enabled()
        area = bench.locator("textarea").first
        area.click()
        area.press("End")
        area.press_sequentially(" {qestion}", delay=30)  # typed: the flag and the estimate follow
        bench.get_by_text("⚠ unknown field {qestion}: the inputs have id, question, expected").wait_for(
            timeout=30_000)  # the flag under the text area (the estimate line says it too, once debounced)
        estimate.filter(has_text="cannot run").wait_for(timeout=30_000)
        assert run.is_disabled()
        for _ in range(len(" {qestion}")):
            area.press("Backspace")
        estimate.filter(has_text="≤ $0.001152").wait_for(timeout=30_000)
        run.click()  # runs in the background: the kernel stays free, the results pane fills in
        bench.get_by_text("run 1: terse · gpt-4.1-mini won at 100%").wait_for(timeout=120_000)
        assert "12 / 12 calls" in bench.inner_text()
        bench.locator(".lm-TabBar-tab", has_text="History").click()
        bench.locator(".llmcost-history td", has_text="first run").wait_for(timeout=30_000)
    except Exception:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SHOTS / "jupyterlab-workbench-failure.png", full_page=True)
        raise
    bench.scroll_into_view_if_needed()
    check_screenshot(page.screenshot(), "jupyterlab-workbench.png")
    assert page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").filter(
        has_text="Traceback").count() == 0
    page.close()
