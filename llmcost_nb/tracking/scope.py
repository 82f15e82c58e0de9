"""Sessions and scopes: who a captured call belongs to.

A *session* is this process (a notebook kernel, a script): its id, default tags, default ledger, running
total and the hooks that budgets and summaries plug into. A *scope* is a block of work — a ``track()`` block,
a ``%%llmcost`` cell, an A/B run — whose calls it collects.

Attribution, in order (stored with each call): the scope in the current context (``contextvars``: follows
``await`` and tasks), else the most recently opened scope still active in the process (threads of a
``ThreadPoolExecutor`` do not inherit context), else none.
"""

from __future__ import annotations

import contextvars
import itertools
import os
import threading
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.call import Call, now_iso
from ..core.money import format_total
from ..core.tags import clean_tags
from . import ask_usage

if TYPE_CHECKING:
    import pandas as pd

    from ..ledger.sqlite import Ledger

__all__ = ["PRE_SEND_ORDERS", "Scope", "Session", "get_session", "on_session_start"]

_current: contextvars.ContextVar[Scope | None] = contextvars.ContextVar("llmcost_scope", default=None)
_active: list[Scope] = []  # open scopes, oldest first: the fallback for threads without our context
_active_lock = threading.Lock()

Listener = Callable[[Call, "Scope | None"], None]
Preflight = Callable[[Any, "Scope | None"], None]

# Where a pre-send hook runs among the others (lower first): a replayed request is answered before its
# tokens are estimated, budgets see the estimate, and a cell's own budget comes last.
PRE_SEND_ORDERS = {"replay": 0, "estimate": 10, "budget": 20, "cell budget": 30}
_UNORDERED = 1000  # hooks appended to ``session.preflight`` by hand run after the ordered ones


class _Ids:
    """Unique 32-hex ids, like ``uuid4().hex`` but without a system call each: a random 64-bit prefix drawn
    once per process (and again in a forked child) and a counter. A scope is opened for every call an A/B
    grid makes, and ``os.urandom`` costs about 10 µs here."""

    def __init__(self) -> None:
        self.reseed()
        if hasattr(os, "register_at_fork"):  # POSIX: a forked child draws its own prefix
            os.register_at_fork(after_in_child=self.reseed)

    def reseed(self) -> None:
        self.prefix = os.urandom(8).hex()
        self.counter = itertools.count()

    def __call__(self) -> str:
        return f"{self.prefix}{next(self.counter):016x}"


new_id = _Ids()


