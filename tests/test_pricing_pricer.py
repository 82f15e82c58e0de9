"""Pricing: exact Decimal costs, identical to genai-prices' own calculation on every real usage body and on
random ones, with user overrides first and a clear answer for unknown models."""

from __future__ import annotations

import decimal
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import genai_prices
import pytest
from _prices import SOURCE, M, at, unit_prices
from genai_prices import Usage
from genai_prices.data_snapshot import find_provider_by_id, get_snapshot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmcost_nb.core.warn import LlmcostWarning
from llmcost_nb.pricing import pricer as pricing
from llmcost_nb.pricing.pricer import Price, Pricer, PriceResult, UnknownModel, warm
from llmcost_nb.pricing.providers import PREFIX_ALIASES
from llmcost_nb.pricing.usage import UsageError, extract_usage

TS = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
CORPUS_FILE = Path(__file__).parent / "data" / "real_usages.json"  # see tests/data/README.md
CORPUS = [entry["body"] for entry in json.loads(CORPUS_FILE.read_text())]
API_PROVIDER = {"chat": "openai", "responses": "openai", "embeddings": "openai", "messages": "anthropic",
                "gemini": "google"}
DEFAULT_MODEL = {"chat": "gpt-4.1", "responses": "o3", "embeddings": "text-embedding-3-small",
                 "messages": "claude-sonnet-4-5", "gemini": "gemini-2.5-pro"}  # for bodies that name none
TIMESTAMPS = [
    datetime(2024, 6, 1, tzinfo=UTC),
    datetime(2025, 6, 9, 23, 59, tzinfo=UTC),  # o3 cost $10/$40 per MTok until 2025-06-10, then $2/$8
    datetime(2025, 6, 10, tzinfo=UTC),
    datetime(2026, 10, 13, 12, tzinfo=UTC),  # OpenAI priority tier priced from 2026-10-12
    datetime(2026, 11, 20, 3, tzinfo=UTC),  # DeepSeek's off-peak hours (time-of-day prices)
    datetime(2027, 1, 2, 12, tzinfo=UTC),  # several Gemini 3.x price rises on 2027-01-01
]


@pytest.fixture
def pricer():
    return Pricer()


def genai_cost(provider, model, usage, ts, tier=None, *, prefixes=True, fallback=True):
    """genai_prices.calc_price's total, with the same fallbacks as Pricer: a gateway's provider prefix
    (``x-ai/grok-4`` is ``grok-4`` at the provider genai-prices or PREFIX_ALIASES reads ``x-ai`` as), then a
    model-name lookup."""
    context = {"service_tier": tier} if tier else None
    try:
        calc = genai_prices.calc_price(Usage(**usage), model, provider_id=provider,
                                       genai_request_timestamp=ts, price_context=context)
        return calc.total_price
    except LookupError:
        rest = model
        while prefixes and "/" in rest:  # prefix after prefix: openrouter/openai/gpt-4o
            prefix, rest = rest.split("/", 1)
            named = find_provider_by_id(get_snapshot().providers, PREFIX_ALIASES.get(prefix.lower(), prefix))
            if named is None or not rest:
                break
            if (found := genai_cost(named.id, rest, usage, ts, tier, prefixes=False, fallback=False)
                    ) != "unknown":
                return found
        if not fallback:
            return "unknown"
        return "unknown" if provider is None else genai_cost(None, model, usage, ts, tier, prefixes=False)
    except ValueError:
        return "invalid"


def outcome(result: PriceResult):
    if result.cost is not None:
        return result.cost
    return "unknown" if "Unknown model" in (result.error or "") else "invalid"


