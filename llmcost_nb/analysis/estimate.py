"""Token counts and cost estimates before a call is made (tiktoken, loaded lazily).

>>> from llmcost_nb.analysis import estimate
>>> estimate.count_tokens("Hello world", model="gpt-4.1")              # doctest: +SKIP
TokenCount(tokens=2, encoding='o200k_base', approximate=False)
>>> estimate.estimate(msgs, models=["gpt-4.1", "gpt-4.1-mini"], expected_output_tokens=500)  # doctest: +SKIP

OpenAI models use their own encoding (``o200k_base`` for gpt-4o, gpt-4.1, gpt-5, o-series; ``cl100k_base`` for
gpt-4, gpt-3.5 and embeddings). Other providers' tokenizers are not public: their counts use ``o200k_base``
and are marked ``approximate``. Where an encoding cannot be loaded (no network, no cache), counts fall back
to one token per four characters, also marked ``approximate`` — an estimate never fails for lack of a file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..core.call import now_iso, parse_iso
from ..core.money import format_usd
from ..pricing.tokens import (
    APPROXIMATION,
    DEFAULT_ENCODING,
    IMAGE_TOKENS,
    REPLY_PRIMING_TOKENS,
    TOKENS_PER_MESSAGE,
    TOKENS_PER_NAME,
    TokenCount,
    count_message_tokens,
    count_tokens,
    encoding_name,
    request_input_tokens,
)

if TYPE_CHECKING:
    import pandas as pd

    from ..ledger.sqlite import Ledger

__all__ = [
    "APPROXIMATION",
    "DEFAULT_ENCODING",
    "IMAGE_TOKENS",
    "REPLY_PRIMING_TOKENS",
    "TOKENS_PER_MESSAGE",
    "TOKENS_PER_NAME",
    "Estimate",
    "EstimateRow",
    "TokenCount",
    "count_message_tokens",
    "count_tokens",
    "encoding_name",
    "estimate",
    "estimate_accuracy",
    "request_input_tokens",
]

@dataclass(frozen=True, slots=True)
class EstimateRow:
    model: str
    input_tokens: int
    output_tokens: int
    input_cost: Decimal | None
    output_cost: Decimal | None
    cost: Decimal | None
    encoding: str
    approximate: bool


@dataclass(frozen=True)
class Estimate:
    """What a prompt would cost on each candidate model; ``to_frame()`` for a DataFrame."""

    rows: list[EstimateRow] = field(default_factory=list)

    def cheapest(self) -> EstimateRow | None:
        priced = [r for r in self.rows if r.cost is not None]
        return min(priced, key=lambda r: r.cost) if priced else None  # type: ignore[arg-type, return-value]

    def to_frame(self) -> pd.DataFrame:
        from dataclasses import asdict

        import pandas as pd

        return pd.DataFrame([asdict(r) for r in self.rows], columns=list(EstimateRow.__slots__))

    def _cells(self) -> list[list[str]]:
        return [[r.model, f"{r.input_tokens:,}{'~' if r.approximate else ''}", f"{r.output_tokens:,}",
                 _usd(r.input_cost), _usd(r.output_cost), _usd(r.cost)] for r in self.rows]

    def __repr__(self) -> str:
        head = ["model", "input tokens", "output tokens", "input $", "output $", "total $"]
        rows = [head, *self._cells()]
        widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
        lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths,
                 strict=True))) for row in rows]
        if any(r.approximate for r in self.rows):
            lines.append("~ approximate count (no exact tokenizer for this model)")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from html import escape

        head = "".join(f"<th>{h}</th>" for h in ("model", "input tokens", "output tokens", "input $",
                                                   "output $", "total $"))
        body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>"
                       for cells in self._cells())
        note = ("<div><small>~ approximate count (no exact tokenizer for this model)</small></div>"
                if any(r.approximate for r in self.rows) else "")
        return ('<table class="llmcost-estimate mathjax_ignore tex2jax_ignore">'
                f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
                f"{note}")


def _usd(value: Decimal | None) -> str:
    return format_usd(value, unknown="unknown")


def estimate(messages: Sequence[Mapping[str, Any]] | str, models: Sequence[str] | str = ("gpt-4.1",),
             expected_output_tokens: int = 0, *, ledger: Ledger | None = None) -> Estimate:
    """What ``messages`` (chat messages, or plain text) would cost on each model, with
    ``expected_output_tokens`` of answer, priced like a real call (price overrides in the ledger included).

    >>> estimate([{"role": "user", "content": "Hi"}], models=["gpt-4.1", "gpt-4.1-mini"],
    ...          expected_output_tokens=100)                                  # doctest: +SKIP
    """
    if isinstance(models, str):
        models = [models]
    if isinstance(expected_output_tokens, bool) or not isinstance(expected_output_tokens, int) or (
            expected_output_tokens < 0):
        raise ValueError(f"expected_output_tokens must be a non-negative int, got {expected_output_tokens!r}")
    from ..tracking.resolve import resolve_ledger

    ledger = resolve_ledger(ledger)  # type: ignore[assignment]
    when = parse_iso(now_iso())
    rows = []
    for model in models:
        count = (count_tokens(messages, model=model) if isinstance(messages, str)
                 else count_message_tokens(messages, model=model))
        costs = [_price(ledger, model, usage, when) for usage in (
            {"input_tokens": count.tokens}, {"output_tokens": expected_output_tokens},
            {"input_tokens": count.tokens, "output_tokens": expected_output_tokens})]
        rows.append(EstimateRow(model, count.tokens, expected_output_tokens, *costs, count.encoding,
                                count.approximate))
    return Estimate(rows)


def _price(ledger: Ledger, model: str, usage: dict[str, int], when: Any) -> Decimal | None:
    try:
        return ledger.pricer.price(None, model, usage, when).cost
    except Exception:
        return None


def estimate_accuracy(ledger: Ledger | None = None, *, scope_id: str | None = None) -> pd.DataFrame:
    """Estimated vs actual input tokens of captured calls (those with an estimate), newest last.

    Columns: id, model, estimated_input_tokens, input_tokens, error (actual - estimated), error_pct.
    """
    import pandas as pd

    from ..tracking.resolve import resolve_ledger

    ledger = resolve_ledger(ledger)  # type: ignore[assignment]
    sql = ("SELECT id, model, estimated_input_tokens, input_tokens FROM calls "
           "WHERE estimated_input_tokens IS NOT NULL AND billed = 1 AND status = 'ok'")
    params: list[Any] = []
    if scope_id is not None:
        sql += " AND scope_id = ?"
        params.append(scope_id)
    with ledger._lock:
        rows = ledger.connection.execute(sql + " ORDER BY id", params).fetchall()
    frame = pd.DataFrame.from_records(rows, columns=["id", "model", "estimated_input_tokens", "input_tokens"])
    frame["error"] = frame["input_tokens"] - frame["estimated_input_tokens"]
    actual = frame["input_tokens"].where(frame["input_tokens"] > 0)
    frame["error_pct"] = (100 * frame["error"] / actual).round(1)
    return frame


def _preflight(pending: Any, scope: Any) -> None:
    """Preflight hook: count a request's input tokens before it is sent (stored with the call)."""
    if pending.estimated_input_tokens is None:
        try:
            pending.estimated_input_tokens = request_input_tokens(
                pending.endpoint.api, pending.info.body or {}, pending.info.model).tokens
        except Exception as exc:
            from ..core.warn import warn_once

            warn_once(f"estimate:{type(exc).__name__}", f"could not estimate a request's tokens ({exc!r})")


def activate(session: Any = None) -> None:
    """Estimate every captured request's input tokens before it is sent (``%load_ext`` does this)."""
    from ..tracking.scope import get_session

    session = session or get_session()
    session.add_pre_send(_preflight, "estimate")


def deactivate(session: Any = None) -> None:
    from ..tracking.scope import get_session

    session = session or get_session()
    session.remove_pre_send(_preflight)
