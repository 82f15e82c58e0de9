"""Capture for the standard library's HTTP client and what is built on it: ``urllib.request`` and
``http.client`` themselves, ``urllib3``, and ``requests`` (on urllib3).

``request`` — on ``http.client.HTTPConnection`` and on urllib3's subclass, which overrides it without
calling it — reads what is asked and runs the pre-send hooks (a budget stop is raised before a byte is
written); ``getresponse`` on ``http.client.HTTPConnection`` (urllib3 calls it) tees the response: its socket
file is wrapped so every body byte any reader takes (http.client's own reads, or urllib3's chunk reader,
which reads the socket file directly) is copied, framing included, and the call is recorded when the body
ends or is closed. Chunked framing is removed and the content decoded before parsing.

urllib3's pools (so requests) are met one step earlier, at ``HTTPConnectionPool._make_request`` (once per
attempt), before the pool connects: the request is read and the pre-send hooks run there, so a budget stop
opens no connection and a replayed call (``llmcost_nb.replay``) is answered with a urllib3 response over the
recorded bytes, with no network at all — over HTTPS too. The pending call is then handed to the connection's
``request`` hook below, which reads nothing again.

The response object, its class and the bytes every reader gets are unchanged; a request is sent exactly as
given (the body is only read when it is bytes or str). The hooks of ``request`` and ``_make_request`` have the
hooked method's own signature (:func:`.hooks.around`): urllib3 passes them up to nine arguments by name.
Replay answers ``http.client`` (so ``urllib.request``) with a response read from the recording, and urllib3
pools as above.
"""

from __future__ import annotations

import contextvars
from time import perf_counter
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from ..core.warn import warn_once
from . import hooks
from . import recorder as _recorder

__all__ = ["dechunk", "patch_http_client", "patch_urllib3", "patch_urllib3_pool", "response_headers",
           "tee_http_response"]

# The call a urllib3 pool began for the attempt it is making, until that attempt's connection takes it.
_handed: contextvars.ContextVar[_recorder.Pending | None] = contextvars.ContextVar("llmcost_handed",
                                                                                   default=None)


def patch_http_client(module: ModuleType) -> None:
    cls = module.HTTPConnection
    hooks.replace(cls, "request", _request_hook(cls.__dict__["request"], replays=True))
    hooks.replace(cls, "getresponse", _make_getresponse(cls.__dict__["getresponse"]))


def patch_urllib3(module: ModuleType) -> None:
    cls = module.HTTPConnection  # overrides request() with its own; its getresponse() calls http.client's
    hooks.replace(cls, "request", _request_hook(cls.__dict__["request"], replays=False))


def patch_urllib3_pool(module: ModuleType) -> None:
    cls = module.HTTPConnectionPool
    hooks.replace(cls, "_make_request", hooks.around(cls.__dict__["_make_request"], _POOL_TAKES, _pool_enter,
                                                     _pool_leave))


def _target(conn: Any, url: str) -> tuple[str, str]:
    """(host, path) of a request on ``conn``: ``url`` is a path, or a whole URL through a proxy."""
    if url.startswith(("http://", "https://")):
        parts = urlsplit(url)
        return parts.hostname or "", parts.path
    return str(conn.host), url.split("?", 1)[0]


def _request_hook(original: Any, *, replays: bool) -> Any:
    """The hook of a connection's ``request``: the call begun (or taken from the urllib3 pool making this
    attempt), sent, and kept on the connection for its ``getresponse``."""
    def enter(self: Any, method: str, url: str, body: Any) -> Any:
        if hooks.in_send.get():
            return None
        pending = _handed.get()
        if pending is not None:  # begun by the urllib3 pool making this attempt
            _handed.set(None)
        else:
            try:
                host, path = _target(self, url)
            except Exception:
                return None
            pending = hooks.begin(method, host, path, body)  # may raise a budget stop: nothing sent yet
            if pending is None:
                return None
        if pending.respond_with is not None:
            if replays:  # http.client itself: answered by getresponse(), nothing sent
                self._llmcost_pending = pending
                return hooks.Answered(None)
            warn_once("replay-http", "replay does not serve a urllib3 connection used without its pool: "
                      "the request is sent and recorded")
            pending.respond_with, pending.replayed = None, False
        pending.t0 = perf_counter()
        return self, pending

    def leave(state: tuple[Any, _recorder.Pending], exc: BaseException | None) -> None:
        conn, pending = state
        if exc is not None:
            _recorder.failed(pending, exc)
        else:
            conn._llmcost_pending = pending

    return hooks.around(original, ("self", "method", "url", "body"), enter, leave)


