"""Wire formats of :mod:`llmcost_nb.testing`'s fake provider: the token rules and the JSON / SSE bodies.

Pure functions, standard library only. :func:`plan` turns one request into a :class:`Turn` (prompt tokens,
reply, truncation); the ``*_body`` and ``*_events`` builders turn a turn into what the real API would send.
The rules are documented in :mod:`llmcost_nb.testing` and ``docs/fake_provider.md``.

>>> body = {"messages": [{"role": "user", "content": "hello there world"}]}
>>> turn = plan("chat", body, "gpt-4.1", 1, Settings())
>>> turn.prompt, turn.text, turn.words
(6, 'This is a fake reply to: hello there world', 9)
"""

from __future__ import annotations

import base64
import json
import re
import struct
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

Reply = str | Callable[[dict[str, Any], str], str] | None
Body = dict[str, Any]

MESSAGE_OVERHEAD = 3
BEDROCK_PREFIXES = ("us.", "eu.", "apac.", "global.")
REPLY_PREFIX = "This is a fake reply to:"
REPLY_WORDS = 8
EMBEDDING_DIMS = 8
_PIECE = re.compile(r"\s*\S+")
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def count_tokens(text: str) -> int:
    """Tokens of ``text`` under the fake provider's rules: its whitespace-separated words.

    >>> count_tokens("hello  there\\nworld")
    3
    """
    return len(text.split())


@dataclass(frozen=True, slots=True)
class Settings:
    """The fake provider's knobs, as read when one request arrived."""

    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    audio_input_tokens: int = 0
    reply: Reply = None


@dataclass(slots=True)
class Turn:
    """One answered request: who asked, what the prompt cost and what the fake model says."""

    api: str
    n: int
    model: str
    body: Body
    prompt: int
    text: str
    pieces: list[str]  # the reply split into words, each with its leading whitespace: "".join == text
    truncated: bool
    settings: Settings
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def words(self) -> int:
        return len(self.pieces)

    @property
    def cached(self) -> int:
        return max(0, min(self.settings.cached_tokens, self.prompt))


