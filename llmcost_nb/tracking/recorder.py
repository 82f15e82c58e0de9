"""From an HTTP exchange to a ledger row: parse the response (or the teed stream), extract usage, price,
write, and tell the scope, the session and its listeners. Nothing here may raise into the user's call."""

from __future__ import annotations

import atexit
import re
import threading
import zlib
from decimal import Decimal
from time import perf_counter
from typing import Any

from ..core.call import UNKNOWN_USAGE, USAGE_KEY_TO_FIELD, Call
from ..core.times import now_ns
from ..core.warn import warn_once
from ..core.wire_json import loads_exact
from ..pricing import bedrock
from ..pricing.pricer import price_captured
from ..pricing.providers import Endpoint, RequestInfo, request_info
from ..pricing.tokens import preload as preload_tokenizer
from ..pricing.usage import RECORDED_UNKNOWN, NoUsage, extract_usage, json_object, usage_part, warn_unreadable
from . import content as _content
from . import scope as _scope
from .scope import Scope, Session, current_scope, get_session
from .stream_usage import body_usage, stream_usage

__all__ = ["Pending", "StreamRecorder", "begin", "failed", "header_values", "parse_sse", "record",
           "responded"]

# Streams not finished yet, recorded as unfinished at exit if still open then. A plain set: a response dropped
# unread is recorded then rather than lost (its provider billed the prompt), and ``WeakSet.add``/``discard``
# are Python code making and dropping a weak reference for every response of the http.client stacks.
_open_streams: set[StreamRecorder] = set()
_MAX_ERROR = 300


class Pending:
    """An LLM request on its way: what it asked for and whom it belongs to."""

    __slots__ = ("attribution", "body_observers", "endpoint", "estimated_input_tokens", "info", "path",
                 "replayed", "respond_with", "scope", "session", "t0")

    def __init__(self, endpoint: Endpoint, info: RequestInfo, scope: Scope | None, attribution: str,
                 session: Session) -> None:
        self.endpoint, self.info, self.scope, self.attribution, self.session = (
            endpoint, info, scope, attribution, session)
        self.t0 = perf_counter()
        self.estimated_input_tokens: int | None = None  # set by a preflight hook (llmcost_nb.estimate)
        # A preflight hook may answer the request itself (replay): a callable building the response, used
        # instead of sending. Observers see each finished exchange: (pending, status, headers, content, cut).
        self.respond_with: Any = None
        self.body_observers: list[Any] = []
        self.path = ""  # the URL path (no query)
        self.replayed = False  # answered from a recording (llmcost_nb.replay): $0, with what it saved

    def new_call(self) -> Call:
        scope, endpoint, info = self.scope, self.endpoint, self.info
        return Call(
            provider=endpoint.provider,
            api=endpoint.api,
            model_requested=info.model,
            model=info.model,
            host=endpoint.host,
            service_tier=info.service_tier,
            session_id=self.session.id,
            scope_id=scope.id if scope is not None else None,
            attribution=self.attribution,
            tags=scope.tags if scope is not None else dict(self.session.tags),
            latency_ms=round((perf_counter() - self.t0) * 1000, 3),
            estimated_input_tokens=self.estimated_input_tokens,
            replayed=self.replayed,
        )


def begin(endpoint: Endpoint, path: str, request: Any) -> Pending:
    """Read the request and run the preflight hooks (which may raise a deliberate budget stop)."""
    try:
        content = request.content
    except Exception:  # a streamed upload body that was not read: nothing to learn from it
        content = None
    info = request_info(endpoint, path, content)
    scope, attribution = current_scope()
    session = get_session()
    session.start()  # the session's first tracked call: its start hooks (stored budgets) run now
    pending = Pending(endpoint, info, scope, attribution, session)
    pending.path = path
    for hook in list(session.preflight):
        hook(pending, scope)
    return pending


def failed(pending: Pending, exc: BaseException) -> None:
    """The attempt raised before any response (connection refused, timeout, interrupt): an unbilled row."""
    try:
        call = pending.new_call()
        call.status, call.billed = "error", False
        call.error = f"{type(exc).__name__}: {exc}"[:_MAX_ERROR]
        record(call, pending.scope, pending.session)
    except Exception as inner:
        warn_once(f"failed:{type(inner).__name__}", f"could not record a failed call ({inner!r})")


