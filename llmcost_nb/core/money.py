"""Money: exact Decimal USD, stored as integer picodollars; one way to show an amount and one to read one.

>>> format_usd(Decimal("0.000044")), format_usd(Decimal("2.5")), format_usd(Decimal("1234.5"))
('$0.000044', '$2.5000', '$1,234.50')
>>> format_usd(Decimal("2.5"), places=2), format_usd(None)
('$2.50', '$?')
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

__all__ = ["CENT", "MAX_PUSD", "PICO", "format_usd", "from_pusd", "parse_usd", "to_pusd"]

PICO = Decimal("1e-12")
CENT = Decimal("0.01")
_PICO_PER_USD = 10**12
MAX_PUSD = 2**63 - 1  # the most a ledger row holds: SQLite's (and PostgreSQL's bigint) 64-bit integer, ~$9.2M
_SUB_CENT_4DP = Decimal("0.0001")  # with fixed places, sub-cent amounts from here up show 4 decimals


def to_pusd(cost: Decimal | None) -> int | None:
    """USD as integer picodollars (1e-12 USD), the ledger's exact unit; half-even below a picodollar."""
    if cost is None:
        return None
    return int((cost * _PICO_PER_USD).to_integral_value(ROUND_HALF_EVEN))


def from_pusd(pusd: int | None) -> Decimal | None:
    if pusd is None:
        return None
    return Decimal(pusd).scaleb(-12).normalize() if pusd else Decimal(0)


def format_usd(value: Decimal | float | int | None, *, places: int | None = None, unknown: str = "$?") -> str:
    """Dollars for people, never rounded to nothing: a sub-cent amount shows 6 decimals (``$0.000044``).

    Adaptive (``places=None``, the cell summary, tables, the CLI): 4 decimals under $100, 2 from $100 on,
    with thousands separators. Fixed (``places=2``, reports and dashboards): that many decimals, except
    sub-cent amounts, which keep 4 decimals from $0.0001 up and 6 below. ``None`` shows ``unknown``.
    """
    if value is None:
        return unknown
    v = Decimal(str(value)) if isinstance(value, float) else value
    if v and abs(v) < CENT:
        return f"${v:.6f}" if places is None or abs(v) < _SUB_CENT_4DP else f"${v:.4f}"
    if places is None:
        places = 4 if abs(v) < 100 else 2
    return f"${v:,.{places}f}"


def parse_usd(
    value: Decimal | str | int | float,
    what: str,
    *,
    rule: str = "a finite non-negative number",
    invalid: str = "a number",
    positive: bool = False,
) -> Decimal:
    """``value`` as an exact USD amount (a float through its shortest repr: 0.1 is 0.1).

    Raises ``ValueError("{what} must be {invalid}, got …")`` for text that is no number and
    ``ValueError("{what} must be {rule}, got …")`` for an infinite, negative (or, with ``positive``, zero)
    amount, so each caller keeps its own wording.
    """
    try:
        amount = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise ValueError(f"{what} must be {invalid}, got {value!r}") from None
    if not amount.is_finite() or amount < 0 or (positive and not amount):
        raise ValueError(f"{what} must be {rule}, got {value!r}")
    return amount
