"""Numbers the way papers print them (machine outputs keep full precision)."""

from __future__ import annotations

import math

import pandas as pd


def format_p(p: float, floor: float = 1e-6) -> str:
    """AMA/JAMA style: ``P = .03``, ``P = .002``, ``P < .001`` stops at ``floor``: ``P < .000001`` by default,
    the way the study this project follows reports its ANOVA. Two significant digits above .01, three below."""
    if p is None or not math.isfinite(p):
        return "P = n/a"
    if p < floor:
        return "P < " + f"{floor:.{max(0, -int(math.floor(math.log10(floor))))}f}".lstrip("0")
    if p >= 0.995:
        return "P > .99"
    digits = 2 if p >= 0.01 else 3 if p >= 0.001 else max(3, -int(math.floor(math.log10(p))))
    return "P = " + f"{p:.{digits}f}".lstrip("0")


def format_ci(estimate: float, low: float, high: float, digits: int = 1) -> str:
    """``21.7 (20.9 to 22.5)``."""
    if not all(map(math.isfinite, (estimate, low, high))):
        return f"{estimate:.{digits}f}" if math.isfinite(estimate) else "n/a"
    return f"{estimate:.{digits}f} ({low:.{digits}f} to {high:.{digits}f})"


def paper_table(comparison, digits: int = 1) -> pd.DataFrame:
    """Group, n, mean (95% CI), Cohen's d vs the reference group (95% CI)."""
    eff = comparison.effects_vs_reference.set_index("group_b") if len(comparison.effects_vs_reference) else None
    rows = []
    for r in comparison.describe.itertuples():
        if eff is not None and r.group in eff.index:
            e = eff.loc[r.group]
            d = format_ci(e.cohen_d, e.d_ci_low, e.d_ci_high, 2)
        else:
            d = "reference" if r.group == comparison.reference else "n/a"
        rows.append({"group": r.group, "n": r.n, "mean (95% CI)": format_ci(r.mean, r.ci_low, r.ci_high, digits),
                     f"d vs {comparison.reference} (95% CI)": d})
    return pd.DataFrame(rows)


def anova_line(comparison) -> str:
    a = comparison.anova
    return (f"One-way ANOVA: F({a.df_between}, {a.df_within}) = {a.F:.2f}, {format_p(a.p)}, "
            f"eta-squared = {a.eta_squared:.3f}")
