"""Who may read and write the team ledger: PostgreSQL roles, grants and row-level security policies.

>>> with connect("postgresql://admin@db.internal/team") as conn:          # doctest: +SKIP
...     print("\\n".join(init(conn)))
...     add_member(conn, "alice", teams=["search"])

Everything is enforced by PostgreSQL itself, so psql, ``Ledger("postgresql://alice@…")``, the dashboard and
the CLI show a role the same rows:

- two group roles, ``<schema>_members`` and ``<schema>_finops`` (FinOps is a member of the members group);
  ``add-member`` grants one of them to a login role and records its teams in ``<schema>.members``;
- a member reads the calls whose ``team`` tag is one of its teams plus every call of the ledgers it
  registered (synced) itself; FinOps reads everything; the admin (the schema's owner) keeps full control;
- a member inserts and updates only rows of the ledgers it registered (a ledger is registered by its first
  sync and belongs to that role); it has no DELETE nor TRUNCATE privilege, and may not change a row's
  ``ledger_id``/``id`` nor a ledger's ``owner`` (column privileges).

The policies test the ``team`` column (the ``team`` tag, a stored generated column, indexed) against the
member's teams, read once per query (a scalar sub-select: an InitPlan), so reads cost about what they cost
without row-level security.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import AccessError, NotAdmin, NotAMember
from .schema import (
    DEFAULT_SCHEMA,
    PG_COLUMNS,
    PG_MIGRATIONS,
    SCOPE_COLUMNS,
    _migrate,
    _schema,
    schema_version,
)

if TYPE_CHECKING:
    import psycopg

__all__ = ["Access", "Member", "add_member", "group_roles", "init", "members", "remove_member", "whoami"]

TABLES = ("calls", "scopes", "ledgers", "members")  # the tables under row-level security
_TEAM_NAME = re.compile(r"^[^\s,][^,]{0,99}$")


def group_roles(schema: str = DEFAULT_SCHEMA) -> tuple[str, str]:
    """The group roles of a team schema: (members, FinOps)."""
    s = _schema(schema)
    return f"{s}_members", f"{s}_finops"


@dataclass(frozen=True)
class Access:
    """What the connected role is on the team ledger."""

    role: str
    admin: bool  # a superuser or the schema's owner (or a member of the owner role): no row-level security
    controlled: bool  # `llmcost team init` has run: row-level security is on
    teams: tuple[str, ...] = ()
    finops: bool = False
    member: bool = False  # has a row in <schema>.members


@dataclass(frozen=True)
class Member:
    """One row of ``llmcost team members``."""

    role: str
    teams: tuple[str, ...]
    finops: bool
    can_login: bool
    ledgers: int  # ledgers this role registered
    sees: str  # what it reads, in words


def _quote(name: str) -> psycopg.sql.Identifier:
    from psycopg import sql

    return sql.Identifier(name)


def whoami(conn: psycopg.Connection, schema: str = DEFAULT_SCHEMA) -> Access:
    """The connected role's access to the team ledger (reads the catalogs and its own members row)."""
    s = _schema(schema)
    row = conn.execute(
        "SELECT current_user, "
        "r.rolsuper OR r.rolbypassrls OR COALESCE(pg_has_role(n.nspowner, 'USAGE'), false), "
        "COALESCE((SELECT c.relrowsecurity FROM pg_class c WHERE c.relnamespace = n.oid "
        "AND c.relname = 'calls'), false) "
        "FROM pg_roles r LEFT JOIN pg_namespace n ON n.nspname = %s WHERE r.rolname = current_user",
        (s,),
    ).fetchone()
    user, admin, controlled = row  # type: ignore[misc]
    if admin or not controlled:
        return Access(user, bool(admin), bool(controlled))
    mine = conn.execute(f"SELECT teams, finops FROM {s}.members WHERE role = current_user").fetchone()
    if mine is None:
        return Access(user, False, True)
    return Access(user, False, True, tuple(mine[0]), bool(mine[1]), True)


