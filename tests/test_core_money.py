"""One money formatter and one USD parser (``llmcost_nb.core.money``): the cell summary's adaptive precision,
the reports' fixed places, and each caller's own error wording."""

from __future__ import annotations

from decimal import Decimal

import pytest

from llmcost_nb.analysis.estimate import _usd as estimate_usd
from llmcost_nb.analysis.reports import usd
from llmcost_nb.core.money import format_cost, format_total, format_usd, parse_usd
from llmcost_nb.notebook import widgets


@pytest.mark.parametrize(
    ("value", "adaptive", "two_places"),
    [
        (None, "$?", "$?"),
        (Decimal(0), "$0.0000", "$0.00"),
        (Decimal("0.000044"), "$0.000044", "$0.000044"),  # under $0.0001: 6 decimals either way
        (Decimal("0.0044"), "$0.004400", "$0.0044"),  # sub-cent: 6 adaptive, 4 with fixed places
        (Decimal("-0.0044"), "$-0.004400", "$-0.0044"),
        (Decimal("2.5"), "$2.5000", "$2.50"),
        (Decimal("99.99999"), "$100.0000", "$100.00"),
        (Decimal("1234.5"), "$1,234.50", "$1,234.50"),
        (0.1, "$0.1000", "$0.10"),  # a float through its shortest repr
    ],
)
def test_format_usd(value, adaptive, two_places):
    assert format_usd(value) == widgets.format_usd(value) == adaptive
    assert format_usd(value, places=2) == usd(value) == two_places


def test_estimate_uses_the_one_formatter():
    assert estimate_usd(None) == "unknown"
    assert estimate_usd(Decimal("0.000248")) == "$0.000248"
    assert estimate_usd(Decimal("0.25")) == "$0.2500"


def test_parse_usd_keeps_each_callers_words():
    assert parse_usd("1.10", "USD") == Decimal("1.10")
    assert parse_usd(0.1, "USD") == Decimal("0.1")
    with pytest.raises(ValueError, match=r"^USD must be a number, got 'lots'$"):
        parse_usd("lots", "USD")
    with pytest.raises(ValueError, match=r"^USD must be a finite non-negative number, got '-1'$"):
        parse_usd("-1", "USD")
    with pytest.raises(ValueError, match=r"^a budget must be a positive amount, got 0$"):
        parse_usd(0, "a budget", rule="a positive amount", positive=True)
    with pytest.raises(ValueError, match=r"^x must be finite, got 'Infinity'$"):
        parse_usd("Infinity", "x", rule="finite")


@pytest.mark.parametrize(
    ("kwargs", "shown"),
    [
        ({"cost": Decimal("0.0042")}, "$0.004200"),
        ({"cost": Decimal("0.0042"), "estimated": True}, "≈$0.004200"),
        ({"cost": Decimal("0.0042"), "estimated": True, "places": 2}, "≈$0.0042"),
        ({"cost": None}, "unpriced"),  # billed, no price known: never $0
        ({"cost": None, "estimated": True}, "unpriced"),
        ({"cost": None, "billed": False}, "—"),
        ({"cost": Decimal(0), "billed": False}, "—"),
        ({"cost": Decimal(0)}, "$0.0000"),  # a priced call that cost nothing (self-hosted, replayed)
    ],
)
def test_format_cost_of_one_call(kwargs, shown):
    assert format_cost(kwargs.pop("cost"), **kwargs) == shown


@pytest.mark.parametrize(
    ("total", "unpriced", "estimated", "places", "shown"),
    [
        (Decimal("1.2"), 0, 0, None, "$1.2000"),
        (Decimal("1.2"), 0, 0, 2, "$1.20"),
        (Decimal("1.2042"), 0, 1, 2, "≈$1.20 (1 estimated)"),
        (Decimal("1.2"), 3, 0, 2, "$1.20 + 3 unpriced"),
        (Decimal("1.2042"), 2, 1, None, "≈$1.2042 (1 estimated) + 2 unpriced"),
        (Decimal("1234.5"), 1200, 3400, None, "≈$1,234.50 (3,400 estimated) + 1,200 unpriced"),
        (Decimal(0), 3, 0, 2, "3 unpriced"),  # nothing priced: no $0 at all
        (None, 3, 0, None, "3 unpriced"),
        (Decimal(0), 0, 0, 2, "$0.00"),
        (None, 0, 0, 2, "$0.00"),
    ],
)
def test_format_total_says_what_it_leaves_out_and_what_it_guesses(total, unpriced, estimated, places, shown):
    assert format_total(total, unpriced=unpriced, estimated=estimated, places=places) == shown
