"""``evaluate_run``: the clinical evaluation of a run's held-out predictions, as tables and notes (no printing,
no files; :mod:`medgap.report.evaluation` writes them)."""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from medgap._options import check_choice, option
from medgap.evaluation.aggregation import AGGREGATE_LEVELS, aggregate, align_runs
from medgap.evaluation.errors import EvaluationError
from medgap.evaluation.reader import read_reader
from medgap.evaluation.run import Run, read_run
from medgap.data.predictions import HELD_OUT
from medgap.stats import (
    ComparisonResult,
    accuracy_vs_reader_test,
    classification_metrics_ci,
    confusion_matrix,
    delong_test,
    mcnemar_test,
    paired_metric_differences,
)
from medgap.stats.classification import OVERALL

METHODS = (
    "CIs: percentile bootstrap resampling patients (group_id) with replacement, all items of a drawn patient "
    "together; a CI is conditional on the metric being defined when boot_valid < n_boot. Wilson score CIs for "
    "proportions treat items as independent. McNemar: exact binomial when discordant pairs < 25, else "
    "chi-square with continuity correction. Reader: chi-square with Yates' correction on the 2x2 "
    "correct/incorrect table, Fisher's exact when an expected count < 5; McNemar as well when the reader read "
    "the same items. DeLong: fast algorithm (Sun & Xu 2014), one class vs the rest, unadjusted for the "
    "number of classes."
)

_UNITS = {
    "item": "item (each prediction as made: an image or a frame)",
    "file": "file (one decision per image or video: the mean of its frames' class probabilities)",
    "patient": "patient (one decision per patient: the mean of its items' class probabilities)",
}


@dataclass
class EvaluationOptions:
    """The options of an evaluation (``medgap evaluate``'s, recorded as ``config`` in evaluation.json)."""

    run_dir: Path = option(help="Run directory of `medgap finetune` (holds predictions.csv).", argument=True)
    against: Path | None = option(None, "Another run on the same items: McNemar, DeLong per class, differences "
                                        "with patient-bootstrap CIs.")
    reader: Path | None = option(None, "Reader CSV with columns item_id, pred (class names): chi-square/Fisher and "
                                       "McNemar against the model on the items read.")
    reader_correct: int | None = option(None, "Reader's correct reads K (with --reader-total).")
    reader_total: int | None = option(None, "Reader's total reads N: chi-square (Fisher if an expected count < 5) "
                                            "of model vs reader accuracy.")
    split: str = option(HELD_OUT, "Rows of predictions.csv to evaluate (its split column).")
    bootstrap: int = option(2000, "Bootstrap resamples of patients for the CIs.")
    seed: int = option(0, "Bootstrap seed (same seed, same CIs).")
    confidence: float = option(0.95, "Confidence level of the intervals.")
    aggregate: str = option("item", "item, file (one decision per image or video: the mean of its frames' "
                                    "probabilities) or patient. The CIs resample patients either way; outputs get a "
                                    "_file/_patient suffix.", choices=AGGREGATE_LEVELS)

    def check(self) -> None:
        """Raise EvaluationError for options that cannot go together or are out of range."""
        for name in ("reader_correct", "reader_total", "bootstrap", "seed"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, bool):
                try:
                    setattr(self, name, operator.index(value))
                except TypeError:
                    raise EvaluationError(f"{name} (--{name.replace('_', '-')}) must be an integer, got "
                                          f"{value!r}") from None
        if self.reader is not None and (self.reader_correct is not None or self.reader_total is not None):
            raise EvaluationError("give the reader either as --reader CSV or as --reader-correct K --reader-total N, "
                                  "not both")
        if (self.reader_correct is None) != (self.reader_total is None):
            raise EvaluationError("--reader-correct and --reader-total go together, e.g. --reader-correct 71 "
                                  "--reader-total 100")
        if self.reader_total is not None and not (self.reader_total > 0
                                                  and 0 <= self.reader_correct <= self.reader_total):
            raise EvaluationError(f"--reader-correct must be between 0 and --reader-total (> 0), got "
                                  f"{self.reader_correct} of {self.reader_total}")
        if self.bootstrap < 100:
            raise EvaluationError(f"--bootstrap {self.bootstrap}: too few resamples for stable 2.5%/97.5% "
                                  f"percentiles; use the default 2000 (100 is the least accepted)")
        if not 0.5 <= self.confidence < 1:
            raise EvaluationError(f"--confidence must be in [0.5, 1), e.g. 0.95; got {self.confidence}")
        check_choice(self.aggregate, AGGREGATE_LEVELS, "--aggregate", EvaluationError)
        if self.against is not None and Path(self.against).resolve() == Path(self.run_dir).resolve():
            raise EvaluationError("--against names RUN_DIR itself; give the other run's directory")