def responded(pending: Pending, response: Any, tee_class: type,
              values: tuple[str, str, str | None] | None = None) -> None:
    """Record a response whose body was read, or tee its stream and record when the stream ends. ``values``:
    its :func:`header_values`, when the caller has read them already."""
    try:
        if response.is_stream_consumed:
            content_type, _, request_id = values or header_values(response.headers.raw)
            if not (pending.body_observers or pending.replayed or _content._policies) and _tape(
                    pending, response.status_code, response.content, content_type, request_id):
                return
            _finish(pending, response.status_code, response.headers, response.content, content_type,
                    cut=False, request_id=request_id)
        else:
            recorder = StreamRecorder(pending, response)
            response.stream = tee_class(response.stream, recorder)
    except Exception as exc:
        warn_once(f"responded:{type(exc).__name__}", f"could not record a response ({exc!r})")


class StreamRecorder:
    """Keeps the raw bytes of a streamed response and records the call when it ends, is closed, or its
    scope ends first (then as ``unfinished``, updated in place if the stream finishes later)."""

    def __init__(self, pending: Pending, response: Any,
                 values: tuple[str, str, str | None] | None = None) -> None:
        self.pending = pending
        self.chunks: list[bytes] = []
        self.status_code = response.status_code
        self.headers = response.headers
        self.content_type, encoding, self.request_id = values or header_values(response.headers.raw)
        self.encoding = encoding.lower()
        self.call: Call | None = None
        self.done = False
        self.unframe: Any = None  # bytes -> bytes: transfer framing a stack's tee kept (chunked), removed
        self._lock = threading.Lock()
        if _streamed(self.content_type, pending.info.stream)[1]:
            preload_tokenizer()  # a stream may need counting, even at exit (see stream_usage)
        _open_streams.add(self)
        if pending.scope is not None:
            pending.scope.open_streams.add(self)

    def finish(self, *, cut: bool, payload: bytes | None = None) -> None:
        """Record the stream as ended (``cut``: before its end). ``payload``: the body with its transfer
        framing removed, when the tee had to remove it already (to tell whether the body was complete)."""
        with self._lock:
            if self.done:
                return
            self.done = True
        _open_streams.discard(self)
        if self.pending.scope is not None:
            self.pending.scope.open_streams.discard(self)
        self._record(cut=cut, payload=payload)

    def finish_unfinished(self) -> None:
        """Record what arrived so far as ``unfinished`` (the scope ended, or the process is exiting)."""
        with self._lock:
            if self.done:
                return
        self._record(cut=True)

    def _record(self, *, cut: bool, payload: bytes | None = None) -> None:
        try:
            if payload is None:
                raw = b"".join(self.chunks)
                payload = raw if self.unframe is None else self.unframe(raw)
            content = _decode(payload, self.encoding)
            pending = self.pending
            if not cut and self.call is None and not (pending.body_observers or pending.replayed or (
                    _content._policies)) and _tape(pending, self.status_code, content, self.content_type,
                                                   self.request_id):
                return  # a whole JSON body read as a stream (requests, urllib3, boto3): taped like httpx's
            self.call = _finish(self.pending, self.status_code, self.headers, content, self.content_type,
                                cut=cut, call=self.call, request_id=self.request_id)
        except Exception as exc:
            warn_once(f"stream:{type(exc).__name__}", f"could not record a stream ({exc!r})")


def _decode(raw: bytes, encoding: str) -> bytes:
    """Undo content-encoding on what arrived; a stream cut mid-way gives what can be decoded."""
    if not raw or encoding in ("", "identity"):
        return raw
    if encoding in ("gzip", "x-gzip", "deflate"):
        wbits = 16 + zlib.MAX_WBITS if "gzip" in encoding else zlib.MAX_WBITS
        try:
            return zlib.decompressobj(wbits).decompress(raw)
        except zlib.error:
            return zlib.decompressobj(-zlib.MAX_WBITS).decompress(raw)
    if encoding == "br":
        import brotli  # type: ignore[import-not-found]

        return brotli.decompress(raw)
    if encoding == "zstd":
        import zstandard  # type: ignore[import-not-found]

        return zstandard.ZstdDecompressor().decompressobj().decompress(raw)
    raise ValueError(f"unsupported content-encoding {encoding!r}")


