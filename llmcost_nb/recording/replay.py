"""Record & replay: re-run a notebook without paying (or reaching) the provider twice.

>>> import llmcost_nb
>>> with llmcost_nb.replay("replay-or-record"):                        # doctest: +SKIP
...     client.chat.completions.create(model="gpt-4.1", messages=msgs)  # 1st run: sent and recorded
>>> llmcost_nb.replay("replay-only", path="sample_data/replay/demo.jsonl")   # doctest: +SKIP

Modes: ``"off"``; ``"record"`` (send, and keep each successful response); ``"replay-or-record"`` (serve a
recorded response when there is one, else send and record); ``"replay-only"`` (serve recordings; a request
never recorded raises :class:`ReplayMiss` naming it, and nothing is sent).

A replayed response goes through the SDK exactly like the first one (same bytes, streamed or not) and is
recorded by capture like any call, marked ``replayed`` at $0 with ``saved_usd``: what it would have cost.
Recordings live in a JSON Lines file (:mod:`._replay_store`), by default next to the ledger
(``ledger.replay.jsonl`` beside ``ledger.db``). They hold the request body and the response body — the
prompts and answers, since that is what a replay needs — but never a header: no API key, no auth.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
import threading
import weakref
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from .. import errors
from ..core.money import format_usd
from ..tracking.scope import Session, get_session
from .store import VOLATILE_FIELDS, Recording, ReplayStore, normalized_request

__all__ = [
    "MODES", "Replay", "ReplayMiss", "ReplayStatus", "clear", "for_scope", "magic", "replay", "status",
    "status_line",
]

MODES = ("off", "record", "replay-or-record", "replay-only")
_REPLAYING = ("replay-or-record", "replay-only")
_RECORDING = ("record", "replay-or-record")
_SSE_EVENT_END = re.compile(rb"(?<=\n\n)|(?<=\r\n\r\n)")


@dataclass(slots=True)
class _Settings:
    mode: str
    store: ReplayStore | None
    ignore: frozenset[str]


_settings: weakref.WeakKeyDictionary[Session, _Settings] = weakref.WeakKeyDictionary()
_scope_settings: weakref.WeakKeyDictionary[Any, _Settings] = weakref.WeakKeyDictionary()  # Scope -> settings


class Replay:
    """Replay settings set by :func:`replay`; as a context manager (``with replay(...):``) it restores the
    previous ones on exit. ``close()`` does the same without ``with``."""

    def __init__(self, session: Session, settings: _Settings, previous: _Settings | None) -> None:
        self._session, self._settings, self._previous, self._closed = session, settings, previous, False

    @property
    def mode(self) -> str:
        return self._settings.mode

    @property
    def store(self) -> ReplayStore | None:
        return self._settings.store

    def __repr__(self) -> str:
        store = self.store
        return f"<Replay {self.mode}{f' {store.path}' if store is not None else ''}>"

    def close(self) -> None:
        """Restore the settings in force before this one (once)."""
        if not self._closed:
            self._closed = True
            _apply(self._session, self._previous)

    def __enter__(self) -> Replay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def replay(mode: str = "replay-or-record", *, path: str | os.PathLike[str] | None = None,
           ignore_fields: tuple[str, ...] = (), session: Session | None = None) -> Replay:
    """Set the replay mode of this session (from now on, or for a ``with`` block).

    ``path``: the recordings file (default: ``<ledger>.replay.jsonl`` next to the session's ledger).
    ``ignore_fields``: more request-body fields to leave out of the match (besides user, metadata, ...).

    >>> with replay("replay-only", path="sample_data/replay/demo.jsonl"):   # doctest: +SKIP
    ...     client.chat.completions.create(...)                            # no network
    """
    if mode not in MODES:
        raise ValueError(f"Unknown replay mode {mode!r}, allowed values: {', '.join(MODES)}")
    session = session or get_session()
    previous = _settings.get(session)
    store = None
    if mode != "off":
        store = ReplayStore(path if path is not None else default_path(session))
    settings = _Settings(mode, store, VOLATILE_FIELDS | frozenset(ignore_fields))
    _apply(session, settings)
    return Replay(session, settings, previous)


def for_scope(scope: Any, mode: str = "replay-or-record", *,
              path: str | os.PathLike[str] | None = None) -> None:
    """Replay for the calls of one scope only (``%%llmcost --replay``), whatever the session's mode."""
    if mode not in MODES:
        raise ValueError(f"Unknown replay mode {mode!r}, allowed values: {', '.join(MODES)}")
    session = get_session()
    store = ReplayStore(path if path is not None else default_path(session)) if mode != "off" else None
    _scope_settings[scope] = _Settings(mode, store, VOLATILE_FIELDS)
    _switched_on.set()
    session.add_pre_send(_preflight, "replay")  # first: a replayed request costs nothing
    from ..tracking import capture

    capture.install()


def default_path(session: Session | None = None) -> Path:
    """Where recordings go by default: beside the session's ledger, ``<ledger stem>.replay.jsonl``."""
    ledger_path = (session or get_session()).ledger.path
    return ledger_path.with_name(ledger_path.stem + ".replay.jsonl")


def clear(path: str | os.PathLike[str] | None = None, *, session: Session | None = None) -> int:
    """Delete the recordings (of ``path``, else of the current mode's file, else the default one);
    returns how many there were."""
    session = session or get_session()
    current = _current(session).store
    if path is None and current is not None:
        return current.clear()
    return ReplayStore(path if path is not None else default_path(session)).clear()


@dataclass(frozen=True, slots=True)
class ReplayStatus:
    """Replay in this session: the mode, the recordings file, and what replaying saved so far."""

    mode: str
    path: Path | None
    recordings: int
    replayed_calls: int
    saved_usd: Decimal

    def __str__(self) -> str:
        if self.mode == "off" and not self.replayed_calls:
            return "replay: off"
        where = f" · {_plural(self.recordings, 'recording')} in {self.path}" if self.path else ""
        return (f"replay: {self.mode}{where} · {_plural(self.replayed_calls, 'call')} replayed this session, "
                f"saved {format_usd(self.saved_usd)}")

    def _repr_html_(self) -> str:
        import html

        return f"<code>{html.escape(str(self))}</code>"


def status(session: Session | None = None) -> ReplayStatus:
    """The replay mode, recordings and this session's replayed calls with what they saved.

    >>> print(llmcost_nb.replay.status())      # doctest: +SKIP
    replay: replay-only · 3 recordings in demo.jsonl · 3 calls replayed this session, saved $0.00025
    """
    from ..core.call import from_pusd

    session = session or get_session()
    settings = _current(session)
    ledger = session.ledger
    with ledger._lock:
        count, pusd = ledger.connection.execute(
            "SELECT COUNT(*), COALESCE(SUM(saved_pusd), 0) FROM calls WHERE session_id = ? AND replayed = 1",
            (session.id,)).fetchone()
    store = settings.store
    return ReplayStatus(settings.mode, store.path if store is not None else None,
                        len(store) if store is not None else 0, count,
                        from_pusd(pusd) or Decimal(0))


_switched_on = threading.Event()  # replay was on at some point in this process (so calls may be replayed)


def status_line(session: Session) -> str:
    """The replay line of ``%llmcost status``: :func:`status` once replay has been on in this process, else
    ``"replay: off"`` without reading the ledger (no call can have been replayed)."""
    return str(status(session)) if _switched_on.is_set() else "replay: off"


def saved(calls: Any) -> Decimal:
    """What the replayed calls among ``calls`` (Call objects) would have cost."""
    return sum((c.saved for c in calls if c.replayed and c.saved is not None), Decimal(0))


_MAGIC_MODES = {"on": "replay-or-record", "off": "off", "record": "record", "only": "replay-only",
                **{m: m for m in MODES}}


def magic(words: list[str], session: Session | None = None) -> ReplayStatus:
    """``%llmcost replay [on|off|record|only|MODE|clear|status] [--path FILE]``: set the mode for the session
    (``on`` = replay-or-record, ``only`` = replay-only), delete the recordings, or show the status."""
    from IPython.core.error import UsageError

    session = session or get_session()
    path = None
    if "--path" in words:
        at = words.index("--path")
        if at + 1 >= len(words):
            raise UsageError("%llmcost replay: --path needs a file")
        path, words = words[at + 1], words[:at] + words[at + 2:]
    if len(words) > 1:
        raise UsageError(f"%llmcost replay: one action at a time, got {' '.join(words)!r}")
    action = words[0] if words else "status"
    if action == "clear":
        clear(path, session=session)
    elif action in _MAGIC_MODES:
        replay(_MAGIC_MODES[action], path=path, session=session)
    elif action != "status":
        allowed = ", ".join([*_MAGIC_MODES, "clear", "status"])
        raise UsageError(f"%llmcost replay: unknown action {action!r}, allowed values: {allowed}")
    return status(session)


# -- the capture hook ------------------------------------------------------------------------------------
def _current(session: Session) -> _Settings:
    return _settings.get(session) or _Settings("off", None, VOLATILE_FIELDS)


def _apply(session: Session, settings: _Settings | None) -> None:
    if settings is None or settings.mode == "off":
        _settings.pop(session, None)
        if not _scope_settings:
            session.remove_pre_send(_preflight)
        return
    _settings[session] = settings
    _switched_on.set()
    session.add_pre_send(_preflight, "replay")  # first: a replayed request costs nothing
    from ..tracking import capture

    capture.install()


def _preflight(pending: Any, scope: Any) -> None:
    settings = None
    while scope is not None and settings is None:  # the innermost scope with its own mode wins
        settings, scope = _scope_settings.get(scope), scope.parent
    settings = settings or _settings.get(pending.session)
    if settings is None or settings.store is None:
        return
    request = normalized_request("POST", pending.path, pending.info.model, pending.info.body, settings.ignore)
    if settings.mode in _REPLAYING:
        found = settings.store.get(Recording.new(request, 0, "", b"").key)
        if found is not None:
            pending.respond_with = _Answer(found)
            pending.replayed = True
            return
        if settings.mode == "replay-only":
            raise _miss_class()(request, settings.store.path)
    if settings.mode in _RECORDING:
        pending.body_observers.append(_Recorder(settings.store, request))


class _Recorder:
    """A body observer keeping each successful, complete response of the request it was made for."""

    def __init__(self, store: ReplayStore, request: dict[str, Any]) -> None:
        self.store, self.request = store, request

    def __call__(self, pending: Any, status_code: int, headers: Any, content: bytes, cut: bool) -> None:
        if not 200 <= status_code < 300:
            return
        content_type = headers.get("content-type", "")
        if cut:  # an SDK may close a stream right after its final event: keep it only when complete
            from ..tracking.recorder import parse_sse

            if "text/event-stream" not in content_type or not parse_sse(pending.endpoint.api, content)[1]:
                return
        self.store.put(Recording.new(self.request, status_code, content_type, content))


class _Answer:
    """A recording, as the capture hook of the request's HTTP stack serves it: httpx/httpx2 call it to build
    their response; the other stacks build theirs from ``status``, ``content_type`` and ``content``."""

    __slots__ = ("content", "content_type", "recording", "status")

    def __init__(self, recording: Recording) -> None:
        self.recording = recording
        self.status, self.content_type = recording.status, recording.content_type
        self.content = recording.content

    def __call__(self, request: Any, stream: bool) -> Any:
        return _response(self.recording, request, stream)


def _response(recording: Recording, request: Any, stream: bool) -> Any:
    """An httpx / httpx2 response (the library of ``request``) carrying the recorded bytes: read already,
    or, when the SDK asked to stream, a byte stream not yet read that yields them event by event."""
    lib = sys.modules[type(request).__module__.split(".")[0]]
    headers = [("content-type", recording.content_type)] if recording.content_type else []
    if stream:
        pieces = [p for p in _SSE_EVENT_END.split(recording.content) if p]
        response = lib.Response(recording.status, headers=headers, stream=_stream_class(lib)(pieces),
                                request=request)
    else:
        headers.append(("content-length", str(len(recording.content))))
        response = lib.Response(recording.status, headers=headers, content=recording.content, request=request)
    response.elapsed = timedelta(0)
    return response


_stream_classes: dict[str, type] = {}


def _stream_class(lib: Any) -> type:
    """A byte stream of ``lib`` that sync and async clients alike can iterate (like httpx's ByteStream)."""
    if (found := _stream_classes.get(lib.__name__)) is not None:
        return found

    class ReplayedStream(lib.SyncByteStream, lib.AsyncByteStream):  # type: ignore[misc, name-defined]
        def __init__(self, pieces: list[bytes]) -> None:
            self._pieces = pieces

        def __iter__(self) -> Any:
            yield from self._pieces

        async def __aiter__(self) -> Any:
            for piece in self._pieces:
                yield piece

        def close(self) -> None:
            pass

        async def aclose(self) -> None:
            pass

    _stream_classes[lib.__name__] = ReplayedStream
    return ReplayedStream


# replay-only mode and no recording for this request: nothing was sent. The raised error's class also
# subclasses the openai and anthropic base errors (where installed), so the SDKs pass it through unchanged
# instead of retrying and wrapping it; it is built on first use (_miss_class).
ReplayMiss = errors.ReplayMiss


_miss: type | None = None


def _miss_init(self: Any, request: dict[str, Any], path: Path) -> None:
    body = request["body"]
    messages = body.get("messages") or body.get("input") or body.get("contents")
    excerpt = repr(messages)[:120] if messages is not None else ""
    Exception.__init__(self, f"replay-only: no recording in {path} for {request['method']} {request['path']} "
                             f"model={request['model']!r}{' ' + excerpt if excerpt else ''}; nothing was "
                             "sent. Record it first (llmcost_nb.replay('replay-or-record')) or turn "
                             "replay off.")
    self.request, self.path, self.message = request, path, str(self.args[0])


def _miss_class() -> type:
    """``ReplayMiss``, built on first use: a :class:`llmcost_nb.errors.ReplayMiss` that also subclasses the
    openai and anthropic base errors (where installed) so the SDKs pass it through unchanged instead of
    retrying and wrapping it."""
    global _miss
    if _miss is None:
        bases = tuple(getattr(importlib.import_module(module), name)
                      for module, name in (("openai", "OpenAIError"), ("anthropic", "AnthropicError"))
                      if importlib.util.find_spec(module) is not None)
        _miss = type("ReplayMiss", (errors.ReplayMiss, *bases), {
            "__doc__": "replay-only mode and no recording for this request: nothing was sent.",
            "__module__": "llmcost_nb.replay",
            "__init__": _miss_init,
            "__str__": lambda self: self.message,
            "_llmcost_deliberate": True,
        })
    return _miss


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


replay.status, replay.clear, replay.magic = status, clear, magic  # llmcost_nb.replay.status() etc.
replay.ReplayMiss = ReplayMiss
