"""Per-image overlap and boundary metrics of a binary segmentation, and their patient-bootstrap summary.

Dice = 2|P∩G| / (|P| + |G|), IoU = |P∩G| / |P∪G| (both 1 when P and G are empty). HD95: MONAI's
``compute_hausdorff_distance(percentile=95)``: the 95th percentile of the distances from each mask's edge
pixels to the other's edge, the larger of the two directions, in pixels of the grid it is given (the original
image size here); NaN when the prediction is empty (no edge to measure from)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from medgap.stats.bootstrap import grouped_bootstrap, percentile_interval

METRICS = ("dice", "iou", "hd95")


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    p, g = np.asarray(pred, bool), np.asarray(truth, bool)
    total = int(p.sum()) + int(g.sum())
    return 1.0 if total == 0 else 2.0 * int((p & g).sum()) / total


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    p, g = np.asarray(pred, bool), np.asarray(truth, bool)
    union = int((p | g).sum())
    return 1.0 if union == 0 else int((p & g).sum()) / union


def hd95(pred: np.ndarray, truth: np.ndarray) -> float:
    """95% Hausdorff distance in pixels (MONAI); NaN when either mask is empty."""
    import torch
    from monai.metrics import compute_hausdorff_distance

    p, g = np.asarray(pred, bool), np.asarray(truth, bool)
    if not p.any() or not g.any():
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = compute_hausdorff_distance(torch.from_numpy(p)[None, None], torch.from_numpy(g)[None, None],
                                           percentile=95)
    return float(value.item())


def image_metrics(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Dice, IoU and HD95 of one image (``pred`` and ``truth`` boolean, same shape)."""
    if np.shape(pred) != np.shape(truth):
        raise ValueError(f"prediction {np.shape(pred)} and mask {np.shape(truth)} differ in shape")
    return {"dice": dice(pred, truth), "iou": iou(pred, truth), "hd95": hd95(pred, truth)}


def summarise(per_image: pd.DataFrame, *, patient_column: str = "patient", n_boot: int = 2000,
              seed: int = 0, confidence: float = 0.95) -> pd.DataFrame:
    """Mean of each metric over the images with a patient-bootstrap percentile CI (patients resampled with
    replacement, each bringing all its images; see :mod:`medgap.stats.bootstrap`). One row per metric:
    ``metric, mean, ci_low, ci_high, median, n_images, n_patients, n_undefined`` (images where the metric
    is NaN, left out of it: HD95 of an empty prediction). Unit of analysis: the image, resampled by patient."""
    rows = []
    for name in METRICS:
        ok = per_image[name].notna().to_numpy()
        x = per_image.loc[ok, name].to_numpy(np.float64)
        groups = per_image.loc[ok, patient_column].astype(str).to_numpy()
        if x.size == 0:
            rows.append({"metric": name, "mean": np.nan, "ci_low": np.nan, "ci_high": np.nan, "median": np.nan,
                         "n_images": 0, "n_patients": 0, "n_undefined": int((~ok).sum())})
            continue
        draws = grouped_bootstrap(lambda w: ((w @ x) / w.sum(axis=1))[:, None], groups, n_boot=n_boot, seed=seed)
        low, high, _ = percentile_interval(draws, confidence)
        rows.append({"metric": name, "mean": float(x.mean()), "ci_low": float(low[0]), "ci_high": float(high[0]),
                     "median": float(np.median(x)), "n_images": int(x.size), "n_patients": len(set(groups)),
                     "n_undefined": int((~ok).sum())})
    return pd.DataFrame(rows)