def header_values(pairs: Any) -> tuple[str, str, str | None]:
    """Content type, content encoding and the provider's request id, in one pass over a response's raw
    header pairs (names and values bytes or str, names in any case): each ``Headers.get`` of httpx
    normalizes and scans them all again, several µs per call on the hot path.

    >>> header_values([(b"Content-Type", b"application/json"), ("x-request-id", "req_1")])
    ('application/json', '', 'req_1')
    """
    found = ["", "", "", "", ""]
    for key, value in pairs:
        index = _WANTED_HEADERS.get(key.lower())
        if index is not None:
            found[index] = value.decode("latin-1") if type(value) is bytes else value
    return found[0], found[1], found[2] or found[3] or found[4] or None


_WANTED = ("content-type", "content-encoding", "x-request-id", "request-id",
           "x-amzn-requestid")  # (OpenAI and compatible servers; Anthropic; AWS)
_WANTED_HEADERS: dict[str | bytes, int] = {**{name: i for i, name in enumerate(_WANTED)},
                                           **{name.encode(): i for i, name in enumerate(_WANTED)}}


def _streamed(content_type: str, stream: bool) -> tuple[bool, bool]:
    """Whether a response is an SSE stream, and whether it is a stream at all (SSE, or Bedrock's binary
    event stream): what :func:`_fill` reads it as, and whether it may need its tokens counted."""
    is_sse = "text/event-stream" in content_type or (stream and "json" not in content_type)
    return is_sse, is_sse or bedrock.EVENTSTREAM in content_type


def _finish(pending: Pending, status_code: int, headers: Any, content: bytes, content_type: str, *, cut: bool,
            call: Call | None = None, request_id: str | None = None) -> Call:
    for observer in pending.body_observers:
        try:
            observer(pending, status_code, headers, content, cut)
        except Exception as exc:
            warn_once(f"observer:{type(exc).__name__}", f"a response observer raised {exc!r}")
    call = call or pending.new_call()
    call.latency_ms = round((perf_counter() - pending.t0) * 1000, 3)
    info = pending.info
    _fill(call, status_code, content, content_type, cut=cut, request_id=request_id, stream=info.stream,
          include_usage=info.include_usage, headers=headers, request_body=info.body)
    call = record(call, pending.scope, pending.session)
    if _content._policies and 200 <= status_code < 300:  # prompt and answer text, if the session opted in
        _content.store(pending, call, content)
    return call


def _fill(call: Call, status_code: int, content: bytes, content_type: str, *, cut: bool,
          request_id: str | None, stream: bool, include_usage: bool, headers: Any = None,
          request_body: dict[str, Any] | None = None) -> None:
    """Status, tokens and resolved model of ``call``, from the response."""
    api = usage_api = call.api
    call.http_status = status_code
    call.request_id = request_id or call.request_id
    is_sse, call.streamed = _streamed(content_type, stream)
    if not 200 <= status_code < 300:
        call.status, call.billed = "error", False
        call.error = _error_message(content)
        return
    if api in bedrock.APIS:  # binary event streams, and bodies shaped by the model's family
        body, usage_api, complete = bedrock.usage_body(api, call.model_requested, content, content_type,
                                                       getattr(headers, "raw", ()))
        cut = cut and not complete
        if call.streamed and (body is None or (cut and usage_api == "messages")):
            call.status = "unfinished" if cut else "ok"  # no usage, or Anthropic's prompt counts only
            call.set_usage(_NO_TOKENS)
            try:  # Anthropic's message_start: its prompt counts are kept
                reported: dict[str, int] | None = extract_usage(body, api=usage_api)[1] if body else None
            except Exception:
                reported = None
            if reported is not None and "input_tokens" not in reported:
                reported = None  # the prompt is counted from the request then
            _estimate_stream(call, content, request_body, reported, output_reported=False, cut=cut,
                             include_usage=False)
            return
    elif is_sse:
        payloads, complete = _sse_payloads(api, content)
        cut = cut and not complete
        call.status = "unfinished" if cut else "ok"
        _fill_stream(call, content, payloads, complete=complete, cut=cut, request_body=request_body,
                     include_usage=include_usage)
        return
    else:
        body = json_object(content)
    call.status = "unfinished" if cut else "ok"
    call.usage_source = "provider"
    if body is None:
        call.usage_source = UNKNOWN_USAGE
        if not cut:  # a response cut before its usage arrived is recorded as unfinished; that says it
            warn_once(f"no-usage:{api}", f"a {api} response carried no usage: {RECORDED_UNKNOWN}")
        return
    try:
        model, usage = extract_usage(body, api=usage_api)
        call.set_usage(usage)
        call.model = model if model and api not in bedrock.APIS else call.model  # Bedrock: the path's id
    except NoUsage:  # the provider reported nothing: counted, as a stream without usage is
        if cut or not _estimate_body(call, body, request_body):
            call.usage_source = UNKNOWN_USAGE
    except Exception as exc:
        call.usage_source = UNKNOWN_USAGE
        if not cut:
            warn_unreadable(exc)
    if api == "responses" and isinstance(body.get("service_tier"), str):
        tier = body["service_tier"]
        call.service_tier = tier if tier not in ("auto", "default") else call.service_tier


