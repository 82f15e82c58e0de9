"""Token usage out of a raw response body, in genai-prices' usage keys.

>>> extract_usage({"model": "gpt-4.1", "usage": {"prompt_tokens": 12, "completion_tokens": 3}}, api="chat")
('gpt-4.1', {'input_tokens': 12, 'output_tokens': 3})

The mappings are genai-prices' own extractors (one per wire format), compiled once into plain tuples and
walked here: genai-prices' ``Provider.extract_usage`` takes ~40 µs a body, this ~3 µs, and the test suite
checks both agree on every real body in ``tests/data/real_usages.json``. Where genai-prices is lenient we
are strict on purpose, because a miscounted call is worse than a warning: a present field of the wrong type
(even an optional one), a fractional count, a negative count or an absurd one raises :class:`UsageError`.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ..core import wire_json
from ..core.warn import warn_once
from ..errors import UsageError
from .genai import import_genai_prices

__all__ = ["API_FLAVORS", "MAX_COUNT", "RECORDED_UNKNOWN", "NoUsage", "UsageError", "extract_usage",
           "json_object", "usage_keys", "usage_part", "warn_unreadable"]

API_FLAVORS = ("chat", "responses", "embeddings", "completions", "messages", "gemini", "converse")
MAX_COUNT = 10**12
"""Counts above this are rejected as absurd (a trillion tokens in one call is a bug, not a bill)."""

# wire format -> (genai-prices provider id, api_flavor). Any OpenAI-compatible server speaks OpenAI's wire
# format, so the extractor is chosen by wire format, never by host. Legacy completions report usage exactly
# like chat (prompt_tokens / completion_tokens), and genai-prices has no separate flavor for them.
_GENAI_FLAVOR = {
    "chat": ("openai", "chat"),
    "completions": ("openai", "chat"),
    "responses": ("openai", "responses"),
    "embeddings": ("openai", "embeddings"),
    "messages": ("anthropic", "default"),
    "gemini": ("google", "default"),
    "converse": ("aws", "default"),  # Bedrock Converse (and every Bedrock body, read into its shape)
}


class NoUsage(UsageError):
    """The response has no usage object at all (its key is missing or null): the provider reported nothing,
    where any other :class:`UsageError` is a report that cannot be read."""


def extract_usage(body: Mapping[str, Any], *, api: str) -> tuple[str | None, dict[str, int]]:
    """(model reported by the response, usage dict with genai-prices usage keys) from a response body.

    Counts are ints; zero counts are left out. ``input_tokens`` counts every input token, cached or not.
    Raises :class:`NoUsage` for a body without a usage object, :class:`UsageError` for one without
    believable usage, ``ValueError`` for an unknown ``api``.
    """
    extractor = _extractors.get(api)
    if extractor is None:
        extractor = _compile(api)
    return extractor.extract(body)


RECORDED_UNKNOWN = "the call is recorded with its tokens unknown and its cost empty (unpriced), never as $0"
"""How a warning about a response whose usage is not known ends: what its call becomes."""


def warn_unreadable(exc: Exception) -> None:
    """Say (once per kind of error) that a response's usage could not be read: its call is kept without
    tokens and unpriced (``usage_source="unknown"``), whether it is recorded at once or made later from the
    journal."""
    warn_once(f"usage:{type(exc).__name__}", f"could not read token usage from a response ({exc}); "
              f"{RECORDED_UNKNOWN}")


def usage_part(body: dict[str, Any], *, api: str) -> dict[str, Any] | None:
    """What :func:`extract_usage` reads of a response body (its usage object and model, as they came; no
    model for Bedrock, whose model is the request path's), for reading later; None when the body has no usage
    object (``extract_usage`` then says what is wrong), or when the wire format's usage or model is not a
    top-level key of the body (the body is then read whole, at once).

    >>> usage_part({"id": "c1", "choices": [], "model": "gpt-4.1", "usage": {"prompt_tokens": 1}}, api="chat")
    {'usage': {'prompt_tokens': 1}, 'model': 'gpt-4.1'}
    """
    extractor = _extractors.get(api)
    if extractor is None:
        extractor = _compile(api)
    if extractor.usage_key is None:
        return None
    usage = body.get(extractor.usage_key)
    if type(usage) is not dict:
        return None
    part = {extractor.usage_key: usage}
    if extractor.model_key is not None and (model := body.get(extractor.model_key)) is not None:
        part[extractor.model_key] = model
    return part


class _Extractor:
    """One genai-prices ``UsageExtractor``, flattened to tuples and grouped by the first key of each path.

    A group whose key is absent costs one dict lookup, and a list matched by ``ArrayMatch`` (Gemini's
    per-modality details) is indexed once per body instead of scanned once per mapping.
    """

    __slots__ = ("api", "groups", "model_key", "model_path", "root", "usage_key")

    def __init__(self, api: str, extractor: Any) -> None:
        self.api = api
        self.root = _steps(extractor.root)
        self.model_path = _steps(extractor.model_path)
        if any(type(step) is not str for step in self.root):
            raise TypeError(f"unsupported genai-prices extractor root {extractor.root!r}")
        # The top-level keys usage_part() takes: where extract() reads a usage object and a model each one key
        # deep. Deeper (an object that may hold the answer's text too), usage_part() takes nothing.
        flat = len(self.root) == 1 and len(self.model_path) <= 1 and all(
            type(step) is str for step in self.model_path)
        self.usage_key: str | None = self.root[0] if flat else None
        self.model_key: str | None = (  # (Bedrock: the model is the request path's id; bodies carry none)
            self.model_path[0] if flat and self.model_path and api != "converse" else None)
        groups: dict[tuple[str, str | None], list[tuple[Any, ...]]] = {}
        supported = extractor._reported_usage_keys  # mappings to other keys are skipped by genai-prices too
        for mapping in extractor.mappings:
            if mapping.dest not in supported:
                continue
            key, *tail = steps = _steps(mapping.path)
            match = tail.pop(0) if tail and isinstance(tail[0], _ArrayMatch) else None
            if type(key) is not str or any(type(step) is not str for step in tail):
                raise TypeError(f"unsupported genai-prices extractor path {mapping.path!r}")
            label = _label(self.root + steps)
            member = (match and match.value, tuple(tail), mapping.dest, mapping.required, label)
            groups.setdefault((key, match and match.field), []).append(member)
        self.groups = tuple(
            (key, field, next((m[4] for m in members if m[3]), None), tuple(members))
            for (key, field), members in groups.items()
        )

    def extract(self, body: Any) -> tuple[str | None, dict[str, int]]:
        api = self.api
        if type(body) is not dict and not isinstance(body, Mapping):
            raise UsageError(f"{api} response body must be a JSON object, got {_type_name(body)}")
        model = _optional_walk(body, self.model_path)
        if type(model) is not str:
            model = None
        usage = body
        for step in self.root:
            usage = usage.get(step)
            if usage is None:
                raise NoUsage(f"{api} response has no usage (`{_label(self.root)}` is missing or null)")
            if type(usage) is not dict and not isinstance(usage, Mapping):
                raise UsageError(f"{api} response: `{_label(self.root)}` must be an object, "
                                 f"got {_type_name(usage)}")
        counts: dict[str, int] = {}
        for key, field, required_label, members in self.groups:
            head = usage.get(key)
            if head is None:
                if required_label is not None:
                    raise UsageError(f"{api} response: `{required_label}` is missing or null")
                continue
            index = None if field is None else _index(head, field, api, members[0][4])
            for match, tail, dest, required, label in members:
                value = head if index is None else index.get(match)
                for step in tail:
                    if value is None:
                        break
                    if type(value) is not dict and not isinstance(value, Mapping):
                        raise UsageError(f"{api} response: `{label}` is inside a {_type_name(value)}, "
                                         f"expected an object")
                    value = value.get(step)
                if value is None:
                    if required:
                        raise UsageError(f"{api} response: `{label}` is missing or null")
                    continue
                if type(value) is not int:
                    value = _whole_number(value, api, label)
                if value < 0:
                    raise UsageError(f"{api} response: `{label}` is negative ({value})")
                if value > MAX_COUNT:
                    raise UsageError(f"{api} response: `{label}` is absurdly large ({value:,} > 10**12)")
                counts[dest] = counts.get(dest, 0) + value
        if not counts and self.groups:
            raise UsageError(f"{api} response: `{_label(self.root)}` holds no token counts")
        return model, {key: count for key, count in counts.items() if count}


class _ArrayMatch:
    """genai-prices' ``ArrayMatch`` on ``ClauseEquals``: the first list item whose ``field`` equals
    ``value``, compared case-insensitively as ``ClauseEquals`` does."""

    __slots__ = ("field", "value")

    def __init__(self, field: str, value: str) -> None:
        self.field = field
        self.value = value.lower()

    def __str__(self) -> str:
        return f"[{self.field}={self.value.upper()}]"


def _index(items: Any, field: str, api: str, label: str) -> dict[str, Any]:
    """The first item of ``items`` per (lower-cased) value of ``field``."""
    if not isinstance(items, list | tuple):
        raise UsageError(f"{api} response: `{label}` is inside a {_type_name(items)}, expected a list")
    index: dict[str, Any] = {}
    for item in items:
        if isinstance(item, Mapping) and isinstance(found := item.get(field), str):
            index.setdefault(found.lower(), item)
    return index


def _optional_walk(data: Any, steps: tuple[Any, ...]) -> Any:
    for step in steps:
        if type(data) is not dict and not isinstance(data, Mapping):
            return None
        data = data.get(step) if type(step) is str else None
    return data


def _whole_number(value: Any, api: str, label: str) -> int:
    """An integral float or Decimal as int; anything else (bool, str, 1.5, nan) is an error."""
    if isinstance(value, float | Decimal) and not isinstance(value, bool):
        if math.isfinite(value) and value == int(value):
            return int(value)
        raise UsageError(f"{api} response: `{label}` must be a whole number of tokens, got {value!r}")
    raise UsageError(f"{api} response: `{label}` must be an integer, got {_type_name(value)} {value!r:.40}")


def _steps(path: Any) -> tuple[Any, ...]:
    from genai_prices.types import ArrayMatch, ClauseEquals

    steps = [path] if isinstance(path, str) else list(path)
    out: list[Any] = []
    for step in steps:
        if isinstance(step, str):
            out.append(step)
        elif isinstance(step, ArrayMatch) and isinstance(step.match, ClauseEquals):
            out.append(_ArrayMatch(step.field, step.match.equals))
        else:  # genai-prices data changed shape: refuse loudly rather than extract something else
            raise TypeError(f"unsupported genai-prices extractor path step {step!r}")
    return tuple(out)


def _label(steps: tuple[Any, ...]) -> str:
    return "".join(f".{step}" if type(step) is str else str(step) for step in steps)[1:]


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


_extractors: dict[str, _Extractor] = {}  # derived from the bundled genai-prices data; never changes
_compile_lock = threading.Lock()


def _compile(api: str) -> _Extractor:
    if api not in _GENAI_FLAVOR:
        raise ValueError(f"Unknown api {api!r}, allowed values: {', '.join(API_FLAVORS)}")
    with _compile_lock:
        if (done := _extractors.get(api)) is not None:
            return done
        import_genai_prices()
        from genai_prices.data_snapshot import get_snapshot

        provider_id, flavor = _GENAI_FLAVOR[api]
        provider = get_snapshot().find_provider(None, provider_id, None)
        found = next(e for e in provider.extractors or () if e.api_flavor == flavor)
        _extractors[api] = extractor = _Extractor(api, found)
        return extractor


def warm_extractors() -> None:
    """Compile every wire format's extractor now (imports genai-prices; used by ``pricing.warm``)."""
    for api in API_FLAVORS:
        _compile(api)


def usage_keys() -> frozenset[str]:
    """Every usage key genai-prices prices (``input_tokens``, ``cache_read_tokens``, ``web_searches``...)."""
    import_genai_prices()
    from genai_prices.units import _get_registry

    return frozenset(_get_registry()._reported_usage_keys)


def json_object(content: bytes) -> dict[str, Any] | None:
    """The JSON object a response body (or one stream event) holds; ``None`` for anything else."""
    try:
        body = wire_json.loads(content)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
