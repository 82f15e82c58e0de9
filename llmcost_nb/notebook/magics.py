"""``%llmcost`` and ``%%llmcost``: thin shells over the Python API (see :mod:`llmcost_nb.notebook.extension`
for how a ``%%llmcost`` cell is tracked while running as an ordinary cell).

    %%llmcost --tag variant=A --budget 0.50 --name baseline
    %llmcost status | on | off | tag KEY=VALUE... | budget USD [--scope S] [--hard] | db PATH | estimate EXPR

Options can also be set with ``%config LlmcostMagics.<name> = ...`` (``%config LlmcostMagics`` lists them).
"""

from __future__ import annotations

import argparse
import shlex
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from traitlets import Bool, Int, List, Unicode, observe

from ..core.tags import clean_tags

if TYPE_CHECKING:
    from ..budget import Budget

__all__ = ["BudgetTable", "CellArgs", "LlmcostMagics", "Status", "parse_cell_line"]


class _Help(Exception):
    """``-h`` was given: the help has been printed."""


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one-line ``UsageError``s and whose ``-h`` returns instead of exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see {self.prog} -h)")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        raise _Help()


def _tag(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"a tag is KEY=VALUE, got {text!r}")
    try:
        ((key, value),) = clean_tags({key.strip(): value.strip()}, "--tag").items()
    except ValueError as exc:  # longer than a tag may be
        raise argparse.ArgumentTypeError(str(exc)) from None
    return key, value


def _usd(text: str) -> Decimal:
    from ..core.money import parse_usd

    try:
        return parse_usd(text.lstrip("$"), "USD")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _cell_parser() -> _Parser:
    p = _Parser(prog="%%llmcost", description="Track every LLM call the cell makes and show what it cost.")
    p.add_argument("--tag", "-t", type=_tag, action="append", default=[], metavar="KEY=VALUE",
                   help="tag the cell's calls (repeatable)")
    p.add_argument("--budget", "-b", type=_usd, metavar="USD",
                   help="stop a request of this cell before it is sent if the cell could spend more than USD")
    p.add_argument("--quiet", "-q", action="store_true", help="track, but show no summary")
    p.add_argument("--name", "-n", help="a name for the cell in the ledger")
    p.add_argument("--replay", nargs="?", const="replay-or-record", metavar="MODE",
                   choices=("off", "record", "replay-or-record", "replay-only"),
                   help="serve recorded responses for this cell (MODE default: replay-or-record)")
    return p


@dataclass(frozen=True)
class CellArgs:
    """What a ``%%llmcost`` line asks for."""

    tags: dict[str, str] = field(default_factory=dict)
    budget: Decimal | None = None
    quiet: bool = False
    name: str | None = None
    help: bool = False
    replay: str | None = None  # %%llmcost --replay [MODE] (llmcost_nb.replay)


def parse_cell_line(line: str) -> CellArgs:
    """Parse the arguments of a ``%%llmcost`` line (without the ``%%llmcost``); raises ``UsageError``."""
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"%%llmcost: {exc}") from None
    if "-h" in words or "--help" in words:  # parsed several times per cell: print the help only once, later
        return CellArgs(help=True)
    ns = _cell_parser().parse_args(words)
    return CellArgs(dict(ns.tag), ns.budget, ns.quiet, ns.name, replay=ns.replay)


