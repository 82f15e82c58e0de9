"""Opening a ledger file: WAL mode and the current schema, set up once however many processes open a new
file at the same moment, and a clear :class:`LedgerError` (never a traceback) for a file that cannot serve.

An up-to-date ledger opens with three PRAGMAs; only a new or older one imports sqlite-utils to migrate
(sqlite-utils imports pandas and numpy when they are installed: about 0.6 s, once per new ledger)."""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path

from ..errors import LedgerError

__all__ = ["BUSY_TIMEOUT_MS", "SCHEMA_VERSION", "LedgerError", "open_connection"]

BUSY_TIMEOUT_MS = 10_000
# The number of migrations in migrations.py (a test keeps them equal); kept here so opening an up-to-date
# ledger never imports sqlite-utils.
SCHEMA_VERSION = 10


def open_connection(path: Path, *, make_folder: bool = False) -> sqlite3.Connection:
    """A connection to the ledger at ``path`` (created if missing), in WAL mode at the current schema.

    Its folder must exist, unless ``make_folder`` (the default ledger's location, made on first use). A
    SQLite file of another application (tables, none of them ``calls``) is refused untouched."""
    if not path.parent.is_dir():
        if not make_folder:
            raise LedgerError(
                f"cannot open the ledger at {path}: the folder {path.parent} does not exist. Nothing was "
                "created: make the folder first, or choose another path (LLMCOST_DB, Ledger(PATH))."
            )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LedgerError(f"cannot make the ledger's folder {path.parent}: {exc}. Choose another path "
                              "with LLMCOST_DB, %llmcost db PATH or Ledger(PATH).") from None
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        conn = _connect(path)
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if not _is_ready(conn):
                _refuse_foreign(path, conn, setting_up=True)  # before a lock file is made beside a foreign db
                _set_up_once(path, conn)
            conn.execute("PRAGMA synchronous = NORMAL")
            return conn
        except sqlite3.OperationalError as exc:
            conn.close()
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise LedgerError(_unusable(path, exc)) from None
            if time.monotonic() < deadline:
                # SQLite answers "locked" at once, without waiting, where waiting could deadlock (switching
                # to WAL while another connection holds a write lock, a reader upgrading to a writer). What
                # was set up so far holds; the rest is tried again, shortly, until the busy timeout.
                time.sleep(random.uniform(0.005, 0.05))
                continue
            raise LedgerError(
                f"the ledger at {path} stayed locked by another process for {BUSY_TIMEOUT_MS // 1000} s. "
                "Nothing was changed: try again when that process has finished, or point LLMCOST_DB at "
                "another path."
            ) from None
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise LedgerError(_unusable(path, exc)) from None
        except OSError as exc:  # the set-up lock file next to the ledger (a read-only folder)
            conn.close()
            raise LedgerError(
                f"cannot set up the ledger at {path}: {exc}. Nothing was changed: make its folder writable "
                "once, or point LLMCOST_DB at another path."
            ) from None


def _connect(path: Path) -> sqlite3.Connection:
    try:
        return sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
    except (OSError, sqlite3.Error) as exc:
        raise LedgerError(
            f"cannot open the ledger at {path}: {exc}. Choose another path with LLMCOST_DB, "
            "%llmcost db PATH or Ledger(PATH)."
        ) from None


def _refuse_foreign(path: Path, conn: sqlite3.Connection, *, setting_up: bool = False) -> None:
    """Raise LedgerError if ``path`` holds another application's tables: an llmcost_nb ledger has a
    ``calls`` table from its first migration on; a new (empty) file has no table at all. ``setting_up``:
    outside the set-up lock, where another process may be creating this ledger right now (sqlite-utils'
    ``_sqlite_migrations`` table then exists before ``calls`` does): that table alone is not foreign."""
    tables = sorted(row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"))
    if setting_up and tables == ["_sqlite_migrations"]:
        return
    if tables and "calls" not in tables:
        conn.close()
        shown = ", ".join(tables[:5]) + (f" and {len(tables) - 5} more" if len(tables) > 5 else "")
        raise LedgerError(
            f"{path} is not an llmcost_nb ledger: it is a SQLite database of another application (tables "
            f"{shown}). Nothing was changed: choose another path for the ledger (LLMCOST_DB, Ledger(PATH))."
        )


def _unusable(path: Path, exc: Exception) -> str:
    return (f"{path} is not a usable llmcost_nb ledger ({exc}). Nothing was changed: move the file aside "
            "(or run `llmcost check`), or point LLMCOST_DB at another path.")


def _is_ready(conn: sqlite3.Connection) -> bool:
    """In WAL mode and at the current schema: plain reads, which wait politely for any writer."""
    return (conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            and conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION)


def _set_up_once(path: Path, conn: sqlite3.Connection) -> None:
    """Switch to WAL and migrate under a lock file next to the ledger, one process at a time. Processes
    opening a new ledger at the same moment would otherwise race: two connections switching the journal
    mode can deadlock, and SQLite then answers "database is locked" at once, without waiting; and
    sqlite-utils' executescript commits mid-migration, so a migration could be applied twice."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; set up unguarded
        fcntl = None  # type: ignore[assignment]
    with open(path.with_name(path.name + "-migrate.lock"), "a") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        _refuse_foreign(path, conn)  # checked again once no other process is setting the ledger up
        conn.execute("PRAGMA journal_mode = WAL")
        if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:  # another process did it?
            _migrate(conn)


def _migrate(conn: sqlite3.Connection) -> None:
    from sqlite_utils import Database

    from .migrations import migrations

    db = Database(conn)
    if migrations.pending(db):
        migrations.apply(db)
    conn.execute(f"PRAGMA user_version = {len(migrations._migrations)}")
