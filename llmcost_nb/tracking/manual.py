"""The manual side of the public API: record what capture could not see, log tokens, set prices."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..core.call import (
    FIELD_TO_USAGE_KEY,
    TOKEN_FIELDS,
    USAGE_KEY_TO_FIELD,
    Call,
    now_iso,
    parse_iso,
    to_pusd,
)
from ..core.columns import LOG_MANY_COLUMNS
from ..core.times import format_ts
from ..ledger.sqlite import Ledger, gc_paused
from ..pricing.pricer import warn_unpriced
from .recorder import record as _record
from .resolve import resolve_ledger
from .scope import Scope, current_scope, get_session

__all__ = [
    "disable", "enable", "log", "log_many", "record", "record_manual", "self_hosted", "set_price",
    "token_call", "track",
]

_OBJECT_TO_API = {
    "chat.completion": "chat",
    "response": "responses",
    "list": "embeddings",
    "text_completion": "completions",
}
_API_TO_PROVIDER = {"messages": "anthropic", "gemini": "google"}


def enable() -> None:
    """Capture every LLM call from now on (``track()`` and ``%load_ext llmcost_nb`` do this for you)."""
    from . import capture

    capture.install()


def track(*, tags: Mapping[str, Any] | None = None, ledger: Ledger | str | Path | None = None,
          name: str | None = None) -> Scope:
    """Capture every LLM call inside the ``with`` (or ``async with``) block; see :class:`Scope`.
    Switches capture on (like :func:`enable`): the block records even after :func:`disable`."""
    enable()
    return Scope(tags=tags, ledger=ledger, kind="track", name=name)


def disable() -> None:
    """Stop capturing; the HTTP libraries are restored exactly."""
    from . import capture

    capture.uninstall()


def _body(response: Any) -> dict[str, Any]:
    if isinstance(response, Mapping):
        return dict(response)
    if hasattr(response, "model_dump"):  # openai, anthropic and google-genai responses are pydantic models
        return response.model_dump(mode="json", by_alias=True, exclude_none=True)
    raise TypeError(f"cannot record a {type(response).__name__}: pass an SDK response object or its dict")


def _api_of(body: Mapping[str, Any]) -> str:
    if "usageMetadata" in body:
        return "gemini"
    if body.get("type") == "message":
        return "messages"
    if (api := _OBJECT_TO_API.get(body.get("object", ""))) is not None:
        return api
    raise ValueError(
        "cannot tell which API this response came from (expected an OpenAI ChatCompletion, Response or "
        "embeddings list, an Anthropic Message or a Gemini response); pass api='chat'|'responses'|"
        "'embeddings'|'messages'|'gemini'"
    )


def record(response: Any, *, tags: Mapping[str, Any] | None = None, api: str | None = None,
           provider: str | None = None, latency_ms: float | None = None,
           ledger: Ledger | str | Path | None = None) -> Call:
    """Record a response captured some other way (an SDK response object or its raw dict).

    >>> llmcost_nb.record(anthropic_message, tags={"team": "search"})   # doctest: +SKIP
    """
    from ..pricing.usage import extract_usage

    body = _body(response)
    api = api or _api_of(body)
    model, usage = extract_usage(body, api=api)
    call = Call(provider=provider or _API_TO_PROVIDER.get(api), api=api, model=model, model_requested=model,
                latency_ms=latency_ms, request_id=body.get("id") or body.get("responseId"))
    call.set_usage(usage)
    return record_manual(call, tags, ledger)


def record_manual(call: Call, tags: Mapping[str, Any] | None, ledger: Ledger | str | Path | None) -> Call:
    scope, _ = current_scope()
    session = get_session()
    base = scope.tags if scope is not None else dict(session.tags)
    call.tags = {**base, **{str(k): str(v) for k, v in (tags or {}).items()}}
    call.session_id, call.attribution, call.usage_source = session.id, "manual", "manual"
    call.scope_id = scope.id if scope is not None else None
    return _record(call, scope, session, ledger=resolve_ledger(ledger))


def _token_counts(model: Any, input_tokens: Any, output_tokens: Any, more_tokens: Mapping[str, Any]
                  ) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """Checked token counts: (``Call`` token fields, other genai-prices usage keys, the usage pricing takes
    with its zero counts left out)."""
    if not isinstance(model, str) or not model:
        raise ValueError(f"model must be a non-empty string, got {model!r}")
    usage: dict[str, int] = {}
    fields: dict[str, int] = {}
    extra: dict[str, int] = {}
    counts = (("input_tokens", input_tokens), ("output_tokens", output_tokens), *more_tokens.items())
    for key, value in counts:
        if type(value) is not int or value < 0:  # bool is not a count either
            raise ValueError(f"{key} must be a non-negative int, got {value!r}")
        usage_key = FIELD_TO_USAGE_KEY.get(key, key)
        if value:
            usage[usage_key] = value
        if (field := USAGE_KEY_TO_FIELD.get(usage_key)) is not None:
            fields[field] = value
        elif value:
            extra[usage_key] = value
    return fields, extra, usage


def token_call(model: str, input_tokens: int, output_tokens: int, provider: str | None,
                more_tokens: Mapping[str, Any], **attributes: Any) -> tuple[Call, dict[str, int]]:
    """A manual call from token counts (and other ``Call`` attributes), and its usage as genai-prices keys
    (what pricing takes)."""
    fields, extra, usage = _token_counts(model, input_tokens, output_tokens, more_tokens)
    if "ts" not in attributes:
        attributes["ts"] = now_iso()
    call = Call(provider=provider, api="manual", model=model, model_requested=model,
                usage_extra=extra or None, **fields, **attributes)
    return call, usage


def log(*, model: str, input_tokens: int, output_tokens: int, provider: str | None = None,
        tags: Mapping[str, Any] | None = None, ledger: Ledger | str | Path | None = None,
        **more_tokens: int) -> Call:
    """Log a call by its token counts; ``more_tokens``: cache_read_tokens, cache_write_tokens,
    reasoning_tokens, input_audio_tokens, output_audio_tokens or any genai-prices usage key.

    >>> llmcost_nb.log(model="gpt-4.1", input_tokens=1000, output_tokens=200).cost   # doctest: +SKIP
    Decimal('0.0036')
    """
    call, _ = token_call(model, input_tokens, output_tokens, provider, more_tokens)
    return record_manual(call, tags, ledger)


def log_many(rows: Iterable[Mapping[str, Any]], *, ledger: Ledger | str | Path | None = None) -> int:
    """Log many calls at once (imports, backfills) in one transaction; each row takes ``log``'s arguments
    plus an optional ``ts`` (ISO 8601 UTC). Returns the number of rows written; a bad row writes none."""
    target = resolve_ledger(ledger)
    session_id = get_session().id
    now = datetime.now(UTC)
    now_text = format_ts(now)
    price, tagset_id = target.pricer.price, target.tagset_id
    rows_out, unpriced = [], {}
    with gc_paused():  # the hot loop of imports: rows built straight in the ledger's columns, priced directly
        for row in rows:
            more = {k: v for k, v in row.items() if k not in _LOG_MANY_KEYS}
            ts, tags, provider, model = row.get("ts"), row.get("tags"), row.get("provider"), row.get("model")
            fields, extra, usage = _token_counts(model, row.get("input_tokens", 0),
                                                 row.get("output_tokens", 0), more)
            result = price(provider, model, usage, parse_iso(ts) if ts else now)
            if result.cost is None:
                unpriced.setdefault(model, (row, more, result))
            elif provider is None:
                provider = result.provider
            rows_out.append((
                ts or now_text, provider, "manual", model, model, *(fields.get(f, 0) for f in TOKEN_FIELDS),
                json.dumps(extra, sort_keys=True) if extra else None, to_pusd(result.cost), result.source,
                "ok", 1, 0, session_id, "manual",
                tagset_id({str(k): str(v) for k, v in tags.items()} if tags else {}), "manual",
            ))
    written = target.insert_rows(LOG_MANY_COLUMNS, rows_out)
    for model, (row, more, result) in unpriced.items():  # one warning per model, saying how to price it
        call, _ = token_call(model, row.get("input_tokens", 0), row.get("output_tokens", 0),
                              row.get("provider"), more)
        warn_unpriced(call, result)
    return written


_LOG_MANY_KEYS = frozenset(("model", "input_tokens", "output_tokens", "provider", "tags", "ts"))


def set_price(model: str, *, input_mtok: Decimal | str | float, output_mtok: Decimal | str | float,
              cache_read_mtok: Decimal | str | float | None = None,
              cache_write_mtok: Decimal | str | float | None = None, provider: str | None = None,
              ledger: Ledger | str | Path | None = None) -> None:
    """Set a model's price (USD per million tokens) in the ledger; it wins over genai-prices.

    >>> llmcost_nb.set_price("my-finetune", input_mtok="3", output_mtok="12")   # doctest: +SKIP
    """
    resolve_ledger(ledger).set_price(model, input_mtok=input_mtok, output_mtok=output_mtok,
                                     cache_read_mtok=cache_read_mtok, cache_write_mtok=cache_write_mtok,
                                     provider=provider)


def self_hosted(base_url: str, *, ledger: Ledger | str | Path | None = None) -> str:
    """Declare a server your own (a vLLM, Ollama or llama.cpp server on your machines): calls to its host
    cost $0, with ``price_source`` ``"self-hosted"``, instead of being left unpriced. Stored in the ledger,
    like :func:`set_price`, so it holds in every later session and for ``Ledger().reprice()`` and
    ``llmcost check``. The host is what counts, not the port or path. Returns the host.

    >>> llmcost_nb.self_hosted("http://127.0.0.1:8000/v1")   # doctest: +SKIP
    '127.0.0.1'
    """
    return resolve_ledger(ledger).self_hosted(base_url)
