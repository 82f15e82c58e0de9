"""Planning a comparison grid before anything is sent: every cell (variant × model × input × repeat) with its
request, tiktoken input count and worst-case cost, and the :class:`GridEstimate` of the whole grid."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from html import escape
from typing import TYPE_CHECKING, Any

from ..core.money import format_usd, parse_usd
from .clients import build_request, provider_of
from .scorers import LLMJudge

if TYPE_CHECKING:
    from ..ledger.sqlite import Ledger

__all__ = ["Cell", "GridEstimate", "plan", "usd_amount"]


@dataclass(frozen=True)
class GridEstimate:
    """The worst case of a grid before it runs: tiktoken input counts × ``max_output_tokens`` of output."""

    calls: int
    judge_calls: int
    variants: int
    models: int
    inputs: int
    repeats: int
    input_tokens: int
    max_output_tokens: int
    max_cost: Decimal | None  # None when a model has no known price
    unpriced_models: list[str] = field(default_factory=list)

    def describe(self) -> str:
        judge = f" + {self.judge_calls:,} judge calls" if self.judge_calls else ""
        return (
            f"{self.calls:,} calls = {self.variants} variants × {self.models} models × {self.inputs} "
            f"inputs × {self.repeats} repeats{judge}; {self.input_tokens:,} input tokens, "
            f"≤ {self.max_output_tokens:,} output tokens per call"
        )

    def __str__(self) -> str:
        cost = (
            f"at most {format_usd(self.max_cost)}"
            if self.max_cost is not None
            else f"cost unknown for {', '.join(self.unpriced_models)} (no price)"
        )
        return f"{cost} — {self.describe()}"

    def _repr_html_(self) -> str:
        return f'<div class="llmcost-estimate">{escape(str(self))}</div>'


@dataclass(slots=True)
class Cell:
    index: int
    variant: str
    model: str
    input_id: str
    repeat: int
    item: dict[str, Any]
    request: dict[str, Any]
    input_tokens: int = 0
    max_cost: Decimal | None = None  # the call's worst case, its judge's included
    tags: dict[str, str] = field(default_factory=dict)
    candidate_max_cost: Decimal | None = None  # the call's worst case alone (what a race bounds its cost by)


def _items(inputs: Any) -> list[tuple[str, dict[str, Any]]]:
    if hasattr(inputs, "to_dict") and hasattr(inputs, "columns"):  # a DataFrame
        records = inputs.to_dict("records")
        ids = list(inputs["id"]) if "id" in inputs.columns else list(inputs.index)
    else:
        records = [dict(r) if isinstance(r, Mapping) else r for r in inputs]
        if not all(isinstance(r, dict) for r in records):
            raise TypeError("inputs must be a list of dicts or a DataFrame")
        ids = [r.get("id", i) for i, r in enumerate(records)]
    ids = [str(i) for i in ids]
    if len(set(ids)) != len(ids):
        raise ValueError("inputs have duplicate ids: give each a unique 'id' field")
    if not records:
        raise ValueError("inputs is empty: nothing to compare")
    return list(zip(ids, records, strict=True))


def usd_amount(value: Any, what: str) -> Decimal | None:
    if value is None:
        return None
    rule = "a non-negative amount in USD"
    return parse_usd(value, what, rule=rule, invalid=rule)


def plan(
    variants: Mapping[str, Any],
    models: Sequence[str],
    inputs: Any,
    *,
    repeats: int,
    max_tokens: int,
    judge: LLMJudge | None,
    ledger: Ledger,
    name: str,
    count: Callable[[list[dict[str, Any]], str], int] | None = None,
) -> tuple[list[Cell], GridEstimate]:
    """Every cell of the grid with its request and worst-case cost, and the grid's estimate.

    ``count(messages, model)``: the input tokens of a request's messages (default: tiktoken, with OpenAI's
    chat framing); the workbench passes a cached one so that an edit re-tokenizes only what changed."""
    if count is None:
        from ..pricing.tokens import count_message_tokens

        def count(messages: list[dict[str, Any]], model: str) -> int:
            return count_message_tokens(messages, model=model).tokens

    if not isinstance(variants, Mapping) or not variants:
        raise ValueError("variants must be a non-empty dict: name -> template, chat messages or callable")
    if isinstance(models, str) or not models or not all(isinstance(m, str) and m for m in models):
        raise ValueError("models must be a non-empty list of model names")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive int, got {repeats!r}")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise ValueError(f"max_tokens must be a positive int, got {max_tokens!r}")
    pricer, cells, unpriced = ledger.pricer, [], set()
    costs: dict[tuple[str, int], Decimal | None] = {}

    def worst(model: str, tokens: int, output: int) -> Decimal | None:
        if (model, tokens) not in costs:
            costs[model, tokens] = pricer.max_cost(provider_of(model), model, tokens, output)
        if costs[model, tokens] is None:
            unpriced.add(model)
        return costs[model, tokens]

    items = _items(inputs)
    for repeat in range(repeats):
        for input_id, item in items:
            for variant, template in variants.items():
                request = build_request(template, item, max_tokens=max_tokens, name=str(variant))
                for model in models:
                    tokens = count(request["messages"], model)
                    cost = candidate = worst(model, tokens, int(request.get("max_tokens") or max_tokens))
                    if judge is not None and cost is not None:
                        judged = judge.request(" ".join(["x"] * max_tokens), item)
                        judge_cost = worst(
                            judge.model,
                            count(judged["messages"], judge.model),
                            judge.max_tokens,
                        )
                        cost = None if judge_cost is None else cost + judge_cost
                    tags = {
                        "experiment": name,
                        "variant": str(variant),
                        "model": model,
                        "input_id": input_id,
                        "repeat": str(repeat),
                    }
                    cells.append(
                        Cell(
                            len(cells),
                            str(variant),
                            model,
                            input_id,
                            repeat,
                            item,
                            request,
                            tokens,
                            cost,
                            tags,
                            candidate,
                        )
                    )
    total = None if unpriced else sum((c.max_cost for c in cells), Decimal(0))  # type: ignore[misc]
    estimate = GridEstimate(
        calls=len(cells),
        judge_calls=len(cells) if judge is not None else 0,
        variants=len(variants),
        models=len(models),
        inputs=len(items),
        repeats=repeats,
        input_tokens=sum(c.input_tokens for c in cells),
        max_output_tokens=max_tokens,
        max_cost=total,
        unpriced_models=sorted(unpriced),
    )
    return cells, estimate
