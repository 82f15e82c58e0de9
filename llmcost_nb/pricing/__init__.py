"""Pricing: the pricer (genai-prices + overrides), usage extraction, provider detection, token counting."""

from .pricer import Price, Pricer, PriceResult, UnknownModel, warm

__all__ = ["Price", "PriceResult", "Pricer", "UnknownModel", "warm"]
