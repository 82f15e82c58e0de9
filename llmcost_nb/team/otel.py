"""OpenTelemetry: each call as a span following the GenAI semantic conventions, plus its exact cost.

>>> sink = enable_otel()            # live: a span for each captured call, on the global tracer provider
>>> export_spans(Ledger(), since="2026-11-01")   # or replay ledger rows as spans   # doctest: +SKIP

Attributes: ``gen_ai.operation.name``, ``gen_ai.provider.name``, ``gen_ai.request.model``,
``gen_ai.response.model``, ``gen_ai.response.id``, ``gen_ai.usage.input_tokens``,
``gen_ai.usage.output_tokens``, ``gen_ai.usage.cache_read.input_tokens``,
``gen_ai.usage.cache_creation.input_tokens``, ``gen_ai.usage.reasoning.output_tokens``, ``server.address``,
``error.type``; no standard cost attribute exists yet, so ours are ``llmcost.usd`` (double) and
``llmcost.cost_pusd`` (exact integer picodollars), with ``llmcost.status``, ``llmcost.price_source``,
``llmcost.unpriced`` (true for a billed call with no known price: it has no cost attribute, never $0),
``llmcost.usage_source`` (``provider``; ``estimated`` when the tokens, and so the cost, were counted by
llmcost_nb; ``manual``; ``unknown`` when the response's usage could not be read: unpriced),
``llmcost.session_id``, ``llmcost.scope_id`` and one ``llmcost.tag.<key>`` per
tag. A span starts at the call's ``ts`` and lasts its latency. Needs the ``otel`` extra (opentelemetry-sdk).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ..core.call import Call, parse_iso, to_pusd
from ..core.columns import row_call

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer, TracerProvider

    from ..ledger.sqlite import Ledger
    from ..tracking.scope import Scope, Session

__all__ = ["COST_ATTRIBUTE", "OtelSink", "enable_otel", "export_spans", "span_attributes"]

COST_ATTRIBUTE = "llmcost.usd"
_OPERATIONS = {
    "chat": "chat",
    "responses": "chat",
    "messages": "chat",
    "completions": "text_completion",
    "embeddings": "embeddings",
    "gemini": "generate_content",
}
_PROVIDERS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "google": "gcp.gemini",
    "azure": "azure.ai.openai",
    "mistral": "mistral_ai",
    "groq": "groq",
    "deepseek": "deepseek",
    "x-ai": "x_ai",
    "aws": "aws.bedrock",
}


def span_attributes(call: Call) -> dict[str, Any]:
    """The span attributes for one call (None values left out)."""
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": _OPERATIONS.get(call.api, "chat"),
        "gen_ai.provider.name": _PROVIDERS.get(call.provider or "", call.provider),
        "gen_ai.request.model": call.model_requested,
        "gen_ai.response.model": call.model,
        "gen_ai.response.id": call.request_id,
        "gen_ai.usage.input_tokens": call.input_tokens,
        "gen_ai.usage.output_tokens": call.output_tokens,
        "gen_ai.usage.cache_read.input_tokens": call.cache_read_tokens,
        "gen_ai.usage.cache_creation.input_tokens": call.cache_write_tokens,
        "gen_ai.usage.reasoning.output_tokens": call.reasoning_tokens,
        "server.address": call.host,
        "error.type": (str(call.http_status) if call.http_status and call.http_status >= 400 else "error")
        if call.status == "error"
        else None,
        COST_ATTRIBUTE: float(call.cost) if call.cost is not None else None,
        "llmcost.cost_pusd": to_pusd(call.cost),
        "llmcost.price_source": call.price_source,
        "llmcost.status": call.status,
        "llmcost.billed": call.billed,
        "llmcost.streamed": call.streamed,
        "llmcost.unpriced": bool(call.billed and call.cost is None),  # no price known: no cost attribute
        "llmcost.usage_source": call.usage_source,  # provider | estimated (counted by us) | manual | unknown
        "llmcost.session_id": call.session_id,
        "llmcost.scope_id": call.scope_id,
        **{f"llmcost.tag.{key}": str(value) for key, value in (call.tags or {}).items()},
    }
    return {key: value for key, value in attributes.items() if value is not None}


def _tracer(tracer_provider: TracerProvider | None) -> Tracer:
    try:
        from opentelemetry import trace
    except ImportError:
        raise ImportError(
            "OpenTelemetry export needs the otel extra: pip install 'llmcost_nb[otel]'"
        ) from None
    from ..core.version import __version__

    provider = tracer_provider or trace.get_tracer_provider()
    return provider.get_tracer("llmcost_nb", __version__)


def emit_span(tracer: Tracer, call: Call, *, update: bool = False) -> None:
    """Emit one finished CLIENT span for ``call`` (``update``: a call recorded before, now completed)."""
    from opentelemetry.trace import SpanKind, Status, StatusCode

    start = parse_iso(call.ts)
    end = start + timedelta(milliseconds=call.latency_ms or 0)
    to_ns = lambda moment: int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000  # noqa: E731
    attributes = span_attributes(call)
    if update:
        attributes["llmcost.update"] = True
    model = call.model_requested or call.model or "unknown"
    span = tracer.start_span(
        f"{attributes['gen_ai.operation.name']} {model}",
        kind=SpanKind.CLIENT,
        attributes=attributes,
        start_time=to_ns(start),
    )
    if call.status == "error":
        span.set_status(Status(StatusCode.ERROR, call.error or None))
    span.end(end_time=to_ns(end))


class OtelSink:
    """A session listener that emits a span for each recorded call; ``close()`` detaches it.

    A stream first recorded as ``unfinished`` and completed later gives a second span marked
    ``llmcost.update = true`` (a backend summing tokens should skip those or keep the latest per
    ``gen_ai.response.id``).
    """

    def __init__(self, tracer_provider: TracerProvider | None = None, session: Session | None = None) -> None:
        from ..tracking.scope import get_session

        self.tracer = _tracer(tracer_provider)
        self.session = session or get_session()
        self._seen: set[int] = set()
        self.session.listeners.append(self)

    def __call__(self, call: Call, scope: Scope | None) -> None:
        update = call.id is not None and call.id in self._seen
        if call.id is not None:
            self._seen.add(call.id)
        emit_span(self.tracer, call, update=update)

    def close(self) -> None:
        if self in self.session.listeners:
            self.session.listeners.remove(self)


def enable_otel(tracer_provider: TracerProvider | None = None, *, session: Session | None = None) -> OtelSink:
    """Emit a span for every call recorded from now on (on ``tracer_provider``, else the global one).

    >>> sink = llmcost_nb.export.enable_otel(provider)   # doctest: +SKIP
    """
    return OtelSink(tracer_provider, session)


def export_spans(ledger: Ledger, tracer_provider: TracerProvider | None = None, **filters: Any) -> int:
    """Emit a span for each ledger row matching ``filters`` (those of ``Ledger.calls``); returns how many.

    >>> export_spans(Ledger(), since="2026-11-01", tags={"team": "search"})   # doctest: +SKIP
    120
    """
    tracer = _tracer(tracer_provider)
    frame = ledger.calls(**filters)
    count = 0
    for row in frame.to_dict("records"):
        emit_span(tracer, row_call(row))
        count += 1
    return count
