"""The ``llmcost`` command line: reports over a ledger, a sample ledger, model prices.

    llmcost report --by model --since 7d
    llmcost daily 2026-11-20 --budget 5
    llmcost sample demo.db --rows 100000
    llmcost prices gpt-4.1
    llmcost demo --out llmcost-demo

A click group (``main``); every command takes ``--db PATH`` (default: ``$LLMCOST_DB``, else
``~/.local/share/llmcost_nb/ledger.db``), also accepted before the command (``llmcost --db X report``).
Errors are one line (``click.ClickException``), never a traceback: the group turns any
:class:`~llmcost_nb.errors.LlmcostError` a command raises into its message's first line. Other modules add
their commands with a ``register(group)`` function, called at the end of this module.
"""

from __future__ import annotations

import json
from typing import Any

import click

from ..errors import LlmcostError

__all__ = ["main"]

_DB_HELP = "The ledger file (default: $LLMCOST_DB, else ~/.local/share/llmcost_nb/ledger.db)."
_db_option = click.option("--db", type=click.Path(dir_okay=False), default=None, help=_DB_HELP)


def _ledger(db: str | None, *, must_exist: bool = True) -> Any:
    from pathlib import Path

    from ..ledger.sqlite import Ledger, default_path

    ctx = click.get_current_context()
    if db is None and isinstance(ctx.obj, dict):
        db = ctx.obj.get("db")
    if db is not None and db.startswith(("postgresql://", "postgres://")):  # the team ledger (read-only)
        try:
            team = Ledger(db)
            team.connection  # connect now, so a wrong address or database is reported here  # noqa: B018
            return team
        except Exception as exc:  # the connection error names the host and the reason, never the password
            raise click.ClickException(f"cannot open the team ledger: {exc}") from None
    path = Path(db).expanduser() if db is not None else default_path()
    if must_exist and not path.exists():
        raise click.ClickException(f"no ledger at {path}: pass --db PATH or set LLMCOST_DB")
    return Ledger(path)  # a LedgerError is one line (the group)


