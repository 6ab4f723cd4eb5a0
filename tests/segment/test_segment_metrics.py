"""Dice, IoU and HD95 against direct formulas on hand-made masks; the summary's CI resamples patients."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from medgap.segment.metrics import dice, hd95, image_metrics, iou, summarise


def _rect(shape, top, left, h, w):
    m = np.zeros(shape, bool)
    m[top:top + h, left:left + w] = True
    return m


def test_dice_and_iou_on_counted_overlaps():
    truth = _rect((20, 20), 2, 2, 10, 10)  # 100 px
    pred = _rect((20, 20), 2, 7, 10, 10)  # 100 px, 50 shared
    assert dice(pred, truth) == pytest.approx(2 * 50 / 200)
    assert iou(pred, truth) == pytest.approx(50 / 150)
    assert dice(truth, truth) == 1.0 and iou(truth, truth) == 1.0
    assert dice(np.zeros((4, 4)), truth[:4, :4] & False) == 1.0  # both empty: agree
    assert dice(np.zeros((20, 20)), truth) == 0.0


def _hd95_scipy(pred: np.ndarray, truth: np.ndarray) -> float:
    """Independent float64 restatement: edge pixels (mask minus its 4-connected erosion), Euclidean distances
    from each edge to the other's edge pixels (distance transform), 95th percentile (linear) of each
    direction, the larger one."""
    def edges(m):
        return m & ~ndimage.binary_erosion(m)

    ep, et = edges(pred), edges(truth)
    d_pt = ndimage.distance_transform_edt(~et)[ep].astype(np.float64)
    d_tp = ndimage.distance_transform_edt(~ep)[et].astype(np.float64)
    return max(np.percentile(d_pt, 95), np.percentile(d_tp, 95))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hd95_matches_a_distance_transform_restatement(seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:80, :96]
    cy, cx, ry, rx = rng.uniform(25, 50), rng.uniform(30, 60), rng.uniform(10, 20), rng.uniform(10, 25)
    truth = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    pred = ((yy - cy - rng.uniform(-6, 6)) / (ry * 1.2)) ** 2 + ((xx - cx - rng.uniform(-6, 6)) / rx) ** 2 <= 1
    pred |= _rect(truth.shape, 60, 70, 8, 8)  # a stray blob far from the truth drives the tail
    assert hd95(pred, truth) == pytest.approx(_hd95_scipy(pred, truth), rel=1e-5)


def test_hd95_of_a_shift_is_the_shift():
    truth = _rect((40, 40), 10, 10, 12, 12)
    pred = _rect((40, 40), 10, 15, 12, 12)  # moved 5 px right: every edge pixel is at most 5 px from the other's
    assert hd95(pred, truth) == pytest.approx(_hd95_scipy(pred, truth))
    assert 4 <= hd95(pred, truth) <= 5


def test_empty_prediction_has_no_hd95():
    truth = _rect((20, 20), 2, 2, 10, 10)
    out = image_metrics(np.zeros_like(truth), truth)
    assert out["dice"] == 0.0 and np.isnan(out["hd95"])


def test_summary_resamples_patients_not_images():
    rng = np.random.default_rng(0)
    one_patient = pd.DataFrame({"patient": "p1", "dice": rng.uniform(0.5, 1, 30), "iou": rng.uniform(0.3, 1, 30),
                                "hd95": rng.uniform(1, 30, 30)})
    s = summarise(one_patient, n_boot=300).set_index("metric")
    # one patient drawn with replacement is always the same 30 images: the interval has no width (an image-level
    # bootstrap would give one)
    assert s.loc["dice", "ci_low"] == pytest.approx(s.loc["dice", "mean"])
    assert s.loc["dice", "ci_high"] == pytest.approx(s.loc["dice", "mean"])
    many = one_patient.assign(patient=[f"p{i}" for i in range(30)])
    s = summarise(many, n_boot=500).set_index("metric")
    assert s.loc["dice", "ci_low"] < s.loc["dice", "mean"] < s.loc["dice", "ci_high"]
    assert s.loc["dice", "n_patients"] == 30 and s.loc["dice", "n_images"] == 30


def test_summary_counts_undefined_hd95():
    table = pd.DataFrame({"patient": ["a", "b", "c"], "dice": [0.9, 0.8, 0.0], "iou": [0.8, 0.7, 0.0],
                          "hd95": [3.0, 5.0, np.nan]})
    s = summarise(table, n_boot=200).set_index("metric")
    assert s.loc["hd95", "n_undefined"] == 1 and s.loc["hd95", "mean"] == pytest.approx(4.0)
    assert s.loc["dice", "mean"] == pytest.approx(1.7 / 3)
