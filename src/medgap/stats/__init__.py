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

import importlib

_LAZY = {
    "ComparisonError": "medgap.stats._errors",
    "assumption_checks": "medgap.stats.assumptions",
    "grouped_bootstrap": "medgap.stats.bootstrap",
    "patient_resample_counts": "medgap.stats.bootstrap",
    "percentile_interval": "medgap.stats.bootstrap",
    "classification_metrics": "medgap.stats.classification",
    "classification_metrics_ci": "medgap.stats.classification",
    "confusion_matrix": "medgap.stats.classification",
    "paired_metric_differences": "medgap.stats.classification",
    "roc_auc": "medgap.stats.classification",
    "roc_curve": "medgap.stats.classification",
    "wilson_interval": "medgap.stats.classification",
    "ComparisonResult": "medgap.stats.classifier_comparison",
    "accuracy_vs_reader_test": "medgap.stats.classifier_comparison",
    "delong_covariance": "medgap.stats.classifier_comparison",
    "delong_test": "medgap.stats.classifier_comparison",
    "mcnemar_test": "medgap.stats.classifier_comparison",
    "GroupComparison": "medgap.stats.comparison",
    "SMALL_GROUP": "medgap.stats.comparison",
    "TESTS": "medgap.stats.comparison",
    "anova_line": "medgap.stats.comparison",
    "compare_groups": "medgap.stats.comparison",
    "mixed_model_line": "medgap.stats.comparison",
    "paper_table": "medgap.stats.comparison",
    "reference_tests_line": "medgap.stats.comparison",
    "unit_line": "medgap.stats.comparison",
    "EffectSize": "medgap.stats.effect_sizes",
    "cluster_bootstrap_effects": "medgap.stats.effect_sizes",
    "effect_size": "medgap.stats.effect_sizes",
    "effect_size_ci": "medgap.stats.effect_sizes",
    "effect_sizes_vs_reference": "medgap.stats.effect_sizes",
    "hedges_correction": "medgap.stats.effect_sizes",
    "noncentral_t_ci": "medgap.stats.effect_sizes",
    "pairwise_effect_sizes": "medgap.stats.effect_sizes",
    "decimals_for": "medgap.stats.format",
    "format_ci": "medgap.stats.format",
    "format_n": "medgap.stats.format",
    "format_p": "medgap.stats.format",
    "format_value": "medgap.stats.format",
    "describe_groups": "medgap.stats.groups",
    "split_groups": "medgap.stats.groups",
    "ComparisonOptions": "medgap.stats.metric_comparison",
    "DEFAULT_REFERENCE": "medgap.stats.metric_comparison",
    "MetricComparison": "medgap.stats.metric_comparison",
    "check_reference": "medgap.stats.metric_comparison",
    "compare_metrics": "medgap.stats.metric_comparison",
    "metric_columns": "medgap.stats.metric_comparison",
    "MixedModelResult": "medgap.stats.mixed",
    "mixed_model": "medgap.stats.mixed",
    "holm": "medgap.stats.multiplicity",
    "AnovaResult": "medgap.stats.omnibus",
    "KruskalResult": "medgap.stats.omnibus",
    "WelchAnovaResult": "medgap.stats.omnibus",
    "kruskal_wallis": "medgap.stats.omnibus",
    "one_way_anova": "medgap.stats.omnibus",
    "welch_anova": "medgap.stats.omnibus",
    "games_howell": "medgap.stats.posthoc",
    "tukey_hsd": "medgap.stats.posthoc",
    "cliffs_delta": "medgap.stats.rank",
    "dunn_test": "medgap.stats.rank",
    "UNITS": "medgap.stats.units",
    "UnitError": "medgap.stats.units",
    "Units": "medgap.stats.units",
    "resolve_units": "medgap.stats.units",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'medgap.stats' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
