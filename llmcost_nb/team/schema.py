"""The team ledger's PostgreSQL schema: connection, migrations (append-only, safe when many clients migrate
at once: an advisory lock serializes them), DSN handling.

>>> with connect("postgresql://me@db.internal/team") as conn:    # doctest: +SKIP
...     migrate(conn)
1
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..core.columns import SYNC_COLUMNS
from ..errors import NotAMember, SyncError

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "CALL_COLUMNS",
    "DEFAULT_SCHEMA",
    "PG_COLUMNS",
    "PG_MIGRATIONS",
    "SCOPE_COLUMNS",
    "SyncError",
    "connect",
    "migrate",
    "redact_dsn",
    "schema_version",
]

DEFAULT_SCHEMA = "llmcost"

# Columns a sync writes: of each call (the local row minus tagset_id, plus its tags as JSON), of each scope.
CALL_COLUMNS = SYNC_COLUMNS
PG_COLUMNS = ("ledger_id", *CALL_COLUMNS, "tags")
SCOPE_COLUMNS = ("id", "kind", "name", "notebook", "cell", "session_id", "started", "tags")
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# PostgreSQL migrations: (version, name, SQL with {s} for the schema). Append only.
PG_MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (1, "calls", """
    CREATE TABLE {s}.ledgers (
        ledger_id text PRIMARY KEY, label text, hostname text,
        first_sync timestamptz NOT NULL DEFAULT now(), last_sync timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE {s}.calls (
        ledger_id text NOT NULL, id bigint NOT NULL, ts timestamptz NOT NULL, provider text,
        api text NOT NULL,
        model_requested text, model text,
        input_tokens bigint NOT NULL DEFAULT 0, output_tokens bigint NOT NULL DEFAULT 0,
        cache_read_tokens bigint NOT NULL DEFAULT 0, cache_write_tokens bigint NOT NULL DEFAULT 0,
        reasoning_tokens bigint NOT NULL DEFAULT 0, input_audio_tokens bigint NOT NULL DEFAULT 0,
        output_audio_tokens bigint NOT NULL DEFAULT 0, usage_extra jsonb,
        cost_pusd bigint, price_source text, latency_ms double precision, status text NOT NULL,
        http_status integer, error text, billed boolean NOT NULL, streamed boolean NOT NULL, request_id text,
        host text, service_tier text, session_id text, scope_id text, attribution text,
        estimated_input_tokens bigint, replayed boolean NOT NULL DEFAULT false, saved_pusd bigint,
        tags jsonb NOT NULL DEFAULT '{{}}', synced_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (ledger_id, id)
    );
    CREATE INDEX calls_ts ON {s}.calls (ts);
    CREATE INDEX calls_model_ts ON {s}.calls (model, ts);
    CREATE INDEX calls_tags ON {s}.calls USING gin (tags jsonb_path_ops);
    CREATE TABLE {s}.scopes (
        id text PRIMARY KEY, ledger_id text NOT NULL, kind text NOT NULL, name text, notebook text,
        cell integer, session_id text, started timestamptz NOT NULL, tags jsonb NOT NULL DEFAULT '{{}}'
    );
    """),
    (2, "usage_source", """
    ALTER TABLE {s}.calls ADD COLUMN IF NOT EXISTS usage_source text NOT NULL DEFAULT 'provider';
    """),
    # Access control's columns (the policies themselves come from `llmcost team init`, run by an admin):
    # who registered each ledger (NULL for ledgers synced before there were roles), the `team` tag as a
    # column (the read policy tests it on every row: a plain text comparison, indexable), the members.
    (3, "access", """
    ALTER TABLE {s}.ledgers ADD COLUMN owner name;
    ALTER TABLE {s}.ledgers ALTER COLUMN owner SET DEFAULT current_user;
    CREATE INDEX ledgers_owner ON {s}.ledgers (owner);
    ALTER TABLE {s}.calls ADD COLUMN team text GENERATED ALWAYS AS (tags->>'team') STORED;
    CREATE INDEX calls_team_ts ON {s}.calls (team, ts);
    CREATE INDEX calls_scope ON {s}.calls (scope_id) WHERE scope_id IS NOT NULL;
    CREATE INDEX scopes_ledger ON {s}.scopes (ledger_id);
    CREATE TABLE {s}.members (
        role name PRIMARY KEY, teams text[] NOT NULL DEFAULT '{{}}', finops boolean NOT NULL DEFAULT false,
        added timestamptz NOT NULL DEFAULT now(), added_by name NOT NULL DEFAULT current_user
    );
    """),
)  # fmt: skip


def redact_dsn(dsn: str) -> str:
    """The DSN without its password (what is shown and stored locally)."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    try:
        parts = conninfo_to_dict(dsn)
    except Exception as exc:
        raise SyncError(f"invalid PostgreSQL DSN: {exc}".strip()) from None
    parts.pop("password", None)
    return make_conninfo(**{k: v for k, v in parts.items() if v is not None})


def _schema(schema: str) -> str:
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"schema must be a lower-case SQL identifier (letters, digits, _), got {schema!r}")
    return schema


