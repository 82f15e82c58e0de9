"""Capture for aiohttp: google-genai's async client (which picks aiohttp by itself when it is installed),
hand-written ``aiohttp.ClientSession`` calls, and openai/anthropic's aiohttp clients (those run under
httpx2's ``send`` and are recorded there, once).

One hook, ``ClientSession._request`` (every ``request``/``post``/``get`` goes through it): it reads what is
asked, runs the pre-send hooks (a budget stop is raised before anything is sent), and tees the response's
body where aiohttp's parser delivers it — the response's ``StreamReader`` becomes a subclass whose
``feed_data`` / ``feed_eof`` / ``set_exception`` keep a copy and then do exactly what they did. What the
reader gets, and when, is unchanged. A recorded response (replay) is served as a real ``ClientResponse``.
"""

from __future__ import annotations

import weakref
from time import perf_counter
from types import ModuleType
from typing import Any

from ..core.warn import warn_once
from . import hooks
from . import recorder as _recorder

__all__ = ["patch"]

_tees: dict[int, _recorder.StreamRecorder] = {}  # id(StreamReader) -> its recorder, until the body ends
# Recorders of bodies whose response was dropped before they ended, recorded (as cut) by the next call here;
# meanwhile their scope's end, or the exit, records them as unfinished.
_dropped: list[_recorder.StreamRecorder] = []
_tee_classes: dict[type, type] = {}
StreamReader: Any = None  # aiohttp.streams.StreamReader, once patch() has run


def patch(module: ModuleType) -> None:
    global StreamReader
    from aiohttp.streams import StreamReader  # the body's reader: imported by aiohttp.client already

    cls = module.ClientSession
    hooks.replace(cls, "_request", _make_request(cls.__dict__["_request"]))


def _make_request(original: Any) -> Any:
    async def _request(self: Any, method: str, str_or_url: Any, *args: Any, **kwargs: Any) -> Any:
        if hooks.in_send.get():
            return await original(self, method, str_or_url, *args, **kwargs)
        while _dropped:
            _dropped.pop().finish(cut=True)
        try:
            url = self._build_url(str_or_url)
            host, path = url.host or "", url.path
            body = kwargs.get("data")
        except Exception:
            return await original(self, method, str_or_url, *args, **kwargs)
        pending = hooks.begin(str(method).upper(), host, path, body,  # may raise a budget stop
                              json_body=kwargs.get("json") if body is None else None)
        if pending is None:
            return await original(self, method, str_or_url, *args, **kwargs)
        token = hooks.in_send.set(True)
        pending.t0 = perf_counter()
        try:
            if pending.respond_with is not None:  # answered from a recording, without the network
                response = _replayed(self, method, url, pending.respond_with)
            else:
                response = await original(self, method, str_or_url, *args, **kwargs)
        except BaseException as exc:
            _recorder.failed(pending, exc)
            raise
        finally:
            hooks.in_send.reset(token)
        decoded = kwargs.get("auto_decompress")
        _tee(pending, response, getattr(self, "_auto_decompress", True) if decoded is None else decoded)
        return response

    return _request


def _tee(pending: _recorder.Pending, response: Any, decoded: bool) -> None:
    try:
        raw = response.raw_headers  # decoded: aiohttp decompresses the body before the reader gets it
        pairs = [(k, v) for k, v in raw if k.lower() != b"content-encoding"] if decoded else list(raw)
        rec = hooks.stream_recorder(pending, response.status, hooks.Headers(pairs))
        if rec is None:
            return
        content = response.content
        if type(content) is not StreamReader:  # an empty body (a shared EmptyStreamReader) or unknown kind
            rec.finish(cut=False)
            return
        rec.chunks.extend(content._buffer)  # what the parser delivered before the response was returned
        if content.is_eof():
            rec.finish(cut=False)
            return
        _tees[id(content)] = rec
        content.__class__ = _tee_class(StreamReader)
        # The reader cannot be weakly referred to; its response can, and holds it while it lives.
        weakref.finalize(response, _forget, id(content), rec)
    except Exception as exc:
        warn_once(f"responded:{type(exc).__name__}", f"could not record a response ({exc!r})")


def _tee_class(base: type) -> type:
    if (found := _tee_classes.get(base)) is not None:
        return found

    class TeeStreamReader(base):  # type: ignore[misc, valid-type]
        """aiohttp's StreamReader, keeping a copy of the body for the recorder."""

        __slots__ = ()

        def feed_data(self, data: bytes, *args: Any) -> Any:
            rec = _tees.get(id(self))
            if rec is not None and data:
                rec.chunks.append(data)
            return base.feed_data(self, data, *args)

        def feed_eof(self) -> None:
            try:
                base.feed_eof(self)
            finally:
                _end(self, cut=False)

        def set_exception(self, *args: Any, **kwargs: Any) -> None:
            try:
                base.set_exception(self, *args, **kwargs)
            finally:
                _end(self, cut=True)

    _tee_classes[base] = TeeStreamReader
    return TeeStreamReader


def _forget(key: int, rec: _recorder.StreamRecorder) -> None:
    """The response of a body not ended yet was collected (a finalizer: nothing recorded here, no lock)."""
    if _tees.get(key) is rec:
        del _tees[key]
        _dropped.append(rec)


def _end(reader: Any, *, cut: bool) -> None:
    rec = _tees.pop(id(reader), None)
    if rec is not None:
        rec.finish(cut=cut)


def _replayed(session: Any, method: str, url: Any, answer: Any) -> Any:
    """A real, finished ``aiohttp.ClientResponse`` carrying a recording's status, content type and bytes."""
    import asyncio
    import inspect

    from aiohttp import ClientResponse, RequestInfo
    from aiohttp.helpers import TimerNoop
    from aiohttp.streams import StreamReader
    from multidict import CIMultiDict, CIMultiDictProxy

    loop = asyncio.get_running_loop()
    headers = CIMultiDict({"Content-Type": answer.content_type} if answer.content_type else {})
    headers["Content-Length"] = str(len(answer.content))
    verb = str(method).upper()
    options: dict[str, Any] = {
        "writer": None, "continue100": None, "timer": TimerNoop(), "traces": [], "loop": loop,
        "session": session, "request_info": RequestInfo(url, verb, CIMultiDictProxy(CIMultiDict()), url)}
    if "stream_writer" in inspect.signature(ClientResponse.__init__).parameters:  # aiohttp >= 3.12
        options["stream_writer"] = _NoProtocol()
    response = ClientResponse(verb, url, **options)
    response.status, response.reason, response.version = answer.status, "OK", None
    response._headers = CIMultiDictProxy(headers)
    response._raw_headers = tuple((k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items())
    reader = StreamReader(_NoProtocol(), 2**16, loop=loop)
    if answer.content:
        reader.feed_data(answer.content)
    reader.feed_eof()
    response.content = reader
    return response


class _NoProtocol:
    """The flow control a StreamReader asks of its connection, for a body already in memory (and the
    stream writer a response asks of a request already sent)."""

    _reading_paused = False
    output_size = 0  # as a stream writer: the request sent nothing

    def pause_reading(self) -> None:
        pass

    def resume_reading(self, *args: Any, **kwargs: Any) -> None:
        pass