def _estimate_body(call: Call, body: dict[str, Any], request_body: dict[str, Any] | None) -> bool:
    """A whole response without usage counted by :func:`.stream_usage.body_usage` and marked ``estimated``
    (True); False, with the warning, where it cannot be (Bedrock, nothing to count, counting failed)."""
    api = call.api
    usage: dict[str, int] = {}
    model = None
    if api in bedrock.APIS:
        why = "Bedrock bodies are not counted"
    else:
        try:
            usage, model = body_usage(api, body, request_body, call.model)
            why = "it has nothing to count"
        except Exception as exc:
            why = f"counting its tokens failed ({exc!r})"
    if not usage:
        warn_once(f"no-usage:{api}", f"a {api} response carried no usage, and {why}: {RECORDED_UNKNOWN}")
        return False
    call.set_usage(usage)
    call.model = model or call.model
    call.usage_source = "estimated"
    warn_once(f"no-usage-counted:{api}", f"a {api} response carried no usage; its tokens were counted with "
              "tiktoken, and the call is marked usage_source='estimated'")
    return True


def _fill_stream(call: Call, content: bytes, payloads: list[bytes], *, complete: bool, cut: bool,
                 request_body: dict[str, Any] | None, include_usage: bool) -> None:
    """Tokens of a stream: the provider's where it reported them in full, else counted by
    :func:`.stream_usage.stream_usage` (the prompt from the request unless the provider sent it, the output
    from the text seen) and marked ``estimated``."""
    api = call.api
    call.set_usage(_NO_TOKENS)  # a stream seen unfinished before keeps none of its earlier counts
    key = b'"usageMetadata"' if api == "gemini" else b'"usage"'
    body, output_reported = _usage_body(api, payloads, complete) if key in content else (None, False)
    reported: dict[str, int] | None = None
    if body is not None:
        try:
            model, reported = extract_usage(body, api=api)
            call.model = model or call.model
        except Exception:  # a usage field still null (a stream cut early): counted below
            reported, output_reported = None, False
    if api == "responses" and body is not None and isinstance(tier := body.get("service_tier"), str):
        call.service_tier = tier if tier not in ("auto", "default") else call.service_tier
    if reported is not None and output_reported:
        call.set_usage(reported)
        call.usage_source = "provider"
        return
    _estimate_stream(call, content, request_body, reported, output_reported=output_reported, cut=cut,
                     include_usage=include_usage)


def _estimate_stream(call: Call, content: bytes, request_body: dict[str, Any] | None,
                     reported: dict[str, int] | None, *, output_reported: bool, cut: bool,
                     include_usage: bool) -> None:
    """A stream's tokens counted by :func:`.stream_usage.stream_usage` (the provider's ``reported`` ones
    kept) and marked ``estimated``; the provider's alone, if counting fails. SSE and Bedrock streams alike."""
    api = call.api
    try:
        usage, model = stream_usage(api, content, request_body, call.model, reported,
                                    output_reported=output_reported)
    except Exception as exc:
        warn_once(f"stream-estimate:{type(exc).__name__}",
                  f"a {api} stream reported no usage and counting its tokens failed ({exc!r}); recorded with "
                  "the tokens the provider sent, if any, and its cost empty (unpriced)")
        call.set_usage(reported or {})
        call.usage_source = UNKNOWN_USAGE
        return
    call.set_usage(usage)
    call.model = model or call.model
    call.usage_source = "estimated"
    if not cut and reported is None:
        _warn_no_usage(api, include_usage)