_POOL_TAKES = ("self", "method", "url", "body", "retries", "response_conn", "preload_content",
               "decode_content", "enforce_content_length")


def _pool_enter(pool: Any, method: str, url: str, body: Any, retries: Any, response_conn: Any,
                preload_content: bool, decode_content: bool, enforce_content_length: bool) -> Any:
    """A urllib3 pool's attempt: begun before the pool connects (a budget stop opens no connection), and
    handed to the connection's ``request`` hook; or answered from a recording, without the network."""
    if hooks.in_send.get():
        return None
    try:
        host, path = _target(pool, url)
    except Exception:
        return None
    pending = hooks.begin(method, host, path, body)  # a budget stop: no connection made
    if pending is None:
        return None
    if pending.respond_with is not None:  # answered from a recording, without the network
        try:
            return hooks.Answered(_replayed_urllib3(
                pool, pending, method, url, retries=retries, response_conn=response_conn,
                preload_content=preload_content, decode_content=decode_content,
                enforce_content_length=enforce_content_length))
        except Exception as exc:  # a bug of ours: the request is sent as it would be untracked
            warn_once(f"replay-urllib3:{type(exc).__name__}", f"could not answer a request from its "
                      f"recording ({exc!r}); it is sent and recorded")
            pending.respond_with, pending.replayed = None, False
    return pending, _handed.set(pending)


def _pool_leave(state: tuple[_recorder.Pending, contextvars.Token[Any]], exc: BaseException | None) -> None:
    pending, token = state
    if exc is not None and _handed.get() is pending:  # failed before the request was sent (the connect)
        _recorder.failed(pending, exc)
    _handed.reset(token)


def _replayed_urllib3(pool: Any, pending: _recorder.Pending, method: str, url: str, **given: Any) -> Any:
    """urllib3's response to a pool's request, over a recording's status, content type and bytes, set up as
    ``_make_request`` sets up a live one (its body an ``http.client`` response read from the recording, as a
    live one's is); recorded as a whole body at once."""
    import http.client

    from urllib3._collections import HTTPHeaderDict
    from urllib3.response import HTTPResponse

    answer = pending.respond_with
    original = _replayed(http.client.HTTPConnection, answer)
    headers = HTTPHeaderDict(original.getheaders())
    response = HTTPResponse(
        body=original, headers=headers, status=answer.status, version=11, original_response=original,
        version_string="HTTP/1.1", reason=original.reason, preload_content=given["preload_content"],
        decode_content=given["decode_content"], enforce_content_length=given["enforce_content_length"],
        request_method=method, request_url=url, retries=given["retries"], pool=pool,
        connection=given["response_conn"])
    hooks.record_whole(pending, answer.status, hooks.Headers(headers.items()), answer.content)
    return response


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _make_getresponse(original: Any) -> Any:
    def getresponse(self: Any) -> Any:
        pending = getattr(self, "_llmcost_pending", None)
        if pending is None:
            return original(self)
        self._llmcost_pending = None
        try:
            if pending.respond_with is not None:
                response = _replayed(self, pending.respond_with)
            else:
                response = original(self)
        except BaseException as exc:
            _recorder.failed(pending, exc)
            raise
        tee_http_response(pending, response)
        return response

    return getresponse


