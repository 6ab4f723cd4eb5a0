"""Everything medgap reports for one measure across groups, and the paper-style table made from it.

With ``units=`` (a column of unit ids: patient, file) the rows are frames: every test, post hoc comparison and
effect size is computed on the units' means (one value per unit), the mixed model on the frames, and the
bootstrap resamples units within each group (see ``medgap.stats.units``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from medgap._json import jsonable
from medgap.stats.assumptions import ASSUMPTION_COLUMNS, assumption_checks
from medgap.stats.effect_sizes import (
    cluster_bootstrap_effects,
    effect_sizes_vs_reference,
    noncentral_t_ci,
    pairwise_effect_sizes,
    resolve_reference,
)
from medgap.stats.format import format_ci, format_n, format_p
from medgap.stats.groups import GroupInput, _compared_groups, describe_groups
from medgap.stats.mixed import MixedModelResult, mixed_model
from medgap.stats.multiplicity import holm
from medgap.stats.omnibus import (
    AnovaResult,
    KruskalResult,
    WelchAnovaResult,
    kruskal_wallis,
    one_way_anova,
    welch_anova,
)
from medgap.stats.posthoc import games_howell, tukey_hsd
from medgap.stats.rank import DUNN_COLUMNS, cliffs_delta, dunn_test

TESTS = ("welch", "mixed", "mann-whitney")
"""Tests of each group against the reference: Welch's t on the unit values, the mixed model's Wald z, or the
Mann-Whitney U on the unit values."""

SMALL_GROUP = 20
"""Below this many units in either group the reported CI of d is the exact noncentral-t interval; from it on,
the percentile bootstrap over units (which undercovers in small samples)."""

VS_REFERENCE_COLUMNS = [
    "group_a", "group_b", "n_units_a", "n_units_b", "n_frames_a", "n_frames_b", "mean_diff",
    "cohen_d", "d_ci_low", "d_ci_high", "d_ci_method", "d_nct_low", "d_nct_high", "d_boot_low", "d_boot_high",
    "d_approx_low", "d_approx_high", "hedges_g", "cliffs_delta", "cliffs_ci_low", "cliffs_ci_high",
    "mixed_estimate", "mixed_ci_low", "mixed_ci_high", "mixed_p", "test", "statistic", "df", "p", "p_holm",
    "holm_family", "holm_size",
]


@dataclass(frozen=True)
class GroupComparison:
    """Descriptives, omnibus tests, post hoc tests and effect sizes of one measure (``value``) across groups.

    ``unit`` names the unit of analysis (patient, file, or frame when every row is one); ``describe`` counts
    units in ``n`` and their frames in ``n_frames``, and every test is on the units' values. ``effects`` holds
    every pair, ``effects_vs_reference`` every group against ``reference`` (the large-sample CI of
    pingouin). ``vs_reference`` gathers everything about each group against the reference: n units (frames),
    Cohen's d with the reported CI (``d_ci_method``: noncentral t when a group has fewer than ``SMALL_GROUP``
    units, else the bootstrap over units) and all three CIs, Cliff's delta with its bootstrap CI, the mixed
    model's contrast, and the declared ``test`` with its P value and the Holm-adjusted ``p_holm`` over its
    family (``holm_family``, ``holm_size`` tests). ``mixed`` is the mixed model (None without units of
    several frames), ``dunn`` Dunn's test with Cliff's delta for every pair, ``assumptions`` the
    Brown-Forsythe and Shapiro-Wilk checks, ``notes`` sentences for the reader. Conventions are those of the
    functions that made each part (``medgap.stats.effect_sizes``, ``posthoc``, ``rank``, ``mixed``).
    """

    value: str
    reference: str
    confidence: float
    describe: pd.DataFrame
    anova: AnovaResult
    welch: WelchAnovaResult
    kruskal: KruskalResult
    tukey: pd.DataFrame
    games_howell: pd.DataFrame
    effects: pd.DataFrame
    effects_vs_reference: pd.DataFrame
    unit: str = "frame"
    vs_reference: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=VS_REFERENCE_COLUMNS))
    mixed: MixedModelResult | None = None
    dunn: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=DUNN_COLUMNS))
    assumptions: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=ASSUMPTION_COLUMNS))
    test: str = "welch"
    bootstrap: dict = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def omnibus(self) -> pd.DataFrame:
        """The three omnibus tests as rows: test, statistic, df1, df2, p, effect_size_name, effect_size."""
        a, w, k = self.anova, self.welch, self.kruskal
        return pd.DataFrame([
            dict(test="one-way ANOVA", statistic_name="F", statistic=a.F, df1=float(a.df_between),
                 df2=float(a.df_within), p=a.p, effect_size_name="eta_squared", effect_size=a.eta_squared),
            dict(test="Welch's ANOVA", statistic_name="F", statistic=w.F, df1=w.df1, df2=w.df2, p=w.p,
                 effect_size_name="", effect_size=np.nan),
            dict(test="Kruskal-Wallis", statistic_name="H", statistic=k.H, df1=float(k.df), df2=np.nan, p=k.p,
                 effect_size_name="epsilon_squared", effect_size=k.epsilon_squared),
        ])

    def to_frames(self) -> dict[str, pd.DataFrame]:
        """One full-precision table per part, keyed by a file-name-friendly name (for CSV output)."""
        return {"groups": self.describe, "omnibus": self.omnibus(), "tukey": self.tukey,
                "games_howell": self.games_howell, "effect_sizes": self.effects,
                "effect_sizes_vs_reference": self.effects_vs_reference, "vs_reference": self.vs_reference,
                "dunn": self.dunn, "assumptions": self.assumptions,
                "mixed_model": self.mixed.contrasts if self.mixed is not None else pd.DataFrame()}

    def to_dict(self, *, keep_infinity: bool = True) -> dict:
        """Plain Python types at full precision for JSON; NaN (undefined) becomes None; +/-inf stays unless
        ``keep_infinity=False`` (strict JSON, as comparison.json: then it is None too)."""
        return jsonable({
            "value": self.value, "reference": self.reference, "confidence": self.confidence, "unit": self.unit,
            "test": self.test, "bootstrap": self.bootstrap, "notes": list(self.notes),
            "describe": self.describe.to_dict("records"), "anova": self.anova.to_dict(),
            "welch": self.welch.to_dict(), "kruskal": self.kruskal.to_dict(),
            "tukey": self.tukey.to_dict("records"), "games_howell": self.games_howell.to_dict("records"),
            "effects": self.effects.to_dict("records"),
            "effects_vs_reference": self.effects_vs_reference.to_dict("records"),
            "vs_reference": self.vs_reference.to_dict("records"),
            "mixed_model": self.mixed.to_dict() if self.mixed is not None else None,
            "dunn": self.dunn.to_dict("records"), "assumptions": self.assumptions.to_dict("records"),
        }, keep_infinity=keep_infinity)


def _unit_values(data: GroupInput, value: str, group: str, units: str | None) -> tuple[GroupInput, dict | None]:
    """The table the tests run on (one row per unit: the mean of its finite frames) and frames per unit
    (None without ``units``: every row is a unit)."""
    if units is None:
        return data, None
    if not isinstance(data, pd.DataFrame):
        raise TypeError("units= needs a DataFrame (a column of unit ids beside the value and group columns)")
    missing = [c for c in (value, group, units) if c not in data.columns]
    if missing:
        raise KeyError(f"no column {', '.join(map(repr, missing))}; the table has {', '.join(map(str, data.columns))}")
    frames = data[[group, units, value]].copy()
    try:
        frames[value] = frames[value].astype(np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"column {value!r} must be numeric ({err})") from err
    frames = frames[np.isfinite(frames[value]) & frames[group].notna()]
    # sort=False: units in order of first appearance, so one-frame units give exactly the rows' arithmetic
    agg = frames.groupby([group, units], sort=False, observed=True)[value].agg(["mean", "size"]).reset_index()
    agg = agg.rename(columns={"mean": value, "size": "_n_frames"})
    if isinstance(data[group].dtype, pd.CategoricalDtype):  # keep the caller's group order
        agg[group] = pd.Categorical(agg[group], categories=data[group].cat.categories)
    return agg, {"frames": frames, "per_unit": agg}


def _frame_counts(data: GroupInput, value: str, group: str, unit_info: dict | None) -> dict[str, int]:
    if unit_info is not None:
        return {str(g): int(n) for g, n in unit_info["per_unit"].groupby(group, observed=True)["_n_frames"].sum().items()}
    return {g: int(v.size) for g, v in _compared_groups(data, value, group).items()}


def _vs_reference(groups: dict[str, np.ndarray], reference: str, effects: pd.DataFrame, frames: dict[str, int],
                  boot: pd.DataFrame, mixed: MixedModelResult | None, test: str, confidence: float) -> pd.DataFrame:
    rows = []
    eff = effects.set_index("group_b")
    bt = boot.set_index("group_b")
    mx = mixed.contrasts.set_index("group") if mixed is not None else None
    a = groups[reference]
    for name, b in groups.items():
        if name == reference:
            continue
        e = eff.loc[name]
        d = float(e.cohen_d)
        nct = noncentral_t_ci(d, a.size, b.size, confidence)
        boot_row = bt.loc[name] if name in bt.index else None
        d_boot = (float(boot_row.d_boot_low), float(boot_row.d_boot_high)) if boot_row is not None else (np.nan,) * 2
        small = min(a.size, b.size) < SMALL_GROUP
        reported, method = (nct, "noncentral t") if small else (d_boot, "bootstrap")
        if small and not np.isfinite(nct).all() and np.isfinite(d_boot).all():  # far in the nct tail (SciPy NaN)
            reported, method = d_boot, "bootstrap (noncentral t not computable)"
        if not np.isfinite(d):
            method = ""
        m = mx.loc[name] if mx is not None and name in mx.index else None
        stat = df = p = np.nan
        if test == "welch" and a.size >= 2 and b.size >= 2 and (np.ptp(a) > 0 or np.ptp(b) > 0):
            with warnings.catch_warnings():  # a constant group: SciPy warns of precision loss, its variance is 0
                warnings.filterwarnings("ignore", "Precision loss", RuntimeWarning)
                r = stats.ttest_ind(b, a, equal_var=False)
            stat, df, p = float(r.statistic), float(r.df), float(r.pvalue)
        elif test == "mann-whitney":
            r = stats.mannwhitneyu(b, a, alternative="two-sided")
            stat, p = float(r.statistic), float(r.pvalue)
        elif test == "mixed" and m is not None:
            stat, p = float(m.z), float(m.p)
        rows.append(dict(
            group_a=reference, group_b=name, n_units_a=a.size, n_units_b=b.size, n_frames_a=frames[reference],
            n_frames_b=frames[name], mean_diff=float(e.mean_diff), cohen_d=d, d_ci_low=reported[0],
            d_ci_high=reported[1], d_ci_method=method, d_nct_low=nct[0], d_nct_high=nct[1], d_boot_low=d_boot[0],
            d_boot_high=d_boot[1], d_approx_low=float(e.d_ci_low), d_approx_high=float(e.d_ci_high),
            hedges_g=float(e.hedges_g), cliffs_delta=cliffs_delta(a, b),
            cliffs_ci_low=float(boot_row.cliffs_boot_low) if boot_row is not None else np.nan,
            cliffs_ci_high=float(boot_row.cliffs_boot_high) if boot_row is not None else np.nan,
            mixed_estimate=float(m.estimate) if m is not None else np.nan,
            mixed_ci_low=float(m.ci_low) if m is not None else np.nan,
            mixed_ci_high=float(m.ci_high) if m is not None else np.nan,
            mixed_p=float(m.p) if m is not None else np.nan, test=test, statistic=stat, df=df, p=p))
    out = pd.DataFrame(rows, columns=VS_REFERENCE_COLUMNS)
    return with_holm(out, f"{test} vs {reference}")


def with_holm(vs_reference: pd.DataFrame, family: str, p_holm: np.ndarray | None = None) -> pd.DataFrame:
    """``vs_reference`` with ``p_holm`` (Holm over its own P values unless given), ``holm_family`` and
    ``holm_size`` (the number of finite P values adjusted together)."""
    out = vs_reference.copy()
    p = out["p"].to_numpy(np.float64)
    out["p_holm"] = holm(p) if p_holm is None else p_holm
    out["holm_family"] = family
    out["holm_size"] = int(np.isfinite(p).sum()) if p_holm is None else int(np.isfinite(p_holm).sum())
    return out


def compare_groups(data: GroupInput, value: str, group: str = "group", reference: str | None = None,
                   confidence: float = 0.95, *, units: str | None = None, unit: str | None = None,
                   test: str = "welch", n_boot: int = 2000, seed: int = 0) -> GroupComparison:
    """Describe ``value`` per ``group`` and compare the groups (see ``GroupComparison``).

    ``reference`` (default: the first group) must have a value; the study passes ``"natural"``.

    Args:
        units: a column of ``data`` holding each row's unit id (patient, file). The rows are then frames:
            each unit's finite frames are averaged and the units are the observations of every test and effect
            size; the mixed model is fitted on the frames; the bootstrap resamples units within each group.
            None: every row is a unit.
        unit: the unit's name for tables and notes (default: ``units``' column name, or "frame").
        test: the test of each group against the reference whose P values are Holm-adjusted (``TESTS``).
        n_boot, seed: bootstrap resamples and their seed (the same seed gives the same CIs).
    """
    if test not in TESTS:
        raise ValueError(f"test {test!r} is not one of {', '.join(TESTS)}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    table, unit_info = _unit_values(data, value, group, units)
    unit = unit or (units if units is not None else "frame")
    groups = _compared_groups(table, value, group)
    reference = resolve_reference(groups, reference)
    frames = _frame_counts(data, value, group, unit_info)
    describe = describe_groups(table, value, group, confidence)
    describe.insert(2, "n_frames", [frames.get(g, 0) for g in describe.group])
    notes: list[str] = []
    mixed = None
    if unit_info is not None and (unit_info["per_unit"]["_n_frames"] > 1).any():
        f = unit_info["frames"]
        mixed = mixed_model(f[value].to_numpy(), f[group].astype(str).to_numpy(), f[units].to_numpy(), reference,
                            order=list(groups), confidence=confidence)
        if mixed.error:
            notes.append(f"the mixed model could not be fitted: {mixed.error}")
        elif not mixed.converged:
            notes.append("the mixed model did not converge (statsmodels: "
                         f"{'; '.join(mixed.warnings) or 'not converged'}); its contrasts are unreliable")
    elif unit_info is not None:
        notes.append(f"no mixed model: every {unit} has one frame (the tests on {unit}s are the whole analysis)")
    flat = np.concatenate(list(groups.values()))
    labels = np.repeat(list(groups), [v.size for v in groups.values()])
    boot = cluster_bootstrap_effects(flat, labels, np.arange(flat.size), reference, n_boot=n_boot, seed=seed,
                                     confidence=confidence)
    effects_ref = effect_sizes_vs_reference(groups, reference=reference, confidence=confidence)
    assumptions = assumption_checks(groups)
    skipped = assumptions[assumptions.note.str.startswith("skipped")]
    if len(skipped):
        notes.append("not checked: " + "; ".join(f"{r.test} of {r.group} ({r.note.removeprefix('skipped: ')})"
                                                 for r in skipped.itertuples()))
    if test == "mixed" and mixed is None:
        notes.append("test 'mixed' needs units with several frames: no P values against the reference")
    return GroupComparison(
        value=value,
        reference=reference,
        confidence=confidence,
        describe=describe,
        anova=one_way_anova(groups),
        welch=welch_anova(groups),
        kruskal=kruskal_wallis(groups),
        tukey=tukey_hsd(groups, confidence=confidence),
        games_howell=games_howell(groups, confidence=confidence),
        effects=pairwise_effect_sizes(groups, confidence=confidence),
        effects_vs_reference=effects_ref,
        unit=unit,
        vs_reference=_vs_reference(groups, reference, effects_ref, frames, boot, mixed, test, confidence),
        mixed=mixed,
        dunn=dunn_test(groups),
        assumptions=assumptions,
        test=test,
        bootstrap={"n_boot": n_boot, "seed": seed, "method": f"percentile, {unit}s resampled within each group"},
        notes=tuple(notes),
    )


def paper_table(comparison: GroupComparison, digits: int | None = None, d_digits: int = 2, *,
                significant: int = 3, interval: str = "reported") -> pd.DataFrame:
    """The published study's table: group, n, mean (95% CI), Cohen's d vs the reference (95% CI).

    Means and their CIs print to ``significant`` significant digits of the largest magnitude in the cell
    (BRISQUE 21.7 (20.9 to 22.5); an edge density 0.0523 (0.0511 to 0.0535)), or to ``digits`` decimals when
    given; Cohen's d to ``d_digits`` decimals.

    ``n`` counts units; when the unit is not the frame the column is ``n <unit>s (frames)`` and reads
    ``12 (340)``. ``interval``: the CI of d shown: ``reported`` (the comparison's choice, ``d_ci_method``:
    noncentral t for small groups, else the bootstrap over units), ``nct``, ``bootstrap`` or ``approx`` (the
    large-sample interval of pingouin's compute_esci).

    The reference row reads ``reference``; a group without a defined d (fewer than 2 values, zero pooled SD)
    reads ``n/a``. Column names carry the confidence level and the reference group's label.
    """
    columns = {"reported": ("d_ci_low", "d_ci_high"), "nct": ("d_nct_low", "d_nct_high"),
               "bootstrap": ("d_boot_low", "d_boot_high"), "approx": ("d_approx_low", "d_approx_high")}
    if interval not in columns:
        raise ValueError(f"interval {interval!r} is not one of {', '.join(columns)}")
    level = f"{comparison.confidence * 100:g}% CI"
    d_column = f"d vs {comparison.reference} ({level})"
    if len(comparison.vs_reference):
        eff = comparison.vs_reference.set_index("group_b")
        low, high = columns[interval]
    else:  # a GroupComparison made without vs_reference: the large-sample interval
        eff = comparison.effects_vs_reference.set_index("group_b")
        low, high = "d_ci_low", "d_ci_high"
    by_frames = comparison.unit != "frame" and "n_frames" in comparison.describe
    n_column = f"n {comparison.unit}s (frames)" if by_frames else "n"
    rows = []
    for r in comparison.describe.itertuples():
        if r.group == comparison.reference:
            d = "reference"
        elif r.group in eff.index:
            e = eff.loc[r.group]
            d = format_ci(e.cohen_d, e[low], e[high], d_digits)
        else:
            d = "n/a"
        n = format_n(int(r.n), int(r.n_frames)) if by_frames else int(r.n)
        rows.append({"group": r.group, n_column: n, f"mean ({level})": format_ci(r.mean, r.ci_low, r.ci_high, digits,
                                                                                significant=significant),
                     d_column: d})
    return pd.DataFrame(rows, columns=["group", n_column, f"mean ({level})", d_column])


def anova_line(comparison: GroupComparison) -> str:
    """``One-way ANOVA: F(4, 555) = 412.36, P < .000001, eta-squared = 0.748``."""
    a = comparison.anova
    return (f"One-way ANOVA: F({a.df_between}, {a.df_within}) = {a.F:.2f}, {format_p(a.p)}, "
            f"eta-squared = {a.eta_squared:.3f}")


_TEST_NAMES = {"welch": "Welch's t", "mixed": "mixed-model z", "mann-whitney": "Mann-Whitney U"}


def unit_line(comparison: GroupComparison) -> str:
    """``Unit of analysis: file (n = 26 files, 65 frames); each file's frames are averaged before the tests.``"""
    d = comparison.describe
    units, frames = int(d.n.sum()), int(d.n_frames.sum()) if "n_frames" in d else int(d.n.sum())
    if comparison.unit == "frame":
        return (f"Unit of analysis: frame (n = {units} frames); every frame counts as one observation, also frames "
                "of one clip or patient.")
    return (f"Unit of analysis: {comparison.unit} (n = {units} {comparison.unit}s, {frames} frames); each "
            f"{comparison.unit}'s frames are averaged before the tests and effect sizes.")


def mixed_model_line(comparison: GroupComparison, digits: int | None = None) -> str:
    """The mixed model in one line: formula, counts, ICC and each group's contrast with its CI and P (or why
    there is none)."""
    m = comparison.mixed
    if m is None:
        return f"Mixed model: not fitted (every {comparison.unit} has one frame)."
    head = (f"Mixed model ({comparison.value} ~ group + (1 | {comparison.unit}), REML; {m.n_frames} frames in "
            f"{m.n_units} {comparison.unit}s)")
    if m.error:
        return f"{head}: could not be fitted ({m.error})."
    level = f"{comparison.confidence * 100:g}% CI"
    parts = [f"{r.group} {format_ci(r.estimate, r.ci_low, r.ci_high, digits)}, {format_p(r.p)}"
             for r in m.contrasts.itertuples()]
    warning = "" if m.converged else " NOT CONVERGED: treat as unreliable;"
    return (f"{head}:{warning} ICC = {m.icc:.2f}; difference from {comparison.reference} ({level}): "
            + "; ".join(parts) + ".")


def reference_tests_line(comparison: GroupComparison) -> str:
    """Each group's test against the reference with its Holm-adjusted P and the family it was adjusted in."""
    v = comparison.vs_reference
    if not len(v):
        return ""
    name = _TEST_NAMES.get(comparison.test, comparison.test)
    on = "" if comparison.test == "mixed" else f" on {comparison.unit} values"
    parts = [f"{r.group_b} {format_p(r.p_holm)}" for r in v.itertuples()]
    family = v.holm_family.iloc[0]
    size = int(v.holm_size.iloc[0])
    return (f"{name} vs {comparison.reference}{on}, Holm-adjusted over {size} comparison(s) ({family}): "
            + "; ".join(parts) + ".")
