"""The ledger's schema, as sqlite-utils migrations (each runs once, in a transaction).

Add a new ``@migrations()`` function at the end to change the schema; never edit an applied one.
"""

from __future__ import annotations

import uuid

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

__all__ = ["migrations"]

migrations = Migrations("llmcost_nb")


@migrations()
def m001_calls(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE IF NOT EXISTS calls (
            id INTEGER PRIMARY KEY,
            ts TEXT NOT NULL,                 -- UTC, ISO 8601 with microseconds and Z
            provider TEXT,
            api TEXT NOT NULL,
            model_requested TEXT,
            model TEXT,
            input_tokens INTEGER NOT NULL DEFAULT 0,    -- all input tokens, cached included
            output_tokens INTEGER NOT NULL DEFAULT 0,   -- all output tokens, reasoning included
            cache_read_tokens INTEGER NOT NULL DEFAULT 0,
            cache_write_tokens INTEGER NOT NULL DEFAULT 0,
            reasoning_tokens INTEGER NOT NULL DEFAULT 0,
            input_audio_tokens INTEGER NOT NULL DEFAULT 0,
            output_audio_tokens INTEGER NOT NULL DEFAULT 0,
            usage_extra TEXT,                 -- JSON of other genai-prices usage keys
            cost_pusd INTEGER,                -- exact cost in picodollars (1e-12 USD); NULL = not priced
            price_source TEXT,
            latency_ms REAL,
            status TEXT NOT NULL,             -- ok | error | unfinished
            http_status INTEGER,
            error TEXT,
            billed INTEGER NOT NULL,
            streamed INTEGER NOT NULL,
            request_id TEXT,
            host TEXT,
            service_tier TEXT,
            session_id TEXT,
            scope_id TEXT,
            attribution TEXT,
            tagset_id INTEGER
        );
        CREATE INDEX IF NOT EXISTS calls_ts ON calls(ts);
        CREATE INDEX IF NOT EXISTS calls_scope ON calls(scope_id);
        -- Tags are dictionary-encoded: each distinct tag set is stored once and indexed by key and value,
        -- so a filter or group by tag never scans JSON.
        CREATE TABLE IF NOT EXISTS tagsets (id INTEGER PRIMARY KEY, tags TEXT NOT NULL UNIQUE);
        CREATE TABLE IF NOT EXISTS tags (
            tagset_id INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
            PRIMARY KEY (tagset_id, key)
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS tags_key_value ON tags(key, value, tagset_id);
        CREATE TABLE IF NOT EXISTS prices (
            provider TEXT NOT NULL DEFAULT '', model TEXT NOT NULL,
            input_mtok TEXT NOT NULL, output_mtok TEXT NOT NULL,
            cache_read_mtok TEXT, cache_write_mtok TEXT, set_at TEXT NOT NULL,
            PRIMARY KEY (provider, model)
        );
        CREATE TABLE IF NOT EXISTS scopes (
            id TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT, notebook TEXT, cell INTEGER,
            session_id TEXT, started TEXT NOT NULL, tagset_id INTEGER
        );
        CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        """
    )
    db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('ledger_id', ?)", [uuid.uuid4().hex])

