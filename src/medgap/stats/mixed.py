"""A linear mixed model over frames: ``value ~ C(group, Treatment(reference)) + (1 | unit)``.

The aggregated analysis (unit means) weights every unit equally; the mixed model uses every frame, lets units
with more frames count more where the frames disagree, and estimates how much of the variance lies between
units (the intra-unit correlation, ICC). Each group's fixed effect is its contrast with the reference group
(mean difference in the score's own units) with a Wald CI. Fitted by REML with statsmodels' ``MixedLM`` (the
design matrix is built here rather than from a formula string so that any group label works; tests compare it
with ``statsmodels.formula.api.mixedlm`` on the formula).

References: Laird, N. M., Ware, J. H. (1982). Random-effects models for longitudinal data. Biometrics 38,
963-974; statsmodels ``MixedLM`` (Lindstrom & Bates 1988 REML).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from medgap._json import jsonable
from medgap.stats._checks import check_confidence

MIXED_COLUMNS = ["group", "estimate", "se", "z", "p", "ci_low", "ci_high"]


@dataclass(frozen=True)
class MixedModelResult:
    """Contrasts of each group with ``reference`` (rows of ``contrasts``: group, estimate, se, z, p, ci_low,
    ci_high), the reference's mean (``intercept``), the variance between units and within them (``residual``),
    ``icc`` = unit / (unit + residual), the counts, and whether the fit converged (``converged`` False when
    statsmodels says so or warns that it did not; ``warnings`` holds what it said; ``error`` when it failed)."""

    reference: str
    formula: str
    contrasts: pd.DataFrame
    intercept: float
    unit_variance: float
    residual_variance: float
    icc: float
    n_units: int
    n_frames: int
    converged: bool
    method: str = "REML"
    warnings: tuple[str, ...] = ()
    error: str | None = None
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict:
        return jsonable({
            "reference": self.reference, "formula": self.formula, "contrasts": self.contrasts.to_dict("records"),
            "intercept": self.intercept, "unit_variance": self.unit_variance,
            "residual_variance": self.residual_variance, "icc": self.icc, "n_units": self.n_units,
            "n_frames": self.n_frames, "converged": self.converged, "method": self.method,
            "warnings": list(self.warnings), "error": self.error,
        })


def mixed_model(values: np.ndarray, groups: np.ndarray, units: np.ndarray, reference: str, *,
                order: list[str] | None = None, confidence: float = 0.95) -> MixedModelResult:
    """Fit ``value ~ C(group, Treatment(reference)) + (1 | unit)`` on frames (see the module docstring).

    Args:
        values, groups, units: one entry per frame (finite values only are used); groups and units as labels.
        reference: the group every contrast is against.
        order: the groups in output order (default: sorted labels).
        confidence: level of the Wald CIs.
    """
    check_confidence(confidence)
    from statsmodels.regression.mixed_linear_model import MixedLM  # slow import (~1 s): only when fitted
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    values = np.asarray(values, dtype=np.float64)
    keep = np.isfinite(values)
    y, g, u = values[keep], np.asarray(groups).astype(str)[keep], np.asarray(units).astype(str)[keep]
    names = [x for x in (order or sorted(set(g))) if x in set(g)]
    others = [x for x in names if x != reference]
    formula = "value ~ C(group, Treatment(reference)) + (1 | unit)"
    n_units = int(np.unique(u).size)
    empty = pd.DataFrame(columns=MIXED_COLUMNS)
    nan = float("nan")

    def failed(message: str) -> MixedModelResult:
        return MixedModelResult(reference, formula, empty, nan, nan, nan, nan, n_units, int(y.size), False,
                                error=message)

    if reference not in names or not others:
        return failed(f"the model needs the reference {reference!r} and another group with values")
    exog = np.column_stack([np.ones(y.size)] + [(g == x).astype(np.float64) for x in others])
    caught: list[str] = []
    try:
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            result = MixedLM(y, exog, groups=u).fit(reml=True)
        caught = list(dict.fromkeys(str(w.message).strip() for w in record))
        converged_warning = any(issubclass(w.category, ConvergenceWarning) for w in record)
    except (np.linalg.LinAlgError, ValueError) as e:  # singular design, too few units
        return failed(f"{type(e).__name__}: {e}")
    fe = np.asarray(result.fe_params, dtype=np.float64)
    se = np.asarray(result.bse_fe, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = fe / se
    crit = stats.norm.ppf((1 + confidence) / 2)
    contrasts = pd.DataFrame({"group": others, "estimate": fe[1:], "se": se[1:], "z": z[1:],
                              "p": 2 * stats.norm.sf(np.abs(z[1:])), "ci_low": fe[1:] - crit * se[1:],
                              "ci_high": fe[1:] + crit * se[1:]}, columns=MIXED_COLUMNS)
    unit_var = float(np.asarray(result.cov_re)[0, 0])
    resid = float(result.scale)
    total = unit_var + resid
    return MixedModelResult(reference, formula, contrasts, float(fe[0]), unit_var, resid,
                            unit_var / total if total > 0 else nan, n_units, int(y.size),
                            bool(result.converged) and not converged_warning, warnings=tuple(caught))
