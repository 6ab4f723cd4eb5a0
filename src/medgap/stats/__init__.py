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

Each name is imported when first used (``from medgap.stats import describe_groups`` imports
``medgap.stats.groups`` alone): the tests behind the comparisons import SciPy's ``stats`` and statsmodels
(about 1.5 s), which ``medgap quality``'s closing table of group descriptives does not need.
"""

from __future__ import annotations

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(
    __name__,
    submod_attrs={
        "_errors": ["ComparisonError"],
        "assumptions": ["assumption_checks"],
        "bootstrap": ["grouped_bootstrap", "patient_resample_counts", "percentile_interval"],
        "classification": [
            "classification_metrics",
            "classification_metrics_ci",
            "confusion_matrix",
            "paired_metric_differences",
            "roc_auc",
            "roc_curve",
            "wilson_interval",
        ],
        "classifier_comparison": [
            "ComparisonResult",
            "accuracy_vs_reader_test",
            "delong_covariance",
            "delong_test",
            "mcnemar_test",
        ],
        "comparison": [
            "GroupComparison",
            "SMALL_GROUP",
            "TESTS",
            "anova_line",
            "compare_groups",
            "mixed_model_line",
            "paper_table",
            "reference_tests_line",
            "unit_line",
        ],
        "effect_sizes": [
            "EffectSize",
            "cluster_bootstrap_effects",
            "effect_size",
            "effect_size_ci",
            "effect_sizes_vs_reference",
            "hedges_correction",
            "noncentral_t_ci",
            "pairwise_effect_sizes",
        ],
        "format": ["decimals_for", "format_ci", "format_n", "format_p", "format_value"],
        "groups": ["describe_groups", "split_groups"],
        "metric_comparison": [
            "ComparisonOptions",
            "DEFAULT_REFERENCE",
            "MetricComparison",
            "check_reference",
            "compare_metrics",
            "metric_columns",
        ],
        "mixed": ["MixedModelResult", "mixed_model"],
        "multiplicity": ["holm"],
        "omnibus": [
            "AnovaResult",
            "KruskalResult",
            "WelchAnovaResult",
            "kruskal_wallis",
            "one_way_anova",
            "welch_anova",
        ],
        "posthoc": ["games_howell", "tukey_hsd"],
        "rank": ["cliffs_delta", "dunn_test"],
        "units": ["UNITS", "UnitError", "Units", "resolve_units"],
    },
)
