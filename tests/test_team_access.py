"""Access control on a real PostgreSQL team ledger: roles, grants and row-level security (issue 20).

Alice (team search) and Bob (team ads) each sync a ledger of their own; Carol is FinOps; Dave (team infra)
syncs nothing. Each ledger holds calls of several teams, with costs in whole micro-dollars, so every role's
slice has a count and an exact sum worked out by hand below.
"""

from __future__ import annotations

import itertools
import subprocess
from decimal import Decimal
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from click.testing import CliRunner
from pg_server import PgServer

from llmcost_nb import Call, Ledger
from llmcost_nb.cli import main as cli
from llmcost_nb.errors import AccessError, LedgerNotYours, NotAdmin, NotAMember, SyncError
from llmcost_nb.team import schema as team_schema
from llmcost_nb.team import sync
from llmcost_nb.team.access import add_member, init, members
from llmcost_nb.team.postgres import PostgresLedger
from llmcost_nb.team.schema import connect

_db_numbers = itertools.count()
MICRO = Decimal("0.000001")


@pytest.fixture(scope="module")
def server():
    with PgServer() as pg:
        yield pg


def as_role(dsn: str, role: str) -> str:
    """The same database, connected as ``role`` (the test server trusts 127.0.0.1)."""
    head, rest = dsn.split("://", 1)
    return f"{head}://{role}@{rest.split('@', 1)[1]}"


@pytest.fixture
def db(server):
    """A fresh database (its admin DSN) and a name prefix for its roles (roles are per server)."""
    name = f"access_{next(_db_numbers)}"
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server.dsn.rsplit("/", 1)[0] + f"/{name}", name


def calls(team: str | None, micro: list[int], *, start: int = 0, scope: str | None = None) -> list[Call]:
    """One call per cost (in micro-dollars), tagged team=``team`` (untagged for None)."""
    return [
        Call(
            provider="openai",
            api="chat",
            model="gpt-4.1" if i % 2 else "gpt-4.1-mini",
            model_requested="gpt-4.1",
            input_tokens=100 + cost,
            output_tokens=10,
            cost=cost * MICRO,
            tags={"team": team, "env": "prod"} if team else {"env": "prod"},
            ts=f"2026-11-{10 + i % 3:02d}T08:{i:02d}:00.000000Z",
            latency_ms=20.0 + i,
            scope_id=scope,
        )
        for i, cost in enumerate(micro, start=start)
    ]


# The two laptops' calls. Alice's ledger: search 1+2+3+4, ads 10+20+30, untagged 100 (8 rows, 170 µ$).
# Bob's ledger: ads 1000..5000, search 7+8, infra 500 (8 rows, 15,515 µ$).
ALICE_CALLS = [
    *calls("search", [1, 2, 3, 4]),
    *calls("ads", [10, 20, 30], start=4),
    *calls(None, [100], start=7),
]
BOB_CALLS = [
    *calls("ads", [1000, 2000, 3000, 4000, 5000]),
    *calls("search", [7, 8], start=5),
    *calls("infra", [500], start=7),
]
# What each role reads: its teams' calls from every ledger plus every call of its own ledger.
SEES = {
    "alice": (10, 185 * MICRO),  # her 8 (170) + Bob's search 2 (15)
    "bob": (11, 15_575 * MICRO),  # his 8 (15,515) + Alice's ads 3 (60)
    "carol": (16, 15_685 * MICRO),  # FinOps: everything
    "dave": (1, 500 * MICRO),  # infra, no ledger of his own: Bob's infra call
}


