"""The cell summary (text, HTML and widget forms) says what it leaves out and what it guesses: a billed call
with no known price is "unpriced", never $0; a cost from estimated tokens carries "≈"."""

from __future__ import annotations

from decimal import Decimal

from _honest import honest_calls

from llmcost_nb.notebook.widgets import CellSummary
from llmcost_nb.tracking.recorder import account
from llmcost_nb.tracking.scope import Session

LINE = ("5 calls · 1,500 in / 160 out tokens · ≈$1.2042 (1 estimated) + 2 unpriced · 1.9 s · "
        "session ≈$1.2042 (1 estimated) + 2 unpriced")
NOTES = [
    "2 unpriced: no price known for my-ft, not in the cost (llmcost_nb.set_price sets one)",
    "1 estimated: the provider sent no usage, tokens counted by llmcost_nb (≈)",
    "1 failed attempt (not billed)",
]


def _summary() -> CellSummary:
    session = Session()
    calls = honest_calls()
    for call in calls:
        account(call, None, session)
    assert (session.total_cost, session.unpriced, session.estimated) == (Decimal("1.2042"), 2, 1)
    return CellSummary(calls, "[3]", session.total_cost, session_unpriced=session.unpriced,
                       session_estimated=session.estimated)


def test_text_marks_unpriced_and_estimated():
    summary = _summary()
    assert (summary.cost, summary.unpriced, summary.estimated) == (Decimal("1.2042"), 2, 1)
    assert str(summary) == "\n".join([
        "llmcost [3]: " + LINE,
        "  models: gpt-4.1 ×2, my-ft ×2, gpt-4o-mini ×1",
        *(f"  {n}" for n in NOTES),
    ])  # fmt: skip


def test_per_call_table_never_shows_an_unpriced_call_as_0():
    table = _summary().table_html()
    costs = [row.split("<td>")[7].removesuffix("</td>") for row in table.split("<tr>")[2:]]
    assert costs == ["$1.2000", "≈$0.004200", "unpriced", "unpriced", "—"]
    assert "$0.0000" not in table


def test_html_and_widget_say_the_same():
    summary = _summary()
    header = summary._header_html()
    assert f"<b>llmcost [3]</b> · {LINE}</div>" in header
    for note in NOTES:
        assert f'<div class="llmcost-note"><small>{note}</small></div>' in header
    html = summary._repr_html_()
    assert header in html and summary.table_html() in html
    widget = summary.widget()
    assert widget.children[0].value == header
    assert widget.children[1].children[0].value == summary.table_html()
    bundle = summary.mimebundle(widget=True)
    assert bundle["text/plain"] == str(summary) and bundle["text/html"] == html


def test_a_call_updated_in_place_replaces_its_marks_in_the_session_totals():
    """A stream first recorded unfinished and unpriced, then finished and priced, is counted once."""
    session = Session()
    (call,) = [c for c in honest_calls() if c.model == "my-ft"][:1]
    account(call, None, session)
    assert (session.call_count, session.unpriced, session.estimated) == (1, 1, 0)
    call.cost, call.usage_source = Decimal("0.5"), "estimated"
    account(call, None, session, first_time=False)
    assert (session.call_count, session.total_cost, session.unpriced, session.estimated) == (
        1, Decimal("0.5"), 0, 1)
    call.usage_source = "provider"
    account(call, None, session, first_time=False, old_cost=Decimal("0.5"))
    assert (session.call_count, session.total_cost, session.unpriced, session.estimated) == (
        1, Decimal("0.5"), 0, 0)


def test_nothing_marked_when_every_call_is_priced_from_provider_usage():
    calls = [c for c in honest_calls() if c.model == "gpt-4.1"]
    summary = CellSummary(calls, "", Decimal("1.2"))
    assert str(summary).splitlines()[0] == (
        "llmcost: 2 calls · 1,000 in / 100 out tokens · $1.2000 · 900 ms · session $1.2000"
    )
