"""The ledger's schema, as sqlite-utils migrations (each runs once, in a transaction).

Add a new ``@migrations()`` function at the end to change the schema; never edit an applied one.
"""

from __future__ import annotations

import uuid

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

__all__ = ["migrations"]

migrations = Migrations("llmcost_nb")

_ROLLED = "COALESCE((SELECT last_id FROM rollup_state WHERE name = 'calls'), 0)"


def _delta_triggers(cols: str, *, if_not_exists: bool) -> str:
    """The triggers that log an update or delete of an already rolled-up row into rollup_delta: the old
    row with sign -1, the new one with +1 (``cols``: the calls columns rollup_delta keeps)."""
    old = ", ".join(f"OLD.{c.strip()}" for c in cols.split(","))
    new = ", ".join(f"NEW.{c.strip()}" for c in cols.split(","))
    guard = "IF NOT EXISTS " if if_not_exists else ""
    return f"""
        CREATE TRIGGER {guard}calls_rollup_updated AFTER UPDATE ON calls WHEN OLD.id <= {_ROLLED}
        BEGIN
            INSERT INTO rollup_delta (sign, {cols}) VALUES (-1, {old}), (1, {new});
        END;
        CREATE TRIGGER {guard}calls_rollup_deleted AFTER DELETE ON calls WHEN OLD.id <= {_ROLLED}
        BEGIN
            INSERT INTO rollup_delta (sign, {cols}) VALUES (-1, {old});
        END;
"""


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
        CREATE INDEX IF NOT EXISTS calls_scope ON calls(scope_id) WHERE scope_id IS NOT NULL;
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



@migrations()
def m002_sync_outbox(db: Database) -> None:
    # The ledger is the outbox of team sinks (llmcost_nb.sinks.postgres). New rows are found by id; rows
    # changed after they were pushed (a stream finished later, a reprice) are logged here by a trigger.
    # Each sync target keeps its own high-water marks, so several targets can read the same outbox.
    db.executescript(
        """
        CREATE TABLE IF NOT EXISTS sync_changes (
            seq INTEGER PRIMARY KEY AUTOINCREMENT, call_id INTEGER NOT NULL
        );
        CREATE TRIGGER IF NOT EXISTS calls_sync_changed AFTER UPDATE ON calls
        BEGIN
            INSERT INTO sync_changes (call_id) VALUES (NEW.id);
        END;
        CREATE TABLE IF NOT EXISTS sync_targets (
            target TEXT PRIMARY KEY,          -- sha256 of the target's DSN without password
            label TEXT NOT NULL,              -- the DSN without password, for people
            last_call_id INTEGER NOT NULL DEFAULT 0,
            last_change_seq INTEGER NOT NULL DEFAULT 0,
            last_scope_rowid INTEGER NOT NULL DEFAULT 0,
            last_sync TEXT
        );
        """
    )


@migrations()
def m003_budgets_and_estimates(db: Database) -> None:
    # Budgets (llmcost_nb.budget) persist with the ledger; a call keeps the input tokens estimated before it
    # was sent (llmcost_nb.estimate), so estimates can be checked against what the provider counted.
    db.executescript(
        """
        CREATE TABLE IF NOT EXISTS budgets (
            scope TEXT PRIMARY KEY,           -- session | day | month | notebook:<path> | tag:<key>=<value>
            limit_usd TEXT NOT NULL,          -- exact Decimal text
            hard INTEGER NOT NULL DEFAULT 0,  -- 1: stop a request before it is sent if it could pass it
            thresholds TEXT NOT NULL,         -- JSON list of alert fractions (Decimal text): ["0.8", "1"]
            set_at TEXT NOT NULL
        );
        ALTER TABLE calls ADD COLUMN estimated_input_tokens INTEGER;
        """
    )