# -- prompts ------------------------------------------------------------------------------------------------
def _text(content: Any) -> str:
    """A content's prompt text: the string itself, or every ``text`` string of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _messages(items: list[Any], content_key: str, user_roles: tuple[str | None, ...]) -> tuple[int, str]:
    """(words + overhead, last user text) of a list of message-like dicts."""
    if not isinstance(items, list):
        raise ValueError("expected a list of messages")
    tokens, last_user = 0, ""
    for item in items:
        if not isinstance(item, dict):
            raise ValueError("each message must be an object")
        text = _text(item.get(content_key))
        tokens += count_tokens(text) + MESSAGE_OVERHEAD
        if item.get("role") in user_roles:
            last_user = text
    return tokens, last_user


def bedrock_family(model: str) -> str:
    """The InvokeModel body format of a Bedrock model id: anthropic, nova, titan or meta (else anthropic's).

    >>> bedrock_family("us.meta.llama3-2-1b-instruct-v1:0")
    'meta'
    """
    name = model.lower().split(".", 1)[1] if model.lower().startswith(BEDROCK_PREFIXES) else model.lower()
    for prefix, kind in (("amazon.nova", "nova"), ("amazon.titan", "titan"), ("meta.", "meta")):
        if name.startswith(prefix):
            return kind
    return "anthropic"


def _prompt(api: str, body: Body, model: str = "") -> tuple[int, str]:
    """(input tokens, last user text) of a request, per the documented rules."""
    if api == "invoke":
        kind = bedrock_family(model)
        if kind in ("titan", "meta"):  # one prompt string, no per-message overhead
            text = _text(body["inputText" if kind == "titan" else "prompt"])
            return count_tokens(text), text
        api = "converse"  # anthropic and nova bodies: system + messages, like Converse
    if api == "converse":
        more, last_user = _messages(body["messages"], "content", ("user",))
        return count_tokens(_text(body.get("system"))) + more, last_user
    if api == "chat":
        return _messages(body["messages"], "content", ("user",))
    if api == "responses":
        tokens = count_tokens(_text(body.get("instructions")))
        given = body.get("input", "")
        if isinstance(given, str):
            return tokens + count_tokens(given) + MESSAGE_OVERHEAD, given
        more, last_user = _messages(given, "content", ("user",))
        return tokens + more, last_user
    if api == "messages":
        more, last_user = _messages(body["messages"], "content", ("user",))
        return count_tokens(_text(body.get("system"))) + more, last_user
    system = body.get("systemInstruction") or {}  # gemini
    tokens = count_tokens(_text(system.get("parts") if isinstance(system, dict) else system))
    more, last_user = _messages(body.get("contents", []), "parts", (None, "user"))
    return tokens + more, last_user


def _max_output(api: str, body: Body, model: str = "") -> int | None:
    if api == "converse":
        return (body.get("inferenceConfig") or {}).get("maxTokens")
    if api == "invoke":
        kind = bedrock_family(model)
        if kind == "nova":
            return (body.get("inferenceConfig") or {}).get("max_new_tokens")
        if kind == "titan":
            return (body.get("textGenerationConfig") or {}).get("maxTokenCount")
        return body.get("max_gen_len" if kind == "meta" else "max_tokens")
    if api == "chat":
        limit = body.get("max_completion_tokens")
        return body.get("max_tokens") if limit is None else limit
    if api == "responses":
        return body.get("max_output_tokens")
    if api == "messages":
        return body.get("max_tokens")
    return (body.get("generationConfig") or {}).get("maxOutputTokens")


def plan(api: str, body: Body, model: str, n: int, settings: Settings) -> Turn:
    """Count the prompt and decide the reply of request number ``n`` to ``api`` (chat, responses, messages,
    gemini). Raises ValueError / KeyError / TypeError on a malformed body (answered as HTTP 400)."""
    prompt, last_user = _prompt(api, body, model)
    if api == "chat":
        prompt += settings.audio_input_tokens
    reply = settings.reply
    if reply is None:
        text = " ".join([REPLY_PREFIX, *last_user.split()[:REPLY_WORDS]])
    else:
        text = reply if isinstance(reply, str) else str(reply(body, model))
    pieces = _PIECE.findall(text)
    if pieces and (rest := text[len("".join(pieces)):]):
        pieces[-1] += rest  # trailing whitespace rides on the last word
    limit = _max_output(api, body, model)
    truncated = isinstance(limit, int) and 0 <= limit < len(pieces)
    if truncated:
        pieces = pieces[:limit]
        text = "".join(pieces)
    return Turn(api, n, model, body, prompt, text, pieces, truncated, settings)


# -- SSE framing --------------------------------------------------------------------------------------------
def sse(data: Any) -> bytes:
    return b"data: " + _dumps(data).encode() + b"\n\n"


def sse_event(event: str, data: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + _dumps(data).encode() + b"\n\n"


def dumps(data: Any) -> bytes:
    return _dumps(data).encode()


# -- OpenAI chat completions --------------------------------------------------------------------------------
def _chat_usage(t: Turn) -> Body:
    s = t.settings
    out = t.words + s.reasoning_tokens
    return {"prompt_tokens": t.prompt, "completion_tokens": out, "total_tokens": t.prompt + out,
            "prompt_tokens_details": {"cached_tokens": t.cached, "audio_tokens": s.audio_input_tokens},
            "completion_tokens_details": {"reasoning_tokens": s.reasoning_tokens, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}


def chat_body(t: Turn) -> Body:
    message = {"role": "assistant", "content": t.text, "refusal": None, "annotations": []}
    return {"id": f"chatcmpl-fake-{t.n}", "object": "chat.completion", "created": t.created, "model": t.model,
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": "length" if t.truncated else "stop"}],
            "usage": _chat_usage(t), "system_fingerprint": "fp_fake"}


def chat_events(t: Turn) -> list[bytes]:
    """As OpenAI streams a chat completion: with ``stream_options.include_usage``, every chunk carries
    ``"usage":null`` and one more, with no choices, carries the usage, before ``[DONE]`` (OpenAI's API
    reference, ``ChatCompletionStreamOptions``); without it, no chunk has a usage key."""
    head = {"id": f"chatcmpl-fake-{t.n}", "object": "chat.completion.chunk", "created": t.created,
            "model": t.model, "system_fingerprint": "fp_fake"}
    include_usage = bool((t.body.get("stream_options") or {}).get("include_usage"))
    null_usage = {"usage": None} if include_usage else {}

    def chunk(delta: Body, finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return sse({**head, "choices": [choice], **null_usage})

    events = [chunk({"role": "assistant", "content": "", "refusal": None})]
    events += [chunk({"content": piece}) for piece in t.pieces]
    events.append(chunk({}, "length" if t.truncated else "stop"))
    if include_usage:
        events.append(sse({**head, "choices": [], "usage": _chat_usage(t)}))
    events.append(b"data: [DONE]\n\n")
    return events


# -- OpenAI responses ---------------------------------------------------------------------------------------
def _response(t: Turn, status: str, output: list[Body], usage: Body | None) -> Body:
    incomplete = {"reason": "max_output_tokens"} if status == "incomplete" else None
    return {"id": f"resp_fake_{t.n}", "object": "response", "created_at": t.created, "status": status,
            "model": t.model, "output": output, "usage": usage, "error": None,
            "incomplete_details": incomplete,
            "instructions": t.body.get("instructions"), "max_output_tokens": t.body.get("max_output_tokens"),
            "parallel_tool_calls": True, "tool_choice": "auto", "tools": [], "metadata": {},
            "temperature": 1.0, "top_p": 1.0, "text": {"format": {"type": "text"}}}


def _responses_parts(t: Turn) -> tuple[Body, Body, Body]:
    """(usage, finished output_text part, finished message item) of a responses turn."""
    out = t.words + t.settings.reasoning_tokens
    usage = {"input_tokens": t.prompt, "output_tokens": out, "total_tokens": t.prompt + out,
             "input_tokens_details": {"cached_tokens": t.cached, "cache_write_tokens": 0},
             "output_tokens_details": {"reasoning_tokens": t.settings.reasoning_tokens}}
    part = {"type": "output_text", "text": t.text, "annotations": [], "logprobs": []}
    item = {"id": f"msg_fake_{t.n}", "type": "message", "role": "assistant",
            "status": "incomplete" if t.truncated else "completed", "content": [part]}
    return usage, part, item


def responses_body(t: Turn) -> Body:
    usage, _, item = _responses_parts(t)
    return _response(t, "incomplete" if t.truncated else "completed", [item], usage)


def responses_events(t: Turn) -> list[bytes]:
    usage, part, item = _responses_parts(t)
    ids = {"item_id": item["id"], "output_index": 0, "content_index": 0}
    status = "incomplete" if t.truncated else "completed"
    steps: list[tuple[str, Body]] = [
        ("response.created", {"response": _response(t, "in_progress", [], None)}),
        ("response.in_progress", {"response": _response(t, "in_progress", [], None)}),
        ("response.output_item.added",
         {"output_index": 0, "item": {**item, "status": "in_progress", "content": []}}),
        ("response.content_part.added", {**ids, "part": {**part, "text": ""}}),
        *(("response.output_text.delta", {**ids, "delta": piece, "logprobs": []}) for piece in t.pieces),
        ("response.output_text.done", {**ids, "text": t.text, "logprobs": []}),
        ("response.content_part.done", {**ids, "part": part}),
        ("response.output_item.done", {"output_index": 0, "item": item}),
        (f"response.{status}", {"response": _response(t, status, [item], usage)}),
    ]
    return [sse_event(kind, {"type": kind, "sequence_number": seq, **data})
            for seq, (kind, data) in enumerate(steps)]


# -- OpenAI embeddings --------------------------------------------------------------------------------------
def embedding(text: str) -> list[float]:
    """A deterministic 8-float vector of ``text`` (multiples of 1/16 in [-0.5, 0.4375], exact in float32)."""
    crc = zlib.crc32(text.encode())
    return [((crc >> (4 * i)) & 15) / 16 - 0.5 for i in range(EMBEDDING_DIMS)]


def embeddings_body(body: Body, model: str) -> Body:
    """Embeddings response: one vector per input; tokens = words of every string (or ids of a token list)."""
    given = body["input"]
    if not isinstance(given, str | list):
        raise ValueError("input must be a string or a list")
    inputs = [given] if isinstance(given, str) or (given and isinstance(given[0], int)) else given
    data, tokens = [], 0
    for index, item in enumerate(inputs):
        if isinstance(item, str):
            tokens, vector = tokens + count_tokens(item), embedding(item)
        elif isinstance(item, list):
            tokens, vector = tokens + len(item), embedding(" ".join(map(str, item)))
        else:
            raise ValueError("input must be a string, a list of strings or a list of token ids")
        value: Any = vector
        if body.get("encoding_format") == "base64":
            value = base64.b64encode(struct.pack(f"<{EMBEDDING_DIMS}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": value})
    return {"object": "list", "data": data, "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


# -- Anthropic messages -------------------------------------------------------------------------------------
def _anthropic_usage(t: Turn, output_tokens: int) -> Body:
    read = t.cached
    write = max(0, min(t.settings.cache_write_tokens, t.prompt - read))
    return {"input_tokens": t.prompt - read - write, "output_tokens": output_tokens,
            "cache_read_input_tokens": read, "cache_creation_input_tokens": write,
            "cache_creation": {"ephemeral_5m_input_tokens": write, "ephemeral_1h_input_tokens": 0},
            "service_tier": "standard"}


def messages_body(t: Turn, *, streaming: bool = False) -> Body:
    done = not streaming
    return {"id": f"msg_fake_{t.n}", "type": "message", "role": "assistant", "model": t.model,
            "content": [{"type": "text", "text": t.text}] if done else [],
            "stop_reason": ("max_tokens" if t.truncated else "end_turn") if done else None,
            "stop_sequence": None, "usage": _anthropic_usage(t, t.words if done else 1)}


def messages_events(t: Turn) -> list[bytes]:
    steps: list[tuple[str, Body]] = [
        ("message_start", {"message": messages_body(t, streaming=True)}),
        ("ping", {}),
        ("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
        *(("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": piece}})
          for piece in t.pieces),
        ("content_block_stop", {"index": 0}),
        ("message_delta", {"delta": {"stop_reason": "max_tokens" if t.truncated else "end_turn",
                                     "stop_sequence": None}, "usage": {"output_tokens": t.words}}),
        ("message_stop", {}),
    ]
    return [sse_event(kind, {"type": kind, **data}) for kind, data in steps]


# -- Gemini generateContent ---------------------------------------------------------------------------------
def _gemini_chunk(t: Turn, text: str, words: int, finish: bool) -> Body:
    thoughts = t.settings.reasoning_tokens
    usage: Body = {"promptTokenCount": t.prompt, "candidatesTokenCount": words,
                   "totalTokenCount": t.prompt + words + thoughts}
    if t.cached:
        usage["cachedContentTokenCount"] = t.cached
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    candidate: Body = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = "MAX_TOKENS" if t.truncated else "STOP"
    return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": t.model,
            "responseId": f"resp_fake_{t.n}"}


def gemini_body(t: Turn) -> Body:
    return _gemini_chunk(t, t.text, t.words, True)


def gemini_chunks(t: Turn) -> list[Body]:
    pieces, last = t.pieces or [""], max(0, len(t.pieces) - 1)
    return [_gemini_chunk(t, piece, min(i + 1, t.words), i == last) for i, piece in enumerate(pieces)]


def gemini_events(t: Turn) -> list[bytes]:
    return [b"data: " + dumps(chunk) + b"\r\n\r\n" for chunk in gemini_chunks(t)]


# -- Amazon Bedrock: Converse, InvokeModel and AWS event-stream framing ------------------------------------
EVENTSTREAM = "application/vnd.amazon.eventstream"


def event_frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One AWS event-stream message: prelude (total length, headers length, CRC-32 of the two), string
    headers, payload, CRC-32 of all before it."""
    encoded = b""
    for name, value in headers.items():
        raw = value.encode()
        encoded += struct.pack("!B", len(name)) + name.encode() + struct.pack("!BH", 7, len(raw)) + raw
    prelude = struct.pack("!II", 16 + len(encoded) + len(payload), len(encoded))
    message = prelude + struct.pack("!I", zlib.crc32(prelude)) + encoded + payload
    return message + struct.pack("!I", zlib.crc32(message))


def _bedrock_event(kind: str, data: Body) -> bytes:
    return event_frame({":event-type": kind, ":content-type": "application/json", ":message-type": "event"},
                       dumps(data))


def _bedrock_counts(t: Turn) -> tuple[int, int, int]:
    """(input tokens not cached, cache read, cache write): Bedrock, like Anthropic, reports them apart."""
    read = t.cached
    write = max(0, min(t.settings.cache_write_tokens, t.prompt - read))
    return t.prompt - read - write, read, write


def _converse_usage(t: Turn) -> Body:
    fresh, read, write = _bedrock_counts(t)
    usage = {"inputTokens": fresh, "outputTokens": t.words, "totalTokens": t.prompt + t.words}
    if read:
        usage["cacheReadInputTokens"] = read
    if write:
        usage["cacheWriteInputTokens"] = write
    return usage


def converse_body(t: Turn) -> Body:
    return {"output": {"message": {"role": "assistant", "content": [{"text": t.text}]}},
            "stopReason": "max_tokens" if t.truncated else "end_turn", "usage": _converse_usage(t),
            "metrics": {"latencyMs": 1}}


def converse_events(t: Turn) -> list[bytes]:
    return [
        _bedrock_event("messageStart", {"role": "assistant"}),
        *(_bedrock_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}})
          for piece in t.pieces),
        _bedrock_event("contentBlockStop", {"contentBlockIndex": 0}),
        _bedrock_event("messageStop", {"stopReason": "max_tokens" if t.truncated else "end_turn"}),
        _bedrock_event("metadata", {"usage": _converse_usage(t), "metrics": {"latencyMs": 1}}),
    ]


