"""Capture: hook each HTTP stack an LLM call can go through, and record what it sends and receives.

=================================  ====================================  ========================
stack                              hooked at                             module
=================================  ====================================  ========================
httpx, httpx2 (openai, anthropic,  ``Client.send`` /                     here
google-genai sync, langchain)      ``AsyncClient.send``
urllib.request, urllib3, requests  ``HTTPConnection.request`` of         :mod:`.capture_http`
                                   http.client and urllib3; urllib3's
                                   ``HTTPConnectionPool._make_request``
botocore (boto3 Bedrock Runtime)   ``URLLib3Session.send``               :mod:`.capture_botocore`
aiohttp (google-genai async,       ``ClientSession._request``            :mod:`.capture_aiohttp`
openai/anthropic aiohttp clients)
=================================  ====================================  ========================

Every SDK built on httpx/httpx2 goes through ``send``, once per attempt. A patched ``send`` asks
:mod:`.providers` whether the request is an LLM call; if so it runs the preflight hooks (budgets), sends, and
hands the response to :mod:`._recorder`, which turns it into a priced ledger row. Streams are teed: the
user's chunks pass through untouched while a copy is kept, parsed when the stream ends or is closed. The
other stacks do the same through :mod:`.hooks`; a stack running on another (botocore on urllib3, an aiohttp
transport under httpx2) is recorded once, by the upper hook.

Capture never changes what the user's call returns or raises: every failure of ours becomes a warning. The
only deliberate interruption is an exception marked ``_llmcost_deliberate`` raised by a preflight hook (a
budget hard stop), raised before the request is sent.

``install()`` imports none of these libraries (httpx alone takes ≈170 ms): a library not imported yet is
patched by an import hook the moment it is.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Callable
from time import perf_counter
from types import ModuleType
from typing import Any

from ..core.warn import warn_once
from ..pricing.providers import classify
from . import ask_usage, capture_aiohttp, capture_botocore, capture_http, hooks
from . import recorder as _recorder
from .scope import get_session

__all__ = ["install", "installed", "stacks", "status_line", "uninstall"]

_lock = hooks.lock
_installed = False
_in_send = hooks.in_send


def _patch_httpx_module(module: ModuleType) -> None:
    _patch_module(module)


# module -> its patcher, and the stacks it serves (what ``%llmcost status`` lists)
_PATCHERS: dict[str, tuple[Callable[[ModuleType], None], str]] = {
    "httpx": (_patch_httpx_module, "httpx"),
    "httpx2": (_patch_httpx_module, "httpx2"),
    "http.client": (capture_http.patch_http_client, "urllib.request"),
    "urllib3.connection": (capture_http.patch_urllib3, "urllib3/requests"),
    "urllib3.connectionpool": (capture_http.patch_urllib3_pool, "urllib3/requests"),
    "botocore.httpsession": (capture_botocore.patch, "botocore"),
    "aiohttp.client": (capture_aiohttp.patch, "aiohttp"),
}
_hooked: dict[str, bool] = {}  # stack -> patched in this process since install()


def stacks() -> dict[str, str]:
    """Each HTTP stack capture knows, and its state: ``"hooked"``, ``"on import"`` (hooked the moment it
    is imported) or ``"off"`` (capture not installed).

    >>> stacks()                                          # doctest: +SKIP
    {'httpx': 'on import', 'httpx2': 'hooked', 'urllib.request': 'hooked', ...}
    """
    with _lock:
        return {name: ("hooked" if _hooked.get(name) else "on import") if _installed else "off"
                for _, name in _PATCHERS.values()}


def status_line() -> str:
    """The capture line of ``%llmcost status``: the stacks hooked now, and those hooked once imported.

    >>> status_line()                                     # doctest: +SKIP
    'capture: httpx2, urllib.request, urllib3/requests hooked · on import: httpx, botocore, aiohttp'
    """
    states = stacks()
    if not _installed:
        return "capture: off"
    hooked = [name for name, state in states.items() if state == "hooked"]
    later = [name for name, state in states.items() if state == "on import"]
    return (f"capture: {', '.join(hooked) or 'no HTTP library imported yet'}{' hooked' if hooked else ''}"
            + (f" · on import: {', '.join(later)}" if later else "")
            + (" · OpenAI streams asked for their usage" if get_session().ask_stream_usage else ""))


def installed() -> bool:
    return _installed


def install() -> None:
    """Start capturing (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
        for name in _PATCHERS:
            if (module := sys.modules.get(name)) is not None:
                _patch(name, module)
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
        hooks.restore_all()
        _hooked.clear()


def _patch(name: str, module: ModuleType) -> None:
    patcher, stack = _PATCHERS[name]
    try:
        patcher(module)
        _hooked[stack] = True
    except Exception as exc:  # a version of the library we do not know: leave it alone, say so once
        warn_once(f"patch:{name}", f"could not hook {name} ({exc!r}); its calls are not tracked")


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Patches a hooked library right after it is imported, so ``install()`` need not import it."""

    def find_spec(self, fullname: str, path: Any,
                  target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _PATCHERS:
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
                _patch(module.__name__, module)

    def __getattr__(self, name: str) -> Any:  # resource readers and the like
        return getattr(self._loader, name)


def _patch_module(module: ModuleType) -> None:
    try:
        sync_cls, async_cls = module.Client, module.AsyncClient
        sync_stream, async_stream = module.SyncByteStream, module.AsyncByteStream
    except AttributeError:  # an httpx too old or too new to know: leave it alone
        warn_once(f"patch:{module.__name__}", f"{module.__name__} has no Client/AsyncClient to capture")
        return
    sync_tee, async_tee = _sync_tee_class(sync_stream), _async_tee_class(async_stream)
    sync_hiding, async_hiding = ask_usage.hiding_tee_classes(sync_tee, async_tee)
    _patch_send(sync_cls, _make_sync_send(sync_cls.__dict__["send"], sync_tee, sync_hiding))
    _patch_send(async_cls, _make_async_send(async_cls.__dict__["send"], async_tee, async_hiding))


def _patch_send(cls: type, send: Any) -> None:
    hooks.replace(cls, "send", send)


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


def _make_sync_send(original: Any, tee_class: type, hiding_tee_class: type) -> Any:
    def send(self: Any, request: Any, *, stream: bool = False, **kwargs: Any) -> Any:
        if _in_send.get():
            return original(self, request, stream=stream, **kwargs)
        pending = _begin(request)
        if pending is None:
            return original(self, request, stream=stream, **kwargs)
        asking = _asking(pending, request, stream) if pending.session.ask_stream_usage else None
        token = _in_send.set(True)
        pending.t0 = perf_counter()
        try:
            if pending.respond_with is not None:  # answered without the network (replay)
                response = pending.respond_with(request, stream)
            else:
                response = original(self, asking or request, stream=stream, **kwargs)
        except BaseException as exc:
            _recorder.failed(pending, exc)
            raise
        finally:
            _in_send.reset(token)
        if asking is not None:
            response.request = request  # the caller's own
        _recorder.responded(pending, response, tee_class if asking is None else hiding_tee_class)
        return response

    return send


def _make_async_send(original: Any, tee_class: type, hiding_tee_class: type) -> Any:
    async def send(self: Any, request: Any, *, stream: bool = False, **kwargs: Any) -> Any:
        if _in_send.get():
            return await original(self, request, stream=stream, **kwargs)
        pending = _begin(request)
        if pending is None:
            return await original(self, request, stream=stream, **kwargs)
        asking = _asking(pending, request, stream) if pending.session.ask_stream_usage else None
        token = _in_send.set(True)
        pending.t0 = perf_counter()
        try:
            if pending.respond_with is not None:  # answered without the network (replay)
                response = pending.respond_with(request, stream)
            else:
                response = await original(self, asking or request, stream=stream, **kwargs)
        except BaseException as exc:
            _recorder.failed(pending, exc)
            raise
        finally:
            _in_send.reset(token)
        if asking is not None:
            response.request = request  # the caller's own
        _recorder.responded(pending, response, tee_class if asking is None else hiding_tee_class)
        return response

    return send


def _asking(pending: _recorder.Pending, request: Any, stream: bool) -> Any | None:
    """With the setting on: the request to send instead of ``request``, asking for its stream's usage
    (:mod:`.ask_usage`), or None (it does not apply, or building it failed: ``request`` is sent, warned)."""
    try:
        return ask_usage.asking_request(pending, request, stream=stream)
    except Exception as exc:
        pending.info.include_usage = False
        warn_once(f"ask-usage:{type(exc).__name__}", f"could not ask for a stream's usage ({exc!r}); the "
                  "request was sent as it was, and its tokens are counted")
        return None


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