@dataclass
class Evaluation:
    """What :func:`evaluate_run` computed.

    ``metrics`` has one row per (class, metric), the ``overall`` rows first (accuracy, balanced accuracy,
    macro F1, ...), then sensitivity, specificity, PPV, NPV, F1, Youden's index and AUC per class, each with
    its value, patient-bootstrap CI (ci_low, ci_high, boot_valid) and Wilson CI where it is a proportion.
    ``tests`` are (what, result) pairs: McNemar and DeLong against ``against``, chi-square/Fisher and McNemar
    against a reader. ``differences`` (with ``against``) are this run minus the other on their shared items
    with patient-bootstrap CIs. ``notes`` say what the numbers rest on and what was assumed.
    """

    run: Run
    options: EvaluationOptions
    metrics: pd.DataFrame
    confusion: np.ndarray
    per_fold: pd.DataFrame
    tests: list[tuple[str, ComparisonResult]] = field(default_factory=list)
    differences: pd.DataFrame | None = None
    against: Run | None = None
    notes: list[str] = field(default_factory=list)
    outputs: list[Path] = field(default_factory=list)
    """The files written by :func:`medgap.report.evaluation.write_evaluation` (empty until then)."""

    @property
    def classes(self) -> list[str]:
        return self.run.classes

    @property
    def unit(self) -> str:
        """The unit of analysis: ``item``, ``file`` or ``patient``."""
        return self.run.unit

    @property
    def unit_of_analysis(self) -> str:
        """The unit of analysis and what the CIs resample, in words."""
        s = run_summary(self.run)
        return (f"unit of analysis: {_UNITS[self.unit]}, {s['items']} {self.unit}s; the bootstrap CIs resample "
                f"patients (group_id, {s['patients']} patients)")

    @property
    def overall(self) -> pd.DataFrame:
        """The ``overall`` rows of ``metrics``."""
        return self.metrics[self.metrics["class"] == OVERALL].reset_index(drop=True)

    @property
    def per_class(self) -> pd.DataFrame:
        """The per-class rows of ``metrics``."""
        return self.metrics[self.metrics["class"] != OVERALL].reset_index(drop=True)

    def summary(self) -> dict:
        """The evaluated data: run_dir, items (units), patients, folds, classes, class counts."""
        return run_summary(self.run)


def evaluate_run(
    run_dir: str | Path,
    *,
    against: str | Path | None = None,
    reader: str | Path | None = None,
    reader_correct: int | None = None,
    reader_total: int | None = None,
    split: str = HELD_OUT,
    bootstrap: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    aggregate: str = "item",
) -> Evaluation:
    """Evaluate a run's pooled held-out predictions: accuracy and per-class sensitivity, specificity, PPV, NPV,
    F1, Youden's index and ROC AUC with patient-bootstrap and Wilson CIs, the confusion matrix and accuracy per
    fold; optionally McNemar, DeLong and bootstrap differences against another run (``against``, on the shared
    items) or chi-square/Fisher (and McNemar) against a reader (``reader`` CSV of item_id, pred, or counts
    ``reader_correct`` of ``reader_total``).

    ``aggregate`` is the unit of analysis: ``item`` (as predicted), ``file`` or ``patient`` (soft voting: the
    mean of the unit's class probabilities). The bootstrap resamples patients either way.

    Returns an :class:`Evaluation`; nothing is printed or written (see ``medgap.report.evaluation``).

    Raises:
        EvaluationError: a missing or damaged run, reader file or option; the message names it and the fix.
    """
    opts = EvaluationOptions(Path(run_dir), None if against is None else Path(against),
                             None if reader is None else Path(reader), reader_correct, reader_total, split, bootstrap,
                             seed, confidence, aggregate)
    opts.check()
    run = _read(opts.run_dir, opts)
    metrics = classification_metrics_ci(run.y_true, run.y_pred, run.classes, run.groups, run.prob, opts.bootstrap,
                                        opts.seed, opts.confidence)
    ev = Evaluation(run, opts, metrics, confusion_matrix(run.y_true, run.y_pred, len(run.classes)), per_fold(run))
    ev.notes += [*run.notes, *data_notes(run, metrics, opts.bootstrap)]
    if opts.against is not None:
        _compare_runs(ev, _read(opts.against, opts))
    if opts.reader is not None:
        _compare_reader_file(ev, opts.reader)
    elif opts.reader_correct is not None:
        correct = int((run.y_true == run.y_pred).sum())
        ev.tests.append(("model vs reader", accuracy_vs_reader_test(correct, run.y_true.size, opts.reader_correct,
                                                                    opts.reader_total)))
        ev.notes.append("reader given as counts: the chi-square/Fisher test takes the model's and the reader's "
                        "reads as independent samples")
    return ev


def _read(run_dir: Path, opts: EvaluationOptions) -> Run:
    return aggregate(read_run(run_dir, opts.split), opts.aggregate)


