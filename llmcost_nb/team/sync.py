"""Push the local ledger to a shared PostgreSQL team ledger.

>>> result = sync("postgresql://me@db.internal/team")      # doctest: +SKIP
>>> result.inserted, result.rows_per_s                      # doctest: +SKIP
(1204, 48210.7)

The local SQLite ledger is the outbox. New rows are found by id, rows changed after being pushed (a stream
that finished later, a reprice) by the ``sync_changes`` log that a trigger fills. Each target (DSN + schema)
keeps its own high-water marks in the local ``sync_targets`` table, advanced only after PostgreSQL committed
the batch: a failure at any point loses nothing and the next sync resumes. Rows are keyed in PostgreSQL by
``(ledger_id, id)`` (``ledger_id`` is the local ledger's uuid) and upserted, so pushing twice is harmless.
Syncs of one ledger are serialized by an advisory lock; different laptops sync concurrently.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.call import now_iso
from ..errors import AccessError, LedgerNotYours
from .access import require_member
from .schema import (
    CALL_COLUMNS,
    DEFAULT_SCHEMA,
    PG_COLUMNS,
    SCOPE_COLUMNS,
    SyncError,
    _schema,
    connect,
    migrate,
    redact_dsn,
)

if TYPE_CHECKING:
    import psycopg

    from ..ledger.sqlite import Ledger

__all__ = [
    "CALL_COLUMNS",
    "DEFAULT_SCHEMA",
    "PG_COLUMNS",
    "SyncError",
    "SyncResult",
    "connect",
    "migrate",
    "redact_dsn",
    "sync",
]

DEFAULT_BATCH = 20_000


_SELECT_CALLS = (
    "SELECT " + ", ".join(f"c.{c}" for c in CALL_COLUMNS) + ", COALESCE(t.tags, '{}') "
    "FROM calls c LEFT JOIN tagsets t ON t.id = c.tagset_id "
)


@dataclass
class SyncResult:
    """What one sync pushed. ``inserted`` + ``updated`` rows reached PostgreSQL; ``unchanged`` were there."""

    target: str
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    scopes: int = 0
    batches: int = 0
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return self.inserted + self.updated + self.unchanged

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        return (
            f"synced to {self.target}: {self.inserted:,} new, {self.updated:,} updated, "
            f"{self.unchanged:,} already there · {self.rows_per_s:,.0f} rows/s"
        )

    def _repr_html_(self) -> str:
        import html

        return f"<div class='llmcost-sync'>{html.escape(str(self))}</div>"


def _upsert_sql(s: str) -> str:
    cols = ", ".join(PG_COLUMNS)
    changing = [c for c in PG_COLUMNS if c not in ("ledger_id", "id")]
    return (
        f"WITH up AS (INSERT INTO {s}.calls AS c ({cols}) SELECT {cols} FROM llmcost_stage ORDER BY id "
        f"ON CONFLICT (ledger_id, id) DO UPDATE SET "
        + ", ".join(f"{c} = EXCLUDED.{c}" for c in changing)
        + ", synced_at = now() "
        f"WHERE ({', '.join('c.' + c for c in changing)}) IS DISTINCT FROM "
        f"({', '.join('EXCLUDED.' + c for c in changing)}) RETURNING (xmax = 0) AS inserted) "
        "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up"
    )


class _Pusher:
    """One sync of one local ledger to one target, on its own connections."""

    def __init__(
        self,
        ledger: Ledger,
        dsn: str,
        schema: str,
        batch_size: int,
        progress: Callable[[SyncResult], None] | None,
    ) -> None:
        self.ledger, self.s, self.batch_size, self.progress = ledger, _schema(schema), batch_size, progress
        self.label = redact_dsn(dsn)
        self.target = hashlib.sha256(f"{self.label}|{self.s}".encode()).hexdigest()
        self.result = SyncResult(target=self.label)
        self.local = ledger.connection
        with ledger._lock:  # the connection is shared with threads writing calls
            row = self.local.execute("SELECT value FROM meta WHERE key = 'ledger_id'").fetchone()
        self.ledger_id = row[0]
        self.dsn = dsn

    # -- local marks ----------------------------------------------------------------------------------
    def marks(self) -> tuple[int, int, int]:
        with self.ledger._lock:
            self.local.execute(
                "INSERT OR IGNORE INTO sync_targets (target, label) VALUES (?, ?)", (self.target, self.label)
            )
            return self.local.execute(
                "SELECT last_call_id, last_change_seq, last_scope_rowid FROM sync_targets WHERE target = ?",
                (self.target,),
            ).fetchone()

    def advance(self, column: str, value: int) -> None:
        with self.ledger._lock:
            self.local.execute(
                f"UPDATE sync_targets SET {column} = MAX({column}, ?), last_sync = ? WHERE target = ?",
                (value, now_iso(), self.target),
            )

    # -- pushing --------------------------------------------------------------------------------------
    def run(self) -> SyncResult:
        started = time.perf_counter()
        conn = connect(self.dsn)
        try:
            migrate(conn, self.s)
            access = require_member(conn, self.s)  # a role without a team: one line, nothing written
            # Row-level security applies to this role (a member, once `llmcost team init` ran): PostgreSQL
            # refuses COPY into such a table, so new rows go through the staging table too.
            (self.rls,) = conn.execute("SELECT row_security_active(%s)", (f"{self.s}.calls",)).fetchone()
            self._register(conn, access.role)
            # One sync per ledger and target at a time (a notebook's background sync and the CLI, or a
            # copied ledger file): a slower sync could otherwise overwrite a newer row with an older state.
            conn.execute(
                "SELECT pg_advisory_lock(hashtext(%s))", (f"llmcost_nb.sync.{self.s}.{self.ledger_id}",)
            )
            (self.server_max_id,) = conn.execute(
                f"SELECT COALESCE(MAX(id), 0) FROM {self.s}.calls WHERE ledger_id = %s", (self.ledger_id,)
            ).fetchone()
            conn.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS llmcost_stage (LIKE {self.s}.calls INCLUDING DEFAULTS)"
                " ON COMMIT DELETE ROWS"
            )
            self._push_all(conn)
            conn.execute(
                f"UPDATE {self.s}.ledgers SET last_sync = now() WHERE ledger_id = %s", (self.ledger_id,)
            )
        except (SyncError, AccessError):
            raise
        except Exception as exc:
            import psycopg

            if isinstance(exc, psycopg.Error):
                raise SyncError(
                    f"sync to {self.label} stopped ({type(exc).__name__}: {str(exc).strip()}); "
                    "rows already pushed are kept, the next sync resumes"
                ) from exc
            raise
        finally:
            conn.close()
            self.result.seconds = time.perf_counter() - started
        return self.result

    def _register(self, conn: psycopg.Connection, role: str) -> None:
        """Register the local ledger before any of its rows (under access control a role writes only the rows
        of ledgers it registered): :class:`LedgerNotYours` if another role registered it, nothing written."""
        import psycopg

        try:
            with conn.transaction():
                conn.execute(
                    f"INSERT INTO {self.s}.ledgers (ledger_id, label, hostname) VALUES (%s, %s, %s) "
                    "ON CONFLICT (ledger_id) DO UPDATE SET label = EXCLUDED.label, hostname = "
                    "EXCLUDED.hostname",
                    (self.ledger_id, str(Path(self.ledger.path).name), socket.gethostname()),
                )
        except psycopg.errors.InsufficientPrivilege:
            raise LedgerNotYours(
                f"ledger {self.ledger_id} ({Path(self.ledger.path).name}) is registered on the team "
                f"ledger by another role, not {role}: sync it as that role, give this laptop a ledger of "
                f"its own, or ask an admin to hand it to you "
                f"(`llmcost team add-member {role} --team TEAM --ledger {self.ledger_id}`)"
            ) from None

    def _push_all(self, conn: psycopg.Connection) -> None:
        last_id, last_seq, last_scope = self.marks()
        if self.server_max_id < last_id:
            # The server lost rows it had acknowledged (restored from an older backup): push again from
            # where it now ends. A cheap check (an index lookup), so a no-op sync stays a few milliseconds.
            with self.ledger._lock:
                self.local.execute(
                    "UPDATE sync_targets SET last_call_id = ?, last_scope_rowid = 0 WHERE target = ?",
                    (self.server_max_id, self.target),
                )
            last_id, last_scope = self.server_max_id, 0
        (max_seq,) = self.local.execute("SELECT COALESCE(MAX(seq), 0) FROM sync_changes").fetchone()
        # Rows changed after they were pushed: their current state is read now, and changes logged after
        # max_seq are left for the next sync. Rows above last_id go out with the new rows below.
        ids = [
            r[0]
            for r in self.local.execute(
                "SELECT DISTINCT call_id FROM sync_changes WHERE seq > ? AND seq <= ? AND call_id <= ? "
                "ORDER BY 1",
                (last_seq, max_seq, last_id),
            )
        ]
        for start in range(0, len(ids), self.batch_size):
            chunk = ids[start : start + self.batch_size]
            rows = self.local.execute(
                _SELECT_CALLS + "WHERE c.id IN (SELECT value FROM json_each(?)) ORDER BY c.id", (str(chunk),)
            ).fetchall()
            self._push_calls(conn, rows)
        if max_seq > last_seq:
            self.advance("last_change_seq", max_seq)
            self._prune_changes()
        for rows in self._new_rows(last_id):
            self._push_calls(conn, rows)
            self.advance("last_call_id", rows[-1][0])
        self._push_scopes(conn, last_scope)

    def _new_rows(self, last_id: int) -> Iterator[list[tuple[Any, ...]]]:
        """Batches of rows above ``last_id``, read ahead on a thread of their own while PostgreSQL writes."""
        import queue
        import sqlite3
        import threading

        batches: queue.Queue[list[tuple[Any, ...]] | BaseException | None] = queue.Queue(maxsize=2)
        stop = threading.Event()

        def read() -> None:
            uri = f"{Path(self.ledger.path).resolve().as_uri()}?mode=ro"  # as_uri escapes spaces, ? and #
            conn = sqlite3.connect(uri, uri=True, timeout=10)
            try:
                after = last_id
                while not stop.is_set():
                    rows = conn.execute(
                        _SELECT_CALLS + "WHERE c.id > ? ORDER BY c.id LIMIT ?", (after, self.batch_size)
                    ).fetchall()
                    if not rows:
                        break
                    batches.put(rows)
                    after = rows[-1][0]
                batches.put(None)
            except BaseException as exc:
                batches.put(exc)
            finally:
                conn.close()

        reader = threading.Thread(target=read, name="llmcost-sync-reader", daemon=True)
        reader.start()
        try:
            while (item := batches.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            while reader.is_alive():  # unblock a reader waiting on a full queue
                with contextlib.suppress(queue.Empty):
                    batches.get(timeout=0.05)

    def _push_calls(self, conn: psycopg.Connection, rows: list[tuple[Any, ...]]) -> None:
        ledger_id, columns = self.ledger_id, ", ".join(PG_COLUMNS)
        if rows[0][0] > self.server_max_id and not self.rls:
            # Ids above the server's highest for this ledger cannot be there yet (we hold the ledger's lock):
            # COPY straight into the table, no staging or conflict check.
            copy_sql = f"COPY {self.s}.calls ({columns}) FROM STDIN"
            with conn.transaction(), conn.cursor() as cur, cur.copy(copy_sql) as copy:
                for row in rows:  # psycopg formats rows in C: ~3 µs each
                    copy.write_row((ledger_id, *row))
            self.server_max_id = rows[-1][0]
            self.result.inserted += len(rows)
            self._batch_done()
            return
        with conn.transaction(), conn.cursor() as cur:
            with cur.copy(f"COPY llmcost_stage ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row((ledger_id, *row))
            if rows[0][0] > self.server_max_id:  # new rows only (see above), row-level security on
                cur.execute(
                    f"INSERT INTO {self.s}.calls ({columns}) SELECT {columns} FROM llmcost_stage ORDER BY id"
                )
                inserted, updated = cur.rowcount, 0
            else:
                inserted, updated = cur.execute(_upsert_sql(self.s)).fetchone()  # type: ignore[misc]
        self.result.inserted += inserted
        self.result.updated += updated
        self.result.unchanged += len(rows) - inserted - updated
        self.server_max_id = max(self.server_max_id, rows[-1][0])
        self._batch_done()

    def _batch_done(self) -> None:
        self.result.batches += 1
        if self.progress is not None:
            self.progress(self.result)

    def _push_scopes(self, conn: psycopg.Connection, last_rowid: int) -> None:
        rows = self.local.execute(
            "SELECT s.rowid, s.id, s.kind, s.name, s.notebook, s.cell, s.session_id, s.started, "
            "COALESCE(t.tags, '{}') FROM scopes s LEFT JOIN tagsets t ON t.id = s.tagset_id "
            "WHERE s.rowid > ? "
            "ORDER BY s.rowid",
            (last_rowid,),
        ).fetchall()
        if not rows:
            return
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {self.s}.scopes (ledger_id, {', '.join(SCOPE_COLUMNS)}) "
                f"VALUES (%s, {', '.join(['%s'] * len(SCOPE_COLUMNS))}) ON CONFLICT (id) DO NOTHING",
                [(self.ledger_id, *row[1:]) for row in rows],
            )
        self.result.scopes += len(rows)
        self.advance("last_scope_rowid", rows[-1][0])

    def _prune_changes(self) -> None:
        """Forget change-log entries that every known target has pushed."""
        with self.ledger._lock:
            self.local.execute(
                "DELETE FROM sync_changes WHERE seq <= (SELECT MIN(last_change_seq) FROM sync_targets)"
            )


def sync(
    dsn: str,
    *,
    ledger: Ledger | str | Path | None = None,
    schema: str = DEFAULT_SCHEMA,
    batch_size: int = DEFAULT_BATCH,
    progress: Callable[[SyncResult], None] | None = None,
) -> SyncResult:
    """Push the local ledger's new and changed rows to the PostgreSQL team ledger at ``dsn``.

    Creates and migrates ``schema`` on first use. ``progress`` is called after each committed batch.
    Raises :class:`SyncError` when the server cannot be reached or goes away; nothing is lost, run it again.

    >>> sync("postgresql://me@db.internal/team", ledger="~/costs.db")   # doctest: +SKIP
    """
    from ..ledger.sqlite import Ledger
    from ..tracking.resolve import resolve_ledger

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    source = ledger if isinstance(ledger, str | os.PathLike) else resolve_ledger(ledger)
    if not isinstance(source, str | os.PathLike | Ledger) or (isinstance(source, str) and "://" in source):
        raise ValueError("ledger must be a local ledger (a SQLite file): the team ledger is the destination")
    # Its own SQLite connection: a long read never holds the lock that the notebook's writes take.
    local = Ledger(source.path if isinstance(source, Ledger) else source)
    try:
        return _Pusher(local, dsn, schema, batch_size, progress).run()
    finally:
        local.close()
