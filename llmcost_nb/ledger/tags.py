"""The ledger's tag sets: each distinct set of tags is stored once (``tagsets``, as order-independent JSON)
and indexed by key and value (``tags``), and a call's row refers to its set by id. Mixed into ``Ledger``,
whose connection, lock, transactions and per-process id cache (``_tagsets``) these methods use."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..core.call import Call

__all__ = ["TagSetMethods"]

Items = tuple[tuple[str, str], ...]  # a tag set as the cache's key: its items, in the order given


def _tags_key(tags: Mapping[str, str]) -> str:
    """A tag set as stored: JSON with sorted keys, so the same set in any order is one row."""
    return json.dumps(tags, sort_keys=True, ensure_ascii=False)


class TagSetMethods:
    _tagsets: dict[Items, int]
    connection: sqlite3.Connection
    _lock: Any
    _transaction: Any

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
        conn = self.connection
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
