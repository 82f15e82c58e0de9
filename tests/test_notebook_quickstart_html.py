"""notebooks/quickstart.ipynb: committed with its outputs, and its HTML export shows the cell summaries
without a kernel (tests/test_notebook_examples.py runs it under nbval)."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "quickstart.ipynb"
SANITIZE = ROOT / "notebooks" / "sanitize.cfg"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
# What a static (kernel-free, JavaScript-free) export should prefer: our HTML fallback over the widget view.
STATIC_PRIORITY = ["text/html", "image/svg+xml", "image/png", "text/markdown", "text/plain"]


@pytest.fixture(scope="module")
def notebook():
    return nbformat.read(NOTEBOOK, as_version=4)


def summaries(nb):
    return [
        o
        for cell in nb.cells
        if cell.cell_type == "code"
        for o in cell.get("outputs", [])
        if o.output_type == "display_data" and o.data.get("text/plain", "").startswith("llmcost ")
    ]


def test_committed_with_outputs_widget_state_and_no_errors(notebook):
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), "commit the notebook executed, with its outputs"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    found = summaries(notebook)
    assert len(found) == 3  # three %%llmcost cells
    state = notebook.metadata["widgets"][WIDGET_STATE]["state"]
    for output in found:
        assert {WIDGET_VIEW, "text/html", "text/plain"} <= set(output.data)
        assert output.data[WIDGET_VIEW]["model_id"] in state  # renders with no kernel
    checked = [c for c in code if c.source.startswith("# NBVAL_CHECK_OUTPUT")]
    assert checked and checked[0].outputs[0].text == (
        "calls this session: 11\nspent this session: $0.0002292\ncalls in the ledger tagged step=budget: 8\n"
    )


def test_html_export_shows_the_summary_table(notebook):
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    # a static export (no widget JavaScript): the text/html fallback is rendered as a table
    config = Config({"NbConvertBase": {"display_data_priority": STATIC_PRIORITY}})
    html, _ = HTMLExporter(config=config).from_notebook_node(notebook)
    tables = re.findall(r'<table[^>]*class="llmcost-summary[^"]*"[^>]*>.*?</table>', html, flags=re.S)
    assert len(tables) == 3
    assert "<td>gpt-4.1-mini</td>" in tables[0] and "<th>cost</th>" in tables[0]
    assert "8 calls · 64 in / 88 out tokens · $0.000166" in html
    assert "budget session of $0.0003 would be exceeded" in html
    # the default export shows the widget, whose saved state carries the same table
    html, _ = HTMLExporter().from_notebook_node(notebook)
    assert html.count('<script type="application/vnd.jupyter.widget-view+json">') >= 3
    assert html.count('<table class=\\"llmcost-summary ') == 3
