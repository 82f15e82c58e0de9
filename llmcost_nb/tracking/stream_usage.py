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
  names and arguments, plus 7 tokens of framing per chat tool call (fitted on real gpt-4o usage; Anthropic:
  text, thinking and tool-input deltas; Gemini: text parts and function calls; Responses: text, refusal and
  function-argument deltas).

Both with the model's tiktoken encoding: ``o200k_base`` for gpt-4o, gpt-4.1, gpt-4.5, the o-series and gpt-5,
``cl100k_base`` for gpt-4 and gpt-3.5; any other model (Claude, Gemini, Llama, ...) is counted with
``o200k_base`` as an approximation. The call is then marked ``usage_source="estimated"``: any count in it was
ours. Hidden reasoning tokens cannot be seen in a stream, so a reasoning model's output is undercounted.

Counting happens once, when the stream ends: the tee only keeps the raw chunks (see :mod:`.capture`).

A whole (not streamed) JSON response without a usage object (``"usage"`` missing or null; some
OpenAI-compatible servers leave it out) is counted the same way by :func:`body_usage`: the prompt from the
request, the output from the answer's text in the parsed body.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ..pricing import bedrock
from ..pricing.tokens import TOOL_CALL_OUTPUT_TOKENS, count_tokens, request_input_tokens

__all__ = ["body_usage", "stream_usage", "streamed_text"]


def stream_usage(api: str, content: bytes, request_body: Mapping[str, Any] | None, model: str | None,
                 reported: dict[str, int] | None, *,
                 output_reported: bool) -> tuple[dict[str, int], str | None]:
    """(usage in genai-prices keys, the model the stream names) of a stream whose usage was not reported in
    full. ``content`` is the stream's SSE text as received; ``reported`` what the provider sent (``None``:
    nothing), ``output_reported`` whether its output count is in it (else only the prompt's are)."""
    text, seen_model, calls = _read(api, content, model)
    model = seen_model or model
    if reported is None:
        prompt = request_input_tokens(api, request_body or {}, model).tokens
        usage = {"input_tokens": prompt} if prompt else {}
    else:
        usage = dict(reported)
    if not output_reported:
        usage.pop("output_tokens", None)
        usage.pop("output_reasoning_tokens", None)
        if output := _output_tokens(text, calls, model):
            usage["output_tokens"] = output
    return usage, seen_model


def body_usage(api: str, body: Mapping[str, Any], request_body: Mapping[str, Any] | None,
               model: str | None) -> tuple[dict[str, int], str | None]:
    """(usage in genai-prices keys, the model the body names) of a whole JSON response ``body`` that reported
    no usage: the prompt counted from ``request_body``, the output from the answer's text (content,
    refusals, reasoning text, tool calls' names and arguments), as :func:`stream_usage` counts a stream's.
    The usage is empty when there is nothing to count (no request body, no text)."""
    named = body.get("modelVersion" if api == "gemini" else "model")
    seen_model = named if isinstance(named, str) and named else None
    model = seen_model or model
    prompt = request_input_tokens(api, request_body, model).tokens if request_body else 0
    output = _output_tokens(*_body_text(api, body), model)
    usage = {key: count for key, count in (("input_tokens", prompt), ("output_tokens", output)) if count}
    return usage, seen_model


def _output_tokens(text: str, calls: int, model: str | None) -> int:
    """The output tokens of an answer seen: its text in the model's encoding, plus the framing of each
    OpenAI chat tool call it made."""
    return (count_tokens(text, model=model).tokens if text else 0) + TOOL_CALL_OUTPUT_TOKENS * calls


def _body_text(api: str, body: Mapping[str, Any]) -> tuple[str, int]:
    """(output text, OpenAI chat tool calls) of a whole response body, in each wire format's shape: what its
    stream would have carried as deltas (embeddings have none)."""
    texts: list[str] = []
    calls = 0

    def add(*values: Any) -> None:
        texts.extend(value for value in values if isinstance(value, str))

    if api == "completions":
        for choice in _dicts(body.get("choices")):
            add(choice.get("text"))
    elif api == "chat":
        for choice in _dicts(body.get("choices")):
            message = choice.get("message")
            if not isinstance(message, Mapping):
                continue
            content = message.get("content")
            add(content, message.get("refusal"), message.get("reasoning_content"), message.get("reasoning"))
            if isinstance(content, list):
                add(*(part.get("text") for part in _dicts(content)))
            functions = [c.get("function") for c in _dicts(message.get("tool_calls"))]
            functions.append(message.get("function_call"))
            for function in _dicts(functions):
                calls += 1
                add(function.get("name"), function.get("arguments"))
    elif api == "responses":
        for item in _dicts(body.get("output")):
            kind = item.get("type")
            if kind == "message":
                for part in _dicts(item.get("content")):
                    add(part.get("text"), part.get("refusal"))
            elif kind in ("function_call", "custom_tool_call"):
                add(item.get("name"), item.get("arguments"), item.get("input"))
    elif api == "messages":
        for block in _dicts(body.get("content")):
            add(block.get("text"), block.get("thinking"))
            if block.get("type") in ("tool_use", "server_tool_use"):
                add(block.get("name"), json.dumps(block.get("input") or {}))
    elif api == "gemini":
        for candidate in _dicts(body.get("candidates")):
            content = candidate.get("content")
            for part in _dicts(content.get("parts") if isinstance(content, Mapping) else None):
                add(part.get("text"))
                if isinstance(call := part.get("functionCall"), Mapping):
                    add(f"{call.get('name', '')}{json.dumps(call.get('args') or {})}")
    return "".join(texts), calls


