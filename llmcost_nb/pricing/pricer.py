"""Exact, fast, offline prices: user overrides first, then genai-prices' bundled data.

``genai_prices.calc_price`` takes ~130 µs a call; :meth:`Pricer.price` returns the same Decimal in ~2 µs:
it resolves (provider, model) once, finds the price period active at the call's time and compiles each
period's prices once (:class:`_Evaluator`). genai-prices is imported on first use or by :func:`warm`; its
network updater is never started.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..core.call import UNKNOWN_USAGE, parse_iso
from ..core.warn import warn_once
from ..errors import UnknownModel
from .genai import import_genai_prices
from .providers import PREFIX_ALIASES, WIRE_PROVIDER, host_of

if TYPE_CHECKING:
    from ..core.call import Call

__all__ = ["MAX_PRICE_MTOK", "SELF_HOSTED", "Price", "PriceResult", "Pricer", "UnknownModel", "price_call",
           "price_captured", "unpriced_advice", "warm", "warn_unpriced"]

# The highest price a user may set, USD per million tokens (any unit): 16 times the dearest model genai-prices
# lists ($600 per Mtok). With it, one call of up to 900 million tokens costs at most ~$9.2M, what a ledger row
# holds in integer picodollars (a 64-bit integer): a typo such as "1e400" is refused, never stored.
MAX_PRICE_MTOK = Decimal(10_000)
SELF_HOSTED = "self-hosted"  # the price_source of a call to a self-hosted server: it costs $0
_PRICE_FIELDS = ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok")


@dataclass(frozen=True, slots=True)
class Price:
    """A user's price for a model, USD per million tokens; a cache price left None is charged as input."""

    input_mtok: Decimal
    output_mtok: Decimal
    cache_read_mtok: Decimal | None = None
    cache_write_mtok: Decimal | None = None

    def __post_init__(self) -> None:
        for name in _PRICE_FIELDS:
            if (value := getattr(self, name)) is None and name.startswith("cache"):
                continue
            if isinstance(value, float | int | str) and not isinstance(value, bool):
                with suppress(ArithmeticError):  # str() keeps 0.1 as 0.1, not its binary approximation
                    value = Decimal(str(value))
            if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
                raise ValueError(f"Price.{name} must be a finite non-negative Decimal, got {value!r}")
            if value > MAX_PRICE_MTOK:
                raise ValueError(f"{name} must be at most {MAX_PRICE_MTOK:,} USD per million tokens, got "
                                 f"{value!r}: is it per token instead of per million?")
            object.__setattr__(self, name, value)

    def cost(self, usage: Mapping[str, int]) -> Decimal:
        """USD for ``usage``; its ``input_tokens`` include cache reads and writes, as genai-prices counts."""
        counts = [usage.get(key) or 0 for key in
                  ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens")]
        if any(type(count) is not int or count < 0 for count in counts):
            raise ValueError(f"Invalid usage: token counts must be non-negative ints, got {dict(usage)!r}")
        total_in, read, write, output = counts
        if (uncached := total_in - read - write) < 0:
            raise ValueError(f"Invalid usage data: cache_read_tokens ({read}) + cache_write_tokens ({write}) "
                             f"cannot exceed input_tokens ({total_in})")
        read_price = self.input_mtok if self.cache_read_mtok is None else self.cache_read_mtok
        write_price = self.input_mtok if self.cache_write_mtok is None else self.cache_write_mtok
        total = uncached * self.input_mtok + read * read_price + write * write_price
        return (total + output * self.output_mtok) / 1_000_000


@dataclass(frozen=True, slots=True)
class PriceResult:
    cost: Decimal | None  # None when the model is unknown (or its usage cannot be priced)
    source: str | None  # "genai-prices 0.2.3" | "override" | None
    provider: str | None  # genai-prices provider id used
    model_id: str | None  # genai-prices model id matched (or the override's model)
    error: str | None = None  # why cost is None


class Pricer:
    """Prices calls; user overrides win over genai-prices. One per ledger (overrides live in the ledger).

    >>> usage = {"input_tokens": 1000, "output_tokens": 200}
    >>> Pricer().price("openai", "gpt-4.1", usage, datetime.now(UTC))  # doctest: +ELLIPSIS
    PriceResult(cost=Decimal('0.003600'), source='genai-prices 0.2.3', provider='openai', ...)
    """

    def __init__(self, overrides: Mapping[tuple[str, str], Price] | None = None,
                 self_hosted: Iterable[str] = ()) -> None:
        # (provider or "", lower-cased model) -> (model as given, price); replaced whole, never mutated
        self._overrides: dict[tuple[str, str], tuple[str, Price]] = {}
        self._lock = threading.Lock()
        for (provider, model), price in (overrides or {}).items():
            self.set_override(model, price, provider)
        # hosts whose calls cost nothing: the user's own servers (see llmcost_nb.self_hosted)
        self.self_hosted: frozenset[str] = frozenset(host_of(h) for h in self_hosted)

    def set_self_hosted(self, base_url: str) -> str:
        """Price every call to ``base_url``'s host at $0 (``price_source`` ``"self-hosted"``); returns the
        host."""
        host = host_of(base_url)
        with self._lock:
            self.self_hosted = self.self_hosted | {host}
        return host

    def set_override(self, model: str, price: Price, provider: str | None = None) -> None:
        """Price ``model`` (its exact name, any case) at ``price``, for ``provider`` only or for any."""
        if not isinstance(price, Price):
            raise TypeError(f"price must be a llmcost_nb.pricing.Price, got {type(price).__name__}")
        with self._lock:
            self._overrides = {**self._overrides, ((provider or "").lower(), model.lower()): (model, price)}

    def _override(self, provider: str | None, model: str) -> tuple[str, Price] | None:
        model = model.lower()
        if provider and (found := self._overrides.get((provider.lower(), model))) is not None:
            return found
        return self._overrides.get(("", model))

    def price(self, provider: str | None, model: str | None, usage: Mapping[str, int], ts: datetime | None,
              *, service_tier: str | None = None) -> PriceResult:
        """The cost of one call with ``usage`` (genai-prices usage keys) made at ``ts`` (UTC).

        Never raises for an unknown model or bad usage: ``cost`` is then None and ``error`` says why.
        """
        if not model:
            return PriceResult(None, None, provider, None, "no model reported, so the call cannot be priced")
        if self._overrides and (found := self._override(provider, model)) is not None:
            try:
                return PriceResult(found[1].cost(usage), "override", provider, found[0])
            except ValueError as exc:
                return PriceResult(None, None, provider, found[0], f"could not price {model!r}: {exc}")
        catalog = _current
        if catalog is None or catalog.module._custom_snapshot is not catalog.custom:
            catalog = _load_catalog()
        entry = catalog.entries.get((provider, model)) or catalog.resolve(provider, model)
        if ts is None:
            ts = datetime.now(UTC)
        if service_tier is None and entry.unknown is None:  # the hot path, inlined: nearly every call
            evaluator = entry.fixed or entry.evaluators.get((None, entry.periods[None](ts)))
            if evaluator is not None and (plan := evaluator.plans.get(tuple(usage))) is not None and (
                    cost := plan(usage)) is not None:
                return PriceResult(cost, catalog.source, entry.provider_id, entry.model_id)
        return entry.price(usage, ts, service_tier)

    def unit_prices(self, provider: str | None, model: str, ts: datetime | None = None) -> dict[str, Decimal]:
        """Prices at ``ts`` by unit, e.g. ``{"input_mtok": Decimal("2"), "output_mtok": Decimal("8"), ...}``:
        ``*_mtok`` per million tokens, ``*_kcount`` per thousand, a tiered price's base. Raises UnknownModel.
        """
        if self._overrides and (found := self._override(provider, model)) is not None:
            return {name: value for name in _PRICE_FIELDS if (value := getattr(found[1], name)) is not None}
        entry = _load_catalog().resolve(provider, model)
        if entry.unknown is not None:
            raise UnknownModel(model, provider)
        prices = entry.info.get_prices(datetime.now(UTC) if ts is None else ts)
        return {key: getattr(value, "base", value) for key, value in vars(prices).items()
                if value is not None and not key.startswith("_")}

    def max_cost(self, provider: str | None, model: str, input_tokens: int, max_output_tokens: int,
                 ts: datetime | None = None) -> Decimal | None:
        """Worst case for a request: all input uncached, every allowed output token produced (reasoning is
        output). None if the model is unknown."""
        return self.price(provider, model, {"input_tokens": input_tokens, "output_tokens": max_output_tokens},
                          ts).cost


class _Catalog:
    """genai-prices' data for one snapshot, resolved and compiled as calls need it. Read-only, derived from
    the library, so shared by every Pricer; replaced when the user installs another snapshot."""

    def __init__(self) -> None:
        import_genai_prices()
        from genai_prices import __version__, data_snapshot

        self.module, self.custom = data_snapshot, data_snapshot._custom_snapshot
        self.snapshot = data_snapshot.get_snapshot()
        self.source = f"genai-prices {__version__}"
        if self.snapshot.from_auto_update:
            self.source += f" (prices updated {self.snapshot.timestamp:%Y-%m-%d})"
        self.entries: dict[tuple[str | None, str], _Entry] = {}
        self.prefixes: dict[str, str | None] = {}  # model-name prefix -> provider id
        self.lock = threading.RLock()

    def candidates(self, provider: str | None, model: str) -> list[tuple[str | None, str]]:
        """Where to look ``model`` up, in order: under ``provider`` as named (OpenRouter and Groq list
        ``openai/gpt-oss-120b`` themselves); then, for a gateway's ``prefix/name`` (``openai/gpt-4o-mini``,
        ``openrouter/anthropic/claude-sonnet-4``), the name under the provider the prefix names, prefix after
        prefix; last, by the model name alone (genai-prices' model patterns)."""
        found: list[tuple[str | None, str]] = [(provider, model)] if provider else []
        name = model
        while "/" in name:
            prefix, name = name.split("/", 1)
            if not name or (prefixed := self.prefix_provider(prefix)) is None:
                break
            found.append((prefixed, name))
        found.append((None, model))
        return found

    def prefix_provider(self, prefix: str) -> str | None:
        """The genai-prices provider id a model-name prefix names: its id, one its ``provider_match`` takes
        (``xai``, ``mistralai``, ``vertex_ai``, ``bedrock``, ``together_ai``, ...) or a gateway alias
        (:data:`~llmcost_nb.pricing.providers.PREFIX_ALIASES`); None for an organisation genai-prices has
        no provider for (``Qwen/...``)."""
        key = prefix.lower().strip()
        if (known := self.prefixes.get(key, False)) is not False:
            return known
        from genai_prices.data_snapshot import find_provider_by_id

        alias = PREFIX_ALIASES.get(key, key)
        match = find_provider_by_id(self.snapshot.providers, alias) if alias else None
        self.prefixes[key] = found = match.id if match is not None else None
        return found

    def resolve(self, provider: str | None, model: str) -> _Entry:
        with self.lock:
            return self.entries.get((provider, model)) or self.entries.setdefault(
                (provider, model), _Entry(self, provider, model))


_current: _Catalog | None = None
_lock = threading.Lock()  # guards _current and _warm_threads


def _load_catalog() -> _Catalog:
    global _current
    with _lock:
        if _current is None or _current.module._custom_snapshot is not _current.custom:
            _current = _Catalog()
        return _current


class _Entry:
    """One (provider, model) resolved as ``genai_prices.calc_price`` resolves it, with its price periods."""

    __slots__ = ("catalog", "evaluators", "fixed", "info", "model_id", "periods", "provider", "provider_id",
                 "unknown")

    def __init__(self, catalog: _Catalog, provider: str | None, model: str) -> None:
        self.catalog, self.unknown, self.fixed, self.evaluators = catalog, None, None, {}
        find = catalog.snapshot.find_provider_model
        for provider_id, name in catalog.candidates(provider, model):
            with suppress(LookupError):
                self.provider, self.info = find(name, None, provider_id, None)
                break
        else:
            self.unknown = PriceResult(None, None, provider, None, str(UnknownModel(model, provider)))
            return
        from genai_prices.types import ModelPrice

        info, self.provider_id, self.model_id = self.info, self.provider.id, self.info.id
        constraints = [] if isinstance(info.prices, ModelPrice) else [c.constraint for c in info.prices]
        self.periods = {None: _period_key(constraints)}
        # a service tier that no variant names is priced as no tier; variants only apply to the provider's
        # own models, not to those it borrows from a fallback provider (as in ModelInfo.calc_price)
        if any(info is m for m in self.provider.models):
            for variant in info.price_variants or ():
                if set(variant.when) == {"service_tier"}:
                    self.periods[variant.when["service_tier"]] = _period_key(constraints + [
                        v.constraint for v in info.price_variants or () if v.when == variant.when])
        if not any(constraints):
            self.fixed = self.evaluator(datetime.now(UTC), None)

    def evaluator(self, ts: datetime, tier: str | None) -> _Evaluator:
        if (periods := self.periods.get(tier)) is None:
            periods, tier = self.periods[None], None
        if (evaluator := self.evaluators.get(key := (tier, periods(ts)))) is None:
            with self.catalog.lock:
                model_price = self.info.get_prices(ts, {"service_tier": tier} if tier else None)
                evaluator = self.evaluators[key] = _Evaluator(self._resolve(model_price))
        return evaluator

    def _resolve(self, model_price: Any) -> tuple[tuple[Any, Any], ...] | None:
        """The (unit, price) pairs genai-prices sums for ``model_price``; None where it must do the work."""
        if self.provider.id == "groq" and self.info.id.startswith("whisper"):  # it bills at least 10 s
            return None
        try:
            from genai_prices.types import ModelPrice, _collect_resolved_model_prices
            from genai_prices.units import _get_registry
            from genai_prices.validation import validate_priced_units

            registry = _get_registry()
            keys = {k for k, v in vars(model_price).items() if v is not None and not k.startswith("_")}
            if type(model_price) is ModelPrice and keys <= registry._all_price_keys:  # else it warns: let it
                resolved = _collect_resolved_model_prices(model_price, registry)
                validate_priced_units(tuple(unit for unit, _ in resolved), registry)
                return resolved
        except ValueError:  # invalid prices: genai-prices raises the same error on every call
            pass
        except Exception as exc:  # other genai-prices internals: stay exact, only slower
            warn_once("pricing-compile", f"pricing falls back to genai-prices' calculation ({exc!r})")
        return None

    def price(self, usage: Mapping[str, Any], ts: datetime, tier: str | None) -> PriceResult:
        if self.unknown is not None:
            return self.unknown
        provider, info = self.provider, self.info
        if (cost := self.evaluator(ts, tier).cost(usage)) is not None:
            return PriceResult(cost, self.catalog.source, provider.id, info.id)
        from genai_prices import Usage
        from genai_prices.units import _get_registry

        known = _get_registry()._reported_usage_keys
        for key in usage.keys() - known:
            warn_once(f"usage-key:{key}", f"usage key {key!r} is not one genai-prices prices; it is ignored")
        usage = _with_implied_zeros(usage)
        try:
            calc = info.calc_price(Usage(**{k: v for k, v in usage.items() if k in known}), provider,
                                   genai_request_timestamp=ts,
                                   price_context={"service_tier": tier} if tier else None)
        except (ValueError, TypeError) as exc:
            return PriceResult(None, None, provider.id, info.id, f"could not price {info.id!r}: {exc}")
        return PriceResult(calc.total_price, self.catalog.source, provider.id, info.id)


_MODALITIES = ("text", "audio", "image", "video")


def _with_implied_zeros(usage: Mapping[str, Any]) -> Mapping[str, Any]:
    """``usage`` with the cached-read count of each input modality stated as 0 where the other modalities'
    cached counts already add up to all cached tokens. Gemini lists only the modalities it cached
    (``cacheTokensDetails``), and genai-prices will not price audio input alongside a cache read without an
    explicit ``cache_audio_read_tokens``: here it can only be 0.

    >>> _with_implied_zeros({"input_tokens": 9, "input_audio_tokens": 2, "input_text_tokens": 7,
    ...                      "cache_read_tokens": 5, "cache_text_read_tokens": 5})["cache_audio_read_tokens"]
    0
    """
    cached = usage.get("cache_read_tokens")
    split = {m: usage.get(f"cache_{m}_read_tokens") for m in _MODALITIES}
    if not cached or sum(v or 0 for v in split.values()) != cached or all(v is None for v in split.values()):
        return usage
    zeros = {f"cache_{m}_read_tokens": 0 for m, v in split.items()
             if v is None and usage.get(f"input_{m}_tokens")}
    return {**usage, **zeros} if zeros else usage


def _period_key(constraints: list[Any]) -> Callable[[datetime], Any]:
    """A function of the timestamp, equal for two timestamps in the same price period: which start dates
    have passed (by UTC date) and between which times of day (UTC) it falls, each found by a bisect."""
    from genai_prices.types import StartDateConstraint, TimeOfDateConstraint

    found = [c for c in constraints if c is not None]
    if not all(isinstance(c, StartDateConstraint | TimeOfDateConstraint) for c in found):
        return lambda ts: tuple(c.active(ts) for c in found)  # a kind of constraint new to us
    starts = sorted({c.start_date.toordinal() for c in found if isinstance(c, StartDateConstraint)})
    times = sorted({_micros(datetime.combine(date(1970, 1, 1), t).astimezone(UTC) if t.tzinfo else t)
                    for c in found if isinstance(c, TimeOfDateConstraint)
                    for t in (c.start_time, c.end_time)})

    def key(ts: datetime) -> Any:  # genai-prices takes a naive timestamp (or time of day) as UTC
        ts = ts if ts.tzinfo is None else ts.astimezone(UTC)
        day = bisect_right(starts, ts.toordinal())
        return (day, bisect_right(times, _micros(ts))) if times else day

    return key


def _micros(t: time | datetime) -> int:
    return ((t.hour * 60 + t.minute) * 60 + t.second) * 1_000_000 + t.microsecond  # since midnight


class _Evaluator:
    """One price period of one model, compiled to straight-line Python per set of usage keys (a plan).

    genai-prices' ``ModelPrice.calc_price`` splits usage into leaves (uncached input = input - cache reads -
    cache writes, ...) and sums ``price * leaf / per`` over the priced units in their stored order. A plan
    does the same subtractions and Decimal operations in the same order, so it gives the same Decimal in any
    decimal context: ``price / per`` becomes one constant only for a power-of-ten ``per`` (an exact exponent
    shift: same digits, same rounding), and terms known to be zero are left out. A plan returns None ("let
    genai-prices do it") for other keys, non-int or negative counts or leaves, and counts it would infer.
    """

    __slots__ = ("plans", "resolved")

    def __init__(self, resolved: tuple[tuple[Any, Any], ...] | None) -> None:
        self.resolved = resolved  # the (unit, price) pairs genai-prices sums, None if only it may price
        self.plans: dict[tuple[str, ...], Callable[..., Decimal | None]] = {}  # by the usage's keys, in order

    def cost(self, usage: Mapping[str, Any]) -> Decimal | None:
        if (plan := self.plans.get(keys := tuple(usage))) is None:
            if len(self.plans) >= 64:  # usage of ever new shapes is not worth compiling
                return None
            plan = self.plans[keys] = _slow if self.resolved is None else self._plan(keys)
        return plan(usage)

    def _plan(self, keys: tuple[str, ...]) -> Callable[[Mapping[str, Any]], Decimal | None]:
        from genai_prices.decompose import is_descendant_or_self as covers
        from genai_prices.types import TieredPrices
        from genai_prices.units import _get_registry

        registry = _get_registry()
        if not registry._reported_usage_keys.issuperset(keys):
            return _slow
        present = [registry.units[key] for key in keys]
        resolved = self.resolved or ()
        leaves = sorted((u for u, _ in resolved if u.usage_key != "requests"),
                        key=lambda u: (-len(u.dimensions), u.usage_key))  # as compute_leaf_values orders them
        inferred = [u for u in leaves if u.usage_key not in keys]
        if any(isinstance(p, TieredPrices) for _, p in resolved) and "input_tokens" not in keys:
            inferred.append(registry.units["input_tokens"])
        for unit in inferred:  # genai-prices infers 0 for these, or raises if other counts imply them
            if any(p is not unit and covers(unit, p) for p in present) or any(
                a.is_compatible_with(b) and not covers(a, b) and not covers(b, a)
                and unit.dimensions == {**a.dimensions, **b.dimensions}
                for i, a in enumerate(present) for b in present[i + 1:]
            ):
                return _slow
        return self._generate(keys, [u for u in leaves if u.usage_key in keys], covers)

    def _generate(self, keys: tuple[str, ...], leaves: list[Any], covers: Callable[..., bool]) -> Any:
        from genai_prices.types import TieredPrices

        name = {key: f"v{i}" for i, key in enumerate(keys)}  # the caller matched the keys: they are all there
        lines = ["def plan(u):", *(f"    {name[key]} = u[{key!r}]" for key in keys)]
        if keys:
            checks = " or ".join(f"type({v}) is not int or {v} < 0" for v in name.values())
            lines += [f"    if {checks}:", "        return None"]
        if any(isinstance(price, TieredPrices) for _, price in self.resolved or ()):
            lines.append(f"    ti = {name.get('input_tokens', '0')}")  # all input tokens choose the tier
        negatives = []
        for unit in leaves:  # absent leaves are 0: nothing present lies below them (checked in _plan)
            minus = [name[d.usage_key] for d in leaves if d is not unit and covers(unit, d)]
            if minus:  # the leaf replaces the count: later leaves subtract leaves, as genai-prices does
                lines.append(f"    {name[unit.usage_key]} = {name[unit.usage_key]} - {' - '.join(minus)}")
                negatives.append(f"{name[unit.usage_key]} < 0")
        if negatives:
            lines += [f"    if {' or '.join(negatives)}:", "        return None"]
        constants: dict[str, Any] = {"ZERO": Decimal(0)}

        def constant(price: Decimal, per: int) -> str:
            ref = f"c{len(constants)}"
            sign, digits, exponent = price.as_tuple()
            exact_shift = Decimal((sign, digits, int(exponent) - len(str(per)) + 1))  # price / per, exactly
            constants[ref] = exact_shift if str(per).rstrip("0") == "1" else price
            return ref

        terms = []
        for unit, price in self.resolved or ():
            if (count := "1" if unit.usage_key == "requests" else name.get(unit.usage_key)) is None:
                continue
            if isinstance(price, TieredPrices):  # cliff pricing, as genai_prices.types.calc_unit_price
                coefficient = "".join(f"{constant(tier.price, unit.per)} if ti > {tier.start} else "
                                      for tier in reversed(price.tiers)) + constant(price.base, unit.per)
            else:
                coefficient = constant(price, unit.per)
            divide = "" if str(unit.per).rstrip("0") == "1" else f" / {unit.per}"
            terms.append(f"({coefficient}) * {count}{divide}")
        lines.append(f"    return {' + '.join(terms) or 'ZERO'}")
        exec("\n".join(lines), constants)
        return constants["plan"]


def _slow(usage: Mapping[str, Any]) -> None:  # the plan for what only genai-prices may price
    return None


_warm_threads: list[threading.Thread] = []


def warm() -> None:
    """Import genai-prices and load its data in a background daemon thread (idempotent), so the first
    captured call does not wait ~0.3 s for it."""
    with _lock:
        if _warm_threads:
            return
        _warm_threads.append(thread := threading.Thread(target=_warm_up, name="llmcost-warm", daemon=True))
    thread.start()


def _warm_up() -> None:
    from .usage import warm_extractors

    try:
        _load_catalog()
        warm_extractors()
    except Exception as exc:  # warming only saves time; the first real call reports any problem
        warn_once("pricing-warm", f"could not preload genai-prices ({exc!r})")


def price_call(pricer: Pricer, call: Call, when: datetime | None = None) -> PriceResult:
    """Price ``call`` with ``pricer``: the one place that sets ``call.cost``, ``price_source`` and ``saved``.

    - Not billed (an error, a refusal): costs 0.
    - Replayed (served from a recording): priced once as the real call would have been, then that cost is
      what it ``saved`` and it costs 0, not billed (a replayed error saved nothing).
    - A call to a host declared self-hosted (:meth:`Pricer.set_self_hosted`, ``llmcost_nb.self_hosted``)
      costs 0, ``price_source`` ``"self-hosted"``: priced, not unknown.
    - A call whose usage could not be read (``usage_source`` :data:`~llmcost_nb.core.call.UNKNOWN_USAGE`)
      is unpriced (cost None): never $0, and re-pricing it cannot make it $0.
    - On an unknown host (a proxy, a local server) the model is looked up under the wire format's own
      provider first (:data:`~llmcost_nb.pricing.providers.WIRE_PROVIDER`); a call without a provider gets
      the one that priced it.

    ``when`` is ``call.ts`` as a datetime, when the caller has it already. Returns what the pricer said
    (``error`` says why a billed call has no cost; see :func:`warn_unpriced`)."""
    if call.replayed and call.status == "error":
        call.cost, call.price_source, call.saved = Decimal(0), None, None
        return PriceResult(Decimal(0), None, call.provider, None)
    if not call.billed and not call.replayed:
        call.cost, call.price_source = Decimal(0), None
        return PriceResult(Decimal(0), None, call.provider, None)
    if call.host is not None and call.host in pricer.self_hosted:
        result = PriceResult(Decimal(0), SELF_HOSTED, call.provider, call.model or call.model_requested)
        call.cost, call.price_source = result.cost, result.source
        if call.replayed:
            call.saved, call.billed = Decimal(0), False
        return result
    if call.usage_source == UNKNOWN_USAGE:  # whatever its tokens say, they are not what was billed
        result = PriceResult(None, None, call.provider, None, "its token usage is not known")
    else:
        result = pricer.price(
            call.provider or WIRE_PROVIDER.get(call.api), call.model or call.model_requested, call.usage,
            when or parse_iso(call.ts), service_tier=call.service_tier,
        )
    call.cost, call.price_source = result.cost, result.source
    if call.provider is None and result.cost is not None:
        call.provider = result.provider
    if call.replayed:
        call.saved, call.cost, call.billed = call.cost, Decimal(0), False
    return result


def price_captured(pricer: Pricer, call: Call) -> None:
    """:func:`price_call` for a call being recorded: never raises (a failure is warned about and leaves the
    cost empty), and says once why a billed call has no cost (:func:`warn_unpriced`)."""
    try:
        warn_unpriced(call, price_call(pricer, call))
    except Exception as exc:
        warn_once(f"pricing:{type(exc).__name__}", f"pricing failed ({exc!r}); cost left empty")
        call.cost, call.price_source = None, None


def warn_unpriced(call: Call, result: PriceResult) -> None:
    """Say (once per model) why a billed call has no cost, from what pricing it said: a model without a
    price, or usage its price cannot apply to. Nothing for a priced or unbilled call."""
    if not call.billed or call.cost is not None or not call.model or call.usage_source == UNKNOWN_USAGE:
        return  # (unknown usage was warned about where it was read)
    if result.model_id is not None and result.error:  # the model is known; these counts cannot be priced
        warn_once(f"unpriceable:{call.model}",
                  f"{result.error}; the call's tokens are recorded with an empty cost")
        return
    warn_once(f"unknown-model:{call.provider}:{call.model}",
              unpriced_advice(call.model, call.provider, call.host))


def unpriced_advice(model: str, provider: str | None, host: str | None = None) -> str:
    """Why a model has no cost, and the three ways to give it one."""
    where = f"provider {provider or 'unknown'}" + (f", host {host}" if host else "")
    server = f"http://{host}" if host else "http://your-server:8000"
    return (f"no price known for model {model!r} ({where}): its tokens are recorded with an empty cost. "
            f"If a gateway serves it, name the provider as a prefix (e.g. 'openai/gpt-4o-mini'); if it runs "
            f"on your own server, declare that free with llmcost_nb.self_hosted({server!r}); or set a price "
            f"with llmcost_nb.set_price({model!r}, input_mtok=..., output_mtok=...). "
            "Then Ledger().reprice().")
