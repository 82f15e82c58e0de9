"""Token usage of a stream whose provider did not report it all: counted with the model's tokenizer.

An OpenAI chat stream carries usage only with ``stream_options={"include_usage": True}``, and the SDK's
default is without it (so are LangChain's ``.stream()`` and litellm's ``stream=True`` on the wire, and many
OpenAI-compatible servers). A stream closed early (``break``, an exception inside the ``with``, ``close()``)
or cut by the network ends before its final usage event, though the provider bills the prompt and what it
generated. For those the recorder asks :func:`stream_usage`, which counts

- the **prompt** from the request body (:func:`llmcost_nb.pricing.tokens.request_input_tokens`: OpenAI's
  per-message framing of the cookbook's ``num_tokens_from_messages``, and function definitions by its
  ``num_tokens_for_tools`` rule), unless the provider already sent it (Anthropic's ``message_start``, a
  Gemini chunk's ``promptTokenCount``): then the provider's numbers, cache tokens included;
- the **output** from the streamed text seen: content, refusals, reasoning text a server streams, tool-call
  names and arguments (Anthropic: text, thinking and tool-input deltas; Gemini: text parts and function
  calls; Responses: text, refusal and function-argument deltas).

Both with the model's tiktoken encoding: ``o200k_base`` for gpt-4o, gpt-4.1, gpt-4.5, the o-series and gpt-5,
``cl100k_base`` for gpt-4 and gpt-3.5; any other model (Claude, Gemini, Llama, ...) is counted with
``o200k_base`` as an approximation. The call is then marked ``usage_source="estimated"``: any count in it was
ours. Hidden reasoning tokens cannot be seen in a stream, so a reasoning model's output is undercounted.

Counting happens once, when the stream ends: the tee only keeps the raw chunks (see :mod:`.capture`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..pricing.tokens import count_tokens, request_input_tokens

__all__ = ["streamed_text", "stream_usage"]


def stream_usage(api: str, payloads: list[bytes], request_body: Mapping[str, Any] | None, model: str | None,
                 reported: dict[str, int] | None, *, output_reported: bool) -> tuple[dict[str, int], str | None]:
    """(usage in genai-prices keys, the model the stream names) of a stream whose usage was not reported in
    full. ``payloads`` are the ``data:`` payloads of its SSE events; ``reported`` is what the provider sent
    (``None``: nothing), ``output_reported`` whether its output count is in it (else only the prompt is)."""
    text, seen_model = streamed_text(api, payloads)
    model = seen_model or model
    if reported is None:
        prompt = request_input_tokens(api, request_body or {}, model).tokens
        usage = {"input_tokens": prompt} if prompt else {}
    else:
        usage = dict(reported)
    if not output_reported:
        usage.pop("output_tokens", None)
        usage.pop("output_reasoning_tokens", None)
        output = count_tokens(text, model=model).tokens if text else 0
        if output:
            usage["output_tokens"] = output
    return usage, seen_model


def streamed_text(api: str, payloads: list[bytes]) -> tuple[str, str | None]:
    """The output text of a stream's events as its wire format streams it (see the module docstring), and
    the model the events name (None if none does)."""
    events = _events(payloads)
    return _READERS.get(api, _no_text)(events)


def _events(payloads: list[bytes]) -> list[Any]:
    """The JSON of each payload; one ``json.loads`` for all of them when they are all valid (several times
    faster than one call each), else one each, skipping what does not parse (a payload cut mid-way)."""
    if not payloads:
        return []
    try:
        return json.loads(b"[" + b",".join(payloads) + b"]")
    except ValueError:
        events = []
        for payload in payloads:
            try:
                events.append(json.loads(payload))
            except ValueError:
                continue
        return events


def _chat_text(events: list[Any]) -> tuple[str, str | None]:
    parts: list[str] = []
    model = None
    for event in events:
        if not isinstance(event, dict):
            continue
        if model is None and isinstance(event.get("model"), str):
            model = event["model"]
        for choice in event.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta")
            if not isinstance(delta, dict):
                if isinstance(choice.get("text"), str):  # legacy completions
                    parts.append(choice["text"])
                continue
            for key in ("content", "refusal", "reasoning_content", "reasoning"):
                value = delta.get(key)
                if isinstance(value, str):
                    parts.append(value)
            calls = delta.get("tool_calls")
            if isinstance(delta.get("function_call"), dict):
                calls = [*(calls or ()), {"function": delta["function_call"]}]
            for call in calls or ():
                function = call.get("function") if isinstance(call, dict) else None
                if isinstance(function, dict):
                    parts.extend(v for v in (function.get("name"), function.get("arguments")) if isinstance(v, str))
    return "".join(parts), model


_RESPONSES_DELTAS = {"response.output_text.delta", "response.refusal.delta",
                     "response.function_call_arguments.delta", "response.custom_tool_call_input.delta"}


def _responses_text(events: list[Any]) -> tuple[str, str | None]:
    parts: list[str] = []
    model = None
    for event in events:
        if not isinstance(event, dict):
            continue
        kind = event.get("type")
        if kind in _RESPONSES_DELTAS and isinstance(event.get("delta"), str):
            parts.append(event["delta"])
        elif model is None and isinstance(response := event.get("response"), dict) and isinstance(
                response.get("model"), str):
            model = response["model"]
    return "".join(parts), model


def _messages_text(events: list[Any]) -> tuple[str, str | None]:
    parts: list[str] = []
    model = None
    for event in events:
        if not isinstance(event, dict):
            continue
        kind = event.get("type")
        if kind == "content_block_delta" and isinstance(delta := event.get("delta"), dict):
            for key in ("text", "thinking", "partial_json"):
                if isinstance(delta.get(key), str):
                    parts.append(delta[key])
        elif kind == "content_block_start" and isinstance(block := event.get("content_block"), dict):
            if isinstance(block.get("name"), str):  # a tool_use block: its name is output too
                parts.append(block["name"])
        elif kind == "message_start" and isinstance(message := event.get("message"), dict):
            model = message.get("model") if isinstance(message.get("model"), str) else None
    return "".join(parts), model


def _gemini_text(events: list[Any]) -> tuple[str, str | None]:
    parts: list[str] = []
    model = None
    for event in events:
        if not isinstance(event, dict):
            continue
        if model is None and isinstance(event.get("modelVersion"), str):
            model = event["modelVersion"]
        for candidate in event.get("candidates") or ():
            content = candidate.get("content") if isinstance(candidate, dict) else None
            for part in (content.get("parts") if isinstance(content, dict) else None) or ():
                if not isinstance(part, dict):
                    continue
                if isinstance(part.get("text"), str):
                    parts.append(part["text"])
                elif isinstance(call := part.get("functionCall"), dict):
                    parts.append(f"{call.get('name', '')}{json.dumps(call.get('args') or {})}")
    return "".join(parts), model


def _no_text(events: list[Any]) -> tuple[str, str | None]:
    return "", None


_READERS = {"chat": _chat_text, "completions": _chat_text, "responses": _responses_text,
            "messages": _messages_text, "gemini": _gemini_text}