@dataclass
class Status:
    """``%llmcost status``: session totals, ledger and budgets."""

    session_id: str
    calls: int
    total_cost: Decimal
    ledger: str
    tracking_all: bool
    tags: dict[str, str]
    budgets: list[tuple[Budget, Decimal]]
    replay: str = "replay: off"  # mode, recordings and what replaying saved (llmcost_nb.replay.status)
    unpriced: int = 0  # billed calls with no known price: not in total_cost
    estimated: int = 0  # calls whose tokens were estimated: in total_cost, not exact
    capture: str = "capture: off"  # the HTTP stacks hooked (llmcost_nb.tracking.capture.status_line)
    budget_unpriced: dict[str, int] = field(default_factory=dict)  # budget scope -> unpriced calls left out

    def _lines(self) -> list[str]:
        from ..core.money import format_total, format_usd, not_counting

        total = format_total(self.total_cost, unpriced=self.unpriced, estimated=self.estimated)
        lines = [f"session {self.session_id[:8]}: {self.calls} calls, {total}",
                 f"ledger: {self.ledger}",
                 f"tracking: {'every cell' if self.tracking_all else '%%llmcost cells'}",
                 "tags: " + (", ".join(f"{k}={v}" for k, v in self.tags.items()) or "none")]
        lines += [f"budget {b.scope}: {format_usd(s)} of {format_usd(b.limit)}{' (hard)' if b.hard else ''}"
                  + (f" · {not_counting(n)}" if (n := self.budget_unpriced.get(b.scope)) else "")
                  for b, s in self.budgets] or ["budgets: none"]
        return [*lines, self.capture, self.replay]

    def __repr__(self) -> str:
        return "\n".join(self._lines())

    def _repr_html_(self) -> str:
        from html import escape

        lines = "<br>".join(escape(x) for x in self._lines())
        return f'<div class="llmcost-status mathjax_ignore tex2jax_ignore">{lines}</div>'


@dataclass
class BudgetTable:
    """``%llmcost budget``: every budget and what has been spent against it."""

    rows: list[tuple[Budget, Decimal]]
    unpriced: dict[str, int] = field(default_factory=dict)  # budget scope -> unpriced calls left out

    def _lines(self) -> list[str]:
        from ..core.money import format_usd, not_counting

        return [f"{b.describe()}; spent {format_usd(s)}"
                + (f" · {not_counting(n)}" if (n := self.unpriced.get(b.scope)) else "")
                for b, s in self.rows] or ["no budgets"]

    def __repr__(self) -> str:
        return "\n".join(self._lines())

    def _repr_html_(self) -> str:
        from html import escape

        lines = "<br>".join(escape(x) for x in self._lines())
        return f'<div class="llmcost-budgets mathjax_ignore tex2jax_ignore">{lines}</div>'


