"""USCL's objective against a plain float64 restatement of NT-Xent (Chen et al. 2020, eq. 1) and of the
cross-entropy over labelled items only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medgap.pretrain.loss import USCLLoss


def ntxent_reference(z_i: np.ndarray, z_j: np.ndarray, tau: float) -> float:
    """The mean over the 2N anchors of -log(exp(sim(a, positive)/tau) / sum over the other 2N - 1 of
    exp(sim(a, k)/tau)), sim the cosine similarity; written out with loops."""
    z = np.concatenate([z_i, z_j]).astype(np.float64)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    n = len(z_i)
    total = 0.0
    for a in range(2 * n):
        pos = a + n if a < n else a - n
        denom = sum(np.exp(z[a] @ z[k] / tau) for k in range(2 * n) if k != a)
        total += -np.log(np.exp(z[a] @ z[pos] / tau) / denom)
    return total / (2 * n)


def ce_reference(logits: np.ndarray, target: np.ndarray) -> float:
    known = target >= 0
    x = logits[known].astype(np.float64)
    logp = x - np.log(np.exp(x).sum(1, keepdims=True))
    return float(-logp[np.arange(known.sum()), target[known]].mean())


@pytest.mark.parametrize("tau", [0.5, 0.1])
def test_ntxent_matches_the_formula(tau):
    rng = np.random.default_rng(0)
    z_i, z_j = rng.normal(size=(6, 8)), rng.normal(size=(6, 8))
    got = USCLLoss(temperature=tau)(torch.tensor(z_i, dtype=torch.float64), torch.tensor(z_j, dtype=torch.float64))
    assert float(got["ntxent"]) == pytest.approx(ntxent_reference(z_i, z_j, tau), rel=1e-10)
    assert float(got["loss"]) == float(got["ntxent"])


def test_ce_counts_only_labelled_videos():
    rng = np.random.default_rng(1)
    z_i, z_j = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    c_i, c_j = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    target = np.array([-1, 0, 2, -1, 1])
    t = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731
    got = USCLLoss(0.5, ce_weight=0.3)(t(z_i), t(z_j), t(c_i), t(c_j), torch.tensor(target))
    ce = (ce_reference(c_i, target) + ce_reference(c_j, target)) / 2
    assert float(got["ce"]) == pytest.approx(ce, rel=1e-10) and int(got["labelled"]) == 3
    assert float(got["loss"]) == pytest.approx(ntxent_reference(z_i, z_j, 0.5) + 0.3 * ce, rel=1e-10)
    # no labelled video in the batch: the loss is NT-Xent alone (not NaN)
    none = USCLLoss(0.5, ce_weight=0.3)(t(z_i), t(z_j), t(c_i), t(c_j), torch.full((5,), -1))
    assert float(none["ce"]) == 0.0 and float(none["loss"]) == pytest.approx(ntxent_reference(z_i, z_j, 0.5))
