"""Ledger integrity (``llmcost_nb.ledger.check``): is this file a sound llmcost_nb ledger, and do its stored
costs still add up?

>>> report = Ledger("costs.db").check()          # doctest: +SKIP
>>> report.ok, str(report)                        # doctest: +SKIP
(True, 'costs.db: ok — schema version 5, SQLite integrity ok, 1,204 priced rows match re-pricing')

``llmcost check --db costs.db`` prints the same words and exits 1 when there are problems. The checks:

- the file opens as SQLite at all (a file that is not a database is reported, never "repaired");
- ``PRAGMA integrity_check`` says ``ok``;
- the schema version is the one this llmcost_nb writes, and the tables and columns it needs are there;
- rows are plausible: no negative token counts or costs, no cost on an unbilled row, known statuses, every
  tag set a call names exists;
- a billed row that says ok with 0 input and 0 output tokens (and no other priced unit) is a note: its
  usage is missing, so its cost is not known (a row that says so, ``usage_source`` ``"unknown"``, is a note
  of its own);
- every priced, billed row's ``cost_pusd`` equals re-pricing its tokens now (same price period, the ledger's
  overrides first); billed rows without a cost that could be priced now are a note (``Ledger().reprice()``).

The file is opened read-only for everything but re-pricing, which uses the ledger's own connection.
"""

from __future__ import annotations

import html
import os
import sqlite3
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.call import TOKEN_FIELDS, UNKNOWN_USAGE, from_pusd, to_pusd
from ..core.columns import PRICING_COLUMNS, pricing_call

if TYPE_CHECKING:
    from .sqlite import Ledger

__all__ = ["CheckReport", "check_file"]

_TABLES = ("calls", "tagsets", "tags", "prices", "scopes", "meta")
_STATUSES = ("ok", "error", "unfinished")
_SHOWN = 5  # ids quoted per problem
# A billed success without a single token or other priced unit: the provider bills it, so its usage is
# missing, not zero. A note, not a problem: the row is what was seen (a server may report zero usage).
_EMPTY_OK = ("status = 'ok' AND billed = 1 AND input_tokens = 0 AND output_tokens = 0 "
             "AND usage_extra IS NULL AND usage_source <> 'unknown'")


@dataclass
class CheckReport:
    """What :func:`check` found; ``ok`` when ``problems`` is empty. ``notes`` are worth knowing, not wrong."""

    path: Path
    schema_version: int | None = None
    rows: int = 0
    repriced: int = 0  # priced billed rows compared with re-pricing
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        if self.ok:
            head = (
                f"{self.path}: ok — schema version {self.schema_version}, SQLite integrity ok, "
                f"{self.rows:,} rows, {self.repriced:,} priced rows match re-pricing"
            )
        else:
            head = f"{self.path}: {len(self.problems)} problem{'s' * (len(self.problems) != 1)}"
        lines = [head, *(f"  problem: {p}" for p in self.problems), *(f"  note: {n}" for n in self.notes)]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        items = [f"<li><b>problem</b>: {html.escape(p)}</li>" for p in self.problems]
        items += [f"<li>note: {html.escape(n)}</li>" for n in self.notes]
        head = html.escape(str(self).splitlines()[0])
        return f"<div><b>{head}</b>" + (f"<ul>{''.join(items)}</ul>" if items else "") + "</div>"


