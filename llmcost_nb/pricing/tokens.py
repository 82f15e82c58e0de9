"""Token counting with tiktoken (encodings loaded lazily, once): plain text, chat messages with OpenAI's
per-message framing, and the request bodies of every API capture knows. Public through
:mod:`llmcost_nb.estimate`.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["APPROXIMATION", "TOOL_CALL_OUTPUT_TOKENS", "TokenCount", "count_message_tokens", "count_tokens",
           "count_tool_tokens", "encoding_name", "preload", "request_input_tokens"]

APPROXIMATION = "approx:4-chars-per-token"
DEFAULT_ENCODING = "o200k_base"
# Chat framing, as OpenAI documents it for gpt-3.5-turbo and later: every message costs 3 tokens besides its
# text, a ``name`` one more, and the reply is primed with 3.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING_TOKENS = 3
IMAGE_TOKENS = 85  # an image part at low detail; larger images cost more (marked approximate)
# Function definitions (``tools`` / legacy ``functions``), after OpenAI's cookbook "How to count tokens with
# tiktoken" (num_tokens_for_tools): OpenAI does not document how it renders them, these constants were fitted
# by the cookbook for gpt-4o / gpt-4o-mini (``cl100k`` models: 10 per function instead of 7). Approximate.
TOOL_TOKENS = {"function": 7, "cl100k_function": 10, "properties": 3, "property": 3, "enum": -3,
               "enum_item": 3, "end": 12}
# A tool call: its name and arguments, plus a framing OpenAI does not document, fitted on real gpt-4o usage
# (benchmarks/bench_estimate.py): 9 tokens per call in the prompt's history (with the tool result's message),
# 7 per call when the model writes it.
TOOL_CALL_TOKENS = 9
TOOL_CALL_OUTPUT_TOKENS = 7

_encodings: dict[str, Any] = {}  # name -> tiktoken.Encoding, or None when it could not be loaded
_encodings_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class TokenCount:
    """A token count and how it was obtained; ``int(count)`` gives the number."""

    tokens: int
    encoding: str
    approximate: bool

    def __int__(self) -> int:
        return self.tokens

    def __add__(self, other: TokenCount) -> TokenCount:
        return TokenCount(self.tokens + other.tokens, self.encoding if self.encoding == other.encoding
                          else f"{self.encoding}+{other.encoding}", self.approximate or other.approximate)


_preloading: list[threading.Thread] = []


def preload() -> None:
    """Import tiktoken in a background daemon thread, once per process (~20 ms; its encodings still load on
    first use). A stream calls this when it starts: if it is still open when the interpreter exits, it is
    counted by an exit handler, which can no longer import tiktoken (it starts a thread pool's module)."""
    with _encodings_lock:
        if _preloading:
            return
        _preloading.append(thread := threading.Thread(target=_import_tiktoken, name="llmcost-tiktoken",
                                                      daemon=True))
    # The one module of tiktoken's that cannot be imported once the exit began, imported here (~1 ms): a
    # background thread starved of the GIL by the calls' thread may not have reached it by then.
    import concurrent.futures.thread  # noqa: F401

    thread.start()


def _import_tiktoken() -> None:
    with contextlib.suppress(Exception):  # not installed or broken: counting says so when it is needed
        import tiktoken.model  # noqa: F401


def encoding_name(model: str | None) -> tuple[str, bool]:
    """The tiktoken encoding for ``model`` and whether counts with it are approximate.

    >>> encoding_name("gpt-4.1"), encoding_name("gpt-4"), encoding_name("claude-sonnet-4-5")
    (('o200k_base', False), ('cl100k_base', False), ('o200k_base', True))
    """
    if model:
        from tiktoken.model import encoding_name_for_model

        name = model.rsplit("/", 1)[-1]  # openai/gpt-4.1 on a router
        try:
            return encoding_name_for_model(name), False
        except KeyError:
            pass
    return DEFAULT_ENCODING, True


def _encoding(name: str) -> Any:
    """The loaded tiktoken encoding, or None when it cannot be loaded (tried once per process)."""
    if name in _encodings:
        return _encodings[name]
    with _encodings_lock:
        if name not in _encodings:
            import tiktoken

            try:
                _encodings[name] = tiktoken.get_encoding(name)
            except Exception as exc:
                from ..core.warn import warn_once

                _encodings[name] = None
                warn_once(f"tiktoken:{name}", f"cannot load the tiktoken encoding {name} "
                          f"({type(exc).__name__}); token estimates use ~4 characters per token and are "
                          "marked approximate")
    return _encodings[name]


def count_tokens(text: str, *, model: str | None = "gpt-4o") -> TokenCount:
    """Tokens of plain ``text`` in ``model``'s encoding.

    >>> count_tokens("Hello world", model="gpt-4.1").tokens
    2
    """
    name, approximate = encoding_name(model)
    encoding = _encoding(name)
    if encoding is None:
        return TokenCount(math.ceil(len(text) / 4), APPROXIMATION, True)
    return TokenCount(len(encoding.encode(text, disallowed_special=())), name, approximate)


def _content_tokens(content: Any, count: Any) -> tuple[int, bool]:
    """Tokens of a message's content: a string, or a list of parts (text, image, ...)."""
    if content is None:
        return 0, False
    if isinstance(content, str):
        return count(content), False
    if isinstance(content, Mapping):
        content = [content]
    total, approximate = 0, False
    for part in content:
        if isinstance(part, str):
            total += count(part)
        elif isinstance(part, Mapping):
            kind = str(part.get("type") or next(iter(part), ""))  # Converse's parts: {"image": {...}}, ...
            text = part.get("text")
            if isinstance(text, str):
                total += count(text)
            elif "image" in kind or "file" in kind or "audio" in kind or "document" in kind:
                total, approximate = total + IMAGE_TOKENS, True
            elif isinstance(part.get("content"), str | list):  # tool results
                inner, approx = _content_tokens(part["content"], count)
                total, approximate = total + inner, approximate or approx
            else:
                total, approximate = total + count(json.dumps(part, default=str)), True
    return total, approximate


def _tool_calls(value: Any) -> list[tuple[str, str]] | None:
    """(name, arguments) of an assistant message's ``tool_calls`` (or legacy ``function_call``), or None
    when they are not in OpenAI's shape."""
    calls = [value] if isinstance(value, Mapping) else value
    if not isinstance(calls, list):
        return None
    found = []
    for call in calls:
        function = call.get("function", call) if isinstance(call, Mapping) else None
        if not isinstance(function, Mapping):
            return None
        arguments = function.get("arguments")
        found.append((str(function.get("name") or ""),
                      arguments if isinstance(arguments, str) else json.dumps(arguments, default=str)))
    return found


def count_message_tokens(messages: Sequence[Mapping[str, Any]] | str, *,
                         model: str | None = "gpt-4o") -> TokenCount:
    """Tokens a list of chat messages costs as input, with OpenAI's per-message framing.

    >>> count_message_tokens([{"role": "user", "content": "Hello world"}], model="gpt-4.1").tokens
    9
    """
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    name, approximate = encoding_name(model)
    encoding = _encoding(name)
    if encoding is None:
        name, approximate = APPROXIMATION, True

        def count(text: str) -> int:
            return math.ceil(len(text) / 4)
    else:
        def count(text: str) -> int:
            return len(encoding.encode(text, disallowed_special=()))

    total = REPLY_PRIMING_TOKENS
    for message in messages:
        if not isinstance(message, Mapping):
            raise TypeError("a chat message must be a dict with 'role' and 'content', got "
                            f"{type(message).__name__}")
        total += TOKENS_PER_MESSAGE
        for key, value in message.items():
            if key == "content":
                tokens, approx = _content_tokens(value, count)
                total, approximate = total + tokens, approximate or approx
            elif key == "name" and isinstance(value, str):
                total += count(value) + TOKENS_PER_NAME
            elif key == "tool_call_id":  # not shown to the model as text (measured)
                continue
            elif key in ("tool_calls", "function_call") and _tool_calls(value) is not None:
                calls = _tool_calls(value)
                total += sum(TOOL_CALL_TOKENS + count(name) + count(arguments) for name, arguments in calls)
                approximate = True
            elif isinstance(value, str):
                total += count(value)
            elif value is not None:  # tool_calls and the like
                total, approximate = total + count(json.dumps(value, default=str)), True
    return TokenCount(total, name, approximate)


def _encoder(model: str | None) -> tuple[Any, str, bool]:
    """(count(text) -> int, encoding name, approximate) for ``model``."""
    name, approximate = encoding_name(model)
    encoding = _encoding(name)
    if encoding is None:
        return (lambda text: math.ceil(len(text) / 4)), APPROXIMATION, True
    return (lambda text: len(encoding.encode(text, disallowed_special=()))), name, approximate


def count_tool_tokens(tools: Sequence[Mapping[str, Any]], *, model: str | None = "gpt-4o") -> TokenCount:
    """Input tokens of a request's function definitions (chat ``tools``, or legacy ``functions``), by the
    cookbook's rule: per function its start, ``name:description``, per parameter ``name:type:description``
    and enum values, and a closing overhead (:data:`TOOL_TOKENS`). Always marked approximate.

    >>> count_tool_tokens([{"type": "function", "function": {"name": "get_time", "description": "Now.",
    ...                     "parameters": {"type": "object", "properties": {}}}}], model="gpt-4o").tokens
    23
    """
    count, name, _ = _encoder(model)
    per_function = TOOL_TOKENS["cl100k_function" if name == "cl100k_base" else "function"]
    total = 0
    for tool in tools:
        if not isinstance(tool, Mapping):
            continue
        function = tool.get("function") if isinstance(tool.get("function"), Mapping) else tool
        if not isinstance(function.get("name"), str):  # a built-in tool (web search, ...): its JSON
            total += count(json.dumps(tool, default=str))
            continue
        description = str(function.get("description") or "").removesuffix(".")
        total += per_function + count(f"{function['name']}:{description}")
        parameters = function.get("parameters")
        properties = parameters.get("properties") if isinstance(parameters, Mapping) else None
        if isinstance(properties, Mapping) and properties:
            total += TOOL_TOKENS["properties"]
            for key, spec in properties.items():
                spec = spec if isinstance(spec, Mapping) else {}
                total += TOOL_TOKENS["property"]
                enum = spec.get("enum")
                if isinstance(enum, list):
                    total += TOOL_TOKENS["enum"] + sum(TOOL_TOKENS["enum_item"] + count(str(item))
                                                       for item in enum)
                kind = spec.get("type", "")
                kind = "|".join(map(str, kind)) if isinstance(kind, list) else str(kind)
                total += count(f"{key}:{kind}:{str(spec.get('description') or '').removesuffix('.')}")
    if total:
        total += TOOL_TOKENS["end"]
    return TokenCount(total, name, True)


def request_input_tokens(api: str, body: Mapping[str, Any], model: str | None = None) -> TokenCount:
    """Estimated input tokens of a request body, for any API capture recognises (chat, responses,
    embeddings, completions, messages, gemini, and Bedrock's converse and invoke)."""
    model = model or body.get("model")
    text = lambda s: count_tokens(s, model=model)  # noqa: E731
    if api == "chat":
        result = count_message_tokens(body.get("messages") or [], model=model)
        tools = body.get("tools") or body.get("functions")
        if isinstance(tools, list) and tools:
            result = result + count_tool_tokens(tools, model=model)
        return result
    if api == "messages":
        system = body.get("system")
        messages = list(body.get("messages") or [])
        if system:
            messages.insert(0, {"role": "system", "content": system})
        return count_message_tokens(messages, model=model)
    if api == "responses":
        items = body.get("input") or []
        messages = [{"role": "user", "content": items}] if isinstance(items, str) else [
            item for item in items if isinstance(item, Mapping)]
        if body.get("instructions"):
            messages.insert(0, {"role": "system", "content": body["instructions"]})
        return count_message_tokens(messages, model=model)
    if api in ("embeddings", "completions"):
        value = body.get("input" if api == "embeddings" else "prompt") or ""
        values = [value] if isinstance(value, str | int) or (value and isinstance(value[0], int)) else value
        total = TokenCount(0, encoding_name(model)[0], False)
        for item in values:
            if isinstance(item, str):
                total = total + text(item)
            elif isinstance(item, list):  # already token ids
                total = total + TokenCount(len(item), total.encoding, False)
        return total
    if api == "gemini":
        contents = body.get("contents") or []
        system = body.get("systemInstruction") or body.get("system_instruction")
        parts = [p for c in ([system] if system else []) + list(contents) if isinstance(c, Mapping)
                 for p in c.get("parts") or []]
        tokens, _ = _content_tokens([p for p in parts if isinstance(p, Mapping)], lambda s: text(s).tokens)
        return TokenCount(tokens, encoding_name(model)[0], True)
    if api in ("converse", "invoke"):  # Bedrock: Converse's shape, or InvokeModel's body by model family
        from .bedrock import family

        kind = "converse" if api == "converse" else family(model)
        if kind == "anthropic":
            return request_input_tokens("messages", body, model)
        if kind in ("converse", "nova"):  # Nova's InvokeModel body is Converse's shape
            system = body.get("system")
            messages = [m for m in body.get("messages") or [] if isinstance(m, Mapping)]
            if system:
                messages.insert(0, {"role": "system", "content": system})
            return count_message_tokens(messages, model=model)
        prompt = body.get("inputText" if kind == "titan" else "prompt")
        if kind in ("titan", "meta") and isinstance(prompt, str):
            return text(prompt)
    return text(json.dumps(body, default=str))
