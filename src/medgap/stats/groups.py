"""Comparing a per-image measure across groups: descriptives with CIs, one-way ANOVA, Welch's ANOVA,
Kruskal-Wallis, Tukey HSD and Games-Howell post hoc tests, Cohen's d / Hedges' g with CIs.

Pure functions of a tidy DataFrame (one row per image, a value column and a group column). Checked against
SciPy, statsmodels and pingouin in tests/stats/.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy import stats


def _groups(df: pd.DataFrame, value: str, group: str) -> dict[str, np.ndarray]:
    if value not in df or group not in df:
        raise KeyError(f"columns {value!r} and {group!r} are needed; the table has {', '.join(map(str, df.columns))}")
    out = {str(g): v[value].to_numpy(np.float64) for g, v in df.groupby(group, sort=True)}
    return {g: v[np.isfinite(v)] for g, v in out.items()}


def _need_two(groups: dict[str, np.ndarray]) -> list[np.ndarray]:
    usable = [v for v in groups.values() if v.size > 0]
    if len(usable) < 2:
        raise ValueError(f"need at least 2 groups with values; found {sorted(groups)}")
    return usable


def describe_groups(df: pd.DataFrame, value: str, group: str, confidence: float = 0.95) -> pd.DataFrame:
    """n, mean, SD (ddof=1), t-based CI of the mean, median, quartiles per group; NaN/Inf values are dropped
    and counted in ``n_missing``."""
    rows = []
    for g, sub in df.groupby(group, sort=True):
        raw = sub[value].to_numpy(np.float64)
        v = raw[np.isfinite(raw)]
        n = v.size
        mean = v.mean() if n else np.nan
        sd = v.std(ddof=1) if n > 1 else np.nan
        if n > 1:
            half = stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / np.sqrt(n)
            lo, hi = mean - half, mean + half
        else:
            lo = hi = np.nan
        q25, med, q75 = np.percentile(v, [25, 50, 75]) if n else (np.nan,) * 3
        rows.append(dict(group=str(g), n=n, n_missing=raw.size - n, mean=mean, sd=sd, ci_low=lo, ci_high=hi,
                         median=med, q25=q25, q75=q75))
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class AnovaResult:
    F: float
    df_between: int
    df_within: int
    p: float
    eta_squared: float

    def to_dict(self) -> dict:
        return asdict(self)


def one_way_anova(df: pd.DataFrame, value: str, group: str) -> AnovaResult:
    """Classic one-way ANOVA; eta-squared = SS_between / SS_total."""
    vs = _need_two(_groups(df, value, group))
    allv = np.concatenate(vs)
    grand = allv.mean()
    ss_between = sum(v.size * (v.mean() - grand) ** 2 for v in vs)
    ss_within = sum(((v - v.mean()) ** 2).sum() for v in vs)
    dfb, dfw = len(vs) - 1, allv.size - len(vs)
    F = (ss_between / dfb) / (ss_within / dfw)
    return AnovaResult(F, dfb, dfw, float(stats.f.sf(F, dfb, dfw)), ss_between / (ss_between + ss_within))


@dataclass(frozen=True)
class WelchResult:
    F: float
    df1: float
    df2: float
    p: float

    def to_dict(self) -> dict:
        return asdict(self)


def welch_anova(df: pd.DataFrame, value: str, group: str) -> WelchResult:
    """Welch's heteroscedastic one-way ANOVA (Welch 1951)."""
    vs = _need_two(_groups(df, value, group))
    k = len(vs)
    n = np.array([v.size for v in vs], float)
    m = np.array([v.mean() for v in vs])
    var = np.array([v.var(ddof=1) for v in vs])
    if (var == 0).any() or (n < 2).any():
        return WelchResult(np.nan, k - 1.0, np.nan, np.nan)  # undefined with a zero-variance or single-value group
    w = n / var
    mw = (w * m).sum() / w.sum()
    num = (w * (m - mw) ** 2).sum() / (k - 1)
    lam = 3 * ((1 - w / w.sum()) ** 2 / (n - 1)).sum() / (k**2 - 1)
    F = num / (1 + 2 * lam * (k - 2) / 3)
    df2 = 1 / lam
    return WelchResult(F, k - 1.0, df2, float(stats.f.sf(F, k - 1, df2)))


@dataclass(frozen=True)
class KruskalResult:
    H: float
    df: int
    p: float
    epsilon_squared: float

    def to_dict(self) -> dict:
        return asdict(self)


def kruskal(df: pd.DataFrame, value: str, group: str) -> KruskalResult:
    """Kruskal-Wallis H (tie-corrected, SciPy); epsilon-squared = H / (n - 1)."""
    vs = _need_two(_groups(df, value, group))
    H, p = stats.kruskal(*vs)
    n = sum(v.size for v in vs)
    return KruskalResult(float(H), len(vs) - 1, float(p), float(H) / (n - 1))


def tukey_hsd(df: pd.DataFrame, value: str, group: str, confidence: float = 0.95) -> pd.DataFrame:
    """Tukey's HSD (Tukey-Kramer for unequal n) via scipy.stats.tukey_hsd; diff = mean(b) - mean(a)."""
    groups = {g: v for g, v in _groups(df, value, group).items() if v.size}
    names = list(groups)
    res = stats.tukey_hsd(*groups.values())
    ci = res.confidence_interval(confidence)
    rows = []
    for i, j in itertools.combinations(range(len(names)), 2):
        # scipy's statistic[i, j] is mean(i) - mean(j); report b - a with b = j
        rows.append(dict(group_a=names[i], group_b=names[j], diff=-res.statistic[i, j],
                         ci_low=-ci.high[i, j], ci_high=-ci.low[i, j], p_adj=res.pvalue[i, j]))
    return pd.DataFrame(rows)


