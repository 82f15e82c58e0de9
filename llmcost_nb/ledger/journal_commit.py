"""The ledger's side of the journal of captured calls (:mod:`._journal`): making taped calls into priced,
counted calls, committing their rows with a note of the segments they came from, and recording at open the
segments a dead process left. A mixin of :class:`~llmcost_nb.ledger.Ledger`, like the tag-set methods."""

from __future__ import annotations

import os
import sqlite3
from typing import TYPE_CHECKING, Any

from . import journal as _journal
from . import segment as _segment

if TYPE_CHECKING:
    from ..core.call import Call

__all__ = ["JournalMethods"]


class JournalMethods:
    """Needs ``path``, ``_key``, ``_lock``, ``_raw``, ``_transaction``, ``_params``, ``tagset_id`` and
    ``_insert_row`` from the ledger."""

    path: Any
    _key: str
    _lock: Any
    _conn: sqlite3.Connection | None
    _pid: int

    @property
    def journal(self) -> _journal.Journal | None:
        """This process's journal for this ledger (None where there can be none: no flock)."""
        return _journal.journal_for(self._key, self.path, self)

    def _calls_from_exchanges(self, exchanges: list[tuple[Any, Any, Any]]) -> list[tuple[Any, Any, Any]]:
        """Taped exchanges as priced calls, each counted in its scope and session: (call, scope, session).
        One that cannot be read is warned about and left out, as a response would be."""
        from ..tracking.recorder import account, call_from_exchange

        made = []
        for exchange, scope, session in exchanges:
            try:
                call = call_from_exchange(self, exchange)
            except Exception as exc:
                from ..core.warn import warn_once

                warn_once(f"exchange:{type(exc).__name__}", f"could not record a response ({exc!r})")
                continue
            account(call, scope, session)
            made.append((call, scope, session))
        return made

    def _announce(self, made: list[tuple[Any, Any, Any]]) -> None:
        from ..tracking.recorder import notify

        for call, scope, session in made:
            notify(call, scope, session)

    def _commit_pending(self, calls: list[Call], segments: list[str], forget: list[str]) -> list[int]:
        """Insert the calls of journal segments in one transaction that also notes those segments as
        recorded (and drops the notes of segments ``forget``, unlinked since); returns the rows' ids."""
        rows = [self._params(call, self.tagset_id(call.tags)) for call in calls]  # new tag sets stored first
        conn = self._raw
        with self._lock, self._transaction(conn):
            ids = [self._insert_row(conn, row) for row in rows]
            conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, '1')",
                             [(f"pending:{name}",) for name in segments])
            if forget:
                conn.executemany("DELETE FROM meta WHERE key = ?", [(f"pending:{name}",) for name in forget])
        return ids

    def _replay_orphans(self, conn: sqlite3.Connection) -> None:
        """Record the calls of journal segments whose process ended before it could (each once: a segment
        noted as moved in ``meta`` is only removed)."""
        orphans = _segment.orphans(self.path)
        if not orphans:
            return
        from ..tracking.recorder import call_from_exchange

        self._conn, self._pid = conn, os.getpid()  # pricing and tag sets use the connection being opened
        for segment, fd in orphans:
            try:  # holding its lock: a note in meta can only be from its owner, who died after committing it
                key = f"pending:{segment.name}"
                if conn.execute("SELECT 1 FROM meta WHERE key = ?", (key,)).fetchone() is None:
                    calls = [call_from_exchange(self, x) for x in _segment.read_exchanges(segment)]
                    self._commit_pending(calls, [segment.name], [])
                segment.unlink(missing_ok=True)
                conn.execute("DELETE FROM meta WHERE key = ?", (key,))
            finally:
                os.close(fd)

    def flush(self) -> None:
        """Write the calls this process captured into this ledger now (reads do this themselves, and a
        background thread within 0.1 s); retries at once a write that failed before."""
        if (journal := _journal.pending_journal(self._key)) is not None:
            journal.flush(force=True)