@migrations()
def m004_rollups(db: Database) -> None:
    # Pre-aggregated rollups for llmcost_nb.analysis (a GROUP BY over 1M raw rows takes ~850 ms; over
    # these, a few ms). They are brought up to date lazily, before each query, from rows with
    # id > rollup_state.last_id: the insert path stays trigger-free. The rare UPDATE or DELETE of an already
    # rolled-up row (a stream first recorded unfinished, a reprice) logs the old row (sign -1) and the new
    # one (+1) into rollup_delta.
    # Keys are NOT NULL ('' / 0 for none) so upserts match; h00..h15 count latencies in 32 log-spaced buckets,
    # two per column (bucket 2j in the low 32 bits, 2j+1 in the high ones: half the columns to sum).
    hist = ", ".join(f"h{k:02d} INTEGER NOT NULL DEFAULT 0" for k in range(16))
    measures = (
        "n INTEGER NOT NULL, errors INTEGER NOT NULL, input_tokens INTEGER NOT NULL, "
        "output_tokens INTEGER NOT NULL, "
        "cache_read_tokens INTEGER NOT NULL, cache_write_tokens INTEGER NOT NULL, "
        "reasoning_tokens INTEGER NOT NULL, cost_pusd INTEGER NOT NULL, unpriced INTEGER NOT NULL, "
        f"lat_n INTEGER NOT NULL, lat_us INTEGER NOT NULL, {hist}"
    )
    delta_cols = (
        "ts, provider, model, status, tagset_id, input_tokens, output_tokens, cache_read_tokens, "
        "cache_write_tokens, reasoning_tokens, cost_pusd, billed, latency_ms"
    )
    db.executescript(
        f"""
        CREATE TABLE IF NOT EXISTS rollup_day (
            day TEXT NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL, status TEXT NOT NULL,
            tagset_id INTEGER NOT NULL, {measures},
            PRIMARY KEY (day, provider, model, status, tagset_id)
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS rollup_dayt (
            day TEXT NOT NULL, tagset_id INTEGER NOT NULL, {measures}, PRIMARY KEY (day, tagset_id)
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS rollup_daym (
            day TEXT NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL, status TEXT NOT NULL, {measures},
            PRIMARY KEY (day, provider, model, status)
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS rollup_hour (
            hour TEXT NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL, status TEXT NOT NULL, {measures},
            PRIMARY KEY (hour, provider, model, status)
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS rollup_state (name TEXT PRIMARY KEY, last_id INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS rollup_delta (
            seq INTEGER PRIMARY KEY, sign INTEGER NOT NULL, ts TEXT NOT NULL, provider TEXT, model TEXT,
            status TEXT NOT NULL, tagset_id INTEGER, input_tokens INTEGER, output_tokens INTEGER,
            cache_read_tokens INTEGER, cache_write_tokens INTEGER, reasoning_tokens INTEGER,
            cost_pusd INTEGER, billed INTEGER, latency_ms REAL
        );
        """
        + _delta_triggers(delta_cols, if_not_exists=True)
    )


@migrations()
def m005_replay(db: Database) -> None:
    # A call served from a recording (llmcost_nb.replay) costs $0 and is not billed; saved_pusd is what it
    # would have cost, in picodollars.
    db.executescript(
        """
        ALTER TABLE calls ADD COLUMN replayed INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE calls ADD COLUMN saved_pusd INTEGER;
        """
    )


@migrations()
def m006_call_content(db: Database) -> None:
    # Prompt and response text, only for sessions that opted in (llmcost_nb.content), after redaction.
    db.executescript(
        """
        CREATE TABLE IF NOT EXISTS call_content (
            call_id INTEGER PRIMARY KEY,      -- calls.id
            request TEXT,                     -- the request's JSON body, redacted
            response TEXT                     -- the response body (JSON or SSE text), redacted
        );
        """
    )