def require_member(conn: psycopg.Connection, schema: str = DEFAULT_SCHEMA) -> Access:
    """:func:`whoami`, raising :class:`NotAMember` for a role that has neither a team nor FinOps."""
    access = whoami(conn, schema)
    if access.controlled and not access.admin and not (access.teams or access.finops):
        raise NotAMember(
            f"role {access.role} has no team on the team ledger (schema {_schema(schema)}): an admin runs "
            f"`llmcost team add-member {access.role} --team TEAM --dsn ADMIN_DSN` (or --finops)"
        )
    return access


# -- team init ---------------------------------------------------------------------------------------------


def _require_admin(conn: psycopg.Connection, s: str, what: str) -> str:
    """The connected role's name if it may manage the team ledger, else :class:`NotAdmin` (writes nothing)."""
    user, superuser, createrole, create_db, owns = conn.execute(
        "SELECT current_user, r.rolsuper, r.rolcreaterole, "
        "has_database_privilege(current_database(), 'CREATE'), "
        "(SELECT pg_has_role(n.nspowner, 'MEMBER') FROM pg_namespace n WHERE n.nspname = %s) "
        "FROM pg_roles r WHERE r.rolname = current_user",
        (s,),
    ).fetchone()  # type: ignore[misc]
    if superuser or (createrole and (owns or (owns is None and create_db))):
        return user
    raise NotAdmin(
        f"role {user} cannot run `llmcost team {what}`: that takes a superuser, or a role with "
        f"CREATEROLE that owns schema {s}; connect as the admin (--dsn postgresql://ADMIN@host/db)"
    )


def _policies(s: str) -> list[tuple[str, str, str]]:
    """(table, policy name, body after ``ON table``) of every policy, in creation order."""
    members, finops = group_roles(s)
    my_teams = f"(SELECT m.teams FROM {s}.members m WHERE m.role = current_user)::text[]"
    my_ledgers = f"ARRAY(SELECT l.ledger_id FROM {s}.ledgers l WHERE l.owner = current_user)"
    mine = f"ledger_id = ANY ({my_ledgers})"
    visible = f"team = ANY ({my_teams}) OR {mine}"
    return [
        ("calls", "llmcost_read", f"FOR SELECT TO {members} USING ({visible})"),
        ("calls", "llmcost_finops_read", f"FOR SELECT TO {finops} USING (true)"),
        ("calls", "llmcost_insert", f"FOR INSERT TO {members} WITH CHECK ({mine})"),
        # a visible row of someone else's ledger passes USING and fails WITH CHECK: the UPDATE is an error
        ("calls", "llmcost_update", f"FOR UPDATE TO {members} USING ({visible}) WITH CHECK ({mine})"),
        (
            "scopes",
            "llmcost_read",
            f"FOR SELECT TO {members} USING ({mine} OR EXISTS "
            f"(SELECT FROM {s}.calls c WHERE c.scope_id = scopes.id))",
        ),
        ("scopes", "llmcost_finops_read", f"FOR SELECT TO {finops} USING (true)"),
        ("scopes", "llmcost_insert", f"FOR INSERT TO {members} WITH CHECK ({mine})"),
        ("ledgers", "llmcost_read", f"FOR SELECT TO {members} USING (owner = current_user)"),
        ("ledgers", "llmcost_finops_read", f"FOR SELECT TO {finops} USING (true)"),
        (
            "ledgers",
            "llmcost_insert",
            f"FOR INSERT TO {members} WITH CHECK (owner = current_user AND EXISTS "
            f"(SELECT FROM {s}.members m WHERE m.role = current_user))",
        ),
        (
            "ledgers",
            "llmcost_update",
            f"FOR UPDATE TO {members} USING (owner = current_user) WITH CHECK (owner = current_user)",
        ),
        (
            "members",
            "llmcost_read",
            f"FOR SELECT TO {members} USING (role = current_user OR pg_has_role('{finops}', 'USAGE'))",
        ),
    ]


