"""Statistics for comparisons: bootstrap confidence intervals and paired differences, seeded so that the
same data and seed always give the same interval.

>>> bootstrap_ci([1, 0, 1, 1, 0, 1, 1, 1], seed=0)
(0.375, 1.0)
>>> paired_bootstrap([0, 0, 1, 0], [1, 1, 1, 1], seed=0).diff
0.75

Percentile bootstrap: resample the values (for a paired comparison, the inputs: each keeps its pair) with
replacement ``n_resamples`` times and take the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the
resampled means.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["PairedComparison", "bootstrap_ci", "paired_bootstrap"]


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
