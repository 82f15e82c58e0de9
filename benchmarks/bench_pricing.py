"""Pricing and usage extraction speed, each against genai-prices doing the same work in the same run.

    .venv/bin/python benchmarks/bench_pricing.py

- pricing: ``Pricer.price`` vs ``genai_prices.calc_price`` on 20,000 calls with varying token counts across
  10 models (plain, tiered, dated, time-of-day, cache writes), after one warm-up call per model; every
  result must be the identical Decimal. Target: <= 2 µs a call.
- usage: ``extract_usage`` vs genai-prices' ``extract_usage`` (with its model lookup) and its bare
  ``Provider.extract_usage`` on every real body of our wire formats in tests/data/real_usages.json, plus one
  typical chat body. Target: < 15 µs for the chat body.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path

import genai_prices
from genai_prices import Usage
from genai_prices.data_snapshot import get_snapshot

from llmcost_nb.pricing.pricer import Pricer
from llmcost_nb.pricing.usage import _GENAI_FLAVOR, UsageError, extract_usage

MODELS = [("openai", "gpt-4.1"), ("openai", "gpt-4o-mini"), ("openai", "o3"), (None, "gpt-5"),
          ("anthropic", "claude-sonnet-4-5"), ("anthropic", "claude-haiku-4-5"), ("google", "gemini-2.5-pro"),
          ("google", "gemini-2.5-flash"), ("deepseek", "deepseek-chat"), ("groq", "llama-3.3-70b-versatile")]
CALLS = 20_000
CHAT_BODY = {
    "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4.1-2025-04-14",
    "usage": {"prompt_tokens": 1000, "completion_tokens": 200, "total_tokens": 1200,
              "prompt_tokens_details": {"cached_tokens": 100, "audio_tokens": 0},
              "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                            "accepted_prediction_tokens": 0,
                                            "rejected_prediction_tokens": 0}},
}


def best_of(repeats: int, run: Callable[[], object]) -> float:
    """The fastest of ``repeats`` runs, in seconds (the least disturbed by the rest of the machine)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def calls() -> list[tuple[str | None, str, dict[str, int], datetime]]:
    rng = random.Random(2026)
    out = []
    for i in range(CALLS):
        provider, model = MODELS[i % len(MODELS)]
        total_in = rng.randint(1, 300_000)
        usage = {"input_tokens": total_in, "output_tokens": rng.randint(1, 8000)}
        if rng.random() < 0.6:
            usage["cache_read_tokens"] = rng.randint(1, total_in)
        if provider == "anthropic" and rng.random() < 0.3:
            usage["cache_write_tokens"] = rng.randint(0, total_in - usage.get("cache_read_tokens", 0))
        out.append((provider, model, usage, datetime(2026, 11, 1, rng.randint(0, 23), tzinfo=UTC)))
    return out


def bench_pricing() -> None:
    work = calls()
    pricer = Pricer()
    for provider, model in MODELS:  # resolve and compile once, as the first call of a session does
        pricer.price(provider, model, {"input_tokens": 1}, work[0][3])
    ours = [pricer.price(p, m, u, ts).cost for p, m, u, ts in work]
    theirs = [genai_prices.calc_price(Usage(**u), m, provider_id=p, genai_request_timestamp=ts).total_price
              for p, m, u, ts in work]
    identical = sum(a == b and a is not None for a, b in zip(ours, theirs, strict=True))
    fast = best_of(7, lambda: [pricer.price(p, m, u, ts) for p, m, u, ts in work]) / CALLS * 1e6
    sample = work[:2000]
    slow = best_of(3, lambda: [genai_prices.calc_price(Usage(**u), m, provider_id=p,
                                                       genai_request_timestamp=ts)
                               for p, m, u, ts in sample]) / len(sample) * 1e6
    print(f"pricing: {fast:.1f} µs/call vs genai-prices calc_price {slow:.0f} µs/call "
          f"({slow / fast:.0f}x faster), {identical}/{CALLS} identical")


def bench_usage() -> None:
    snapshot = get_snapshot()
    path = Path(__file__).parents[1] / "tests" / "data" / "real_usages.json"
    corpus = [entry["body"] for entry in json.loads(path.read_text())]
    work, identical = [], 0
    for body in corpus:
        for api, (provider_id, flavor) in _GENAI_FLAVOR.items():
            if api == "completions":
                continue  # the same extractor as chat
            try:
                ours = extract_usage(body, api=api)
            except UsageError:
                continue
            provider = snapshot.find_provider(None, provider_id, None)
            model, usage = provider.extract_usage(body, api_flavor=flavor)
            identical += ours == (model, {k: v for k, v in usage._reported_values().items() if v})
            work.append((body, api, provider, provider_id, flavor))

    def genai_with_lookup() -> None:
        for body, _, _, provider_id, flavor in work:
            with suppress(LookupError):  # a model it does not know: it looks every model up
                genai_prices.extract_usage(body, provider_id=provider_id, api_flavor=flavor)

    n = len(work)
    ours = best_of(5, lambda: [extract_usage(body, api=api) for body, api, *_ in work]) / n * 1e6
    bare = best_of(5, lambda: [p.extract_usage(b, api_flavor=f) for b, _, p, _, f in work]) / n * 1e6
    full = best_of(3, genai_with_lookup) / n * 1e6
    print(f"usage: {ours:.1f} µs/body vs genai-prices extract_usage {full:.0f} µs/body "
          f"({full / ours:.0f}x faster; Provider.extract_usage {bare:.0f} µs), "
          f"{identical}/{n} identical over the corpus")
    openai = snapshot.find_provider(None, "openai", None)
    reps = 20_000
    chat = best_of(5, lambda: [extract_usage(CHAT_BODY, api="chat") for _ in range(reps)]) / reps * 1e6
    chat_bare = best_of(3, lambda: [openai.extract_usage(CHAT_BODY, api_flavor="chat")
                                    for _ in range(reps // 10)]) / (reps // 10) * 1e6
    print(f"usage (typical chat body): {chat:.1f} µs/body vs genai-prices Provider.extract_usage "
          f"{chat_bare:.0f} µs/body ({chat_bare / chat:.0f}x faster)")


if __name__ == "__main__":
    bench_pricing()
    bench_usage()