def invoke_body(t: Turn) -> Body:
    """InvokeModel's body: the model family's own format."""
    kind = bedrock_family(t.model)
    fresh, read, write = _bedrock_counts(t)
    if kind == "nova":
        usage = {"inputTokens": fresh, "outputTokens": t.words, "totalTokens": t.prompt + t.words,
                 "cacheReadInputTokenCount": read, "cacheWriteInputTokenCount": write}
        return {"output": {"message": {"role": "assistant", "content": [{"text": t.text}]}},
                "stopReason": "max_tokens" if t.truncated else "end_turn", "usage": usage}
    if kind == "titan":
        return {"inputTextTokenCount": t.prompt, "results": [
            {"tokenCount": t.words, "outputText": t.text,
             "completionReason": "LENGTH" if t.truncated else "FINISH"}]}
    if kind == "meta":
        return {"generation": t.text, "prompt_token_count": t.prompt, "generation_token_count": t.words,
                "stop_reason": "length" if t.truncated else "stop"}
    return messages_body(t)


def invoke_headers(t: Turn) -> dict[str, str]:
    """InvokeModel's token-count headers (cache counts only when there are some)."""
    fresh, read, write = _bedrock_counts(t)
    headers = {"x-amzn-bedrock-input-token-count": str(fresh),
               "x-amzn-bedrock-output-token-count": str(t.words)}
    if read:
        headers["x-amzn-bedrock-cache-read-input-token-count"] = str(read)
    if write:
        headers["x-amzn-bedrock-cache-write-input-token-count"] = str(write)
    return headers


