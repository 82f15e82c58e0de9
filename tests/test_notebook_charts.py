"""Charts: built from aggregated frames, themed, formatted, and rendered to pictures that are looked at."""

from __future__ import annotations

import io
import json
from datetime import date
from pathlib import Path

import altair as alt
import pytest

from llmcost_nb.notebook import charts
from llmcost_nb.notebook.display import ChartView, chart_png, show
from llmcost_nb.testing.sample_data import generate

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts" / "charts"
SAMPLE = dict(rows=8_000, days=42, seed=5)  # conftest's `sample`: generate(**SAMPLE), ending 2026-11-20


def build(name, sample):
    led = sample.ledger
    return {
        "spend_over_time": lambda: charts.spend_over_time(led, by="model"),
        "spend_by_team_weekly": lambda: charts.spend_over_time(led, by="tag:team", freq="week"),
        "cumulative_spend": lambda: charts.cumulative_spend(led, as_of=sample.end, budget=80),
        "cost_by_tag": lambda: charts.cost_by_tag(led, "team"),
        "token_mix": lambda: charts.token_mix(led),
        "latency_distribution": lambda: charts.latency_distribution(led),
    }[name]()


NAMES = [
    "spend_over_time",
    "spend_by_team_weekly",
    "cumulative_spend",
    "cost_by_tag",
    "token_mix",
    "latency_distribution",
]


@pytest.mark.parametrize("name", NAMES)
def test_chart_renders_to_a_non_blank_png(sample, name):
    from PIL import Image

    chart = build(name, sample)
    assert isinstance(chart, (alt.Chart, alt.LayerChart))
    spec = chart.to_dict()  # would raise MaxRowsError past 5,000 rows
    datasets = spec.get("datasets", {})
    assert datasets and all(len(rows) < 5_000 for rows in datasets.values())
    assert len(json.dumps(spec)) < 1_000_000
    png = chart_png(chart)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"{name}.png").write_bytes(png)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.width > 400 and image.height > 200
    small = image.resize((200, 100))
    raw = small.tobytes()
    pixels = [tuple(raw[i : i + 3]) for i in range(0, len(raw), 3)]
    inked = sum(1 for p in pixels if sum(p) < 600) / len(pixels)
    colors = {p for p in pixels if max(p) - min(p) > 60}  # saturated: bars, lines, points
    assert inked > 0.03, f"{name} looks blank"
    assert len(colors) > 3, f"{name} has no colored marks"


def test_dollar_formats_and_tooltips(sample):
    spec = charts.spend_over_time(sample.ledger).to_dict()
    assert spec["encoding"]["y"]["axis"]["format"] == "$,.2f"
    tips = {t.get("title", t.get("field")): t.get("format") for t in spec["encoding"]["tooltip"]}
    assert tips["cost"] == "$,.4f" and tips["requests"] == ","


def test_spend_chart_keeps_top_values_and_sums_the_rest(sample):
    chart = charts.spend_over_time(sample.ledger, by="model", top=3)
    data = next(iter(chart.to_dict()["datasets"].values()))
    assert {row["model"] for row in data} - {"other"} <= set(sample.ledger.summary(by="model")["model"])
    assert len({row["model"] for row in data}) == 4
    total = sum(float(c) for c in sample.ledger.summary(by=())["cost_usd"])
    assert sum(row["cost"] for row in data) == pytest.approx(total)


def test_cumulative_chart_marks_anomalies_in_the_month(tmp_path):
    sample = generate(rows=6_000, days=30, seed=2, path=tmp_path / "m.db", end=date(2026, 11, 28))
    chart = charts.cumulative_spend(sample.ledger, as_of="2026-11-28", budget=100)
    marks = [layer for layer in chart.to_dict()["layer"] if layer["mark"].get("shape") == "diamond"]
    assert len(marks) == 1
    datasets = chart.to_dict()["datasets"]
    flagged = datasets[marks[0]["data"]["name"]]
    assert {row["day"][:10] for row in flagged} >= {sample.runaway_day.isoformat()}


def test_theme_is_registered_and_enabled_by_default(sample):
    charts.register_theme()
    assert "llmcost" in alt.theme.names()
    assert alt.theme.active == "llmcost"


