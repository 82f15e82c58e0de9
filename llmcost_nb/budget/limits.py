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
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..core.call import Call, now_iso, to_pusd
from ..core.money import parse_usd
from ..errors import BudgetError
from ..tracking.scope import Scope, Session, get_session
from .book import (
    DEFAULT_THRESHOLDS,
    SCOPES,
    Budget,
    BudgetAlert,
    _book,
    _books,
    _books_lock,
    parse_scope,
)

if TYPE_CHECKING:
    from ..ledger.sqlite import Ledger

__all__ = [
    "DEFAULT_MAX_OUTPUT_TOKENS",
    "SCOPES",
    "Budget",
    "BudgetAlert",
    "BudgetExceeded",  # noqa: F822 — built on first use by the module __getattr__
    "BudgetWarning",
    "activate",
    "budgets",
    "deactivate",
    "max_request_cost",
    "on_alert",
    "on_stop",
    "refresh",
    "remove_budget",
    "set_budget",
    "spent",
]

# A request without max_tokens could in principle answer up to the model's limit; the hard stop assumes this
# many output tokens for it (set a max_tokens on requests for a tighter check).
DEFAULT_MAX_OUTPUT_TOKENS = 4096


class BudgetWarning(UserWarning):
    """Spending crossed an alert threshold of a budget."""



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
        _books.pop(ledger, None)


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


def _warn(alert: BudgetAlert) -> None:
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
        for callback in list(_callbacks.get(session) or [_warn]):
            callback(alert)


def max_request_cost(pending: Any, ledger: Ledger) -> tuple[Decimal | None, int]:
    """The most a pending request can cost (input estimate + its output limit), and the input estimate."""
    info, endpoint = pending.info, pending.endpoint
    input_tokens = pending.estimated_input_tokens
    if input_tokens is None:
        from ..analysis.estimate import request_input_tokens

        input_tokens = pending.estimated_input_tokens = request_input_tokens(
            endpoint.api, info.body or {}, info.model).tokens
    output = 0 if endpoint.api == "embeddings" else (
        info.max_output_tokens if info.max_output_tokens is not None else DEFAULT_MAX_OUTPUT_TOKENS)
    if not info.model:
        return None, input_tokens
    try:
        return ledger.pricer.max_cost(endpoint.provider, info.model, input_tokens, output), input_tokens
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
        stop = _exceeded_class()(*found, pending.info.model)
        for callback in list(_stop_callbacks.get(session) or []):
            callback(stop)
        raise stop


def _over_budget(pending: Any, scope: Scope | None,
                 session: Session) -> tuple[Budget, Decimal, Decimal] | None:
    """The first hard budget this request could pass: (budget, spent so far, the request's maximum cost)."""
    ledger = _ledger_of(scope, session)
    book = _book(ledger)
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
        if so_far >= budget.limit or to_pusd(so_far + request_cost) > to_pusd(budget.limit):  # type: ignore[operator]
            return budget, so_far, request_cost
    return None


def activate(session: Session | None = None, *, start_capture: bool = True) -> None:
    """Enforce the ledger's budgets in ``session`` (idempotent; ``set_budget`` and ``%load_ext`` do this).
    Starts capture too: a budget needs to see the calls."""
    session = session or get_session()
    if start_capture:
        from ..tracking import capture

        capture.install()
    if _listener not in session.listeners:
        session.listeners.append(_listener)
    if _preflight not in session.preflight:
        session.preflight.append(_preflight)


def deactivate(session: Session | None = None) -> None:
    """Stop enforcing budgets in ``session`` (they stay stored in the ledger)."""
    session = session or get_session()
    for hooks, hook in ((session.listeners, _listener), (session.preflight, _preflight)):
        while hook in hooks:
            hooks.remove(hook)


_exceeded: type | None = None
_exceeded_lock = threading.Lock()


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
