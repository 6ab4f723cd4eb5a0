"""Cross-fitted masks of a ``segment train`` run: every mask is predicted by a model that never trained on the
image (nor on its patient).

``--roi RUN`` (classification and quality) and :func:`heldout_metrics` use this rule, in order:

1. an image the run segmented in training is predicted by the model of the fold that **held it out**
   (``split.csv``: its row with ``role == test``);
2. an image the run did not train on, whose **patient** did appear in the run (another image of the patient
   was a training pair; the patient comes from the manifest the run read: its ``--manifest``, else the
   ``MANIFEST.csv`` of the nearest folder above the pairs table), is predicted by the model of the fold that
   held that patient out;
3. any other image: the **mean of every fold's probabilities** (as ``medgap segment predict``). None of the
   fold models saw it; the mean gives it the mask ``segment predict`` gives and uses every training image.

So no mask used downstream is an in-sample segmentation. Without this, the images a segmentation run trained
on get in-sample masks (better than any other image's), and when those images are one class (the shared lung
masks cover COVID-19 images only) a classifier can read the class off the mask's quality.

Predicted masks (before post-processing, at the image's size) are saved once under ``RUN/roi_masks/``, named
by a hash of the image's resolved path, size, modification time and frame, the models used and the threshold;
a later classification or quality run (or a resumed one) reads them instead of predicting again. A run
directory that cannot be written to just predicts every time."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from medgap.segment.errors import SegmentError
from medgap.segment.masks import DEFAULT_KEEP_LARGEST, keep_largest

CACHE_DIR = "roi_masks"


def _key(path: str | Path) -> str:
    return str(Path(path).resolve())


def _run_manifest(run: Path) -> Path | None:
    """The manifest a segment-train run took its patients from: its ``--manifest``, else the nearest
    ``MANIFEST.csv`` above its pairs table."""
    try:
        cfg = json.loads((run / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if cfg.get("manifest"):
        return Path(cfg["manifest"]) if Path(cfg["manifest"]).is_file() else None
    pairs = Path(cfg.get("pairs") or "")
    for folder in pairs.resolve().parents:
        if (folder / "MANIFEST.csv").is_file():
            return folder / "MANIFEST.csv"
    return None


@dataclass
class CrossFit:
    """Which fold model predicts which image (see the module's rule), read from a run's ``split.csv``."""

    run: Path
    n_folds: int
    image_fold: dict[str, int] = field(default_factory=dict)
    patient_fold: dict[str, int] = field(default_factory=dict)
    image_patient: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of_run(cls, run: str | Path) -> "CrossFit":
        run = Path(run)
        split_file = run / "split.csv"
        if not split_file.is_file():
            raise SegmentError(f"{run}: no split.csv, so the images its models trained on are unknown; finish the "
                               f"run (rerun its medgap segment train command) before using it with --roi")
        split = pd.read_csv(split_file, dtype={"patient": str, "image": str})
        test = split[split["role"] == "test"]
        n_folds = int(split["fold"].max()) + 1 if len(split) else 0
        image_fold = {_key(i): int(k) for i, k in zip(test["image"], test["fold"])}
        patient_fold = {str(p): int(k) for p, k in zip(test["patient"], test["fold"])}
        image_patient: dict[str, str] = {}
        manifest = _run_manifest(run)
        if manifest is not None:
            man = pd.read_csv(manifest, dtype=str, keep_default_na=False)
            if {"path", "group_id"} <= set(man.columns):
                image_patient = {_key(manifest.parent / p): g for p, g in zip(man["path"], man["group_id"]) if g}
        return cls(run, n_folds, image_fold, patient_fold, image_patient)

    def folds_for(self, image: str | Path) -> tuple[list[int], str]:
        """The folds whose models predict ``image`` (mean of their probabilities) and why, in words."""
        key = _key(image)
        if key in self.image_fold:
            k = self.image_fold[key]
            return [k], f"fold {k} (held out this image)"
        patient = self.image_patient.get(key)
        if patient is not None and patient in self.patient_fold:
            k = self.patient_fold[patient]
            return [k], f"fold {k} (held out patient {patient})"
        folds = list(range(self.n_folds))
        return folds, f"mean of folds {', '.join(map(str, folds))} (image and patient not in the run)"


class CrossFitSegmenter:
    """A run's :class:`~medgap.segment.predict.Segmenter` predicting each image with its cross-fitted models
    (:class:`CrossFit`), the raw masks saved once under ``RUN/roi_masks/``."""

    def __init__(self, run: str | Path, device: str = "cpu", keep_largest: int = DEFAULT_KEEP_LARGEST,
                 threshold: float = 0.5, cache: bool = True):
        from medgap.segment.predict import load_segmenter

        self.run = Path(run).resolve()
        self.segmenter = load_segmenter(self.run, device, keep_largest)
        self.crossfit = CrossFit.of_run(self.run)
        self.threshold = threshold
        self.cache = self.run / CACHE_DIR if cache else None

    def _cache_file(self, image: Path, frame, folds: list[int]) -> Path | None:
        if self.cache is None:
            return None
        try:
            st = image.stat()
            models = [(self.run / f"fold_{k}" / "model.pt").stat().st_mtime_ns for k in folds]
        except OSError:
            return None
        text = f"{_key(image)}|{st.st_size}|{st.st_mtime_ns}|{frame}|{folds}|{models}|{self.threshold:g}"
        return self.cache / f"{hashlib.sha1(text.encode()).hexdigest()[:24]}.png"

    def predict(self, image: str | Path, frame) -> tuple[np.ndarray, dict]:
        """The post-processed mask of ``frame`` (of file ``image``) and its record: image, frame, model (which
        fold models, and why), folds, cached (read from the cache), cache_file."""
        image = Path(image)
        folds, why = self.crossfit.folds_for(image)
        index = getattr(frame, "frame", None)
        file = self._cache_file(image, index, folds)
        raw, cached = None, False
        if file is not None and file.is_file():
            raw = cv2.imread(str(file), cv2.IMREAD_GRAYSCALE)
            if raw is not None and raw.shape == (frame.height, frame.width):
                raw, cached = raw > 0, True
            else:
                raw = None
        if raw is None:
            raw = self.segmenter.raw(frame, self.threshold, folds)
            if file is not None:
                try:  # written once, atomically: parallel workers may predict the same image
                    file.parent.mkdir(exist_ok=True)
                    tmp = file.with_name(f".{file.stem}.{os.getpid()}.png")
                    cv2.imwrite(str(tmp), raw.astype(np.uint8) * 255)
                    os.replace(tmp, file)
                except OSError:
                    file = None
        mask = keep_largest(raw, self.segmenter.keep_largest)
        record = {"image": str(image), "frame": index, "model": why, "folds": " ".join(map(str, folds)),
                  "keep_largest": self.segmenter.keep_largest, "fraction": float(mask.mean()), "cached": cached,
                  "cache_file": "" if file is None else str(file)}
        return mask, record


def heldout_metrics(run: str | Path, keep: tuple[int, ...] = (0, DEFAULT_KEEP_LARGEST), device: str = "cpu",
                    threshold: float = 0.5) -> pd.DataFrame:
    """Every annotated image of a segment-train run, predicted by the fold model that held it out (the run's own
    held-out predictions, again), with Dice/IoU/HD95 for each post-processing ``keep`` (0: none; N: the N
    largest components). One row per image and ``keep_largest``; :func:`medgap.segment.metrics.summarise` on
    each ``keep_largest`` gives the table of docs/segmentation.md."""
    from medgap.segment.masks import read_mask, region
    from medgap.segment.metrics import image_metrics
    from medgap.segment.predict import load_segmenter
    from medgap.segment.train import _first_frame

    run = Path(run)
    seg = load_segmenter(run, device, 0)
    cfg = json.loads((run / "config.json").read_text())
    split = pd.read_csv(run / "split.csv", dtype={"patient": str})
    rows = []
    for r in split[split["role"] == "test"].itertuples():
        frame = _first_frame(Path(r.image))
        truth = region(read_mask(r.mask), cfg.get("mask_threshold", 127))
        raw = seg.raw(frame, threshold, [int(r.fold)])
        for n in keep:
            rows.append({"image": r.image, "patient": r.patient, "fold": int(r.fold), "keep_largest": n,
                         **image_metrics(keep_largest(raw, n), truth)})
    return pd.DataFrame(rows)
