"""``run_resolution``: one model per input size with the same patient-grouped folds and protocol, the stacking
ensemble fitted per outer fold on that fold's inner-validation predictions, and the evaluation of every size and
of the ensemble on the test folds (patient-bootstrap CIs, paired differences).

Layout of ``out``::

    config.json, versions.json          the options (ResolutionConfig) and the environment
    size_<s>/                           a `medgap finetune` run per size (same split.csv; fold_k/val_predictions.csv)
    ensemble/                           the stacking ensemble as a run: predictions.csv (test folds), classes.json,
                                        split.csv, config.json, fold_k/scale_weights.csv
    average/                            the equal-weight average of the sizes (the baseline stacking must beat)
    scale_weights.csv                   one row per class, one column per size: the weights averaged over folds
    scale_weights_per_fold.csv          fold, class, one column per size
    scale_weights.png                   the heat map of scale_weights.csv
    resolution_metrics.csv              model, class, metric, value, ci_low, ci_high, boot_valid, n
    resolution_differences.csv          model_a, model_b, class, metric, value_a, value_b, difference, ci_low, ...
    resolution.json                     task, sizes, unit of analysis, notes

The ensemble's predictions.csv has the schema of :mod:`medgap.data.predictions`, so ``medgap evaluate
OUT/ensemble --against OUT/size_128`` works on it as on any classification run.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from medgap._options import check_resumable, write_run_config
from medgap.data.predictions import (
    CLASSES_FILE,
    CONFIG_FILE,
    PREDICTIONS_FILE,
    SPLIT_FILE,
    label_column,
    prob_column,
    read_predictions,
    run_task,
    write_predictions,
)
from medgap.ensemble.config import ResolutionConfig
from medgap.ensemble.errors import EnsembleError
from medgap.ensemble.stacking import combine, fit_stacking
from medgap.train.config import ConfigError, upgrade_recorded

ENSEMBLE = "ensemble"
AVERAGE = "average"
VAL_PREDICTIONS_FILE = "val_predictions.csv"  # medgap.train.run.VAL_PREDICTIONS_FILE (no torch import here)
METHODS = ("Stacking: per class (finding), softmax weights over the sizes' predicted probabilities, fitted on the "
           "fold's inner-validation predictions only (the items that chose each size's checkpoint; never the test "
           "fold) by minimising the cross-entropy of the mixture (classify: of the mixture renormalised over "
           "classes; multilabel: the masked BCE per finding), L-BFGS, an L2 penalty on the weight logits. "
           "'average' is the equal-weight mean of the sizes. CIs: percentile bootstrap resampling patients "
           "(group_id), all items of a drawn patient together; paired differences are computed on the same "
           "resamples for both models.")


@dataclass
class ResolutionResult:
    """What :func:`run_resolution` computed (also written to ``out``)."""

    out: Path
    task: str
    sizes: list[int]
    metrics: pd.DataFrame
    """model, class, metric, value, ci_low, ci_high, boot_valid, n (model: size_<s>, ensemble, average)."""
    differences: pd.DataFrame
    """model_a, model_b, class, metric, value_a, value_b, difference, ci_low, ci_high, boot_valid."""
    weights: pd.DataFrame
    """One row per class, one column per size (``size_<s>``), rows summing to 1: averaged over folds."""
    weights_per_fold: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    def summary(self) -> pd.DataFrame:
        """One row per model, one column per headline metric: ``value (low-high)``."""
        keys = (["accuracy", "balanced_accuracy", "macro_auc"] if self.task == "classify" else None)
        m = self.metrics
        if keys is None:
            m = m[m.metric.isin(["auc", "mean_auc"])]
            cols = [f"auc {c}" if c != "overall" else "mean auc" for c in m["class"]]
        else:
            m = m[(m["class"] == "overall") & m.metric.isin(keys)]
            cols = list(m.metric)
        text = [f"{v:.3f} ({lo:.3f}-{hi:.3f})" if np.isfinite(lo) else f"{v:.3f}"
                for v, lo, hi in zip(m.value, m.ci_low, m.ci_high)]
        wide = pd.DataFrame({"model": m.model.to_numpy(), "column": cols, "text": text})
        order = list(dict.fromkeys(self.metrics.model))
        table = wide.pivot(index="model", columns="column", values="text").reindex(order)
        return table[list(dict.fromkeys(cols))]


def _check_out(cfg: ResolutionConfig) -> None:
    # bootstrap and stacking_l2 are re-evaluated on every call; upgrade: fields added to finetune since recording
    check_resumable(cfg.out, cfg, error=ConfigError, what="a resolution run", upgrade=upgrade_recorded,
                    ignore=("bootstrap", "stacking_l2"))


def check_resolution_config(cfg: ResolutionConfig) -> list[int]:
    """The sizes and every size's fine-tuning options, before anything is written."""
    from medgap.train.run import check_config

    sizes = cfg.size_list
    if cfg.task not in ("classify", "multilabel"):
        raise ConfigError(f"--task {cfg.task}: medgap resolution stacks class or finding probabilities (classify or "
                          f"multilabel)")
    if cfg.strategy == "features":
        raise ConfigError("--strategy features fits its classifier on the validation items too, so there are no "
                          "held-aside validation predictions to fit the stacking weights on; use --strategy full, "
                          "partial or linear")
    if not (isinstance(cfg.bootstrap, int) and cfg.bootstrap >= 100):
        raise ConfigError(f"--bootstrap {cfg.bootstrap}: use at least 100 resamples (2000 is the default)")
    if not (np.isfinite(cfg.stacking_l2) and cfg.stacking_l2 >= 0):
        raise ConfigError(f"--stacking-l2 {cfg.stacking_l2}: a number >= 0 (1e-3 is the default)")
    for s in sizes:
        check_config(cfg.for_size(s))
    _check_out(cfg)
    return sizes


