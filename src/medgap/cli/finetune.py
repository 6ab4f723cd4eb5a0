"""``medgap finetune`` (``medgap evaluate`` lives in cli/evaluate.py)."""

from __future__ import annotations

from pathlib import Path

import typer

from medgap.cli import app
from medgap.cli._common import EXIT_OK, EXIT_USAGE, UsageError, console, missing_train_extra, plain, print_error


def _quiet_lightning() -> None:
    """Lightning's informational lines (accelerator found, tips, max_epochs reached) and two warnings that are
    expected here (a fold directory already holding logs; an internal deprecation) would bury medgap's own
    output; real warnings still show."""
    import logging
    import warnings

    import lightning.pytorch  # noqa: F401  (its import sets these loggers to INFO: set them after it)

    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    logging.getLogger("lightning.fabric").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")


@app.command(
    "finetune",
    epilog=(
        "Examples:\n\n"
        "  medgap finetune --data lus/ --out runs/lite0             # lus/<class>/<images or videos>\n\n"
        "  medgap finetune --data MANIFEST.csv --filter modality=pocus,pocus_video --init scratch -o runs/s\n\n"
        "  medgap finetune --data lus/ --strategy features --classifier svm --out runs/features\n\n"
        "Then: medgap evaluate RUN_DIR [--aggregate file]. Rerunning the same command resumes an interrupted run: "
        "finished folds are kept, the unfinished one continues from its last.ckpt. Defaults and their reasons: "
        "docs/training.md."
    ),
)
def finetune_command(
    data: Path = typer.Option(..., help="Folder tree root/<class>/... or a CSV manifest (path, label, group)."),
    out: Path = typer.Option(..., "--out", "-o", help="Run directory."),
    backbone: str = typer.Option("efficientnet_lite0", help="Any timm model name."),
    init: str = typer.Option("imagenet", help="scratch, imagenet, hub[:TAG|OWNER/REPO], or a checkpoint file."),
    strategy: str = typer.Option("full", help="linear, partial, full or features."),
    trainable_stages: int = typer.Option(2, help="partial: how many last stages train."),
    folds: int = typer.Option(5, help="Cross-validation folds, grouped by patient."),
    image_size: int = typer.Option(128, help="Square input size in pixels."),
    epochs: int = typer.Option(15, help="Maximum epochs (early stopping on the inner validation split)."),
    patience: int = typer.Option(5, help="Stop after this many epochs without a lower validation loss."),
    batch_size: int = typer.Option(32),
    lr: float = typer.Option(1e-3, help="AdamW learning rate of the new head (warm-up, then cosine decay)."),
    backbone_lr_scale: float = typer.Option(
        0.1, help="Pretrained layers learn at lr x this (ignored for --init scratch, where all layers use lr)."),
    balance: str = typer.Option(
        "class", help="none, patient (every patient/clip counts once, however many frames) or class (patients "
                      "equal, then classes equal): the training sampler and the validation loss."),
    augment: bool = typer.Option(True, help="Random crop, rotation, flip, brightness/contrast while training."),
    label_smoothing: float = typer.Option(0.1, help="Cross-entropy label smoothing."),
    bn_stats: str = typer.Option(
        "auto", help="BatchNorm running statistics while fine-tuning: frozen (pretrained ones kept; scale and "
                     "shift still train), train, or auto (frozen for pretrained weights, train for scratch)."),
    head_init: str = typer.Option(
        "logreg", help="Pretrained backbones: start fine-tuning from a logistic regression fitted on the frozen "
                       "features of the training part (logreg) or from a random head (random)."),
    video_stride: int = typer.Option(10, help="Use every Nth video frame."),
    seed: int = typer.Option(0),
    classifier: str = typer.Option("logreg", help="features strategy: logreg or svm."),
    label_column: str = typer.Option("label"),
    group_column: str = typer.Option("group_id", help="Manifest column with the patient id."),
    each_file_is_a_patient: bool = typer.Option(
        False, "--each-file-is-a-patient",
        help="A manifest without patient ids: every file comes from a different patient (otherwise refused)."),
    filter: str = typer.Option(None, help="Manifest rows to use, COLUMN=V1,V2 (e.g. modality=pocus,pocus_video)."),
    accelerator: str = typer.Option("auto", help="auto (GPU when there is one), gpu or cpu."),
    devices: str = typer.Option("1", help="Devices per node (GPUs, or CPU processes with --ddp); 'auto' for all."),
    num_nodes: int = typer.Option(1, help="Nodes for multi-node DDP."),
    ddp: bool = typer.Option(False, help="Distributed data parallel across devices/nodes (Lightning)."),
) -> None:
    """Fine-tune a pretrained backbone with k-fold cross-validation grouped by patient; writes checkpoints,
    the split, per-fold metrics and held-out predictions to the run directory."""
    from medgap.io import CollectionError

    try:
        from medgap.models import PretrainedUnavailable
        from medgap.train import FinetuneConfig, run_finetune
    except ImportError as e:
        error = missing_train_extra(e, "finetune")
        if error is None:
            raise
        raise error from None

    try:
        cfg = FinetuneConfig(
            data=data, out=out, backbone=backbone, init=init, strategy=strategy, trainable_stages=trainable_stages,
            folds=folds, image_size=image_size, epochs=epochs, batch_size=batch_size, lr=lr,
            backbone_lr_scale=backbone_lr_scale, patience=patience, balance=balance, augment=augment,
            label_smoothing=label_smoothing, head_init=head_init, bn_stats=bn_stats, video_stride=video_stride,
            seed=seed, classifier=classifier, label_column=label_column, group_column=group_column,
            each_file_is_a_patient=each_file_is_a_patient,
            filter=filter, accelerator=accelerator, devices=_parse_devices(devices),
            num_nodes=num_nodes, ddp=ddp)
        _quiet_lightning()
        # paths and class names printed as they are: "[old].png" stays, control characters show escaped
        from medgap.cli._lightning_progress import EpochProgressBar  # stderr, epochs 1..N of the real total

        run_finetune(cfg, log=lambda s: console.print(plain(s, newlines=True), soft_wrap=True),
                     callbacks=[EpochProgressBar()])
    except (CollectionError, PretrainedUnavailable, ValueError, FileNotFoundError) as e:
        # ValueError covers UsageError, ConfigError (an option), CheckpointError (a checkpoint in the run directory)
        print_error(e)
        raise typer.Exit(EXIT_USAGE) from None
    raise typer.Exit(EXIT_OK)


def _parse_filter(spec: str | None) -> tuple[str | None, list[str]]:
    """``--filter COLUMN=V1,V2`` -> (column, values); anything else is a usage error, never ignored."""
    if spec is None:
        return None, []
    column, sep, rest = spec.partition("=")
    values = [v.strip() for v in rest.split(",") if v.strip()]
    if not sep or not column.strip() or not values:
        raise UsageError(f"--filter takes COLUMN=V1,V2 (for example --filter modality=pocus,pocus_video), got "
                         f"{spec!r}")
    return column.strip(), values


def _parse_devices(spec: str) -> int | str:
    if spec == "auto":
        return spec
    if spec.isdigit() and int(spec) >= 1:
        return int(spec)
    raise UsageError(f"--devices takes a number of devices (1 or more) or 'auto', got {spec!r}")