@pytest.mark.parametrize(("provider", "model", "usage", "ts", "cost"), [
    # each cost from the token counts and genai-prices' own unit prices `p` for the model at `ts`
    pytest.param("openai", "gpt-4.1", {"input_tokens": 1000, "output_tokens": 200, "cache_read_tokens": 100},
                 TS, lambda p: (900 * p.input_mtok + 100 * p.cache_read_mtok + 200 * p.output_mtok) / M,
                 id="gpt-4.1-cached"),
    pytest.param("anthropic", "claude-sonnet-4-5-20250929",
                 {"input_tokens": 3000, "cache_read_tokens": 500, "cache_write_tokens": 1000,
                  "cache_write_1h_tokens": 400, "output_tokens": 300},
                 TS, lambda p: (1500 * at(p.input_mtok) + 500 * at(p.cache_read_mtok)  # 1500 uncached
                                + 600 * at(p.cache_write_mtok) + 400 * at(p.cache_write_1h_mtok)  # 5 min, 1 h
                                + 300 * at(p.output_mtok)) / M,
                 id="claude-sonnet-4-5-cache-write-1h"),
    pytest.param("google", "gemini-2.5-pro", {"input_tokens": 100_000, "output_tokens": 1000}, TS,
                 lambda p: (100_000 * p.input_mtok.base + 1000 * p.output_mtok.base) / M,
                 id="gemini-2.5-pro-below-200k"),
    pytest.param("google", "gemini-2.5-pro", {"input_tokens": 200_000, "output_tokens": 1000}, TS,
                 lambda p: (200_000 * p.input_mtok.base + 1000 * p.output_mtok.base) / M,
                 id="gemini-2.5-pro-at-200k"),  # the tier starts above 200k
    pytest.param("google", "gemini-2.5-pro", {"input_tokens": 250_000, "output_tokens": 1000}, TS,
                 lambda p: (250_000 * at(p.input_mtok, 250_000) + 1000 * at(p.output_mtok, 250_000)) / M,
                 id="gemini-2.5-pro-above-200k"),  # every token at the tier's prices
    pytest.param("perplexity", "sonar", {"input_tokens": 1000, "output_tokens": 1000}, TS,
                 lambda p: (1000 * p.input_mtok + 1000 * p.output_mtok) / M + p.requests_kcount / 1000,
                 id="per-request-fee"),  # tokens plus a fee per 1000 requests
    pytest.param("groq", "whisper-large-v3", {"audio_seconds": 3}, TS,  # billed as 10 s, per hour of audio
                 lambda p: p.audio_hours * 10 / 3600, id="groq-whisper-billed-10s"),
])
def test_exact_costs(pricer, provider, model, usage, ts, cost):
    expected = cost(unit_prices(model, provider, ts))
    assert pricer.price(provider, model, usage, ts).cost == expected
    assert genai_cost(provider, model, usage, ts) == expected


def test_the_gemini_cases_test_a_tier_boundary():
    """The premise of the gemini-2.5-pro cases above (not a promise of ours): genai-prices prices it with one
    tier starting at 200k input tokens. If its data changes, move those cases to a model that has one."""
    p = unit_prices("gemini-2.5-pro", "google", TS)
    assert [tier.start for tier in p.input_mtok.tiers] == [200_000], "pick a model with a 200k tier"
    assert at(p.input_mtok, 250_000) != p.input_mtok.base, "pick a model with a 200k tier"


@pytest.mark.parametrize(("provider", "model", "before", "after"), [
    ("openai", "o3", datetime(2025, 6, 9, 23, tzinfo=UTC), datetime(2025, 6, 10, tzinfo=UTC)),  # a new price
    ("deepseek", "deepseek-chat", datetime(2026, 11, 2, 12, tzinfo=UTC),  # peak hours,
     datetime(2026, 11, 2, 20, tzinfo=UTC)),  # then off-peak (a time-of-day price)
])
def test_the_price_in_force_at_the_calls_utc_time(pricer, provider, model, before, after):
    usage = {"input_tokens": 1_000_000}
    price_before = unit_prices(model, provider, before).input_mtok
    price_after = unit_prices(model, provider, after).input_mtok
    assert price_before != price_after, "the premise: genai-prices lists a price change between the two"
    assert pricer.price(provider, model, usage, before).cost == price_before
    assert pricer.price(provider, model, usage, after).cost == price_after
    # the same instants given in another time zone: the UTC time decides, not the local date
    for ts, price in ((before, price_before), (after, price_after)):
        local = ts.astimezone(timezone(timedelta(hours=5)))  # o3's "before": already 2025-06-10 there
        assert pricer.price(provider, model, usage, local).cost == price