def _usage_body(api: str, payloads: list[bytes], complete: bool) -> tuple[dict[str, Any] | None, bool]:
    """The body to extract the provider's usage from, out of a stream's SSE payloads, and whether its output
    count is final (an Anthropic stream cut before ``message_delta`` has only the prompt's; a Gemini stream
    cut before its last chunk, the output so far)."""
    payloads = [p for p in payloads if p and p != b"[DONE]"]
    if not payloads:
        return None, False
    key = b'"usageMetadata"' if api == "gemini" else b'"usage"'
    last = next((p for p in reversed(payloads) if key in p and not _NULL_USAGE.search(p)), None)
    if last is None:
        return None, False
    last_event = json_object(last) or {}
    if api == "responses":  # response.completed / .incomplete / .failed carry the whole response
        response = last_event.get("response")
        return (response if isinstance(response, dict) else None), True
    if api == "messages":  # message_start has input and cache tokens; message_delta the output (cumulative)
        start = json_object(payloads[0]) or {}
        message = start.get("message") if start.get("type") == "message_start" else None
        if not isinstance(message, dict):
            return (last_event if last_event.get("type") == "message" else None), True
        usage = dict(message.get("usage") or {})
        final = last_event.get("type") == "message_delta"
        if final:
            usage.update({k: v for k, v in (last_event.get("usage") or {}).items() if v is not None})
        return {**message, "usage": usage}, final
    if api == "gemini":
        return last_event, complete
    return last_event, True


_NO_TOKENS = dict.fromkeys(USAGE_KEY_TO_FIELD, 0)
_NULL_USAGE = re.compile(rb'"usage"\s*:\s*null')


def _tape(pending: Pending, status_code: int, content: bytes, content_type: str,
          request_id: str | None) -> bool:
    """Append the usage object of a successful JSON response (and its model: what ``extract_usage`` reads,
    as it came, never the response's text) with who made the call, to the ledger's journal: durable now, read
    and priced into a row soon after, off the call's path (see :mod:`._journal`; a usage object that cannot be
    read is warned about then). False for anything else (an error, a stream, no usage object) or where there
    is no journal: the caller records the call at once, which also says what was wrong."""
    info = pending.info
    if not 200 <= status_code < 300 or "text/event-stream" in content_type or (
            info.stream and "json" not in content_type) or pending.endpoint.api == "invoke":
        return False  # (InvokeModel's body is the model family's own: read by _fill)
    scope, session, endpoint = pending.scope, pending.session, pending.endpoint
    try:
        body = loads_exact(content)  # (NaN, which a record cannot hold, raises: recorded at once, leniently)
        if type(body) is not dict:
            return False
        part = usage_part(body, api=endpoint.api)
        if part is None:
            return False
        tier = body.get("service_tier") if endpoint.api == "responses" else None
        ledger = scope.ledger if scope is not None else session.ledger
        journal = ledger.journal(HOOKS)
        if journal is None:
            return False
        _scope.taped.add(journal)  # whatever reads a total makes its calls first (scope._settle)
        if scope is not None:
            try:  # noqa: SIM105 (contextlib.suppress is three Python calls on the call's path)
                scope.store_scope_row(ledger)
            except Exception:  # the ledger locked or full: stored with the calls' rows
                pass
        tags = scope.tags if scope is not None else session.tags
        journal.append((
            now_ns(), (perf_counter() - pending.t0) * 1000, status_code, request_id,  # (rounded when made)
            endpoint.provider, endpoint.api, endpoint.host, info.model,
            tier if isinstance(tier, str) and tier not in ("auto", "default") else info.service_tier,
            session.id, scope.id if scope is not None else None, pending.attribution, tuple(tags.items()),
            pending.estimated_input_tokens, None, part, 1,  # (usage as it came: read when the call is made)
        ), (scope, session))
    except Exception:  # a ledger that cannot be opened or written, a record JSON cannot hold: at once
        return False
    return True


def _warn_no_usage(api: str, include_usage: bool) -> None:
    if api == "chat" and not include_usage:
        warn_once("chat-stream-no-usage",
                  "an OpenAI chat stream without stream_options={'include_usage': True} reports no tokens; "
                  "llmcost_nb counted them with tiktoken and marked the call usage_source='estimated'. Pass "
                  "that option, or call llmcost_nb.enable(ask_stream_usage=True) to have it asked for you "
                  "(api.openai.com), to have the provider's own numbers.")
    else:
        warn_once(f"stream-no-usage:{api}", f"a {api} stream carried no usage; its tokens were counted with "
                  "tiktoken and the call marked usage_source='estimated'")


