"""Budgets: spending limits with alerts, and a hard stop raised before a request that could pass one is sent.

>>> from llmcost_nb.budget import limits as budget
>>> budget.set_budget(5, scope="session")                          # doctest: +SKIP
>>> budget.set_budget("0.50", scope="tag:team=search", hard=True)  # doctest: +SKIP
>>> budget.on_alert(lambda alert: print(alert.message))            # doctest: +SKIP

Scopes: ``session`` (this process), ``notebook`` (calls made in one notebook), ``day`` and ``month``
(calendar, UTC) and ``tag:KEY=VALUE`` (calls carrying that tag). Budgets are stored in the ledger and apply
again in the next session. Alerts go to the callbacks registered with :func:`on_alert` (by default a
:class:`BudgetWarning`) when spending crosses each threshold (80% and 100% unless told otherwise).

A *hard* budget checks each request before it is sent: when what was spent plus the request's maximum cost
(estimated input tokens × input price + its ``max_tokens``, or :data:`DEFAULT_MAX_OUTPUT_TOKENS`, × output
price) would pass the limit, :class:`BudgetExceeded` is raised and nothing goes over the network. The
exception subclasses ``openai.OpenAIError`` and ``anthropic.AnthropicError`` so both SDKs let it through
unchanged, without retrying.

Spending is read from the ledger once per budget and period, then counted as calls are recorded in this
process; calls another process writes to the same ledger show up after :func:`refresh`. Every session
enforces the budgets stored in the ledgers it records to, from its first tracked call (:func:`deactivate`
stops that; :func:`activate` starts it again).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import threading
import warnings
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..core.call import Call, now_iso, to_pusd
from ..core.money import format_usd, parse_usd
from ..errors import BudgetError
from ..tracking.scope import Scope, Session, get_session

if TYPE_CHECKING:
    from ..ledger.sqlite import Ledger

__all__ = [
    "DEFAULT_MAX_OUTPUT_TOKENS",
    "DEFAULT_THRESHOLDS",
    "SCOPES",
    "Budget",
    "BudgetAlert",
    "BudgetExceeded",  # noqa: F822 — built on first use by the module __getattr__
    "BudgetWarning",
    "activate",
    "applicable_budgets",
    "budgets",
    "budgets_with_spent",
    "deactivate",
    "exceeded",
    "exceeds",
    "max_request_cost",
    "on_alert",
    "on_stop",
    "parse_scope",
    "refresh",
    "remove_budget",
    "session_started",
    "set_budget",
    "set_default_max_output_tokens",
    "spent",
    "unpriced_against",
    "warn",
]

# A request without max_tokens could in principle answer up to the model's limit; the hard stop assumes this
# many output tokens for it (set a max_tokens on requests for a tighter check).
DEFAULT_MAX_OUTPUT_TOKENS = 4096


def set_default_max_output_tokens(tokens: int) -> int:
    """Set the output tokens a hard budget assumes for a request without ``max_tokens``
    (:data:`DEFAULT_MAX_OUTPUT_TOKENS`); returns the previous value."""
    global DEFAULT_MAX_OUTPUT_TOKENS
    previous, DEFAULT_MAX_OUTPUT_TOKENS = DEFAULT_MAX_OUTPUT_TOKENS, int(tokens)
    return previous


class BudgetWarning(UserWarning):
    """Spending crossed an alert threshold of a budget."""


# -- what a budget is, and what has been spent against each (per ledger) ----------------------------------
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


# The calls of a notebook budget: those of the notebook's tracked cells (scopes).
_NOTEBOOK_SCOPES = "scope_id IN (SELECT id FROM scopes WHERE notebook = ?)"


def _filters(budget: Budget, session: Session, period: str) -> dict[str, Any]:
    """The ledger filters (``total_cost``, ``count``) of the calls a session, tag, day or month ``budget``
    counts in ``period``."""
    if budget.kind == "session":
        return {"session_id": session.id}
    if budget.kind == "tag":
        key, _, value = budget.scope[4:].partition("=")
        return {"tags": {key: value}}
    return {"since": date.fromisoformat(period if budget.kind == "day" else f"{period}-01")}


class _Book:
    """The budgets of one ledger and what has been spent against each (per period)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.lock = threading.RLock()
        self.budgets: dict[str, Budget] = {}
        self.spent: dict[tuple[str, str], Decimal] = {}  # (scope key, period) -> spent so far
        self.counted: dict[int, Decimal] = {}  # id(call) -> cost counted for streams still unfinished
        conn = ledger.connection  # (may flush the journal, whose listeners may build this book too)
        with ledger._lock:  # the connection is shared with the threads writing calls: read under its lock,
            # or another thread's statement can reset this one mid-read (Python 3.12: no rows, or empty ones)
            rows = conn.execute("SELECT scope, limit_usd, hard, thresholds FROM budgets").fetchall()
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

        if budget.kind == "notebook":
            return from_pusd(sum(row[2] for row in self._notebook_scopes(budget)))  # type: ignore[return-value]
        return self.ledger.total_cost(**_filters(budget, session, period))

    def _notebook_scopes(self, budget: Budget) -> list[tuple[Any, ...]]:
        """The scope rollup's rows of a notebook budget's notebook (calls has no index on scope_id)."""
        from ..ledger.rollups import scope_rows

        with self.ledger._lock:
            return scope_rows(self.ledger.connection, _NOTEBOOK_SCOPES, (budget.scope[9:],))

    def unpriced_on(self, budget: Budget, session: Session, ts: str) -> int:
        """How many billed calls of unknown price fall under ``budget`` in the period of ``ts``: the
        calls its spending does not count (read from the ledger each time: shown, never enforced)."""
        from ..ledger.filters import SQLITE, where

        if budget.kind == "notebook":
            return sum(row[5] for row in self._notebook_scopes(budget))
        condition, params = where(_filters(budget, session, budget.period(ts)), SQLITE)
        sql = f"SELECT COUNT(*) FROM calls{condition or ' WHERE 1'} AND billed = 1 AND cost_pusd IS NULL"
        with self.ledger._lock:
            return int(self.ledger.connection.execute(sql, params).fetchone()[0])

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


