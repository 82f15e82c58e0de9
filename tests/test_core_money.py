"""One money formatter and one USD parser (``llmcost_nb.core.money``): the cell summary's adaptive precision,
the reports' fixed places, and each caller's own error wording."""

from __future__ import annotations

from decimal import Decimal

import pytest

from llmcost_nb.analysis.estimate import _usd as estimate_usd
from llmcost_nb.analysis.reports import usd
from llmcost_nb.core.money import format_usd, parse_usd
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