class Org:
    """An initialised team database with its members and their synced ledgers."""

    def __init__(self, dsn: str, prefix: str, tmp: Path) -> None:
        self.admin, self.prefix = dsn, prefix
        self.role = {who: f"{prefix}_{who}" for who in ("alice", "bob", "carol", "dave")}
        self.dsn = {who: as_role(dsn, role) for who, role in self.role.items()}
        with connect(dsn) as conn:
            init(conn)
            add_member(conn, self.role["alice"], teams=["search"])
            add_member(conn, self.role["bob"], teams=["ads"])
            add_member(conn, self.role["carol"], finops=True)
            add_member(conn, self.role["dave"], teams=["infra"])
        self.alice_ledger, self.bob_ledger = Ledger(tmp / "alice.db"), Ledger(tmp / "bob.db")
        self.alice_ledger.write_many(ALICE_CALLS)
        self.bob_ledger.write_many(BOB_CALLS)
        assert sync(self.dsn["alice"], ledger=self.alice_ledger).inserted == 8
        assert sync(self.dsn["bob"], ledger=self.bob_ledger).inserted == 8

    def totals(self, who: str | None = None) -> tuple[int, Decimal]:
        """count and sum as that role sees them through a plain connection (what psql shows)."""
        with psycopg.connect(self.dsn[who] if who else self.admin) as conn:
            n, pusd = conn.execute(
                "SELECT count(*), COALESCE(sum(cost_pusd), 0) FROM llmcost.calls"
            ).fetchone()
        return n, Decimal(pusd).scaleb(-12)

    def sql(self, who: str, statement: str) -> int:
        """Run one statement as ``who``; its row count."""
        with psycopg.connect(self.dsn[who], autocommit=True) as conn:
            return conn.execute(statement).rowcount


@pytest.fixture
def org(db, tmp_path):
    dsn, prefix = db
    o = Org(dsn, prefix, tmp_path)
    yield o
    o.alice_ledger.close()
    o.bob_ledger.close()


def ledger_id(ledger: Ledger) -> str:
    return ledger.connection.execute("SELECT value FROM meta WHERE key = 'ledger_id'").fetchone()[0]


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


# -- team init ---------------------------------------------------------------------------------------------


def test_team_init_creates_everything_then_changes_nothing(db):
    dsn, _ = db
    with psycopg.connect(dsn) as conn:
        fresh = [
            conn.execute("SELECT FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is None
            for role in ("llmcost_members", "llmcost_finops")
        ]
    first = run("team", "init", "--dsn", dsn)
    assert first.exit_code == 0, first.output
    assert first.output.splitlines() == [
        "schema llmcost: created (version 3)",
        # the group roles belong to the server: an earlier test's database may have created them
        *(
            f"group role {role} ({what}): {'created' if new else 'exists'}"
            for (role, what), new in zip(
                (("llmcost_members", "members"), ("llmcost_finops", "FinOps")), fresh, strict=True
            )
        ),
        "owner of schema llmcost and its tables: postgres",
        "privileges: llmcost_members reads, inserts and updates (no DELETE, no TRUNCATE); "
        "llmcost_finops is a member of llmcost_members",
        "row-level security: enabled on calls, ledgers, members, scopes",
        "policies: 12 created or updated",
    ]
    again = run("team", "init", "--dsn", dsn)
    assert again.exit_code == 0
    assert again.output.splitlines() == [
        "schema llmcost: up to date (version 3)",
        "group role llmcost_members (members): exists",
        "group role llmcost_finops (FinOps): exists",
        "owner of schema llmcost and its tables: postgres",
        "privileges: llmcost_members reads, inserts and updates (no DELETE, no TRUNCATE); "
        "llmcost_finops is a member of llmcost_members",
        "row-level security: already on",
        "policies: 12 unchanged",
    ]
    with psycopg.connect(dsn) as conn:
        secured = conn.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = 'llmcost'::regnamespace AND relrowsecurity "
            "ORDER BY 1"
        ).fetchall()
        assert [r[0] for r in secured] == ["calls", "ledgers", "members", "scopes"]
        privileges = conn.execute(
            "SELECT has_table_privilege('llmcost_members', 'llmcost.calls', p), "
            "has_any_column_privilege('llmcost_members', 'llmcost.calls', p) FROM "
            "unnest(ARRAY['SELECT', 'INSERT', 'UPDATE']) AS p"
        ).fetchall()  # INSERT and UPDATE: some columns only (never ledger_id nor id)
        assert privileges == [(True, True), (False, True), (False, True)]
        assert conn.execute(
            "SELECT has_table_privilege('llmcost_members', 'llmcost.calls', 'DELETE'), "
            "has_table_privilege('llmcost_members', 'llmcost.calls', 'TRUNCATE')"
        ).fetchone() == (False, False)
        assert not conn.execute(
            "SELECT has_column_privilege('llmcost_members', 'llmcost.calls', 'ledger_id', 'UPDATE')"
        ).fetchone()[0]
        assert conn.execute("SELECT pg_has_role('llmcost_finops', 'llmcost_members', 'USAGE')").fetchone()[0]