def check_file(target: Ledger | str | os.PathLike[str], *, open_ledger: Callable[[Path], Ledger],
               reprice: bool = True) -> CheckReport:
    """Check a ledger (a :class:`~llmcost_nb.Ledger` or a path) and say what is wrong in words; a path is
    opened with ``open_ledger`` to re-price its rows. :func:`llmcost_nb.ledger.check` gives it ``Ledger``.

    >>> check_file("costs.db", open_ledger=Ledger).problems               # doctest: +SKIP
    ['3 of 120 priced rows differ from re-pricing (ids 4, 7, 9: ...); run Ledger(...).reprice(all=True)']
    """
    ledger = None if isinstance(target, str | os.PathLike) else target
    path = ledger.path if ledger is not None else Path(target).expanduser()
    report = CheckReport(path)
    if not path.exists():
        report.problems.append(f"there is no file at {path}")
        return report
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error as exc:
        report.problems.append(f"the file cannot be opened ({exc})")
        return report
    try:
        sound = _structure(conn, report)
        if sound:
            _rows(conn, report)
    except sqlite3.DatabaseError as exc:
        report.problems.append(f"reading the file failed: {exc}; it is damaged or not a ledger")
        sound = False
    finally:
        conn.close()
    if sound and reprice:
        own = ledger is None
        try:
            ledger = ledger or open_ledger(path)
            _costs(ledger, report)
        except Exception as exc:  # a check reports; it never raises about the file it checks
            report.problems.append(f"re-pricing could not run: {exc}")
        finally:
            if own and ledger is not None:
                ledger.close()
    return report


def _structure(conn: sqlite3.Connection, report: CheckReport) -> bool:
    """File format, SQLite integrity and schema; True if the rows can be read and checked."""
    from ..core.columns import WRITE_COLUMNS
    from .connection import SCHEMA_VERSION

    try:
        report.schema_version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        report.problems.append(f"the file is not a SQLite database ({exc})")
        return False
    try:
        found = [row[0] for row in conn.execute("PRAGMA integrity_check(20)")]
    except sqlite3.DatabaseError as exc:
        found = [str(exc)]
    if found != ["ok"]:
        shown = "; ".join(found[:3]) + (f"; and {len(found) - 3} more" if len(found) > 3 else "")
        report.problems.append(
            f"SQLite integrity check failed: {shown}. Copy the rows you can read into a new "
            "ledger (sqlite3 .recover) and move this file aside"
        )
    version = report.schema_version
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if version == 0 and not tables & set(_TABLES):
        report.problems.append("the file is a SQLite database but not an llmcost_nb ledger (no calls table)")
        return False
    if version > SCHEMA_VERSION:
        report.problems.append(
            f"schema version {version} is newer than this llmcost_nb knows "
            f"({SCHEMA_VERSION}): upgrade llmcost_nb before writing to it"
        )
    elif version < SCHEMA_VERSION:
        report.problems.append(
            f"schema version {version} is older than {SCHEMA_VERSION}: opening it with "
            "llmcost_nb (Ledger(path)) migrates it"
        )
    if missing := [t for t in _TABLES if t not in tables]:
        report.problems.append(f"missing table{'s' * (len(missing) > 1)}: {', '.join(missing)}")
    if "calls" not in tables:
        return False
    columns = {row[1] for row in conn.execute("PRAGMA table_info(calls)")}
    if missing := [c for c in WRITE_COLUMNS if c not in columns]:
        report.problems.append(f"the calls table lacks column{'s' * (len(missing) > 1)} {', '.join(missing)}")
        return False
    return found == ["ok"] and version == SCHEMA_VERSION


def _ids(conn: sqlite3.Connection, where: str) -> tuple[int, str]:
    count = conn.execute(f"SELECT COUNT(*) FROM calls WHERE {where}").fetchone()[0]
    ids = [str(r[0]) for r in conn.execute(f"SELECT id FROM calls WHERE {where} ORDER BY id LIMIT {_SHOWN}")]
    return count, ", ".join(ids) + (", ..." if count > _SHOWN else "")


