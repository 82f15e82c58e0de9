"""Capture hooks per HTTP stack, the recorder (exchange -> Call), scopes and sessions, manual record/log."""

from .resolve import resolve_ledger

__all__ = ["resolve_ledger"]