# -- reading -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["alice", "bob", "carol", "dave"])
def test_each_role_reads_its_slice_in_python_and_in_plain_sql(org, who):
    n, total = SEES[who]
    team = Ledger(org.dsn[who])
    try:
        assert (team.count(), team.total_cost()) == (n, total)
        assert team.calls()["cost_usd"].sum() == total
    finally:
        team.close()
    assert org.totals(who) == (n, total)
    assert org.totals() == (16, 15_685 * MICRO)  # the admin reads everything


def test_psql_as_a_member_shows_the_same_rows(org):
    from pg_server import pg_bin_dir

    out = subprocess.run(
        [str(pg_bin_dir() / "psql"), "-X", "-At", "-d", org.dsn["alice"], "-c",
         "SELECT count(*), sum(cost_pusd), string_agg(DISTINCT team, ',' ORDER BY team) FROM llmcost.calls"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert out.strip() == f"10|{185 * 10**6}|ads,search"  # her own ads calls, every search call


def hand_filtered(tmp_path: Path, rows: list[Call]) -> Ledger:
    """A local ledger holding exactly ``rows``: what a role's slice must analyse like."""
    local = Ledger(tmp_path / f"expected_{len(list(tmp_path.iterdir()))}.db")
    local.write_many(rows)
    return local


@pytest.mark.parametrize(
    ("who", "rows"),
    [
        ("alice", [*ALICE_CALLS, *(c for c in BOB_CALLS if c.tags.get("team") == "search")]),
        ("bob", [*BOB_CALLS, *(c for c in ALICE_CALLS if c.tags.get("team") == "ads")]),
        ("carol", [*ALICE_CALLS, *BOB_CALLS]),
    ],
)
def test_summary_and_chargeback_per_role_equal_the_hand_filtered_ledger(org, tmp_path, who, rows):
    team, local = Ledger(org.dsn[who]), hand_filtered(tmp_path, rows)
    try:
        for by in (("day", "model"), ("tag:team",), ()):
            pd.testing.assert_frame_equal(team.summary(by=by), local.summary(by=by))
        pd.testing.assert_frame_equal(team.chargeback(by="tag:team"), local.chargeback(by="tag:team"))
        assert team.tag_values("team") == local.tag_values("team")
    finally:
        team.close()
        local.close()


def test_ledgers_and_members_rows_are_each_roles_own(org):
    alice = Ledger(org.dsn["alice"])
    try:
        assert alice.ledgers()["ledger_id"].tolist() == [ledger_id(org.alice_ledger)]
        assert alice.ledgers()["rows"].tolist() == [8]
    finally:
        alice.close()
    with psycopg.connect(org.dsn["alice"]) as conn:
        assert conn.execute("SELECT role, teams FROM llmcost.members").fetchall() == [
            (org.role["alice"], ["search"])
        ]
    with psycopg.connect(org.dsn["carol"]) as conn:
        assert conn.execute("SELECT count(*) FROM llmcost.members").fetchone()[0] == 4
        assert conn.execute("SELECT count(*) FROM llmcost.ledgers").fetchone()[0] == 2


def test_scopes_are_seen_with_their_calls(db, tmp_path):
    dsn, prefix = db
    alice, bob = f"{prefix}_alice", f"{prefix}_bob"
    with connect(dsn) as conn:
        init(conn)
        add_member(conn, alice, teams=["search"])
        add_member(conn, bob, teams=["ads"])
    mine = Ledger(tmp_path / "a.db")
    mine.write_many([*calls("search", [1], scope="sc-search"), *calls("ads", [2], scope="sc-ads")])
    for sid in ("sc-search", "sc-ads", "sc-empty"):
        mine.connection.execute(
            "INSERT INTO scopes VALUES (?, 'cell', NULL, 'a.ipynb', 1, 's', "
            "'2026-11-10T08:00:00.000000Z', ?)",
            (sid, mine.tagset_id({})),
        )
    assert sync(as_role(dsn, alice), ledger=mine).scopes == 3
    seen = {}
    for who in (alice, bob):
        with psycopg.connect(as_role(dsn, who)) as conn:
            seen[who] = [r[0] for r in conn.execute("SELECT id FROM llmcost.scopes ORDER BY id")]
    assert seen == {alice: ["sc-ads", "sc-empty", "sc-search"], bob: ["sc-ads"]}
    mine.close()


# -- writing -----------------------------------------------------------------------------------------------


def test_a_member_cannot_delete_truncate_or_change_anothers_rows(org):
    before = org.totals()
    alice_id = ledger_id(org.alice_ledger)
    refused = {
        "DELETE FROM llmcost.calls": "permission denied for table calls",
        "DELETE FROM llmcost.calls WHERE team = 'ads'": "permission denied for table calls",
        "TRUNCATE llmcost.calls": "permission denied for table calls",
        "TRUNCATE llmcost.ledgers": "permission denied for table ledgers",
        "DELETE FROM llmcost.ledgers": "permission denied for table ledgers",
        # Alice's ads calls are visible to Bob: changing them is an error, not a silent no-op
        "UPDATE llmcost.calls SET cost_pusd = 0 WHERE team = 'ads'": "row-level security",
        "UPDATE llmcost.calls SET ledger_id = 'bobs' WHERE team = 'ads'": "permission denied for table calls",
        f"UPDATE llmcost.ledgers SET owner = current_user WHERE ledger_id = '{alice_id}'":
            "permission denied for table ledgers",
        f"INSERT INTO llmcost.calls (ledger_id, id, ts, api, status, billed, streamed) VALUES "
        f"('{alice_id}', 999, now(), 'chat', 'ok', true, false)": "row-level security",
        "INSERT INTO llmcost.members (role, teams) VALUES (current_user, '{search}')":
            "permission denied for table members",
    }  # fmt: skip
    for statement, error in refused.items():
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match=error):
            org.sql("bob", statement)
    # rows Bob cannot see are not his to change: nothing happens
    statement = f"UPDATE llmcost.calls SET cost_pusd = 0 WHERE ledger_id = '{alice_id}' AND team <> 'ads'"
    assert org.sql("bob", statement) == 0
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied for table calls"):
        org.sql("carol", "DELETE FROM llmcost.calls")  # FinOps reads everything, deletes nothing
    assert org.totals() == before == (16, 15_685 * MICRO)
    assert org.totals("alice") == SEES["alice"]
    # ... and his own rows he may update (what a re-sync does), still not delete
    assert org.sql("bob", "UPDATE llmcost.calls SET latency_ms = 1 WHERE team = 'infra'") == 1
    assert org.totals() == before


def test_a_members_sync_stays_idempotent_and_resumable(org):
    again = sync(org.dsn["alice"], ledger=org.alice_ledger)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 0)
    org.alice_ledger.write_many(calls("search", [40, 50], start=20))
    more = sync(org.dsn["alice"], ledger=org.alice_ledger, batch_size=1)
    assert (more.inserted, more.batches) == (2, 2)
    # the marks are lost (a crash after the server committed): the re-push goes through the upsert
    org.alice_ledger.connection.execute("UPDATE sync_targets SET last_call_id = 0, last_change_seq = 0")
    repeat = sync(org.dsn["alice"], ledger=org.alice_ledger, batch_size=3)
    assert (repeat.inserted, repeat.updated, repeat.unchanged) == (0, 0, 10)
    # a changed row follows
    org.alice_ledger.connection.execute("UPDATE calls SET cost_pusd = 7000000 WHERE id = 1")
    changed = sync(org.dsn["alice"], ledger=org.alice_ledger)
    assert (changed.inserted, changed.updated) == (0, 1)
    assert org.totals("alice") == (12, (185 + 90 - 1 + 7) * MICRO)
    assert org.totals() == (18, (15_685 + 90 - 1 + 7) * MICRO)