def test_result_names_source_provider_and_model(pricer):
    """The source names the installed genai-prices; provider and model are genai-prices' ids."""
    calc = genai_prices.calc_price(Usage(input_tokens=10), "claude-sonnet-4-5-20250929",
                                   provider_id="anthropic", genai_request_timestamp=TS)
    result = pricer.price("anthropic", "claude-sonnet-4-5-20250929", {"input_tokens": 10}, TS)
    assert result == PriceResult(calc.total_price, SOURCE, calc.provider.id, calc.model.id)
    assert result.cost == 10 * at(unit_prices("claude-sonnet-4-5", "anthropic", TS).input_mtok) / M
    assert f"genai-prices {genai_prices.__version__}" == SOURCE


@pytest.mark.parametrize(("tier", "ts"), [
    (None, TS),
    ("default", TS),
    ("priority", TS),
    ("priority", datetime(2026, 10, 11, tzinfo=UTC)),
    ("made-up-tier", TS),
])
def test_service_tier_variants(pricer, tier, ts):
    usage = {"input_tokens": 1_000_000}
    expected = unit_prices("gpt-4.1", "openai", ts, tier).input_mtok
    assert pricer.price("openai", "gpt-4.1", usage, ts, service_tier=tier).cost == expected
    assert genai_cost("openai", "gpt-4.1", usage, ts, tier) == expected


def test_a_tier_genai_prices_prices_differently_is_charged_differently(pricer):
    usage = {"input_tokens": 1_000_000}
    default, priority = (unit_prices("gpt-4.1", "openai", TS, tier).input_mtok for tier in (None, "priority"))
    assert default != priority, "the premise: genai-prices prices OpenAI's priority tier on its own"
    assert pricer.price("openai", "gpt-4.1", usage, TS, service_tier="priority").cost == priority
    assert pricer.price("openai", "gpt-4.1", usage, TS, service_tier="made-up-tier").cost == default


def fast_path(provider, model, usage, ts, tier=None):
    """What our compiled prices alone answer (cost, or None where genai-prices' own calculation would be
    asked), as an outcome: a Decimal, "unknown" or "invalid"."""
    entry = pricing._load_catalog().resolve(provider, model)
    if entry.unknown is not None:
        return "unknown"
    cost = entry.evaluator(ts, tier).cost(usage)
    return "invalid" if cost is None else cost


def test_every_corpus_body_prices_like_genai_prices_without_its_help(pricer):
    """Our compiled prices alone (never asking genai-prices' own calculation) match calc_price on every
    real usage body, for its wire format's provider and by model name, at timestamps around price
    changes; so does the whole pricer."""
    cases, seen = [], set()
    for body in CORPUS:
        for api in API_PROVIDER:
            try:
                model, usage = extract_usage(body, api=api)
            except UsageError:
                continue
            if (key := (api, model, tuple(usage.items()))) in seen:
                continue
            seen.add(key)
            for provider in (API_PROVIDER[api], None):
                i = len(cases)
                tier = ("priority", "flex", None)[i % 3] if api in ("chat", "responses") else None
                cases += [(provider, model or DEFAULT_MODEL[api], usage, TIMESTAMPS[i % 6], None),
                          (provider, model or DEFAULT_MODEL[api], usage, TIMESTAMPS[(i + 3) % 6], tier)]
    assert len(cases) > 6000
    expected = [genai_cost(*case) for case in cases]
    fast = [fast_path(*case) for case in cases]
    mismatches = [(case, got, want) for case, got, want in zip(cases, fast, expected, strict=True)
                  if got != want]
    assert mismatches == []
    ours = [outcome(pricer.price(p, m, u, ts, service_tier=tier)) for p, m, u, ts, tier in cases]
    assert ours == expected
    assert sum(isinstance(want, Decimal) for want in expected) > 5000


