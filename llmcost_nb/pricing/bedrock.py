"""Amazon Bedrock Runtime's wire formats: which requests are model calls, what they ask for, and their
token usage — from Converse / ConverseStream, and from InvokeModel / InvokeModelWithResponseStream bodies,
whose shape depends on the model's family — plus AWS's binary event-stream framing.

=====================================  =========  ==========================================================
path                                   api        usage read from
=====================================  =========  ==========================================================
``/model/{id}/converse``               converse   ``usage`` (``inputTokens``, ``outputTokens``, cache reads
                                                  and writes) — genai-prices' own ``aws`` extractor
``/model/{id}/converse-stream``        converse   the ``metadata`` event's ``usage``
``/model/{id}/invoke``                 invoke     the body, by family (below); else the
                                                  ``x-amzn-bedrock-*-token-count`` headers
``/model/{id}/invoke-with-response-    invoke     the ``chunk`` events (base64 ``bytes`` of the family's
stream``                                          chunks); else ``amazon-bedrock-invocationMetrics``
=====================================  =========  ==========================================================

Families (by model id, inference-profile prefix ``us.``/``eu.``/``apac.``/``global.`` or not): Anthropic
(the Messages API's ``usage``; streamed: ``message_start`` + ``message_delta``), Amazon Nova (``usage``:
``inputTokens``, ``outputTokens``, ``cacheReadInputTokenCount``, ``cacheWriteInputTokenCount``; streamed:
the ``metadata`` chunk), Amazon Titan text (``inputTextTokenCount``, ``results[].tokenCount``; streamed:
``totalOutputTextTokenCount``) and Meta Llama (``prompt_token_count``, ``generation_token_count``).

Models are priced under genai-prices' provider ``aws`` by their Bedrock id, prefix included (genai-prices
prices ``global.`` profiles apart from regional ones).

An event-stream message: total length (4 bytes, big-endian), headers length (4), CRC-32 of those 8 bytes,
headers (name length (1), name, type (1; 7 = string), value length (2), value), payload, CRC-32 of all before.
"""

from __future__ import annotations

import base64
import binascii
import functools
import struct
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from .usage import json_object

__all__ = ["APIS", "EVENTSTREAM", "decode_frames", "family", "is_bedrock_host", "max_output_tokens", "route",
           "stream_text", "usage_body"]

APIS = ("converse", "invoke")
EVENTSTREAM = "application/vnd.amazon.eventstream"
_OPERATIONS = {"converse": ("converse", False), "converse-stream": ("converse", True),
               "invoke": ("invoke", False), "invoke-with-response-stream": ("invoke", True)}
_PROFILE_PREFIXES = ("us.", "eu.", "apac.", "global.", "us-gov.", "jp.", "au.", "ca.")


def is_bedrock_host(host: str) -> bool:
    """``bedrock-runtime[-fips].<region>.amazonaws.com`` (and its VPC endpoints)."""
    host = host.lower()
    return host.endswith((".amazonaws.com", ".amazonaws.com.cn")) and "bedrock-runtime" in host


@functools.lru_cache(maxsize=1024)  # read twice a call (classify, request_info); ids repeat
def route(path: str) -> tuple[str, str, bool] | None:
    """(api, model id, streamed) of a Bedrock Runtime model call's path, or None for any other path.

    >>> route("/model/us.anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream")
    ('converse', 'us.anthropic.claude-3-haiku-20240307-v1:0', True)
    """
    if not path.startswith("/model/"):
        return None
    rest, _, operation = path[7:].rpartition("/")
    found = _OPERATIONS.get(operation)
    if found is None or not rest:
        return None
    model = unquote(rest)
    if model.startswith("arn:"):  # an inference profile's or a foundation model's ARN: the id ends it
        model = model.rsplit("/", 1)[-1]
    return found[0], model, found[1]


