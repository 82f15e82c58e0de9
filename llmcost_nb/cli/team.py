"""Team commands of the ``llmcost`` CLI: ``sync`` (to PostgreSQL), ``reconcile`` (against a provider export).

Registered on the main group by :func:`register` (``llmcost_nb/cli.py``); thin shells over the Python API.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

__all__ = ["reconcile_command", "register", "sync_command"]

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


def register(group: click.Group) -> None:
    """Add ``sync`` and ``reconcile`` to the ``llmcost`` group."""
    group.add_command(sync_command)
    group.add_command(reconcile_command)
