"""notebooks/ab_comparison.ipynb: committed with its outputs (exact totals, charts as SVG, the explorer with
its saved widget state and HTML fallback). tests/test_notebook_examples.py runs it again under nbval."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "ab_comparison.ipynb"
SANITIZE = ROOT / "notebooks" / "sanitize.cfg"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


@pytest.fixture(scope="module")
def notebook():
    return nbformat.read(NOTEBOOK, as_version=4)


def _text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def test_committed_with_outputs_and_no_errors(notebook):
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), "commit the notebook executed, with its outputs"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    checked = {
        c.source.splitlines()[1]: _text(c) for c in code if c.source.startswith("# NBVAL_CHECK_OUTPUT")
    }
    assert len(checked) == 7
    totals = next(text for text in checked.values() if text.startswith("experiment quiz-ab: 120 calls"))
    assert "ledger total for experiment=quiz-ab: 0.0045072\ncalls in the ledger: 120\n" in totals
    assert "experiment quiz-ab: 120 calls (120 ok) · $0.004507 · estimate was ≤ $0.0415" in totals
    assert (
        " terse · gpt-4.1-mini     success   55%   total $0.0002064   per success $0.000018763636" in totals
    )
    refusal = next(text for text in checked.values() if text.startswith("compare refused"))
    assert refusal.endswith("raise the budget.\nrequests sent: 0\n")
    judged = next(text for text in checked.values() if text.startswith("experiment quiz-judged"))
    assert "candidates: 0.0000804  judge: 0.0001284\nledger, role=judge: 0.0001284\n" in judged
    raced = next(text for text in checked.values() if text.startswith("full grid:"))
    assert raced == (
        "full grid: 0.0170748 for 480 calls\n"
        "adaptive:  0.0108778 for 362 calls (64% of the full grid); saved an estimated 0.006215888889\n"
        "winner, full grid: terse · gpt-4.1-mini\n"
        "winner, adaptive:  terse · gpt-4.1-mini\n"
        "raced on cost_per_success at 95%: 4 of 6 cells stopped, saved an estimated $0.006216; no clear "
        "winner at 95%: 2 cells still in the race (terse · gpt-4.1-mini, guided · gpt-4.1-mini), best() "
        "picks among them on their figures\n"
        "ledger total for experiment=quiz-raced: 0.0108778\n"
    )


def test_charts_are_svg_and_the_explorer_renders_without_a_kernel(notebook):
    outputs = [
        o
        for c in notebook.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type in ("display_data", "execute_result")
    ]
    svgs = [o for o in outputs if "image/svg+xml" in o.data]
    assert len(svgs) == 6
    assert "When each cell was stopped (racing on cost_per_success at 95%; 80 inputs" in svgs[4].data[
        "image/svg+xml"]
    assert "grey: stopped by the race" in svgs[5].data["image/svg+xml"]
    raced = next(o for o in outputs if "quiz-raced: 362 calls" in o.data.get("text/plain", ""))
    assert raced.data["text/html"].count('<tr class="llmcost-stopped" style="color:#999">') == 4
    # the race's progress bar ends where the race did (362 calls, not 480), with live cells and savings
    models = [m["state"] for m in notebook.metadata["widgets"][WIDGET_STATE]["state"].values()]
    bars = [m for m in models if m.get("_model_name") == "FloatProgressModel"]
    assert {"value": 362.0, "max": 362.0, "bar_style": "success"}.items() <= bars[-1].items()
    texts = [str(m.get("value")) for m in models]
    saved = "live\u20072/6\u2007cells\u2007·\u2007saved\u2007an\u2007estimated\u2007$0.006216"
    assert any(saved in t for t in texts)
    explorer = next(o for o in outputs if "llmcost-explorer" in o.data.get("text/html", ""))
    state = notebook.metadata["widgets"][WIDGET_STATE]["state"]
    assert explorer.data[WIDGET_VIEW]["model_id"] in state
    assert "<svg" in explorer.data["text/html"]
    samples = [
        m["state"]["value"] for m in state.values() if "llmcost-samples" in str(m["state"].get("value"))
    ]
    assert samples and "<th>terse · gpt-4.1-mini</th><th>guided · gpt-4.1-mini</th>" in samples[0]