# id(ledger) -> its book. The book holds its ledger, so the id stays its own (as a WeakKeyDictionary's would
# have: a value holding its key keeps it alive); a plain dict is read without a weak reference made and a
# Python-level ``get`` on every call's path.
_books: dict[int, _Book] = {}
_books_lock = threading.Lock()


def _book(ledger: Ledger) -> _Book:
    book = _books.get(id(ledger))
    if book is None:
        # Built outside _books_lock: reading the ledger may flush its journal, whose listeners call _book
        # again from the thread holding the journal's lock (a lock-order deadlock when two threads start at
        # once). Two threads may build one each; the first stored is kept, the other had counted nothing.
        fresh = _Book(ledger)
        with _books_lock:
            book = _books.setdefault(id(ledger), fresh)
    return book


def applicable_budgets(scope: Scope, session: Session | None = None) -> list[tuple[Budget, Decimal]]:
    """The budgets the calls of ``scope`` count against, each with what has been spent against it so far
    (none if the scope's ledger cannot be opened)."""
    session = session or get_session()
    try:
        book = _book(scope.ledger)
    except Exception:
        return []
    ts, tags = now_iso(), scope.tags
    return [(b, book.spent_on(b, session, ts)) for b in list(book.budgets.values())
            if b.applies(session.id, scope, tags, session)]


def budgets_with_spent(session: Session | None = None, *,
                       ledger: Ledger | None = None) -> list[tuple[Budget, Decimal]]:
    """Every budget stored in ``ledger`` (the session's by default), each with what has been spent against
    it so far."""
    session = session or get_session()
    book = _book(ledger or session.ledger)
    ts = now_iso()
    return [(b, book.spent_on(b, session, ts)) for b in list(book.budgets.values())]