def test_display_bundle_always_has_a_static_picture(sample):
    chart = charts.cost_by_tag(sample.ledger, "team")
    bundle = show(chart)._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "image/svg+xml"}
    assert bundle["image/svg+xml"].startswith("<svg")
    interactive = ChartView(chart, interactive=True)._repr_mimebundle_()
    assert "vegaEmbed(" in interactive["text/html"] and "<svg" in interactive["text/html"]
    assert "cdn.jsdelivr" not in interactive["text/html"].split("vegaEmbed(")[1]
    png = ChartView(chart, fmt="png")._repr_mimebundle_()
    assert "image/png" in png and "image/svg+xml" not in png
    with pytest.raises(ValueError, match="unknown format 'gif', allowed values: svg, png"):
        ChartView(chart, fmt="gif")


@pytest.mark.parametrize(("largest", "axis", "tip"), [
    (0, "$,.2f", "$,.4f"),
    (1234.5, "$,.2f", "$,.4f"),
    (0.5, "$,.2f", "$,.4f"),
    (0.05, "$,.3f", "$,.5f"),
    (0.000166, "$,.5f", "$,.7f"),
    (0.0000009, "$,.8f", "$,.10f"),
])
def test_dollar_format_keeps_fractions_of_a_cent_visible(largest, axis, tip):
    assert charts.usd_formats(largest) == (axis, tip)


def test_a_notebooks_tiny_costs_are_labelled_in_fractions_of_a_cent(tmp_path):
    import llmcost_nb

    ledger = llmcost_nb.Ledger(tmp_path / "small.db")
    ledger.set_price("gpt-4.1-mini", input_mtok="0.4", output_mtok="1.6")  # a call: 40 × 0.4 + 90 × 1.6 µ$
    llmcost_nb.log_many([{"model": "gpt-4.1-mini", "input_tokens": 40, "output_tokens": 90,
                          "tags": {"step": step}} for step in ("a", "b", "b")], ledger=ledger)
    spec = charts.cost_by_tag(ledger, "step").to_dict()
    bars, labels = spec["layer"]
    assert bars["encoding"]["x"]["axis"]["format"] == "$,.5f"  # the largest bar is $0.00032
    data = {row["step"]: row["shown"] for row in next(iter(spec["datasets"].values()))}
    assert labels["encoding"]["text"] == {"field": "shown", "type": "nominal"}
    assert data == {"a": "$0.000160", "b": "$0.000320"}  # the labels as every view writes them
    assert charts.spend_over_time(ledger).to_dict()["encoding"]["y"]["axis"]["format"] == "$,.5f"


def test_tooltips_count_unpriced_and_estimated_calls_and_labels_never_say_0_for_them(tmp_path):
    """Issue 16: a bar's cost is that of its priced calls; its tooltip says how many calls had no price and
    how many were estimated, and a bar label never shows unpriced calls as $0."""
    from _honest import write_honest

    import llmcost_nb

    ledger = llmcost_nb.Ledger(tmp_path / "honest.db")
    write_honest(ledger)
    spec = charts.spend_over_time(ledger, by="model").to_dict()
    tips = [(t["field"], t.get("aggregate"), t.get("title")) for t in spec["encoding"]["tooltip"]][-2:]
    assert tips == [("unpriced", "sum", "unpriced calls"), ("estimated", "sum", "estimated calls")]
    data = next(iter(spec["datasets"].values()))
    rows = {r["model"]: (r["cost"], r["unpriced"], r["estimated"]) for r in data}
    assert rows == {"gpt-4.1": (1.2, 0, 0), "gpt-4o-mini": (0.0042, 0, 1), "my-ft": (0.0, 2, 0)}

    bars, labels = charts.cost_by_tag(ledger, "model").to_dict()["layer"]
    tips = [(t["field"], t.get("title")) for t in bars["encoding"]["tooltip"]][-2:]
    assert tips == [("unpriced", "unpriced calls"), ("estimated", "estimated calls")]
    data = {r["model"]: (r["shown"], r["unpriced"], r["estimated"])
            for r in charts.cost_by_tag(ledger, "model").to_dict()["datasets"].popitem()[1]}
    assert data == {"gpt-4.1": ("$1.2000", 0, 0), "gpt-4o-mini": ("≈$0.004200 (1 estimated)", 0, 1),
                    "my-ft": ("2 unpriced", 2, 0)}
    assert labels["encoding"]["text"]["field"] == "shown"