def games_howell(df: pd.DataFrame, value: str, group: str, confidence: float = 0.95) -> pd.DataFrame:
    """Games-Howell post hoc test (unequal variances): Welch t per pair, studentized range for p and CI."""
    groups = {g: v for g, v in _groups(df, value, group).items() if v.size}
    names, k = list(groups), len(groups)
    rows = []
    for a, b in itertools.combinations(names, 2):
        x, y = groups[a], groups[b]
        va, vb = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
        diff = y.mean() - x.mean()
        se = np.sqrt(va + vb)
        dof = (va + vb) ** 2 / (va**2 / (x.size - 1) + vb**2 / (y.size - 1))
        t = diff / se
        p = stats.studentized_range.sf(abs(t) * np.sqrt(2), k, dof)
        half = stats.studentized_range.ppf(confidence, k, dof) / np.sqrt(2) * se
        rows.append(dict(group_a=a, group_b=b, diff=diff, se=se, t=t, df=dof, ci_low=diff - half, ci_high=diff + half,
                         p_adj=min(float(p), 1.0)))
    return pd.DataFrame(rows)


def cohens_d(a: np.ndarray, b: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """Cohen's d of b against a: (mean(b) - mean(a)) / pooled SD, with the CI pingouin's ``compute_esci``
    gives (SE = sqrt((n1+n2)/(n1 n2) + d^2/(2(n1+n2))), t critical value with n1+n2-2 df)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    na, nb = a.size, b.size
    if na < 2 or nb < 2:
        return (np.nan, np.nan, np.nan)
    pooled = np.sqrt(((na - 1) * a.var(ddof=1) + (nb - 1) * b.var(ddof=1)) / (na + nb - 2))
    d = (b.mean() - a.mean()) / pooled if pooled > 0 else np.nan
    se = np.sqrt((na + nb) / (na * nb) + d**2 / (2 * (na + nb)))
    crit = stats.t.ppf(0.5 + confidence / 2, na + nb - 2)
    return (float(d), float(d - crit * se), float(d + crit * se))


def hedges_correction(na: int, nb: int) -> float:
    """Small-sample factor J ~ 1 - 3 / (4 (n1 + n2) - 9) (Hedges & Olkin 1985), as pingouin applies it."""
    return 1 - 3 / (4 * (na + nb) - 9)


def effect_sizes(df: pd.DataFrame, value: str, group: str, reference: str | None = None,
                 confidence: float = 0.95) -> pd.DataFrame:
    """Cohen's d and Hedges' g (with CIs) for every pair, ``group_b`` against ``group_a``; with ``reference``
    only the pairs against it (reference as ``group_a``)."""
    groups = _groups(df, value, group)
    names = list(groups)
    if reference is not None and reference not in groups:
        raise KeyError(f"reference group {reference!r} not found; groups are {', '.join(names)}")
    pairs = [(reference, g) for g in names if g != reference] if reference else list(itertools.combinations(names, 2))
    rows = []
    for a, b in pairs:
        x, y = groups[a], groups[b]
        d, lo, hi = cohens_d(x, y, confidence)
        j = hedges_correction(x.size, y.size) if min(x.size, y.size) >= 2 else np.nan
        rows.append(dict(group_a=a, group_b=b, n_a=x.size, n_b=y.size, cohen_d=d, d_ci_low=lo, d_ci_high=hi,
                         hedges_g=d * j, g_ci_low=lo * j, g_ci_high=hi * j, small_group=min(x.size, y.size) < 2))
    return pd.DataFrame(rows)


@dataclass
class GroupComparison:
    """Everything medgap reports for one measure across groups."""

    value: str
    reference: str | None
    describe: pd.DataFrame
    anova: AnovaResult
    welch: WelchResult
    kruskal: KruskalResult
    tukey: pd.DataFrame
    games_howell: pd.DataFrame
    effects: pd.DataFrame
    effects_vs_reference: pd.DataFrame = field(default_factory=pd.DataFrame)

    def to_dict(self) -> dict:
        return {
            "value": self.value,
            "reference": self.reference,
            "describe": self.describe.to_dict("records"),
            "anova": self.anova.to_dict(),
            "welch": self.welch.to_dict(),
            "kruskal": self.kruskal.to_dict(),
            "tukey": self.tukey.to_dict("records"),
            "games_howell": self.games_howell.to_dict("records"),
            "effects": self.effects.to_dict("records"),
            "effects_vs_reference": self.effects_vs_reference.to_dict("records"),
        }


def compare_groups(df: pd.DataFrame, value: str, group: str = "group", reference: str | None = None) -> GroupComparison:
    """Descriptives, omnibus tests, post hoc tests and effect sizes of ``value`` across ``group``."""
    groups = _groups(df, value, group)
    if reference is None or reference not in groups:
        reference = next(iter(groups)) if reference is None else reference
    return GroupComparison(
        value=value,
        reference=reference,
        describe=describe_groups(df, value, group),
        anova=one_way_anova(df, value, group),
        welch=welch_anova(df, value, group),
        kruskal=kruskal(df, value, group),
        tukey=tukey_hsd(df, value, group),
        games_howell=games_howell(df, value, group),
        effects=effect_sizes(df, value, group),
        effects_vs_reference=effect_sizes(df, value, group, reference=reference),
    )
