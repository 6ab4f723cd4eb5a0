"""Holm's step-down adjustment of a family of P values, NaN-aware.

A family is the set of tests whose error rate is controlled together; ``compare_metrics`` uses two: the primary
metric's comparisons of each group with the reference, and the same comparisons on every secondary metric
together. Holm controls the family-wise error rate under any dependence and is uniformly more powerful than
Bonferroni.

The three lines are written here rather than called: statsmodels' ``multipletests(method="holm")`` runs
``gc.collect()`` on every call (0.17 s each in a small process, more in a large one; a study adjusts 2 families
per metric plus Dunn's table), and pingouin's ``multicomp`` imports matplotlib.pyplot and seaborn with pingouin.
tests/stats checks this against ``multipletests`` and a plain restatement.

References: Holm, S. (1979). A simple sequentially rejective multiple test procedure. Scand J Stat 6, 65-70.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def holm(p: npt.ArrayLike) -> np.ndarray:
    """Holm-adjusted P values, in the input order: the i-th smallest of m values times (m - i + 1), made
    non-decreasing, capped at 1. NaN entries stay NaN and do not count in the family."""
    p = np.asarray(p, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if ok.size:
        order = ok[np.argsort(p[ok], kind="stable")]
        steps = p[order] * np.arange(ok.size, 0, -1)
        out[order] = np.minimum(np.maximum.accumulate(steps), 1.0)
    return out