def _fail(exc: Exception) -> click.ClickException:
    """``exc`` as a one-line CLI error: its message's first line (its class name if it has no message)."""
    return click.ClickException(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


class _Group(click.Group):
    """A click group where an :class:`LlmcostError` (any of llmcost_nb's own errors) raised by a command
    ends it with one line, never a traceback. Subgroups (``llmcost replay``) run inside it: covered too."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LlmcostError as exc:
            raise _fail(exc) from None


@click.group(cls=_Group)
@click.option("--db", type=click.Path(dir_okay=False), default=None, help=_DB_HELP)
@click.version_option(package_name="llmcost_nb")
@click.pass_context
def main(ctx: click.Context, db: str | None) -> None:
    """See what your LLM calls cost: reports over the llmcost_nb ledger."""
    ctx.ensure_object(dict)
    if db is not None:
        ctx.obj["db"] = db


def _table(frame: Any) -> str:
    """A frame as an aligned text table, money as the cell summary shows it (``$0.000044``, ``$2.4500``);
    a summary's ``cost_usd`` says what it leaves out and what it guesses (``≈$0.004200 (1 estimated)``,
    ``$1.2000 + 2 unpriced``, ``2 unpriced``: :func:`~llmcost_nb.core.money.format_total`)."""
    from decimal import Decimal

    from ..core.money import format_total, format_usd

    shown = frame.copy()
    if {"cost_usd", "unpriced", "estimated"} <= set(shown.columns):
        shown["cost_usd"] = [
            format_total(c, unpriced=u, estimated=e)
            for c, u, e in zip(shown["cost_usd"], shown["unpriced"], shown["estimated"], strict=True)
        ]
        shown = shown.drop(columns=["unpriced", "estimated"])
    for col in shown.columns:
        if shown[col].dtype == object and any(isinstance(v, Decimal) for v in shown[col]):
            shown[col] = [format_usd(v) for v in shown[col]]
        elif shown[col].dtype.kind == "f":
            shown[col] = [f"{v:,.1f}" if v == v else "" for v in shown[col]]
        elif shown[col].dtype.kind == "i":
            shown[col] = [f"{v:,}" for v in shown[col]]
    return shown.to_string(index=False, na_rep="-")


def _emit(frame: Any, fmt: str) -> None:
    if fmt == "csv":
        click.echo(frame.to_csv(index=False), nl=False)
    elif fmt == "json":  # exact costs as strings, counts as numbers, no value (NaN) as null: strict JSON
        records = [
            {k: (str(v) if not isinstance(v, (int, float, str, type(None))) else None if v != v else v)
             for k, v in row.items()}
            for row in frame.to_dict(orient="records")
        ]
        click.echo(json.dumps(records, indent=2, allow_nan=False))
    else:
        click.echo(_table(frame) if len(frame) else "no calls")


@main.command()
@click.option(
    "--by",
    "by",
    multiple=True,
    default=("model",),
    show_default=True,
    help="Group by: day, week, month, hour, model, provider, status, user or tag:KEY (repeatable).",
)
@click.option("--since", default=None, help="From: 7d (last 7 days), 24h, YYYY-MM-DD or an ISO time.")
@click.option("--until", default=None, help="Up to (excluded): YYYY-MM-DD or an ISO time.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
    help="Output format (costs stay exact in csv and json, with unpriced and estimated call counts).",
)
@_db_option
def report(by: tuple[str, ...], since: str | None, until: str | None, fmt: str, db: str | None) -> None:
    """Requests, tokens, cost and latency grouped by --by.

    In the table, a cost whose tokens were partly estimated reads ``≈$0.0042 (1 estimated)`` and billed calls
    with no known price are named, never counted as $0: ``$1.2000 + 2 unpriced``. csv and json keep the exact
    cost and give ``unpriced`` and ``estimated`` as counts."""
    frame = _ledger(db).summary(by=list(by), since=since, until=until)
    columns = [
        *frame.columns[: len(by)],
        "requests",
        "errors",
        "input_tokens",
        "cache_read_tokens",
        "output_tokens",
        "cost_usd",
        "unpriced",
        "estimated",
        "avg_latency_ms",
        "p95_latency_ms",
    ]
    _emit(frame if fmt != "table" else frame[columns], fmt)


@main.command()
@click.argument("date", required=False)
@click.option(
    "--budget", default=None, help="Daily budget in USD (default: the ledger's daily budget, if set)."
)
@_db_option
def daily(date: str | None, budget: str | None, db: str | None) -> None:
    """The daily report for DATE (default today, UTC): spend per model, total, budget used."""
    ledger = _ledger(db)
    try:
        click.echo(str(ledger.daily_report(date, budget=budget)))
    except ArithmeticError as exc:  # a --budget that is not a number
        raise _fail(exc) from None


@main.command()
@click.argument("out", type=click.Path(dir_okay=False))
@click.option(
    "--rows", type=click.IntRange(min=1000), default=100_000, show_default=True, help="About this many calls."
)
@click.option(
    "--days", type=click.IntRange(min=21), default=90, show_default=True, help="Over this many days."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same ledger.")
@click.option("--end", default=None, help="Last day, YYYY-MM-DD (default: today, UTC).")
def sample(out: str, rows: int, days: int, seed: int, end: str | None) -> None:
    """Write a realistic sample ledger to OUT (a new file) for trying the reports and dashboard."""
    from pathlib import Path

    from ..testing.sample_data import generate

    if Path(out).exists():
        raise click.ClickException(f"{out} already exists: sample data goes into a new file")
    try:
        result = generate(rows=rows, days=days, seed=seed, path=out, end=end)
    except ValueError as exc:  # an --end that is not a date
        raise _fail(exc) from None
    result.ledger.close()
    click.echo(
        f"wrote {result.rows:,} calls ({result.start} to {result.end}) to {out}; planted: spike on "
        f"{result.spike_day}, runaway loop on {result.runaway_day}"
    )


@main.command()
@click.argument("model")
@click.option("--provider", default=None, help="Provider id (openai, anthropic, google, ...) if ambiguous.")
@_db_option
def prices(model: str, provider: str | None, db: str | None) -> None:
    """The current price of MODEL per million tokens (your ledger's overrides first, then genai-prices)."""
    from ..ledger.sqlite import Ledger, default_path
    from ..pricing.pricer import Pricer

    ctx_db = db or (click.get_current_context().obj or {}).get("db")
    path = ctx_db or default_path()
    from pathlib import Path

    pricer = Ledger(path).pricer if Path(path).exists() else Pricer()
    units = pricer.unit_prices(provider, model)
    click.echo(f"{model}" + (f" ({provider})" if provider else ""))
    for name, value in units.items():
        unit = "per 1M tokens" if name.endswith("_mtok") else "per 1K" if name.endswith("_kcount") else ""
        click.echo(f"  {name:<24} ${value}" + (f" {unit}" if unit else ""))


def _register_commands() -> None:
    """The commands defined in other modules: ``sync``, ``reconcile``, ``check``, ``share``, ``demo``."""
    from ..testing.demo import register as register_demo
    from .check import register as register_check
    from .share import register as register_share
    from .team import register as register_team

    for register in (register_team, register_check, register_share, register_demo):
        register(main)


_register_commands()