def family(model: str | None) -> str | None:
    """The body format of InvokeModel for ``model``: anthropic, nova, titan, meta, or None (unknown).

    >>> family("eu.amazon.nova-lite-v1:0"), family("meta.llama3-1-8b-instruct-v1:0")
    ('nova', 'meta')
    """
    name = (model or "").lower()
    for prefix in _PROFILE_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    if name.startswith("anthropic."):
        return "anthropic"
    if name.startswith("amazon.nova"):
        return "nova"
    if name.startswith("amazon.titan-text") or name.startswith("amazon.titan-tg1"):
        return "titan"
    if name.startswith("meta."):
        return "meta"
    return None


def max_output_tokens(api: str, model: str | None, body: Mapping[str, Any]) -> int | None:
    """The output limit a Bedrock request body sets, by API and family."""
    if api == "converse":
        value = (body.get("inferenceConfig") or {}).get("maxTokens")
    else:
        kind = family(model)
        if kind == "anthropic":
            value = body.get("max_tokens")
        elif kind == "nova":
            value = (body.get("inferenceConfig") or {}).get("max_new_tokens")
        elif kind == "titan":
            value = (body.get("textGenerationConfig") or {}).get("maxTokenCount")
        elif kind == "meta":
            value = body.get("max_gen_len")
        else:
            value = body.get("max_tokens")
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


# -- event-stream framing -----------------------------------------------------------------------------------
def decode_frames(data: bytes) -> tuple[list[tuple[dict[str, Any], bytes]], bool]:
    """The messages of an event stream as (headers, payload), and whether ``data`` ended on a message
    boundary with every CRC right (False for a stream cut mid-message: what came whole is returned)."""
    spans, whole = _spans(data)
    messages = []
    for span in spans:
        message = _message(data, span)
        if message is None:
            return [(_headers(h), p) for h, p in messages], False
        messages.append(message)
    return [(_headers(h), p) for h, p in messages], whole


def _spans(data: bytes) -> tuple[list[tuple[int, int, int]], bool]:
    """(start, end, headers length) of each whole message, by the lengths in the preludes alone (their CRCs
    are checked where a message is read, :func:`_message`), and whether ``data`` ended on a message."""
    spans: list[tuple[int, int, int]] = []
    at, size, unpack = 0, len(data), struct.unpack_from
    while at + 16 <= size:
        total, headers_length = unpack("!II", data, at)
        end = at + total
        if total < 16 or end > size:
            return spans, False
        spans.append((at, end, headers_length))
        at = end
    return spans, at == size


def _message(data: bytes, span: tuple[int, int, int]) -> tuple[bytes, bytes] | None:
    """(raw headers, payload) of the message at ``span``, or None if a CRC does not match."""
    at, end, headers_length = span
    crc32, unpack = binascii.crc32, struct.unpack_from
    if crc32(data[at:at + 8]) != unpack("!I", data, at + 8)[0] or crc32(data[at:end - 4]) != unpack(
            "!I", data, end - 4)[0]:
        return None
    return data[at + 12:at + 12 + headers_length], data[at + 12 + headers_length:end - 4]


def _type_at(data: bytes, span: tuple[int, int, int]) -> str | None:
    at, _, headers_length = span
    return _event_type(data[at + 12:at + 12 + headers_length])


_FIXED = {0: 0, 1: 0, 2: 1, 3: 2, 4: 4, 5: 8, 8: 8, 9: 16}  # header value type -> size (bools: none)


def _headers(raw: bytes) -> dict[str, Any]:
    found: dict[str, Any] = {}
    at = 0
    while at < len(raw):
        length = raw[at]
        name = raw[at + 1:at + 1 + length].decode("utf-8", "replace")
        kind = raw[at + 1 + length]
        at += 2 + length
        if kind in (6, 7):  # bytes, string: a 2-byte length first
            (size,) = struct.unpack_from("!H", raw, at)
            value = raw[at + 2:at + 2 + size]
            found[name] = value.decode("utf-8", "replace") if kind == 7 else value
            at += 2 + size
        elif kind in _FIXED:
            found[name] = kind == 0 if kind in (0, 1) else raw[at:at + _FIXED[kind]]
            at += _FIXED[kind]
        else:
            break
    return found


def _event_type(headers: bytes) -> str | None:
    """The ``:event-type`` string header of a message's raw headers (found without parsing them all)."""
    at = headers.find(b"\x0b:event-type\x07")
    if at < 0:
        return None
    at += 13
    (size,) = struct.unpack_from("!H", headers, at)
    return headers[at + 2:at + 2 + size].decode("utf-8", "replace")