def run_resolution(cfg: ResolutionConfig, log: Callable[[str], None] = print,
                   callbacks: Sequence = ()) -> ResolutionResult:
    """Train ``cfg.sizes`` (each a :func:`medgap.train.run_finetune` run into ``out/size_<s>``; finished folds
    are reused on a rerun), stack them (:func:`stack_runs`) and evaluate every size, the stacking ensemble and
    the equal-weight average on the pooled test folds. Returns a :class:`ResolutionResult`."""
    from medgap.environment import environment
    from medgap.train import run_finetune

    sizes = check_resolution_config(cfg)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    write_run_config(out, cfg)
    (out / "versions.json").write_text(json.dumps(environment(), indent=1, default=str))
    for s in sizes:
        log(f"size {s}: training into {out / f'size_{s}'}")
        run_finetune(cfg.for_size(s), log=lambda line, s=s: log(f"[{s} px] {line}"), callbacks=callbacks)
    runs = {f"size_{s}": out / f"size_{s}" for s in sizes}
    weights, per_fold = stack_runs(runs, out, l2=cfg.stacking_l2)
    log(f"stacking weights (mean over folds; rows sum to 1):\n{weights.round(3).to_string()}")
    task = cfg.task
    metrics, differences, notes = evaluate_models({**runs, ENSEMBLE: out / ENSEMBLE, AVERAGE: out / AVERAGE}, task,
                                                  bootstrap=cfg.bootstrap, seed=cfg.seed)
    from medgap.report.resolution import plot_scale_weights

    files = [out / "scale_weights.csv", out / "scale_weights_per_fold.csv"]
    weights.to_csv(files[0])
    per_fold.to_csv(files[1], index=False)
    files.append(plot_scale_weights(weights, out / "scale_weights.png", per_fold=per_fold))
    stacking_notes = json.loads((out / ENSEMBLE / "stacking_notes.json").read_text())
    for note in stacking_notes:
        log(note)
    notes = stacking_notes + notes
    metrics.to_csv(out / "resolution_metrics.csv", index=False)
    differences.to_csv(out / "resolution_differences.csv", index=False)
    files += [out / "resolution_metrics.csv", out / "resolution_differences.csv", out / "resolution.json"]
    (out / "resolution.json").write_text(json.dumps(
        {"task": task, "sizes": sizes, "unit_of_analysis": "item (each image as predicted); the CIs resample "
         "patients (group_id)", "methods": METHODS, "notes": notes}, indent=1))
    return ResolutionResult(out, task, sizes, metrics, differences, weights, per_fold, notes, files)


# -- stacking of finished runs ------------------------------------------------------------------------------------

