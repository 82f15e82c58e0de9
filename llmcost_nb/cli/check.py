"""``llmcost check``: is the ledger file sound, and do its stored costs match re-pricing?

Registered on the main group by :func:`register` (``llmcost_nb/cli.py``); a thin shell over
:func:`llmcost_nb.ledger.check`. Exits 0 when the ledger is sound, 1 when a problem was found.
"""

from __future__ import annotations

import click

__all__ = ["check_command", "register"]

_DB_HELP = "The ledger file (default: $LLMCOST_DB, else ~/.local/share/llmcost_nb/ledger.db)."


@click.command("check")
@click.argument("path", type=click.Path(dir_okay=False), required=False)
@click.option("--db", type=click.Path(dir_okay=False), default=None, help=_DB_HELP)
@click.option("--no-reprice", is_flag=True, help="Skip comparing stored costs with re-pricing (faster).")
@click.pass_context
def check_command(ctx: click.Context, path: str | None, db: str | None, no_reprice: bool) -> None:
    """Check the ledger: schema version, SQLite integrity, plausible rows, costs equal to re-pricing.

    PATH (or --db) is the ledger file. Opens the file read-only (nothing is repaired or migrated) and
    reports problems in words.
    """
    from ..ledger import check
    from ..ledger.sqlite import default_path

    if path is not None and db is not None and path != db:
        raise click.UsageError("give the ledger once: PATH or --db")
    db = path or db
    if db is None and isinstance(ctx.obj, dict):
        db = ctx.obj.get("db")
    report = check(db if db is not None else default_path(), reprice=not no_reprice)
    click.echo(str(report))
    if not report.ok:
        ctx.exit(1)


def register(group: click.Group) -> None:
    """Add ``check`` to the ``llmcost`` group."""
    group.add_command(check_command)
