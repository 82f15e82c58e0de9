"""Charts and the explorer of a comparison, built from a result with known rows (no network needed)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from llmcost_nb.experiments.result import CompareResult
from llmcost_nb.notebook.compare_charts import pareto_front
from llmcost_nb.notebook.explorer import Explorer


def _row(variant, model, input_id, score, cost, latency, output):
    return {
        "experiment": "e",
        "variant": variant,
        "model": model,
        "input_id": input_id,
        "repeat": 0,
        "status": "ok",
        "output": output,
        "expected": "4",
        "score": score,
        "success": score >= 0.5,
        "cost": Decimal(cost),
        "judge_cost": Decimal(0),
        "unpriced": 0,
        "input_tokens": 10,
        "output_tokens": 2,
        "latency_ms": latency,
        "attempts": 1,
        "error": None,
        "call_ids": [1],
    }


@pytest.fixture
def result():
    rows = []
    for i in range(4):
        rows.append(_row("A", "big", f"q{i}", 1.0, "0.0004", 100.0 + i, "4"))
        rows.append(_row("A", "small", f"q{i}", float(i % 2), "0.0001", 50.0 + i, "4" if i % 2 else "5"))
        rows.append(_row("B", "small", f"q{i}", float(i > 0), "0.0002", 60.0 + i, "4" if i else "five"))
        rows.append(_row("B", "big", f"q{i}", 1.0, "0.0008", 120.0 + i, "4"))  # as good as A·big, dearer
    return CompareResult.build("e", rows, skipped=[])


def test_pareto_front():
    assert pareto_front([1, 2, 3, 2], [0.5, 0.9, 0.9, 0.4]) == [True, True, False, False]
    assert pareto_front([1, 1], [0.5, 0.5]) == [True, True]  # ties do not dominate each other


def test_table_and_best_from_known_rows(result):
    table = result.table.set_index(["variant", "model"])
    assert table.loc[("A", "small"), "cost_per_success"] == Decimal("0.0002")  # $0.0004 for 2 successes
    assert table.loc[("B", "small"), "cost_per_success"] == Decimal("0.000266666667")  # to the picodollar
    assert table.loc[("A", "big"), "p50_latency_ms"] == 101.5
    assert result.best()[["variant", "model"]].tolist() == ["A", "small"]
    assert result.best("p95_latency_ms")[["variant", "model"]].tolist() == ["A", "small"]
    assert result.best("mean_score")[["variant", "model"]].tolist() == ["A", "big"]  # tie with B·big: cheaper
    with pytest.raises(
        ValueError, match="unknown metric 'speed', allowed values: cost_per_success, mean_cost"
    ):
        result.best("speed")
    assert "experiment e: 16 calls (16 ok) · $0.0060" in repr(result)
    html = result._repr_html_()
    assert '<table class="dataframe llmcost-compare">' in html and "<td>$0.000267</td>" in html


def test_cost_quality_chart_marks_the_frontier(result):
    spec = result.cost_quality_chart("mean_score").to_dict()
    data = {(d["variant"], d["model"]): d for d in next(iter(spec["datasets"].values()))}
    assert {cell for cell, d in data.items() if d["pareto"]} == {("A", "small"), ("B", "small"), ("A", "big")}
    assert data[("A", "big")]["quality"] == 1.0 and data[("A", "big")]["cost"] == pytest.approx(0.0004)
    assert data[("A", "small")]["q_low"] <= 0.5 <= data[("A", "small")]["q_high"]
    layers = [
        layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"] for layer in spec["layer"]
    ]
    assert layers == ["line", "rule", "rule", "point", "text"]
    with pytest.raises(ValueError, match="unknown quality 'f1', allowed values: mean_score, success_rate"):
        result.cost_quality_chart("f1")


def test_other_charts_and_their_data(result):
    from llmcost_nb.notebook.display import chart_svg

    per_success = next(iter(result.cost_per_success_chart().to_dict()["datasets"].values()))
    assert {d["cell"]: d["label"] for d in per_success} == {
        "A · big": "$0.000400",
        "A · small": "$0.000200",
        "B · small": "$0.000267",
        "B · big": "$0.000800",
    }
    latency = next(iter(result.latency_chart().to_dict()["datasets"].values()))
    assert [(d["cell"], d["p50"]) for d in latency] == [
        ("A · big", 101.5),
        ("A · small", 51.5),
        ("B · small", 61.5),
        ("B · big", 121.5),
    ]
    wins = next(iter(result.wins_chart().to_dict()["datasets"].values()))
    q0 = {d["cell"]: d["win"] for d in wins if d["input_id"] == "q0"}
    assert q0 == {"A · big": "★", "A · small": "", "B · small": "", "B · big": "★"}
    q1 = {d["cell"]: d["win"] for d in wins if d["input_id"] == "q1"}
    assert set(q1.values()) == {""}  # every cell right: no winner
    svg = chart_svg(result.cost_quality_chart())
    assert svg.startswith("<svg") and "Pareto frontier" in svg


def test_the_explorer_filters_and_shows_outputs_side_by_side(result):
    explorer = result.explore()
    assert isinstance(explorer, Explorer)
    explorer.select(variants=["A"], chart="cost per success")
    assert explorer.view().cells() == [("A", "big"), ("A", "small")]
    assert "Click cells" in explorer.samples_html()
    explorer.pick(("A", "small"))
    explorer.pick(("B", "small"))
    html = explorer.samples_html()
    assert "<th>A · small</th><th>B · small</th>" in html
    assert "<td>q0</td><td>4</td><td>✗ 5<br><small>$0.000100 · score 0</small></td>" in html
    assert "<td>✗ five<br><small>$0.000200 · score 0</small></td>" in html
    explorer.pick(("A", "small"))  # a second click removes it
    assert explorer.picked == [("B", "small")]
    with pytest.raises(ValueError, match="unknown chart 'pie'"):
        explorer.select(chart="pie")
    with pytest.raises(KeyError, match="no cell"):
        explorer.pick(("C", "big"))
    widget = explorer.widget()
    controls = widget.children[0].children
    controls[0].value = ("A", "B")  # the variants selector
    assert len(explorer.view().cells()) == 4
    assert widget.children[2].value.count("<tr>") == 4  # the table: a row per cell
    buttons = widget.children[4].children
    assert [b.description for b in buttons] == ["A · big", "A · small", "B · small", "B · big"]
    buttons[3].value = True  # clicking "B · big"
    assert ("B", "big") in explorer.picked and "<th>B · big</th>" in widget.children[5].value
    bundle = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "<svg" in bundle["text/html"] and bundle["text/plain"].startswith("experiment e:")


def test_unpriced_and_estimated_calls_are_marked_in_table_charts_and_explorer():
    """Issue 16: a cell whose calls had no price is never shown as $0; one with estimated tokens carries ≈."""
    rows = []
    for i in range(2):
        rows.append({**_row("A", "big", f"q{i}", 1.0, "0.0004", 100.0, "4"), "estimated": 1})
        rows.append({**_row("A", "ft", f"q{i}", 1.0, "0", 80.0, "4"), "unpriced": 1, "estimated": 0})
    result = CompareResult.build("e", rows, skipped=[])
    table = result.table.set_index(["variant", "model"])
    counts = ["total_cost", "unpriced", "estimated"]
    assert table.loc[("A", "big"), counts].tolist() == [Decimal("0.0008"), 0, 2]
    assert table.loc[("A", "ft"), counts].tolist() == [Decimal(0), 2, 0]
    assert result.summary() == "experiment e: 4 calls (4 ok) · ≈$0.000800 (2 estimated) + 2 unpriced"
    shown = result._display_table().set_index("model")[["total $", "$ / call", "$ / success"]]
    assert shown.loc["big"].tolist() == ["≈$0.000800 (2 estimated)", "≈$0.000400 (2 estimated)",
                                         "≈$0.000400 (2 estimated)"]
    assert shown.loc["ft"].tolist() == ["2 unpriced"] * 3
    assert "unpriced" not in result._display_table().columns  # said in the costs, not twice

    per_success = result.cost_per_success_chart().to_dict()
    data = {d["cell"]: (d["label"], d["unpriced"], d["estimated"])
            for d in next(iter(per_success["datasets"].values()))}
    assert data == {"A · big": ("≈$0.000400 (2 estimated)", 0, 2), "A · ft": ("2 unpriced", 2, 0)}
    tips = [t.get("title") for t in per_success["layer"][0]["encoding"]["tooltip"]][-2:]
    assert tips == ["unpriced calls", "estimated calls"]
    quality = result.cost_quality_chart().to_dict()
    points = next(layer for layer in quality["layer"] if layer["mark"].get("type") == "point")
    tips = [t.get("title") for t in points["encoding"]["tooltip"]][-2:]
    assert tips == ["unpriced calls", "estimated calls"]

    explorer = result.explore()
    explorer.pick(("A", "ft"))
    explorer.pick(("A", "big"))
    html = explorer.samples_html()
    assert "<td>✓ 4<br><small>1 unpriced · score 1</small></td>" in html
    assert "<td>✓ 4<br><small>≈$0.000400 (1 estimated) · score 1</small></td>" in html