def test_fast_path_gives_genai_prices_provider_and_model_ids(pricer):
    for provider, model in [("openai", "gpt-4.1-2025-04-14"), ("google", "gemini-2.5-flash"),
                            (None, "gpt-5"), ("azure", "gpt-4o")]:
        calc = genai_prices.calc_price(Usage(input_tokens=10), model, provider_id=provider,
                                       genai_request_timestamp=TS)
        result = pricer.price(provider, model, {"input_tokens": 10}, TS)
        assert (result.provider, result.model_id) == (calc.provider.id, calc.model.id)


def test_model_under_another_provider_is_found_by_name(pricer):
    usage = {"input_tokens": 1000, "output_tokens": 10}
    assert pricer.price("openai", "claude-sonnet-4-5", usage, TS).provider == "anthropic"
    assert pricer.price("my-vllm-server", "gpt-4.1", usage, TS).cost == genai_cost(None, "gpt-4.1", usage, TS)


def test_unknown_model_has_no_cost_and_says_how_to_price_it(pricer):
    result = pricer.price("openai", "my-finetune-7b", {"input_tokens": 10}, TS)
    message = ("Unknown model 'my-finetune-7b' (provider 'openai'): set its price with "
               "llmcost_nb.set_price('my-finetune-7b', input_mtok=..., output_mtok=...)")
    assert result == PriceResult(None, None, "openai", None, message)
    with pytest.raises(UnknownModel, match=r"set its price with llmcost_nb\.set_price"):
        pricer.unit_prices(None, "my-finetune-7b")
    assert pricer.max_cost("openai", "my-finetune-7b", 100, 100) is None


def test_no_model_has_no_cost(pricer):
    assert pricer.price("openai", None, {"input_tokens": 10}, TS).error == (
        "no model reported, so the call cannot be priced")


@pytest.mark.parametrize("usage", [
    {"input_tokens": 100, "cache_read_tokens": 200, "output_tokens": 1},
    {"input_tokens": -1},
    {"input_tokens": "10"},
    {"cache_read_tokens": 5},
])
def test_invalid_usage_has_no_cost_and_genai_prices_reason(pricer, usage):
    with pytest.raises(ValueError) as refused:  # genai-prices refuses this usage: its reason is ours
        genai_prices.calc_price(Usage(**usage), "gpt-4.1", provider_id="openai", genai_request_timestamp=TS)
    result = pricer.price("openai", "gpt-4.1", usage, TS)
    reason = f"could not price 'gpt-4.1': {refused.value}"
    assert result == PriceResult(None, None, "openai", "gpt-4.1", reason)


def test_unknown_usage_key_is_ignored_with_one_warning(pricer):
    usage = {"input_tokens": 1000, "made_up_tokens": 5}
    with pytest.warns(LlmcostWarning, match="usage key 'made_up_tokens' is not one genai-prices prices"):
        cost = pricer.price("openai", "gpt-4.1", usage, TS).cost
    assert cost == pricer.price("openai", "gpt-4.1", {"input_tokens": 1000}, TS).cost
    assert cost == 1000 * unit_prices("gpt-4.1", "openai", TS).input_mtok / M


def test_overrides_win_and_match_the_name_in_any_case():
    pricer = Pricer({("", "gpt-4.1"): Price(Decimal(1), Decimal(2))})
    usage = {"input_tokens": 1_000_000, "output_tokens": 1_000_000}
    assert pricer.price("openai", "GPT-4.1", usage, TS) == PriceResult(
        Decimal(3), "override", "openai", "gpt-4.1")
    dated = pricer.price("openai", "gpt-4.1-2025-04-14", usage, TS)
    assert dated.source == SOURCE  # an override matches its exact name only


