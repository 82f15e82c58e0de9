"""Money: exact Decimal USD, stored as integer picodollars; one way to show an amount and one to read one.

>>> format_usd(Decimal("0.000044")), format_usd(Decimal("2.5")), format_usd(Decimal("1234.5"))
('$0.000044', '$2.5000', '$1,234.50')
>>> format_usd(Decimal("2.5"), places=2), format_usd(None)
('$2.50', '$?')

Honest numbers: a billed call with no known price is ``unpriced``, never $0; an amount whose tokens were
counted by us (a stream that sent no usage) is ``≈``, never shown as exact. Every view words them alike:

>>> format_cost(None), format_cost(Decimal("0.0042"), estimated=True), format_cost(Decimal(0), billed=False)
('unpriced', '≈$0.004200', '—')
>>> format_total(Decimal("1.2042"), unpriced=2, estimated=1, places=2), format_total(Decimal(0), unpriced=3)
('≈$1.20 (1 estimated) + 2 unpriced', '3 unpriced')

A spend against a limit says what it leaves out:

>>> f"{format_usd(Decimal('0.42'))} of {format_usd(5)} · {not_counting(3)}"
'$0.4200 of $5.0000 · not counting 3 unpriced calls'
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

__all__ = [
    "APPROX",
    "CENT",
    "MAX_PUSD",
    "NOT_BILLED",
    "PICO",
    "UNPRICED",
    "format_cost",
    "format_total",
    "format_usd",
    "from_pusd",
    "not_counting",
    "parse_usd",
    "to_pusd",
]

PICO = Decimal("1e-12")
CENT = Decimal("0.01")
_PICO_PER_USD = 10**12
MAX_PUSD = 2**63 - 1  # the most a ledger row holds: SQLite's (and PostgreSQL's bigint) 64-bit integer, ~$9.2M
_SUB_CENT_4DP = Decimal("0.0001")  # with fixed places, sub-cent amounts from here up show 4 decimals
UNPRICED = "unpriced"  # a billed call whose price is unknown: its cost is not in any total, and is never $0
APPROX = "≈"  # before an amount that counts estimated tokens (counted by llmcost_nb, not reported by the API)
NOT_BILLED = "—"  # a call the provider does not bill (a failed attempt, a replayed response)


def to_pusd(cost: Decimal | None) -> int | None:
    """USD as integer picodollars (1e-12 USD), the ledger's exact unit; half-even below a picodollar."""
    if cost is None:
        return None
    return int((cost * _PICO_PER_USD).to_integral_value(ROUND_HALF_EVEN))


def from_pusd(pusd: int | None) -> Decimal | None:
    if pusd is None:
        return None
    return Decimal(pusd).scaleb(-12).normalize() if pusd else Decimal(0)


def format_usd(
    value: Decimal | float | int | None,
    *,
    places: int | None = None,
    unknown: str = "$?",
    estimated: bool = False,
) -> str:
    """Dollars for people, never rounded to nothing: a sub-cent amount shows 6 decimals (``$0.000044``).

    Adaptive (``places=None``, the cell summary, tables, the CLI): 4 decimals under $100, 2 from $100 on,
    with thousands separators. Fixed (``places=2``, reports and dashboards): that many decimals, except
    sub-cent amounts, which keep 4 decimals from $0.0001 up and 6 below. ``None`` shows ``unknown``;
    ``estimated`` puts ``≈`` before the amount.
    """
    if value is None:
        return unknown
    v = Decimal(str(value)) if isinstance(value, float) else value
    mark = APPROX if estimated else ""
    if v and abs(v) < CENT:
        return mark + (f"${v:.6f}" if places is None or abs(v) < _SUB_CENT_4DP else f"${v:.4f}")
    if places is None:
        places = 4 if abs(v) < 100 else 2
    return f"{mark}${v:,.{places}f}"


def format_cost(
    cost: Decimal | float | int | None,
    *,
    billed: bool = True,
    estimated: bool = False,
    places: int | None = None,
) -> str:
    """One call's cost: ``$0.0042``; ``≈$0.0042`` when its tokens were estimated; ``unpriced`` for a billed
    call with no known price (never ``$0``); ``—`` for a call that is not billed."""
    if not billed:
        return NOT_BILLED
    return format_usd(cost, places=places, unknown=UNPRICED, estimated=estimated)


def format_total(
    total: Decimal | float | int | None,
    *,
    unpriced: int = 0,
    estimated: int = 0,
    places: int | None = None,
) -> str:
    """A sum over calls, saying what it leaves out and what it guesses: ``$1.2000``;
    ``≈$1.2000 (2 estimated)`` when ``estimated`` of its calls have estimated tokens;
    ``$1.2000 + 3 unpriced`` when ``unpriced`` billed calls have no price (their cost is not in ``total``);
    ``3 unpriced`` when nothing in it was priced. Machine formats (CSV, JSON, frames) keep the exact total
    and give the two counts as their own fields instead.
    """
    unpriced, estimated = int(unpriced or 0), int(estimated or 0)
    if unpriced and not total:
        return f"{unpriced:,} {UNPRICED}"
    text = format_usd(total or Decimal(0), places=places, estimated=bool(estimated))
    if estimated:
        text += f" ({estimated:,} estimated)"
    if unpriced:
        text += f" + {unpriced:,} {UNPRICED}"
    return text


def not_counting(unpriced: int) -> str:
    """What a spend against a limit leaves out: ``not counting 3 unpriced calls`` (``""`` for none). Budget
    lines and the daily report put it after the amount (``$0.42 of $5.00 · not counting 3 unpriced calls``).
    """
    unpriced = int(unpriced or 0)
    return f"not counting {unpriced:,} {UNPRICED} call{'s' * (unpriced != 1)}" if unpriced else ""


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