def connect(dsn: str, *, connect_timeout: int = 10) -> psycopg.Connection:
    """A connection to the team ledger (autocommit; transactions are explicit)."""
    try:
        import psycopg
    except ImportError:
        raise SyncError("PostgreSQL needs psycopg: pip install 'llmcost_nb[postgres]'") from None
    try:
        conn = psycopg.connect(
            dsn, autocommit=True, connect_timeout=connect_timeout, application_name="llmcost_nb"
        )
    except psycopg.Error as exc:
        raise SyncError(f"cannot connect to {redact_dsn(dsn)}: {str(exc).strip()}") from None
    conn.execute("SET TIME ZONE 'UTC'")  # date-only bounds and day groups are UTC days, as in the ledger
    return conn


def schema_version(conn: psycopg.Connection, schema: str = DEFAULT_SCHEMA) -> int:
    """The team schema's version (0: not created yet), read without writing anything (a member's role may
    not create anything in the database, nor even see the schema)."""
    s = _schema(schema)
    (exists,) = conn.execute(
        "SELECT EXISTS (SELECT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = 'migrations')",
        (s,),
    ).fetchone()  # type: ignore[misc]
    if not exists:
        return 0
    (readable,) = conn.execute(
        "SELECT has_schema_privilege(%s, 'USAGE') AND has_table_privilege(%s, 'SELECT')",
        (s, f"{s}.migrations"),
    ).fetchone()  # type: ignore[misc]
    if not readable:
        (user,) = conn.execute("SELECT current_user").fetchone()  # type: ignore[misc]
        raise NotAMember(
            f"role {user} may not read the team ledger (schema {s}): an admin adds it with "
            f"`llmcost team add-member {user} --team TEAM --dsn ADMIN_DSN`"
        )
    (version,) = conn.execute(f"SELECT COALESCE(MAX(version), 0) FROM {s}.migrations").fetchone()  # type: ignore[misc]
    return int(version)


def migrate(conn: psycopg.Connection, schema: str = DEFAULT_SCHEMA) -> int:
    """Create or upgrade the team schema (safe when many clients do it at once); returns its version.
    Writes nothing when the schema is up to date. A role that may not migrate it (a member, once
    ``llmcost team init`` set up access control) gets a one-line :class:`SyncError` naming the fix."""
    s = _schema(schema)
    if schema_version(conn, s) >= PG_MIGRATIONS[-1][0]:
        return PG_MIGRATIONS[-1][0]
    import psycopg

    try:
        _migrate(conn, s)
    except psycopg.errors.InsufficientPrivilege as exc:
        (user,) = conn.execute("SELECT current_user").fetchone()  # type: ignore[misc]
        raise SyncError(
            f"the team schema {s} needs an upgrade that role {user} may not make ({str(exc).strip()}): "
            "an admin runs `llmcost team init --dsn ADMIN_DSN`"
        ) from None
    return PG_MIGRATIONS[-1][0]


def _migrate(conn: psycopg.Connection, s: str) -> None:
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"llmcost_nb.migrate.{s}",))
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {s}.migrations (version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        applied = {row[0] for row in conn.execute(f"SELECT version FROM {s}.migrations")}
        for version, name, sql in PG_MIGRATIONS:
            if version not in applied:
                conn.execute(sql.format(s=s))  # type: ignore[arg-type]
                conn.execute(f"INSERT INTO {s}.migrations (version, name) VALUES (%s, %s)", (version, name))