def _grants(s: str) -> list[str]:
    members, finops = group_roles(s)
    call_updates = [c for c in PG_COLUMNS if c not in ("ledger_id", "id")] + ["synced_at"]
    return [
        f"GRANT {members} TO {finops}",
        f"GRANT USAGE ON SCHEMA {s} TO {members}",
        f"GRANT SELECT ON {s}.calls, {s}.scopes, {s}.ledgers, {s}.members, {s}.migrations TO {members}",
        f"GRANT INSERT ({', '.join(PG_COLUMNS)}), UPDATE ({', '.join(call_updates)}) ON {s}.calls TO "
        f"{members}",
        f"GRANT INSERT (ledger_id, {', '.join(SCOPE_COLUMNS)}) ON {s}.scopes TO {members}",
        f"GRANT INSERT (ledger_id, label, hostname), UPDATE (label, hostname, last_sync) ON {s}.ledgers "
        f"TO {members}",
    ]


def _policy_state(conn: psycopg.Connection, s: str) -> list[tuple[object, ...]]:
    return conn.execute(
        "SELECT tablename, policyname, cmd, roles::text[], qual, with_check FROM pg_policies "
        "WHERE schemaname = %s ORDER BY 1, 2",
        (s,),
    ).fetchall()


def init(conn: psycopg.Connection, schema: str = DEFAULT_SCHEMA) -> list[str]:
    """Create or migrate the team schema and put it under access control (idempotent): group roles, the
    connected role as owner of the schema and its tables, grants, row-level security and its policies.
    Returns what it did, one line each. :class:`NotAdmin` (nothing written) for a role that cannot."""
    s = _schema(schema)
    admin = _require_admin(conn, s, "init")
    members, finops = group_roles(s)
    done: list[str] = []
    with conn.transaction():
        before = schema_version(conn, s)
        _migrate(conn, s)
        after = PG_MIGRATIONS[-1][0]
        if before == 0:
            done.append(f"schema {s}: created (version {after})")
        elif before < after:
            done.append(f"schema {s}: migrated from version {before} to {after}")
        else:
            done.append(f"schema {s}: up to date (version {after})")
        for role, what in ((members, "members"), (finops, "FinOps")):
            if conn.execute("SELECT FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is None:
                conn.execute(f"CREATE ROLE {role} NOLOGIN")
                done.append(f"group role {role} ({what}): created")
            else:
                done.append(f"group role {role} ({what}): exists")
        owners = conn.execute(
            "SELECT DISTINCT pg_get_userbyid(o) FROM (SELECT nspowner AS o FROM pg_namespace "
            "WHERE nspname = %s UNION ALL SELECT c.relowner FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 'p')) AS x WHERE pg_get_userbyid(o) <> current_user",
            (s, s),
        ).fetchall()
        if owners:
            conn.execute(f"ALTER SCHEMA {s} OWNER TO {_quote(admin).as_string(conn)}")
            for (table,) in conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') ORDER BY 1",
                (s,),
            ).fetchall():
                conn.execute(f"ALTER TABLE {s}.{table} OWNER TO {_quote(admin).as_string(conn)}")
            was = ", ".join(sorted(o for (o,) in owners))
            done.append(f"owner of schema {s} and its tables: {admin} (was {was}, which keeps no privilege)")
        else:
            done.append(f"owner of schema {s} and its tables: {admin}")
        # privileges: exactly these (a re-run resets anything granted by hand to PUBLIC or the groups)
        conn.execute(f"REVOKE ALL ON SCHEMA {s} FROM PUBLIC, {members}, {finops}")
        conn.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA {s} FROM PUBLIC, {members}, {finops}")
        for grant in _grants(s):
            conn.execute(grant)
        done.append(
            f"privileges: {members} reads, inserts and updates (no DELETE, no TRUNCATE); "
            f"{finops} is a member of {members}"
        )
        off = [
            t
            for (t,) in conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relname = ANY(%s) AND NOT c.relrowsecurity ORDER BY 1",
                (s, list(TABLES)),
            ).fetchall()
        ]
        for table in TABLES:
            conn.execute(f"ALTER TABLE {s}.{table} ENABLE ROW LEVEL SECURITY")
        done.append(
            f"row-level security: enabled on {', '.join(off)}" if off else "row-level security: already on"
        )
        policies_before = _policy_state(conn, s)
        for table, name, _ in _policies(s):
            conn.execute(f"DROP POLICY IF EXISTS {name} ON {s}.{table}")
        for table, name in {(t, n) for t, n, *_ in policies_before} - {(t, n) for t, n, _ in _policies(s)}:
            conn.execute(f"DROP POLICY IF EXISTS {_quote(str(name)).as_string(conn)} ON {s}.{table}")
        for table, name, body in _policies(s):
            conn.execute(f"CREATE POLICY {name} ON {s}.{table} {body}")
        n = len(_policies(s))
        if _policy_state(conn, s) == policies_before:
            done.append(f"policies: {n} unchanged")
        else:
            done.append(f"policies: {n} created or updated")
        (orphans,) = conn.execute(f"SELECT count(*) FROM {s}.ledgers WHERE owner IS NULL").fetchone()  # type: ignore[misc]
        if orphans:
            done.append(
                f"{orphans} ledger(s) synced before roles have no owner: until an admin hands each to its "
                "laptop's role (`llmcost team add-member ROLE --team TEAM --ledger LEDGER_ID`), only their "
                "team's members and FinOps read them, and nobody but the admin syncs them"
            )
    return done


