"""Cohen's d and Hedges' g with CIs against pingouin.compute_effsize / compute_esci (1e-8 relative)."""

from __future__ import annotations

import itertools

import numpy as np
import pingouin as pg
import pytest
from scipy import special

from medgap.stats import (
    effect_size,
    effect_size_ci,
    effect_sizes_vs_reference,
    hedges_correction,
    pairwise_effect_sizes,
)

REL = 1e-8


def _pingouin(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """pingouin's effect of b against a: compute_effsize(x=b, y=a) = (mean(b) - mean(a)) / pooled SD."""
    d = pg.compute_effsize(b, a, eftype="cohen")
    g = pg.compute_effsize(b, a, eftype="hedges")
    d_ci = pg.compute_esci(stat=d, nx=b.size, ny=a.size, eftype="cohen", decimals=15)
    g_ci = pg.compute_esci(stat=g, nx=b.size, ny=a.size, eftype="hedges", decimals=15)
    return dict(cohen_d=d, d_ci_low=d_ci[0], d_ci_high=d_ci[1], hedges_g=g, g_ci_low=g_ci[0], g_ci_high=g_ci[1])


COLUMNS = ["cohen_d", "d_ci_low", "d_ci_high", "hedges_g", "g_ci_low", "g_ci_high"]


def test_vs_reference_against_pingouin(study, samples):
    eff = effect_sizes_vs_reference(study, "brisque", "group", reference="natural")
    assert (eff.group_a == "natural").all() and eff.group_b.tolist() == ["ct", "cxr", "mr", "pocus"]
    for row in eff.itertuples():
        ref = _pingouin(samples["natural"], samples[row.group_b])
        assert [getattr(row, c) for c in COLUMNS] == pytest.approx([ref[c] for c in COLUMNS], rel=REL)
    pocus = eff.set_index("group_b").loc["pocus"]
    assert 2 < pocus.cohen_d < 3.5 and pocus.d_ci_low > 2  # POCUS far above ImageNet, as published (d = 2.38)
    assert eff.set_index("group_b").loc["cxr", "cohen_d"] < 0  # CXR scores lower (better) than ImageNet


def test_every_pair_against_pingouin(study, samples):
    eff = pairwise_effect_sizes(study, "brisque", "group")
    assert list(zip(eff.group_a, eff.group_b)) == list(itertools.combinations(sorted(samples), 2))
    for row in eff.itertuples():
        ref = _pingouin(samples[row.group_a], samples[row.group_b])
        assert [getattr(row, c) for c in COLUMNS] == pytest.approx([ref[c] for c in COLUMNS], rel=REL)
        assert row.mean_diff == pytest.approx(samples[row.group_b].mean() - samples[row.group_a].mean(), rel=REL)


def test_default_reference_is_the_first_group(samples):
    assert (effect_sizes_vs_reference(samples).group_a == "ct").all()
    with pytest.raises(ValueError, match="reference group 'imagenet' has no values; groups with values are 'ct', "):
        effect_sizes_vs_reference(samples, reference="imagenet")


def test_other_confidence_level(samples):
    e = effect_size(samples["natural"], samples["mr"], confidence=0.9)
    ci = pg.compute_esci(stat=e.cohen_d, nx=samples["mr"].size, ny=samples["natural"].size, confidence=0.9,
                         decimals=15)
    assert (e.d_ci_low, e.d_ci_high) == pytest.approx(tuple(ci), rel=REL)


def test_hand_case():
    """[1, 2, 3] -> [4, 5, 6]: pooled SD 1, d = 3; J = 1 - 3 / (4 * 6 - 9) = 0.8, g = 2.4."""
    e = effect_size([1, 2, 3], [4, 5, 6])
    assert (e.cohen_d, e.hedges_g, e.pooled_sd, e.mean_diff) == pytest.approx((3, 2.4, 1, 3), rel=1e-14)
    assert effect_size([4, 5, 6], [1, 2, 3]).cohen_d == pytest.approx(-3, rel=1e-14)  # sign: mean(b) - mean(a)
    assert effect_size([1, 2, np.nan, 3], [4, 5, 6]).n_a == 3  # NaN dropped


def test_hedges_correction_exact_and_approximate():
    for n_a, n_b in [(2, 2), (3, 5), (10, 12), (60, 80)]:  # gamma() itself overflows past df ~ 340
        df = n_a + n_b - 2
        exact = special.gamma(df / 2) / (np.sqrt(df / 2) * special.gamma((df - 1) / 2))
        assert hedges_correction(n_a, n_b, exact=True) == pytest.approx(exact, rel=1e-12)
        assert hedges_correction(n_a, n_b) == pytest.approx(1 - 3 / (4 * (n_a + n_b) - 9), rel=1e-15)
        if df >= 10:  # the module docstring's claim
            assert abs(hedges_correction(n_a, n_b, exact=True) - hedges_correction(n_a, n_b)) < 1e-3
    assert 0 < hedges_correction(150, 200, exact=True) < 1
    assert np.isnan(hedges_correction(1, 5))


@pytest.mark.filterwarnings("error")
def test_small_and_constant_groups_are_nan_and_flagged():
    e = effect_size([1.0], [2.0, 3.0, 4.0])
    assert e.small_group and not e.zero_sd and np.isnan(e.cohen_d) and np.isnan(e.g_ci_high)
    assert e.mean_diff == 2  # still reported
    e = effect_size([2.0, 2.0], [5.0, 5.0, 5.0])
    assert e.zero_sd and not e.small_group and np.isnan(e.cohen_d) and np.isnan(e.d_ci_low)
    eff = pairwise_effect_sizes({"a": [1.0, 2.0, 4.0], "b": [9.0], "c": [3.0, 5.0]})
    assert eff.small_group.tolist() == [True, False, True]
    assert eff.cohen_d.isna().tolist() == [True, False, True]
    assert np.isnan(effect_size_ci(float("nan"), 5, 5)).all()
