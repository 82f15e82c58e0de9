"""Budgets' data and bookkeeping: what a budget is, and what has been spent against each, per ledger.

The public API is :mod:`llmcost_nb.budget`; this module holds no hooks and imports nothing heavy.
"""

from __future__ import annotations

import json
import threading
import weakref
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING

from ..core.call import Call
from ..core.money import format_usd

if TYPE_CHECKING:
    from ..ledger.sqlite import Ledger
    from ..tracking.scope import Scope, Session

__all__ = ["DEFAULT_THRESHOLDS", "SCOPES", "Budget", "BudgetAlert", "parse_scope"]

SCOPES = ("session", "notebook", "day", "month", "tag:KEY=VALUE")
DEFAULT_THRESHOLDS = (Decimal("0.8"), Decimal("1"))



@dataclass(frozen=True, slots=True)
class Budget:
    """A spending limit over one scope (``scope`` is its key: ``session``, ``day``, ``month``,
    ``notebook:<path>`` or ``tag:<key>=<value>``)."""

    limit: Decimal
    scope: str = "session"
    hard: bool = False
    thresholds: tuple[Decimal, ...] = DEFAULT_THRESHOLDS

    @property
    def kind(self) -> str:
        return self.scope.split(":", 1)[0]

    def describe(self) -> str:
        """``budget day: $5.0000 (hard), alerts at 80%, 100%``"""
        alerts = ", ".join(f"{t * 100:.0f}%" for t in self.thresholds)
        return (f"budget {self.scope}: {format_usd(self.limit)}{' (hard)' if self.hard else ''}"
                + (f", alerts at {alerts}" if alerts else ""))

    def _repr_pretty_(self, printer: object, cycle: bool) -> None:  # how IPython shows it
        printer.text(self.describe())  # type: ignore[attr-defined]

    def period(self, ts: str) -> str:
        """The calendar period a timestamp falls in (``''`` for budgets without periods)."""
        return ts[:10] if self.kind == "day" else ts[:7] if self.kind == "month" else ""

    def applies(self, session_id: str | None, scope: Scope | None, tags: dict[str, str],
                session: Session) -> bool:
        """Whether a call (its session, scope and tags) counts against this budget."""
        kind = self.kind
        if kind == "session":
            return session_id == session.id
        if kind == "tag":
            key, _, value = self.scope[4:].partition("=")
            return tags.get(key) == value
        if kind == "notebook":
            path = self.scope[9:]
            while scope is not None:
                if scope.notebook == path:
                    return True
                scope = scope.parent
            return False
        return True  # day, month: every call


@dataclass(frozen=True, slots=True)
class BudgetAlert:
    """Spending crossed ``threshold`` (a fraction of the limit) of ``budget``."""

    budget: Budget
    spent: Decimal
    threshold: Decimal

    @property
    def message(self) -> str:
        return (f"llmcost budget {self.budget.scope}: {format_usd(self.spent)} spent of "
                f"{format_usd(self.budget.limit)} ({self.threshold * 100:.0f}% threshold reached)")


def parse_scope(scope: str, notebook: str | None = None) -> str:
    """The stored key of a scope the user named (``notebook`` needs the notebook's path)."""
    if scope in ("session", "day", "month"):
        return scope
    if scope == "notebook" or scope.startswith("notebook:"):
        path = scope[9:] or notebook
        if not path:
            raise ValueError("scope 'notebook' needs a notebook path: pass notebook=PATH (in Jupyter the "
                             "magic finds it)")
        return f"notebook:{path}"
    if scope.startswith("tag:") and "=" in scope[4:] and not scope[4:].startswith("="):
        return scope
    raise ValueError(f"unknown budget scope {scope!r}, allowed values: {', '.join(SCOPES)}")


class _Book:
    """The budgets of one ledger and what has been spent against each (per period)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.lock = threading.RLock()
        self.budgets: dict[str, Budget] = {}
        self.spent: dict[tuple[str, str], Decimal] = {}  # (scope key, period) -> spent so far
        self.counted: dict[int, Decimal] = {}  # id(call) -> cost counted for streams still unfinished
        rows = ledger.connection.execute("SELECT scope, limit_usd, hard, thresholds FROM budgets").fetchall()
        for key, limit, hard, thresholds in rows:
            fractions = tuple(Decimal(t) for t in json.loads(thresholds))
            self.budgets[key] = Budget(Decimal(limit), key, bool(hard), fractions)

    def spent_on(self, budget: Budget, session: Session, ts: str) -> Decimal:
        period = budget.period(ts)
        with self.lock:
            found = self.spent.get((budget.scope, period))
            if found is None:
                found = self.spent[(budget.scope, period)] = self._read(budget, session, period)
            return found

    def _read(self, budget: Budget, session: Session, period: str) -> Decimal:
        from ..core.call import from_pusd

        kind, led = budget.kind, self.ledger
        if kind == "session":
            return led.total_cost(session_id=session.id)
        if kind == "tag":
            key, _, value = budget.scope[4:].partition("=")
            return led.total_cost(tags={key: value})
        if kind == "notebook":
            from ..ledger.rollups import scope_rows

            with led._lock:
                rows = scope_rows(led.connection, "scope_id IN (SELECT id FROM scopes WHERE notebook = ?)",
                                  (budget.scope[9:],))
            return from_pusd(sum(pusd for _, _, pusd, _, _ in rows))  # type: ignore[return-value]
        start = date.fromisoformat(period if kind == "day" else f"{period}-01")
        return led.total_cost(since=start)

    def add(self, call: Call, scope: Scope | None, session: Session) -> list[BudgetAlert]:
        """Count a recorded call against the budgets it falls under; the alerts it sets off."""
        with self.lock:
            previous = self.counted.pop(id(call), Decimal(0))
            cost = call.cost or Decimal(0)
            if call.status == "unfinished":
                self.counted[id(call)] = cost
            delta = cost - previous
            if not delta:
                return []
            alerts = []
            for budget in self.budgets.values():
                if not budget.applies(call.session_id, scope, call.tags, session):
                    continue
                key = (budget.scope, budget.period(call.ts))
                if key in self.spent:
                    before = self.spent[key]
                    after = self.spent[key] = before + delta
                else:  # first look: the ledger holds this call if it is written already (not a captured
                    # call whose row is still pending: see _journal)
                    pending = call.id is None
                    after = self.spent[key] = self._read(budget, session, key[1]) + (delta if pending else 0)
                    before = after - delta
                alerts += [BudgetAlert(budget, after, t) for t in budget.thresholds
                           if before < t * budget.limit <= after and budget.limit]
            return alerts


_books: weakref.WeakKeyDictionary[Ledger, _Book] = weakref.WeakKeyDictionary()
_books_lock = threading.Lock()


def _book(ledger: Ledger) -> _Book:
    book = _books.get(ledger)
    if book is None:
        with _books_lock:
            book = _books.get(ledger)
            if book is None:
                book = _books[ledger] = _Book(ledger)
    return book
