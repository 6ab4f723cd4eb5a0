"""Balance weights against a plain per-item loop; the training augmentation against OpenCV's own resize/flip."""

from __future__ import annotations

from collections import Counter

import cv2
import numpy as np
import pytest
import torch

from medgap.data import balance_weights
from medgap.data.tensors import TensorDataset, TrainAugmentation


def _loop_weights(labels, groups, mode):
    """Straight from the definition, one item at a time."""
    n = len(labels)
    if mode == "none":
        return np.ones(n)
    per_group = Counter(groups)
    w = np.array([1.0 / per_group[g] for g in groups])
    if mode == "class":
        class_total = {c: sum(w[i] for i in range(n) if labels[i] == c) for c in set(labels)}
        w = np.array([w[i] / class_total[labels[i]] for i in range(n)])
    return w * n / w.sum()


@pytest.mark.parametrize("mode", ["none", "patient", "class"])
def test_balance_weights_match_the_definition(mode):
    rng = np.random.default_rng(3)
    groups = [f"p{i}" for i in range(25) for _ in range(rng.integers(1, 12))]  # clips: many frames per patient
    labels = [("covid", "pneumonia", "regular")[int(g[1:]) % 3 if int(g[1:]) > 4 else 0] for g in groups]
    w = balance_weights(labels, groups, mode)
    np.testing.assert_allclose(w, _loop_weights(labels, groups, mode), rtol=1e-12)
    assert w.sum() == pytest.approx(len(labels))
    g, lab = np.array(groups), np.array(labels)
    if mode == "patient":  # every patient the same total weight
        totals = [w[g == x].sum() for x in np.unique(g)]
        np.testing.assert_allclose(totals, totals[0])
    if mode == "class":  # every class the same total weight, patients equal within a class
        np.testing.assert_allclose([w[lab == c].sum() for c in np.unique(lab)], len(labels) / 3)
        for c in np.unique(lab):
            totals = [w[g == x].sum() for x in np.unique(g[lab == c])]
            np.testing.assert_allclose(totals, totals[0])


def test_balance_rejects_unknown_mode():
    with pytest.raises(ValueError, match="patient"):
        balance_weights(["a"], ["p"], "groups")


@pytest.fixture()
def image():
    rng = np.random.default_rng(0)
    smooth = cv2.GaussianBlur(rng.uniform(0, 255, (64, 64, 3)).astype(np.float32), (0, 0), 3)
    return torch.from_numpy(np.clip(smooth * 3 - 255, 0, 255).astype(np.uint8).transpose(2, 0, 1).copy())


def test_augmentation_identity_and_flip_are_exact(image):
    aug = TrainAugmentation(64, scale=(1, 1), ratio=(1, 1), degrees=0, brightness=0, contrast=0)
    hwc = np.ascontiguousarray(image.numpy().transpose(1, 2, 0))
    for u5, expected in ((0.9, hwc), (0.1, hwc[:, ::-1])):
        m = aug.matrix(torch.tensor([0.0, 0.5, 0.5, 0.5, 0.5, u5]))
        out = cv2.warpAffine(hwc, m, (64, 64), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        np.testing.assert_array_equal(out, expected)


def test_augmentation_crop_equals_cropping_then_resizing(image):
    """A centred crop of a quarter of the area, no rotation: the same pixels as cutting out the middle 32x32 and
    resizing it with OpenCV's bilinear resize (same half-pixel convention)."""
    aug = TrainAugmentation(64, scale=(0.25, 0.25), ratio=(1, 1), degrees=0, brightness=0, contrast=0)
    hwc = np.ascontiguousarray(image.numpy().transpose(1, 2, 0))
    m = aug.matrix(torch.tensor([0.0, 0.5, 0.5, 0.5, 0.5, 0.9]))
    out = cv2.warpAffine(hwc, m, (64, 64), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    ref = cv2.resize(hwc[16:48, 16:48], (64, 64), interpolation=cv2.INTER_LINEAR)
    diff = np.abs(out.astype(int) - ref.astype(int))[2:-2, 2:-2]  # edges: reflection vs replication
    assert diff.max() <= 1


def test_augmented_items_vary_stay_in_range_and_are_seeded(image):
    ds = TensorDataset(image[None].repeat(4, 1, 1, 1), torch.zeros(4, dtype=torch.long), (0.5,) * 3, (0.5,) * 3,
                       augment=True)
    torch.manual_seed(1)
    a = [ds[0][0] for _ in range(3)]
    torch.manual_seed(1)
    b = [ds[0][0] for _ in range(3)]
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y)
    assert not torch.equal(a[0], a[1])
    assert all(x.dtype == torch.float32 and x.shape == (3, 64, 64) and -1 <= x.min() and x.max() <= 1 for x in a)
    x, target, weight = TensorDataset(image[None], torch.tensor([2]), (0.5,) * 3, (0.5,) * 3)[0]
    torch.testing.assert_close(x, image.float() / 127.5 - 1)
    assert int(target) == 2 and float(weight) == 1.0