@magics_class
class LlmcostMagics(Magics):
    """The llmcost magics; options are traitlets (``%config LlmcostMagics.track_all = True``)."""

    track_all = Bool(False, help="Track every cell, as if each started with %%llmcost.").tag(config=True)
    quiet = Bool(False, help="Show no summary under tracked cells.").tag(config=True)
    widget = Bool(True, help="Show the summary as an ipywidget in a live kernel (HTML/text otherwise).").tag(
        config=True)
    record_estimates = Bool(True, help="Estimate each request's input tokens before sending (stored with "
                            "the call, to compare with what the provider counted).").tag(config=True)
    db = Unicode("", help="Ledger path ('' = the default: $LLMCOST_DB or the user data dir).").tag(
        config=True)
    alert_thresholds = List(
        [0.8, 1.0], help="Fractions of a budget at which %llmcost budget alerts.").tag(config=True)
    max_output_tokens = Int(4096, help="Output tokens a hard budget assumes for a request without a "
                            "max_tokens.").tag(config=True)

    def __init__(self, shell: Any, tracker: Any) -> None:
        super().__init__(shell=shell)
        self.tracker = tracker
        self._subcommands = {"budget": self._budget, "db": self._db, "estimate": self._estimate,
                             "off": self._off, "on": self._on, "status": self._status, "sync": _sync,
                             "tag": self._tag, "replay": _replay}

    @observe("db")
    def _db_changed(self, change: dict[str, Any]) -> None:
        from ..tracking.scope import get_session

        get_session().use_ledger(change["new"] or None)

    @observe("record_estimates")
    def _estimates_changed(self, change: dict[str, Any]) -> None:
        from ..analysis import estimate

        (estimate.activate if change["new"] else estimate.deactivate)()

    @observe("max_output_tokens")
    def _max_output_changed(self, change: dict[str, Any]) -> None:
        from ..budget import set_default_max_output_tokens

        set_default_max_output_tokens(int(change["new"]))

    # -- %%llmcost (normally handled by the input transformer; this runs when called some other way) ----
    @cell_magic("llmcost")
    def llmcost_cell(self, line: str, cell: str | None = None) -> Any:
        """Track every LLM call made while the cell runs; show calls, tokens and cost under it.

        %%llmcost [--tag KEY=VALUE]... [--budget USD] [--quiet] [--name NAME]
        """
        args = parse_cell_line(line)
        if args.help:
            _cell_parser().print_help()
            return None
        return self.shell.run_cell(f"%%llmcost {line}\n{cell or ''}").result

    # -- %llmcost SUBCOMMAND ----------------------------------------------------------------------------
    @line_magic("llmcost")
    def llmcost_line(self, line: str) -> Any:
        """%llmcost status | on | off | tag KEY=VALUE... | budget USD [--scope S] [--hard] | db PATH |
        estimate EXPR [--models M,...] [--output N]   (-h after any subcommand for its help)"""
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"%llmcost: {exc}") from None
        if not words or words[0] in ("-h", "--help", "help"):
            print(_LINE_HELP)
            return None
        name, rest = words[0], words[1:]
        handler = self._subcommands.get(name)
        if handler is None:
            allowed = ", ".join(sorted(self._subcommands))
            raise UsageError(f"%llmcost: unknown subcommand {name!r}, allowed values: {allowed}")
        try:
            return handler(rest)
        except _Help:
            return None

    def _parse(self, name: str, words: list[str], configure: Any = None) -> argparse.Namespace:
        parser = _Parser(prog=f"%llmcost {name}", description=_DESCRIPTIONS[name])
        if configure is not None:
            configure(parser)
        return parser.parse_args(words)

    def _status(self, words: list[str]) -> Status:
        from ..recording.replay import status_line
        from ..tracking import capture
        from ..tracking.scope import get_session
        from .widgets import all_budgets, budget_unpriced

        self._parse("status", words)

        session = get_session()
        replay = status_line(session)
        budgets = all_budgets(session)
        return Status(session.id, session.call_count, session.total_cost, str(session.ledger.path),
                      self.track_all, dict(session.tags), budgets, replay, session.unpriced,
                      session.estimated, capture.status_line(), budget_unpriced(budgets, session))

    def _on(self, words: list[str]) -> None:
        self._parse("on", words)
        self.track_all = True

    def _off(self, words: list[str]) -> None:
        self._parse("off", words)
        self.track_all = False

    def _tag(self, words: list[str]) -> dict[str, str]:
        from ..tracking.scope import get_session

        def configure(p: _Parser) -> None:
            p.add_argument("tags", nargs="*", type=_tag, metavar="KEY=VALUE")
            p.add_argument("--remove", "-r", action="append", default=[], metavar="KEY", help="remove a tag")
            p.add_argument("--clear", action="store_true", help="remove every session tag")

        ns = self._parse("tag", words, configure)
        session = get_session()
        if ns.clear:
            session.tags.clear()
        for key in ns.remove:
            session.tags.pop(key, None)
        session.tags.update(dict(ns.tags))
        return dict(session.tags)

    def _budget(self, words: list[str]) -> Any:
        from ..budget import limits as budget

        def configure(p: _Parser) -> None:
            p.add_argument("usd", nargs="?", metavar="USD|off",
                           help="the limit in USD, or 'off' to remove it")
            p.add_argument("--scope", "-s", default="session", metavar="SCOPE",
                           help="session | notebook | day | month | tag:KEY=VALUE (default: session)")
            p.add_argument("--hard", action="store_true",
                           help="stop a request before it is sent if it could pass the limit")

        ns = self._parse("budget", words, configure)
        notebook = self.tracker.notebook_path()
        try:
            if ns.usd is None:
                from ..tracking.scope import get_session
                from .widgets import all_budgets, budget_unpriced

                session = get_session()
                rows = all_budgets(session)
                return BudgetTable(rows, budget_unpriced(rows, session))
            if ns.usd == "off":
                return budget.remove_budget(ns.scope, notebook=notebook)
            return budget.set_budget(_usd_or_usage(ns.usd), ns.scope, hard=ns.hard, notebook=notebook,
                                     thresholds=[Decimal(str(t)) for t in self.alert_thresholds])
        except ValueError as exc:
            raise UsageError(f"%llmcost budget: {exc}") from None

    def _db(self, words: list[str]) -> str:
        def configure(p: _Parser) -> None:
            p.add_argument("path", nargs="?", help="the ledger file to use from now on")

        ns = self._parse("db", words, configure)
        from ..tracking.scope import get_session

        if ns.path is not None:
            self.db = ns.path
            try:
                get_session().ledger  # noqa: B018 — open now, so a bad path is reported here
            except Exception as exc:
                raise UsageError(f"%llmcost db: {exc}") from None
        return str(get_session().ledger.path)

    def _estimate(self, words: list[str]) -> Any:
        from ..analysis import estimate

        def configure(p: _Parser) -> None:
            p.add_argument("expr", help="messages (a list of dicts) or text, as a variable or expression")
            p.add_argument("--models", "-m", default="gpt-4.1,gpt-4.1-mini,gpt-4.1-nano",
                           help="comma-separated candidate models (default: %(default)s)")
            p.add_argument("--output", "-o", type=int, default=0, metavar="N", help="expected output tokens")

        ns = self._parse("estimate", words, configure)
        try:
            messages = self.shell.ev(ns.expr)
        except Exception as exc:
            raise UsageError(f"%llmcost estimate: cannot evaluate {ns.expr!r}: {exc}") from None
        try:
            models = [m.strip() for m in ns.models.split(",") if m.strip()]
            return estimate.estimate(messages, models, ns.output)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"%llmcost estimate: {exc}") from None


