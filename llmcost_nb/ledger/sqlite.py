"""The ledger: one SQLite file (WAL) holding a row per call attempt, exact costs and user price overrides.

>>> ledger = Ledger("costs.db")                    # doctest: +SKIP
>>> ledger.calls(model="gpt-4.1").cost_usd.sum()   # doctest: +SKIP

Writes go through one connection per ledger and process, guarded by a lock shared by every ``Ledger`` on
the file in the process (WAL + synchronous=NORMAL: a commit survives the process being killed). A captured
call is taped to the ledger's journal before it returns and committed in a batch soon after (:mod:`.journal`).
Each distinct set of tags is stored once and a row refers to it by id.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from itertools import compress
from operator import is_not
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.call import Call, from_pusd, now_iso, to_pusd
from ..core.columns import PRICING_COLUMNS, call_row, pricing_call
from ..core.columns import WRITE_COLUMNS as _COLUMNS
from ..core.columns import insert_sql as _insert_sql
from ..core.frames import rows_frame
from ..core.money import parse_usd
from ..core.times import parse_when
from ..pricing.pricer import price_call
from . import journal as _journal
from . import segment as _segment
from .connection import SCHEMA_VERSION, LedgerError, open_connection
from .filters import SQLITE, where
from .protocol import LedgerReader, backend_for

if TYPE_CHECKING:
    import pandas as pd

    from ..pricing.pricer import Pricer
    from .query import Query

__all__ = ["SCHEMA_VERSION", "Ledger", "LedgerError", "default_path", "open_ledger"]


_INSERT = _insert_sql(_COLUMNS)
_SPARSE_INSERTS: dict[tuple[bool, ...], str] = {}  # which columns a row has values for -> its INSERT
_NONES = (None,) * len(_COLUMNS)
_UPDATE = f"UPDATE calls SET {', '.join(c + ' = ?' for c in _COLUMNS)} WHERE id = ?"


def _insert(conn: sqlite3.Connection, params: tuple[Any, ...]) -> int:
    """Insert one row of ``_COLUMNS`` values; returns its id."""
    # Only the columns that have a value: the others are NULL by default, and binding a None costs
    # Python's sqlite3 about 1 µs (it looks for an adapter first), a quarter of a typical row's commit.
    present = tuple(map(is_not, params, _NONES))
    sql = _SPARSE_INSERTS.get(present)
    if sql is None:
        sql = _insert_sql(compress(_COLUMNS, present))
        if len(_SPARSE_INSERTS) < 256:  # a handful of shapes in practice; bounded all the same
            _SPARSE_INSERTS[present] = sql
    return conn.execute(sql, tuple(compress(params, present))).lastrowid  # type: ignore[return-value]


_SELF_HOSTED = "self-hosted:"  # meta key prefix of a host declared self-hosted (Ledger.self_hosted)
Items = tuple[tuple[str, str], ...]  # a tag set as the cache's key: its items, in the order given


def _tags_key(tags: Mapping[str, str]) -> str:
    """A tag set as stored: JSON with sorted keys, so the same set in any order is one row."""
    return json.dumps(tags, sort_keys=True, ensure_ascii=False)


def default_path() -> Path:
    """``$LLMCOST_DB`` if set, else ``$XDG_DATA_HOME/llmcost_nb/ledger.db`` (``~/.local/share/...``)."""
    if env := os.environ.get("LLMCOST_DB"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "llmcost_nb" / "ledger.db"


class Ledger(LedgerReader):
    """A cost ledger in a SQLite file; ``Ledger()`` opens the default one (see :func:`default_path`),
    making its folder on first use; ``Ledger(PATH)`` needs PATH's folder to exist, and refuses a SQLite file
    of another application (:class:`LedgerError`, nothing changed).
    ``Ledger("postgresql://…")`` opens the team ledger instead (a read-only ``PostgresLedger``, through the
    backend registered for that URL: :func:`~llmcost_nb.ledger.protocol.register_backend`)."""

    def __new__(cls, path: str | os.PathLike[str] | None = None, *args: Any, **kwargs: Any) -> Ledger:
        if cls is Ledger and (opener := backend_for(path)) is not None:
            return opener(path, *args, **kwargs)  # type: ignore[return-value]
        return super().__new__(cls)

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path).expanduser() if path is not None else default_path()
        self._default = path is None or self.path == default_path()  # only its folder is made when missing
        self._key = os.path.realpath(self.path)
        self._lock = _journal.lock_for(self._key)  # shared by every Ledger on this file in this process
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        self._tagsets: dict[Items, int] = {}
        self._pricer: Pricer | None = None
        self.connection  # open now, so a bad path or a corrupt file is reported here  # noqa: B018

    def __repr__(self) -> str:
        return f"Ledger({str(self.path)!r})"

    _insert_row = staticmethod(_insert)

    # -- connection -----------------------------------------------------------------------------------
    @property
    def connection(self) -> sqlite3.Connection:
        """This process's connection (reopened after a fork: SQLite connections must not cross one), with
        every call this process recorded in the ledger (pending rows are moved in first)."""
        conn = self._raw
        if (journal := _journal.pending_journal(self._key)) is not None:
            journal.flush()
        return conn

    @property
    def _raw(self) -> sqlite3.Connection:
        """The connection, pending rows left where they are."""
        if self._conn is None or self._pid != os.getpid():
            with self._lock:
                if self._conn is None or self._pid != os.getpid():
                    conn = open_connection(self.path, make_folder=self._default)
                    try:
                        self._replay_orphans(conn)
                    except Exception as exc:  # they stay where they are, for the next open
                        from ..core.warn import warn_once

                        warn_once(f"replay:{type(exc).__name__}", f"could not move the calls left pending "
                                  f"by an ended process into {self.path} ({exc}); they are kept and moved "
                                  "when the ledger is next opened")
                    self._conn, self._pid = conn, os.getpid()
                    self._tagsets.clear()
        return self._conn  # type: ignore[return-value]

    def close(self) -> None:
        self.flush()
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    # -- writing --------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _transaction(self, conn: sqlite3.Connection) -> Iterator[None]:
        """One write transaction, taken at once (BEGIN IMMEDIATE): committed, or rolled back on any error."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if conn.in_transaction:  # SQLite rolls back by itself on some errors (a full disk)
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    _params = staticmethod(call_row)  # the values of WRITE_COLUMNS for a call

    def write(self, call: Call) -> int:
        """Insert (or, when ``call.id`` is set, update) one call and commit; returns its id. A tag set new
        to this ledger is stored in the same transaction (one commit, not two)."""
        tags = call.tags
        items = tuple(tags.items()) if tags else ()
        tagset = self._tagsets.get(items) if tags else None
        conn = self.connection  # pending calls are committed first: ids stay in call order
        with self._lock:
            if tagset is not None or not tags:
                self._write_row(conn, call, tagset)
            else:
                with self._transaction(conn):
                    tagset = self._store_tagset(conn, tags)
                    self._write_row(conn, call, tagset)
                self._tagsets[items] = tagset
        return call.id  # type: ignore[return-value]

    def _write_row(self, conn: sqlite3.Connection, call: Call, tagset: int | None) -> None:
        params = self._params(call, tagset)
        if call.id is not None:
            conn.execute(_UPDATE, (*params, call.id))
            return
        call.id = _insert(conn, params)

    def write_many(self, calls: Iterable[Call]) -> int:
        """Insert many calls in one transaction (imports, bulk ``log``); returns how many."""
        with gc_paused():
            rows = [self._params(call, self.tagset_id(call.tags)) for call in calls]
        return self.insert_rows(_COLUMNS, rows)

    def insert_rows(self, columns: Iterable[str], rows: list[tuple[Any, ...]]) -> int:
        """Insert ``rows`` (values for ``columns`` of the calls table; the others take their defaults) in one
        transaction: all of them or, on an error, none. Returns how many."""
        sql = _insert_sql(columns)
        conn = self.connection
        with self._lock, self._transaction(conn):
            conn.executemany(sql, rows)
        return len(rows)

    # -- tag sets: each distinct set stored once (``tagsets``, order-independent JSON), indexed by key and
    # value (``tags``); a call's row refers to its set by id ------------------------------------------
    def tagset_id(self, tags: Mapping[str, str] | None) -> int | None:
        """The id of this tag set, stored once per distinct set."""
        if not tags:
            return None
        items = tuple(tags.items())  # the cheap cache key; the stored key is order-independent JSON
        if (found := self._tagsets.get(items)) is not None:
            return found
        conn = self.connection
        with self._lock:
            row = conn.execute("SELECT id FROM tagsets WHERE tags = ?", (_tags_key(tags),)).fetchone()
            if row is not None:
                found = row[0]
            else:
                with self._transaction(conn):
                    found = self._store_tagset(conn, tags)
            self._tagsets[items] = found
        return found

    def store_tagsets(self, tag_sets: Iterable[Mapping[str, str]]) -> None:
        """Store many tag sets ahead of the calls that will carry them (an A/B grid's cells), in one commit:
        each of those calls is then written with a single statement."""
        new = self._uncached((tuple(tags.items()), tags) for tags in tag_sets)
        if not new:
            return
        conn = self.connection
        with self._lock:
            with self._transaction(conn):
                stored = self._store_tagsets(conn, new)
            self._tagsets.update(stored)

    def retag(self, changes: Iterable[tuple[Call, Mapping[str, str]]]) -> None:
        """Give written calls new tags (``call.tags`` too), changing nothing else: one commit for all."""
        planned = [(call, tags, tuple(tags.items())) for call, tags in changes]
        new = self._uncached((items, tags) for _, tags, items in planned)
        conn = self.connection  # first: it commits pending rows, so the calls' ids below are set
        with self._lock:
            with self._transaction(conn):
                stored = self._store_tagsets(conn, new) if new else {}
                conn.executemany("UPDATE calls SET tagset_id = ? WHERE id = ?", [
                    ((self._tagsets.get(items) or stored[items]) if tags else None, call.id)
                    for call, tags, items in planned])
            self._tagsets.update(stored)  # only once committed
        for call, tags, _ in planned:
            call.tags = dict(tags)

    def _uncached(self, sets: Iterable[tuple[Items, Mapping[str, str]]]) -> dict[Items, Mapping[str, str]]:
        """The non-empty tag sets among ``sets`` whose id this process has not cached yet."""
        return {items: tags for items, tags in sets if tags and items not in self._tagsets}

    def _store_tagset(self, conn: sqlite3.Connection, tags: Mapping[str, str]) -> int:
        """Inside a write transaction: the id of ``tags``, stored if new."""
        items = tuple(tags.items())
        return self._store_tagsets(conn, {items: tags})[items]

    @staticmethod
    def _store_tagsets(conn: sqlite3.Connection, new: Mapping[Items, Mapping[str, str]]) -> dict[Items, int]:
        """Inside a write transaction (so no other writer can come between): the ids of these tag sets
        (keyed like ``new``), the new ones stored, in three statements for any number of sets (an A/B grid
        stores one per cell, and one more per scored call)."""
        keys = {items: _tags_key(tags) for items, tags in new.items()}
        conn.executemany("INSERT OR IGNORE INTO tagsets (tags) VALUES (?)", [(k,) for k in keys.values()])
        ids = dict(conn.execute("SELECT tags, id FROM tagsets WHERE tags IN (SELECT value FROM json_each(?))",
                                (json.dumps(list(keys.values())),)))
        found = {items: ids[key] for items, key in keys.items()}
        rows = [(found[items], str(k), str(v)) for items, tags in new.items() for k, v in tags.items()]
        conn.executemany("INSERT OR IGNORE INTO tags (tagset_id, key, value) VALUES (?, ?, ?)", rows)
        return found

    # -- the journal (see :mod:`.journal`) -------------------------------------------------------------
    def journal(self, hooks: _journal.JournalHooks | None = None) -> _journal.Journal | None:
        """This process's journal for this ledger (None where there can be none: no flock); ``hooks`` are
        told about the calls made from what is taped to it (the recorder's)."""
        return _journal.journal_for(self._key, self.path, self, hooks)

    def commit_pending(self, calls: list[Call], segments: list[str], forget: list[str]) -> list[int]:
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
        self._conn, self._pid = conn, os.getpid()  # pricing and tag sets use the connection being opened
        for segment, fd in orphans:
            try:  # holding its lock: a note in meta can only be from its owner, who died after committing it
                key = f"pending:{segment.name}"
                if conn.execute("SELECT 1 FROM meta WHERE key = ?", (key,)).fetchone() is None:
                    pricer = self.pricer  # no scope or session: their process is gone
                    calls = [_journal.call_from_exchange(pricer, x) for x in _segment.read_exchanges(segment)]
                    self.commit_pending(calls, [segment.name], [])
                segment.unlink(missing_ok=True)
                conn.execute("DELETE FROM meta WHERE key = ?", (key,))
            finally:
                os.close(fd)

    def flush(self) -> None:
        """Write the calls this process captured into this ledger now (reads do this themselves, and a
        background thread within 0.1 s); retries at once a write that failed before."""
        if (journal := _journal.pending_journal(self._key)) is not None:
            journal.flush(force=True)

    # -- pricing --------------------------------------------------------------------------------------
    @property
    def pricer(self) -> Pricer:
        """The pricer for this ledger: genai-prices plus the price overrides stored here."""
        if self._pricer is None:
            from ..pricing.pricer import Price, Pricer

            conn = self.connection
            with self._lock:  # the connection is shared: threads pricing their first call at once each read
                if self._pricer is not None:  # (a row read while another thread used it came back empty)
                    return self._pricer
                rows = conn.execute(
                    "SELECT provider, model, input_mtok, output_mtok, cache_read_mtok, cache_write_mtok "
                    "FROM prices"
                ).fetchall()
                overrides = {
                    (provider, model): Price(*(Decimal(v) if v is not None else None for v in prices))
                    for provider, model, *prices in rows
                }
                hosts = [key[len(_SELF_HOSTED):] for (key,) in conn.execute(
                    "SELECT key FROM meta WHERE key LIKE ?", (_SELF_HOSTED + "%",))]
                self._pricer = Pricer(overrides, hosts)
        return self._pricer

    def self_hosted(self, base_url: str) -> str:
        """Declare ``base_url``'s host (``"http://127.0.0.1:8000/v1"``, ``"gpu-box"``; the port is not
        part of it) your own server, from now on in this ledger: calls to it cost $0, ``price_source``
        ``"self-hosted"``, instead of being left unpriced. Returns the host. ``Ledger().reprice()`` prices
        the earlier ones."""
        from ..pricing.providers import host_of

        host = host_of(base_url)  # a TypeError / ValueError before anything is written
        with self._lock:
            self.connection.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                                    (_SELF_HOSTED + host, now_iso()))
            self.pricer.set_self_hosted(host)
        return host

    def price(self, call: Call, when: datetime | None = None) -> Call:
        """Fill ``call.cost`` and ``call.price_source`` (left empty for an unknown model) with this ledger's
        prices: :func:`~llmcost_nb.pricing.price_call`. ``when`` is ``call.ts`` as a datetime, when the
        caller has it already."""
        price_call(self.pricer, call, when)
        return call

    def set_price(
        self,
        model: str,
        *,
        input_mtok: Decimal | str | float,
        output_mtok: Decimal | str | float,
        cache_read_mtok: Decimal | str | float | None = None,
        cache_write_mtok: Decimal | str | float | None = None,
        provider: str | None = None,
    ) -> None:
        """Store a price override (USD per million tokens) that wins over genai-prices from now on."""
        from ..pricing.pricer import Price

        if not isinstance(model, str):
            raise TypeError(f"model must be the model's name as a str, got {type(model).__name__} {model!r}")
        if not model.strip():
            raise ValueError("model must be a non-empty name, got ''")
        if provider is not None and not isinstance(provider, str):
            raise TypeError(f"provider must be a genai-prices provider id (str) or None, got {provider!r}")

        def dec(value: Decimal | str | float | None) -> Decimal | None:
            if value is None:
                return None
            return parse_usd(value, "prices", rule="finite and non-negative", invalid="numbers")

        price = Price(dec(input_mtok), dec(output_mtok), dec(cache_read_mtok), dec(cache_write_mtok))  # type: ignore[arg-type]
        with self._lock:
            self.connection.execute(
                "INSERT OR REPLACE INTO prices VALUES (?, ?, ?, ?, ?, ?, ?)",
                (provider or "", model, *(None if p is None else str(p) for p in (
                    price.input_mtok, price.output_mtok, price.cache_read_mtok, price.cache_write_mtok)),
                 now_iso()),
            )
            self.pricer.set_override(model, price, provider)

    def reprice(self, *, all: bool = False) -> int:
        """Price the billed rows that have no cost yet (or every billed row with ``all=True``); returns the
        number of rows whose cost changed. A row whose usage could not be read (``usage_source ==
        "unknown"``) stays unpriced."""
        conn = self.connection
        where = "billed = 1" + ("" if all else " AND cost_pusd IS NULL")
        rows = conn.execute(
            f"SELECT id, cost_pusd, {', '.join(PRICING_COLUMNS)} FROM calls WHERE {where}"
        ).fetchall()
        updates = []
        for call_id, old, *values in rows:
            call = pricing_call(values)
            self.price(call)
            if to_pusd(call.cost) != old:
                updates.append((to_pusd(call.cost), call.price_source, call_id))
        with self._lock, self._transaction(conn):
            conn.executemany("UPDATE calls SET cost_pusd = ?, price_source = ? WHERE id = ?", updates)
        return len(updates)

    # -- reading --------------------------------------------------------------------------------------
    def _where(self, filters: Mapping[str, Any]) -> tuple[str, list[Any]]:
        return where(filters, SQLITE)

    def calls(self, **filters: Any) -> pd.DataFrame:
        """The calls matching ``filters`` (provider, model, api, status, billed, session_id, scope_id, since,
        until, tags={key: value}) as a DataFrame; ``cost_usd`` holds exact Decimals, ``tags`` dicts."""
        where, params = self._where(filters)
        sql = (
            "SELECT c.*, t.tags AS tags_json FROM calls c LEFT JOIN tagsets t ON t.id = c.tagset_id"
            + where.replace("tagset_id IN", "c.tagset_id IN")
            + " ORDER BY c.id"
        )
        with self._lock:
            cursor = self.connection.execute(sql, params)
            columns = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
        return rows_frame(rows, columns)

    def total_cost(self, **filters: Any) -> Decimal:
        """Exact total cost of the matching calls."""
        where, params = self._where(filters)
        with self._lock:
            (pusd,) = self.connection.execute(f"SELECT COALESCE(SUM(cost_pusd), 0) FROM calls{where}",
                                              params).fetchone()
        return from_pusd(pusd)  # type: ignore[return-value]

    def count(self, **filters: Any) -> int:
        where, params = self._where(filters)
        with self._lock:
            return self.connection.execute(f"SELECT COUNT(*) FROM calls{where}", params).fetchone()[0]

    # -- checking -------------------------------------------------------------------------------------
    def check(self, *, reprice: bool = True) -> Any:
        """Schema version, SQLite integrity, plausible rows, stored costs equal to re-pricing: a
        :class:`~llmcost_nb.ledger.CheckReport` (``.ok``, ``.problems`` in words). ``llmcost check``
        too."""
        from .integrity import check_file

        return check_file(self, open_ledger=Ledger, reprice=reprice)

    # -- the read protocol (LedgerReader): aggregates and filter choices ---------------------------------
    def aggregate(self, query: Query, *, force_raw: bool = False) -> list[tuple[Any, ...]]:
        """See :meth:`LedgerReader.aggregate`: from the rollups, kept current first, when they can answer
        (raw rows otherwise, or with ``force_raw``; a read-only file that cannot bring its rollups up to date
        reads raw rows too)."""
        from . import rollups

        planned = rollups.plan(query, force_raw=force_raw)
        conn = self.connection
        try:
            with self._lock:
                return rollups.aggregate(conn, planned)
        except sqlite3.OperationalError as exc:
            if planned.path == "raw" or "readonly" not in str(exc):
                raise
        with self._lock:
            return rollups.aggregate(conn, rollups.plan(query, force_raw=True))

    def runaway_scopes(self, factor: float, min_calls: int) -> tuple[float | None, list[tuple[Any, ...]]]:
        """See :meth:`LedgerReader.runaway_scopes`: from the scope rollup, kept current first."""
        import statistics

        from .rollups import scope_rows

        conn = self.connection
        with self._lock:
            rows = scope_rows(conn)
        if not rows:
            return None, []
        median = statistics.median(row[1] for row in rows)
        limit = max(min_calls, factor * median)
        found = []
        for scope_id, n, pusd, first, last, *_ in rows:
            if n < limit:
                continue
            with self._lock:
                info = conn.execute(
                    "SELECT kind, name, notebook, cell FROM scopes WHERE id = ?", (scope_id,)
                ).fetchone()
            found.append((scope_id, n, first, last, pusd, info))
        return median, found

    def daily_totals(self, start: str, end: str, providers: Iterable[str], key_tag: str | None
                     ) -> list[tuple[Any, ...]]:
        """See :meth:`LedgerReader.daily_totals`."""
        providers = sorted(providers)
        params: list[Any] = []
        join, key_sql = "", "NULL"
        if key_tag:
            join, key_sql = " LEFT JOIN tags k ON k.tagset_id = c.tagset_id AND k.key = ?", "k.value"
            params.append(key_tag)
        where = "c.billed = 1 AND c.ts >= ? AND c.ts < ?"
        params += [start, end]
        if providers:
            where += f" AND c.provider IN ({', '.join('?' * len(providers))})"
            params += providers
        sql = (
            f"SELECT substr(c.ts, 1, 10), COALESCE(c.model, c.model_requested), {key_sql}, COUNT(*), "
            "SUM(c.input_tokens), SUM(c.output_tokens), SUM(c.cache_read_tokens), SUM(c.cost_pusd), "
            f"SUM(c.cost_pusd IS NULL) FROM calls c{join} WHERE {where} GROUP BY 1, 2, 3"
        )
        conn = self.connection
        with self._lock:
            return conn.execute(sql, params).fetchall()

    def time_span(self) -> tuple[str | None, str | None]:
        """The first and the last call's timestamps (``"2026-11-20T08:00:01.000000Z"``), ``(None, None)``
        when the ledger is empty; from the timestamp index."""
        conn = self.connection
        with self._lock:
            first, last = conn.execute("SELECT MIN(ts), MAX(ts) FROM calls").fetchone()
        return first, last

    def tag_keys(self) -> list[str]:
        """Every tag key, sorted."""
        conn = self.connection
        with self._lock:
            rows = conn.execute("SELECT DISTINCT key FROM tags ORDER BY key").fetchall()
        return [r[0] for r in rows]

    def tag_values(self, key: str) -> list[str]:
        """Every value of tag ``key``, sorted (empty for an unknown key)."""
        conn = self.connection
        with self._lock:
            rows = conn.execute("SELECT DISTINCT value FROM tags WHERE key = ? ORDER BY value",
                                (key,)).fetchall()
        return [r[0] for r in rows]

    def distinct(self, column: str) -> list[str]:
        """The non-empty values of a calls column, sorted: ``model``, ``provider``, ``status`` (from the
        daily rollup, kept current first), or ``api``, ``host``, ``service_tier``, ``session_id``,
        ``attribution``."""
        from .query import ROLLUP_COLUMNS, check_column
        from .rollups import refresh

        check_column(column)
        raw = f"SELECT DISTINCT {column} FROM calls ORDER BY 1"
        conn = self.connection
        with self._lock:
            if column in ROLLUP_COLUMNS:
                try:
                    refresh(conn)
                    sql = f"SELECT DISTINCT {column} FROM rollup_daym ORDER BY 1"
                except sqlite3.OperationalError as exc:  # read-only: its rollups cannot be brought up to date
                    if "readonly" not in str(exc):
                        raise
                    sql = raw
            else:
                sql = raw
            rows = conn.execute(sql).fetchall()
        return [r[0] for r in rows if r[0]]

    # -- live views (the JupyterLab server extension): small reads, never a scan of the whole ledger ---------
    def data_version(self) -> int:
        """A number that changes whenever another connection (another process: a kernel, a script) commits
        to the file, so a reader can keep an answer until it does (SQLite's ``PRAGMA data_version``)."""
        conn = self._raw  # not .connection: this process's pending rows are not a change to wait for
        with self._lock:
            return conn.execute("PRAGMA data_version").fetchone()[0]

    def notebook_sessions(self, notebooks: Iterable[str]
                          ) -> list[tuple[str, str | None, int, int, str, str, int, int]]:
        """The tracking sessions (kernel processes) that recorded cells in each of ``notebooks`` (paths as
        the kernel saw them: ``__session__`` / ``JPY_SESSION_NAME``), from the notebook rollup (a lookup per
        notebook, however many cells it ran): notebook, session id, calls and picodollars of its tracked
        cells, first and last call's timestamps, and how many of the calls are unpriced (billed, no cost: the
        picodollars leave them out) and estimated (tokens counted by us); by notebook, then oldest first.
        Cells only: a session's calls outside any scope carry no notebook."""
        paths = sorted(set(notebooks))
        if not paths:
            return []
        from .rollups import refresh

        marks = ", ".join("?" * len(paths))
        rolled = ("SELECT notebook, NULLIF(session_id, ''), n, cost_pusd, first_ts, last_ts, unpriced, "
                  f"estimated FROM rollup_notebook WHERE notebook IN ({marks}) ORDER BY notebook, first_ts")
        raw = ("SELECT s.notebook, s.session_id, COUNT(*), COALESCE(SUM(c.cost_pusd), 0), MIN(c.ts), "
               "MAX(c.ts), SUM(c.billed = 1 AND c.cost_pusd IS NULL), SUM(c.usage_source = 'estimated') "
               f"FROM calls c JOIN scopes s ON s.id = c.scope_id WHERE s.notebook IN ({marks}) "
               "GROUP BY s.notebook, s.session_id ORDER BY s.notebook, 5")
        conn = self.connection
        with self._lock:
            try:
                refresh(conn)
                sql = rolled
            except sqlite3.OperationalError as exc:  # a read-only file cannot bring its rollups up to date
                if "readonly" not in str(exc):
                    raise
                sql = raw
            return conn.execute(sql, paths).fetchall()

    def latest_calls(self, limit: int = 20, *, session_id: str | None = None, since: Any = None,
                     until: Any = None, tracked: bool = False) -> list[dict[str, Any]]:
        """The last ``limit`` calls (of one session, from ``since`` on and before ``until``, only those of
        tracked scopes), newest first, read backwards along the timestamp index (give ``since`` and
        ``until`` with a session: they bound the read; without ``until`` it starts at the newest call of
        the ledger), as dicts: ``id``, ``ts``, ``provider``,
        ``model``, ``status``, the five token counts, ``cost`` (exact Decimal, ``None`` when unpriced),
        ``latency_ms``, ``billed`` (bool), ``usage_source``, ``notebook`` and ``cell`` (of the call's scope)
        and ``tags``."""
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            raise ValueError(f"limit must be a non-negative integer, got {limit!r}")
        conds, params = [], []
        if session_id is not None:
            conds.append("c.session_id = ?")
            params.append(session_id)
        if since is not None:
            conds.append("c.ts >= ?")
            params.append(parse_when(since))
        if until is not None:
            conds.append("c.ts < ?")
            params.append(parse_when(until))
        if tracked:
            conds.append("c.scope_id IS NOT NULL")
        sql = (
            "SELECT c.id, c.ts, c.provider, COALESCE(c.model, c.model_requested), c.status, c.input_tokens, "
            "c.output_tokens, c.cache_read_tokens, c.cache_write_tokens, c.reasoning_tokens, c.cost_pusd, "
            "c.latency_ms, c.billed, c.usage_source, s.notebook, s.cell, t.tags FROM calls c "
            "LEFT JOIN scopes s ON s.id = c.scope_id "
            "LEFT JOIN tagsets t ON t.id = c.tagset_id"
            + (" WHERE " + " AND ".join(conds) if conds else "")
            + " ORDER BY c.ts DESC, c.id DESC LIMIT ?"
        )
        conn = self.connection
        with self._lock:
            rows = conn.execute(sql, [*params, limit]).fetchall()
        names = ("id", "ts", "provider", "model", "status", "input_tokens", "output_tokens",
                 "cache_read_tokens", "cache_write_tokens", "reasoning_tokens", "cost", "latency_ms",
                 "billed", "usage_source", "notebook", "cell", "tags")
        found = []
        for row in rows:
            call = dict(zip(names, row, strict=True))
            call["cost"] = from_pusd(call["cost"])
            call["billed"] = bool(call["billed"])
            call["tags"] = json.loads(call["tags"]) if call["tags"] else {}
            found.append(call)
        return found

    def stored_budget(self, scope: str) -> Decimal | None:
        """A budget set with llmcost_nb.budget for ``scope`` (``day`` / ``month``), if that table exists."""
        conn = self.connection
        try:
            with self._lock:
                row = conn.execute("SELECT limit_usd FROM budgets WHERE scope = ?", (scope,)).fetchone()
        except sqlite3.OperationalError:
            return None
        return Decimal(row[0]) if row else None


def open_ledger(target: LedgerReader | str | os.PathLike[str]) -> LedgerReader:
    """``target`` itself if it is a ledger (local or team), else the ledger at that path or URL
    (``Ledger(target)``)."""
    if isinstance(target, LedgerReader):
        return target
    if isinstance(target, str | os.PathLike):
        return Ledger(target)
    raise TypeError(f"expected a ledger, a path or a postgresql:// URL, got {type(target).__name__}")


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cycle collector while building many rows: they hold no reference cycles, and each
    collection would scan the whole growing list again (about 15% of a large import)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