def _invoke_chunks(t: Turn) -> list[Body]:
    kind = bedrock_family(t.model)
    fresh, read, write = _bedrock_counts(t)
    if kind == "anthropic":
        return [json.loads(event.split(b"data: ", 1)[1]) for event in messages_events(t)
                if not event.startswith(b"event: ping")]
    pieces = t.pieces or [""]
    last = len(pieces) - 1
    if kind == "nova":
        usage = {"inputTokens": fresh, "outputTokens": t.words, "totalTokens": t.prompt + t.words,
                 "cacheReadInputTokenCount": read, "cacheWriteInputTokenCount": write}
        return [{"messageStart": {"role": "assistant"}},
                *({"contentBlockDelta": {"delta": {"text": piece}, "contentBlockIndex": 0}}
                  for piece in t.pieces),
                {"contentBlockStop": {"contentBlockIndex": 0}},
                {"messageStop": {"stopReason": "max_tokens" if t.truncated else "end_turn"}},
                {"metadata": {"usage": usage, "metrics": {}, "trace": {}}}]
    if kind == "titan":
        return [{"outputText": piece, "index": 0, "totalOutputTextTokenCount": min(i + 1, t.words),
                 "completionReason": ("LENGTH" if t.truncated else "FINISH") if i == last else None,
                 "inputTextTokenCount": t.prompt if i == 0 else None} for i, piece in enumerate(pieces)]
    return [{"generation": piece, "prompt_token_count": t.prompt if i == 0 else None,
             "generation_token_count": min(i + 1, t.words),
             "stop_reason": ("length" if t.truncated else "stop") if i == last else None}
            for i, piece in enumerate(pieces)]