# -- members -----------------------------------------------------------------------------------------------


def _check_teams(teams: Iterable[str]) -> list[str]:
    out: list[str] = []
    for team in teams:
        if not isinstance(team, str) or not _TEAM_NAME.match(team):
            raise ValueError(f"a team is the value of the calls' `team` tag (no comma), got {team!r}")
        if team not in out:
            out.append(team)
    return out


def add_member(
    conn: psycopg.Connection,
    name: str,
    *,
    teams: Sequence[str] = (),
    finops: bool = False,
    password: str | None = None,
    ledgers: Sequence[str] = (),
    schema: str = DEFAULT_SCHEMA,
) -> list[str]:
    """Create (or adopt) login role ``name``, make it a member (``teams``) or FinOps, record its teams
    (added to those it had), and hand it ``ledgers`` (ledger ids: who may sync them). ``password`` is sent
    SCRAM-hashed, never in clear; ``None`` leaves the role's password as it is (certificate or peer auth)."""
    s = _schema(schema)
    teams = _check_teams(teams)
    if not teams and not finops:
        raise ValueError("a member needs a team (--team TEAM, repeatable) or --finops")
    if not isinstance(name, str) or not name or len(name) > 63:
        raise ValueError(f"a role name is 1 to 63 characters, got {name!r}")
    _require_admin(conn, s, "add-member")
    access = whoami(conn, s)
    if not access.controlled:
        raise AccessError(
            f"schema {s} has no access control yet: run `llmcost team init --dsn ADMIN_DSN` first"
        )
    members_group, finops_group = group_roles(s)
    role = _quote(name).as_string(conn)
    done: list[str] = []
    with conn.transaction():
        found = conn.execute(
            "SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = %s", (name,)
        ).fetchone()
        if found is None:
            conn.execute(f"CREATE ROLE {role} LOGIN")
            done.append(f"role {name}: created (LOGIN)")
        else:
            if found[1]:
                raise ValueError(
                    f"role {name} is a superuser: it sees everything already, it cannot be a member"
                )
            done.append(
                f"role {name}: exists, adopted" + ("" if found[0] else " (NOLOGIN: it cannot connect)")
            )
        if password is not None:
            if not password:
                raise ValueError("empty password: omit it for certificate or peer authentication")
            hashed = conn.pgconn.encrypt_password(password.encode(), name.encode(), b"scram-sha-256")
            conn.execute(f"ALTER ROLE {role} PASSWORD {_literal(conn, hashed.decode())}")
            done.append(f"role {name}: password set (SCRAM-SHA-256)")
        conn.execute(f"GRANT {finops_group if finops else members_group} TO {role}")
        conn.execute(
            f"INSERT INTO {s}.members (role, teams, finops) VALUES (%s, %s, %s) "
            "ON CONFLICT (role) DO UPDATE SET "
            "teams = ARRAY(SELECT DISTINCT t FROM unnest(members.teams || EXCLUDED.teams) AS t ORDER BY 1), "
            "finops = members.finops OR EXCLUDED.finops",
            (name, teams, finops),
        )
        mine, is_finops = conn.execute(
            f"SELECT teams, finops FROM {s}.members WHERE role = %s", (name,)
        ).fetchone()  # type: ignore[misc]
        done.append(f"member {name}: " + _sees(tuple(mine), is_finops))
        for ledger_id in ledgers:
            owner = conn.execute(
                f"SELECT owner FROM {s}.ledgers WHERE ledger_id = %s", (ledger_id,)
            ).fetchone()
            if owner is None:
                raise ValueError(
                    f"no ledger {ledger_id!r} on the team ledger (`llmcost team members` lists them)"
                )
            conn.execute(f"UPDATE {s}.ledgers SET owner = %s WHERE ledger_id = %s", (name, ledger_id))
            done.append(f"ledger {ledger_id}: now {name}'s (was {owner[0] or 'nobody'}'s)")
    return done