def unpriced_against(budget: Budget, session: Session | None = None, *, ledger: Ledger | None = None) -> int:
    """Billed calls of unknown price under ``budget`` this period (``ledger``: the session's by default).
    What was spent against a budget counts priced calls only; the views say how many it leaves out
    (``$0.42 of $5.00 · not counting 3 unpriced calls``, :func:`~llmcost_nb.core.money.not_counting`)."""
    session = session or get_session()
    return _book(ledger or session.ledger).unpriced_on(budget, session, now_iso())


def exceeds(spent: Decimal, request_cost: Decimal | None, limit: Decimal) -> bool:
    """The hard stop: whether a request may not be sent, because what is spent already reaches ``limit``
    or spent plus the request's maximum cost would pass it. Compared in picodollars (the ledger's unit); a
    request that would exactly reach the limit is sent."""
    so_far, most = to_pusd(spent), to_pusd(limit)
    return so_far >= most or to_pusd(spent + (request_cost or Decimal(0))) > most  # type: ignore[operator]


_callbacks: weakref.WeakKeyDictionary[Session, list[Callable[[BudgetAlert], Any]]] = (
    weakref.WeakKeyDictionary())
_stop_callbacks: weakref.WeakKeyDictionary[Session, list[Callable[[Exception], Any]]] = (
    weakref.WeakKeyDictionary())


def _ledger_of(scope: Scope | None, session: Session) -> Ledger:
    return scope.ledger if scope is not None else session.ledger


def set_budget(limit: Decimal | str | int | float, scope: str = "session", *, hard: bool = False,
               thresholds: Sequence[Decimal | str | float] = DEFAULT_THRESHOLDS, notebook: str | None = None,
               ledger: Ledger | None = None) -> Budget:
    """Set (or replace) the budget of ``scope``, store it in the ledger and start enforcing it.

    >>> set_budget("5.00", scope="day", hard=True)          # doctest: +SKIP
    Budget(limit=Decimal('5.00'), scope='day', hard=True, thresholds=(Decimal('0.8'), Decimal('1')))
    """
    key = parse_scope(scope, notebook)
    fractions = tuple(sorted(parse_usd(t, "a threshold") for t in thresholds))
    budget = Budget(parse_usd(limit, "a budget"), key, bool(hard), fractions)
    session = get_session()
    ledger = ledger or session.ledger
    book = _book(ledger)
    with book.lock, ledger._lock:
        ledger.connection.execute(
            "INSERT OR REPLACE INTO budgets VALUES (?, ?, ?, ?, ?)",
            (key, str(budget.limit), int(budget.hard), json.dumps([str(t) for t in fractions]), now_iso()))
        book.budgets[key] = budget
    activate(session)
    return budget


def remove_budget(scope: str = "session", *, notebook: str | None = None,
                  ledger: Ledger | None = None) -> bool:
    """Remove the budget of ``scope``; True if there was one."""
    key = parse_scope(scope, notebook)
    ledger = ledger or get_session().ledger
    book = _book(ledger)
    with book.lock, ledger._lock:
        ledger.connection.execute("DELETE FROM budgets WHERE scope = ?", (key,))
        return book.budgets.pop(key, None) is not None


def budgets(ledger: Ledger | None = None) -> list[Budget]:
    """The budgets stored in ``ledger`` (the session's by default)."""
    return list(_book(ledger or get_session().ledger).budgets.values())


def spent(budget: Budget | str = "session", *, notebook: str | None = None,
          ledger: Ledger | None = None) -> Decimal:
    """What has been spent so far (this day/month for calendar budgets) against a budget or scope."""
    session = get_session()
    key = budget.scope if isinstance(budget, Budget) else parse_scope(budget, notebook)
    book = _book(ledger or session.ledger)
    target = book.budgets.get(key) or Budget(Decimal(0), key)
    return book.spent_on(target, session, now_iso())


def refresh(ledger: Ledger | None = None) -> None:
    """Re-read budgets and spending from the ledger (after another process wrote to it)."""
    ledger = ledger or get_session().ledger
    with _books_lock:
        _books.pop(id(ledger), None)