# -- usage ---------------------------------------------------------------------------------------------------
_CONVERSE_STOP = ("messageStop", "metadata")
_HEADER_COUNTS = {b"x-amzn-bedrock-input-token-count": "inputTokens",
                  b"x-amzn-bedrock-output-token-count": "outputTokens",
                  b"x-amzn-bedrock-cache-read-input-token-count": "cacheReadInputTokens",
                  b"x-amzn-bedrock-cache-write-input-token-count": "cacheWriteInputTokens"}


def usage_body(api: str, model: str | None, content: bytes, content_type: str,
               header_pairs: Any = ()) -> tuple[dict[str, Any] | None, str, bool]:
    """(a body to extract usage from, the wire format to extract it as, whether the response was complete)
    of a Bedrock response. Of a stream only the chunks usage is in are decoded: the first and the last three
    (the Anthropic ``message_delta``, Nova's ``metadata``, the invocation metrics). The format is
    ``converse`` (genai-prices' ``aws`` usage keys) or ``messages``
    (an Anthropic model's own usage). ``header_pairs``: the response headers, as (bytes, bytes) pairs."""
    streamed = EVENTSTREAM in content_type
    if api == "converse":
        if not streamed:
            return json_object(content), "converse", True
        spans, whole = _spans(content)
        found = next((span for span in reversed(spans) if _type_at(content, span) == "metadata"), None)
        message = _message(content, found) if found is not None else None
        body = json_object(message[1]) if message is not None else None
        return body, "converse", whole and bool(spans) and _type_at(content, spans[-1]) in _CONVERSE_STOP
    kind = family(model)
    if streamed:  # usage is in the first chunk and the last few: only those are read
        spans, whole = _spans(content)
        chunk_spans = [span for span in spans if _type_at(content, span) == "chunk"]
        picked = chunk_spans if len(chunk_spans) <= 4 else [chunk_spans[0], *chunk_spans[-3:]]
        messages = [_message(content, span) for span in picked]
        chunks = [c for c in (_chunk(m[1]) for m in messages if m is not None) if c is not None]
        body, usage_api = _stream_usage(kind, chunks)
        return body, usage_api, whole and bool(chunks) and None not in messages and _final(chunks[-1])
    decoded = json_object(content)
    body, usage_api = _body_usage(kind, decoded) if decoded is not None else (None, "converse")
    if body is None:
        body, usage_api = _header_usage(header_pairs), "converse"
    return body, usage_api, True


def _chunk(payload: bytes) -> dict[str, Any] | None:
    """The model's own chunk inside a ``chunk`` event: JSON, base64-encoded in ``bytes``."""
    event = json_object(payload)
    if event is None or not isinstance(event.get("bytes"), str):
        return None
    try:
        return json_object(base64.b64decode(event["bytes"]))
    except ValueError:
        return None


def _final(chunk: Mapping[str, Any]) -> bool:
    return "amazon-bedrock-invocationMetrics" in chunk or chunk.get("type") == "message_stop"


def _counts(**counts: Any) -> dict[str, Any] | None:
    usage = {key: value for key, value in counts.items() if value is not None}
    return {"usage": usage} if "inputTokens" in usage or "outputTokens" in usage else None


def _body_usage(kind: str | None, body: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str]:
    if kind == "anthropic" and isinstance(body.get("usage"), Mapping):
        return {"usage": body["usage"]}, "messages"
    if kind == "nova" and isinstance(usage := body.get("usage"), Mapping):
        return _counts(inputTokens=usage.get("inputTokens"), outputTokens=usage.get("outputTokens"),
                       cacheReadInputTokens=usage.get("cacheReadInputTokenCount"),
                       cacheWriteInputTokens=usage.get("cacheWriteInputTokenCount")), "converse"
    if kind == "titan" and "inputTextTokenCount" in body:
        results = body.get("results") or []
        output = sum(r.get("tokenCount") or 0 for r in results if isinstance(r, Mapping))
        return _counts(inputTokens=body["inputTextTokenCount"], outputTokens=output), "converse"
    if kind == "meta" and "prompt_token_count" in body:
        return _counts(inputTokens=body["prompt_token_count"],
                       outputTokens=body.get("generation_token_count")), "converse"
    return None, "converse"


