"""llmcost_nb.share: an executed notebook as HTML whose scripts are all local (inline or beside the page).

What the page does in a real browser (zero requests, widgets and charts rendered) is checked in
tests/test_notebook_browser.py; here, the files themselves.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner

import llmcost_nb
from llmcost_nb.notebook.share import ASSETS, WIDGET_STATE, WIDGET_VIEW

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "notebooks" / "quickstart.ipynb"
# A script, stylesheet or image the page would fetch from the network.
REMOTE = re.compile(r"""<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.I)

CHART_CELLS = [
    "import altair as alt, pandas as pd, ipywidgets as w\n"
    "data = pd.DataFrame({'model': ['gpt-4.1', 'gpt-4.1-mini'], 'cost': [0.0042, 0.0007]})\n"
    "chart = alt.Chart(data).mark_bar().encode(x='model', y='cost')\n"
    "w.HTML('<b class=\"probe\">widget from saved state</b>')",
    "alt.renderers.enable('html')\nchart",  # Altair's html renderer: require(["vega-embed"]) from a CDN
    "alt.renderers.enable('default')\nchart",  # a Vega-Lite mimetype output, no picture
    "from llmcost_nb.notebook.display import show\nshow(chart)",  # our SVG view
]


def outputs(nb):
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


@pytest.fixture(scope="module")
def charts_notebook(tmp_path_factory):
    folder = tmp_path_factory.mktemp("charts")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in CHART_CELLS])
    path = folder / "charts.ipynb"
    nbformat.write(nb, path)
    return path


def test_quickstart_single_file_has_every_script_inline(tmp_path):
    result = llmcost_nb.share(QUICKSTART, tmp_path / "quickstart.html", execute=False)
    html = result.path.read_text()
    assert result.executed is False and result.widget_views == 3 and result.files == [result.path]
    assert not REMOTE.findall(html)
    # the only CDN mention: embed-amd's loader for widget libraries it does not bundle (ours are all bundled)
    assert "cdn.jsdelivr" not in html.replace("https://cdn.jsdelivr.net/npm/", "", 2)
    assert "Load mathjax" not in html and "cdnjs" not in html  # no MathJax from a CDN
    assert html.count("RequireJS 2.3.8") == 1  # require.js inline, with its licence header
    assert 'define("@jupyter-widgets/base"' in html  # the widget renderer inline
    assert html.count('<script type="application/vnd.jupyter.widget-view+json">') == 3
    assert WIDGET_STATE in html and "88 out tokens" in html  # the summary, in the saved state


def test_folder_mode_writes_the_page_and_its_assets(tmp_path):
    result = llmcost_nb.share(QUICKSTART, tmp_path / "site", execute=False, folder=True)
    assert result.path == tmp_path / "site" / "quickstart.html"
    assert sorted(p.name for p in (tmp_path / "site" / "assets").iterdir()) == [
        "LICENSES.md", "embed-amd.js", "fa-solid-900.woff2", "require.js"]
    copied = tmp_path / "site" / "assets" / "embed-amd.js"
    assert copied.read_bytes() == (ASSETS / "embed-amd.js").read_bytes()
    html = result.path.read_text()
    assert '<script src="assets/require.js"></script>' in html
    assert '<script src="assets/embed-amd.js"></script>' in html
    assert not REMOTE.findall(html) and len(html) < 400_000


@pytest.mark.slow
def test_executes_a_notebook_and_makes_every_chart_local(charts_notebook, kernel_env):
    result = llmcost_nb.share(charts_notebook, kernel_env / "charts.html")
    assert result.executed and result.widget_views == 1 and result.charts == 3
    html = result.path.read_text()
    assert not REMOTE.findall(html)
    # vega inline (vl-convert's bundle) with AMD shims, so Altair's require(["vega-embed"]) resolves here
    assert "window.vegaEmbed=" in html and "define('vega-embed', [], function" in html
    assert html.count("<svg") >= 2  # the Vega-Lite output got an SVG; our view carries one
    assert "widget from saved state" in html
    # the source notebook is left as it was; execute() saves the outputs and the widget state
    assert not outputs(nbformat.read(charts_notebook, as_version=4))
    saved = llmcost_nb.share.execute(charts_notebook, kernel_env / "executed.ipynb")
    nb = nbformat.read(saved, as_version=4)
    view = next(o for o in outputs(nb) if WIDGET_VIEW in o.get("data", {}))
    assert view.data[WIDGET_VIEW]["model_id"] in nb.metadata.widgets[WIDGET_STATE]["state"]
    assert llmcost_nb.share(saved, kernel_env / "again.html").executed is False


