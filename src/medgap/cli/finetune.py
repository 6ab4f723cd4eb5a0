"""``medgap finetune`` (``medgap evaluate`` lives in cli/evaluate.py)."""

from __future__ import annotations

from pathlib import Path

from medgap.cli import app
from medgap.cli._config import config_command
from medgap.cli._common import EXIT_OK, EXIT_USAGE, console, missing_train_extra, plain, print_error
from medgap.train.config import FinetuneConfig


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


def _run(cfg) -> int:
    from medgap.io import CollectionError

    try:
        from medgap.models import PretrainedUnavailable
        from medgap.train import run_finetune
    except ImportError as e:
        error = missing_train_extra(e, "finetune")
        if error is None:
            raise
        raise error from None
    try:
        _quiet_lightning()
        # paths and class names printed as they are: "[old].png" stays, control characters show escaped
        from medgap.cli._lightning_progress import EpochProgressBar  # stderr, epochs 1..N of the real total

        run_finetune(cfg, log=lambda s: console.print(plain(s, newlines=True), soft_wrap=True),
                     callbacks=[EpochProgressBar()])
    except (CollectionError, PretrainedUnavailable, ValueError, FileNotFoundError) as e:
        # ValueError covers UsageError, ConfigError (an option), CheckpointError (a checkpoint in the run directory)
        print_error(e)
        return EXIT_USAGE
    return EXIT_OK


def _upgrade(recorded: dict) -> dict:
    from medgap.train.config import upgrade_recorded

    return upgrade_recorded(recorded)


config_command(
    app, FinetuneConfig, _run, name="finetune", upgrade=_upgrade,
    help="Fine-tune a pretrained backbone with k-fold cross-validation grouped by patient; writes checkpoints, "
         "the split, per-fold metrics and held-out predictions to the run directory.",
    epilog=(
        "Examples:\n\n"
        "  medgap finetune --data lus/ --out runs/lite0             # lus/<class>/<images or videos>\n\n"
        "  medgap finetune --data MANIFEST.csv --filter modality=pocus,pocus_video --init scratch -o runs/s\n\n"
        "  medgap finetune --data lus/ --strategy features --classifier svm --out runs/features\n\n"
        "Then: medgap evaluate RUN_DIR [--aggregate file]. Rerunning the same command resumes an interrupted run: "
        "finished folds are kept, the unfinished one continues from its last.ckpt; --config RUN_DIR/config.json reruns a "
        "recorded run with its options. Defaults and their reasons: "
        "docs/training.md."
    ),
)
