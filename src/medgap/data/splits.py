"""Patient-grouped, stratified splits (scikit-learn's StratifiedGroupKFold): a group never crosses folds."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold


def grouped_folds(labels, groups, k: int, seed: int) -> np.ndarray:
    """Fold index (0..k-1) of every example; stratified by label where the groups allow it."""
    labels, groups = np.asarray(labels), np.asarray(groups)
    n_groups = len(np.unique(groups))
    if k < 2 or k > n_groups:
        raise ValueError(f"need 2 <= folds <= number of groups ({n_groups}), got {k}")
    fold = np.full(len(labels), -1)
    cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    for i, (_, test) in enumerate(cv.split(np.zeros(len(labels)), labels, groups)):
        fold[test] = i
    return fold


def inner_validation(labels, groups, seed: int, fraction: float = 0.2) -> np.ndarray:
    """Boolean mask of a grouped, stratified validation part (about ``fraction``) of a training set, for early
    stopping; the test fold is never used for it."""
    labels, groups = np.asarray(labels), np.asarray(groups)
    smallest_class = np.unique(labels, return_counts=True)[1].min()
    k = max(2, min(int(round(1 / fraction)), len(np.unique(groups)), smallest_class))
    cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    _, val = next(cv.split(np.zeros(len(labels)), labels, groups))
    mask = np.zeros(len(labels), bool)
    mask[val] = True
    return mask
