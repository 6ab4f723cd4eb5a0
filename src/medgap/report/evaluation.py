"""Files of an :class:`~medgap.evaluation.Evaluation`: evaluation.json, evaluation_metrics.csv,
evaluation_differences.csv, confusion_matrix.png and roc_curves.png (with a ``_file`` / ``_patient`` suffix for
an aggregated evaluation, so they sit beside the per-item ones)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from medgap._json import jsonable
from medgap.evaluation import METHODS, Evaluation, run_summary
from medgap.report.classification_plots import plot_confusion_matrix, plot_roc_curves
from medgap.stats import roc_curve


def output_suffix(ev: Evaluation) -> str:
    """'' for a per-item evaluation, else '_file' / '_patient'."""
    return "" if ev.unit == "item" else f"_{ev.unit}"


def plot_evaluation(ev: Evaluation, out_dir: Path, suffix: str | None = None) -> list[Path]:
    """confusion_matrix{suffix}.png and, when a class has both positive and negative units,
    roc_curves{suffix}.png (one class vs the rest) in ``out_dir``."""
    out_dir = Path(out_dir)
    sfx = output_suffix(ev) if suffix is None else suffix
    run, name = ev.run, ev.run.run_dir.name
    outputs = [plot_confusion_matrix(ev.confusion, run.classes, out_dir / f"confusion_matrix{sfx}.png",
                                     f"{name}: confusion matrix ({len(run.predictions)} {ev.unit}s)")]
    curves = {}
    auc = ev.metrics.set_index(["class", "metric"]).value
    for j, c in enumerate(run.classes):
        pos = run.y_true == j
        if 0 < pos.sum() < pos.size:
            fpr, tpr, _ = roc_curve(pos, run.prob[:, j])
            curves[c] = (fpr, tpr, float(auc[(c, "auc")]))
    if curves:
        outputs.append(plot_roc_curves(curves, out_dir / f"roc_curves{sfx}.png",
                                       f"{name}: ROC, one class vs the rest"))
    return outputs


def evaluation_document(ev: Evaluation) -> dict:
    """Everything in evaluation.json, as strict-JSON values (NaN as null)."""
    run = ev.run
    doc = {
        "config": asdict(ev.options),
        "data": run_summary(run),
        "unit_of_analysis": {"unit": ev.unit, "bootstrap_resamples": "patient", "description": ev.unit_of_analysis},
        "methods": METHODS,
        "metrics": ev.metrics.to_dict("records"),
        "confusion_matrix": {"classes": run.classes, "rows": "true", "columns": "predicted",
                             "counts": ev.confusion.tolist()},
        "per_fold": ev.per_fold.to_dict("records"),
        "tests": [{"comparison": what, **r.to_dict()} for what, r in ev.tests],
        "against": None if ev.against is None else run_summary(ev.against),
        "differences": None if ev.differences is None else ev.differences.to_dict("records"),
        "notes": ev.notes,
    }
    return jsonable(doc)


def write_evaluation(ev: Evaluation, out_dir: Path | None = None, suffix: str | None = None) -> list[Path]:
    """Write the evaluation's files into ``out_dir`` (default: the run directory) and return their paths,
    evaluation{suffix}.json first. An evaluation_differences file left by an earlier ``against`` evaluation is
    removed when this one has none (it would no longer match). Also sets ``ev.outputs``."""
    out_dir = Path(ev.run.run_dir if out_dir is None else out_dir)
    sfx = output_suffix(ev) if suffix is None else suffix
    metrics_csv = out_dir / f"evaluation{sfx}_metrics.csv"
    ev.metrics.to_csv(metrics_csv, index=False)
    outputs = [metrics_csv]
    differences_csv = out_dir / f"evaluation{sfx}_differences.csv"
    if ev.differences is not None:
        ev.differences.to_csv(differences_csv, index=False)
        outputs.append(differences_csv)
    else:
        differences_csv.unlink(missing_ok=True)
    outputs += plot_evaluation(ev, out_dir, sfx)
    out_json = out_dir / f"evaluation{sfx}.json"
    out_json.write_text(json.dumps(evaluation_document(ev), indent=1))  # last: the file that says it is complete
    ev.outputs = [out_json, *outputs]
    return ev.outputs


def write_task_evaluation(ev, out_dir: Path | None = None) -> list[Path]:
    """A regress/multilabel evaluation (:func:`medgap.evaluation.evaluate_task_run`) as
    ``evaluation_<task>.csv`` (one row per finding and metric, with CI) and ``evaluation_<task>.json`` (the
    table, the unit of analysis and the notes; strict JSON) in ``out_dir`` (default: the run directory)."""
    out_dir = Path(out_dir or ev.run_dir)
    csv_path, json_path = out_dir / f"evaluation_{ev.task}.csv", out_dir / f"evaluation_{ev.task}.json"
    ev.metrics.to_csv(csv_path, index=False)
    doc = {"task": ev.task, "items": ev.items, "patients": ev.patients, "unit_of_analysis": ev.unit_of_analysis,
           "metrics": ev.metrics.to_dict("records"), "notes": list(ev.notes)}
    json_path.write_text(json.dumps(jsonable(doc), indent=1, allow_nan=False))
    return [csv_path, json_path]