def _json(path: Path):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise EnsembleError(f"{path}: missing; pass finished `medgap finetune` run directories") from None


def _aligned(tables: Sequence[pd.DataFrame], names: Sequence[str], what: str) -> list[pd.DataFrame]:
    ids = [set(t.item_id) for t in tables]
    for name, s in zip(names[1:], ids[1:]):
        if s != ids[0]:
            raise EnsembleError(f"{what}: {names[0]} and {name} predict different items ({len(ids[0] ^ s)} differ); "
                                f"the runs must share one split (same data, filter, folds and seed)")
    order = tables[0].item_id.to_numpy()
    return [t.set_index("item_id").loc[order].reset_index() for t in tables]


def _targets(table: pd.DataFrame, task: str, outputs: list[str]) -> np.ndarray:
    if task == "classify":
        index = {c: i for i, c in enumerate(outputs)}
        return table.label.map(index).to_numpy(np.int64)
    return table[[label_column(f) for f in outputs]].to_numpy(np.float64)


def _prediction_frame(base: pd.DataFrame, prob: np.ndarray, task: str, outputs: list[str]) -> pd.DataFrame:
    from medgap.train.tasks import TASKS

    t = TASKS[task](None)  # prediction_columns needs only the outputs
    t.outputs = outputs
    common = [c for c in ("item_id", "path", "frame", "group_id", "fold", "split", "label") if c in base.columns]
    return pd.DataFrame({**{c: base[c].to_numpy() for c in common},
                         **t.prediction_columns(prob, _targets(base, task, outputs))})