def invoke_events(t: Turn) -> list[bytes]:
    """InvokeModelWithResponseStream: one ``chunk`` event per family chunk, its JSON base64-encoded in
    ``bytes``; the last chunk carries ``amazon-bedrock-invocationMetrics``."""
    fresh, read, write = _bedrock_counts(t)
    chunks = _invoke_chunks(t)
    metrics = {"inputTokenCount": fresh, "outputTokenCount": t.words, "invocationLatency": 1,
               "firstByteLatency": 1}
    if read:
        metrics["cacheReadInputTokenCount"] = read
    if write:
        metrics["cacheWriteInputTokenCount"] = write
    chunks[-1] = {**chunks[-1], "amazon-bedrock-invocationMetrics": metrics}
    return [_bedrock_event("chunk", {"bytes": base64.b64encode(dumps(chunk)).decode()}) for chunk in chunks]


# -- routing ------------------------------------------------------------------------------------------------
BODIES: dict[str, Callable[[Turn], Body]] = {
    "chat": chat_body, "responses": responses_body, "messages": messages_body, "gemini": gemini_body,
    "converse": converse_body, "invoke": invoke_body}
EVENTS: dict[str, Callable[[Turn], list[bytes]]] = {
    "chat": chat_events, "responses": responses_events, "messages": messages_events, "gemini": gemini_events,
    "converse": converse_events, "invoke": invoke_events}
