"""Put the process's tracking state back to a fresh start, between tests."""

from __future__ import annotations

__all__ = ["reset"]


def reset() -> None:
    """As a new process starts: calls still in journals stay in their segments (recorded by the next process
    to open each ledger, as after a process dies), capture is off, no session (the next one reads
    ``$LLMCOST_DB`` afresh), no open scopes, and every warning shows again.

    >>> from llmcost_nb.testing import reset
    >>> reset()
    """
    from ..core.warn import reset_warnings
    from ..ledger.journal import abandon_all
    from ..tracking.manual import disable
    from ..tracking.scope import reset_state

    abandon_all()
    disable()
    reset_state()
    reset_warnings()
