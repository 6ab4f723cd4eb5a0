"""Statistics comparing a per-image measure across groups of images (pure functions, no I/O).

``compare_groups`` runs everything for one measure; the parts: ``describe_groups`` (n, mean, SD, t CI,
median, quartiles), ``one_way_anova`` / ``welch_anova`` / ``kruskal_wallis``, ``tukey_hsd`` /
``games_howell``, ``effect_size`` / ``pairwise_effect_sizes`` / ``effect_sizes_vs_reference`` (Cohen's d,
Hedges' g), and ``format_p`` / ``format_ci`` / ``paper_table`` for the paper-style table. Checked against
SciPy, statsmodels and pingouin in tests/stats/.

``compare_metrics`` compares every metric column of a scores table at once (columns and their direction
from the metric registry) on a unit of analysis (``units``: patient, file or frame; frames are averaged per
unit before the tests), with a mixed model over frames (``mixed``), bootstrap CIs over units and exact
noncentral-t CIs of d (``effect_size``), Holm-adjusted P values against the reference for the primary metric
and the secondary ones (``multiplicity``), Dunn's test with Cliff's delta (``rank``) and assumption checks
(``assumptions``); it returns its notes instead of printing.

Evaluating a classifier (``classification``, ``classifier_comparison``, ``bootstrap``): per-class and overall
metrics with patient-bootstrap and Wilson CIs, McNemar, chi-square/Fisher against a reader, DeLong.
"""

from medgap.stats.bootstrap import grouped_bootstrap, patient_resample_counts, percentile_interval
from medgap.stats.classification import (
    classification_metrics,
    classification_metrics_ci,
    confusion_matrix,
    paired_metric_differences,
    roc_auc,
    roc_curve,
    wilson_interval,
)
from medgap.stats.classifier_comparison import (
    ComparisonResult,
    accuracy_vs_reader_test,
    delong_covariance,
    delong_test,
    mcnemar_test,
)
from medgap.stats._errors import ComparisonError
from medgap.stats.assumptions import assumption_checks
from medgap.stats.comparison import (
    SMALL_GROUP,
    TESTS,
    GroupComparison,
    anova_line,
    compare_groups,
    mixed_model_line,
    paper_table,
    reference_tests_line,
    unit_line,
)
from medgap.stats.effect_size import (
    EffectSize,
    cluster_bootstrap_effects,
    effect_size,
    effect_size_ci,
    effect_sizes_vs_reference,
    hedges_correction,
    noncentral_t_ci,
    pairwise_effect_sizes,
)
from medgap.stats.format import decimals_for, format_ci, format_n, format_p, format_value
from medgap.stats.groups import describe_groups, split_groups
from medgap.stats.metric_comparison import (
    DEFAULT_REFERENCE,
    ComparisonOptions,
    MetricComparison,
    check_reference,
    compare_metrics,
    metric_columns,
)
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
from medgap.stats.rank import cliffs_delta, dunn_test
from medgap.stats.units import UNITS, UnitError, Units, resolve_units

__all__ = [
    "ComparisonResult",
    "accuracy_vs_reader_test",
    "classification_metrics",
    "classification_metrics_ci",
    "confusion_matrix",
    "delong_covariance",
    "delong_test",
    "grouped_bootstrap",
    "mcnemar_test",
    "paired_metric_differences",
    "patient_resample_counts",
    "percentile_interval",
    "roc_auc",
    "roc_curve",
    "wilson_interval",
    "DEFAULT_REFERENCE",
    "SMALL_GROUP",
    "TESTS",
    "UNITS",
    "ComparisonError",
    "ComparisonOptions",
    "MixedModelResult",
    "UnitError",
    "Units",
    "assumption_checks",
    "cliffs_delta",
    "cluster_bootstrap_effects",
    "dunn_test",
    "format_n",
    "holm",
    "mixed_model",
    "mixed_model_line",
    "reference_tests_line",
    "unit_line",
    "noncentral_t_ci",
    "resolve_units",
    "MetricComparison",
    "check_reference",
    "compare_metrics",
    "decimals_for",
    "format_value",
    "metric_columns",
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
