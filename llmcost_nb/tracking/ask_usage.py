"""Asking OpenAI for a stream's usage, unseen by the caller. Off by default; on with
``llmcost_nb.enable(ask_stream_usage=True)`` or ``LLMCOST_ASK_STREAM_USAGE=1``.

An OpenAI chat stream reports no usage unless its request sets ``stream_options.include_usage``; capture then
counts its tokens with tiktoken and marks the call ``usage_source='estimated'``. With this setting, a streamed
chat request to ``api.openai.com`` that did not ask is sent asking (and with ``Accept-Encoding: identity``, so
the stream can be read as it arrives). OpenAI's answer then differs in two ways, both in its API reference
(``ChatCompletionStreamOptions``): every chunk carries ``"usage":null``, and one more chunk, with
``"choices":[]`` and the usage, comes before ``data: [DONE]``. The caller is given the stream it would have
had: ``"usage":null`` taken out of each chunk and the usage chunk dropped, while the recorder reads the stream
as it came, so the row holds the provider's own counts. ``response.request`` is the caller's own request.

Only where that is sure to hold: the httpx/httpx2 stack (the openai SDK's), a request read as a stream
(``send(stream=True)``), not replayed or recorded, with a JSON body that is not content-encoded.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable
from typing import Any

from ..core.warn import warn_once
from ..pricing.usage import json_object

__all__ = ["ENV", "HiddenUsage", "asking_request", "hiding_tee_classes", "wanted"]

ENV = "LLMCOST_ASK_STREAM_USAGE"
HOST = "api.openai.com"


def wanted(value: str | None) -> bool:
    """The setting's value from the environment variable's text (``1``, ``true``, ``yes``, ``on``: on)."""
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def asking_request(pending: Any, request: Any, *, stream: bool) -> Any | None:
    """With the setting on (capture's ``send`` checks it): a copy of an httpx ``request`` that asks for the
    stream's usage, or None to send the request as it is. Sets ``pending.info.include_usage`` (the stream
    will carry its usage) when it asks."""
    info, endpoint = pending.info, pending.endpoint
    if not (stream and endpoint.api == "chat" and endpoint.host == HOST
            and info.stream and not info.include_usage and info.body and pending.respond_with is None
            and not pending.body_observers and not pending.replayed
            and "content-encoding" not in request.headers):
        return None
    options = info.body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        return None  # the server's own error is what the caller must see
    body = {**info.body, "stream_options": {**(options or {}), "include_usage": True}}
    headers = [(key, value) for key, value in request.headers.raw
               if key.lower() not in (b"content-length", b"accept-encoding")]
    headers.append((b"Accept-Encoding", b"identity"))
    sent = type(request)(request.method, request.url, headers=headers,
                         content=json.dumps(body, ensure_ascii=False).encode(), extensions=request.extensions)
    info.include_usage = True
    return sent


class HiddenUsage:
    """Takes what the caller did not ask for out of an SSE byte stream, event by event: ``"usage":null`` in
    each chunk, and the chunk with no choices that carries the usage. Events are passed on whole, as they end
    (an event split across reads is held until its end); everything else is passed on byte for byte."""

    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held = b""

    def feed(self, data: bytes) -> bytes:
        if not self._held and data.find(b"\n\n") == len(data) - 2 >= 0:  # one whole event: the usual read
            if b'"usage"' not in data:
                return data
            at = data.find(_COMPACT_NULL)  # as OpenAI writes it
            if at >= 0 and data[at + len(_COMPACT_NULL)] in b",}":
                return data[:at] + data[at + len(_COMPACT_NULL):]
            return _hide(data)
        held = self._held + data if self._held else data
        end = _last_end(held)
        if end < 0:
            self._held = held
            return b""
        self._held = held[end:]
        return _hide(held[:end])

    def close(self) -> bytes:
        """What is left when the stream ends (cut mid-event): passed on, filtered as far as it goes."""
        held, self._held = self._held, b""
        return _hide(held) if held else b""


_EVENT_END = re.compile(rb"\r?\n\r?\n")
_COMPACT_NULL = b',"usage":null'
_NULL_AFTER = re.compile(rb',\s*"usage"\s*:\s*null(?=\s*(?:[,}]|$))')
_NULL_BEFORE = re.compile(rb'"usage"\s*:\s*null\s*,\s*')


def _last_end(data: bytes) -> int:
    """The index just past the last event separator in ``data``, or -1."""
    at = data.rfind(b"\n\n")
    crlf = data.rfind(b"\r\n\r\n")
    return max(at + 2 if at >= 0 else -1, crlf + 4 if crlf >= 0 else -1)


def _hide(block: bytes) -> bytes:
    """``block`` (whole events, or the end of a stream) with the usage not asked for taken out."""
    if b'"usage"' not in block:
        return block
    out, start = [], 0
    for end in [*(m.end() for m in _EVENT_END.finditer(block)), len(block)]:
        event, start = block[start:end], end
        if b'"usage"' in event:
            event, found = _NULL_AFTER.subn(b"", event, count=1)
            if not found:
                event, found = _NULL_BEFORE.subn(b"", event, count=1)
            if not found and _is_usage_chunk(event):
                continue  # the chunk the caller did not ask for, with its separator
        out.append(event)
    return b"".join(out)


def _is_usage_chunk(event: bytes) -> bool:
    data = [line[5:] for line in event.splitlines() if line.startswith(b"data:")]
    if len(data) != 1:
        return False
    chunk = json_object(data[0])
    return chunk is not None and chunk.get("choices") == [] and isinstance(chunk.get("usage"), dict)


def _decoder(encoding: str) -> Callable[[bytes], bytes] | None:
    """An incremental decoder for a content-encoding, for a server that ignored ``Accept-Encoding:
    identity``; None for one we cannot decode."""
    if encoding in ("gzip", "x-gzip", "deflate"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS if "gzip" in encoding else zlib.MAX_WBITS).decompress
    return None


def hiding_tee_classes(sync_tee: type, async_tee: type) -> tuple[type, type]:
    """Subclasses of capture's tees that keep the raw stream for the recorder (as theirs do) and pass the
    caller the stream with what it did not ask for taken out."""

    class SyncHidingTee(_Hiding, sync_tee):  # type: ignore[misc, valid-type]
        def __iter__(self) -> Any:
            append, feed, close = self._rec.chunks.append, self._feed, self._close
            complete = False
            try:
                for chunk in self._inner:
                    append(chunk)
                    if out := feed(chunk):
                        yield out
                if out := close():
                    yield out
                complete = True
            finally:
                self._rec.finish(cut=not complete)

    class AsyncHidingTee(_Hiding, async_tee):  # type: ignore[misc, valid-type]
        async def __aiter__(self) -> Any:
            append, feed, close = self._rec.chunks.append, self._feed, self._close
            complete = False
            try:
                async for chunk in self._inner:
                    append(chunk)
                    if out := feed(chunk):
                        yield out
                if out := close():
                    yield out
                complete = True
            finally:
                self._rec.finish(cut=not complete)

    return SyncHidingTee, AsyncHidingTee


class _Hiding:
    """What both hiding tees share: how each raw chunk becomes what the caller reads (``_feed``), and what
    is left to pass on when the stream ends (``_close``)."""

    def __init__(self, inner: Any, stream_recorder: Any) -> None:
        super().__init__(inner, stream_recorder)  # type: ignore[call-arg]
        self._feed, self._close = _reader(stream_recorder)


def _reader(stream_recorder: Any) -> tuple[Callable[[bytes], bytes], Callable[[], bytes]]:
    """(feed, close) for a stream: its events with the usage hidden; decoded first when the server encoded
    it all the same (the caller is then given decoded bytes, and the response's ``content-encoding`` header
    goes: the recorder decodes its own copy); passed on as it came for an encoding we cannot decode."""
    hidden = HiddenUsage()
    encoding = stream_recorder.encoding
    if encoding in ("", "identity"):
        return hidden.feed, hidden.close
    decode = _decoder(encoding)
    if decode is None:
        warn_once(f"ask-usage-encoding:{encoding}",
                  f"an OpenAI stream came {encoding}-encoded though llmcost_nb asked for none: its usage "
                  "chunk could not be taken out of what your code reads")
        return (lambda chunk: chunk), (lambda: b"")
    del stream_recorder.headers["content-encoding"]
    return (lambda chunk: hidden.feed(decode(chunk))), hidden.close