class _Recorded:
    """The socket a replayed response is read from: the recorded bytes, behind a status line and headers."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def makefile(self, mode: str) -> Any:
        import io

        return io.BufferedReader(io.BytesIO(self.data))


def _replayed(conn: Any, answer: Any) -> Any:
    """``conn``'s response class (an ``http.client`` connection's or its class's), read from a recording's
    status, content type and bytes."""
    head = f"HTTP/1.1 {answer.status} {_reason(answer.status)}\r\ncontent-length: {len(answer.content)}\r\n"
    if answer.content_type:
        head += f"content-type: {answer.content_type}\r\n"
    raw = head.encode("latin-1") + b"\r\n" + answer.content
    response = conn.response_class(_Recorded(raw), method="POST")
    response.begin()
    return response


def response_headers(response: Any) -> hooks.Headers:
    """The headers of an ``http.client.HTTPResponse``, as it received them: the message's raw pairs
    (``getheaders()`` runs each through the email package's policy; urllib3's and botocore's header mappings
    are Python code per item: botocore's cost a converse call ~15k instructions, a fifth of its capture)."""
    msg = response.msg
    return hooks.Headers(msg.raw_items() if hasattr(msg, "raw_items") else response.getheaders())


def tee_http_response(pending: _recorder.Pending, response: Any) -> None:
    """Record ``response`` (an ``http.client.HTTPResponse``, its body not read yet) as its body is read."""
    try:
        rec = hooks.stream_recorder(pending, response.status, response_headers(response))
        if rec is None:
            return
        fp = response.fp
        if fp is None:  # no body (a HEAD, a 204): complete already
            rec.finish(cut=False)
            return
        chunked = bool(response.chunked)
        if chunked:
            rec.unframe = dechunk
        response.fp = _FileTee(fp, rec, chunked, response.length)
    except Exception as exc:
        warn_once(f"responded:{type(exc).__name__}", f"could not record a response ({exc!r})")


class _FileTee:
    """The socket file of a response: every read passes through untouched and a copy is kept; closing it
    (http.client does when the body ends) records the call, as complete if the whole body arrived."""

    __slots__ = ("_append", "_chunked", "_eof", "_fp", "_length", "_read", "_readline", "_rec", "_seen")

    def __init__(self, fp: Any, rec: _recorder.StreamRecorder, chunked: bool, length: int | None) -> None:
        self._fp, self._rec, self._chunked, self._length = fp, rec, chunked, length
        self._seen, self._eof = 0, False
        self._read, self._readline, self._append = fp.read, fp.readline, rec.chunks.append  # hot: bound once

    def _keep(self, data: bytes) -> bytes:
        if data:
            self._append(data)
            self._seen += len(data)
        else:
            self._eof = True
        return data

    def read(self, *args: Any) -> bytes:  # read and readline inline _keep: urllib3 makes ~3 a chunk
        data = self._read(*args)
        if data:
            self._append(data)
            self._seen += len(data)
        else:
            self._eof = True
        return data

    def read1(self, *args: Any) -> bytes:
        return self._keep(self._fp.read1(*args))

    def readline(self, *args: Any) -> bytes:
        data = self._readline(*args)
        if data:
            self._append(data)
            self._seen += len(data)
        else:
            self._eof = True
        return data

    def readinto(self, buffer: Any) -> int:
        n = self._fp.readinto(buffer)
        self._keep(bytes(memoryview(buffer)[:n]) if n else b"")
        return n

    def close(self) -> None:
        try:
            self._fp.close()
        finally:
            self._finish()

    def _finish(self) -> None:
        rec = self._rec
        if rec.done:
            return
        payload = None
        try:
            if self._chunked:  # the framing is read once: whether the last chunk came, and the payload
                payload, complete = _dechunk(b"".join(rec.chunks))
            elif self._length is not None:
                complete = self._seen >= self._length
            else:
                complete = self._eof
        except Exception:
            complete = False
        rec.finish(cut=not complete, payload=payload)

    def __getattr__(self, name: str) -> Any:  # peek, fileno, flush, closed, raw...: the file's own
        return getattr(self._fp, name)

    def __iter__(self) -> Any:
        return iter(self.readline, b"")


def dechunk(raw: bytes) -> bytes:
    """The payload of a chunked body (what arrived of it, if cut).

    >>> dechunk(b"5\\r\\nhello\\r\\n1\\r\\n!\\r\\n0\\r\\n\\r\\n")
    b'hello!'
    """
    return _dechunk(raw)[0]


def _dechunk(raw: bytes) -> tuple[bytes, bool]:
    """(payload, whether the last chunk arrived)."""
    out: list[bytes] = []
    at, size, find, append = 0, len(raw), raw.find, out.append
    while at < size:
        end = find(b"\n", at)
        if end < 0:
            break
        try:
            length = int(raw[at:end], 16)  # int() ignores the line's \r
        except ValueError:
            try:  # a chunk extension: "1f;name=value"
                length = int(raw[at:end].split(b";", 1)[0], 16)
            except ValueError:
                break
        if length == 0:
            return b"".join(out), True
        at = end + 1 + length + 2
        append(raw[end + 1:at - 2])
    return b"".join(out), False