def test_overrides_are_provider_scoped():
    pricer = Pricer({("azure", "gpt-4.1"): Price(Decimal(1), Decimal(1)),
                     ("", "gpt-4.1"): Price(Decimal(5), Decimal(5))})
    usage = {"input_tokens": 1_000_000}
    assert pricer.price("Azure", "gpt-4.1", usage, TS).cost == Decimal(1)
    assert pricer.price("openai", "gpt-4.1", usage, TS).cost == Decimal(5)
    assert pricer.price(None, "gpt-4.1", usage, TS).cost == Decimal(5)
    scoped_only = Pricer({("azure", "gpt-4.1"): Price(Decimal(1), Decimal(1))})
    genai = unit_prices("gpt-4.1", "openai", TS).input_mtok
    assert scoped_only.price("openai", "gpt-4.1", usage, TS).cost == genai


def test_set_override_prices_an_unknown_model_from_then_on(pricer):
    usage = {"input_tokens": 1000, "cache_read_tokens": 400, "cache_write_tokens": 100, "output_tokens": 10}
    assert pricer.price(None, "my-finetune-7b", usage, TS).cost is None
    pricer.set_override("my-finetune-7b", Price(Decimal(2), Decimal(8), cache_read_mtok=Decimal("0.5")))
    # 500 uncached * 2 + 400 reads * 0.5 + 100 writes at the input price (none set) * 2 + 10 * 8
    assert pricer.price(None, "my-finetune-7b", usage, TS).cost == Decimal("0.00148")
    assert pricer.unit_prices(None, "my-finetune-7b") == {
        "input_mtok": Decimal(2), "output_mtok": Decimal(8), "cache_read_mtok": Decimal("0.5")}
    bad = pricer.price(None, "my-finetune-7b", {"input_tokens": 1, "cache_read_tokens": 2}, TS)
    assert bad.cost is None and "cannot exceed input_tokens (1)" in bad.error


@pytest.mark.parametrize(("args", "value"), [
    ((1, "2.5"), (Decimal(1), Decimal("2.5"))),
    ((0.1, Decimal("0.2")), (Decimal("0.1"), Decimal("0.2"))),  # no binary float noise
])
def test_price_converts_plain_numbers_to_decimal(args, value):
    price = Price(*args)
    assert (price.input_mtok, price.output_mtok) == value


@pytest.mark.parametrize("bad", [Decimal(-1), Decimal("NaN"), None, True, "cheap"])
def test_price_rejects_what_is_not_a_price(bad):
    with pytest.raises(ValueError, match=r"Price\.input_mtok must be a finite non-negative Decimal"):
        Price(bad, Decimal(1))


def test_unit_prices(pricer):
    """genai-prices' prices at the time, by unit; a tiered price by its base."""
    for model, provider, ts in [("gpt-4.1", "openai", TS), ("o3", "openai", datetime(2025, 6, 1, tzinfo=UTC)),
                                ("gemini-2.5-pro", "google", None)]:
        ours = pricer.unit_prices(provider, model, ts)
        theirs = unit_prices(model, provider, ts)
        assert {"input_mtok", "output_mtok"} <= ours.keys()
        assert ours == {unit: getattr(getattr(theirs, unit), "base", getattr(theirs, unit)) for unit in ours}
    assert pricer.unit_prices("google", "gemini-2.5-pro")["input_mtok"] == unit_prices(
        "gemini-2.5-pro", "google").input_mtok.base


def test_max_cost_is_the_worst_case(pricer):
    gpt, gemini = unit_prices("gpt-4.1", "openai", TS), unit_prices("gemini-2.5-pro", "google", TS)
    # every input token uncached, every allowed output token produced
    worst = (1000 * gpt.input_mtok + 500 * gpt.output_mtok) / M
    assert pricer.max_cost("openai", "gpt-4.1", 1000, 500, TS) == worst
    assert pricer.max_cost("google", "gemini-2.5-pro", 250_000, 1000, TS) == (  # the tier 250k input reaches
        250_000 * at(gemini.input_mtok, 250_000) + 1000 * at(gemini.output_mtok, 250_000)) / M
    assert pricer.max_cost(None, "my-finetune-7b", 1, 1, TS) is None


