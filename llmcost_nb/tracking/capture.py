"""HTTP-level capture: patch ``send`` on httpx's and httpx2's ``Client`` and ``AsyncClient``.

Every SDK built on them (openai 3.x and anthropic 2.x use httpx2, google-genai, langchain, plain httpx) goes
through ``send``, once per attempt. A patched ``send`` asks :mod:`.providers` whether the request is an LLM
call; if so it runs the preflight hooks (budgets), sends, and hands the response to :mod:`._recorder`, which
turns it into a priced ledger row. Streams are teed: the user's chunks pass through untouched while a copy is
kept, parsed when the stream ends or is closed.

Capture never changes what the user's call returns or raises: every failure of ours becomes a warning. The
only deliberate interruption is an exception marked ``_llmcost_deliberate`` raised by a preflight hook (a
budget hard stop), raised before the request is sent.

``install()`` does not import httpx or httpx2 (≈170 ms each): libraries not imported yet are patched by an
import hook the moment they are.
"""

from __future__ import annotations

import contextvars
import importlib.abc
import importlib.machinery
import sys
import threading
from time import perf_counter
from types import ModuleType
from typing import Any

from ..core.warn import warn_once
from ..pricing.providers import classify
from . import recorder as _recorder

__all__ = ["install", "installed", "uninstall"]

_LIBRARIES = ("httpx", "httpx2")
_lock = threading.RLock()
_patched: dict[tuple[type, str], Any] = {}  # (class, attribute) -> original function
_installed = False
# Set while one of our sends runs, so a send nested inside another (a subclass calling super().send, or
# httpx aliased to httpx2) is recorded once.
_in_send: contextvars.ContextVar[bool] = contextvars.ContextVar("llmcost_in_send", default=False)


def installed() -> bool:
    return _installed


def install() -> None:
    """Start capturing (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
        for name in _LIBRARIES:
            if (module := sys.modules.get(name)) is not None:
                _patch_module(module)
        if not any(isinstance(f, _PatchOnImport) for f in sys.meta_path):
            sys.meta_path.insert(0, _PatchOnImport())
    from ..pricing.pricer import warm

    warm()


def uninstall() -> None:
    """Stop capturing and restore the libraries exactly as they were."""
    global _installed
    with _lock:
        _installed = False
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _PatchOnImport)]
        for (cls, attr), original in _patched.items():
            setattr(cls, attr, original)
        _patched.clear()


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Patches httpx / httpx2 right after they are imported, so ``install()`` need not import them."""

    def find_spec(self, fullname: str, path: Any,
                  target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _LIBRARIES:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
                spec.loader = _PatchingLoader(spec.loader)
                return spec
        return None


class _PatchingLoader(importlib.abc.Loader):
    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        with _lock:
            if _installed:
                _patch_module(module)

    def __getattr__(self, name: str) -> Any:  # resource readers and the like
        return getattr(self._loader, name)


def _patch_module(module: ModuleType) -> None:
    try:
        sync_cls, async_cls = module.Client, module.AsyncClient
        sync_stream, async_stream = module.SyncByteStream, module.AsyncByteStream
    except AttributeError:  # an httpx too old or too new to know: leave it alone
        warn_once(f"patch:{module.__name__}", f"{module.__name__} has no Client/AsyncClient to capture")
        return
    _patch_send(sync_cls, _make_sync_send(sync_cls.__dict__["send"], _sync_tee_class(sync_stream)))
    _patch_send(async_cls, _make_async_send(async_cls.__dict__["send"], _async_tee_class(async_stream)))


def _patch_send(cls: type, send: Any) -> None:
    original = cls.__dict__["send"]
    if getattr(original, "_llmcost_original", None) is not None:  # patched already (httpx aliased to httpx2)
        return
    send._llmcost_original = original
    _patched[(cls, "send")] = original
    cls.send = send  # type: ignore[attr-defined]


def _begin(request: Any) -> _recorder.Pending | None:
    """The pending record of an LLM request, or None for any other request. Raises only a deliberate stop."""
    try:
        url = request.url
        endpoint = classify(request.method, url.host, url.path)
        if endpoint is None:
            return None
        return _recorder.begin(endpoint, url.path, request)
    except Exception as exc:
        if getattr(exc, "_llmcost_deliberate", False):
            raise
        warn_once(f"begin:{type(exc).__name__}", f"could not read an LLM request ({exc!r}); not tracked")
        return None


def _make_sync_send(original: Any, tee_class: type) -> Any:
    def send(self: Any, request: Any, *, stream: bool = False, **kwargs: Any) -> Any:
        if _in_send.get():
            return original(self, request, stream=stream, **kwargs)
        pending = _begin(request)
        if pending is None:
            return original(self, request, stream=stream, **kwargs)
        token = _in_send.set(True)
        pending.t0 = perf_counter()
        try:
            if pending.respond_with is not None:  # answered without the network (replay)
                response = pending.respond_with(request, stream)
            else:
                response = original(self, request, stream=stream, **kwargs)
        except BaseException as exc:
            _recorder.failed(pending, exc)
            raise
        finally:
            _in_send.reset(token)
        _recorder.responded(pending, response, tee_class)
        return response

    return send


def _make_async_send(original: Any, tee_class: type) -> Any:
    async def send(self: Any, request: Any, *, stream: bool = False, **kwargs: Any) -> Any:
        if _in_send.get():
            return await original(self, request, stream=stream, **kwargs)
        pending = _begin(request)
        if pending is None:
            return await original(self, request, stream=stream, **kwargs)
        token = _in_send.set(True)
        pending.t0 = perf_counter()
        try:
            if pending.respond_with is not None:  # answered without the network (replay)
                response = pending.respond_with(request, stream)
            else:
                response = await original(self, request, stream=stream, **kwargs)
        except BaseException as exc:
            _recorder.failed(pending, exc)
            raise
        finally:
            _in_send.reset(token)
        _recorder.responded(pending, response, tee_class)
        return response

    return send


def _sync_tee_class(base: type) -> type:
    class SyncTee(base):  # type: ignore[misc, valid-type]
        """Passes the raw bytes through untouched and keeps a copy for the recorder."""

        def __init__(self, inner: Any, stream_recorder: _recorder.StreamRecorder) -> None:
            self._inner, self._rec = inner, stream_recorder

        def __iter__(self) -> Any:
            append = self._rec.chunks.append
            complete = False
            try:
                for chunk in self._inner:
                    append(chunk)
                    yield chunk
                complete = True
            finally:
                self._rec.finish(cut=not complete)

        def close(self) -> None:
            try:
                self._inner.close()
            finally:
                self._rec.finish(cut=True)  # a no-op when the stream already ended

    return SyncTee


def _async_tee_class(base: type) -> type:
    class AsyncTee(base):  # type: ignore[misc, valid-type]
        """Passes the raw bytes through untouched and keeps a copy for the recorder."""

        def __init__(self, inner: Any, stream_recorder: _recorder.StreamRecorder) -> None:
            self._inner, self._rec = inner, stream_recorder

        async def __aiter__(self) -> Any:
            append = self._rec.chunks.append
            complete = False
            try:
                async for chunk in self._inner:
                    append(chunk)
                    yield chunk
                complete = True
            finally:
                self._rec.finish(cut=not complete)

        async def aclose(self) -> None:
            try:
                await self._inner.aclose()
            finally:
                self._rec.finish(cut=True)

    return AsyncTee
