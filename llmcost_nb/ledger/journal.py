"""The journal of captured calls: each one taped to a memory-mapped file before it returns to the user,
and made into a priced ledger row in a batch soon after.

Inside a real SDK call our work costs about three times what it costs in a warm loop (the SDK's own work
evicts ours from the CPU caches), and a SQLite commit alone took ~25 µs of the ~95 µs capture cost there. So
on the call's path capture only takes the response's usage object and model (never its text), as they came,
and appends them with who made the call to this process's *segment* (:mod:`.segment`): a preallocated,
memory-mapped file of framed records in ``<ledger>-pending/`` that the process holds an exclusive ``flock``
on. Once copied in, the record is in the kernel's page cache: a process killed right after the call does not
lose it.

Making the records into calls (reading their usage, pricing, the scope's and session's totals) happens when
anything reads a total (``Scope.records``, ``total_cost``, ``Session.total_cost``): that read calls no
listener and writes nothing. The listeners (budgets, summaries, sinks) are shown the calls when a scope ends,
when a hard budget is checked, and always before their rows are committed. Committing their rows, in one
transaction with ids in call order (a call's ``id`` is set then), happens:
- on a daemon thread, 0.1 s after the oldest call not committed (a failed commit is retried after 1 s,
  doubling to 30 s);
- before anything in this process reads the ledger (``Ledger.connection``), and at ``Ledger.flush()``;
- when 512 calls wait, and at exit.
The commit also notes the segments it covers in ``meta`` (``pending:<name>``); they are unlinked after it. A
process that opens the ledger records the segments nobody holds a lock on (their process died), unless such
a note says they were recorded already: every call lands exactly once.

Only non-streamed 2xx JSON responses are taped; everything else (errors, streams, replayed calls, sessions
that store prompt text, a ledger that cannot be opened) is recorded at once, as before.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from ..core.call import UNKNOWN_USAGE, Call
from ..core.times import iso_of_ns
from ..core.warn import warn_once
from ..pricing.pricer import Pricer, price_captured
from ..pricing.usage import extract_usage, warn_unreadable
from .segment import SUPPORTED, Segment, directory_of, frame

__all__ = ["Journal", "JournalHooks", "abandon_all", "call_from_exchange", "flush_all", "journal_for",
           "lock_for", "materialize", "pending_journal", "settle"]

INTERVAL_S = 0.1
MAX_PENDING = 512

_registry_lock = threading.Lock()
_locks: dict[str, threading.RLock] = {}
_journals: dict[str, Journal] = {}
_wake = threading.Event()
_flusher: threading.Thread | None = None


def lock_for(key: str) -> threading.RLock:
    """The lock shared by every ``Ledger`` on the file ``key`` in this process (and by its journal)."""
    lock = _locks.get(key)
    if lock is None:
        with _registry_lock:
            lock = _locks.setdefault(key, threading.RLock())
    return lock


class JournalHooks(Protocol):
    """What the journal tells whoever tapes calls to it (the recorder), about calls it made from their
    exchanges. ``context`` is what that caller appended with each exchange; the journal never looks in it."""

    def made(self, items: list[tuple[Call, Any]]) -> None:
        """These calls were made and priced: count them (no listeners yet)."""

    def announce(self, items: list[tuple[Call, Any]]) -> None:
        """These calls are about to be committed: tell the listeners (always before their commit)."""

    def before_commit(self, ledger: Any, contexts: list[Any]) -> None:
        """The rows of calls appended with these contexts are about to be committed to ``ledger``."""


def call_from_exchange(pricer: Pricer, exchange: tuple[Any, ...]) -> Call:
    """A taped exchange as the priced call that recording it at once would have made. The exchange is an
    on-disk format (segments outlive the process that wrote them): its first 16 fields and their order stay.
    The time is ``time.time_ns()`` (formatted here, off the call's path), or ledger text (older segments); the
    latency is rounded here too (``round(x, 3)`` formats and parses the float: ~1.5k instructions).

    A 17th field of 1 says the usage field holds what ``extract_usage`` reads of the response (its usage
    object and model, as they came): read here, where it took ~16k instructions on the call's path. Older
    segments hold the usage already read, and the model. A usage object that cannot be read is warned about,
    as at once, and the call kept without tokens, unpriced (``usage_source="unknown"``)."""
    (ts, latency_ms, status_code, request_id, provider, api, host, model_requested, service_tier, session_id,
     scope_id, attribution, tags, estimated, model, usage, *later) = exchange
    source = "provider"
    if later and later[0] == 1:
        try:
            model, usage = extract_usage(usage, api=api)
        except Exception as exc:
            warn_unreadable(exc)
            model, usage = None, None
            source = UNKNOWN_USAGE
    call = Call(provider=provider, api=api, model_requested=model_requested, model=model or model_requested,
                host=host, service_tier=service_tier, session_id=session_id, scope_id=scope_id,
                attribution=attribution, tags=dict(tags), latency_ms=round(latency_ms, 3),
                estimated_input_tokens=estimated, ts=iso_of_ns(ts) if type(ts) is int else ts,
                http_status=status_code, request_id=request_id, usage_source=source)
    if usage is not None:
        call.set_usage(usage)
    price_captured(pricer, call)
    return call


def journal_for(key: str, path: Path, ledger: Any, hooks: JournalHooks | None = None) -> Journal | None:
    """This process's journal for the ledger at ``path``, or None where there can be none (no flock).
    ``hooks``, when given, are told about the calls made from what is taped to it from now on."""
    journal = _journals.get(key)
    if journal is None:
        if not SUPPORTED:
            return None
        with _registry_lock:
            journal = _journals.get(key)
            if journal is None:
                journal = _journals[key] = Journal(key, directory_of(path), lock_for(key), ledger, hooks)
    if hooks is not None and journal.hooks is not hooks:
        journal.hooks = hooks
    return journal


def pending_journal(key: str) -> Journal | None:
    """The journal for ``key`` if it holds calls not in the ledger yet."""
    journal = _journals.get(key)
    return journal if journal is not None and journal.pending else None


def settle() -> None:
    """Make every call this process taped into a priced, counted call and show it to the listeners (what a
    budget's check reads after this is complete); committing their rows is left to the flusher or the next
    read."""
    for journal in list(_journals.values()):
        journal.settle()


def materialize() -> None:
    """Make every call this process taped into a priced, counted call, and nothing else: scope and session
    totals read after this are complete; no listener is called and nothing is written."""
    for journal in list(_journals.values()):
        if journal.exchanges:
            journal.materialize()


class Journal:
    """One process's pending calls for one ledger: exchanges taped (durable in the current segment) but not
    yet made into rows, and rows made but not yet committed (durable in sealed segments)."""

    def __init__(self, key: str, directory: Path, lock: threading.RLock, ledger: Any,
                 hooks: JournalHooks | None = None) -> None:
        self.key, self.directory, self.ledger, self.hooks = key, directory, ledger, hooks
        self.lock = lock  # the ledger's: making rows and committing them
        self._tape_lock = threading.Lock()  # appending: never held while SQLite waits
        self.pid = os.getpid()
        self.exchanges: list[tuple[tuple[Any, ...], Any]] = []  # (exchange, context)
        self.unwritten: list[tuple[Call, Any]] = []  # (call, context): made into calls, not committed yet
        self.unannounced: list[tuple[Call, Any]] = []  # made, not shown to the listeners yet
        self._segment: Segment | None = None  # the one exchanges are appended to
        self._spare: Segment | None = None  # the next one, made ahead by the flusher (prepare_spare)
        self._closed = False  # at exit: no spare made after close() removed the last
        self._sealed: list[Segment] = []  # segments whose calls are all made, not all committed
        self._forget: list[str] = []  # segments committed and unlinked: their meta keys can go
        self._flushing = False
        self.retry_at = 0.0  # after a failed commit: when to try again (time.monotonic)
        self._backoff = 0.0
        self.since = 0.0  # when the oldest call not committed yet was taped

    def due(self, now: float) -> bool:
        """Whether the background flusher should commit now: the oldest call taped INTERVAL_S ago (and no
        retry pause running)."""
        return self.pending and now >= max(self.since + INTERVAL_S, self.retry_at)

    @property
    def pending(self) -> bool:
        return bool(self.exchanges or self.unwritten)

    def append(self, exchange: tuple[Any, ...], context: Any = None) -> None:
        """Make ``exchange`` durable in the segment; raises OSError if it cannot (the caller records the
        call at once instead). ``context`` (who made the call) is handed back to the hooks with the call."""
        record = frame(exchange)
        with self._tape_lock:
            if self._segment is None:
                self._segment = self._next_segment()
            if not self._segment.append(record):  # full: sealed now, committed with the next commit
                self._sealed.append(self._segment)
                self._segment = self._next_segment()
                if not self._segment.append(record):
                    raise OSError(f"a record of {len(record)} bytes does not fit in a journal segment")
            first = not self.pending
            if first:
                self.since = time.monotonic()
            self.exchanges.append((exchange, context))
            waiting = len(self.exchanges) + len(self.unwritten)  # totals read often make the former few
        if waiting >= MAX_PENDING:
            self.flush()
        elif first:
            _start_flusher()
            _wake.set()

    def _next_segment(self) -> Segment:
        """Under ``_tape_lock``: the spare made ahead, else a new segment (~0.5 ms on the call's path)."""
        spare, self._spare = self._spare, None
        return spare if spare is not None else Segment(self.directory, self.pid)

    def prepare_spare(self) -> None:
        """Make the segment the next taped call starts, if none is waiting: the flusher does this before a
        commit (which seals the current one), so the call after it copies its record into a ready page
        instead of making a file first — every call, at a notebook's pace. (Made after the commit, it came
        too late whenever calls were a few ms apart: the next call had made its own.)"""
        if self._spare is not None or self._closed or self.pid != os.getpid():
            return
        spare: Segment | None = Segment(self.directory, self.pid, populate=True)
        with self._tape_lock:
            if self._spare is None and not self._closed and self.pid == os.getpid():
                self._spare, spare = spare, None
        if spare is not None:  # another thread made one meanwhile, or the process is exiting
            spare.close(self.directory)

    def settle(self) -> None:
        """Make the taped exchanges into priced, counted calls and show them to the listeners; their rows
        are committed later (the flusher, the next read)."""
        if self.exchanges or self.unannounced:
            self.flush(commit=False)

    def materialize(self) -> None:
        """Make the taped exchanges into priced calls, counted in their scope and session (``hooks.made``);
        the listeners are told later, before the calls' rows are committed. Nothing is written."""
        with self.lock:
            if self._flushing or self.pid != os.getpid() or not self.exchanges:
                return
            self._flushing = True
            try:
                self._make(committing=False)
            finally:
                self._flushing = False

    def _make(self, *, committing: bool) -> None:
        """Under ``self.lock``: the exchanges taped so far as calls, pending until committed."""
        with self._tape_lock:
            exchanges, self.exchanges = self.exchanges, []
            if committing and self._segment is not None:  # later exchanges go to a new segment,
                self._sealed.append(self._segment)  # so the commit covers whole segments
                self._segment = None
        if not exchanges:
            return
        pricer = self.ledger.pricer
        made = []
        for exchange, context in exchanges:
            try:
                call = call_from_exchange(pricer, exchange)
            except Exception as exc:  # one that cannot be read is left out, as a response would be
                warn_once(f"exchange:{type(exc).__name__}", f"could not record a response ({exc!r})")
                continue
            call._journal = self
            made.append((call, context))
        self.unwritten.extend(made)
        self.unannounced.extend(made)
        if self.hooks is not None:
            self.hooks.made(made)

    def flush(self, *, force: bool = False, commit: bool = True) -> None:
        """Make the taped exchanges into priced calls (counted in their scope and session, then shown to
        the listeners) and, unless ``commit`` is false, commit every pending row in one transaction.

        A failed commit (the ledger locked beyond its busy timeout, a full disk) leaves the rows pending,
        still durable in their segments; it is warned about, never raised, and tried again after a pause
        (1 s, doubling up to 30 s; at once with ``force``) so that reads do not each wait out the busy
        timeout."""
        with self.lock:
            if self._flushing or self.pid != os.getpid() or not self.pending:
                return  # _flushing: a read made while flushing (a new tag set stored) must not recurse
            self._flushing = True
            try:
                committing = commit and (force or time.monotonic() >= self.retry_at)
                self._make(committing=committing)
                # Listeners (budgets, summaries, sinks) see the calls before they are committed: what a
                # budget reads from the ledger then holds none of this batch, which it adds call by call.
                announce, self.unannounced = self.unannounced, []
                if announce and self.hooks is not None:
                    self.hooks.announce(announce)
                if committing and self.unwritten:
                    self._commit()
            finally:
                self._flushing = False

    def _commit(self) -> None:
        sealed = [segment.name for segment in self._sealed]
        try:
            if self.hooks is not None:  # scope rows: their first try, on the call's path, may have failed
                self.hooks.before_commit(self.ledger, [context for _, context in self.unwritten])
            ids = self.ledger.commit_pending([call for call, _ in self.unwritten], sealed, self._forget)
        except Exception as exc:
            self._backoff = min(max(1.0, 2 * self._backoff), 30.0)
            self.retry_at = time.monotonic() + self._backoff
            _wake.set()  # the flusher tries again then
            warn_once(f"pending-commit:{type(exc).__name__}",
                      f"could not write to the ledger at {self.ledger.path} ({exc}); the call itself was not "
                      f"affected: its row is kept in {self.directory} and written as soon as the ledger can "
                      "take it")
            return
        for (call, _), call_id in zip(self.unwritten, ids, strict=True):
            call.id, call._journal = call_id, None
        self.unwritten = []
        self._backoff = self.retry_at = 0.0
        self.since = time.monotonic()  # for exchanges taped since the swap (an upper bound on their age)
        for segment in self._sealed:
            segment.close(self.directory)
        self._forget, self._sealed = sealed, []

    def close(self) -> None:
        """At exit, after the last flush: remove an empty segment, and the spare."""
        with self._tape_lock:
            if self.pid != os.getpid():
                return
            self._closed = True
            empty = [self._spare] if self._spare is not None else []
            self._spare = None
            if not self.exchanges and self._segment is not None:
                empty.append(self._segment)
                self._segment = None
        for segment in empty:
            segment.close(self.directory)


def flush_all(*, force: bool = False, only: list[Journal] | None = None) -> None:
    for journal in list(_journals.values()) if only is None else only:
        try:
            journal.flush(force=force)
        except Exception as exc:  # a bug of ours: the calls stay in the segment, replayed on the next open
            warn_once(f"pending-flush:{type(exc).__name__}",
                      f"could not record pending calls ({exc!r}); they are kept in {journal.directory} and "
                      "recorded when the ledger is next opened")


def _start_flusher() -> None:
    global _flusher
    if _flusher is not None and _flusher.is_alive():
        return
    with _registry_lock:
        if _flusher is None or not _flusher.is_alive():
            _flusher = threading.Thread(target=_flush_loop, name="llmcost-flush", daemon=True)
            _flusher.start()


def _flush_loop() -> None:
    while True:
        _wake.wait(_until_due())
        _wake.clear()
        now = time.monotonic()
        due = [j for j in list(_journals.values()) if j.due(now)]
        for journal in due:
            with contextlib.suppress(Exception):  # a full disk: the next call makes its own, and says so
                journal.prepare_spare()
        flush_all(only=due)


def _until_due() -> float | None:
    """Seconds until a journal is due (see ``Journal.due``), or None when none has anything pending."""
    times = [max(j.since + INTERVAL_S, j.retry_at) for j in list(_journals.values()) if j.pending]
    return max(0.0, min(times) - time.monotonic()) if times else None


@atexit.register
def _at_exit() -> None:
    flush_all(force=True)
    for journal in list(_journals.values()):
        journal.close()


def abandon_all() -> None:
    """Forget this process's journals as its death would: their calls stay in their segments, recorded by
    the next process to open each ledger (tests use it to end a test as a process ends)."""
    with _registry_lock:
        journals = list(_journals.values())
        _journals.clear()
    for journal in journals:
        with journal.lock, journal._tape_lock:  # after a flush in progress
            segments = [s for s in (journal._segment, journal._spare, *journal._sealed) if s is not None]
            journal._segment, journal._spare, journal._sealed = None, None, []
            journal.exchanges, journal.unwritten, journal.unannounced = [], [], []
        for segment in segments:
            segment.close()


_held: list[Any] = []  # the locks taken across a fork


def _before_fork() -> None:
    """No other thread may hold a ledger's lock or a journal's when the process forks: the child would find
    it held by a thread it does not have, forever. Take them all (ledger locks first, as flush does)."""
    held = [*_locks.values(), *(j._tape_lock for j in list(_journals.values()))]
    for lock in held:
        lock.acquire()
    _held[:] = held


def _after_fork_in_parent() -> None:
    for lock in reversed(_held):
        lock.release()
    _held.clear()


def _after_fork_in_child() -> None:
    """A child starts with no journals and no flusher: its parent's pending calls are its parent's."""
    global _flusher, _registry_lock, _wake
    _after_fork_in_parent()
    _registry_lock = threading.Lock()
    _wake = threading.Event()
    _flusher = None
    _journals.clear()  # the locks stay: the child's Ledger objects hold them already


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)