def test_fast_path_is_independent_of_genai_prices_calculation(pricer):
    usage = {"input_tokens": 123_456, "cache_read_tokens": 2_000, "output_tokens": 789}
    p = unit_prices("gpt-4.1", "openai", TS)
    expected = (121_456 * p.input_mtok + 2_000 * p.cache_read_mtok + 789 * p.output_mtok) / M
    assert fast_path("openai", "gpt-4.1", usage, TS) == expected  # our compiled prices alone
    assert pricer.price("openai", "gpt-4.1", usage, TS).cost == expected


def test_concurrent_first_calls_agree(monkeypatch):
    monkeypatch.setattr(pricing, "_current", None)  # every model resolved and compiled under contention
    models = [("openai", "gpt-4.1"), ("anthropic", "claude-sonnet-4-5"), ("google", "gemini-2.5-pro"),
              ("openai", "o3"), ("deepseek", "deepseek-chat")]
    jobs = [(p, m, {"input_tokens": 1000 * i + 7, "output_tokens": i}) for i in range(400) for p, m in models]
    pricer = Pricer()
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda job: pricer.price(*job, TS).cost, jobs))
    assert got == [genai_cost(*job, TS) for job in jobs]


def test_a_new_genai_prices_snapshot_is_picked_up(pricer):
    from genai_prices import data_snapshot

    usage = {"input_tokens": 10}
    providers = data_snapshot.get_snapshot().providers
    data_snapshot.set_custom_snapshot(data_snapshot.DataSnapshot(providers=providers, from_auto_update=True))
    try:
        snapshot = data_snapshot.get_snapshot()
        source = pricer.price("openai", "gpt-4.1", usage, TS).source
        assert source == f"{SOURCE} (prices updated {snapshot.timestamp:%Y-%m-%d})"
    finally:
        data_snapshot.set_custom_snapshot(None)
    assert pricer.price("openai", "gpt-4.1", usage, TS).source == SOURCE


def test_warm_loads_in_one_background_thread_without_updating_prices():
    warm()
    warm()
    assert len(pricing._warm_threads) == 1 and pricing._warm_threads[0].daemon
    pricing._warm_threads[0].join(timeout=30)
    assert pricing._current is not None
    from genai_prices import data_snapshot

    assert data_snapshot.get_snapshot().from_auto_update is False  # UpdatePrices never ran


# -- properties: random usage, all models in a sample, any decimal context --------------------------------

MODELS = [("openai", "gpt-4.1"), ("openai", "gpt-4o-realtime-preview"), ("google", "gemini-2.5-flash"),
          ("google", "gemini-2.5-pro"), ("anthropic", "claude-sonnet-4-5"), ("anthropic", "claude-opus-4-6"),
          ("openai", "o3"), ("deepseek", "deepseek-v4-flash"), ("perplexity", "sonar"),
          ("perplexity", "sonar-deep-research"), ("openai", "whisper-1"), ("groq", "whisper-large-v3"),
          ("openai", "tts-1"), (None, "gpt-5")]
counts = st.integers(0, 400_000)


