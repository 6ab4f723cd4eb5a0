"""``medgap finetune`` and ``medgap evaluate``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import typer
from rich.table import Table

from medgap.cli import app
from medgap.cli._common import EXIT_OK, EXIT_USAGE, console, out_console


@app.command(
    "finetune",
    epilog=(
        "Examples:\n\n"
        "  medgap finetune --data lus/ --out runs/lite0             # lus/<class>/<images or videos>\n\n"
        "  medgap finetune --data MANIFEST.csv --filter modality=pocus,pocus_video --init scratch --out runs/scratch\n\n"
        "  medgap finetune --data lus/ --strategy features --classifier svm --out runs/features\n\n"
        "Then: medgap evaluate RUN_DIR. Rerunning the same command resumes unfinished folds from last.ckpt."
    ),
)
def finetune_command(
    data: Path = typer.Option(..., help="Folder tree root/<class>/... or a CSV manifest (path, label, group)."),
    out: Path = typer.Option(..., "--out", "-o", help="Run directory."),
    backbone: str = typer.Option("efficientnet_lite0", help="Any timm model name."),
    init: str = typer.Option("imagenet", help="scratch, imagenet, or a checkpoint file."),
    strategy: str = typer.Option("full", help="linear, partial, full or features."),
    trainable_stages: int = typer.Option(2, help="partial: how many last stages train."),
    folds: int = typer.Option(5, help="Cross-validation folds, grouped by patient."),
    image_size: int = typer.Option(128, help="Square input size in pixels."),
    epochs: int = typer.Option(10, help="Maximum epochs (early stopping on the inner validation split)."),
    batch_size: int = typer.Option(32),
    lr: float = typer.Option(1e-3, help="AdamW learning rate."),
    video_stride: int = typer.Option(10, help="Use every Nth video frame."),
    seed: int = typer.Option(0),
    classifier: str = typer.Option("logreg", help="features strategy: logreg or svm."),
    label_column: str = typer.Option("label"),
    group_column: str = typer.Option("group_id", help="Manifest column with the patient id."),
    filter: str = typer.Option(None, help="Manifest rows to use, COLUMN=V1,V2 (e.g. modality=pocus,pocus_video)."),
    devices: str = typer.Option("1", help="Devices per node (GPUs); 'auto' for all."),
    num_nodes: int = typer.Option(1, help="Nodes for multi-node DDP."),
    ddp: bool = typer.Option(False, help="Distributed data parallel across devices/nodes (Lightning)."),
) -> None:
    """Fine-tune a pretrained backbone with k-fold cross-validation grouped by patient; writes checkpoints,
    the split, per-fold metrics and held-out predictions to the run directory."""
    from medgap.io import CollectionError
    from medgap.models import PretrainedUnavailable
    from medgap.train import FinetuneConfig, run_finetune

    fcol, fvals = None, []
    if filter:
        fcol, _, rest = filter.partition("=")
        fvals = [v for v in rest.split(",") if v]
    cfg = FinetuneConfig(data=data, out=out, backbone=backbone, init=init, strategy=strategy,
                         trainable_stages=trainable_stages, folds=folds, image_size=image_size, epochs=epochs,
                         batch_size=batch_size, lr=lr, video_stride=video_stride, seed=seed, classifier=classifier,
                         label_column=label_column, group_column=group_column, filter_column=fcol,
                         filter_values=fvals, devices=int(devices) if devices.isdigit() else devices,
                         num_nodes=num_nodes, ddp=ddp)
    try:
        preds = run_finetune(cfg, log=lambda s: console.print(s, soft_wrap=True))
    except (CollectionError, PretrainedUnavailable, ValueError, FileNotFoundError) as e:
        console.print(f"[red]error:[/] {e}")
        raise typer.Exit(EXIT_USAGE) from None
    console.print(f"held-out accuracy {np.mean(preds.label == preds.pred):.3f} over {len(preds)} items; "
                  f"run: {out}  (next: medgap evaluate {out})", soft_wrap=True)
    raise typer.Exit(EXIT_OK)


def _load_run(run: Path) -> tuple[pd.DataFrame, list[str]]:
    pred_file, classes_file = run / "predictions.csv", run / "classes.json"
    if not pred_file.exists() or not classes_file.exists():
        raise FileNotFoundError(f"{run}: no predictions.csv/classes.json; run `medgap finetune --out {run}` first")
    return pd.read_csv(pred_file), json.loads(classes_file.read_text())


def _plots(run: Path, y: np.ndarray, prob: np.ndarray, classes: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay, RocCurveDisplay

    fig, ax = plt.subplots(figsize=(4.5, 4))
    ConfusionMatrixDisplay.from_predictions(y, prob.argmax(1), display_labels=classes, ax=ax, colorbar=False)
    fig.savefig(run / "confusion_matrix.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    for c, name in enumerate(classes):
        if 0 < (y == c).sum() < len(y):
            RocCurveDisplay.from_predictions(y == c, prob[:, c], name=name, ax=ax)
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    fig.savefig(run / "roc.png", dpi=110, bbox_inches="tight")
    plt.close(fig)


@app.command("evaluate")
def evaluate_command(
    run: Path = typer.Argument(..., help="Run directory of `medgap finetune`."),
    against: Path = typer.Option(None, help="Another run on the same items: McNemar and DeLong tests."),
    reader_correct: int = typer.Option(None, help="Reader: number of correct reads."),
    reader_total: int = typer.Option(None, help="Reader: number of reads."),
    reader: Path = typer.Option(None, help="Reader predictions CSV (item_id, pred)."),
    bootstrap: int = typer.Option(2000, help="Bootstrap resamples (patients) for the CIs."),
    seed: int = typer.Option(0),
) -> None:
    """Accuracy, per-class sensitivity, specificity, PPV, NPV, F1, Youden's index and AUC with 95% CIs from a
    patient-grouped bootstrap of the held-out predictions; optional tests against another run or a reader."""
    from medgap.stats import accuracy_vs_reader, bootstrap_ci, delong_test, mcnemar_test

    try:
        preds, classes = _load_run(run)
        y = preds.label.map({c: i for i, c in enumerate(classes)}).to_numpy()
        prob = preds[[f"prob_{c}" for c in classes]].to_numpy()
        table = bootstrap_ci(y, prob, classes, preds.group_id.astype(str).to_numpy(), n_boot=bootstrap, seed=seed)
        tests = []
        if against is not None:
            other, other_classes = _load_run(against)
            if other_classes != classes:
                raise ValueError(f"{against}: classes {other_classes} differ from {classes}")
            both = preds.merge(other, on="item_id", suffixes=("", "_b"))
            if both.empty:
                raise ValueError(f"{run} and {against} share no item; compare runs on the same data")
            tests.append(mcnemar_test(both.label == both.pred, both.label_b == both.pred_b))
            for c in classes:
                pos = (both.label == c).to_numpy()
                if 2 <= pos.sum() <= len(pos) - 2:
                    r = delong_test(pos, both[f"prob_{c}"], both[f"prob_{c}_b"])
                    tests.append(r.__class__(f"DeLong AUC {c}", r.statistic, r.p, r.detail))
        if reader is not None:
            rd = pd.read_csv(reader).merge(preds, on="item_id", suffixes=("_reader", ""))
            if rd.empty:
                raise ValueError(f"{reader}: no item_id in common with {run}/predictions.csv")
            reader_correct, reader_total = int((rd.pred_reader == rd.label).sum()), len(rd)
        if reader_correct is not None and reader_total:
            tests.append(accuracy_vs_reader(int((preds.label == preds.pred).sum()), len(preds), reader_correct,
                                            reader_total))
    except (FileNotFoundError, ValueError, KeyError) as e:
        console.print(f"[red]error:[/] {e}")
        raise typer.Exit(EXIT_USAGE) from None
    t = Table(title=f"{run}: held-out predictions of {preds.fold.nunique()} folds, {len(preds)} items, "
                    f"{preds.group_id.nunique()} patients")
    for col in ("class", "metric", "value", "95% CI"):
        t.add_column(col, justify="left" if col in ("class", "metric") else "right")
    for r in table.itertuples():
        t.add_row(r._1, r.metric, f"{r.value:.3f}", f"{r.ci_low:.3f} to {r.ci_high:.3f}")
    out_console.print(t)
    per_fold = preds.groupby("fold").apply(lambda d: float((d.label == d.pred).mean()), include_groups=False)
    out_console.print("accuracy per fold: " + ", ".join(f"{k}: {v:.3f}" for k, v in per_fold.items()))
    for r in tests:
        out_console.print(f"{r.name}: statistic {r.statistic:.3f}, P = {r.p:.4g}")
    _plots(run, y, prob, classes)
    table.to_csv(run / "evaluation_metrics.csv", index=False)
    (run / "evaluation.json").write_text(json.dumps({"metrics": table.to_dict("records"),
                                                     "accuracy_per_fold": per_fold.to_dict(),
                                                     "tests": [r.to_dict() for r in tests]}, indent=1, default=str))
    console.print(f"written: {run}/evaluation.json, evaluation_metrics.csv, confusion_matrix.png, roc.png",
                  soft_wrap=True)
    raise typer.Exit(EXIT_OK)