def on_alert(callback: Callable[[BudgetAlert], Any], *, session: Session | None = None) -> Callable[[], None]:
    """Call ``callback(alert)`` when spending crosses a budget threshold (instead of the default warning);
    returns a function that unregisters it."""
    session = session or get_session()
    callbacks = _callbacks.setdefault(session, [])
    callbacks.append(callback)

    def remove() -> None:
        if callback in callbacks:
            callbacks.remove(callback)

    return remove


def on_stop(callback: Callable[[Exception], Any], *, session: Session | None = None) -> Callable[[], None]:
    """Call ``callback(exc)`` with each :class:`BudgetExceeded` a hard budget raises (even if the caller
    catches it); returns a function that unregisters it."""
    callbacks = _stop_callbacks.setdefault(session or get_session(), [])
    callbacks.append(callback)

    def remove() -> None:
        if callback in callbacks:
            callbacks.remove(callback)

    return remove


def warn(alert: BudgetAlert) -> None:
    """Show ``alert`` as a :class:`BudgetWarning` (what happens to alerts when no :func:`on_alert` callback
    is registered)."""
    warnings.warn(alert.message, BudgetWarning, stacklevel=2)


def _listener(call: Call, scope: Scope | None) -> None:
    if not call.cost:
        return
    session = get_session()
    book = _book(_ledger_of(scope, session))
    if not book.budgets:  # the common case: nothing to count against
        return
    alerts = book.add(call, scope, session)
    for alert in alerts:
        for callback in list(_callbacks.get(session) or [warn]):
            callback(alert)


def max_request_cost(pending: Any, ledger: Ledger) -> tuple[Decimal | None, int]:
    """The most a pending request can cost (input estimate + its output limit), and the input estimate."""
    info, endpoint = pending.info, pending.endpoint
    input_tokens = pending.estimated_input_tokens
    if input_tokens is None:
        from ..pricing.tokens import request_input_tokens

        input_tokens = pending.estimated_input_tokens = request_input_tokens(
            endpoint.api, info.body or {}, info.model).tokens
    output = 0 if endpoint.api == "embeddings" else (
        info.max_output_tokens if info.max_output_tokens is not None else DEFAULT_MAX_OUTPUT_TOKENS)
    if endpoint.host in ledger.pricer.self_hosted:  # the user's own server: it costs nothing
        return Decimal(0), input_tokens
    if not info.model:
        return None, input_tokens
    try:
        from ..pricing.providers import WIRE_PROVIDER  # a proxy's or a local host's: the wire format's

        provider = endpoint.provider or WIRE_PROVIDER.get(endpoint.api)
        return ledger.pricer.max_cost(provider, info.model, input_tokens, output), input_tokens
    except Exception:
        return None, input_tokens


def _preflight(pending: Any, scope: Scope | None) -> None:
    """Preflight hook: raise :class:`BudgetExceeded` if a hard budget could be passed by this request."""
    if pending.respond_with is not None:  # served from a recording (replay): it spends nothing
        return
    session = pending.session
    try:
        found = _over_budget(pending, scope, session)
    except Exception as exc:  # a broken check must not hide the call: it is sent, tracked, and we warn
        from ..core.warn import warn_once

        warn_once(f"budget-check:{type(exc).__name__}", f"could not check budgets ({exc!r}); request sent")
        return
    if found is not None:
        stop = exceeded(*found, pending.info.model)
        for callback in list(_stop_callbacks.get(session) or []):
            callback(stop)
        raise stop