class Session:
    """This process's tracking state. ``get_session()`` returns the one in use."""

    def __init__(self, ledger: Ledger | str | Path | None = None) -> None:
        self.id = uuid.uuid4().hex
        self.tags: dict[str, str] = {}
        self._ledger_arg = ledger
        self._ledger: Ledger | None = None
        self._lock = threading.Lock()
        self._total_cost = Decimal(0)
        self._call_count = 0
        self._unpriced = 0  # billed calls with no known price (not in the total)
        self._estimated = 0  # calls whose tokens were estimated (in the total, not exact)
        self._flagged: dict[int, tuple[bool, bool]] = {}  # id(call) -> (unpriced, estimated), while either
        self.listeners: list[Listener] = []  # called after each call is recorded (summaries, budgets)
        self.preflight: list[Preflight] = []  # called before a request is sent; may raise a budget stop
        self._orders: list[tuple[Preflight, int]] = []  # the order each hook was added with
        self._hooks_lock = threading.Lock()
        self.started = False  # whether the session-start hooks ran (at the first tracked call)
        # ask OpenAI chat streams for their usage, unseen by the caller (tracking.ask_usage; enable())
        self.ask_stream_usage = ask_usage.wanted(os.environ.get(ask_usage.ENV))

    # -- hooks ----------------------------------------------------------------------------------------
    def add_pre_send(self, hook: Preflight, order: str | int) -> None:
        """Run ``hook(pending, scope)`` before each captured request is sent (it may raise a deliberate
        stop, or answer the request itself). ``order`` places it among the others: a name from
        :data:`PRE_SEND_ORDERS` (``replay`` < ``estimate`` < ``budget`` < ``cell budget``) or a number;
        hooks of the same order run in the order they were added. Adding a hook twice does nothing."""
        rank = PRE_SEND_ORDERS[order] if isinstance(order, str) else int(order)
        with self._hooks_lock:
            if hook in self.preflight:
                return
            self._orders.append((hook, rank))
            hooks = self.preflight
            at = next((i for i, h in enumerate(hooks) if self._order_of(h) > rank), len(hooks))
            hooks.insert(at, hook)

    def remove_pre_send(self, hook: Preflight) -> None:
        with self._hooks_lock:
            while hook in self.preflight:
                self.preflight.remove(hook)
            self._orders = [(h, rank) for h, rank in self._orders if h != hook]

    def _order_of(self, hook: Preflight) -> int:
        return next((rank for h, rank in self._orders if h == hook), _UNORDERED)

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(call, scope)`` after each call is recorded (once per listener)."""
        with self._hooks_lock:
            if listener not in self.listeners:
                self.listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with self._hooks_lock:
            while listener in self.listeners:
                self.listeners.remove(listener)

    def start(self) -> None:
        """Run the session-start hooks (:func:`on_session_start`), once: the recorder calls this at the
        session's first tracked call."""
        if self.started:
            return
        with _start_lock:
            if self.started:
                return
            self.started = True
            for name, hook in list(_start_hooks.items()):
                try:
                    hook(self)
                except Exception as exc:
                    from ..core.warn import warn_once

                    warn_once(f"session-start:{name}", f"a session-start hook ({name}) raised {exc!r}")

    @property
    def ledger(self) -> Ledger:
        """The default ledger, opened on first use."""
        if self._ledger is None:
            with self._lock:
                if self._ledger is None:
                    from ..ledger.sqlite import Ledger

                    arg = self._ledger_arg
                    self._ledger = arg if isinstance(arg, Ledger) else Ledger(arg)
        return self._ledger

    def use_ledger(self, ledger: Ledger | str | Path | None) -> None:
        """Switch the default ledger (``%llmcost db PATH``)."""
        with self._lock:
            self._ledger_arg, self._ledger = ledger, None

    @property
    def total_cost(self) -> Decimal:
        """Exact total cost of the calls recorded in this session."""
        _materialize()
        return self._total_cost

    @property
    def call_count(self) -> int:
        _materialize()
        return self._call_count

    @property
    def unpriced(self) -> int:
        """Billed calls of this session with no known price: their cost is not in ``total_cost``."""
        _materialize()
        return self._unpriced

    @property
    def estimated(self) -> int:
        """Calls of this session whose tokens were estimated (``usage_source == "estimated"``)."""
        _materialize()
        return self._estimated

    def add_cost(self, call: Call, old_cost: Decimal, first_time: bool) -> None:
        """Count a recorded call in the running totals (``old_cost``: what an update replaces; an update of
        the same call object also replaces its unpriced / estimated marks)."""
        flags = (call.cost is None and call.billed, call.usage_source == "estimated")
        key = id(call)
        with self._lock:
            self._call_count += first_time
            self._total_cost += (call.cost or Decimal(0)) - old_cost
            old = (False, False) if first_time else self._flagged.get(key, (False, False))
            self._unpriced += flags[0] - old[0]
            self._estimated += flags[1] - old[1]
            if any(flags):
                self._flagged[key] = flags
            else:
                self._flagged.pop(key, None)


_session: Session | None = None
_session_lock = threading.Lock()
_start_hooks: dict[str, Callable[[Session], Any]] = {}
_start_lock = threading.RLock()  # reentrant: a start hook may record a call


def get_session() -> Session:
    """The session in use (built on first use; nothing is switched on until its first tracked call)."""
    global _session
    if _session is None:
        with _session_lock:
            if _session is None:
                _session = Session()
    return _session


def on_session_start(name: str, hook: Callable[[Session], Any]) -> None:
    """Run ``hook(session)`` once per session, at its first tracked call (a request captured or a call
    recorded). Keyed by ``name``: registering a name again replaces its hook (so re-running the code that
    registers it, as ``%reload_ext`` does, adds nothing)."""
    _start_hooks[name] = hook


