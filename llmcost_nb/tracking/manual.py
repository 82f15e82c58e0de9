"""The manual side of the public API: record what capture could not see, log tokens, set prices."""

from __future__ import annotations

import json
import numbers
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
    from_pusd,
    now_iso,
    parse_iso,
    to_pusd,
)
from ..core.columns import LOG_MANY_COLUMNS
from ..core.money import MAX_PUSD
from ..core.tags import clean_tags
from ..core.times import format_ts
from ..ledger.sqlite import Ledger, gc_paused
from ..pricing.pricer import MAX_PRICE_MTOK, price_call, warn_unpriced
from ..pricing.usage import MAX_COUNT, usage_keys
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


def enable(*, ask_stream_usage: bool | None = None) -> None:
    """Capture every LLM call from now on (``track()`` and ``%load_ext llmcost_nb`` do this for you).

    ``ask_stream_usage=True`` (default: off, or ``$LLMCOST_ASK_STREAM_USAGE=1``): an OpenAI chat stream to
    api.openai.com that did not set ``stream_options={"include_usage": True}`` is sent with it, and the usage
    chunk (and ``"usage": null`` in every chunk) taken out of what your code reads, so the call is recorded
    with OpenAI's own token counts instead of counted ones, and your code sees the stream it would have seen.
    """
    from . import capture

    if ask_stream_usage is not None:
        if not isinstance(ask_stream_usage, bool):
            raise TypeError(f"ask_stream_usage must be True or False, not {ask_stream_usage!r}")
        get_session().ask_stream_usage = ask_stream_usage
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
    """Record a call given by hand (``log``, ``record``): its tags checked, priced, and refused with a
    ValueError before anything is written if its cost would not fit the ledger."""
    own = clean_tags(tags)
    target = resolve_ledger(ledger)
    scope, _ = current_scope()
    session = get_session()
    base = scope.tags if scope is not None else dict(session.tags)
    call.tags = {**base, **own}
    call.session_id, call.attribution, call.usage_source = session.id, "manual", "manual"
    call.scope_id = scope.id if scope is not None else None
    if isinstance(target, Ledger) and sum(call.usage.values()) > _ALWAYS_FITS:  # else it cannot overflow
        _check_cost_fits(call, price_call(target.pricer, call).cost)
    return _record(call, scope, session, ledger=target)


# Up to this many tokens (and other units) a call's cost fits a ledger row at any price one may set
# (MAX_PRICE_MTOK), so only a larger call is priced before it is recorded, to refuse an overflow first.
_ALWAYS_FITS = MAX_PUSD // (int(MAX_PRICE_MTOK) * 1_000_000)


def _check_cost_fits(call: Call, cost: Decimal | None) -> None:
    if cost is not None and abs(to_pusd(cost) or 0) > MAX_PUSD:
        raise ValueError(f"{call.model!r} with these token counts costs ${cost:,.2f}, more than the ledger "
                         f"holds for one call (${from_pusd(MAX_PUSD):,.2f}): check the counts and the price")


def token_keys() -> list[str]:
    """The token counts ``log()`` takes besides ``input_tokens`` and ``output_tokens``: the ``Call`` token
    fields and every genai-prices usage key, sorted."""
    return sorted((usage_keys() | set(FIELD_TO_USAGE_KEY)) - {"input_tokens", "output_tokens"})


def _token_counts(model: Any, input_tokens: Any, output_tokens: Any, more_tokens: Mapping[str, Any],
                  provider: Any = None) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """Checked token counts: (``Call`` token fields, other genai-prices usage keys, the usage pricing takes
    with its zero counts left out). Any integer type counts (numpy's too), bool does not; each count is at
    most :data:`~llmcost_nb.pricing.usage.MAX_COUNT`, as capture takes them; cache reads and writes are part
    of ``input_tokens``, so together they cannot exceed it."""
    if not isinstance(model, str) or not model.strip():
        raise ValueError(f"model must be a non-empty string, got {model!r}")
    if provider is not None and not isinstance(provider, str):
        raise TypeError(f"provider must be a genai-prices provider id (str) or None, got {provider!r}")
    if more_tokens and not (_KNOWN or _known_keys()).issuperset(more_tokens):
        unknown = [key for key in more_tokens if key not in _KNOWN]
        import difflib

        close = difflib.get_close_matches(unknown[0], _known_keys(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        named = ", ".join(map(repr, unknown))
        raise TypeError(f"unknown token count{'s' * (len(unknown) > 1)} {named}{hint}: "
                        f"allowed are input_tokens, output_tokens and {', '.join(token_keys())}")
    usage: dict[str, int] = {}
    fields: dict[str, int] = {}
    extra: dict[str, int] = {}
    counts = (("input_tokens", input_tokens), ("output_tokens", output_tokens), *more_tokens.items())
    for key, value in counts:
        if type(value) is not int:  # numpy's too (the ABC checked only then: log_many checks every row)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool):
                raise _bad_count(key, value)
            value = int(value)
        if not 0 <= value <= MAX_COUNT:
            raise _bad_count(key, value)
        usage_key = FIELD_TO_USAGE_KEY.get(key, key)
        if value:
            usage[usage_key] = value
        if (field := USAGE_KEY_TO_FIELD.get(usage_key)) is not None:
            fields[field] = value
        elif value:
            extra[usage_key] = value
    cached = fields.get("cache_read_tokens", 0) + fields.get("cache_write_tokens", 0)
    if cached > fields["input_tokens"]:
        raise ValueError(f"cache_read_tokens + cache_write_tokens ({cached:,}) cannot exceed input_tokens "
                         f"({fields['input_tokens']:,}): input_tokens counts every input token, cached "
                         "included")
    return fields, extra, usage


def _bad_count(key: str, value: Any) -> ValueError:
    return ValueError(f"{key} must be a non-negative int of at most 10**12, got {value!r}")


_KNOWN: frozenset[str] = frozenset()
_ZEROS = (0,) * len(TOKEN_FIELDS)  # log_many: each token field's count, 0 when not given


def _known_keys() -> frozenset[str]:
    global _KNOWN
    if not _KNOWN:
        _KNOWN = frozenset(token_keys())
    return _KNOWN


def token_call(model: str, input_tokens: int, output_tokens: int, provider: str | None,
                more_tokens: Mapping[str, Any], **attributes: Any) -> tuple[Call, dict[str, int]]:
    """A manual call from token counts (and other ``Call`` attributes), and its usage as genai-prices keys
    (what pricing takes)."""
    fields, extra, usage = _token_counts(model, input_tokens, output_tokens, more_tokens, provider)
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
                                                 row.get("output_tokens", 0), more, provider)
            row_tags = clean_tags(tags)
            result = price(provider, model, usage, parse_iso(ts) if ts else now)
            cost_pusd = to_pusd(result.cost)
            if cost_pusd is not None and abs(cost_pusd) > MAX_PUSD:
                _check_cost_fits(Call(model=model), result.cost)
            if result.cost is None:
                unpriced.setdefault(model, (row, more, result))
            elif provider is None:
                provider = result.provider
            rows_out.append((
                ts or now_text, provider, "manual", model, model, *map(fields.get, TOKEN_FIELDS, _ZEROS),
                json.dumps(extra, sort_keys=True) if extra else None, cost_pusd, result.source,
                "ok", 1, 0, session_id, "manual",
                tagset_id(row_tags), "manual",
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