def _rows(conn: sqlite3.Connection, report: CheckReport) -> None:
    """Values no correct write produces."""
    report.rows = conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
    statuses = ", ".join(f"'{s}'" for s in _STATUSES)
    rules = [
        (" OR ".join(f"{name} < 0" for name in TOKEN_FIELDS), "a negative token count"),
        ("cost_pusd < 0", "a negative cost"),
        ("billed = 0 AND cost_pusd <> 0", "a cost although not billed"),
        (f"status NOT IN ({statuses})", f"a status other than {', '.join(_STATUSES)}"),
        (
            "tagset_id IS NOT NULL AND tagset_id NOT IN (SELECT id FROM tagsets)",
            "a tag set that does not exist",
        ),
        ("typeof(cost_pusd) NOT IN ('integer', 'null')", "a cost that is not an integer of picodollars"),
    ]
    for where, what in rules:
        count, ids = _ids(conn, where)
        if count:
            report.problems.append(f"{count:,} row{'s' * (count != 1)} with {what} (id {ids})")
    orphans = conn.execute(
        "SELECT COUNT(*) FROM tags WHERE tagset_id NOT IN (SELECT id FROM tagsets)"
    ).fetchone()[0]
    if orphans:
        report.problems.append(f"{orphans:,} tag{'s' * (orphans != 1)} belong to no tag set")
    count, ids = _ids(conn, _EMPTY_OK)
    if count:
        report.notes.append(
            f"{count:,} billed row{'s' * (count != 1)} say{'s' * (count == 1)} ok with 0 input and 0 output "
            f"tokens (id {ids}): the provider billed {'them' if count != 1 else 'it'}, but the tokens, and "
            "so the cost, are not known (most often a stream recorded without usage by an llmcost_nb older "
            "than stream estimates); their cost counts as $0 or empty in totals"
        )


def _costs(ledger: Ledger, report: CheckReport) -> None:
    """Every billed row re-priced now, compared with what is stored."""
    with ledger._lock:
        rows = ledger.connection.execute(
            f"SELECT id, cost_pusd, price_source, {', '.join(PRICING_COLUMNS)} FROM calls WHERE billed = 1 "
            "ORDER BY id"
        ).fetchall()
    differ: list[tuple[int, Any, Any, Any]] = []
    priceable, unknown, unread = [], Counter[str](), []
    for call_id, stored, source, *values in rows:
        call = pricing_call(values)
        ledger.price(call)
        now = to_pusd(call.cost)
        if stored is None:
            if now is not None:
                priceable.append(call_id)
            elif call.usage_source == UNKNOWN_USAGE:
                unread.append(call_id)
            else:
                unknown[call.model or call.model_requested or "?"] += 1
            continue
        report.repriced += 1
        if now != stored:
            differ.append((call_id, from_pusd(stored), call.cost, source))
    if differ:
        shown = "; ".join(
            f"id {i}: stored ${s}, re-priced ${'?' if n is None else n} (priced by {src or '?'})"
            for i, s, n, src in differ[:_SHOWN]
        )
        report.problems.append(
            f"{len(differ):,} of {report.repriced:,} priced rows differ from re-pricing ({shown}"
            f"{'; ...' if len(differ) > _SHOWN else ''}). If prices or overrides changed since, run "
            f"Ledger({str(ledger.path)!r}).reprice(all=True)"
        )
    if priceable:
        report.notes.append(
            f"{_rows_word(len(priceable))} no cost but can be priced now (id "
            f"{', '.join(map(str, priceable[:_SHOWN]))}): run Ledger(...).reprice()"
        )
    if unread:
        report.notes.append(
            f"{_rows_word(len(unread))} no cost because the response's token usage could not be read "
            f"(usage_source 'unknown', id {', '.join(map(str, unread[:_SHOWN]))}): unpriced, never $0; the "
            "warning given when the call was made says what was wrong with it"
        )
    if unknown:
        models = ", ".join(f"{m} ({n:,})" for m, n in unknown.most_common(_SHOWN))
        report.notes.append(
            f"{_rows_word(sum(unknown.values()))} a model without a known price: {models}; "
            "set one with llmcost_nb.set_price(model, input_mtok=..., output_mtok=...), declare your own "
            "server free with llmcost_nb.self_hosted(base_url), or name a gateway's provider as a prefix "
            "('openai/gpt-4o-mini')"
        )


def _rows_word(count: int) -> str:
    return f"{count:,} billed row has" if count == 1 else f"{count:,} billed rows have"
