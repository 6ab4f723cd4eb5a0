"""Options of ``medgap segment train`` and ``medgap segment predict``, declared once (see
:mod:`medgap._options`); a run directory's ``config.json`` records the training run's. No torch here."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from medgap._options import option

INITS = ("imagenet", "scratch")


@dataclass
class SegmentTrainConfig:
    pairs: Path = option(help="CSV with one row per image: image, mask (paths relative to the CSV or the nearest "
                              "folder above it holding them all) and, optionally, patient.", metavar="CSV")
    out: Path = option(help="Run directory (rerunning with the same options resumes it).", flags=("-o",))
    encoder: str = option("resnet34", "U-Net encoder: an smp encoder (resnet34, ...), tu-<any timm model>, or "
                                      "efficientnet_lite0/1/2 (ImageNet weights offline, from a package).")
    init: str = option("imagenet", "Encoder weights: imagenet (offline for efficientnet_lite0/1/2, else "
                                   "downloaded) or scratch.", choices=INITS)
    image_column: str = option("image", "Pairs column holding the image path.")
    mask_column: str = option("mask", "Pairs column holding the mask path.")
    patient_column: str = option("patient", "Pairs column holding the patient id; without it, the patient is "
                                            "looked up in --manifest (group_id), else each file is a patient.")
    manifest: Path | None = option(None, "A manifest (path, group_id) giving the images' patients; default: a "
                                         "MANIFEST.csv in the folder the image paths are relative to.",
                                   metavar="CSV")
    mask_threshold: int = option(127, "Mask values at or above this are the region: 127 counts an object over the "
                                      "lung (127 in ../shared's lung masks) as lung; 255 keeps lung only. An all-zero "
                                      "mask means not annotated and is left out.")
    folds: int = option(3, "Cross-validation folds grouped by patient (k >= 2); 0: one held-out split (--split).")
    split: float = option(0.25, "Held-out fraction of the patients when --folds is 0.")
    image_size: int = option(128, "Square input size in pixels (a multiple of 32).")
    epochs: int = option(15, "Epochs; the epoch with the best Dice on the inner validation patients is kept.")
    batch_size: int = option(8, "Images per batch.")
    lr: float = option(1e-3, "AdamW learning rate (cosine decay).")
    augment: bool = option(True, "Image and mask moved together (crop, +-10 degrees, flip; nearest-neighbour for "
                                 "the mask), brightness/contrast on the image, while training.")
    seed: int = option(0, "Fold k seeds everything with seed + k.")
    device: str = option("auto", "auto (CUDA when present), cpu, cuda or cuda:N.", resumable=True)
    bootstrap: int = option(2000, "Patient-bootstrap resamples of the metrics' confidence intervals.",
                            resumable=True)


@dataclass
class SegmentPredictConfig:
    run: Path = option(help="A segment-train run directory.", argument=True)
    images: list[Path] = option(help="Image files or folders (PNG/JPEG, DICOM, NIfTI).", flags=("-i",),
                                default_factory=list)
    out: Path = option(Path("masks"), "Output folder: PNG masks named after the image (0/255, same size), "
                                       "DICOM-SEG for DICOM input, NIfTI for volumes, overlays/.", flags=("-o",))
    threshold: float = option(0.5, "Probability at or above which a pixel is in the region.")
    overlays: bool = option(True, "Write overlays/<name>.png (the outline of the mask over the image).")
    keep_largest: int = option(2, "Keep the N largest connected components of each mask (8-connected; removes "
                                  "stray blobs outside the lungs); 0 keeps every component.")
    device: str = option("auto", "auto (CUDA when present), cpu, cuda or cuda:N.")
