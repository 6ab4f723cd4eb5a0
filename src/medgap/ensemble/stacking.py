"""Stacking across input scales: per class, softmax weights over the scales' predicted probabilities.

For class ``c`` and scales ``s = 1..S`` with weight logits ``w_c`` (free, one per scale), the ensemble's
probability is the mixture ``p_c = sum_s softmax(w_c)_s p_{s,c}``. The weights are fitted on validation
predictions only, by minimising the mixture's loss (L-BFGS with the analytic gradient, float64):

- ``multilabel``: per finding, the binary cross-entropy of ``p_c`` over the items where the finding is known
  (NaN targets are masked, as the masked BCE of :mod:`medgap.train.tasks.multilabel`); findings are
  independent problems.
- ``classify``: the class-wise mixtures no longer sum to 1 when the classes' weights differ, so the prediction
  is ``p_c / sum_k p_k`` and all classes' weights are fitted together on its cross-entropy (negative
  log-likelihood of the true class). With equal weights for every class this is plain weighted averaging.

A small L2 penalty ``l2 / 2 * sum w^2`` (on the logits) pulls the weights toward equal weights (``w = 0``) when the
validation data cannot tell the scales apart, and keeps the logits finite when one scale is perfect.

References: Haque M.I.U., Dubey A.K., Danciu I., Justice A.C., Ovchinnikova O.S., Hinkle J.D., "Effect of image
resolution on automated classification of chest X-rays", J Med Imaging 10(4):044503, 2023 (per-finding softmax
weights over 256-2048 px models); Wolpert D.H., "Stacked generalization", Neural Networks 5:241-259, 1992.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from medgap.ensemble.errors import EnsembleError

TASKS = ("classify", "multilabel")
_EPS = 1e-7  # probabilities are clipped to [eps, 1 - eps] inside the logarithms (a 0 or 1 from float32)


def _softmax(w: np.ndarray) -> np.ndarray:
    e = np.exp(w - w.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@dataclass(frozen=True)
class StackingWeights:
    """Fitted stacking weights: ``logits`` (classes x scales); ``weights`` their softmax per class (rows sum to
    1). ``predict`` combines new predictions of the same scales in the same order."""

    task: str
    classes: list[str]
    scales: list[str]
    logits: np.ndarray
    loss: float
    """The fitted objective on the validation predictions (mean loss + penalty)."""
    n_items: int
    notes: tuple[str, ...] = ()
    """Classes left at equal weights, and why."""

    @property
    def weights(self) -> np.ndarray:
        return _softmax(self.logits)

    def table(self) -> pd.DataFrame:
        """One row per class, one column per scale; each row sums to 1."""
        return pd.DataFrame(self.weights, index=pd.Index(self.classes, name="class"), columns=list(self.scales))

    def predict(self, probs: npt.ArrayLike) -> np.ndarray:
        """The ensemble's (items x classes) probabilities from ``probs`` (scales x items x classes)."""
        p = _check_probs(probs, len(self.scales), len(self.classes))
        return combine(p, self.weights, self.task)


def combine(probs: np.ndarray, weights: np.ndarray, task: str) -> np.ndarray:
    """``sum_s weights[c, s] * probs[s, :, c]`` per class; for ``classify`` each row then divided by its sum."""
    mix = np.einsum("cs,snc->nc", weights, probs)
    if task == "classify":
        mix = mix / mix.sum(axis=1, keepdims=True)
    return mix


def _check_probs(probs: npt.ArrayLike, n_scales: int | None = None, n_classes: int | None = None) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 3:
        raise EnsembleError(f"probabilities must be (scales, items, classes), got shape {p.shape}")
    if n_scales is not None and p.shape[0] != n_scales:
        raise EnsembleError(f"{p.shape[0]} scale(s) of predictions for weights fitted on {n_scales}; give the same "
                            f"scales in the same order")
    if n_classes is not None and p.shape[2] != n_classes:
        raise EnsembleError(f"{p.shape[2]} class column(s) for weights fitted on {n_classes} classes")
    if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
        raise EnsembleError("probabilities must be finite numbers in [0, 1] (softmax or sigmoid outputs)")
    return p


def _bce_objective(w: np.ndarray, q: np.ndarray, y: np.ndarray, sw: np.ndarray, l2: float):
    """One finding: q (items x scales), y (items, 0/1), sw item weights summing to 1. Returns (loss, grad)."""
    a = _softmax(w)
    p = np.clip(q @ a, _EPS, 1 - _EPS)
    loss = -np.sum(sw * (y * np.log(p) + (1 - y) * np.log1p(-p))) + 0.5 * l2 * w @ w
    dp = -sw * (y / p - (1 - y) / (1 - p))
    g = q.T @ dp  # dL/da
    return loss, a * (g - g @ a) + l2 * w


