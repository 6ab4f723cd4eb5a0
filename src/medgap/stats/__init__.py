"""Statistics comparing a per-image measure across groups of images (pure functions, no I/O).

``compare_groups`` runs everything for one measure; the parts: ``describe_groups`` (n, mean, SD, t CI,
median, quartiles), ``one_way_anova`` / ``welch_anova`` / ``kruskal_wallis``, ``tukey_hsd`` /
``games_howell``, ``effect_size`` / ``pairwise_effect_sizes`` / ``effect_sizes_vs_reference`` (Cohen's d,
Hedges' g), and ``format_p`` / ``format_ci`` / ``paper_table`` for the paper-style table. Checked against
SciPy, statsmodels and pingouin in tests/stats/.
"""

from medgap.stats.classification import (
    TestResult,
    accuracy_vs_reader,
    bootstrap_ci,
    classification_metrics,
    delong_test,
    mcnemar_test,
)
from medgap.stats.comparison import GroupComparison, anova_line, compare_groups, paper_table
from medgap.stats.effect_size import (
    EffectSize,
    effect_size,
    effect_size_ci,
    effect_sizes_vs_reference,
    hedges_correction,
    pairwise_effect_sizes,
)
from medgap.stats.format import format_ci, format_p
from medgap.stats.groups import describe_groups, split_groups
from medgap.stats.omnibus import (
    AnovaResult,
    KruskalResult,
    WelchAnovaResult,
    kruskal_wallis,
    one_way_anova,
    welch_anova,
)
from medgap.stats.posthoc import games_howell, tukey_hsd

__all__ = [
    "TestResult",
    "accuracy_vs_reader",
    "bootstrap_ci",
    "classification_metrics",
    "delong_test",
    "mcnemar_test",
    "AnovaResult",
    "EffectSize",
    "GroupComparison",
    "KruskalResult",
    "WelchAnovaResult",
    "anova_line",
    "compare_groups",
    "describe_groups",
    "effect_size",
    "effect_size_ci",
    "effect_sizes_vs_reference",
    "format_ci",
    "format_p",
    "games_howell",
    "hedges_correction",
    "kruskal_wallis",
    "one_way_anova",
    "pairwise_effect_sizes",
    "paper_table",
    "split_groups",
    "tukey_hsd",
    "welch_anova",
]
