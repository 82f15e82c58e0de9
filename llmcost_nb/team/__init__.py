"""Team sinks: the local ledger is the outbox; these push it to PostgreSQL (and W&B / OpenTelemetry exports).

>>> import llmcost_nb
>>> llmcost_nb.sync("postgresql://me@db.internal/team")               # doctest: +SKIP
>>> job = llmcost_nb.sync("postgresql://me@db.internal/team", every=60)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .sync import DEFAULT_BATCH, DEFAULT_SCHEMA, SyncError, SyncResult

if TYPE_CHECKING:
    from ..ledger.sqlite import Ledger
    from .background import BackgroundSync

__all__ = ["SyncError", "SyncResult", "sync"]

DSN_ENV = "LLMCOST_SYNC_DSN"


def sync(
    dsn: str | None = None,
    *,
    ledger: Ledger | str | Path | None = None,
    every: float | None = None,
    schema: str = DEFAULT_SCHEMA,
    batch_size: int = DEFAULT_BATCH,
    progress: Callable[[SyncResult], None] | None = None,
) -> SyncResult | BackgroundSync:
    """Push the local ledger's new and changed rows to the PostgreSQL team ledger (``$LLMCOST_SYNC_DSN``
    when ``dsn`` is omitted). With ``every=SECONDS``, start a background sync instead and return its handle
    (``.stop()``, ``.last_result``, ``.last_error``); it never blocks and retries while the server is down.
    ``progress`` is called with the running :class:`SyncResult` after each committed batch.

    >>> llmcost_nb.sync("postgresql://me@db.internal/team").rows_per_s   # doctest: +SKIP
    """
    import os

    dsn = dsn or os.environ.get(DSN_ENV)
    if not dsn:
        raise ValueError(f"no PostgreSQL DSN: pass one (postgresql://user@host/db) or set ${DSN_ENV}")
    if every is not None:
        from .background import BackgroundSync

        return BackgroundSync(dsn, every=every, ledger=ledger, schema=schema, batch_size=batch_size).start()
    from .sync import sync as push

    return push(dsn, ledger=ledger, schema=schema, batch_size=batch_size, progress=progress)
