"""Bootstrap CIs: reproducible with a seed, covering a planted difference, and telling it from noise."""

from __future__ import annotations

import json
import math
import re
import zlib

import numpy as np
import openai
import pytest

from llmcost_nb.experiments.compare import compare
from llmcost_nb.experiments.stats import bootstrap_ci, paired_bootstrap


def test_the_same_seed_gives_the_same_interval():
    values = np.random.default_rng(7).normal(0.6, 0.2, 50)
    assert bootstrap_ci(values, seed=3) == bootstrap_ci(values, seed=3)
    assert bootstrap_ci(values, seed=3) != bootstrap_ci(values, seed=4)
    a, b = values[:25], values[25:]
    assert paired_bootstrap(a, b, seed=1) == paired_bootstrap(a, b, seed=1)
    assert all(math.isnan(v) for v in bootstrap_ci([], seed=0))  # nothing to resample


def percentile_bootstrap(values, seed, n_resamples=2000, level=0.95):
    """The documented percentile bootstrap, spelled out: n_resamples draws of len(values) indices with
    replacement from numpy's generator for the seed, the mean of each, and the two quantiles."""
    values = np.asarray(values, dtype=float)
    picks = np.random.default_rng(seed).integers(0, len(values), size=(n_resamples, len(values)))
    means = values[picks].mean(axis=1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high), means


def test_exact_values_on_a_tiny_case():
    values = [1, 0, 1, 1, 0, 1, 1, 1]
    low, high = bootstrap_ci(values, seed=0)
    assert (low, high) == percentile_bootstrap(values, seed=0)[:2]
    assert 0 <= low < 0.75 < high <= 1  # around the mean, inside what resampling 8 zeros and ones can give
    assert bootstrap_ci([2.5, 2.5, 2.5], seed=0) == (2.5, 2.5)  # no spread: any resample has mean 2.5
    paired = paired_bootstrap([0, 0, 1, 0], [1, 1, 1, 1], seed=0)
    low, high, means = percentile_bootstrap([1, 1, 0, 1], seed=0)  # the differences b - a
    p_value = min(1.0, 2 * min(float((means <= 0).mean()), float((means >= 0).mean())))
    assert (paired.diff, paired.low, paired.high, paired.n) == (0.75, low, high, 4)
    assert (paired.mean_a, paired.mean_b, paired.p_value) == (0.25, 1.0, p_value)
    assert 0 <= paired.low < 0.75 < paired.high <= 1


def test_intervals_cover_a_planted_difference_about_as_often_as_they_claim():
    true_diff, hits = 0.3, 0
    for trial in range(200):
        rng = np.random.default_rng(trial)
        a = rng.normal(0.5, 0.5, 40)
        b = a + true_diff + rng.normal(0, 0.4, 40)  # paired: same inputs, b better by 0.3 on average
        result = paired_bootstrap(a, b, n_resamples=1000, seed=trial)
        hits += result.low <= true_diff <= result.high
    assert 0.90 <= hits / 200 <= 0.99  # nominal 95% (the percentile bootstrap runs a little narrow)


def test_parameters_are_checked():
    with pytest.raises(ValueError, match="level must be between 0 and 1"):
        bootstrap_ci([1, 2], level=95)
    with pytest.raises(ValueError, match="n_resamples must be a positive int"):
        bootstrap_ci([1, 2], n_resamples=0)
    with pytest.raises(ValueError, match="same length"):
        paired_bootstrap([1], [1, 2])


def _reply(body, model):
    """big answers all 30 right; small the ones whose crc32 is even (a fixed, scattered half); the same
    holds for either prompt, so variants differ only by noise-free zero."""
    n = int(re.search(r"number (\d+)", json.dumps(body)).group(1))
    right = model == "gpt-4.1" or zlib.crc32(f"{n}".encode()) % 2 == 0
    return str(n * 2) if right else "unsure"


@pytest.fixture
def planted(fake, ledger):
    fake.reply = _reply
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="k")
    items = [{"id": f"n{n}", "question": f"double the number {n}", "expected": str(2 * n)} for n in range(30)]
    return compare(
        {"plain": "{question}", "polite": "Please {question}"},
        ["gpt-4.1", "gpt-4.1-mini"],
        items,
        scorer="exact",
        client=client,
        ledger=ledger,
        progress=False,
        name="planted",
    )


def test_a_real_difference_is_told_from_noise(planted):
    small_right = sum(zlib.crc32(f"{n}".encode()) % 2 == 0 for n in range(30)) / 30
    real = planted.paired(("plain", "gpt-4.1"), ("plain", "gpt-4.1-mini"))
    assert real.n == 30 and real.diff == pytest.approx(small_right - 1)
    assert real.low <= small_right - 1 <= real.high and real.significant
    assert "a real difference" in str(real)
    same = planted.paired(("plain", "gpt-4.1-mini"), ("polite", "gpt-4.1-mini"))
    assert (same.diff, same.low, same.high, same.significant) == (0.0, 0.0, 0.0, False)
    assert "not distinguishable from noise" in str(same)
    cost = planted.paired(("plain", "gpt-4.1-mini"), ("plain", "gpt-4.1"), metric="cost")
    assert cost.significant and cost.low > 0  # gpt-4.1 costs more per call, every time


def test_per_cell_intervals(planted):
    ci = planted.ci("success", seed=5).set_index(["variant", "model"])
    assert ci.loc[("plain", "gpt-4.1"), ["mean", "low", "high"]].tolist() == [1.0, 1.0, 1.0]
    mini = ci.loc[("plain", "gpt-4.1-mini")]
    assert mini["low"] < mini["mean"] < mini["high"] and mini["n"] == 30
    assert planted.ci("success", seed=5).equals(planted.ci("success", seed=5))
    cost = planted.ci("cost").set_index(["variant", "model"])
    assert cost.loc[("plain", "gpt-4.1"), "low"] <= cost.loc[("plain", "gpt-4.1"), "mean"]
    with pytest.raises(
        ValueError, match="unknown metric 'bleu', allowed values: score, success, cost, latency_ms"
    ):
        planted.ci("bleu")
    with pytest.raises(KeyError, match="no cell"):
        planted.paired(("plain", "gpt-5"), ("plain", "gpt-4.1"))
