"""``medgap train-quality``: train a blind quality model on human ratings (the work is
:func:`medgap.train.quality.train_quality`); the run directory then serves as ``--metric cnn-wsp:model=RUN_DIR``."""

from __future__ import annotations

from medgap.cli import app
from medgap.cli._common import EXIT_OK, console, plain
from medgap.cli._config import config_command
from medgap.train.quality import TrainQualityConfig


def _run(cfg: TrainQualityConfig) -> int:
    from medgap.train.quality import train_quality

    results = train_quality(cfg, log=lambda s: console.print(plain(s), soft_wrap=True))
    table = results.to_string(index=False, float_format=lambda v: f"{v:.3f}")
    console.print(plain(table, newlines=True), soft_wrap=True)
    console.print(f"Run: {plain(cfg.out)} (results.csv, predictions.csv, fold_<k>/history.csv, fold_<k>/model.pt); "
                  f"score with: medgap quality --metric cnn-wsp:model={plain(cfg.out)} FOLDER", soft_wrap=True)
    return EXIT_OK


config_command(
    app, TrainQualityConfig, _run, name="train-quality",
    help="Train a blind quality model (CNN with weighted spatial pooling and five opinion bins, Su & Korhonen "
         "2020) on mean opinion scores; held-out SROCC/PLCC/RMSE each epoch; the run scores images as the "
         "cnn-wsp metric.",
    epilog=("Examples:\n\n"
            "  medgap train-quality --ratings clive/mos.csv --out runs/clive            # cpu preset, 20% held out\n\n"
            "  medgap train-quality --ratings mos.csv --out runs/q --pooling avg --folds 5\n\n"
            "  medgap quality --metric cnn-wsp:model=runs/clive images/"),
)