@migrations()
def m007_scope_rollup(db: Database) -> None:
    # Calls per scope (runaway cells, notebook budgets) come from a rollup kept current like the others,
    # not from an index on calls.scope_id: that index was a third B-tree page in every call's commit
    # (about 7 µs of it). rollup_delta now logs scope_id, so updates and deletes reach this rollup too.
    # Rows already rolled up are counted here at once; deltas logged before this migration have no
    # scope_id and are left out of it (these rows' current values are already counted).
    cols = (
        "ts, provider, model, status, tagset_id, input_tokens, output_tokens, cache_read_tokens, "
        "cache_write_tokens, reasoning_tokens, cost_pusd, billed, latency_ms, scope_id"
    )
    db.executescript(
        f"""
        DROP INDEX IF EXISTS calls_scope;
        CREATE TABLE IF NOT EXISTS rollup_scope (
            scope_id TEXT PRIMARY KEY, n INTEGER NOT NULL, cost_pusd INTEGER NOT NULL,
            first_ts TEXT NOT NULL, last_ts TEXT NOT NULL
        ) WITHOUT ROWID;
        INSERT INTO rollup_scope
            SELECT scope_id, COUNT(*), COALESCE(SUM(cost_pusd), 0), MIN(ts), MAX(ts) FROM calls
            WHERE scope_id IS NOT NULL AND id <= {_ROLLED} GROUP BY scope_id;
        ALTER TABLE rollup_delta ADD COLUMN scope_id TEXT;
        DROP TRIGGER IF EXISTS calls_rollup_updated;
        DROP TRIGGER IF EXISTS calls_rollup_deleted;
        """
        + _delta_triggers(cols, if_not_exists=False)
    )


@migrations()
def m008_usage_source(db: Database) -> None:
    # Where a call's token counts come from: 'provider' (the API reported them), 'estimated' (counted with
    # the model's tokenizer: a stream that sent no usage) or 'manual' (log()/record()). Calls logged by hand
    # before this migration (attribution 'manual') become 'manual'; every rollup counts the estimated calls
    # per group. The update runs with the delta triggers dropped: it changes no measure a rollup holds, and a
    # big ledger must not log two deltas per manual row.
    cols = (
        "ts, provider, model, status, tagset_id, input_tokens, output_tokens, cache_read_tokens, "
        "cache_write_tokens, reasoning_tokens, cost_pusd, billed, latency_ms, scope_id, usage_source"
    )
    db.executescript(
        """
        DROP TRIGGER IF EXISTS calls_rollup_updated;
        DROP TRIGGER IF EXISTS calls_rollup_deleted;
        ALTER TABLE calls ADD COLUMN usage_source TEXT NOT NULL DEFAULT 'provider';
        UPDATE calls SET usage_source = 'manual' WHERE attribution = 'manual';
        ALTER TABLE rollup_delta ADD COLUMN usage_source TEXT NOT NULL DEFAULT 'provider';
        ALTER TABLE rollup_day ADD COLUMN estimated INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE rollup_dayt ADD COLUMN estimated INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE rollup_daym ADD COLUMN estimated INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE rollup_hour ADD COLUMN estimated INTEGER NOT NULL DEFAULT 0;
        """
        + _delta_triggers(cols, if_not_exists=False)
    )


@migrations()
def m009_notebook_rollup(db: Database) -> None:
    # The JupyterLab meter's per-notebook figures: calls, exact cost and first and last timestamps per
    # notebook and tracking session (kernel), so an open notebook costs a lookup however many cells it ran
    # (joining rollup_scope with scopes read every cell run of the notebook). Kept current by the same
    # refresh as rollup_scope, from the same per-scope deltas; the insert path (calls and scopes) stays
    # trigger-free. A scope row counts here once admitted (its rowid at or below rollup_state 'scopes'):
    # the refresh that admits it adds its whole rollup_scope row, so a scope row written after its calls
    # were rolled up still counts them. Scope rows are written once and never changed.
    db.executescript(
        """
        CREATE TABLE IF NOT EXISTS rollup_notebook (
            notebook TEXT NOT NULL, session_id TEXT NOT NULL,  -- '' for a scope row without session
            n INTEGER NOT NULL, cost_pusd INTEGER NOT NULL, first_ts TEXT NOT NULL, last_ts TEXT NOT NULL,
            PRIMARY KEY (notebook, session_id)
        ) WITHOUT ROWID;
        INSERT INTO rollup_notebook
            SELECT s.notebook, COALESCE(s.session_id, ''), SUM(r.n), SUM(r.cost_pusd), MIN(r.first_ts),
                   MAX(r.last_ts)
            FROM rollup_scope r JOIN scopes s ON s.id = r.scope_id WHERE s.notebook IS NOT NULL GROUP BY 1, 2;
        INSERT OR REPLACE INTO rollup_state (name, last_id)
            VALUES ('scopes', (SELECT COALESCE(MAX(rowid), 0) FROM scopes));
        """
    )