def _dicts(items: Any) -> list[Mapping[str, Any]]:
    """The objects of a JSON list (nothing, if it is not one)."""
    return [item for item in items if isinstance(item, Mapping)] if isinstance(items, list) else []


# The output text of each wire format, read with regular expressions over the whole stream instead of
# parsing every event (a JSON parse per chunk costs more than the 3 µs a chunk may cost us): one per key,
# each starting with its literal key (which the regex engine finds at C speed), run only when the key occurs.
# A JSON string value is matched whole ("..." with its escapes), and a key cannot match inside another
# string, where every quote is escaped. The captured values are decoded by one json.loads of them all.
_STRING = rb'"([^"\\]*(?:\\.[^"\\]*)*)"'
_DELTA_TYPE = (rb'"type"\s*:\s*"response\.'
               rb'(?:output_text|refusal|function_call_arguments|custom_tool_call_input)\.delta"')
_KEYS = {
    # chat chunks: delta content, refusal, reasoning text some servers stream, tool-call names and arguments
    "chat": ("content", "refusal", "reasoning_content", "reasoning", "name", "arguments"),
    "completions": ("text",),
    "messages": ("text", "thinking", "partial_json", "name"),  # text, thinking, tool-input deltas; tool names
    "gemini": ("text",),
}
_VALUE = {key: re.compile(b'"' + key.encode() + rb'"\s*:\s*' + _STRING)
          for keys in _KEYS.values() for key in keys}
# the delta of a responses text, refusal or function-argument delta event, its "type" before or after it
_RESPONSES = re.compile(_DELTA_TYPE + rb'[^\n]*?"delta"\s*:\s*' + _STRING + rb'|"delta"\s*:\s*' + _STRING
                        + rb'(?=[^\n]*?' + _DELTA_TYPE + rb')')
_MODEL = re.compile(rb'"(?:model|modelVersion)"\s*:\s*' + _STRING)
_GEMINI_CALL = re.compile(rb'^data:[^\n]*"functionCall"[^\n]*$', re.MULTILINE)


def streamed_text(api: str, content: bytes) -> tuple[str, str | None]:
    """The output text of a stream's SSE ``content`` as its wire format streams it (see the module
    docstring), and the model its events name (None if none does)."""
    text, model, _ = _read(api, content)
    return text, model


def _read(api: str, content: bytes, model: str | None = None) -> tuple[str, str | None, int]:
    """(output text, model, OpenAI chat tool calls begun: each one's first chunk names it) of a stream's
    SSE ``content``, or of a Bedrock event stream (its body format known by ``model``)."""
    calls = 0
    if api in bedrock.APIS:
        return bedrock.stream_text(api, model, content), None, calls
    if api == "responses":  # two alternatives: the delta is in one group or the other
        pieces = [m[1] if m[1] is not None else m[2] for m in _RESPONSES.finditer(content)
                  ] if b'.delta"' in content else []
    elif api in _KEYS:
        keys = [key for key in _KEYS[api] if b'"' + key.encode() + b'"' in content]
        if len(keys) == 1:
            pieces = _VALUE[keys[0]].findall(content)
        else:  # several kinds of text (content and tool calls, ...): in stream order
            found = sorted((m.start(), m[1]) for key in keys for m in _VALUE[key].finditer(content))
            pieces = [value for _, value in found]
        if api == "chat" and "name" in keys:
            calls = len(_VALUE["name"].findall(content))
    else:
        return "", None, calls
    text = "".join(_decode_strings(pieces))
    if api == "gemini" and b'"functionCall"' in content:
        text += "".join(_gemini_calls(content))
    model_found = _MODEL.search(content)
    model = _decode_strings([model_found[1]])[0] if model_found else None
    return text, model or None, calls


def _decode_strings(raw: list[bytes]) -> list[str]:
    """JSON string bodies (escapes and all) decoded: one json.loads for all, else one each, skipping any
    that does not decode."""
    if not raw:
        return []
    try:
        return json.loads(b'["' + b'","'.join(raw) + b'"]')
    except ValueError:
        decoded = []
        for item in raw:
            try:
                decoded.append(json.loads(b'"' + item + b'"'))
            except ValueError:
                continue
        return decoded


def _gemini_calls(content: bytes) -> list[str]:
    """A Gemini function call's name and arguments, as the output counts them."""
    calls = []
    for line in _GEMINI_CALL.findall(content):
        try:
            event = json.loads(line[5:])
        except ValueError:
            continue
        for candidate in event.get("candidates") or ():
            for part in ((candidate.get("content") or {}).get("parts") or ()):
                if isinstance(call := part.get("functionCall"), dict):
                    calls.append(f"{call.get('name', '')}{json.dumps(call.get('args') or {})}")
    return calls
