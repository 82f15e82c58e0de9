"""Statistics for comparisons: bootstrap confidence intervals and paired differences, seeded so that the
same data and seed always give the same interval; and the confidence bounds and stopping rule of an adaptive
(racing) comparison, :class:`MeanBound` and :class:`Race`.

>>> bootstrap_ci([1, 0, 1, 1, 0, 1, 1, 1], seed=0)
(0.375, 1.0)
>>> paired_bootstrap([0, 0, 1, 0], [1, 1, 1, 1], seed=0).diff
0.75

Percentile bootstrap: resample the values (for a paired comparison, the inputs: each keeps its pair) with
replacement ``n_resamples`` times and take the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the
resampled means.

Racing (``compare(..., adaptive=True)``) needs bounds that hold at every round, not once: see
:class:`MeanBound` and :class:`Race` for the bound used and what it assumes.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RACE_METRICS", "MeanBound", "PairedComparison", "Race", "RaceStop", "bootstrap_ci", "check_race",
           "paired_bootstrap"]


def _check(level: float, n_resamples: int) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1 (e.g. 0.95), got {level!r}")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive int, got {n_resamples!r}")


def _means(values: Any, n_resamples: int, seed: int | None) -> Any:
    import numpy as np

    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(values), size=(n_resamples, len(values)))
    return values[picks].mean(axis=1)


def bootstrap_ci(
    values: Sequence[float], *, level: float = 0.95, n_resamples: int = 2000, seed: int | None = 0
) -> tuple[float, float]:
    """A percentile-bootstrap confidence interval for the mean of ``values`` (NaN, NaN when empty)."""
    import numpy as np

    _check(level, n_resamples)
    data = np.asarray([float(v) for v in values], dtype=float)
    if data.size == 0:
        return float("nan"), float("nan")
    means = _means(data, n_resamples, seed)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


@dataclass(frozen=True)
class PairedComparison:
    """``b`` against ``a`` on the same inputs: the mean difference (b − a) with its bootstrap CI."""

    a: str
    b: str
    metric: str
    n: int
    mean_a: float
    mean_b: float
    diff: float
    low: float
    high: float
    p_value: float
    level: float

    @property
    def significant(self) -> bool:
        """The interval excludes 0: a real difference at this level, not noise."""
        return self.low > 0 or self.high < 0

    def __str__(self) -> str:
        verdict = (
            "a real difference"
            if self.significant
            else "not distinguishable from noise (the interval contains 0)"
        )
        return (
            f"{self.b} − {self.a}: {self.metric} {self.diff:+.4g} [{self.low:+.4g}, {self.high:+.4g}] "
            f"({self.level:.0%} CI, {self.n} paired inputs, p≈{self.p_value:.3g}) — {verdict}"
        )

    def _repr_html_(self) -> str:
        from html import escape

        return f'<div class="llmcost-paired">{escape(str(self))}</div>'


def paired_bootstrap(
    a: Sequence[float],
    b: Sequence[float],
    *,
    level: float = 0.95,
    n_resamples: int = 2000,
    seed: int | None = 0,
    names: tuple[str, str] = ("a", "b"),
    metric: str = "score",
) -> PairedComparison:
    """Compare two cells measured on the same inputs (``a[i]`` and ``b[i]`` share input ``i``)."""
    import numpy as np

    _check(level, n_resamples)
    if len(a) != len(b):
        raise ValueError(f"paired values must have the same length, got {len(a)} and {len(b)}")
    if not len(a):
        raise ValueError("no input was measured in both cells: nothing to compare")
    va, vb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    diffs = vb - va
    means = _means(diffs, n_resamples, seed)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    p_value = min(1.0, 2 * min(float((means <= 0).mean()), float((means >= 0).mean())))
    return PairedComparison(
        names[0],
        names[1],
        metric,
        len(diffs),
        float(va.mean()),
        float(vb.mean()),
        float(diffs.mean()),
        float(low),
        float(high),
        p_value,
        level,
    )


# -- racing -------------------------------------------------------------------------------------------------
# The metrics a race can be run on, and whether lower is better (as CompareResult.best). total_cost is raced
# as mean_cost: in the full grid every cell has the same n, so the two rank cells alike.
RACE_METRICS = {
    "cost_per_success": True,
    "mean_cost": True,
    "total_cost": True,
    "success_rate": False,
    "mean_score": False,
}


class MeanBound:
    """A confidence sequence for the mean of a finite population of ``population`` values in [0, 1], seen one
    at a time in a uniformly random order (sampling without replacement): at every step ``t`` at once, with
    probability at least ``1 - alpha``, the population mean lies in :meth:`interval`.

    The bound is the betting confidence sequence of Waudby-Smith & Ramdas ("Estimating means of bounded
    random variables by betting", JRSS-B 2023, sections 4 and 6): for each candidate mean ``m``, two gamblers
    bet that the next value is above (below) its conditional mean given the values seen,
    ``(N·m − S_{t−1}) / (N − t + 1)``, with stakes fixed before the value is seen (their predictable plug-in
    rule, truncated at ``c / mean`` so wealth stays positive). Under ``m`` each gambler's wealth is a
    nonnegative martingale, so by Ville's inequality their hedged wealth ``max(K⁺/2, K⁻/2)`` passes
    ``1/alpha`` with probability at most ``alpha`` at any time — no correction for looking after every value.
    ``m`` is rejected once it does, and stays rejected. It adapts to the variance (nearly constant costs give
    a narrow interval) and reaches the exact mean once the whole population is seen. Assumptions: values in
    [0, 1]; the order is a uniform random permutation fixed in advance; each value would be the same in any
    order (it does not depend on what was seen before it). Candidates are a grid: ``k/N`` when ``discrete``
    (a population of 0/1 values, whose mean is one of those; up to ``4 × grid`` values) else 1/``grid`` steps,
    the interval widened by one step. Also intersected with what is certain: the unseen values lie in [0, 1].

    >>> bound = MeanBound(20, 0.05, discrete=True)
    >>> for value in [1.0] * 10: bound.update(value)
    >>> bound.interval()
    (0.75, 1.0)
    """

    _C = 0.75  # stake truncation: wealth can lose at most 75% in one bet

    def __init__(self, population: int, alpha: float, *, discrete: bool = False, grid: int = 1024) -> None:
        import numpy as np

        if isinstance(population, bool) or not isinstance(population, int) or population < 1:
            raise ValueError(f"population must be a positive int, got {population!r}")
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be between 0 and 1, got {alpha!r}")
        self.population, self.alpha = population, alpha
        discrete = discrete and population <= 4 * grid  # past that, the 1/grid steps: finer than needed
        self._m = np.arange(population + 1) / population if discrete else np.linspace(0.0, 1.0, grid + 1)
        self._step = 0.0 if discrete else 1.0 / grid
        self._up = np.zeros(len(self._m))  # log wealth of the gambler betting on values above m
        self._down = np.zeros(len(self._m))
        self._alive = np.ones(len(self._m), dtype=bool)
        self._threshold = math.log(1 / alpha) + math.log(2)  # hedged: max(K+/2, K-/2) >= 1/alpha
        self._log_stake = math.log(2 / alpha)
        self.n, self.total = 0, 0.0
        self._mean, self._squares = 0.5, 0.25  # the plug-in rule's running mean and squared deviations

    def update(self, value: float) -> None:
        """One more value of the population (in [0, 1])."""
        import numpy as np

        if not 0.0 <= value <= 1.0:
            raise ValueError(f"a MeanBound takes values in [0, 1], got {value!r}")
        if self.n >= self.population:
            raise ValueError(f"all {self.population} values were already seen")
        t = self.n + 1
        stake = math.sqrt(2 * self._log_stake / (self._squares / t * t * math.log(1 + t)))
        conditional = (self.population * self._m - self.total) / (self.population - t + 1)
        impossible = (conditional < -1e-12) | (conditional > 1 + 1e-12)
        conditional = np.clip(conditional, 0.0, 1.0)
        up = np.minimum(stake, self._C / np.maximum(conditional, 1e-12))
        down = np.minimum(stake, self._C / np.maximum(1.0 - conditional, 1e-12))
        self._up += np.log1p(up * (value - conditional))
        self._down += np.log1p(-down * (value - conditional))
        self._alive &= ~impossible & (np.maximum(self._up, self._down) < self._threshold)
        self._squares += (value - self._mean) ** 2
        self.n, self.total = t, self.total + value
        self._mean = (0.5 + self.total) / (t + 1)

    def interval(self) -> tuple[float, float]:
        """(low, high): the population mean's bounds after the values seen so far."""
        import numpy as np

        low = self.total / self.population  # every unseen value 0 ...
        high = (self.total + self.population - self.n) / self.population  # ... or 1
        alive = np.flatnonzero(self._alive)
        if alive.size:
            low = max(low, float(self._m[alive[0]]) - self._step)
            high = min(high, float(self._m[alive[-1]]) + self._step)
        return math.floor(low * 1e12) / 1e12, math.ceil(high * 1e12) / 1e12  # outward: tidy, never narrower


@dataclass(frozen=True)
class RaceStop:
    """A cell stopped by a race: after ``after`` of ``units`` inputs, ``dominator``'s bound beat its own."""

    cell: Hashable
    after: int
    units: int
    dominator: Hashable
    by: str
    confidence: float
    last_input: str | None = None

    def message(self) -> str:
        where = f" ({self.last_input})" if self.last_input is not None else ""
        return (
            f"after input {self.after} of {self.units}{where}: dominated by {self.dominator!r} on {self.by} "
            f"at {self.confidence:.0%}"
        )


@dataclass
class _CellBounds:
    success: MeanBound
    cost: MeanBound
    score: MeanBound
    cost_bound: float | None  # the worst cost of one call (the plan's), or None: unknown (unpriced model)
    cost_sum: float = 0.0
    successes: int = 0
    score_sum: float = 0.0
    cost_unbounded: bool = False  # a call cost more than cost_bound: the cost bound no longer holds
    score_unbounded: bool = False  # a score missing or outside [0, 1]


@dataclass
class Race:
    """The stopping rule of an adaptive comparison over ``cells``, each to be run on the same ``units``
    inputs in the same random order.

    Feed every cell's outcome for each input with :meth:`observe` (in the shared order), then call
    :meth:`decide` after each round. A cell is stopped when its optimistic bound on ``by`` is worse than the
    pessimistic bound of another live cell (the *dominator*: the live cell with the best pessimistic bound,
    ties to the cheaper so far), never before ``min_inputs`` inputs, and not after the last input (nothing is
    left to save: the cells still live then are the ones the data could not separate).

    **The bound.** For each cell, the full grid's value of ``by`` is a mean over the ``units`` inputs:
    success rate = mean of 0/1 successes; mean cost = mean candidate cost (≤ ``cost_bounds[cell]``, the plan's
    worst case for one call); mean score = mean score in [0, 1]; cost per success = mean cost / success
    rate. Each mean gets a :class:`MeanBound` (betting confidence sequence, valid at every round at once);
    cost per success takes the ratio of the bounds of its two parts, ``[cost_low / success_high, cost_high /
    success_low]``, each part at half the cell's error. A union (Bonferroni) bound over the cells gives each
    cell ``(1 - confidence) / len(cells)``. So with probability at least ``confidence`` every interval of
    every cell holds at every round; then a stopped cell's true value is worse than its dominator's, the full
    grid's winner is never stopped, and the best of the cells left — which ran every input, so their figures
    are the full grid's — is the full grid's winner (ties to the cheaper, as ``best()``).

    **Assumptions.** The order of inputs is a uniform random shuffle; each call's outcome (success, cost,
    score) would be the same whatever the order (a fixed potential outcome per input: no drift, no dependence
    on other calls); a call never costs more than the plan's worst case. When a call costs more (hidden
    reasoning tokens, billed retries) or a model has no price, that cell's cost bound becomes [0, ∞): it is
    not stopped on cost and stops no other cell. A score missing or outside [0, 1] does the same for
    ``mean_score``. Stops forced by a budget or an interrupt void the guarantee (fewer inputs were run).

    >>> race = Race([("A", "m"), ("B", "m")], 40, by="success_rate", min_inputs=10)
    >>> for _ in range(20):
    ...     race.observe(("A", "m"), success=True, cost=0.0)
    ...     race.observe(("B", "m"), success=False, cost=0.0)
    >>> [stop.message() for stop in race.decide()]
    ["after input 20 of 40: dominated by ('A', 'm') on success_rate at 95%"]
    """

    cells: Sequence[Hashable]
    units: int
    by: str = "cost_per_success"
    confidence: float = 0.95
    min_inputs: int = 10
    cost_bounds: Mapping[Hashable, float | None] | None = None
    stops: dict[Hashable, RaceStop] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_race(self.by, self.confidence, self.min_inputs)
        if len(set(self.cells)) != len(self.cells) or not self.cells:
            raise ValueError("a race needs distinct cells")
        alpha = (1 - self.confidence) / len(self.cells)
        part = alpha / 2 if self.by == "cost_per_success" else alpha
        bounds = self.cost_bounds or {}
        self._bounds = {
            cell: _CellBounds(
                MeanBound(self.units, part, discrete=True),
                MeanBound(self.units, part),
                MeanBound(self.units, part),
                None if bounds.get(cell) is None else float(bounds[cell]),  # type: ignore[arg-type]
            )
            for cell in self.cells
        }

    @property
    def live(self) -> list[Hashable]:
        """The cells still in the race, in the race's order."""
        return [cell for cell in self.cells if cell not in self.stops]

    def seen(self, cell: Hashable) -> int:
        return self._bounds[cell].success.n

    def observe(
        self, cell: Hashable, *, success: bool, cost: float | None, score: float | None = None
    ) -> None:
        """One input's outcome for ``cell``: success or not, the candidate's cost (USD), its score."""
        b = self._bounds[cell]
        b.success.update(1.0 if success else 0.0)
        b.successes += bool(success)
        cost = float(cost or 0.0)
        b.cost_sum += cost
        if b.cost_bound is None or cost > b.cost_bound:
            b.cost_unbounded = True
        elif b.cost_bound > 0:
            b.cost.update(cost / b.cost_bound)
        if score is None or not 0.0 <= score <= 1.0 or score != score:
            b.score_unbounded = True
        elif not b.score_unbounded:
            b.score.update(float(score))
            b.score_sum += score

    def interval(self, cell: Hashable) -> tuple[float, float]:
        """The bounds of the cell's full-grid value of ``by`` (cost in USD; ``inf`` when unbounded)."""
        b = self._bounds[cell]
        if self.by == "success_rate":
            return b.success.interval()
        if self.by == "mean_score":
            return (0.0, 1.0) if b.score_unbounded else b.score.interval()
        if b.cost_unbounded:
            cost_low, cost_high = 0.0, math.inf
        elif b.cost_bound == 0:  # a free model
            cost_low = cost_high = 0.0
        else:
            low, high = b.cost.interval()
            cost_low, cost_high = low * b.cost_bound, high * b.cost_bound  # type: ignore[operator]
        if self.by in ("mean_cost", "total_cost"):
            return cost_low, cost_high
        success_low, success_high = b.success.interval()
        if success_high == 0:  # no input can succeed: no cost per success, so it cannot win
            return math.inf, math.inf
        return cost_low / success_high, (cost_high / success_low if success_low > 0 else math.inf)

    def _mean_cost(self, cell: Hashable) -> float:
        b = self._bounds[cell]
        return b.cost_sum / b.success.n if b.success.n else math.inf

    def decide(self, last_input: str | None = None) -> list[RaceStop]:
        """Stop the live cells that cannot win; returns the new stops. Every live cell must have seen the
        same number of inputs (a round is over)."""
        live = self.live
        seen = {self.seen(cell) for cell in live}
        if len(seen) != 1:
            raise ValueError(f"the live cells have seen different numbers of inputs: {sorted(seen)}")
        after = seen.pop()
        if after < self.min_inputs or after >= self.units or len(live) < 2:  # at the end: nothing to save
            return []
        lower = RACE_METRICS[self.by]
        bounds = {cell: self.interval(cell) for cell in live}
        if lower:
            dominator = min(live, key=lambda c: (bounds[c][1], self._mean_cost(c)))
            beaten = [c for c in live if c != dominator and bounds[c][0] > bounds[dominator][1]]
        else:
            dominator = min(live, key=lambda c: (-bounds[c][0], self._mean_cost(c)))
            beaten = [c for c in live if c != dominator and bounds[c][1] < bounds[dominator][0]]
        stops = [
            RaceStop(c, after, self.units, dominator, self.by, self.confidence, last_input) for c in beaten
        ]
        self.stops.update((stop.cell, stop) for stop in stops)
        return stops

    def round_size(self, concurrency: int) -> int:
        """How many inputs the next round runs: ``min_inputs`` first, then enough to keep ``concurrency``
        calls busy with the live cells (at least one)."""
        seen = max((self.seen(c) for c in self.live), default=0)
        if seen < self.min_inputs:
            return self.min_inputs - seen
        return max(1, -(-concurrency // max(1, len(self.live))))


def check_race(by: str, confidence: float, min_inputs: int) -> None:
    """The race's options, checked before anything is sent."""
    if by not in RACE_METRICS:
        raise ValueError(
            f"adaptive comparisons race on one of {', '.join(RACE_METRICS)}, got by={by!r} (latency "
            "percentiles have no bound here)"
        )
    if isinstance(confidence, bool) or not isinstance(confidence, int | float) or not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (e.g. 0.95), got {confidence!r}")
    if isinstance(min_inputs, bool) or not isinstance(min_inputs, int) or min_inputs < 1:
        raise ValueError(f"min_inputs must be a positive int, got {min_inputs!r}")
