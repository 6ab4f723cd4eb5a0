"""Holm's step-down adjustment of a family of P values (statsmodels' ``multipletests``), NaN-aware.

A family is the set of tests whose error rate is controlled together; ``compare_metrics`` uses two: the primary
metric's comparisons of each group with the reference, and the same comparisons on every secondary metric
together. Holm controls the family-wise error rate under any dependence and is uniformly more powerful than
Bonferroni.

References: Holm, S. (1979). A simple sequentially rejective multiple test procedure. Scand J Stat 6, 65-70.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def holm(p: npt.ArrayLike) -> np.ndarray:
    """Holm-adjusted P values, in the input order; NaN entries stay NaN and do not count in the family."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="holm")[1]
    return out
