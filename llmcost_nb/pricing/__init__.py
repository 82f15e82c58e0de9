"""Pricing: the pricer (genai-prices + overrides), usage extraction, provider detection, token counting."""

from .pricer import (
    Price,
    Pricer,
    PriceResult,
    UnknownModel,
    price_call,
    price_captured,
    warm,
    warn_unpriced,
)
from .providers import WIRE_PROVIDER

__all__ = ["WIRE_PROVIDER", "Price", "PriceResult", "Pricer", "UnknownModel", "price_call", "price_captured",
           "warm", "warn_unpriced"]
