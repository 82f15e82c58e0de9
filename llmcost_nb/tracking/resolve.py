"""One answer to "a ledger, a path or None": :func:`resolve_ledger`."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..ledger.protocol import LedgerReader

__all__ = ["resolve_ledger"]


def resolve_ledger(ledger: LedgerReader | str | os.PathLike[str] | None = None) -> LedgerReader:
    """``ledger`` itself if it is a ledger (local or team); ``Ledger(ledger)`` for a path or a
    ``postgresql://`` URL; for ``None``, the current scope's ledger, else this session's."""
    if ledger is None:
        from .scope import current_scope, get_session

        scope, _ = current_scope()
        return scope.ledger if scope is not None else get_session().ledger
    from ..ledger.sqlite import open_ledger

    return open_ledger(ledger)