def test_auto_executes_only_when_needed_and_bad_arguments_are_clear(tmp_path):
    from llmcost_nb.notebook.share import _needs_execution

    assert _needs_execution(nbformat.read(QUICKSTART, as_version=4)) is False
    blank = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    assert _needs_execution(blank) is True
    with pytest.raises(ValueError, match=r"^execute must be one of 'auto', True, False, got 'yes'$"):
        llmcost_nb.share(QUICKSTART, tmp_path / "x.html", execute="yes")
    with pytest.raises(FileNotFoundError, match="no notebook at"):
        llmcost_nb.share(tmp_path / "missing.ipynb")


def test_cli_share(tmp_path):
    from llmcost_nb.cli.share import share_command

    out = tmp_path / "q.html"
    result = CliRunner().invoke(share_command, [str(QUICKSTART), "-o", str(out), "--no-execute"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"wrote {out}: 3 widget views, 1 chart (")
    assert out.stat().st_size > 3_000_000
    missing = CliRunner().invoke(share_command, [str(tmp_path / "nope.ipynb")])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_vendored_assets_and_their_licences_are_present():
    licences = (ASSETS / "LICENSES.md").read_text()
    assert "MIT" in licences and "BSD-3-Clause" in licences
    header = "/** vim: et:ts=4:sw=4:sts=4\n * @license RequireJS 2.3.8"
    assert (ASSETS / "require.js").read_text().startswith(header)
    assert os.path.getsize(ASSETS / "embed-amd.js") == 3628999


def test_the_demo_executes_the_quickstart_and_writes_an_offline_page(kernel_env, capsys):
    """`scripts/demo.sh` (the README's first command) runs this: the packaged notebook executed on the offline
    fake provider, saved with its outputs and widget state, and its page with every script local.
    (tests/test_package_wheel.py runs the same command from an installed wheel.)"""
    from llmcost_nb.testing import demo

    out = kernel_env / "demo"
    assert demo.NOTEBOOK.read_bytes() == QUICKSTART.read_bytes()  # the package's copy is the committed one
    assert demo.main(["--out", str(out)]) == 0
    nb = nbformat.read(out / "quickstart.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code)
    assert not [o for o in outputs(nb) if o.output_type == "error"]
    state = nb.metadata.widgets[WIDGET_STATE]["state"]
    views = [o.data[WIDGET_VIEW]["model_id"] for o in outputs(nb) if WIDGET_VIEW in o.get("data", {})]
    assert len(views) >= 3 and all(v in state for v in views)
    html = (out / "quickstart.html").read_text()
    assert not REMOTE.findall(html)
    # the budget cell's summary, as committed: in the output, and in the page's widget state (JSON-escaped)
    assert any("8 calls · 64 in / 88 out tokens · $0.000166" in o.data.get("text/plain", "")
               for o in outputs(nb) if o.output_type == "display_data")
    assert "8 calls \\u00b7 64 in \\/ 88 out tokens \\u00b7 $0.000166" in html
    assert 'alt="chart: Cost by step"' in html  # the chart's picture says what it shows
    assert capsys.readouterr().out == (
        f"executed quickstart.ipynb on the built-in fake provider: wrote {out / 'quickstart.ipynb'} and "
        f"{out / 'quickstart.html'} (open the .html in any browser; it needs no kernel or network)\n")


def test_the_shared_page_keeps_the_views_marks_for_unpriced_and_estimated_calls(tmp_path):
    """Issue 16, through share: the saved cell summary and daily report keep "unpriced" and "≈"."""
    from decimal import Decimal

    from _honest import write_honest

    from llmcost_nb.notebook.widgets import CellSummary

    ledger = llmcost_nb.Ledger(tmp_path / "honest.db")
    calls = write_honest(ledger)
    summary = CellSummary(calls, "[1]", Decimal("1.2042"), session_unpriced=2, session_estimated=1)
    report = ledger.daily_report("2026-11-02")
    cells = []
    for view in (summary.mimebundle(widget=False),
                 {"text/html": report._repr_html_(), "text/plain": str(report)}):
        cell = nbformat.v4.new_code_cell("view")
        cell.outputs = [nbformat.v4.new_output("display_data", data=view)]
        cells.append(cell)
    path = tmp_path / "honest.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    page = llmcost_nb.share(path, tmp_path / "honest.html", execute=False).path.read_text()
    assert "≈$1.2042 (1 estimated) + 2 unpriced" in page  # the cell summary's line
    assert "<td>unpriced</td>" in page and "<td>≈$0.004200</td>" in page  # its per-call table
    assert ">≈$1.20 (1 estimated) + 2 unpriced</th>" in page and ">2 unpriced</td>" in page  # the report
    assert "$0.0000<" not in page and "$0.00<" not in page
