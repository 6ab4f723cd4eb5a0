"""Statistics for comparing groups of images (pure functions; see docs)."""

from medgap.stats.format import anova_line, format_ci, format_p, paper_table
from medgap.stats.groups import (
    AnovaResult,
    GroupComparison,
    KruskalResult,
    WelchResult,
    cohens_d,
    compare_groups,
    describe_groups,
    effect_sizes,
    games_howell,
    hedges_correction,
    kruskal,
    one_way_anova,
    tukey_hsd,
    welch_anova,
)

__all__ = [
    "AnovaResult",
    "GroupComparison",
    "KruskalResult",
    "WelchResult",
    "anova_line",
    "cohens_d",
    "compare_groups",
    "describe_groups",
    "effect_sizes",
    "format_ci",
    "format_p",
    "games_howell",
    "hedges_correction",
    "kruskal",
    "one_way_anova",
    "paper_table",
    "tukey_hsd",
    "welch_anova",
]
