"""Calls that test the views' honesty: a priced call, a stream whose tokens were estimated, two billed calls
with no known price and a failed attempt, all on 2026-11-02, written straight into a ledger."""

from __future__ import annotations

from decimal import Decimal

from llmcost_nb import Call

DAY = "2026-11-02"
TS = f"{DAY}T10:00:00.000000Z"


def honest_calls() -> list[Call]:
    return [
        Call(provider="openai", model="gpt-4.1", input_tokens=1000, output_tokens=100, cost=Decimal("1.2"),
             latency_ms=900.0, ts=TS),
        Call(provider="openai", model="gpt-4o-mini", input_tokens=300, output_tokens=40,
             cost=Decimal("0.0042"), usage_source="estimated", streamed=True, latency_ms=400.0, ts=TS),
        Call(provider="openai", model="my-ft", input_tokens=100, output_tokens=10, cost=None, billed=True,
             latency_ms=300.0, ts=TS),
        Call(provider="openai", model="my-ft", input_tokens=100, output_tokens=10, cost=None, billed=True,
             latency_ms=300.0, ts=TS),
        Call(provider="openai", model="gpt-4.1", status="error", http_status=429, billed=False, cost=None,
             ts=TS),  # no latency: an attempt that failed before an answer
    ]  # fmt: skip


def write_honest(ledger) -> list[Call]:
    calls = honest_calls()
    ledger.write_many(calls)
    return calls
