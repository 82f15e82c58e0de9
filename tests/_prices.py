"""Prices as the installed genai-prices states them, read through its public API.

Tests derive expected costs from token counts and these prices instead of copying numbers out of
genai-prices' data: a new genai-prices release may change a price, and what we promise is to charge what
genai-prices charges. ``SOURCE`` is the ``price_source`` our pricer reports for the installed version.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from importlib.metadata import version
from typing import Any

import genai_prices

SOURCE = f"genai-prices {version('genai-prices')}"
M = Decimal(10) ** 6


def genai_cost(model: str, provider: str | None = None, ts: datetime | None = None, **usage: int) -> Decimal:
    """genai-prices' own total for one call of ``model`` with ``usage`` (genai-prices usage keys)."""
    return genai_prices.calc_price(
        genai_prices.Usage(**usage), model, provider_id=provider, genai_request_timestamp=ts
    ).total_price


def unit_prices(model: str, provider: str | None = None, ts: datetime | None = None,
                tier: str | None = None) -> Any:
    """genai-prices' prices for ``model`` at ``ts`` (and service ``tier``): attributes ``input_mtok``,
    ``output_mtok``, ``cache_read_mtok``, ... (USD per million tokens), each a Decimal or a tiered price."""
    context = {"service_tier": tier} if tier else None
    return genai_prices.calc_price(
        genai_prices.Usage(), model, provider_id=provider, genai_request_timestamp=ts, price_context=context
    ).model_price


def at(price: Any, input_tokens: int = 0) -> Decimal:
    """A unit price for a request of ``input_tokens``: a flat price as it is; a tiered one at the highest tier
    whose threshold the request's input tokens pass (a passed tier prices every token), else its base."""
    if isinstance(price, Decimal):
        return price
    reached = [tier.price for tier in sorted(price.tiers, key=lambda t: t.start) if input_tokens > tier.start]
    return reached[-1] if reached else price.base


def token_cost(model: str, provider: str | None = None, ts: datetime | None = None, *, input_tokens: int = 0,
               output_tokens: int = 0, cache_read_tokens: int = 0) -> Decimal:
    """USD for a plain text call, from genai-prices' unit prices: uncached input, cache reads and output."""
    p = unit_prices(model, provider, ts)
    read = at(p.cache_read_mtok, input_tokens) if cache_read_tokens else Decimal(0)
    return ((input_tokens - cache_read_tokens) * at(p.input_mtok, input_tokens) + cache_read_tokens * read
            + output_tokens * at(p.output_mtok, input_tokens)) / M