class Scope:
    """A block of work whose calls are collected (and tagged) together; use as a context manager.

    >>> with track(tags={"variant": "A"}) as t:      # doctest: +SKIP
    ...     client.chat.completions.create(...)
    >>> t.total_cost, t.calls                         # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        tags: Mapping[str, Any] | None = None,
        ledger: Ledger | str | Path | None = None,
        kind: str = "track",
        name: str | None = None,
        notebook: str | None = None,
        cell: int | None = None,
    ) -> None:
        self.id = new_id()
        self.kind, self.name, self.notebook, self.cell = kind, name, notebook, cell
        self.own_tags = clean_tags(tags)
        self._ledger_arg = ledger
        self._ledger: Ledger | None = None
        self.parent: Scope | None = None
        self._records: list[Call] = []
        self.open_streams: set[Any] = set()  # stream recorders not finished yet
        self.started = now_iso()
        self._lock = threading.Lock()
        self._token: contextvars.Token[Scope | None] | None = None
        self._stored_in: set[int] = set()

    def __repr__(self) -> str:
        """``<Scope cell baseline: 3 calls, $0.000252 + 1 unpriced>`` (the total as
        :func:`~llmcost_nb.core.money.format_total` words it)."""
        label = self.name or self.id[:8]
        records = self._snapshot()
        total = format_total(sum((c.cost for c in records if c.cost is not None), Decimal(0)),
                             unpriced=sum(1 for c in records if c.cost is None and c.billed),
                             estimated=sum(1 for c in records if c.usage_source == "estimated"))
        return f"<Scope {self.kind} {label}: {len(records)} calls, {total}>"

    # -- what the scope collected ---------------------------------------------------------------------
    @property
    def records(self) -> list[Call]:
        """The calls recorded in this scope so far, in order (captured calls included, priced: see
        ``_materialize``)."""
        _materialize()
        return self._records

    def _snapshot(self) -> list[Call]:
        _materialize()
        with self._lock:
            return list(self._records)

    @property
    def tags(self) -> dict[str, str]:
        """Session tags, then enclosing scopes' tags, then this scope's own (inner wins)."""
        outer = self.parent.tags if self.parent is not None else dict(get_session().tags)
        return {**outer, **self.own_tags}

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            arg = self._ledger_arg
            if arg is None:
                self._ledger = self.parent.ledger if self.parent is not None else get_session().ledger
            else:
                from ..ledger.sqlite import Ledger

                self._ledger = arg if isinstance(arg, Ledger) else Ledger(arg)
        return self._ledger

    @property
    def total_cost(self) -> Decimal:
        """Exact total of the priced calls so far (unpriced calls count as 0; see ``unpriced``)."""
        records = self._snapshot()
        return sum((c.cost for c in records if c.cost is not None), Decimal(0))

    @property
    def unpriced(self) -> int:
        """Billed calls with no known price (not in ``total_cost``)."""
        return sum(1 for c in self._snapshot() if c.cost is None and c.billed)

    @property
    def estimated(self) -> int:
        """Calls whose tokens were estimated (in ``total_cost``, not exact)."""
        return sum(1 for c in self._snapshot() if c.usage_source == "estimated")

    @property
    def calls(self) -> pd.DataFrame:
        """The calls of this scope, one row each (same columns as ``Ledger.calls``)."""
        from ..core.frames import calls_frame

        return calls_frame(self._snapshot())

    def add(self, call: Call) -> None:
        """Collect a call (once: a stream recorded as unfinished and later finished is the same object)."""
        with self._lock:
            self._records.append(call)
        if self.parent is not None:
            self.parent.add(call)

    def store_scope_row(self, ledger: Ledger) -> None:
        """Write this scope's row to ``ledger`` once (on its first call, so empty scopes cost nothing)."""
        if id(ledger) in self._stored_in:
            return
        with ledger._lock:
            ledger.connection.execute(
                "INSERT OR IGNORE INTO scopes VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (self.id, self.kind, self.name, self.notebook, self.cell, get_session().id, self.started,
                 ledger.tagset_id(self.tags)),
            )
        self._stored_in.add(id(ledger))  # only once written: a failed write (ledger locked) is retried

    # -- lifetime -------------------------------------------------------------------------------------
    def open(self) -> Scope:
        """Enter the scope. Capture is switched on by ``track()``, ``enable()`` or ``%load_ext``, not here."""
        self.parent = _current.get()
        self._token = _current.set(self)
        with _active_lock:
            _active.append(self)
        return self

    def close(self) -> None:
        """Leave the scope; streams still open are recorded as unfinished."""
        with _active_lock:
            if self in _active:
                _active.remove(self)
        if self._token is not None:
            try:
                _current.reset(self._token)
            except ValueError:  # closed from another context (e.g. a post_run_cell hook): leave it be
                _current.set(self.parent)
            self._token = None
        for stream in list(self.open_streams):
            stream.finish_unfinished()
        _settle()  # the scope's totals, its listeners' alerts: complete when the block ends

    def __enter__(self) -> Scope:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Scope:
        return self.open()

    async def __aexit__(self, *exc: object) -> None:
        self.close()


# The journals the recorder taped calls to (it adds them). A plain set: ``WeakSet.add`` is Python code that
# makes a weak reference on every call (a few µs on the call's path); journals live as long as the process.
taped: set[Any] = set()


def _materialize() -> None:
    """Captured calls are taped on their way back to the user and made into priced calls in batches
    (:mod:`llmcost_nb.ledger.journal`); whatever reads a total makes the pending ones first: priced and
    counted, nothing more (no listener is called, nothing is written)."""
    for journal in list(taped):
        journal.materialize()


def _settle() -> None:
    """As :func:`_materialize`, and the listeners (budgets, summaries, sinks) are shown those calls: when a
    scope ends."""
    for journal in list(taped):
        journal.settle()


def current_scope() -> tuple[Scope | None, str]:
    """The scope a call made here belongs to, and how it was found: context, active or none."""
    scope = _current.get()
    if scope is not None:
        return scope, "context"
    with _active_lock:
        if _active:
            return _active[-1], "active"
    return None, "none"


def reset_state() -> None:
    """Forget the session and the open scopes, as a new process starts (``llmcost_nb.testing.reset``)."""
    global _session
    with _session_lock:
        _session = None
    with _active_lock:
        _active.clear()