_TERMINAL = {  # an event that says the stream is complete, by wire format
    "chat": (b"[DONE]",),
    "completions": (b"[DONE]",),
    "responses": (b'"response.completed"', b'"response.incomplete"', b'"response.failed"'),
    "messages": (b'"message_stop"',),
    "gemini": (b'"finishReason"',),
}


def parse_sse(api: str, content: bytes) -> tuple[dict[str, Any] | None, bool]:
    """The body to extract usage from, out of a stream's SSE events, and whether the stream was complete
    (an SDK may close the response right after the final event, before the transport's end of stream)."""
    payloads, complete = _sse_payloads(api, content)
    return _usage_body(api, payloads, complete)[0], complete


def _sse_payloads(api: str, content: bytes) -> tuple[list[bytes], bool]:
    """The ``data:`` payloads of a stream's SSE events and whether the last one ends the stream."""
    payloads = [line[5:].strip() for line in content.splitlines() if line.startswith(b"data:")]
    complete = bool(payloads) and any(marker in payloads[-1] for marker in _TERMINAL.get(api, ()))
    return payloads, complete



def _error_message(content: bytes) -> str:
    body = json_object(content)
    if body is not None:
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:_MAX_ERROR]
        if isinstance(error, str):
            return error[:_MAX_ERROR]
        if isinstance(body.get("message"), str):  # Bedrock: {"message": ...}
            return body["message"][:_MAX_ERROR]
    return content[:_MAX_ERROR].decode("utf-8", "replace")


def record(call: Call, scope: Scope | None, session: Session, *, ledger: Any = None) -> Call:
    """Price ``call``, write it to the ledger (committed before returning) and tell scope and listeners.
    A call recorded before (a stream first seen unfinished) is updated in place."""
    session.start()
    first_time = not call.recorded
    old_cost = Decimal(0) if first_time or call.cost is None else call.cost
    try:
        ledger = ledger or (scope.ledger if scope is not None else session.ledger)
    except Exception as exc:
        warn_once(f"ledger-open:{type(exc).__name__}", f"{exc} The call was not recorded.")
        ledger = None
    if ledger is not None:
        price_captured(ledger.pricer, call)
        try:
            if scope is not None:
                scope.store_scope_row(ledger)
            ledger.write(call)
        except Exception as exc:
            warn_once(f"ledger-write:{type(exc).__name__}", f"could not write to the ledger at {ledger.path} "
                      f"({exc}); the call itself was not affected.")
    account(call, scope, session, first_time=first_time, old_cost=old_cost)
    notify(call, scope, session)
    return call


def account(call: Call, scope: Scope | None, session: Session, *, first_time: bool = True,
            old_cost: Decimal = Decimal(0)) -> None:
    """Count a recorded call in its scope (the first time) and in the session's totals."""
    if first_time and scope is not None:
        scope.add(call)
    session.add_cost(call, old_cost, first_time)


def notify(call: Call, scope: Scope | None, session: Session) -> None:
    for listener in list(session.listeners):
        try:
            listener(call, scope)
        except Exception as exc:
            warn_once(f"listener:{type(exc).__name__}", f"a cost listener raised {exc!r}")


class _Hooks:
    """What the journal tells the recorder about the calls it made from taped exchanges (each appended with
    ``(scope, session)``): count them, show them to the listeners, store their scopes' rows."""

    def made(self, items: list[tuple[Call, tuple[Scope | None, Session]]]) -> None:
        for call, (scope, session) in items:
            account(call, scope, session)

    def announce(self, items: list[tuple[Call, tuple[Scope | None, Session]]]) -> None:
        for call, (scope, session) in items:
            notify(call, scope, session)

    def before_commit(self, ledger: Any, contexts: list[tuple[Scope | None, Session]]) -> None:
        for scope in {id(s): s for s, _ in contexts if s is not None}.values():
            scope.store_scope_row(ledger)  # once each


HOOKS = _Hooks()


@atexit.register
def _flush_open_streams() -> None:
    """At exit, streams never finished are recorded as unfinished rather than lost: finished, so the
    interpreter's teardown closing them later (its imports gone) records nothing again."""
    for stream in list(_open_streams):
        stream.finish(cut=True)
    from ..ledger.journal import flush_all  # those rows, and calls taped but not committed yet: written now

    flush_all(force=True)
