"""A fake OpenAI / Anthropic / Gemini server on loopback, for tests, notebooks and benchmarks.

The real SDK clients talk to it unchanged; answers are deterministic, so tests can assert exact token counts.

>>> from llmcost_nb.testing import FakeProvider
>>> with FakeProvider() as fake:                                             # doctest: +SKIP
...     client = openai.OpenAI(base_url=fake.openai_base_url, api_key="sk-test")
...     client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "hi there"}])
...     fake.request_count
1

Endpoints: OpenAI ``POST /v1/chat/completions``, ``/v1/responses``, ``/v1/embeddings``; Anthropic
``POST /v1/messages`` (and ``/v1/messages/count_tokens``); Gemini ``POST /v1/models/{model}:generateContent``
and ``:streamGenerateContent?alt=sse`` (any API version; google-genai 3.x uses ``v1``); Amazon Bedrock Runtime
``POST /model/{id}/converse``, ``/converse-stream``, ``/invoke`` and ``/invoke-with-response-stream`` (AWS
event-stream framing; InvokeModel bodies in the model family's format). Anything else is a 404
in the provider's JSON error shape. ``"stream": true`` (Gemini: the stream endpoint) answers with SSE in
chunked transfer encoding. As a plain-HTTP proxy (``httpx.Client(proxy=fake.url)``) it answers requests
addressed to any host, e.g. ``http://api.openai.com/v1/...``, as its own.

Token rules (``count_tokens(text) = len(text.split())``: a token is a whitespace-separated word):

- **Input** = words of every prompt text + 3 per message. Prompt texts: OpenAI chat ``messages[].content``
  (a string, or the ``text`` of each part of a list); responses ``instructions`` + ``input`` (a string is
  one message; in a list each item is a message, its ``content`` read as above); Anthropic ``system``
  (string or text blocks, no overhead) + ``messages[].content``; Gemini ``systemInstruction.parts[].text``
  (no overhead) + ``contents[].parts[].text``. Non-text parts count 0. OpenAI chat adds
  ``audio_input_tokens``. Embeddings: words of each input string (token-id lists: their length), no overhead.
- **Reply** = ``"This is a fake reply to: "`` + the first 8 words of the last user message's text (no user
  text: ``"This is a fake reply to:"``); ``fake.reply`` replaces it with a string, or with
  ``callable(request_body, model) -> str``.
- **Output** = words of the reply. A ``max_tokens`` / ``max_completion_tokens`` / ``max_output_tokens`` /
  ``generationConfig.maxOutputTokens`` smaller than that truncates the reply to that many words; the finish
  reason becomes ``length`` / ``max_tokens`` / ``MAX_TOKENS`` (responses: ``status: "incomplete"``, streamed
  as ``response.incomplete``). Streams send one chunk per word.
- ``reasoning_tokens`` are added to OpenAI ``completion_tokens`` / ``output_tokens`` (and reported in their
  details); Gemini reports them as ``thoughtsTokenCount``, outside ``candidatesTokenCount``; Anthropic: none.
- ``cached_tokens`` (capped at the input) is reported as ``cached_tokens`` (OpenAI),
  ``cache_read_input_tokens`` (Anthropic) or ``cachedContentTokenCount`` (Gemini, only when > 0). OpenAI and
  Gemini input counts include cached tokens; Anthropic's ``input_tokens`` = input − cache read − cache
  write (``cache_write_tokens``, capped at what is left).

Ids: ``chatcmpl-fake-<n>``, ``resp_fake_<n>`` (responses; Gemini ``responseId``), ``msg_fake_<n>``, and the
header ``x-request-id: req_fake_<n>`` (Anthropic also ``request-id``); ``n`` numbers requests from 1.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import math
import selectors
import socket
import socketserver
import threading
import time
import zlib
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from . import wire
from .wire import Reply, count_tokens

__all__ = ["FakeProvider", "RecordedRequest", "count_tokens"]


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request the fake received. ``path`` includes the query string; ``headers`` have lower-case keys;
    ``body`` is the parsed JSON object (None if the body was empty or not a JSON object)."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None


@dataclass(slots=True)
class _Fault:
    status: int
    remaining: float  # math.inf: until reset()
    body: Any
    headers: dict[str, str]


class FakeProvider:
    """A fake LLM provider server on ``host`` (loopback) and a free port, serving until :meth:`close`.

    Settings are plain attributes, read when each request arrives, so they can change between requests:

    >>> fake = FakeProvider()
    >>> fake.cached_tokens, fake.reasoning_tokens = 4, 20   # reported in usage (see the module docstring)
    >>> fake.reply = lambda body, model: "short answer"     # or a str; None: the default reply
    >>> fake.fail_next(status=429, times=2)                 # the next 2 requests fail, then normal
    >>> fake.close()
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._lock = threading.Lock()
        self._count = 0
        self._requests: list[RecordedRequest] = []
        self._fault: _Fault | None = None
        self._cut: int | None = None
        self._closed = False
        self._defaults()
        self._server = _Server((host, port), _Handler, self)
        self.host, self.port = str(self._server.server_address[0]), int(self._server.server_address[1])
        self._wake_r, self._wake_w = socket.socketpair()  # close() wakes the accept loop at once
        self._thread = threading.Thread(target=self._accept_loop, name=f"llmcost-fake-provider:{self.port}",
                                        daemon=True)
        self._thread.start()

    def _defaults(self) -> None:
        self.cached_tokens: int = 0  # cached input tokens reported (capped at the input)
        self.cache_write_tokens: int = 0  # anthropic cache_creation_input_tokens (capped at what is left)
        self.reasoning_tokens: int = 0  # openai: inside output tokens; gemini: thoughtsTokenCount
        self.audio_input_tokens: int = 0  # openai chat prompt_tokens_details.audio_tokens (in prompt_tokens)
        self.reply: Reply = None  # None: the default reply; a str; callable(request_body, model) -> str
        self.latency: float = 0.0  # seconds to wait before answering each request
        self.stream_delay: float = 0.0  # seconds to wait between two SSE events of a stream
        self.gzip: bool | str = False  # gzip responses when the request's accept-encoding allows it;
        # "always": even when it does not (a server ignoring ``Accept-Encoding: identity``)
        self.record_requests: bool = True  # keep requests in .requests (benchmarks: False; still counted)

    # -- addresses ----------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``"""
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """For ``openai.OpenAI(base_url=...)``: :attr:`url` + ``/v1``."""
        return self.url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        """For ``anthropic.Anthropic(base_url=...)``, which appends ``/v1/messages``."""
        return self.url

    @property
    def bedrock_endpoint_url(self) -> str:
        """For ``boto3.client("bedrock-runtime", endpoint_url=...)``: :attr:`url` (``/model/{id}/...``)."""
        return self.url

    @property
    def gemini_base_url(self) -> str:
        """For ``genai.Client(http_options={"base_url": ...})``, which appends ``/v1/models/...`` (3.x)."""
        return self.url

    # -- what was received --------------------------------------------------------------------------------
    @property
    def request_count(self) -> int:
        """Requests received on every path, failed and retried ones included."""
        with self._lock:
            return self._count

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the requests received, oldest first."""
        with self._lock:
            return list(self._requests)

    # -- faults -------------------------------------------------------------------------------------------
    def fail_next(self, status: int = 429, times: int = 1, body: dict[str, Any] | str | None = None,
                  headers: dict[str, str] | None = None) -> None:
        """Answer the next ``times`` requests (any path) with HTTP ``status``, then normally again.

        ``body`` defaults to the provider's JSON error shape; a str is sent as text/plain. Retryable statuses
        (408, 409, 429, 5xx) carry ``retry-after: 0`` and ``retry-after-ms: 1`` so SDK retries are instant;
        ``headers`` adds to or overrides them.

        >>> fake.fail_next(status=429, times=2)    # doctest: +SKIP
        """
        self._set_fault(status, times, body, headers)

    def fail_always(self, status: int = 500, body: dict[str, Any] | str | None = None,
                    headers: dict[str, str] | None = None) -> None:
        """Answer every request with HTTP ``status`` until :meth:`reset` (see :meth:`fail_next`)."""
        self._set_fault(status, math.inf, body, headers)

    def _set_fault(self, status: int, times: float, body: Any, headers: dict[str, str] | None) -> None:
        fault = _Fault(status, times, body, {k.lower(): str(v) for k, v in (headers or {}).items()})
        with self._lock:
            self._fault = fault if times > 0 else None

    def cut_stream_after(self, n_events: int) -> None:
        """Close the connection of the next streaming response abruptly after ``n_events`` SSE events, with no
        terminating event, ``[DONE]`` or final chunk: the client sees an incomplete chunked body. A stream of
        at most ``n_events`` events ends normally (the cut is used up either way)."""
        with self._lock:
            self._cut = max(0, n_events)

    def reset(self) -> None:
        """Clear the request count and log, faults, a pending stream cut and every setting."""
        with self._lock:
            self._count, self._requests, self._fault, self._cut = 0, [], None, None
            self._defaults()

    # -- lifecycle ----------------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the server and drop open connections (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._wake_w.send(b"x")
        self._thread.join(timeout=5)
        self._server.server_close()
        self._server.drop_connections()
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self) -> FakeProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{self.request_count} requests"
        return f"<FakeProvider {self.url} ({state})>"

    # -- used by the server thread and the handlers ----------------------------------------------------------
    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._server, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._closed:
                if any(key.fileobj is self._server for key, _ in selector.select()):
                    self._server.handle_request()  # accepts; a thread per connection serves it

    def _arrive(self, request: RecordedRequest) -> tuple[int, _Fault | None, wire.Settings]:
        settings = wire.Settings(self.cached_tokens, self.cache_write_tokens, self.reasoning_tokens,
                                 self.audio_input_tokens, self.reply)
        with self._lock:
            self._count += 1
            n = self._count
            if self.record_requests:
                self._requests.append(request)
            fault = self._fault
            if fault is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._fault = None
        return n, fault, settings

    def _take_cut(self) -> int | None:
        with self._lock:
            cut, self._cut = self._cut, None
        return cut


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    timeout = 0.5  # handle_request() gives up if the connection it was woken for has gone
    request_queue_size = 256  # benchmarks open many connections at once

    def __init__(self, address: tuple[str, int], handler: type[_Handler], fake: FakeProvider) -> None:
        self.fake = fake
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def server_bind(self) -> None:  # skip HTTPServer's getfqdn(), a DNS lookup
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up mid-response are normal here: print nothing."""

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._connections_lock:
            (self._connections.add if open_ else self._connections.discard)(connection)

    def drop_connections(self) -> None:
        with self._connections_lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: SDK connection pools reuse connections
    disable_nagle_algorithm = True
    server: _Server
    _extra: dict[str, str]  # set per request: x-request-id (and request-id) for every answer
    _gzip: bool  # set per request: gzip this answer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        self.server.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: no access log on stderr."""

    def do_POST(self) -> None:
        try:
            self._serve()
        except OSError:  # the client went away mid-response
            self.close_connection = True

    do_GET = do_PUT = do_PATCH = do_DELETE = do_POST

    def _serve(self) -> None:
        fake = self.server.fake
        raw = self._read_body()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        body = parsed if isinstance(parsed, dict) else None
        headers = {key.lower(): value for key, value in self.headers.items()}
        target = self.path  # absolute-form when asked as a plain-HTTP proxy: http://api.openai.com/v1/...
        if target.startswith("http://"):
            target = "/" + target[len("http://"):].partition("/")[2]
        n, fault, settings = fake._arrive(RecordedRequest(self.command, target, headers, body))
        path, _, query = target.partition("?")
        provider, api, model = wire.route(path)
        rid = f"req_fake_{n}"
        self._extra = {"x-amzn-requestid": rid} if provider == "bedrock" else (  # AWS sends only its own
            {"x-request-id": rid} | ({"request-id": rid} if provider == "anthropic" else {}))
        self._gzip = fake.gzip == "always" or (fake.gzip and "gzip" in headers.get("accept-encoding", ""))
        if fake.latency > 0:
            time.sleep(fake.latency)
        if fault is not None:
            return self._fail(provider, fault, rid)
        if api is None or self.command != "POST":
            message = f"Invalid URL ({self.command} {path})"
            return self._json(404, wire.error_body(provider, 404, message, rid))
        if body is None:
            message = "We could not parse the JSON body of your request."
            return self._json(400, wire.error_body(provider, 400, message, rid))
        try:
            if api == "embeddings":
                return self._json(200, wire.embeddings_body(body, str(body.get("model", ""))))
            turn = wire.plan("messages" if api == "count_tokens" else api, body,
                             model or str(body.get("model", "")), n, settings)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            message = f"Invalid request body: {exc!r}"
            return self._json(400, wire.error_body(provider, 400, message, rid))
        except Exception as exc:  # a reply callable that raised: make it visible to the caller
            message = f"FakeProvider could not answer: {exc!r}"
            return self._json(500, wire.error_body(provider, 500, message, rid))
        if api == "count_tokens":
            return self._json(200, {"input_tokens": turn.prompt})
        if api == "gemini":
            streaming = path.endswith(":streamGenerateContent")
            if streaming and "alt=sse" not in query:
                return self._json(200, wire.gemini_chunks(turn))  # the JSON-array flavour, not incremental
        elif provider == "bedrock":
            if path.endswith("-stream"):  # converse-stream, invoke-with-response-stream: event-stream frames
                events = wire.EVENTS[api](turn)
                return self._stream(events, fake._take_cut(), fake.stream_delay, wire.EVENTSTREAM)
            counts = wire.invoke_headers(turn) if api == "invoke" else None  # InvokeModel's token counts
            return self._json(200, wire.BODIES[api](turn), counts)
        else:
            streaming = body.get("stream") is True
        if streaming:
            return self._stream(wire.EVENTS[api](turn), fake._take_cut(), fake.stream_delay)
        return self._json(200, wire.BODIES[api](turn))

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            parts = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            raw = b"".join(parts)
        else:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length > 0 else b""
        if raw and self.headers.get("content-encoding", "").lower() == "gzip":
            raw = gzip.decompress(raw)
        return raw

    def _head(self, status: int, headers: dict[str, str]) -> bytes:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Unknown"
        if self.close_connection:
            headers["connection"] = "close"
        lines = [f"HTTP/1.1 {status} {phrase}", "server: llmcost-fake-provider", *(
            f"{key}: {value}" for key, value in (self._extra | headers).items())]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _send(self, status: int, payload: bytes, content_type: str,
              headers: dict[str, str] | None = None) -> None:
        headers = {"content-type": content_type} | (headers or {})
        if self._gzip:
            payload = gzip.compress(payload, compresslevel=6, mtime=0)
            headers["content-encoding"] = "gzip"
        headers["content-length"] = str(len(payload))
        self.wfile.write(self._head(status, headers) + payload)

    def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, wire.dumps(data), "application/json", headers)

    def _fail(self, provider: str, fault: _Fault, rid: str) -> None:
        status = fault.status
        retryable = status in (408, 409, 429) or status >= 500
        headers = ({"retry-after": "0", "retry-after-ms": "1"} if retryable else {}) | (
            {"x-amzn-errortype": wire.bedrock_error_type(status)} if provider == "bedrock" else {}
        ) | fault.headers
        if isinstance(fault.body, str):
            return self._send(status, fault.body.encode(), "text/plain; charset=utf-8", headers)
        message = f"Injected failure: HTTP {status} from llmcost_nb's FakeProvider."
        body = wire.error_body(provider, status, message, rid) if fault.body is None else fault.body
        self._json(status, body, headers)

    def _stream(self, events: list[bytes], cut: int | None, delay: float,
                content_type: str = "text/event-stream") -> None:
        headers = {"content-type": content_type, "cache-control": "no-cache", "transfer-encoding": "chunked"}
        compressor = zlib.compressobj(6, zlib.DEFLATED, 31) if self._gzip else None  # 31: gzip container
        if compressor:
            headers["content-encoding"] = "gzip"
        write = self.wfile.write
        write(self._head(200, headers))
        for index, event in enumerate(events):
            if cut is not None and index >= cut:
                self.close_connection = True  # abruptly: the chunked body never ends
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            if delay > 0 and index:
                time.sleep(delay)
            if compressor:  # a sync flush per event: the client can decode each one as it arrives
                event = compressor.compress(event) + compressor.flush(zlib.Z_SYNC_FLUSH)
            write(b"%x\r\n%b\r\n" % (len(event), event))
        tail = compressor.flush() if compressor else b""
        write((b"%x\r\n%b\r\n" % (len(tail), tail) if tail else b"") + b"0\r\n\r\n")