def stack_runs(runs: Mapping[str, str | Path], out: str | Path, *, l2: float = 1e-3,
               names: Sequence[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stack finished runs of one split (``runs``: a name per run, e.g. ``size_64``) fold by fold: weights fitted
    on each fold's ``val_predictions.csv``, applied to its test predictions. Writes ``out/ensemble`` and
    ``out/average`` (equal weights) as run directories. Returns (weights averaged over folds: classes x runs,
    per-fold weights: fold, class, one column per run).

    Raises:
        EnsembleError: runs of different tasks, classes, folds or splits, or a fold without validation
            predictions (a run made before they were saved: delete that fold and rerun the finetune command).
    """
    out = Path(out)
    names = list(names or runs)
    dirs = [Path(runs[n]) for n in names]
    configs = [_json(d / CONFIG_FILE) for d in dirs]
    tasks = {run_task(c) for c in configs}
    if len(tasks) != 1 or not tasks <= {"classify", "multilabel"}:
        raise EnsembleError(f"runs of task(s) {sorted(tasks)}: stacking needs runs of one task, classify or "
                            f"multilabel")
    task = tasks.pop()
    outputs = [str(c) for c in _json(dirs[0] / CLASSES_FILE)]
    for n, d in zip(names, dirs):
        if [str(c) for c in _json(d / CLASSES_FILE)] != outputs:
            raise EnsembleError(f"{d / CLASSES_FILE}: other classes than {dirs[0] / CLASSES_FILE} ({outputs})")
    folds = {int(c["folds"]) for c in configs}
    if len(folds) != 1:
        raise EnsembleError(f"runs with different numbers of folds ({sorted(folds)}); use one --folds")
    splits = [pd.read_csv(d / SPLIT_FILE, dtype={"item_id": str, "group_id": str, "label": str}) for d in dirs]
    key = ["item_id", "fold", "role"]
    first = splits[0][key].sort_values(key).reset_index(drop=True)
    for n, s in zip(names[1:], splits[1:]):
        if not first.equals(s[key].sort_values(key).reset_index(drop=True)):
            raise EnsembleError(f"{runs[n]}: its split.csv differs from {dirs[0]}'s; stacking compares models on one "
                                f"split (same data, --filter, --folds and --seed)")
    scales = names
    per_fold_rows, stacked, averaged, notes = [], [], [], []
    for k in range(folds.pop()):
        val_files = [d / f"fold_{k}" / VAL_PREDICTIONS_FILE for d in dirs]
        for f in val_files:
            if not f.exists():
                raise EnsembleError(f"{f}: missing, so fold {k}'s stacking weights have no validation predictions to "
                                    f"be fitted on (a run made before medgap saved them, or a features run). Delete "
                                    f"{f.parent} and rerun that run's command: fold {k} is trained again")
        val = _aligned([read_predictions(f, task) for f in val_files], names, f"fold {k} validation")
        test = _aligned([read_predictions(d / f"fold_{k}" / PREDICTIONS_FILE, task) for d in dirs], names,
                        f"fold {k} test")
        p_val = np.stack([t[[prob_column(c) for c in outputs]].to_numpy(np.float64) for t in val])
        p_test = np.stack([t[[prob_column(c) for c in outputs]].to_numpy(np.float64) for t in test])
        fit = fit_stacking(p_val, _targets(val[0], task, outputs), task=task, classes=outputs, scales=scales, l2=l2)
        table = fit.table()
        notes += [f"fold {k}: {n}" for n in fit.notes]
        per_fold_rows.append(table.reset_index().assign(fold=k))
        stacked.append(_prediction_frame(test[0], fit.predict(p_test), task, outputs))
        equal = np.full((len(outputs), len(scales)), 1 / len(scales))
        averaged.append(_prediction_frame(test[0], combine(p_test, equal, task), task, outputs))
        fold_dir = out / ENSEMBLE / f"fold_{k}"
        fold_dir.mkdir(parents=True, exist_ok=True)
        table.to_csv(fold_dir / "scale_weights.csv")
    for name, frames in ((ENSEMBLE, stacked), (AVERAGE, averaged)):
        d = out / name
        d.mkdir(parents=True, exist_ok=True)
        write_predictions(pd.concat(frames, ignore_index=True), d / PREDICTIONS_FILE, task, outputs)
        (d / CLASSES_FILE).write_text(json.dumps(outputs))
        shutil.copyfile(dirs[0] / SPLIT_FILE, d / SPLIT_FILE)
        (d / CONFIG_FILE).write_text(json.dumps({"task": task, "ensemble": "stacking" if name == ENSEMBLE else
                                                 "equal-weight average", "members": {n: str(p) for n, p in
                                                                                     zip(names, dirs)},
                                                 "folds": len(stacked), "stacking_l2": l2}, indent=1))
    per_fold = pd.concat(per_fold_rows, ignore_index=True)[["fold", "class", *scales]]
    mean = per_fold.groupby("class", sort=False)[scales].mean()
    (out / ENSEMBLE / "stacking_notes.json").write_text(json.dumps(notes, indent=1))
    return mean, per_fold


# -- evaluation ---------------------------------------------------------------------------------------------------

def evaluate_models(dirs: Mapping[str, Path], task: str, *, bootstrap: int = 2000, seed: int = 0,
                    confidence: float = 0.95) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Every model's held-out metrics with patient-bootstrap CIs, and the paired differences of ``ensemble`` and
    ``average`` against each size (and of ``ensemble`` against ``average``). Returns (metrics, differences,
    notes)."""
    pairs = [(a, b) for a in (ENSEMBLE, AVERAGE) for b in dirs if b.startswith("size_")] + [(ENSEMBLE, AVERAGE)]
    if task == "classify":
        return _evaluate_classify(dirs, pairs, bootstrap, seed, confidence)
    return _evaluate_multilabel(dirs, pairs, bootstrap, seed, confidence)


_CLASSIFY_ROWS = ("accuracy", "balanced_accuracy", "macro_f1", "macro_auc", "auc")


def _evaluate_classify(dirs, pairs, bootstrap, seed, confidence):
    from medgap.evaluation import evaluate_run

    frames, notes = [], [METHODS]
    for name, d in dirs.items():
        ev = evaluate_run(d, bootstrap=bootstrap, seed=seed, confidence=confidence)
        m = ev.metrics[ev.metrics.metric.isin(_CLASSIFY_ROWS)]
        frames.append(m[["class", "metric", "value", "ci_low", "ci_high", "boot_valid"]].assign(
            model=name, n=len(ev.run.y_true)))
        if name == ENSEMBLE:
            notes.append(ev.unit_of_analysis)
    diffs = []
    for a, b in pairs:
        ev = evaluate_run(dirs[a], against=dirs[b], bootstrap=bootstrap, seed=seed, confidence=confidence)
        d = ev.differences
        diffs.append(d[d.metric.isin(_CLASSIFY_ROWS)].assign(model_a=a, model_b=b))
        for what, r in ev.tests:
            if what.startswith("vs "):
                notes.append(f"{r.test} {a} vs {b}: P = {r.p:.3g} (items taken as independent)")
    metrics = pd.concat(frames, ignore_index=True)[["model", "class", "metric", "value", "ci_low", "ci_high",
                                                     "boot_valid", "n"]]
    differences = pd.concat(diffs, ignore_index=True)
    cols = ["model_a", "model_b", "class", "metric", "value_a", "value_b", "difference", "ci_low", "ci_high",
            "boot_valid"]
    return metrics, differences[cols], notes


def _evaluate_multilabel(dirs, pairs, bootstrap, seed, confidence):
    """AUC per finding (over its known items) and their mean, per model, and the paired differences, all on one
    set of patient resamples."""
    from medgap.stats import patient_resample_counts, percentile_interval, roc_auc
    from medgap.stats.bootstrap import group_index

    outputs = [str(c) for c in _json(next(iter(dirs.values())) / CLASSES_FILE)]
    tables = [read_predictions(Path(d) / PREDICTIONS_FILE, "multilabel") for d in dirs.values()]
    tables = _aligned(tables, list(dirs), "held-out predictions")
    y = tables[0][[label_column(f) for f in outputs]].to_numpy(np.float64)
    probs = {n: t[[prob_column(f) for f in outputs]].to_numpy(np.float64) for n, t in zip(dirs, tables)}
    groups = tables[0].group_id.fillna("").astype(str).to_numpy()
    groups = np.where(groups == "", "item:" + tables[0].item_id.astype(str).to_numpy(), groups)

    def aucs(p: np.ndarray, idx: np.ndarray) -> np.ndarray:
        vals = []
        for j in range(len(outputs)):
            yy, pp = y[idx, j], p[idx, j]
            known = ~np.isnan(yy)
            vals.append(roc_auc(yy[known] == 1, pp[known]) if known.any() else np.nan)
        vals = np.array(vals)
        return np.append(vals, np.nanmean(vals) if np.isfinite(vals).any() else np.nan)

    names, inverse = group_index(groups)
    members = [np.flatnonzero(inverse == g) for g in range(names.size)]
    counts = patient_resample_counts(names.size, bootstrap, np.random.default_rng(seed))
    everyone = np.arange(len(y))
    point = {n: aucs(p, everyone) for n, p in probs.items()}
    draws = {n: np.full((bootstrap, len(outputs) + 1), np.nan) for n in probs}
    for b in range(bootstrap):
        idx = np.concatenate([np.repeat(members[g], c) for g, c in enumerate(counts[b]) if c])
        for n, p in probs.items():
            draws[n][b] = aucs(p, idx)
    labels = [*outputs, "overall"]
    metric = ["auc"] * len(outputs) + ["mean_auc"]
    n_known = [int((~np.isnan(y[:, j])).sum()) for j in range(len(outputs))] + [len(y)]
    rows = []
    for n in probs:
        low, high, valid = percentile_interval(draws[n], confidence)
        rows += [{"model": n, "class": c, "metric": m, "value": v, "ci_low": lo, "ci_high": hi, "boot_valid": int(k),
                  "n": nk} for c, m, v, lo, hi, k, nk in zip(labels, metric, point[n], low, high, valid, n_known)]
    diffs = []
    for a, b in pairs:
        low, high, valid = percentile_interval(draws[a] - draws[b], confidence)
        diffs += [{"model_a": a, "model_b": b, "class": c, "metric": m, "value_a": va, "value_b": vb,
                   "difference": va - vb, "ci_low": lo, "ci_high": hi, "boot_valid": int(k)}
                  for c, m, va, vb, lo, hi, k in zip(labels, metric, point[a], point[b], low, high, valid)]
    per_patient = pd.Series(groups).value_counts()
    notes = [METHODS, f"unit of analysis: item (each image as predicted), {len(y)} items; the bootstrap CIs "
                      f"resample patients (group_id, {per_patient.size} patients, up to {per_patient.max()} items "
                      f"each)"]
    return pd.DataFrame(rows), pd.DataFrame(diffs), notes


__all__ = ["AVERAGE", "ENSEMBLE", "METHODS", "ResolutionResult", "check_resolution_config", "evaluate_models",
           "run_resolution", "stack_runs"]