# -- errors a person can act on ----------------------------------------------------------------------------


def test_syncing_a_ledger_registered_by_someone_else_is_one_line_and_writes_nothing(org):
    org.alice_ledger.write_many(calls("search", [60], start=30))
    before = org.totals()
    expected = (
        rf"^ledger {ledger_id(org.alice_ledger)} \(alice.db\) is registered on the team ledger by "
        rf"another role, not {org.role['bob']}: "
    )
    with pytest.raises(LedgerNotYours, match=expected):
        sync(org.dsn["bob"], ledger=org.alice_ledger)
    assert org.totals() == before
    out = run("sync", "--to", org.dsn["bob"], "--db", str(org.alice_ledger.path))
    assert out.exit_code == 1
    assert len(out.output.strip().splitlines()) == 1
    assert out.output.startswith(f"Error: ledger {ledger_id(org.alice_ledger)} (alice.db) is registered")
    assert org.totals() == before


def test_a_role_without_a_team_is_told_what_to_do(org, tmp_path):
    erin = f"{org.prefix}_erin"
    with psycopg.connect(org.admin, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {erin} LOGIN")
        conn.execute(f"GRANT llmcost_members TO {erin}")  # in the group by hand, but not a member
    mine = Ledger(tmp_path / "erin.db")
    mine.write_many(calls("search", [1]))
    fix = rf"an admin runs `llmcost team add-member {erin} --team TEAM --dsn ADMIN_DSN`"
    with pytest.raises(
        NotAMember, match=rf"^role {erin} has no team on the team ledger \(schema llmcost\): {fix}"
    ):
        sync(as_role(org.admin, erin), ledger=mine)
    with pytest.raises(NotAMember, match=fix):
        Ledger(as_role(org.admin, erin)).count()
    # and a role outside the group altogether
    frank = f"{org.prefix}_frank"
    with psycopg.connect(org.admin, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {frank} LOGIN")
    with pytest.raises(NotAMember, match=rf"^role {frank} may not read the team ledger"):
        sync(as_role(org.admin, frank), ledger=mine)
    out = run("sync", "--to", as_role(org.admin, frank), "--db", str(mine.path))
    assert out.exit_code == 1 and out.output.startswith(f"Error: role {frank} may not read the team ledger")
    assert len(out.output.strip().splitlines()) == 1
    assert org.totals() == (16, 15_685 * MICRO)
    mine.close()


def test_removed_member_reads_and_writes_nothing(org):
    out = run("team", "remove-member", org.role["dave"], "--dsn", org.admin)
    assert out.exit_code == 0
    dave = org.role["dave"]
    assert out.output == f"member {dave}: removed (role {dave} kept; it reads and writes nothing here now)\n"
    with pytest.raises(NotAMember):
        Ledger(org.dsn["dave"]).count()
    # taking one team of two
    run("team", "add-member", org.role["alice"], "--team", "ads", "--dsn", org.admin)
    assert org.totals("alice") == (15, 15_185 * MICRO)  # + Bob's five ads calls
    out = run("team", "remove-member", org.role["alice"], "--team", "ads", "--dsn", org.admin)
    assert out.output == f"member {org.role['alice']}: team search + the ledgers it synced\n"
    assert org.totals("alice") == SEES["alice"]
    out = run("team", "remove-member", org.role["alice"], "--team", "search", "--dsn", org.admin)
    assert out.exit_code == 1 and "would have no team left" in out.output


def test_a_non_admin_running_team_init_is_refused_and_nothing_is_written(org, db):
    with psycopg.connect(org.admin) as conn:
        policies = conn.execute("SELECT policyname, qual FROM pg_policies ORDER BY 1, 2").fetchall()
    for command in (["init"], ["add-member", "mallory", "--team", "search"], ["members"]):
        out = run("team", *command, "--dsn", org.dsn["alice"])
        assert out.exit_code == 1
        assert out.output.splitlines() == [
            f"Error: role {org.role['alice']} cannot run `llmcost team {command[0]}`: that takes a "
            "superuser, or a role with CREATEROLE that owns schema llmcost; connect as the admin "
            "(--dsn postgresql://ADMIN@host/db)"
        ]
    with psycopg.connect(org.admin) as conn:
        assert conn.execute("SELECT policyname, qual FROM pg_policies ORDER BY 1, 2").fetchall() == policies
        assert conn.execute("SELECT count(*) FROM llmcost.members").fetchone()[0] == 4
        assert conn.execute("SELECT FROM pg_roles WHERE rolname = 'mallory'").fetchone() is None
    with pytest.raises(NotAdmin), connect(org.dsn["alice"]) as conn:
        init(conn, "other")
    with psycopg.connect(org.admin) as conn:
        assert conn.execute("SELECT FROM pg_namespace WHERE nspname = 'other'").fetchone() is None


def test_add_member_needs_a_team_and_an_initialised_schema(db):
    dsn, prefix = db
    out = run("team", "add-member", f"{prefix}_x", "--dsn", dsn)
    assert out.exit_code == 2 and "give NAME a team (--team TEAM, repeatable) or --finops" in out.output
    with (
        pytest.raises(
            AccessError, match=r"^schema llmcost has no access control yet: run `llmcost team init"
        ),
        connect(dsn) as conn,
    ):
        add_member(conn, f"{prefix}_x", teams=["search"])
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT FROM pg_roles WHERE rolname = %s", (f"{prefix}_x",)).fetchone() is None


# -- add-member, members -----------------------------------------------------------------------------------


def test_passwords_are_set_scram_hashed_from_a_file_or_the_prompt(org, tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("correct horse\n")
    grace, heidi = f"{org.prefix}_grace", f"{org.prefix}_heidi"
    out = run(
        "team", "add-member", grace, "--team", "search", "--password-file", str(secret), "--dsn", org.admin
    )
    assert out.output.splitlines() == [
        f"role {grace}: created (LOGIN)",
        f"role {grace}: password set (SCRAM-SHA-256)",
        f"member {grace}: team search + the ledgers it synced",
    ]
    out = run("team", "add-member", heidi, "--team", "ads", "--password", "--dsn", org.admin,
              input="battery staple\nbattery staple\n")  # fmt: skip
    assert out.exit_code == 0 and "battery" not in out.output
    with psycopg.connect(org.admin) as conn:
        stored = dict(conn.execute(
            "SELECT rolname, rolpassword FROM pg_authid WHERE rolname IN (%s, %s)", (grace, heidi)
        ).fetchall())  # fmt: skip
    assert all(p.startswith("SCRAM-SHA-256$4096:") for p in stored.values())
    assert "correct" not in stored[grace] and "battery" not in stored[heidi]
    # an existing role is adopted, its teams added to
    out = run("team", "add-member", grace, "--team", "ads", "--dsn", org.admin)
    assert out.output.splitlines() == [
        f"role {grace}: exists, adopted",
        f"member {grace}: teams ads, search + the ledgers it synced",
    ]


def test_members_lists_who_sees_what(org):
    out = run("team", "members", "--dsn", org.admin)
    a, b, c, d = (org.role[w] for w in ("alice", "bob", "carol", "dave"))
    w = max(len(c), len(a))
    assert out.output.splitlines() == [
        f"{'role'.ljust(w)}  teams   finops  login  ledgers  sees",
        f"{c.ljust(w)}  —       yes     yes    0        FinOps: every call",
        f"{a.ljust(w)}  search  no      yes    1        team search + the ledgers it synced",
        f"{b.ljust(w)}  ads     no      yes    1        team ads + the ledgers it synced",
        f"{d.ljust(w)}  infra   no      yes    0        team infra + the ledgers it synced",
    ]
    with connect(org.admin) as conn:
        assert [m.role for m in members(conn)] == [c, a, b, d]


# -- migrating a shared-role deployment --------------------------------------------------------------------


def test_migrating_a_shared_role_deployment(db, tmp_path, monkeypatch):
    dsn, prefix = db
    shared, alice, bob = f"{prefix}_shared", f"{prefix}_alice", f"{prefix}_bob"
    # yesterday's docs/team.md: one role for everybody, owning the schema it created (before access control:
    # version 2, which this release's sync needs for its usage_source column)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {shared} LOGIN")
        conn.execute(f"GRANT CREATE ON DATABASE {dsn.rsplit('/', 1)[1]} TO {shared}")
    laptop_a, laptop_b = Ledger(tmp_path / "alice.db"), Ledger(tmp_path / "bob.db")
    laptop_a.write_many(ALICE_CALLS)
    laptop_b.write_many(BOB_CALLS)
    with monkeypatch.context() as m:
        m.setattr(team_schema, "PG_MIGRATIONS", team_schema.PG_MIGRATIONS[:2])  # the version it ran
        for laptop in (laptop_a, laptop_b):
            assert sync(as_role(dsn, shared), ledger=laptop).inserted == 8
    with psycopg.connect(as_role(dsn, shared)) as conn:  # the shared role may wipe anybody's rows
        assert conn.execute("SELECT max(version) FROM llmcost.migrations").fetchone()[0] == 2
    # the admin puts it under access control
    out = run("team", "init", "--dsn", dsn)
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0] == "schema llmcost: migrated from version 2 to 3"
    assert (
        f"owner of schema llmcost and its tables: postgres (was {shared}, which keeps no privilege)" in lines
    )
    assert lines[-1].startswith("2 ledger(s) synced before roles have no owner")
    listing = run("team", "members", "--dsn", dsn).output.splitlines()
    assert listing[0] == "no members yet: llmcost team add-member NAME --team TEAM --dsn ADMIN_DSN"
    assert listing[1].startswith(f"unowned ledger {ledger_id(laptop_a)} (alice.db on ")
    assert listing[1].endswith(f"hand it over with --ledger {ledger_id(laptop_a)}")
    # each laptop gets a role of its own, and its ledger
    for role, team, laptop in ((alice, "search", laptop_a), (bob, "ads", laptop_b)):
        out = run("team", "add-member", role, "--team", team, "--ledger", ledger_id(laptop), "--dsn", dsn)
        assert out.output.splitlines()[-1] == f"ledger {ledger_id(laptop)}: now {role}'s (was nobody's)"
    # the shared role reads and writes nothing any more
    with pytest.raises(NotAMember, match=rf"^role {shared} may not read the team ledger"):
        sync(as_role(dsn, shared), ledger=laptop_a)
    conn = psycopg.connect(as_role(dsn, shared), autocommit=True)
    with conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("DELETE FROM llmcost.calls")
    # the laptops sync on as their roles: a new DSN is a new target, so its first sync checks the rows the
    # shared role pushed (all unchanged) and adds the new one
    laptop_a.write_many(calls("search", [40], start=20))
    result = sync(as_role(dsn, alice), ledger=laptop_a)
    assert (result.inserted, result.updated, result.unchanged) == (1, 0, 8)
    result = sync(as_role(dsn, alice), ledger=laptop_a)
    assert (result.inserted, result.updated, result.unchanged) == (0, 0, 0)
    for role, (n, total) in ((alice, (11, 225 * MICRO)), (bob, SEES["bob"])):
        team = Ledger(as_role(dsn, role))
        try:
            assert (team.count(), team.total_cost()) == (n, total)
        finally:
            team.close()
    with psycopg.connect(dsn) as conn:  # the legacy rows got their `team` column when it was added
        assert conn.execute("SELECT count(*) FROM llmcost.calls WHERE team IS NULL").fetchone()[0] == 1
    laptop_a.close()
    laptop_b.close()


def test_an_old_member_sync_against_an_unmigrated_schema_says_to_run_init(db, tmp_path):
    dsn, prefix = db
    with connect(dsn) as conn:
        init(conn)
        add_member(conn, f"{prefix}_alice", teams=["search"])
    # a newer llmcost_nb with a migration only the admin may apply
    newer = (*team_schema.PG_MIGRATIONS, (99, "later", "CREATE TABLE {s}.later (x int)"))
    mine = Ledger(tmp_path / "a.db")
    mine.write_many(calls("search", [1]))
    with pytest.MonkeyPatch.context() as m:
        m.setattr(team_schema, "PG_MIGRATIONS", newer)
        with pytest.raises(SyncError, match=r"an admin runs `llmcost team init --dsn ADMIN_DSN`$"):
            sync(as_role(dsn, f"{prefix}_alice"), ledger=mine)
    mine.close()


def test_the_sync_tests_superuser_path_is_unchanged(db, tmp_path):
    """Without `team init` (the shared-role set-up) a sync still COPYs and reads everything."""
    dsn, _ = db
    mine = Ledger(tmp_path / "a.db")
    mine.write_many(ALICE_CALLS)
    assert sync(dsn, ledger=mine).inserted == 8
    shared = PostgresLedger(dsn)
    try:
        assert (shared.count(), shared.total_cost()) == (8, 170 * MICRO)
    finally:
        shared.close()
    mine.close()


def test_an_admin_need_not_be_a_superuser(db, tmp_path):
    """A role with CREATEROLE and CREATE on the database runs init, adds members and syncs (as the owner it
    reads everything, through the fast COPY path); its members get their slice."""
    dsn, prefix = db
    boss, alice = f"{prefix}_boss", f"{prefix}_alice"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {boss} LOGIN CREATEROLE")
        conn.execute(f"GRANT CREATE ON DATABASE {dsn.rsplit('/', 1)[1]} TO {boss}")
    out = run("team", "init", "--dsn", as_role(dsn, boss))
    assert out.exit_code == 0, out.output
    assert f"owner of schema llmcost and its tables: {boss}" in out.output.splitlines()
    assert run("team", "add-member", alice, "--team", "search", "--dsn", as_role(dsn, boss)).exit_code == 0
    theirs, mine = Ledger(tmp_path / "boss.db"), Ledger(tmp_path / "alice.db")
    theirs.write_many(BOB_CALLS)
    mine.write_many(ALICE_CALLS)
    assert sync(as_role(dsn, boss), ledger=theirs).inserted == 8
    assert sync(as_role(dsn, alice), ledger=mine).inserted == 8
    for role, expected in ((boss, (16, 15_685 * MICRO)), (alice, SEES["alice"])):
        team = Ledger(as_role(dsn, role))
        try:
            assert (team.count(), team.total_cost()) == expected
        finally:
            team.close()
    theirs.close()
    mine.close()
