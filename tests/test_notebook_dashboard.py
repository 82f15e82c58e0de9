"""The dashboard widget: filters drive exact KPIs, charts render, and a saved notebook keeps a fallback."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import llmcost_nb
from llmcost_nb.core.call import from_pusd
from llmcost_nb.notebook.dashboard import Dashboard

SAMPLE = dict(rows=8_000, days=42, seed=9)  # conftest's `sample`: generate(**SAMPLE), ending 2026-11-20


def raw_totals(sample, where="1 = 1", params=()):
    conn = sample.ledger.connection
    n, pusd, tokens = conn.execute(
        f"SELECT COUNT(*), SUM(cost_pusd), SUM(input_tokens + output_tokens) FROM calls c WHERE {where}",
        params,
    ).fetchone()
    return n, from_pusd(pusd), tokens


def test_kpis_match_the_ledger_and_follow_filters(sample):
    board = llmcost_nb.dashboard(sample.ledger, budget=100)
    assert isinstance(board, Dashboard)
    n, cost, tokens = raw_totals(sample)
    k = board.kpis_dict()
    assert (k["calls"], k["spend"], k["tokens"]) == (n, cost, tokens)
    assert k["forecast"] == sample.ledger.forecast(as_of=sample.end, budget=100).projected
    assert k["budget_used"] == board._frames["forecast"].spent / Decimal(100)

    board.provider.value = "anthropic"
    board.tag_key.value = "team"
    board.tag_value.value = "research"
    board.since.value = date(2026, 11, 1)
    k = board.kpis_dict()
    expected = raw_totals(
        sample,
        "provider = 'anthropic' AND ts >= '2026-11-01' AND tagset_id IN "
        "(SELECT tagset_id FROM tags WHERE key = 'team' AND value = 'research')",
    )
    assert (k["calls"], k["spend"], k["tokens"]) == expected
    assert board.where == {"provider": "anthropic", "tag:team": "research"}
    top = board.top_frame()
    assert sum(top["cost_usd"], Decimal(0)) == expected[1]  # every model fits in the top 10 here
    assert f"{k['calls']:,} calls" in str(board)


def test_tabs_render_svg_charts(sample):
    board = llmcost_nb.dashboard(sample.ledger)
    for index in range(len(board.outputs)):
        board.tabs.selected_index = index
        outputs = board.outputs[index].outputs
        assert len(outputs) == 1, board.outputs[index].outputs
        assert outputs[0]["data"]["image/svg+xml"].startswith("<svg"), index


def test_saved_dashboard_keeps_a_static_view(sample):
    board = llmcost_nb.dashboard(sample.ledger, budget=100)
    bundle = board._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "<svg" in bundle["text/html"] and "Top 10 by cost" in bundle["text/html"]
    assert bundle["text/plain"].startswith("llmcost dashboard 2026-")


def test_import_stays_light_and_dashboard_is_lazy():
    code = (
        "import sys, llmcost_nb; assert 'pandas' not in sys.modules and 'ipywidgets' not in sys.modules; "
        "assert callable(llmcost_nb.dashboard); import llmcost_nb.notebook.dashboard as m; "
        "assert llmcost_nb.dashboard is m.dashboard and 'dashboard' in llmcost_nb.__all__"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "dashboard.ipynb"


def test_committed_notebook_carries_its_outputs():
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs for c in code[1:]), "commit the notebook with its outputs"
    svgs = [c for c in code if any("image/svg+xml" in o.get("data", {}) for o in c.outputs)]
    assert len(svgs) == 5
    board = code[-1].outputs[0]["data"]
    assert "application/vnd.jupyter.widget-view+json" in board and "<svg" in board["text/html"]
    assert "widgets" in nb.metadata  # widget state saved: the widget shows without a kernel


def test_empty_ledger_still_shows_a_dashboard(tmp_path):
    board = llmcost_nb.dashboard(tmp_path / "empty.db")
    assert board.kpis_dict()["calls"] == 0 and board.kpis_dict()["spend"] == 0
    board.tabs.selected_index = 2
    assert board.outputs[2].outputs[0]["data"]["image/svg+xml"].startswith("<svg")
    assert "0 calls" in str(board)


def test_tiles_table_and_text_mark_unpriced_and_estimated_spend(tmp_path):
    """Issue 16: billed calls with no price are named, never counted as $0; estimated spend carries ≈."""
    from _honest import write_honest

    led = llmcost_nb.Ledger(tmp_path / "honest.db")
    write_honest(led)
    board = llmcost_nb.dashboard(led)
    k = board.kpis_dict()
    assert (k["spend"], k["calls"], k["unpriced"], k["estimated"], k["tokens"]) == (
        Decimal("1.2042"), 5, 2, 1, 1660)
    spend = "≈$1.20 (1 estimated) + 2 unpriced"
    assert ("<div style='font-size:11px;color:#666'>Spend</div>"
            f"<div style='font-size:20px;font-weight:600'>{spend}</div>") in board.kpis.value
    rows = board.table.value.split("</th></tr>", 1)[1]
    assert rows == (
        "<tr><td>gpt-4.1</td><td style='text-align:right'>2</td><td style='text-align:right'>$1.20</td></tr>"
        "<tr><td>gpt-4o-mini</td><td style='text-align:right'>1</td>"
        "<td style='text-align:right'>≈$0.0042 (1 estimated)</td></tr>"
        "<tr><td>my-ft</td><td style='text-align:right'>2</td>"
        "<td style='text-align:right'>2 unpriced</td></tr>"
        "</table>"
    )
    assert str(board).startswith(f"llmcost dashboard 2026-11-02 to 2026-11-02: {spend} · 5 calls · ")
    html = board._repr_mimebundle_()["text/html"]
    assert html.startswith('<div class="mathjax_ignore tex2jax_ignore">')  # two $ amounts are no LaTeX
    assert "$0.00<" not in board.kpis.value + board.table.value
