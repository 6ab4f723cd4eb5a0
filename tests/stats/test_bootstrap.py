"""The patient-grouped bootstrap: draws, batching, and percentile intervals against numpy written plainly."""

from __future__ import annotations

import numpy as np
import pytest

from medgap.stats import bootstrap as bs
from medgap.stats import grouped_bootstrap, patient_resample_counts, percentile_interval


def test_resample_counts_draw_each_patient_binomially():
    """Drawing G patients with replacement: each row sums to G, and a patient's count is Binomial(G, 1/G)."""
    counts = patient_resample_counts(10, 20000, np.random.default_rng(0))
    assert counts.shape == (20000, 10) and (counts.sum(axis=1) == 10).all()
    # mean 1, variance 0.9; standard errors over 200,000 counts are about 0.002 and 0.004
    assert counts.mean() == pytest.approx(1.0, abs=0.01)
    assert counts.var() == pytest.approx(0.9, abs=0.02)


def test_weights_follow_the_patient_of_each_item_in_any_order():
    groups = np.array(["b", "a", "b", "c", "a", "b"])
    w = grouped_bootstrap(lambda w: w, groups, n_boot=50, seed=1)
    for g in "abc":
        cols = w[:, groups == g]
        assert (cols == cols[:, :1]).all()
    first = [1, 0, 3]  # one item of a, b, c
    np.testing.assert_array_equal(w[:, first].sum(axis=1), 3)


def test_batches_do_not_change_the_shape_and_the_seed_fixes_the_draws(monkeypatch):
    groups = np.repeat(np.arange(30), 3)
    whole = grouped_bootstrap(lambda w: w.sum(axis=1, keepdims=True), groups, n_boot=100, seed=5)
    monkeypatch.setattr(bs, "_MAX_BATCH_CELLS", 7 * groups.size)  # 7 resamples per batch
    batched = grouped_bootstrap(lambda w: w.sum(axis=1, keepdims=True), groups, n_boot=100, seed=5)
    assert whole.shape == batched.shape == (100, 1)
    assert (whole == groups.size).all() and (batched == groups.size).all()  # 30 patients x 3 items each time
    again = grouped_bootstrap(lambda w: w, groups, n_boot=20, seed=5)
    np.testing.assert_array_equal(again, grouped_bootstrap(lambda w: w, groups, n_boot=20, seed=5))
    assert not np.array_equal(again, grouped_bootstrap(lambda w: w, groups, n_boot=20, seed=6))


def test_weighted_mean_equals_the_mean_of_the_resampled_items():
    rng = np.random.default_rng(2)
    groups = np.repeat(np.arange(12), rng.integers(1, 6, 12))
    x = rng.normal(size=groups.size)
    w = grouped_bootstrap(lambda w: w, groups, n_boot=30, seed=3)
    means = grouped_bootstrap(lambda w: (w @ x / w.sum(axis=1))[:, None], groups, n_boot=30, seed=3)[:, 0]
    for row, m in zip(w, means):
        drawn = np.concatenate([x[groups == g] for g in range(12) for _ in range(int(row[groups == g][0]))])
        assert m == pytest.approx(drawn.mean(), rel=1e-12)


def test_percentile_interval_is_numpy_percentile_over_defined_draws():
    rng = np.random.default_rng(4)
    draws = rng.normal(size=(1000, 3))
    draws[:40, 1] = np.nan
    draws[:, 2] = np.nan
    low, high, valid = percentile_interval(draws, 0.9)
    assert list(valid) == [1000, 960, 0]
    assert (low[0], high[0]) == pytest.approx(tuple(np.percentile(draws[:, 0], [5, 95])), rel=1e-12)
    assert (low[1], high[1]) == pytest.approx(tuple(np.percentile(draws[40:, 1], [5, 95])), rel=1e-12)
    assert np.isnan(low[2]) and np.isnan(high[2])


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_boot"):
        grouped_bootstrap(lambda w: w, ["a"], n_boot=0)
    with pytest.raises(ValueError, match="non-empty"):
        grouped_bootstrap(lambda w: w, [], n_boot=10)
    with pytest.raises(ValueError, match="confidence"):
        percentile_interval(np.zeros(10), 95)
