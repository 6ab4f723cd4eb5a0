"""``medgap evaluate``: the clinical evaluation of a ``medgap finetune`` run's held-out predictions.

Reads RUN_DIR/predictions.csv (+ classes.json), pools the held-out predictions of all folds, and reports
accuracy and per-class sensitivity, specificity, PPV, NPV, F1, Youden's index and AUC with patient-bootstrap
and Wilson 95% CIs; optionally McNemar/DeLong and bootstrap differences against another run, or
chi-square/Fisher (and McNemar) against a reader. Writes evaluation.json, evaluation_metrics.csv and the
plots into RUN_DIR.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import typer
from rich.table import Table

from medgap.cli import app
from medgap.cli._common import EXIT_OK, EXIT_USAGE, UsageError, console, out_console, plain, print_error
from medgap.report.classification_plots import plot_confusion_matrix, plot_roc_curves
from medgap.stats import (
    ComparisonResult,
    accuracy_vs_reader_test,
    classification_metrics_ci,
    confusion_matrix,
    delong_test,
    format_p,
    mcnemar_test,
    paired_metric_differences,
    roc_curve,
)

REQUIRED_COLUMNS = ("item_id", "group_id", "label", "pred")
METHODS = (
    "CIs: percentile bootstrap resampling patients (group_id) with replacement, all items of a drawn patient "
    "together; a CI is conditional on the metric being defined when boot_valid < n_boot. Wilson score CIs for "
    "proportions treat items as independent. McNemar: exact binomial when discordant pairs < 25, else "
    "chi-square with continuity correction. Reader: chi-square with Yates' correction on the 2x2 "
    "correct/incorrect table, Fisher's exact when an expected count < 5; McNemar as well when the reader read "
    "the same items. DeLong: fast algorithm (Sun & Xu 2014), one class vs the rest, unadjusted for the "
    "number of classes."
)


@dataclass(frozen=True)
class RunPredictions:
    """The rows of one split of a run's predictions.csv, as arrays in class order."""

    run_dir: Path
    table: pd.DataFrame
    classes: list[str]
    y_true: np.ndarray
    y_pred: np.ndarray
    prob: np.ndarray
    groups: np.ndarray


def _read_classes(run_dir: Path, columns: list[str]) -> list[str]:
    path = run_dir / "classes.json"
    prob_classes = [c[len("prob_"):] for c in columns if c.startswith("prob_")]
    if not path.exists():
        if not prob_classes:
            raise UsageError(f"{path}: missing, and predictions.csv has no prob_<class> columns to take the "
                             f"classes from; write the ordered class names there, e.g. [\"covid\", \"regular\"]")
        console.print(f"[yellow]note:[/] {plain(path)} missing; classes taken from the prob_ columns: "
                      f"{plain(prob_classes)}",
                      soft_wrap=True)
        return prob_classes
    try:
        classes = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise UsageError(f"{path}: not valid JSON ({e}); it should list the class names in order") from None
    if not isinstance(classes, list) or len(classes) < 2 or len(set(map(str, classes))) != len(classes):
        raise UsageError(f"{path}: expected a list of at least 2 distinct class names, got {classes!r}")
    return [str(c) for c in classes]