def _sync(words: list[str]) -> Any:
    """``%llmcost sync``: the team ledger sync (llmcost_nb.team), imported only when used."""
    from .sync_magic import sync_magic

    return sync_magic(words)


def _replay(words: list[str]) -> Any:
    """``%llmcost replay``: record & replay (llmcost_nb.replay), imported only when used."""
    from ..recording.replay import magic

    if "-h" in words or "--help" in words:
        print(magic.__doc__)
        return None
    return magic(words)


def _usd_or_usage(text: str) -> Decimal:
    try:
        return _usd(text)
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"%llmcost budget: {exc}; use a number of USD or 'off'") from None


_LINE_HELP = """usage: %llmcost SUBCOMMAND [options]   (%llmcost SUBCOMMAND -h for its options)

  status                      session totals, ledger, tracking mode, tags, budgets, hooked stacks
  on | off                    track every cell, or only %%llmcost cells
  tag KEY=VALUE...            session default tags (-r KEY removes one, --clear all)
  budget [USD|off] [--scope session|notebook|day|month|tag:KEY=VALUE] [--hard]
  db [PATH]                   show or switch the ledger file
  sync --to DSN [--every S]   push the ledger to the PostgreSQL team ledger (once, or in the background)
  estimate EXPR [--models M,...] [--output N]   what messages would cost, before calling
  replay [on|off|record|only|clear|status] [--path FILE]   serve recorded responses ($0, no network)

%%llmcost [--tag KEY=VALUE]... [--budget USD] [--quiet] [--name NAME] [--replay [MODE]]
  on a cell's first line tracks it."""

_DESCRIPTIONS = {
    "status": "Session totals, the ledger in use, tracking mode, session tags, budgets, HTTP stacks hooked.",
    "on": "Track every cell, as if each started with %%llmcost.",
    "off": "Track only %%llmcost cells.",
    "tag": "Set session default tags (added to every call from now on).",
    "budget": "Set, list (no USD) or remove ('off') a budget; alerts at 80%/100%, --hard stops requests.",
    "db": "Show or switch the ledger file.",
    "estimate": "Estimate what messages would cost on candidate models, before calling.",
    "replay": "Record responses and replay them: on, off, record, only, clear or status.",
}