def _stream_usage(kind: str | None, chunks: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, str]:
    if not chunks:
        return None, "converse"
    if kind == "anthropic":
        start = next((c for c in chunks if c.get("type") == "message_start"), None)
        message = start.get("message") if start else None
        if isinstance(message, Mapping) and isinstance(message.get("usage"), Mapping):
            usage = dict(message["usage"])
            for chunk in chunks:
                if chunk.get("type") == "message_delta" and isinstance(chunk.get("usage"), Mapping):
                    usage.update({k: v for k, v in chunk["usage"].items() if v is not None})
            return {"usage": usage}, "messages"
    elif kind == "nova":
        meta = next((c["metadata"] for c in reversed(chunks) if isinstance(c.get("metadata"), Mapping)), None)
        if meta is not None and (found := _body_usage("nova", meta)[0]) is not None:
            return found, "converse"
    elif kind == "titan":
        first, last = chunks[0], chunks[-1]
        if "inputTextTokenCount" in first:
            return _counts(inputTokens=first["inputTextTokenCount"],
                           outputTokens=last.get("totalOutputTextTokenCount")), "converse"
    elif kind == "meta" and chunks[0].get("prompt_token_count") is not None:
        return _counts(inputTokens=chunks[0]["prompt_token_count"],
                       outputTokens=chunks[-1].get("generation_token_count")), "converse"
    metrics = chunks[-1].get("amazon-bedrock-invocationMetrics")
    if isinstance(metrics, Mapping):
        return _counts(inputTokens=metrics.get("inputTokenCount"),
                       outputTokens=metrics.get("outputTokenCount"),
                       cacheReadInputTokens=metrics.get("cacheReadInputTokenCount"),
                       cacheWriteInputTokens=metrics.get("cacheWriteInputTokenCount")), "converse"
    return None, "converse"


def stream_text(api: str, model: str | None, content: bytes) -> str:
    """The text a Bedrock event stream carried, as far as it arrived (what a stream cut before its usage is
    counted from): Converse's ``contentBlockDelta`` text, tool-input and reasoning deltas, or the model
    family's own chunks (Anthropic's ``content_block_delta``, Nova's ``contentBlockDelta``, Titan's
    ``outputText``, Llama's ``generation``)."""
    kind = "converse" if api == "converse" else family(model)
    pieces: list[str] = []
    for headers, payload in decode_frames(content)[0]:
        event = headers.get(":event-type")
        if api == "converse":
            body = json_object(payload) if event == "contentBlockDelta" else None
        elif event == "chunk":
            body = _chunk(payload)
        else:
            body = None
        if body is None:
            continue
        if kind in ("converse", "nova"):
            block = body.get("contentBlockDelta") if kind == "nova" else body
            delta = block.get("delta") if isinstance(block, Mapping) else None
            if isinstance(delta, Mapping):
                reasoning = delta.get("reasoningContent")
                pieces += [v for v in (delta.get("text"), (delta.get("toolUse") or {}).get("input"),
                                       reasoning.get("text") if isinstance(reasoning, Mapping) else None)
                           if isinstance(v, str)]
        elif kind == "anthropic":
            delta = body.get("delta") if body.get("type") == "content_block_delta" else None
            if isinstance(delta, Mapping):
                found = map(delta.get, ("text", "partial_json", "thinking"))
                pieces += [v for v in found if isinstance(v, str)]
        elif isinstance(text := body.get("outputText" if kind == "titan" else "generation"), str):
            pieces.append(text)
    return "".join(pieces)


def _header_usage(pairs: Any) -> dict[str, Any] | None:
    counts: dict[str, Any] = {}
    for key, value in pairs:
        name = _HEADER_COUNTS.get(key.lower() if isinstance(key, bytes) else key.lower().encode("latin-1"))
        if name is not None:
            text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
            counts[name] = int(text) if text.strip().isdigit() else text
    return _counts(**counts)