def read_run(run_dir: Path, split: str = "test") -> RunPredictions:
    """One split of RUN_DIR/predictions.csv, checked: every error names the file and the fix."""
    run_dir = Path(run_dir)
    pred_file = run_dir / "predictions.csv"
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir}: no such run directory; pass the --out folder of `medgap finetune`")
    if not pred_file.exists():
        raise UsageError(f"{pred_file}: missing; make it with `medgap finetune --out {run_dir} ...` (or give the "
                         f"run directory that holds predictions.csv)")
    rerun = ("rerun the `medgap finetune` command of this run to rewrite it (finished folds are reused, nothing is "
             "retrained)")
    try:
        df = pd.read_csv(pred_file, dtype={"item_id": str, "group_id": str, "label": str, "pred": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UsageError(f"{pred_file}: damaged or not a CSV table ({first}); {rerun}") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise UsageError(f"{pred_file}: no column {', '.join(missing)}; it needs {', '.join(REQUIRED_COLUMNS)}, "
                         f"split and prob_<class> (it has {', '.join(df.columns)})")
    classes = _read_classes(run_dir, list(df.columns))
    if "split" in df.columns:
        available = sorted(df["split"].dropna().astype(str).unique())
        df = df[df["split"].astype(str) == split]
        if df.empty:
            raise UsageError(f"{pred_file}: no rows with split == {split!r}; it has {available}. "
                             f"Choose one with --split")
    df = df.reset_index(drop=True)
    for col in ("label", "pred"):
        unknown = sorted(set(df[col].dropna()) - set(classes))
        if unknown or df[col].isna().any():
            what = f"unknown classes {unknown}" if unknown else f"{int(df[col].isna().sum())} empty value(s)"
            raise UsageError(f"{pred_file}: column {col!r} has {what}; {run_dir / 'classes.json'} lists "
                             f"{classes}. Fix classes.json or the predictions.")
    prob_cols = [f"prob_{c}" for c in classes]
    absent = [c for c in prob_cols if c not in df.columns]
    if absent:
        raise UsageError(f"{pred_file}: no column {', '.join(absent)}; there must be one prob_<class> column per "
                         f"class in {run_dir / 'classes.json'} ({classes})")
    prob = _probabilities(df, prob_cols, pred_file, rerun)
    dup = df.item_id[df.item_id.duplicated()]
    if not dup.empty:
        raise UsageError(f"{pred_file}: item {dup.iloc[0]!r} appears more than once in split {split!r} "
                         f"({dup.nunique()} such items); each item must be held out once. Evaluate one repeat "
                         f"of the cross-validation at a time.")
    if split == "test":
        _check_against_split(df, run_dir, pred_file, rerun)
    groups = df.group_id.fillna("").to_numpy(str)
    no_group = groups == ""
    if no_group.any():  # an item without a patient id is its own patient
        groups = np.where(no_group, "item:" + df.item_id.to_numpy(str), groups)
        console.print(f"[yellow]note:[/] {plain(pred_file)}: {int(no_group.sum())} item(s) without group_id, each "
                      f"taken as its own patient", soft_wrap=True)
    index = {c: i for i, c in enumerate(classes)}
    return RunPredictions(run_dir, df, classes, df.label.map(index).to_numpy(np.int64),
                          df.pred.map(index).to_numpy(np.int64), prob, groups)


# softmax outputs written with full float precision (as `medgap finetune` writes them) sum to 1 within 1e-6;
# 1e-3 accepts probabilities rounded to 4 decimals and refuses most numbers cut short by a truncated file
PROBABILITY_SUM_TOLERANCE = 1e-3


def _probabilities(df: pd.DataFrame, prob_cols: list[str], pred_file: Path, rerun: str) -> np.ndarray:
    """The prob_<class> columns as floats: every value a number in [0, 1], every row summing to 1 (a row cut short
    by a truncated file fails here too)."""
    values = df[prob_cols].apply(pd.to_numeric, errors="coerce")
    raw = df[prob_cols].astype(str)
    bad = values.isna() & df[prob_cols].notna()
    if bad.to_numpy().any():
        i, j = np.argwhere(bad.to_numpy())[0]
        raise UsageError(f"{pred_file}: {int(bad.to_numpy().sum())} value(s) in prob_ columns are not numbers, e.g. "
                         f"{raw.iat[i, j]!r} in {prob_cols[j]} for item {df.item_id[i]!r}; {rerun}")
    prob = values.to_numpy(np.float64)
    if not np.isfinite(prob).all():
        rows = np.flatnonzero(~np.isfinite(prob).all(axis=1))
        raise UsageError(f"{pred_file}: {rows.size} row(s) with a missing probability, e.g. item "
                         f"{df.item_id[rows[0]]!r}; {rerun}")
    outside = (prob < 0) | (prob > 1)
    if outside.any():
        i, j = np.argwhere(outside)[0]
        raise UsageError(f"{pred_file}: probability {prob[i, j]!r} outside [0, 1] in {prob_cols[j]} for item "
                         f"{df.item_id[i]!r}; predictions.csv must hold softmax probabilities; {rerun}")
    off = np.abs(prob.sum(axis=1) - 1) > PROBABILITY_SUM_TOLERANCE
    if off.any():
        i = int(np.flatnonzero(off)[0])
        raise UsageError(f"{pred_file}: the probabilities of {int(off.sum())} row(s) do not sum to 1, e.g. item "
                         f"{df.item_id[i]!r} ({prob[i].sum():.4g}); the file is damaged or cut short, or the prob_ "
                         f"columns are not one per class; {rerun}")
    return prob


def _check_against_split(df: pd.DataFrame, run_dir: Path, pred_file: Path, rerun: str) -> None:
    """When the run has its split.csv (written by `medgap finetune`), the held-out items of predictions.csv must
    be exactly its test items: a file cut at a line boundary parses cleanly and only this finds it."""
    split_file = run_dir / "split.csv"
    if not split_file.exists():
        return
    try:
        split = pd.read_csv(split_file, dtype={"item_id": str}, usecols=lambda c: c in ("item_id", "role"))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as e:
        raise UsageError(f"{split_file}: damaged or not a CSV table ({type(e).__name__}); {rerun}") from None
    if not {"item_id", "role"} <= set(split.columns):
        raise UsageError(f"{split_file}: no item_id and role columns; it is not a `medgap finetune` split; {rerun}")
    expected = set(split.item_id[split.role == "test"].dropna())
    have = set(df.item_id.dropna())
    missing, extra = sorted(expected - have), sorted(have - expected)
    if missing:
        raise UsageError(f"{pred_file}: {len(have)} held-out items, but {split_file} holds out {len(expected)} "
                         f"({len(missing)} missing, e.g. {missing[0]!r}); the file is cut short or from another "
                         f"run; {rerun}")
    if extra:
        raise UsageError(f"{pred_file}: {len(extra)} item(s) that {split_file} never held out, e.g. {extra[0]!r}; "
                         f"predictions.csv and split.csv come from different runs; {rerun}")


AGGREGATE_LEVELS = ("item", "file", "patient")


def aggregate(run: RunPredictions, by: str) -> RunPredictions:
    """One decision per file (``by="file"``: a video's frames, a multi-frame DICOM) or per patient
    (``by="patient"``, group_id): the mean of its items' class probabilities, predicted class = their argmax
    (soft voting). Items of one unit must share their label. The bootstrap still resamples patients."""
    if by == "item":
        return run
    column = {"file": "path", "patient": "group_id"}[by]
    pred_file = run.run_dir / "predictions.csv"
    if column not in run.table.columns:
        raise UsageError(f"{pred_file}: no column {column!r} to aggregate by {by}")
    keys = run.table[column].astype(str).to_numpy() if by == "file" else run.groups
    codes, units = pd.factorize(pd.Series(keys))
    n_labels = pd.Series(run.y_true).groupby(codes).nunique()
    if (n_labels > 1).any():
        bad = units[int(n_labels.index[n_labels.to_numpy() > 1][0])]
        raise UsageError(f"{pred_file}: {by} {bad!r} has items of several classes; --aggregate {by} needs one class "
                         f"per {by}" + (" (try --aggregate file: one decision per image or video)"
                                        if by == "patient" else ""))
    counts = np.bincount(codes)
    prob = np.zeros((units.size, run.prob.shape[1]))
    np.add.at(prob, codes, run.prob)
    prob /= counts[:, None]
    first = np.unique(codes, return_index=True)[1]  # each unit's first item: its label, patient and fold
    y, groups = run.y_true[first], run.groups[first]
    pred = prob.argmax(1)
    table = pd.DataFrame({"item_id": units.astype(str), "group_id": groups, "label": [run.classes[i] for i in y],
                          "pred": [run.classes[i] for i in pred], "items": counts})
    if "fold" in run.table.columns:
        table["fold"] = run.table.fold.to_numpy()[first]
    return RunPredictions(run.run_dir, table, run.classes, y, pred, prob, groups)


def read_reader(path: Path, run: RunPredictions) -> pd.DataFrame:
    """A reader's reads (item_id, pred) joined to the run's items: columns item_id, label, pred (model),
    pred_reader. Reader rows for items the run does not have are dropped (counted in the notes)."""
    if not path.exists():
        raise UsageError(f"{path}: no such reader file; give a CSV with columns item_id and pred (the reader's "
                         f"class for each item)")
    reads = pd.read_csv(path, dtype=str)
    missing = [c for c in ("item_id", "pred") if c not in reads.columns]
    if missing:
        raise UsageError(f"{path}: no column {', '.join(missing)}; a reader CSV needs item_id and pred "
                         f"(it has {', '.join(reads.columns)})")
    unknown = sorted(set(reads.pred.dropna()) - set(run.classes))
    if unknown or reads.pred.isna().any():
        what = f"unknown classes {unknown}" if unknown else "empty values"
        raise UsageError(f"{path}: column 'pred' has {what}; the run's classes are {run.classes}")
    if reads.item_id.duplicated().any():
        raise UsageError(f"{path}: item {reads.item_id[reads.item_id.duplicated()].iloc[0]!r} is read more than "
                         f"once; give one read per item (one reader per file)")
    cols = ["item_id", "pred"] + (["label"] if "label" in reads.columns else [])
    both = run.table[["item_id", "label", "pred"]].merge(reads[cols], on="item_id", suffixes=("", "_reader"))
    if both.empty:
        raise UsageError(f"{path}: no item_id in common with {run.run_dir / 'predictions.csv'} (split "
                         f"{run.table.get('split', pd.Series(['?'])).iloc[0]!r}); the reader must read the same "
                         f"items, named as in predictions.csv (e.g. {run.table.item_id.iloc[0]!r})")
    if "label_reader" in both.columns:
        differ = both.label_reader.notna() & (both.label_reader != both.label)
        if differ.any():
            raise UsageError(f"{path}: the label of {int(differ.sum())} item(s) differs from predictions.csv, e.g. "
                             f"{both.item_id[differ].iloc[0]!r}; drop the label column or fix it")
    return both[["item_id", "label", "pred", "pred_reader"]]


@dataclass
class Evaluation:
    """What ``medgap evaluate`` computed (also written to evaluation.json)."""

    run: RunPredictions
    metrics: pd.DataFrame
    confusion: np.ndarray
    per_fold: pd.DataFrame
    tests: list[tuple[str, ComparisonResult]] = field(default_factory=list)
    differences: pd.DataFrame | None = None
    against: RunPredictions | None = None
    notes: list[str] = field(default_factory=list)
    outputs: list[Path] = field(default_factory=list)


def _json_value(v: object) -> object:
    if isinstance(v, dict):
        return {str(k): _json_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_value(x) for x in v]
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None  # strict JSON has no NaN
    return v


@dataclass
class EvaluateConfig:
    run_dir: Path
    """Run directory of `medgap finetune` (predictions.csv, classes.json)."""
    against: Path | None = None
    """Another run on the same items: McNemar, DeLong per class, and patient-bootstrap CIs of the differences."""
    reader: Path | None = None
    """Reader CSV (item_id, pred): chi-square/Fisher and McNemar of the model against the reader."""
    reader_correct: int | None = None
    """Reader's number of correct reads (with reader_total): chi-square/Fisher against the model."""
    reader_total: int | None = None
    """Reader's number of reads."""
    split: str = "test"
    """Rows of predictions.csv to evaluate (column split)."""
    bootstrap: int = 2000
    """Bootstrap resamples of patients for the CIs."""
    seed: int = 0
    """Seed of the bootstrap."""
    confidence: float = 0.95
    """Confidence level of the intervals."""
    aggregate: str = "item"
    """item, file (one decision per image or video: mean probabilities of its frames) or patient."""

    @property
    def suffix(self) -> str:
        """Outputs of an aggregated evaluation sit beside the per-item ones: evaluation_file.json, ..."""
        return "" if self.aggregate == "item" else f"_{self.aggregate}"

    def check(self) -> None:
        if self.reader is not None and (self.reader_correct is not None or self.reader_total is not None):
            raise UsageError("give the reader either as --reader CSV or as --reader-correct K --reader-total N, "
                             "not both")
        if (self.reader_correct is None) != (self.reader_total is None):
            raise UsageError("--reader-correct and --reader-total go together, e.g. --reader-correct 71 "
                             "--reader-total 100")
        if self.reader_total is not None and not (self.reader_total > 0
                                                  and 0 <= self.reader_correct <= self.reader_total):
            raise UsageError(f"--reader-correct must be between 0 and --reader-total (> 0), got "
                             f"{self.reader_correct} of {self.reader_total}")
        if self.bootstrap < 100:
            raise UsageError(f"--bootstrap {self.bootstrap}: too few resamples for stable 2.5%/97.5% percentiles; "
                             f"use the default 2000 (100 is the least accepted)")
        if not 0.5 <= self.confidence < 1:
            raise UsageError(f"--confidence must be in [0.5, 1), e.g. 0.95; got {self.confidence}")
        if self.aggregate not in AGGREGATE_LEVELS:
            raise UsageError(f"--aggregate {self.aggregate!r}: choose one of {', '.join(AGGREGATE_LEVELS)}")
        if self.against is not None and Path(self.against).resolve() == Path(self.run_dir).resolve():
            raise UsageError("--against names RUN_DIR itself; give the other run's directory")

    def run(self) -> Evaluation:
        self.check()
        run = self._read(self.run_dir)
        k = len(run.classes)
        metrics = classification_metrics_ci(run.y_true, run.y_pred, run.classes, run.groups, run.prob,
                                            self.bootstrap, self.seed, self.confidence)
        ev = Evaluation(run, metrics, confusion_matrix(run.y_true, run.y_pred, k), _per_fold(run))
        ev.notes += _data_notes(run, metrics, self.bootstrap)
        if self.against is not None:
            self._against(ev)
        if self.reader is not None:
            self._reader_file(ev)
        elif self.reader_correct is not None:
            correct = int((run.y_true == run.y_pred).sum())
            ev.tests.append(("model vs reader", accuracy_vs_reader_test(correct, run.y_true.size, self.reader_correct,
                                                                        self.reader_total)))
            ev.notes.append("reader given as counts: the chi-square/Fisher test takes the model's and the "
                            "reader's reads as independent samples")
        ev.outputs = self._write(ev)
        return ev

    def _against(self, ev: Evaluation) -> None:
        a, b = ev.run, self._read(Path(self.against))
        ev.against = b
        if set(a.classes) != set(b.classes):
            raise UsageError(f"{b.run_dir / 'classes.json'}: classes {b.classes} differ from {a.classes} of "
                             f"{a.run_dir}; compare runs trained on the same classes")
        ia = pd.Index(a.table.item_id)
        ib = pd.Index(b.table.item_id)
        shared = ia.intersection(ib, sort=False)
        if shared.empty:
            raise UsageError(f"{a.run_dir / 'predictions.csv'} and {b.run_dir / 'predictions.csv'} share no item_id "
                             f"in split {self.split!r} (e.g. {ia[0]!r} vs {ib[0]!r}); compare runs on the same "
                             f"data (same --data and --filter in `medgap finetune`)")
        pa, pb = ia.get_indexer(shared), ib.get_indexer(shared)
        order_b = [b.classes.index(c) for c in a.classes]  # b's class index of each of a's classes
        to_a = np.argsort(order_b)  # b's class index -> a's
        yb = to_a[b.y_true[pb]]
        if not np.array_equal(a.y_true[pa], yb):
            bad = shared[a.y_true[pa] != yb]
            raise UsageError(f"{b.run_dir / 'predictions.csv'}: {bad.size} shared item(s) have another label than in "
                             f"{a.run_dir / 'predictions.csv'}, e.g. {bad[0]!r}; the runs disagree on the ground "
                             f"truth")
        pred_b = to_a[b.y_pred[pb]]
        prob_b = b.prob[pb][:, order_b]
        y, pred_a, prob_a, groups = a.y_true[pa], a.y_pred[pa], a.prob[pa], a.groups[pa]
        if shared.size < max(ia.size, ib.size):
            ev.notes.append(f"--against: {shared.size} shared items ({ia.size - shared.size} only in {a.run_dir}, "
                            f"{ib.size - shared.size} only in {b.run_dir}); the comparison uses the shared items")
        ev.tests.append((f"vs {b.run_dir.name}", mcnemar_test(y == pred_a, y == pred_b)))
        for j, c in enumerate(a.classes):
            pos = y == j
            if min(pos.sum(), (~pos).sum()) < 2:
                ev.notes.append(f"DeLong for {c!r} skipped: needs 2 positive and 2 negative shared items")
                continue
            ev.tests.append((f"AUC {c} vs {b.run_dir.name}", delong_test(pos, prob_a[:, j], prob_b[:, j],
                                                                         self.confidence)))
        ev.differences = paired_metric_differences(y, pred_a, pred_b, a.classes, groups, prob_a, prob_b,
                                                   self.bootstrap, self.seed, self.confidence)

    def _read(self, run_dir: Path) -> RunPredictions:
        run = read_run(run_dir, self.split)
        return aggregate(run, self.aggregate)

    def _reader_file(self, ev: Evaluation) -> None:
        run = ev.run
        both = read_reader(Path(self.reader), run)
        model_ok, reader_ok = (both.pred == both.label).to_numpy(), (both.pred_reader == both.label).to_numpy()
        n = len(both)
        if n < len(run.table):
            ev.notes.append(f"--reader: {n} of {len(run.table)} items read; the model is compared on those")
        ev.tests.append(("model vs reader", accuracy_vs_reader_test(int(model_ok.sum()), n, int(reader_ok.sum()), n)))
        ev.tests.append(("model vs reader, paired", mcnemar_test(model_ok, reader_ok)))
        ev.notes.append("reader and model read the same items: McNemar's paired test is the appropriate one; the "
                        "chi-square/Fisher test is reported for comparison with studies that use it")

    def _write(self, ev: Evaluation) -> list[Path]:
        run_dir, run = Path(self.run_dir), ev.run
        sfx = self.suffix
        metrics_csv = run_dir / f"evaluation{sfx}_metrics.csv"
        ev.metrics.to_csv(metrics_csv, index=False)
        outputs = [metrics_csv]
        differences_csv = run_dir / f"evaluation{sfx}_differences.csv"
        if ev.differences is not None:
            ev.differences.to_csv(differences_csv, index=False)
            outputs.append(differences_csv)
        else:
            differences_csv.unlink(missing_ok=True)  # from an earlier --against; it would no longer match
        outputs.append(plot_confusion_matrix(ev.confusion, run.classes, run_dir / f"confusion_matrix{sfx}.png",
                                             f"{run_dir.name}: confusion matrix ({len(run.table)} {self.aggregate}s)"))
        curves = {}
        auc = ev.metrics.set_index(["class", "metric"]).value
        for j, c in enumerate(run.classes):
            pos = run.y_true == j
            if 0 < pos.sum() < pos.size:
                fpr, tpr, _ = roc_curve(pos, run.prob[:, j])
                curves[c] = (fpr, tpr, float(auc[(c, "auc")]))
        if curves:
            outputs.append(plot_roc_curves(curves, run_dir / f"roc_curves{sfx}.png", f"{run_dir.name}: ROC, one class vs "
                                                                                 f"the rest"))
        doc = {
            "config": asdict(self),
            "data": _summary(run),
            "methods": METHODS,
            "metrics": ev.metrics.to_dict("records"),
            "confusion_matrix": {"classes": run.classes, "rows": "true", "columns": "predicted",
                                 "counts": ev.confusion.tolist()},
            "per_fold": ev.per_fold.to_dict("records"),
            "tests": [{"comparison": what, **r.to_dict()} for what, r in ev.tests],
            "against": None if ev.against is None else _summary(ev.against),
        "differences": None if ev.differences is None else ev.differences.to_dict("records"),
            "notes": ev.notes,
        }
        out_json = run_dir / f"evaluation{sfx}.json"
        out_json.write_text(json.dumps(_json_value(doc), indent=1))
        return [out_json, *outputs]


def _summary(run: RunPredictions) -> dict:
    per_patient = pd.Series(run.groups).value_counts()
    folds = sorted(run.table.fold.dropna().unique().tolist()) if "fold" in run.table else []
    return {"run_dir": str(run.run_dir), "items": int(run.y_true.size), "patients": int(per_patient.size),
            "max_items_per_patient": int(per_patient.max()), "folds": folds, "classes": run.classes,
            "class_counts": {c: int((run.y_true == j).sum()) for j, c in enumerate(run.classes)}}


def _per_fold(run: RunPredictions) -> pd.DataFrame:
    if "fold" not in run.table.columns:
        return pd.DataFrame(columns=["fold", "items", "patients", "accuracy"])
    df = pd.DataFrame({"fold": run.table.fold.to_numpy(), "patient": run.groups, "correct": run.y_true == run.y_pred})
    out = df.groupby("fold", sort=True).agg(items=("correct", "size"), patients=("patient", "nunique"),
                                            accuracy=("correct", "mean")).reset_index()
    return out


def _data_notes(run: RunPredictions, metrics: pd.DataFrame, n_boot: int) -> list[str]:
    notes = []
    per_patient = pd.Series(run.groups).value_counts()
    if per_patient.max() > 1:
        notes.append(f"{run.y_true.size} items from {per_patient.size} patients (up to {per_patient.max()} per "
                     f"patient): items of a patient are not independent, so report the patient-bootstrap CIs; the "
                     f"Wilson CIs and the McNemar/DeLong/chi-square P values treat items as independent and are "
                     f"too optimistic")
    if "fold" in run.table.columns:
        folds_per_patient = pd.DataFrame({"g": run.groups, "f": run.table.fold.to_numpy()}).groupby("g").f.nunique()
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


# --------------------------------------------------------------------------------------------------------
# printing


def _num(x: float) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.3f}"


def _ci(low: float, high: float) -> str:
    return "" if not (math.isfinite(low) and math.isfinite(high)) else f"{low:.3f} to {high:.3f}"


def print_evaluation(ev: Evaluation, confidence: float) -> None:
    run, s = ev.run, _summary(ev.run)
    level = f"{100 * confidence:g}%"
    folds = f", pooled held-out predictions of {len(s['folds'])} folds" if len(s["folds"]) > 1 else ""
    t = Table(title=f"{plain(run.run_dir)}: {s['items']} items, {s['patients']} patients{folds}")
    t.add_column("class")
    t.add_column("metric", no_wrap=True)
    t.add_column("value", justify="right")
    t.add_column(f"{level} CI (patients)", justify="right")
    t.add_column(f"{level} CI (Wilson)", justify="right")
    t.add_column("n", justify="right")
    previous = None
    for r in ev.metrics.itertuples(index=False):  # r[0] is the class ("class" is not a namedtuple field)
        first = r[0] != previous
        if first and previous is not None:
            t.add_section()
        previous = r[0]
        n = f"{r.successes:.0f}/{r.total:.0f}" if math.isfinite(r.successes) else ""
        t.add_row(plain(r[0]) if first else "", r.metric, _num(r.value), _ci(r.ci_low, r.ci_high),
                  _ci(r.wilson_low, r.wilson_high), n)
    out_console.print(t)

    cm = Table(title="confusion matrix (rows true, columns predicted)")
    cm.add_column("true \\ predicted")
    for c in run.classes:
        cm.add_column(plain(c), justify="right")
    for c, row in zip(run.classes, ev.confusion):
        cm.add_row(plain(c), *map(str, row))
    out_console.print(cm)

    if len(ev.per_fold) > 1:
        out_console.print("accuracy per fold: " + ", ".join(
            f"{r.fold}: {r.accuracy:.3f} ({r.items} items, {r.patients} patients)" for r in ev.per_fold.itertuples()))
    for what, r in ev.tests:
        stat = f"{r.statistic_name} = {r.statistic:.3f}" if math.isfinite(r.statistic) else "n/a"
        out_console.print(f"[bold]{plain(what)}[/], {r.test}: {stat}, {format_p(r.p, floor=1e-3)}; {_test_detail(r)}",
                          soft_wrap=True)
    if ev.differences is not None:
        d = ev.differences
        dt = Table(title=f"RUN_DIR minus --against on the shared items, {level} CI (patients)")
        names = (plain(run.run_dir.name), plain(ev.against.run_dir.name) if ev.against else "against")
        for col in ("class", "metric", *names, "difference", "CI"):
            dt.add_column(col, justify="left" if col in ("class", "metric") else "right",
                          no_wrap=col == "metric")
        keep = (d["class"] == "overall") | d.metric.isin(["sensitivity", "specificity", "auc"])
        for r in d[keep].itertuples(index=False):
            dt.add_row(plain(r[0]), r.metric, _num(r.value_a), _num(r.value_b), _num(r.difference),
                       _ci(r.ci_low, r.ci_high))
        out_console.print(dt)
    for note in ev.notes:
        console.print(f"[yellow]note:[/] {plain(note)}", soft_wrap=True)


def _test_detail(r: ComparisonResult) -> str:
    d = r.detail
    if r.test.startswith("McNemar"):
        return (f"accuracy {d['accuracy_a']:.3f} vs {d['accuracy_b']:.3f} on {d['n']} items; only the first right "
                f"{d['only_a_correct']}, only the second {d['only_b_correct']}")
    if r.test == "DeLong":
        return (f"AUC {d['auc_a']:.3f} vs {d['auc_b']:.3f}, difference {d['difference']:.3f} "
                f"({d['ci_low']:.3f} to {d['ci_high']:.3f})")
    (mc, mw), (rc, rw) = d["table"]
    return (f"accuracy {d['accuracy_model']:.3f} ({mc}/{mc + mw}) vs reader {d['accuracy_reader']:.3f} "
            f"({rc}/{rc + rw})")


@app.command(
    "evaluate",
    epilog=(
        "Examples:\n\n"
        "  medgap evaluate runs/lite0                                   # metrics with 95% CIs, plots\n\n"
        "  medgap evaluate runs/lite0 --against runs/scratch            # McNemar, DeLong, differences\n\n"
        "  medgap evaluate runs/lite0 --reader-correct 71 --reader-total 100   # chi-square or Fisher\n\n"
        "  medgap evaluate runs/lite0 --reader reads.csv                # reader CSV: item_id,pred\n\n"
        "CIs resample patients (group_id): all frames of a patient enter or leave a resample together. Writes "
        "evaluation.json, "
        "evaluation_metrics.csv, confusion_matrix.png and roc_curves.png into RUN_DIR."
    ),
)
def evaluate_command(
    run_dir: Path = typer.Argument(..., help="Run directory of `medgap finetune` (holds predictions.csv)."),
    against: Path = typer.Option(None, help="Another run on the same items: McNemar, DeLong per class, "
                                            "differences with patient-bootstrap CIs."),
    reader: Path = typer.Option(None, help="Reader CSV with columns item_id, pred (class names): chi-square/"
                                           "Fisher and McNemar against the model on the items read."),
    reader_correct: int = typer.Option(None, help="Reader's correct reads K (with --reader-total)."),
    reader_total: int = typer.Option(None, help="Reader's total reads N: chi-square (Fisher if an expected "
                                                "count < 5) of model vs reader accuracy."),
    split: str = typer.Option("test", help="Rows of predictions.csv to evaluate (its split column)."),
    bootstrap: int = typer.Option(2000, help="Bootstrap resamples of patients for the CIs."),
    seed: int = typer.Option(0, help="Bootstrap seed (same seed, same CIs)."),
    confidence: float = typer.Option(0.95, help="Confidence level of the intervals."),
    aggregate_: str = typer.Option("item", "--aggregate", help="item, file (one decision per image or video: the "
                                   "mean of its frames' probabilities) or patient. The CIs resample patients "
                                   "either way; outputs get a _file/_patient suffix."),
) -> None:
    """Clinical evaluation of held-out predictions: accuracy and per-class sensitivity, specificity, PPV, NPV,
    F1, Youden's index and ROC AUC with patient-bootstrap and Wilson CIs, the confusion matrix and ROC
    plots; optional tests against another run or a reader."""
    cfg = EvaluateConfig(run_dir, against, reader, reader_correct, reader_total, split, bootstrap, seed, confidence,
                         aggregate_)
    try:
        ev = cfg.run()
    except (UsageError, ValueError) as e:
        print_error(e)
        raise typer.Exit(EXIT_USAGE) from None
    except OSError as e:
        print_error(f"{e}; RUN_DIR must be writable (the results are written there)")
        raise typer.Exit(EXIT_USAGE) from None
    print_evaluation(ev, confidence)
    console.print("written: " + ", ".join(plain(p) for p in ev.outputs), soft_wrap=True)
    raise typer.Exit(EXIT_OK)