def _compare_runs(ev: Evaluation, b: Run) -> None:
    ev.against = b
    ev.notes += b.notes
    pair = align_runs(ev.run, b)
    ev.notes += pair.notes
    name, y = b.run_dir.name, pair.y
    ev.tests.append((f"vs {name}", mcnemar_test(y == pair.pred_a, y == pair.pred_b)))
    for j, c in enumerate(pair.classes):
        pos = y == j
        if min(pos.sum(), (~pos).sum()) < 2:
            ev.notes.append(f"DeLong for {c!r} skipped: needs 2 positive and 2 negative shared items")
            continue
        ev.tests.append((f"AUC {c} vs {name}", delong_test(pos, pair.prob_a[:, j], pair.prob_b[:, j],
                                                           ev.options.confidence)))
    ev.differences = paired_metric_differences(y, pair.pred_a, pair.pred_b, pair.classes, pair.groups, pair.prob_a,
                                               pair.prob_b, ev.options.bootstrap, ev.options.seed,
                                               ev.options.confidence)


def _compare_reader_file(ev: Evaluation, path: Path) -> None:
    run = ev.run
    both = read_reader(path, run)
    model_ok, reader_ok = (both.pred == both.label).to_numpy(), (both.pred_reader == both.label).to_numpy()
    n = len(both)
    if n < len(run.predictions):
        ev.notes.append(f"--reader: {n} of {len(run.predictions)} items read; the model is compared on those")
    ev.tests.append(("model vs reader", accuracy_vs_reader_test(int(model_ok.sum()), n, int(reader_ok.sum()), n)))
    ev.tests.append(("model vs reader, paired", mcnemar_test(model_ok, reader_ok)))
    ev.notes.append("reader and model read the same items: McNemar's paired test is the appropriate one; the "
                    "chi-square/Fisher test is reported for comparison with studies that use it")


def run_summary(run: Run) -> dict:
    """run_dir, items (rows: units of analysis), patients, max_items_per_patient, folds, classes, class_counts."""
    per_patient = pd.Series(run.groups).value_counts()
    table = run.predictions
    folds = sorted(table.fold.dropna().unique().tolist()) if "fold" in table else []
    return {"run_dir": str(run.run_dir), "items": int(run.y_true.size), "patients": int(per_patient.size),
            "max_items_per_patient": int(per_patient.max()), "folds": folds, "classes": run.classes,
            "class_counts": {c: int((run.y_true == j).sum()) for j, c in enumerate(run.classes)}}


def per_fold(run: Run) -> pd.DataFrame:
    """Accuracy per fold: fold, items, patients, accuracy (empty without a fold column)."""
    if "fold" not in run.predictions.columns:
        return pd.DataFrame(columns=["fold", "items", "patients", "accuracy"])
    df = pd.DataFrame({"fold": run.predictions.fold.to_numpy(), "patient": run.groups,
                       "correct": run.y_true == run.y_pred})
    return df.groupby("fold", sort=True).agg(items=("correct", "size"), patients=("patient", "nunique"),
                                             accuracy=("correct", "mean")).reset_index()


def data_notes(run: Run, metrics: pd.DataFrame, n_boot: int) -> list[str]:
    """What the numbers rest on: patients with several items, patients in several folds, undefined metrics."""
    notes = []
    per_patient = pd.Series(run.groups).value_counts()
    if per_patient.max() > 1:
        notes.append(f"{run.y_true.size} items from {per_patient.size} patients (up to {per_patient.max()} per "
                     f"patient): items of a patient are not independent, so report the patient-bootstrap CIs; the "
                     f"Wilson CIs and the McNemar/DeLong/chi-square P values treat items as independent and are "
                     f"too optimistic")
    if "fold" in run.predictions.columns:
        patient_folds = pd.DataFrame({"g": run.groups, "f": run.predictions.fold.to_numpy()})
        folds_per_patient = patient_folds.groupby("g").f.nunique()
        leaked = folds_per_patient[folds_per_patient > 1]
        if not leaked.empty:
            notes.append(f"{leaked.size} patient(s) are held out in more than one fold (e.g. {leaked.index[0]!r}): "
                         f"the folds were not grouped by patient, so training may have seen the test patients")
    never = metrics[metrics.boot_valid == 0]
    if not never.empty:
        notes.append(f"undefined, so no CI: {', '.join(f'{c} {m}' for c, m in zip(never['class'], never.metric))} "
                     f"(a class never predicted has no PPV, one never present no sensitivity or AUC)")
    partial = metrics[(metrics.boot_valid > 0) & (metrics.boot_valid < n_boot)]
    if not partial.empty:
        worst = partial.loc[partial.boot_valid.idxmin()]
        notes.append(f"{len(partial)} metric(s) undefined in some resamples (e.g. {worst['class']} {worst.metric}: "
                     f"defined in {int(worst.boot_valid)} of {n_boot}); their CIs use the resamples where they are "
                     f"defined")
    return notes
