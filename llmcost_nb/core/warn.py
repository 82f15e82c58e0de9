"""One warning per kind of problem, not one per call.

Tracking must never break the user's call: every failure inside llmcost_nb becomes a warning through
:func:`warn_once`, keyed by a short *kind* so a broken ledger in a loop of 10,000 calls warns once.
"""

from __future__ import annotations

import threading
import warnings

from ..errors import LlmcostWarning

__all__ = ["LlmcostWarning", "reset_warnings", "warn_once"]


_seen: set[str] = set()
_lock = threading.Lock()


def warn_once(kind: str, message: str, *, stacklevel: int = 2) -> bool:
    """Warn with ``message`` unless a warning of this ``kind`` was already shown; return True if shown."""
    with _lock:
        if kind in _seen:
            return False
        _seen.add(kind)
    warnings.warn(f"llmcost_nb: {message}", LlmcostWarning, stacklevel=stacklevel + 1)
    return True


def warned(*kinds: str) -> bool:
    """Whether a warning of any of these kinds was shown already."""
    return not _seen.isdisjoint(kinds)


def reset_warnings() -> None:
    """Forget which kinds were shown (tests, or a user who wants to see them again)."""
    with _lock:
        _seen.clear()