def _over_budget(pending: Any, scope: Scope | None,
                 session: Session) -> tuple[Budget, Decimal, Decimal] | None:
    """The first hard budget this request could pass: (budget, spent so far, the request's maximum cost)."""
    ledger = _ledger_of(scope, session)
    book = _book(ledger)
    if not book.budgets:  # the common case, on every call's path
        return None
    hard = [b for b in book.budgets.values() if b.hard]
    if not hard:
        return None
    from ..ledger.journal import settle

    settle()  # calls captured but not yet counted: what is spent so far includes them
    tags = scope.tags if scope is not None else dict(session.tags)
    ts = now_iso()
    request_cost: Decimal | None = None
    for budget in hard:
        if not budget.applies(session.id, scope, tags, session):
            continue
        so_far = book.spent_on(budget, session, ts)
        if request_cost is None:
            request_cost = max_request_cost(pending, ledger)[0]
            if request_cost is None:
                from ..core.warn import warn_once

                warn_once(f"budget-unpriced:{pending.info.model}", f"no price known for model "
                          f"{pending.info.model!r}: a hard budget can only stop its requests once it is "
                          "spent")
                request_cost = Decimal(0)
        if exceeds(so_far, request_cost, budget.limit):
            return budget, so_far, request_cost
    return None


def activate(session: Session | None = None, *, start_capture: bool = True) -> None:
    """Enforce the ledger's budgets in ``session`` (idempotent; ``set_budget`` and ``%load_ext`` do this).
    Starts capture too: a budget needs to see the calls."""
    session = session or get_session()
    if start_capture:
        from ..tracking import capture

        capture.install()
    _deactivated.discard(session)
    session.add_listener(_listener)
    session.add_pre_send(_preflight, "budget")


def deactivate(session: Session | None = None) -> None:
    """Stop enforcing budgets in ``session`` (they stay stored in the ledger)."""
    session = session or get_session()
    _deactivated.add(session)
    session.remove_listener(_listener)
    session.remove_pre_send(_preflight)


def session_started(session: Session) -> None:
    """A session's first tracked call: from now on it enforces the budgets stored in its ledgers, unless
    :func:`deactivate` opted it out before (``llmcost_nb`` registers this with
    ``tracking.on_session_start``)."""
    if session not in _deactivated:
        activate(session, start_capture=False)


_deactivated: weakref.WeakSet[Session] = weakref.WeakSet()  # sessions deactivate() opted out


_exceeded: type | None = None
_exceeded_lock = threading.Lock()


def exceeded(budget: Budget, spent: Decimal, request_cost: Decimal, model: str | None) -> Exception:
    """A :class:`BudgetExceeded` for a request (of ``model``) that ``budget`` stops: ``spent`` so far, and
    the request's maximum cost."""
    return _exceeded_class()(budget, spent, request_cost, model)


def _exceeded_class() -> type:
    """``BudgetExceeded``, built on first use so importing llmcost_nb does not import the SDKs: a
    :class:`~llmcost_nb.errors.BudgetError` that also subclasses the openai and anthropic base errors (where
    installed), so the SDKs pass it through unchanged instead of retrying and wrapping it."""
    global _exceeded
    if _exceeded is None:
        with _exceeded_lock:
            if _exceeded is None:
                bases: list[type] = []
                for module, name in (("openai", "OpenAIError"), ("anthropic", "AnthropicError")):
                    if importlib.util.find_spec(module) is not None:
                        bases.append(getattr(importlib.import_module(module), name))
                _exceeded = type("BudgetExceeded", (BudgetError, *bases), {
                    "__doc__": "A hard budget stopped a request before it was sent.",
                    "__module__": "llmcost_nb",
                    "__init__": _exceeded_init,
                    "_llmcost_deliberate": True,
                })
    return _exceeded


def _exceeded_init(self: Any, budget: Budget, spent: Decimal, request_cost: Decimal,
                   model: str | None) -> None:
    self.budget, self.spent, self.request_cost, self.model = budget, spent, request_cost, model
    Exception.__init__(self, f"budget {budget.scope} of ${budget.limit} would be exceeded: ${spent:.6f} "
                       f"spent, this {model or 'request'} call could cost up to ${request_cost:.6f}; "
                       "nothing was sent")


def __getattr__(name: str) -> Any:
    if name == "BudgetExceeded":
        return _exceeded_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
