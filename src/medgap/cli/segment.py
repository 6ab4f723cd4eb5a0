"""``medgap segment train`` and ``medgap segment predict``: a U-Net on image/mask pairs, and the masks it
predicts (the work is :mod:`medgap.segment`)."""

from __future__ import annotations

import typer

from medgap.cli import app
from medgap.cli._common import EXIT_FAILURES, EXIT_OK, console, out_console, plain
from medgap.cli._config import config_command
from medgap.segment.config import SegmentPredictConfig, SegmentTrainConfig

segment_app = typer.Typer(help="Segment first: train a U-Net on image/mask pairs, predict masks (PNG, NIfTI, "
                               "DICOM-SEG).", no_args_is_help=True, add_completion=False)


def _log(s: str) -> None:
    console.print(plain(s, newlines=True), soft_wrap=True)


def _train(cfg: SegmentTrainConfig) -> int:
    from medgap.segment.train import train_segmentation

    summary = train_segmentation(cfg, log=_log)
    out_console.print(plain(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"), newlines=True),
                      soft_wrap=True)
    _log(f"Held-out images, mean with 95% patient-bootstrap CI (HD95 in pixels of the original images). Run: "
         f"{cfg.out} (metrics.csv, per_image.csv, split.csv, fold_<k>/model.pt); next: medgap segment predict "
         f"{cfg.out} --images FILES --out DIR")
    return EXIT_OK


def _predict(cfg: SegmentPredictConfig) -> int:
    from medgap.segment.predict import predict_masks

    table = predict_masks(cfg.run, cfg.images, cfg.out, threshold=cfg.threshold, overlays=cfg.overlays,
                          device=cfg.device, keep_largest=cfg.keep_largest, log=_log)
    failed = int(table["error"].notna().sum()) if "error" in table.columns else 0
    _log(f"{len(table) - failed} mask(s) written to {cfg.out} (masks.csv lists them)"
         + (f"; {failed} file(s) could not be read" if failed else ""))
    return EXIT_FAILURES if failed else EXIT_OK


config_command(
    segment_app, SegmentTrainConfig, _train, name="train", group="segment",
    help="Train a U-Net (segmentation-models-pytorch; Dice + BCE; image and mask augmented together) with "
         "patient-grouped folds; Dice, IoU and HD95 of every held-out image with patient-bootstrap CIs.",
    epilog=("Examples:\n\n"
            "  medgap segment train --pairs ../shared/data/masks/lungs/pairs.csv --encoder efficientnet_lite0 "
            "--out runs/lungs\n\n"
            "  medgap segment train --pairs pairs.csv --encoder resnet34 --folds 5 --image-size 256 --out runs/r34\n\n"
            "All-zero masks mean not annotated and are left out. Rerunning the same command resumes the run. "
            "See docs/segmentation.md."))
config_command(
    segment_app, SegmentPredictConfig, _predict, name="predict", group="segment",
    help="Predict masks with a segment-train run: PNG (0/255, the image's size) named after each image, DICOM-SEG "
         "for DICOM input, NIfTI for NIfTI volumes, overlays/ as PNG.",
    epilog=("Example:\n\n  medgap segment predict runs/lungs --images ../shared/data/cxr --out masks/cxr"))
app.add_typer(segment_app, name="segment")