_PATHS = {"/v1/chat/completions": ("openai", "chat"), "/v1/responses": ("openai", "responses"),
          "/v1/embeddings": ("openai", "embeddings"), "/v1/messages": ("anthropic", "messages"),
          "/v1/messages/count_tokens": ("anthropic", "count_tokens")}
_BEDROCK_PATH = re.compile(r"/model/([^/]+)/(converse|converse-stream|invoke|invoke-with-response-stream)")
_GEMINI_PATH = re.compile(r"/v1\w*/(?:[^:]*/)?models/([^/:]+):(?:generateContent|streamGenerateContent)")


def route(path: str) -> tuple[str, str | None, str]:
    """(provider, api or None if unknown, model from the path) of a request path without its query.

    >>> route("/v1/models/gemini-2.5-flash:streamGenerateContent")
    ('gemini', 'gemini', 'gemini-2.5-flash')
    """
    if path in _PATHS:
        return (*_PATHS[path], "")
    if match := _BEDROCK_PATH.fullmatch(path):  # api: converse or invoke; streaming is in the path
        return "bedrock", match[2].split("-", 1)[0], unquote(match[1])
    if path.startswith("/model/"):
        return "bedrock", None, ""
    if match := _GEMINI_PATH.fullmatch(path):
        return "gemini", "gemini", match[1]
    if path.startswith("/v1/messages"):
        return "anthropic", None, ""
    return ("gemini" if path.startswith(("/v1beta", "/v1alpha")) else "openai"), None, ""


# -- errors -------------------------------------------------------------------------------------------------
_ANTHROPIC_ERRORS = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                     404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
                     529: "overloaded_error"}
_GEMINI_ERRORS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                  409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED", 500: "INTERNAL",
                  501: "NOT_IMPLEMENTED", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


_BEDROCK_ERRORS = {400: "ValidationException", 403: "AccessDeniedException", 404: "ResourceNotFoundException",
                   408: "ModelTimeoutException", 424: "ModelErrorException", 429: "ThrottlingException",
                   503: "ServiceUnavailableException"}


def bedrock_error_type(status: int) -> str:
    """The ``x-amzn-errortype`` header of a Bedrock error (botocore reads the error code from it)."""
    return _BEDROCK_ERRORS.get(status, "InternalServerException" if status >= 500 else "ValidationException")


def error_body(provider: str, status: int, message: str, request_id: str) -> Body:
    """The JSON error shape of ``provider`` (openai, anthropic, gemini, bedrock) for an HTTP ``status``."""
    if provider == "bedrock":
        return {"message": message}
    if provider == "anthropic":
        kind = _ANTHROPIC_ERRORS.get(status, "api_error" if status >= 500 else "invalid_request_error")
        return {"type": "error", "error": {"type": kind, "message": message}, "request_id": request_id}
    if provider == "gemini":
        code = _GEMINI_ERRORS.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION")
        return {"error": {"code": status, "message": message, "status": code}}
    if status == 429:
        kind, code = "requests", "rate_limit_exceeded"
    else:
        kind, code = ("server_error", None) if status >= 500 else ("invalid_request_error", None)
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}