@st.composite
def consistent_usage(draw) -> dict[str, int]:
    """Usage whose counts add up: built from disjoint parts, then some detail keys reported."""
    text, audio, read_text, read_audio, write_5m, write_1h, out_text, reasoning = (
        draw(counts) for _ in range(8))
    usage = {"input_tokens": text + audio + read_text + read_audio + write_5m + write_1h,
             "output_tokens": out_text + reasoning}
    details = ["reads", "audio", "writes", "reasoning", "web", "seconds", "chars"]
    shown = draw(st.sets(st.sampled_from(details)))
    if "reads" in shown:
        usage["cache_read_tokens"] = read_text + read_audio
    if "audio" in shown:
        usage["input_audio_tokens"] = audio + read_audio
        if "reads" in shown:
            usage["cache_audio_read_tokens"] = read_audio
    if "writes" in shown:
        usage |= {"cache_write_tokens": write_5m + write_1h, "cache_write_1h_tokens": write_1h}
    if "reasoning" in shown:
        usage["output_reasoning_tokens"] = reasoning
    if "web" in shown:
        usage["web_searches"] = draw(st.integers(0, 20))
    if "seconds" in shown:
        usage["audio_seconds"] = usage["input_audio_seconds"] = draw(st.integers(0, 7200))
    if "chars" in shown:
        usage["input_characters"] = draw(counts)
    return usage


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=st.sampled_from(MODELS), usage=consistent_usage(), ts=st.sampled_from(TIMESTAMPS),
       tier=st.sampled_from([None, None, "priority", "flex"]))
def test_random_consistent_usage_prices_like_genai_prices(model, usage, ts, tier):
    result = Pricer().price(*model, usage, ts, service_tier=tier)
    assert result.cost == genai_cost(*model, usage, ts, tier)
    assert result.cost >= 0


usage_keys = st.sampled_from(["input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
                              "cache_write_1h_tokens", "input_audio_tokens", "cache_audio_read_tokens",
                              "output_reasoning_tokens", "web_searches"])


@settings(max_examples=300, deadline=None)
@given(model=st.sampled_from(MODELS),
       usage=st.dictionaries(usage_keys, st.integers(-3, 300_000) | st.sampled_from([1.5, 2.0, True]),
                             max_size=6))
def test_random_inconsistent_usage_fails_exactly_when_genai_prices_fails(model, usage):
    assert outcome(Pricer().price(*model, usage, TS)) == genai_cost(*model, usage, TS)


@settings(max_examples=200, deadline=None)
@given(model=st.sampled_from(MODELS[:8]), usage=consistent_usage(), prec=st.integers(3, 28),
       rounding=st.sampled_from([decimal.ROUND_HALF_EVEN, decimal.ROUND_DOWN, decimal.ROUND_CEILING]))
def test_same_result_as_genai_prices_in_any_decimal_context(model, usage, prec, rounding):
    with decimal.localcontext(prec=prec, rounding=rounding):
        assert Pricer().price(*model, usage, TS).cost == genai_cost(*model, usage, TS)


RACE = """
import sys, threading, warnings
from datetime import UTC, datetime
warnings.simplefilter("error")
from llmcost_nb.pricing import pricer as pricing; from llmcost_nb.pricing import usage
errors, barrier = [], threading.Barrier(6)
def first_call(i):
    barrier.wait()
    try:
        if i % 2:
            usage.extract_usage({"usage": {"prompt_tokens": 3, "completion_tokens": 4}}, api="chat")
        else:
            pricing.Pricer().price("openai", "gpt-4.1", {"input_tokens": 3}, datetime.now(UTC))
    except Exception as exc:
        errors.append(repr(exc))
def warm():
    barrier.wait()
    try:
        pricing._warm_up()
    except Exception as exc:
        errors.append(repr(exc))
threads = [threading.Thread(target=first_call, args=(i,)) for i in range(5)] + [threading.Thread(target=warm)]
for t in threads: t.start()
for t in threads: t.join()
print(errors)
"""


