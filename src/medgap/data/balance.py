"""Example weights that stop a few long clips (or a large class) from dominating training and early stopping.

Frames of one video are near-duplicates of one patient: in ../shared/data, 17 POCUS clips give 276 of 379
training items. Weighting each item by 1 / (items of its group) makes every patient count once; ``class``
mode then gives every class the same total weight, spread equally over its patients.
"""

from __future__ import annotations

import numpy as np

BALANCE_MODES = ("none", "patient", "class")


def balance_weights(labels, groups, mode: str = "class") -> np.ndarray:
    """Per-item weights summing to the number of items (so a weighted mean keeps the scale of a plain one).

    - ``none``: all 1.
    - ``patient``: 1 / (items in the item's group): each patient (group) has the same total weight.
    - ``class``: as ``patient``, then each class has the same total weight.
    """
    if mode not in BALANCE_MODES:
        raise ValueError(f"unknown balance {mode!r}; choose one of {', '.join(BALANCE_MODES)}")
    labels, groups = np.asarray(labels), np.asarray(groups)
    n = len(labels)
    if n == 0:
        return np.zeros(0)
    w = np.ones(n)
    if mode in ("patient", "class"):
        _, inv, counts = np.unique(groups, return_inverse=True, return_counts=True)
        w = 1.0 / counts[inv]
    if mode == "class":
        _, inv = np.unique(labels, return_inverse=True)
        w = w / np.bincount(inv, weights=w)[inv]
    return w * (n / w.sum())
