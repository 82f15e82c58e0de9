"""The record of one LLM call attempt: what capture produces, pricing completes and the ledger stores."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .money import PICO, from_pusd, to_pusd
from .times import now_iso, parse_iso

__all__ = ["PICO", "Call", "from_pusd", "now_iso", "parse_iso", "to_pusd"]

# Token columns, in ledger order. input_tokens counts every input token (cached included);
# output_tokens counts every output token (reasoning included).
TOKEN_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "input_audio_tokens",
    "output_audio_tokens",
)
# genai-prices usage keys that have a column of their own; every other key goes to usage_extra.
USAGE_KEY_TO_FIELD = {
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
    "cache_read_tokens": "cache_read_tokens",
    "cache_write_tokens": "cache_write_tokens",
    "output_reasoning_tokens": "reasoning_tokens",
    "input_audio_tokens": "input_audio_tokens",
    "output_audio_tokens": "output_audio_tokens",
}
FIELD_TO_USAGE_KEY = {v: k for k, v in USAGE_KEY_TO_FIELD.items()}
UNKNOWN_USAGE = "unknown"
"""``Call.usage_source`` of a billed call whose usage could not be read or counted: never priced."""


@dataclass(slots=True)
class Call:
    """One attempt at an LLM request (a retried request is several calls; only successful ones are billed)."""

    provider: str | None = None  # genai-prices provider id: openai, anthropic, google, azure, ...
    api: str = "manual"  # chat | responses | embeddings | completions | messages | gemini | manual
    model_requested: str | None = None
    model: str | None = None  # as the response names it (resolved), else the requested one
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    input_audio_tokens: int = 0
    output_audio_tokens: int = 0
    usage_extra: dict[str, int] | None = None  # other genai-prices usage keys (web_searches, ...)
    cost: Decimal | None = None
    price_source: str | None = None
    latency_ms: float | None = None
    status: str = "ok"  # ok | error | unfinished
    http_status: int | None = None
    error: str | None = None
    billed: bool = True
    streamed: bool = False
    request_id: str | None = None
    host: str | None = None
    service_tier: str | None = None
    session_id: str | None = None
    scope_id: str | None = None
    attribution: str = "none"  # context | active | none | manual
    tags: dict[str, str] = field(default_factory=dict)
    ts: str = field(default_factory=now_iso)
    estimated_input_tokens: int | None = None  # counted before sending (llmcost_nb.estimate)
    replayed: bool = False  # served from a recording (llmcost_nb.replay): cost $0, not billed
    saved: Decimal | None = None  # what a replayed call would have cost
    # Where the token counts come from: "provider" (the API reported them), "estimated" (counted by us with
    # the model's tokenizer: a stream or a response that sent no usage), "manual" (numbers given to
    # log()/record()), "unknown" (the response's usage could not be read, nor counted: the call is unpriced,
    # whatever its tokens say; see pricing.pricer.price_call).
    usage_source: str = "provider"
    id: int | None = field(default=None, repr=False)  # the ledger row's id: None until it is committed
    _journal: Any = field(default=None, repr=False, compare=False)  # holds the row until it is in SQLite

    @property
    def recorded(self) -> bool:
        """Whether the call has a ledger row, committed or pending (a captured call's row is committed
        within 0.1 s, at the next read of its ledger, or at once by ``Ledger.flush()``: ``id`` is set
        then)."""
        return self.id is not None or self._journal is not None

    @property
    def usage(self) -> dict[str, int]:
        """Token counts as genai-prices usage keys (what pricing takes)."""
        usage = {key: getattr(self, name) for key, name in USAGE_KEY_TO_FIELD.items() if getattr(self, name)}
        if self.usage_extra:
            usage.update(self.usage_extra)
        return usage

    def set_usage(self, usage: dict[str, Any]) -> None:
        """Fill token fields from genai-prices usage keys; unknown keys go to ``usage_extra``."""
        extra: dict[str, int] = {}
        for key, value in usage.items():
            name = USAGE_KEY_TO_FIELD.get(key)
            if name is None:
                if value:
                    extra[key] = int(value)
            else:
                setattr(self, name, int(value or 0))
        self.usage_extra = extra or None