@migrations()
def m010_scope_unknowns(db: Database) -> None:
    # A notebook's and a scope's figures say what they leave out and what they guess, as the daily rollups
    # do: the billed calls without a cost (unpriced) and the calls whose tokens we counted (estimated), so
    # the JupyterLab meter's session figure reads "≈$0.42 (1 estimated) + 2 unpriced" and not "$0.42".
    # Filled in from the calls already rolled up, less the deltas logged since the last refresh (which will
    # add them again), so the rollups stay what they would be had they always had these columns; a notebook's
    # from its admitted scopes', as refresh() keeps it. One pass over calls, grouped into a temp table that
    # the updates look up by key (calls has no index on scope_id: a lookup per scope would scan it each time).
    unpriced = "(billed = 1 AND cost_pusd IS NULL)"
    estimated = "(usage_source = 'estimated')"
    admitted = "COALESCE((SELECT last_id FROM rollup_state WHERE name = 'scopes'), 0)"
    db.executescript(
        f"""
        ALTER TABLE rollup_scope ADD COLUMN unpriced INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE rollup_scope ADD COLUMN estimated INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE rollup_notebook ADD COLUMN unpriced INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE rollup_notebook ADD COLUMN estimated INTEGER NOT NULL DEFAULT 0;
        CREATE TEMP TABLE scope_unknowns (scope_id TEXT PRIMARY KEY, unpriced INTEGER, estimated INTEGER);
        INSERT INTO temp.scope_unknowns
            SELECT scope_id, SUM(u), SUM(e) FROM (
                SELECT scope_id, {unpriced} AS u, {estimated} AS e FROM calls
                    WHERE scope_id IS NOT NULL AND id <= {_ROLLED}
                UNION ALL
                SELECT scope_id, -sign * {unpriced}, -sign * {estimated} FROM rollup_delta
                    WHERE scope_id IS NOT NULL
            ) GROUP BY scope_id;
        UPDATE rollup_scope SET
            unpriced = COALESCE((SELECT k.unpriced FROM temp.scope_unknowns k
                                 WHERE k.scope_id = rollup_scope.scope_id), 0),
            estimated = COALESCE((SELECT k.estimated FROM temp.scope_unknowns k
                                  WHERE k.scope_id = rollup_scope.scope_id), 0);
        CREATE TEMP TABLE notebook_unknowns (
            notebook TEXT, session_id TEXT, unpriced INTEGER, estimated INTEGER,
            PRIMARY KEY (notebook, session_id));
        INSERT INTO temp.notebook_unknowns
            SELECT s.notebook, COALESCE(s.session_id, ''), SUM(r.unpriced), SUM(r.estimated)
            FROM rollup_scope r JOIN scopes s ON s.id = r.scope_id
            WHERE s.notebook IS NOT NULL AND s.rowid <= {admitted} GROUP BY 1, 2;
        UPDATE rollup_notebook SET
            unpriced = COALESCE((SELECT k.unpriced FROM temp.notebook_unknowns k WHERE k.notebook =
                                 rollup_notebook.notebook AND k.session_id = rollup_notebook.session_id), 0),
            estimated = COALESCE((SELECT k.estimated FROM temp.notebook_unknowns k WHERE k.notebook =
                                  rollup_notebook.notebook AND k.session_id = rollup_notebook.session_id), 0);
        DROP TABLE temp.scope_unknowns;
        DROP TABLE temp.notebook_unknowns;
        """
    )
