"""What every capture hook shares, whatever its HTTP stack: the record of what was patched (so uninstall
restores it), the guard against recording one call twice when one stack runs on another, the start of a
pending LLM request (classification and the pre-send hooks), and a neutral view of a response the recorder
can read.

The hooks themselves live one per stack: :mod:`.capture` (httpx / httpx2, and the registry of stacks),
:mod:`.capture_http` (http.client and urllib3: ``urllib.request``, ``urllib3``, ``requests``),
:mod:`.capture_botocore` (boto3) and :mod:`.capture_aiohttp`.
"""

from __future__ import annotations

import contextvars
import threading
from typing import Any

from ..core import wire_json
from ..core.warn import warn_once
from ..pricing.providers import classify
from . import recorder as _recorder

__all__ = ["Body", "Exchange", "Headers", "begin", "body_bytes", "in_send", "record_whole", "replace",
           "restore_all", "stream_recorder"]

lock = threading.RLock()
_patched: dict[tuple[type, str], Any] = {}  # (class, attribute) -> the original attribute
# Set while one of our hooks runs a request, so a hook below it (botocore on urllib3 on http.client, the
# openai SDK's aiohttp client under httpx2's send) lets that request through unrecorded: recorded once.
in_send: contextvars.ContextVar[bool] = contextvars.ContextVar("llmcost_in_send", default=False)


def replace(cls: type, attr: str, new: Any) -> None:
    """Set ``cls.attr`` to ``new``, keeping the original for :func:`restore_all` (once per attribute)."""
    original = cls.__dict__[attr]
    if getattr(original, "_llmcost_original", None) is not None or (cls, attr) in _patched:
        return  # patched already (httpx aliased to httpx2, a module imported twice)
    new._llmcost_original = original
    _patched[(cls, attr)] = original
    setattr(cls, attr, new)


def restore_all() -> None:
    for (cls, attr), original in _patched.items():
        setattr(cls, attr, original)
    _patched.clear()


class Body:
    """A request body as :func:`recorder.begin` reads it (``.content``: bytes, or None when unknown)."""

    __slots__ = ("content",)

    def __init__(self, content: bytes | None) -> None:
        self.content = content


def body_bytes(body: Any) -> bytes | None:
    """The bytes of a request body given to a library, if they can be read without consuming anything."""
    if isinstance(body, bytes):
        return body
    if isinstance(body, bytearray | memoryview):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8")
    return None  # a file, a generator: sent as given, not read here


def begin(method: str, host: str, path: str, body: Any, *, json_body: Any = None) -> _recorder.Pending | None:
    """The pending record of an LLM request, or None for any other request. ``json_body``: the object the
    library will send as JSON, when it was given one instead of ``body`` (serialized only for an LLM
    request). Raises only a deliberate stop (a budget's, or replay-only's) — before anything is sent."""
    try:
        endpoint = classify(method, host, path)
        if endpoint is None:
            return None
        content = body_bytes(body)
        if content is None and json_body is not None:
            content = wire_json.dumps(json_body)
        return _recorder.begin(endpoint, path, Body(content))
    except Exception as exc:
        if getattr(exc, "_llmcost_deliberate", False):
            raise
        warn_once(f"begin:{type(exc).__name__}", f"could not read an LLM request ({exc!r}); not tracked")
        return None


class Headers:
    """Response headers as the recorder reads them: ``pairs`` (as the stack gives them: names and values
    str or bytes, names in any case), ``values`` (what :func:`recorder.header_values` reads of them, read
    once), ``raw`` (lower-case bytes pairs, made when first asked for) and ``get``."""

    __slots__ = ("_raw", "pairs", "values")

    def __init__(self, pairs: Any) -> None:
        self.pairs = pairs if type(pairs) is list else list(pairs)
        self.values = _recorder.header_values(self.pairs)
        self._raw: list[tuple[bytes, bytes]] | None = None

    @property
    def raw(self) -> list[tuple[bytes, bytes]]:
        if self._raw is None:
            self._raw = [(k.lower().encode("latin-1") if isinstance(k, str) else k.lower(),
                          v.encode("latin-1", "replace") if isinstance(v, str) else v) for k, v in self.pairs]
        return self._raw

    def get(self, name: str, default: str | None = None) -> str | None:
        key = name.lower().encode("latin-1")
        for k, v in self.raw:
            if k == key:
                return v.decode("latin-1")
        return default

    def __getitem__(self, name: str) -> str:
        found = self.get(name)
        if found is None:
            raise KeyError(name)
        return found

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None


class Exchange:
    """A response of any stack, seen as :func:`recorder.responded` reads httpx's: status, headers, and the
    body when it was read whole (``is_stream_consumed``)."""

    __slots__ = ("content", "headers", "is_stream_consumed", "status_code")

    def __init__(self, status_code: int, headers: Headers, content: bytes | None = None) -> None:
        self.status_code, self.headers, self.content = status_code, headers, content
        self.is_stream_consumed = content is not None


def record_whole(pending: _recorder.Pending, status: int, headers: Headers, content: bytes) -> None:
    """A response whose body was read whole: recorded now (or taped to the journal)."""
    _recorder.responded(pending, Exchange(status, headers, content), None,  # type: ignore[arg-type]
                        headers.values)


def stream_recorder(pending: _recorder.Pending, status: int,
                    headers: Headers) -> _recorder.StreamRecorder | None:
    """A recorder for a body still to come (its chunks appended by the stack's tee), or None (warned)."""
    try:
        return _recorder.StreamRecorder(pending, Exchange(status, headers), headers.values)
    except Exception as exc:
        warn_once(f"responded:{type(exc).__name__}", f"could not record a response ({exc!r})")
        return None
