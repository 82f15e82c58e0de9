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
import linecache
import threading
from typing import Any

from ..core import wire_json
from ..core.warn import warn_once
from ..pricing.providers import classify
from . import recorder as _recorder

__all__ = ["Answered", "Body", "Exchange", "Headers", "around", "begin", "body_bytes", "in_send",
           "record_whole", "replace", "restore_all", "stream_recorder"]

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


class Answered:
    """What an ``enter`` of :func:`around` returns for a call it answered itself (a replay): ``value`` is
    returned to the caller and the library's method is not called."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class _Source:
    """A default value as :func:`around` writes it in a signature: the name it is bound to."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def around(original: Any, take: tuple[str, ...], enter: Any, leave: Any) -> Any:
    """A function with ``original``'s own signature (names, kinds, defaults) that runs
    ``state = enter(*taken)`` (the arguments named in ``take``), then ``original`` with every argument as
    given, then ``leave(state, exc)`` (``exc`` what it raised, None if it returned; raised again after).
    ``enter`` returns None to let the call through untouched, or an :class:`Answered`; what it raises
    reaches the caller (a budget stop), before ``original`` runs.

    Made for each method's signature, not with ``*args, **kwargs``: urllib3 passes nine arguments by name,
    and packing them into a dict to unpack them again took ~12k instructions a call, per hook — more than
    everything else the hook does on the way in."""
    import inspect

    kinds = inspect.Parameter
    names: dict[str, Any] = {"_llmcost_original": original, "_llmcost_enter": enter, "_llmcost_leave": leave,
                             "_llmcost_Answered": Answered}
    signature = inspect.signature(original)
    plain = []  # the signature as written, without annotations, each default a name bound in ``names``
    for i, param in enumerate(signature.parameters.values()):
        default = param.default
        if default is not kinds.empty:
            names[f"_llmcost_default{i}"] = default
            default = _Source(f"_llmcost_default{i}")
        plain.append(param.replace(annotation=kinds.empty, default=default))
    params = str(signature.replace(parameters=plain, return_annotation=kinds.empty))[1:-1]
    forward = [{kinds.VAR_POSITIONAL: f"*{name}", kinds.VAR_KEYWORD: f"**{name}",
                kinds.KEYWORD_ONLY: f"{name}={name}"}.get(param.kind, name)
               for name, param in signature.parameters.items()]
    missing = set(take) - set(signature.parameters)
    if missing:
        raise TypeError(f"{original.__qualname__}{signature} has no parameter {sorted(missing)}")
    if any(n.startswith("_llmcost") for n in signature.parameters):
        raise TypeError(f"{original.__qualname__}{signature} has a parameter named like ours")
    call = f"_llmcost_original({', '.join(forward)})"
    source = (
        f"def hook({params}):\n"
        f"    _llmcost_state = _llmcost_enter({', '.join(take)})\n"
        f"    if _llmcost_state is None:\n"
        f"        return {call}\n"
        f"    if type(_llmcost_state) is _llmcost_Answered:\n"
        f"        return _llmcost_state.value\n"
        f"    try:\n"
        f"        _llmcost_result = {call}\n"
        f"    except BaseException as _llmcost_exc:\n"
        f"        _llmcost_leave(_llmcost_state, _llmcost_exc)\n"
        f"        raise\n"
        f"    _llmcost_leave(_llmcost_state, None)\n"
        f"    return _llmcost_result\n")
    filename = f"<llmcost_nb hook of {original.__module__}.{original.__qualname__}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)  # tracebacks
    exec(compile(source, filename, "exec"), names)
    made = names["hook"]
    made.__name__, made.__qualname__ = original.__name__, original.__qualname__
    made.__doc__, made.__wrapped__ = original.__doc__, original
    return made


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