@pytest.mark.parametrize("attempt", range(3))
def test_first_calls_racing_the_warm_up_thread_import_genai_prices_safely(attempt):
    """genai-prices' modules import each other: importing it from two threads at once (capture's warm-up
    thread and a first call) once gave 'partially initialized module' errors and unpriced calls."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", RACE], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


def test_gemini_audio_input_with_a_text_cache_is_priced():
    """Gemini lists only the modalities it cached; genai-prices needs the uncached audio stated as 0."""
    body = {"modelVersion": "gemini-2.5-flash", "usageMetadata": {
        "promptTokenCount": 1000, "candidatesTokenCount": 50, "totalTokenCount": 1050,
        "cachedContentTokenCount": 600,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 800},
                                {"modality": "AUDIO", "tokenCount": 200}],
        "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": 600}]}}
    model, usage = extract_usage(body, api="gemini")
    assert "cache_audio_read_tokens" not in usage
    with pytest.raises(ValueError):  # the premise: genai-prices wants the uncached audio stated
        genai_prices.calc_price(Usage(**usage), model, provider_id="google")
    expected = genai_prices.calc_price(Usage(**usage, cache_audio_read_tokens=0), model,
                                       provider_id="google").total_price
    result = Pricer().price("google", model, usage, datetime(2026, 11, 1, tzinfo=UTC))
    assert result.cost == expected
    # not inferred when the listed modalities do not account for every cached token
    partial = {**usage, "cache_read_tokens": 700}
    assert Pricer().price("google", model, partial, datetime(2026, 11, 1, tzinfo=UTC)).cost is None


class CountingPricer(Pricer):
    """A real pricer that also counts how many times it was asked."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.asked = 0

    def price(self, *args, **kwargs):
        self.asked += 1
        return super().price(*args, **kwargs)


def _call(**fields):
    from llmcost_nb import Call

    call = Call(api="messages", ts="2026-11-01T12:00:00.000000Z", **{"model": "house-model", **fields})
    call.set_usage({"input_tokens": 1000, "output_tokens": 200})
    return call


HOUSE = {("anthropic", "house-model"): Price(Decimal("2"), Decimal("8"))}  # $0.0036 for 1000 in, 200 out


def test_price_call_fills_cost_and_the_wire_formats_provider_on_an_unknown_host():
    pricer = CountingPricer(HOUSE)
    call = _call()
    result = pricing.price_call(pricer, call)
    assert (call.cost, call.price_source, call.provider, call.saved) == (Decimal("0.0036"), "override",
                                                                          "anthropic", None)
    assert result == PriceResult(Decimal("0.0036"), "override", "anthropic", "house-model")
    assert pricer.asked == 1
    other = _call(provider="openai")  # a known provider is looked up as it is: no price under openai
    assert pricing.price_call(pricer, other).cost is None and (other.cost, other.provider) == (None, "openai")


def test_price_call_charges_nothing_for_an_unbilled_call_and_does_not_ask_the_pricer():
    pricer = CountingPricer(HOUSE)
    call = _call(billed=False, status="error")
    assert pricing.price_call(pricer, call).cost == Decimal(0)
    assert (call.cost, call.price_source, call.saved, pricer.asked) == (Decimal(0), None, None, 0)


def test_a_replayed_call_is_priced_once_and_saves_what_it_would_have_cost():
    pricer = CountingPricer(HOUSE)
    call = _call(replayed=True, billed=False)
    pricing.price_call(pricer, call)
    assert (call.cost, call.saved, call.billed, call.price_source) == (Decimal(0), Decimal("0.0036"), False,
                                                                        "override")
    assert pricer.asked == 1
    pricing.price_call(pricer, call)  # a stream seen unfinished, then finished: priced again, same answer
    assert (call.cost, call.saved, call.billed, pricer.asked) == (Decimal(0), Decimal("0.0036"), False, 2)
    failed = _call(replayed=True, billed=False, status="error")
    pricing.price_call(pricer, failed)
    assert (failed.cost, failed.saved, pricer.asked) == (Decimal(0), None, 2)


def test_an_unpriced_call_is_warned_about_from_the_one_pricing():
    pricer = CountingPricer()
    call = _call(model="no-such-model-anywhere", provider="openai")
    with pytest.warns(LlmcostWarning, match=r"no price known for model 'no-such-model-anywhere' \(provider "
                                            r"openai\).*set_price\('no-such-model-anywhere'"):
        pricing.price_captured(pricer, call)
    assert (call.cost, pricer.asked) == (None, 1)