def _literal(conn: psycopg.Connection, value: str) -> str:
    from psycopg import sql

    return sql.Literal(value).as_string(conn)


def _sees(teams: tuple[str, ...], finops: bool) -> str:
    if finops:
        return "FinOps: every call"
    return f"team{'s' if len(teams) > 1 else ''} {', '.join(teams)} + the ledgers it synced"


def remove_member(
    conn: psycopg.Connection, name: str, *, teams: Sequence[str] = (), schema: str = DEFAULT_SCHEMA
) -> list[str]:
    """Take ``teams`` from member ``name``, or (no ``teams``) remove it: its group roles are revoked and its
    row deleted. The login role itself and the rows it synced stay (its ledgers keep it as owner)."""
    s = _schema(schema)
    _require_admin(conn, s, "remove-member")
    teams = _check_teams(teams)
    members_group, finops_group = group_roles(s)
    with conn.transaction():
        row = conn.execute(f"SELECT teams, finops FROM {s}.members WHERE role = %s", (name,)).fetchone()
        if row is None:
            raise ValueError(f"{name} is not a member (`llmcost team members` lists them)")
        role = _quote(name).as_string(conn)
        if teams:
            left = tuple(t for t in row[0] if t not in teams)
            if not left and not row[1]:
                raise ValueError(
                    f"{name} would have no team left: `llmcost team remove-member {name}` removes the member"
                )
            conn.execute(f"UPDATE {s}.members SET teams = %s WHERE role = %s", (list(left), name))
            return [f"member {name}: " + _sees(left, row[1])]
        conn.execute(f"DELETE FROM {s}.members WHERE role = %s", (name,))
        conn.execute(f"REVOKE {members_group}, {finops_group} FROM {role}")
    return [f"member {name}: removed (role {name} kept; it reads and writes nothing here now)"]


def members(conn: psycopg.Connection, schema: str = DEFAULT_SCHEMA) -> list[Member]:
    """Every member, what it sees, and the ledgers it registered (an admin's view: all rows)."""
    s = _schema(schema)
    _require_admin(conn, s, "members")
    rows = conn.execute(
        f"SELECT m.role, m.teams, m.finops, COALESCE(r.rolcanlogin, false), "
        f"(SELECT count(*) FROM {s}.ledgers l WHERE l.owner = m.role) "
        f"FROM {s}.members m LEFT JOIN pg_roles r ON r.rolname = m.role ORDER BY m.finops DESC, m.role"
    ).fetchall()
    return [
        Member(role, tuple(teams), bool(fin), bool(login), int(n), _sees(tuple(teams), bool(fin)))
        for role, teams, fin, login, n in rows
    ]


def unowned_ledgers(conn: psycopg.Connection, schema: str = DEFAULT_SCHEMA) -> list[tuple[str, str, str]]:
    """(ledger_id, label, hostname) of the ledgers nobody registered (synced before access control)."""
    s = _schema(schema)
    return conn.execute(
        f"SELECT ledger_id, label, hostname FROM {s}.ledgers WHERE owner IS NULL ORDER BY first_sync"
    ).fetchall()  # type: ignore[return-value]