def _nll_objective(wflat: np.ndarray, q: np.ndarray, y: np.ndarray, sw: np.ndarray, l2: float):
    """All classes: q (scales x items x classes), y class indices, sw item weights summing to 1."""
    s, n, k = q.shape
    w = wflat.reshape(k, s)
    a = _softmax(w)
    mix = np.maximum(np.einsum("cs,snc->nc", a, q), _EPS)
    z = mix.sum(axis=1)
    rows = np.arange(n)
    loss = -np.sum(sw * (np.log(mix[rows, y]) - np.log(z))) + 0.5 * l2 * wflat @ wflat
    dmix = np.broadcast_to((sw / z)[:, None], (n, k)).copy()
    dmix[rows, y] -= sw / mix[rows, y]
    g = np.einsum("nc,snc->cs", dmix, q)  # dL/da
    grad = a * (g - (g * a).sum(axis=1, keepdims=True)) + l2 * w
    return loss, grad.ravel()


def fit_stacking(
    probs: npt.ArrayLike,
    targets: npt.ArrayLike,
    *,
    task: str = "classify",
    classes: Sequence[str] | None = None,
    scales: Sequence[str] | None = None,
    l2: float = 1e-3,
    sample_weight: npt.ArrayLike | None = None,
) -> StackingWeights:
    """Fit per-class softmax weights over scales on validation predictions.

    Args:
        probs: (scales, items, classes) probabilities: softmax outputs (``classify``) or sigmoid outputs per
            finding (``multilabel``) of each scale's model on the same validation items.
        targets: ``classify``: the class index of each item; ``multilabel``: (items, findings) of 1, 0 or NaN
            (not known: left out of that finding's loss).
        l2: penalty on the weight logits (0: none; then a perfect scale drives its logit to infinity).
        sample_weight: per item (default all 1), e.g. balance weights; normalised to sum to 1 (per finding
            over its known items for ``multilabel``).

    A finding whose known validation items are all positive or all negative keeps equal weights (``notes`` says
    so): the loss of one kind only rewards the most confident scale, not the most discriminating one.

    Raises:
        EnsembleError: shapes that disagree, targets outside the classes, a finding with no known item.
    """
    from scipy.optimize import minimize

    if task not in TASKS:
        raise EnsembleError(f"task {task!r}: stacking combines probabilities of {' or '.join(TASKS)} runs")
    q = _check_probs(probs)
    s, n, k = q.shape
    classes = [str(c) for c in (classes if classes is not None else range(k))]
    scales = [str(c) for c in (scales if scales is not None else range(s))]
    if len(classes) != k or len(scales) != s:
        raise EnsembleError(f"{len(classes)} class name(s) and {len(scales)} scale name(s) for probabilities of "
                            f"shape {q.shape} (scales, items, classes)")
    if not (np.isfinite(l2) and l2 >= 0):
        raise EnsembleError(f"l2 {l2!r}: the penalty must be a number >= 0")
    sw = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if sw.shape != (n,) or (sw < 0).any() or not np.isfinite(sw).all() or sw.sum() <= 0:
        raise EnsembleError(f"sample_weight must give one weight >= 0 per item ({n}), not all 0")
    opts = {"maxiter": 2000, "gtol": 1e-10, "ftol": 1e-15}
    if task == "classify":
        y = np.asarray(targets)
        if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= k:
            raise EnsembleError(f"classify targets must be {n} class indices in 0..{k - 1}")
        res = minimize(_nll_objective, np.zeros(k * s), args=(q, y, sw / sw.sum(), l2), jac=True,
                       method="L-BFGS-B", options=opts)
        return StackingWeights(task, classes, scales, res.x.reshape(k, s), float(res.fun), n)
    y = np.asarray(targets, dtype=np.float64)
    if y.shape != (n, k):
        raise EnsembleError(f"multilabel targets must be (items, findings) = ({n}, {k}), got {y.shape}")
    logits, total, notes = np.zeros((k, s)), 0.0, []
    for c in range(k):
        known = ~np.isnan(y[:, c])
        if not known.any() or sw[known].sum() <= 0:
            raise EnsembleError(f"finding {classes[c]!r}: no validation item where it is known; its weights "
                                f"cannot be fitted")
        yc = y[known, c]
        if not np.isin(yc, (0.0, 1.0)).all():
            raise EnsembleError(f"finding {classes[c]!r}: multilabel targets are 1, 0 or NaN")
        if yc.min() == yc.max():  # one kind only: the fit would just reward the most confident scale
            notes.append(f"finding {classes[c]!r}: the validation items are all {'positive' if yc[0] else 'negative'}"
                         f" ({yc.size}); its weights are left equal")
            continue
        w = sw[known] / sw[known].sum()
        res = minimize(_bce_objective, np.zeros(s), args=(q[:, known, c].T, yc, w, l2), jac=True,
                       method="L-BFGS-B", options=opts)
        logits[c], total = res.x, total + float(res.fun)
    return StackingWeights(task, classes, scales, logits, total / k, n, tuple(notes))


__all__ = ["StackingWeights", "TASKS", "combine", "fit_stacking"]
