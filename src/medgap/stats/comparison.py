"""Everything medgap reports for one measure across groups, and the paper-style table made from it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from medgap._json import jsonable
from medgap.stats.effect_size import effect_sizes_vs_reference, pairwise_effect_sizes, resolve_reference
from medgap.stats.format import format_ci, format_p
from medgap.stats.groups import GroupInput, _compared_groups, describe_groups
from medgap.stats.omnibus import (
    AnovaResult,
    KruskalResult,
    WelchAnovaResult,
    kruskal_wallis,
    one_way_anova,
    welch_anova,
)
from medgap.stats.posthoc import games_howell, tukey_hsd


@dataclass(frozen=True)
class GroupComparison:
    """Descriptives, omnibus tests, post hoc tests and effect sizes of one measure (``value``) across groups.

    ``effects`` holds every pair, ``effects_vs_reference`` every group against ``reference``. Conventions are
    those of the functions that made each part (``medgap.stats.effect_size``, ``medgap.stats.posthoc``).
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
                "effect_sizes_vs_reference": self.effects_vs_reference}

    def to_dict(self) -> dict:
        """Plain Python types at full precision for JSON; NaN (undefined) becomes None, +/-inf stays."""
        return jsonable({
            "value": self.value, "reference": self.reference, "confidence": self.confidence,
            "describe": self.describe.to_dict("records"), "anova": self.anova.to_dict(),
            "welch": self.welch.to_dict(), "kruskal": self.kruskal.to_dict(),
            "tukey": self.tukey.to_dict("records"), "games_howell": self.games_howell.to_dict("records"),
            "effects": self.effects.to_dict("records"),
            "effects_vs_reference": self.effects_vs_reference.to_dict("records"),
        }, keep_infinity=True)


def compare_groups(data: GroupInput, value: str, group: str = "group", reference: str | None = None,
                   confidence: float = 0.95) -> GroupComparison:
    """Describe ``value`` per ``group`` and compare the groups (see ``GroupComparison``).

    ``reference`` (default: the first group) must have a value; the study passes ``"natural"``.
    """
    groups = _compared_groups(data, value, group)
    reference = resolve_reference(groups, reference)
    return GroupComparison(
        value=value,
        reference=reference,
        confidence=confidence,
        describe=describe_groups(data, value, group, confidence),
        anova=one_way_anova(groups),
        welch=welch_anova(groups),
        kruskal=kruskal_wallis(groups),
        tukey=tukey_hsd(groups, confidence=confidence),
        games_howell=games_howell(groups, confidence=confidence),
        effects=pairwise_effect_sizes(groups, confidence=confidence),
        effects_vs_reference=effect_sizes_vs_reference(groups, reference=reference, confidence=confidence),
    )


def paper_table(comparison: GroupComparison, digits: int | None = None, d_digits: int = 2, *,
                significant: int = 3) -> pd.DataFrame:
    """The published study's table: group, n, mean (95% CI), Cohen's d vs the reference (95% CI).

    Means and their CIs print to ``significant`` significant digits of the largest magnitude in the cell
    (BRISQUE 21.7 (20.9 to 22.5); an edge density 0.0523 (0.0511 to 0.0535)), or to ``digits`` decimals when
    given; Cohen's d to ``d_digits`` decimals.

    The reference row reads ``reference``; a group without a defined d (fewer than 2 values, zero pooled SD)
    reads ``n/a``. Column names carry the confidence level and the reference group's label.
    """
    level = f"{comparison.confidence * 100:g}% CI"
    d_column = f"d vs {comparison.reference} ({level})"
    eff = comparison.effects_vs_reference.set_index("group_b")
    rows = []
    for r in comparison.describe.itertuples():
        if r.group == comparison.reference:
            d = "reference"
        elif r.group in eff.index:
            e = eff.loc[r.group]
            d = format_ci(e.cohen_d, e.d_ci_low, e.d_ci_high, d_digits)
        else:
            d = "n/a"
        rows.append({"group": r.group, "n": int(r.n), f"mean ({level})": format_ci(r.mean, r.ci_low, r.ci_high, digits,
                                                                       significant=significant),
                     d_column: d})
    return pd.DataFrame(rows, columns=["group", "n", f"mean ({level})", d_column])


def anova_line(comparison: GroupComparison) -> str:
    """``One-way ANOVA: F(4, 555) = 412.36, P < .000001, eta-squared = 0.748``."""
    a = comparison.anova
    return (f"One-way ANOVA: F({a.df_between}, {a.df_within}) = {a.F:.2f}, {format_p(a.p)}, "
            f"eta-squared = {a.eta_squared:.3f}")
