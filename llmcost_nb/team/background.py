"""Sync the local ledger to PostgreSQL every N seconds from a daemon thread (``%llmcost sync --every 60``).

>>> job = BackgroundSync("postgresql://me@db.internal/team", every=60).start()   # doctest: +SKIP
>>> job.last_result, job.last_error                                               # doctest: +SKIP

The thread has its own connections and never blocks the notebook. While the server is down each attempt
fails fast and is retried with backoff (1 s, 2 s, 4 s, … up to ``every``); the local ledger keeps every row
meanwhile, so nothing is lost. ``stop()`` ends the thread after the sync in progress.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .sync import DEFAULT_BATCH, DEFAULT_SCHEMA, SyncError, SyncResult, redact_dsn, sync

if TYPE_CHECKING:
    from ..ledger.sqlite import Ledger

__all__ = ["BackgroundSync"]


class BackgroundSync:
    """Runs :func:`~llmcost_nb.team.sync.sync` every ``every`` seconds until stopped."""

    def __init__(
        self,
        dsn: str,
        *,
        every: float = 60,
        ledger: Ledger | str | Path | None = None,
        schema: str = DEFAULT_SCHEMA,
        batch_size: int = DEFAULT_BATCH,
        min_backoff: float = 1.0,
    ) -> None:
        if isinstance(every, bool) or not isinstance(every, int | float) or every <= 0:
            raise ValueError(f"every must be a positive number of seconds, got {every!r}")
        from ..tracking.resolve import resolve_ledger

        self.dsn, self.every, self.schema, self.batch_size = dsn, float(every), schema, batch_size
        self.label = redact_dsn(dsn)
        # A path, not the Ledger object: sync opens its own SQLite connection on the thread.
        self.ledger_path = ledger if isinstance(ledger, str | os.PathLike) else resolve_ledger(ledger).path
        self.min_backoff = min_backoff
        self.runs = 0
        self.failures = 0  # consecutive
        self.last_result: SyncResult | None = None
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        last = (f"; last error: {self.last_error}" if self.last_error
                else f"; last: {self.last_result}" if self.last_result else "")  # fmt: skip
        return f"<BackgroundSync to {self.label} every {self.every:g}s, {state}, {self.runs} runs{last}>"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> BackgroundSync:
        if not self.running:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="llmcost-sync", daemon=True)
            self._thread.start()
        return self

    def now(self) -> None:
        """Sync as soon as possible (without waiting for it)."""
        self._wake.set()

    def stop(self, timeout: float | None = 30) -> None:
        """Stop after the sync in progress (waits up to ``timeout`` seconds)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.last_result = sync(
                    self.dsn, ledger=self.ledger_path, schema=self.schema, batch_size=self.batch_size
                )
                self.last_error, self.failures = None, 0
                delay = self.every
            except SyncError as exc:
                self.last_error, self.failures = str(exc), self.failures + 1
                delay = min(self.every, self.min_backoff * 2 ** (self.failures - 1))
            except Exception as exc:  # never let the thread die silently: report and retry
                self.last_error, self.failures = f"{type(exc).__name__}: {exc}", self.failures + 1
                delay = self.every
            self.runs += 1
            self._wake.wait(delay)
            self._wake.clear()

    def wait_idle(self, runs: int, timeout: float = 60) -> bool:
        """Block until at least ``runs`` syncs have finished (tests, scripts); True if they did."""
        deadline = time.monotonic() + timeout
        while self.runs < runs and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.runs >= runs
