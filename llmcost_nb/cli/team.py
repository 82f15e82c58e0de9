"""Team commands of the ``llmcost`` CLI: ``sync`` (to PostgreSQL), ``reconcile`` (against a provider export),
``team init|add-member|remove-member|members`` (who sees what on the team ledger: roles, row-level security).

Registered on the main group by :func:`register` (``llmcost_nb/cli.py``); thin shells over the Python API.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

__all__ = ["reconcile_command", "register", "sync_command", "team_group"]

_DB_HELP = "The local ledger file (default: $LLMCOST_DB, else ~/.local/share/llmcost_nb/ledger.db)."


def _db(ctx: click.Context, db: str | None) -> Any:
    """The --db of this command, else one the group stored in ctx.obj, else the default ledger."""
    from ..ledger.sqlite import Ledger

    if db is None and isinstance(ctx.obj, dict):
        db = ctx.obj.get("db")
    return Ledger(db) if db is not None else Ledger()


@click.command("sync")
@click.option(
    "--to",
    "dsn",
    envvar="LLMCOST_SYNC_DSN",
    metavar="postgresql://…",
    help="The team ledger's PostgreSQL URL (default: $LLMCOST_SYNC_DSN).",
)
@click.option("--db", type=click.Path(dir_okay=False), default=None, help=_DB_HELP)
@click.option(
    "--schema", default="llmcost", show_default=True, help="PostgreSQL schema holding the team ledger."
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=20_000,
    show_default=True,
    help="Rows per transaction.",
)
@click.option(
    "--every",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="Keep running: sync again every SECONDS (Ctrl-C stops); failures are retried.",
)
@click.pass_context
def sync_command(
    ctx: click.Context, dsn: str | None, db: str | None, schema: str, batch_size: int, every: float | None
) -> None:
    """Push the local ledger's new and changed rows to the shared PostgreSQL team ledger.

    Idempotent and resumable: run it again after any failure, nothing is pushed twice.

    \b
    llmcost sync --to postgresql://me@db.internal/team
    llmcost sync --to postgresql://me@db.internal/team --db ~/experiments.db --every 60
    """
    from ..team.sync import SyncError, sync

    if not dsn:
        raise click.UsageError("no team ledger: pass --to postgresql://user@host/db or set $LLMCOST_SYNC_DSN")
    ledger = _db(ctx, db)
    while True:
        try:
            click.echo(str(sync(dsn, ledger=ledger, schema=schema, batch_size=batch_size)))
        except (SyncError, ValueError) as exc:
            if every is None:
                raise click.ClickException(str(exc)) from None
            click.echo(f"sync failed, retrying in {every:g} s: {exc}", err=True)
        if every is None:
            return
        try:
            time.sleep(every)
        except KeyboardInterrupt:
            return


@click.command("reconcile")
@click.argument("export", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--db", type=click.Path(dir_okay=False), default=None, help=_DB_HELP)
@click.option("--tolerance", default="0.01", show_default=True, help="Absolute tolerance in USD.")
@click.option("--rel-tolerance", default="0.01", show_default=True, help="Relative tolerance (0.01 = 1 %).")
@click.option(
    "--key",
    type=click.Choice(["project_id", "api_key_id", "workspace_id"]),
    default=None,
    help="Also split by this id of the export.",
)
@click.option("--key-tag", default=None, help="The ledger tag holding that id (default: the --key name).")
@click.option("--all", "show_all", is_flag=True, help="List matching rows too.")
@click.option(
    "--csv",
    "csv_out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write every row to this CSV file.",
)
@click.option("--check", is_flag=True, help="Exit with status 1 unless every row matches.")
@click.pass_context
def reconcile_command(
    ctx: click.Context,
    export: Path,
    db: str | None,
    tolerance: str,
    rel_tolerance: str,
    key: str | None,
    key_tag: str | None,
    show_all: bool,
    csv_out: Path | None,
    check: bool,
) -> None:
    """Compare the ledger with a provider's usage or cost export (OpenAI, Anthropic) by day × model.

    \b
    llmcost reconcile openai_costs.csv
    llmcost reconcile cost_report.json --key workspace_id --key-tag workspace --check
    """
    from ..team.reconcile import reconcile

    ledger = _db(ctx, db)
    try:
        result = reconcile(
            ledger, export, tolerance=tolerance, rel_tolerance=rel_tolerance, key=key, key_tag=key_tag
        )
    except ValueError as exc:  # a tolerance that is not a number (an ExportFormatError is one too)
        raise click.ClickException(str(exc)) from None
    click.echo(str(result))
    rows = result.rows if show_all else result.rows[result.rows["status"] != "match"]
    if len(rows):
        columns = [
            "day",
            "model",
            *(["key"] if key else []),
            "status",
            *(
                ["export_cost_usd", "ledger_cost_usd", "difference_usd",
                 *(["ledger_unpriced"] if rows["ledger_unpriced"].any() else [])]  # never as $0
                if result.basis == "cost"
                else [
                    "export_input_tokens",
                    "ledger_input_tokens",
                    "export_output_tokens",
                    "ledger_output_tokens",
                ]
            ),
        ]
        shown = rows[columns].astype(object)
        click.echo(shown.where(shown.notna(), "—").to_string(index=False))
    if csv_out is not None:
        result.rows.to_csv(csv_out, index=False)
    if check and not result.ok:
        ctx.exit(1)


_ADMIN_DSN = click.option(
    "--dsn",
    required=True,
    envvar="LLMCOST_ADMIN_DSN",
    metavar="postgresql://ADMIN@…",
    help="The team database, connected as its admin (default: $LLMCOST_ADMIN_DSN).",
)
_SCHEMA = click.option(
    "--schema", default="llmcost", show_default=True, help="PostgreSQL schema holding the team ledger."
)


@contextlib.contextmanager
def _admin_connection(dsn: str) -> Iterator[Any]:
    """A connection as the admin; a refusal by PostgreSQL (say, a schema owned by a role the admin is not a
    member of) is one line too. Nothing is half-done: each command is one transaction."""
    import psycopg

    from ..team.schema import connect

    with connect(dsn) as conn:
        try:
            yield conn
        except psycopg.Error as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise click.ClickException(f"PostgreSQL refused: {message}; nothing was changed") from None


@click.group("team")
def team_group() -> None:
    """Who sees what on the PostgreSQL team ledger: roles and row-level security (run as its admin).

    \b
    llmcost team init --dsn postgresql://admin@db.internal/llmcost
    llmcost team add-member alice --team search --password --dsn postgresql://admin@db.internal/llmcost
    llmcost team add-member carol --finops --dsn postgresql://admin@db.internal/llmcost
    llmcost team members --dsn postgresql://admin@db.internal/llmcost
    """


@team_group.command("init")
@_ADMIN_DSN
@_SCHEMA
def init_command(dsn: str, schema: str) -> None:
    """Create or migrate the team schema and put it under access control (idempotent).

    Group roles SCHEMA_members and SCHEMA_finops, the admin as owner of the schema and its tables, grants
    (members: no DELETE, no TRUNCATE) and row-level security policies. Says what it did.
    """
    from ..team.access import init

    with _admin_connection(dsn) as conn:
        for line in init(conn, schema):
            click.echo(line)


def _password(prompt: bool, password_file: Path | None) -> str | None:
    if prompt and password_file is not None:
        raise click.UsageError("--password and --password-file: choose one")
    if password_file is not None:
        text = password_file.read_text(encoding="utf-8").rstrip("\r\n")
        if not text:
            raise click.UsageError(f"{password_file} is empty")
        return text
    if prompt:
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)  # getpass: never echoed
    return None


@team_group.command("add-member")
@click.argument("name")
@click.option(
    "--team",
    "teams",
    multiple=True,
    metavar="TEAM",
    help="A team it sees (repeatable): the calls' `team` tag.",
)
@click.option("--finops", is_flag=True, help="FinOps: sees every call.")
@click.option("--password", "prompt", is_flag=True, help="Set its password (asked for, never echoed).")
@click.option(
    "--password-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Set its password from this file's first line.",
)
@click.option(
    "--ledger",
    "ledgers",
    multiple=True,
    metavar="LEDGER_ID",
    help="Hand it this synced ledger (repeatable): it alone syncs it from now on.",
)
@_ADMIN_DSN
@_SCHEMA
def add_member_command(
    name: str,
    teams: tuple[str, ...],
    finops: bool,
    prompt: bool,
    password_file: Path | None,
    ledgers: tuple[str, ...],
    dsn: str,
    schema: str,
) -> None:
    """Make login role NAME a member (created if missing, adopted if it exists) and record its teams.

    Without --password/--password-file the role's password is left as it is (certificate or peer auth).
    """
    from ..team.access import add_member

    if not teams and not finops:
        raise click.UsageError("give NAME a team (--team TEAM, repeatable) or --finops")
    password = _password(prompt, password_file)
    with _admin_connection(dsn) as conn:
        try:
            lines = add_member(
                conn, name, teams=teams, finops=finops, password=password, ledgers=ledgers, schema=schema
            )
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    for line in lines:
        click.echo(line)


@team_group.command("remove-member")
@click.argument("name")
@click.option("--team", "teams", multiple=True, metavar="TEAM", help="Only take this team (repeatable).")
@_ADMIN_DSN
@_SCHEMA
def remove_member_command(name: str, teams: tuple[str, ...], dsn: str, schema: str) -> None:
    """Remove member NAME (or only some of its teams). The role and the rows it synced stay."""
    from ..team.access import remove_member

    with _admin_connection(dsn) as conn:
        try:
            lines = remove_member(conn, name, teams=teams, schema=schema)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    for line in lines:
        click.echo(line)


@team_group.command("members")
@_ADMIN_DSN
@_SCHEMA
def members_command(dsn: str, schema: str) -> None:
    """Who sees what: every member, its teams and the ledgers it registered; ledgers nobody owns."""
    from ..team.access import members, unowned_ledgers

    with _admin_connection(dsn) as conn:
        rows = members(conn, schema)
        orphans = unowned_ledgers(conn, schema)
    header = ("role", "teams", "finops", "login", "ledgers", "sees")
    table = [header] + [
        (m.role, ", ".join(m.teams) or "—", "yes" if m.finops else "no", "yes" if m.can_login else "no",
         str(m.ledgers), m.sees)
        for m in rows
    ]  # fmt: skip
    if not rows:
        click.echo("no members yet: llmcost team add-member NAME --team TEAM --dsn ADMIN_DSN")
    else:
        widths = [max(len(r[i]) for r in table) for i in range(len(header))]
        for r in table:
            click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    for ledger_id, label, host in orphans:
        click.echo(f"unowned ledger {ledger_id} ({label} on {host}): hand it over with --ledger {ledger_id}")


def register(group: click.Group) -> None:
    """Add ``sync``, ``reconcile`` and ``team`` to the ``llmcost`` group."""
    group.add_command(sync_command)
    group.add_command(reconcile_command)
    group.add_command(team_group)
